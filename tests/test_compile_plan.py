"""Spec -> Plan: sizes, slices, normalizers, weights, thresholds, references, and every diagnostic the compiler emits.

Specs are built in Python here (no TOML loader involved), mirroring specs/base/anymal_d_flat*.toml.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from rwmspec.api import check_spec
from rwmspec.compile import compile_backend, compile_plan
from rwmspec.diagnostics import SpecError
from rwmspec.plan import plan_from_dict, plan_to_dict
from rwmspec.spec.model import (
    ActionTermSpec,
    BackendSpec,
    CommandTermSpec,
    EventTermSpec,
    ExperimentSpec,
    ImaginationSpec,
    NormalizerSpec,
    ObservationGroupSpec,
    ObservationTermSpec,
    PolicySpec,
    RewardTermSpec,
    RobotSpec,
    RunnerSpec,
    RunRefSpec,
    Spec,
    TerminationTermSpec,
    WorldModelSpec,
    WorldModelTrainSpec,
)
from rwmspec.types import Artifacts, BackendDef, Requirement, StageDef, TermKind, ViewField
from rwmspec_plugins.anymal_d.plugin import ANYMAL_D


# --------------------------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------------------------
def obs(kind=None, **params):
    extra = {k: params.pop(k) for k in ("noise", "clip", "scale", "normalizer", "enabled") if k in params}
    return ObservationTermSpec(kind=kind, params=params, **extra)


def policy_group(corruption=True):
    return ObservationGroupSpec(
        corruption=corruption,
        terms={
            "base_lin_vel": obs(noise=0.1),
            "base_ang_vel": obs(noise=0.2),
            "projected_gravity": obs(noise=0.05),
            "velocity_commands": obs("generated_commands", command_name="base_velocity"),
            "joint_pos": obs("joint_pos_rel", noise=0.01),
            "joint_vel": obs("joint_vel_rel", noise=1.5),
            "actions": obs("last_action"),
        },
    )


def system_groups():
    return {
        "system_state": ObservationGroupSpec(
            terms={
                "base_lin_vel": obs(),
                "base_ang_vel": obs(),
                "projected_gravity": obs(),
                "joint_pos": obs("joint_pos_rel"),
                "joint_vel": obs("joint_vel_rel"),
                "joint_torque": obs("joint_effort"),
            }
        ),
        "system_action": ObservationGroupSpec(terms={"last_action": obs()}),
        "system_contact": ObservationGroupSpec(
            terms={
                "thigh_contact": obs("body_contact", bodies="thighs", threshold=1.0),
                "foot_contact": obs("body_contact", bodies="feet", threshold=1.0),
            }
        ),
        "system_termination": ObservationGroupSpec(
            terms={"base_contact": obs("body_contact", bodies="base", threshold=1.0)}
        ),
    }


def make_spec(stage="pretrain", **overrides) -> Spec:
    rewards = {
        "track_lin_vel_xy_exp": RewardTermSpec(weight=1.0, params={"std": 0.5}),
        "track_ang_vel_z_exp": RewardTermSpec(weight=0.5, params={"std": 0.5}),
        "lin_vel_z_l2": RewardTermSpec(weight=-2.0),
        "ang_vel_xy_l2": RewardTermSpec(weight=-0.05),
        "dof_torques_l2": RewardTermSpec(kind="joint_torques_l2", weight=-2.5e-5),
        "dof_acc_l2": RewardTermSpec(kind="joint_acc_l2", weight=-2.5e-7),
        "action_rate_l2": RewardTermSpec(weight=-0.01),
        "feet_air_time": RewardTermSpec(weight=0.5, params={"bodies": "feet", "threshold": 0.5}),
        "undesired_contacts": RewardTermSpec(weight=-1.0, params={"bodies": "thighs", "threshold": 1.0}),
        "flat_orientation_l2": RewardTermSpec(weight=-5.0),
        "dof_pos_limits": RewardTermSpec(kind="joint_pos_limits", weight=0.0),
        "stand_still": RewardTermSpec(weight=-1.0, params={"threshold": 0.05}),
    }
    observations = {"policy": policy_group()}
    world_model = None
    if stage != "init":
        observations.update(system_groups())
        world_model = WorldModelSpec()
    fields = dict(
        experiment=ExperimentSpec(name="anymal_d_flat", stage=stage),
        robot=RobotSpec(name="anymal_d"),
        backend=BackendSpec(name="embedded", num_envs=64),
        commands={
            "base_velocity": CommandTermSpec(
                kind="uniform_velocity",
                params=dict(
                    lin_vel_x=(-1.0, 1.0), lin_vel_y=(-1.0, 1.0), ang_vel_z=(-1.0, 1.0), heading=(-3.14159, 3.14159)
                ),
            )
        },
        actions={"joint_pos": ActionTermSpec(kind="joint_position", params={"scale": 0.5})},
        events={
            "physics_material": EventTermSpec(
                kind="randomize_rigid_body_material",
                mode="startup",
                params=dict(
                    static_friction_range=[0.8, 0.8], dynamic_friction_range=[0.6, 0.6], restitution_range=[0.0, 0.0]
                ),
            ),
            "push_robot": EventTermSpec(
                kind="push_by_setting_velocity",
                mode="interval",
                interval_range_s=(10.0, 15.0),
                params={"velocity_range": {"x": [-0.5, 0.5], "y": [-0.5, 0.5]}},
            ),
        },
        terminations={
            "time_out": TerminationTermSpec(time_out=True),
            "base_contact": TerminationTermSpec(kind="illegal_contact", params={"bodies": "base", "threshold": 1.0}),
        },
        observations=observations,
        rewards=rewards,
        world_model=world_model,
    )
    if stage == "finetune":
        fields["imagination"] = ImaginationSpec(num_envs=64)
        fields["runner"] = RunnerSpec(world_model_from=RunRefSpec(spec="pretrain.toml"))
    if stage == "visualize":
        fields["runner"] = RunnerSpec(
            policy_from=RunRefSpec(spec="finetune.toml"), world_model_from=RunRefSpec(spec="finetune.toml")
        )
    fields.update(overrides)
    return Spec(**fields)


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    for name in ("init.toml", "pretrain.toml", "finetune.toml", "this.toml"):
        (tmp_path / name).write_text("")
    return tmp_path


def compile_ok(spec, registry, spec_dir):
    plan, diags = compile_plan(spec, registry, spec_file=spec_dir / "this.toml")
    assert diags == [], [f"{d.code} {d.dotted_path}: {d.message}" for d in diags]
    assert plan is not None
    return plan


def compile_fail(spec, registry, spec_dir):
    """Every diagnostic of the spec, from whichever step owns its rule (structure, checks or the compiler)."""
    plan, diags = check_spec(spec, registry, spec_file=spec_dir / "this.toml")
    assert plan is None
    assert len({(d.code, d.path, d.message) for d in diags}) == len(diags), "a diagnostic is reported twice"
    return {(d.code, d.dotted_path): d for d in diags}


# --------------------------------------------------------------------------------------------------------------------
# resolved plan
# --------------------------------------------------------------------------------------------------------------------
def test_policy_group_layout(registry, spec_dir):
    plan = compile_ok(make_spec("init"), registry, spec_dir)
    policy = plan.observations["policy"]
    assert policy.dim == 48 and policy.corruption
    assert [(t.name, t.start, t.dim) for t in policy.terms] == [
        ("base_lin_vel", 0, 3),
        ("base_ang_vel", 3, 3),
        ("projected_gravity", 6, 3),
        ("velocity_commands", 9, 3),
        ("joint_pos", 12, 12),
        ("joint_vel", 24, 12),
        ("actions", 36, 12),
    ]
    assert policy.term("joint_vel").noise == 1.5 and policy.term("actions").noise is None
    assert policy.term("velocity_commands").params == {"command_name": "base_velocity"}
    # policy groups carry no normalizer statistics
    assert all(t.mean is None and t.std is None for t in policy.terms)
    assert plan.world_model is None and plan.steps == registry.stages["init"].steps


def test_system_groups_slices_and_normalizers(registry, spec_dir):
    plan = compile_ok(make_spec("pretrain"), registry, spec_dir)
    state = plan.observations["system_state"]
    assert state.dim == 45
    assert [(t.name, state.slice(t.name)) for t in state.terms] == [
        ("base_lin_vel", slice(0, 3)),
        ("base_ang_vel", slice(3, 6)),
        ("projected_gravity", slice(6, 9)),
        ("joint_pos", slice(9, 21)),
        ("joint_vel", slice(21, 33)),
        ("joint_torque", slice(33, 45)),
    ]
    expected_mean = tuple(v for b in ANYMAL_D.state_blocks for v in b.mean)
    expected_std = tuple(v for b in ANYMAL_D.state_blocks for v in b.std)
    assert state.mean == expected_mean and state.std == expected_std
    assert state.term("joint_torque").labels == ANYMAL_D.state_block("joint_torque").labels
    action = plan.observations["system_action"]
    assert action.dim == 12 and action.mean == (0.0,) * 12 and action.std == (1.0,) * 12
    contact = plan.observations["system_contact"]
    assert contact.dim == 8 and contact.slice("thigh_contact") == slice(0, 4)
    assert contact.term("foot_contact").labels == ("LF_FOOT", "LH_FOOT", "RF_FOOT", "RH_FOOT")
    assert all(t.mean is None for t in contact.terms)
    assert plan.observations["system_termination"].dim == 1
    wm = plan.world_model
    assert (wm.state_dim, wm.action_dim, wm.contact_dim, wm.termination_dim, wm.extension_dim) == (45, 12, 8, 1, 0)
    assert wm.base_hidden == (256, 256) and wm.history_horizon == 32 and wm.forecast_horizon == 8


def test_terms_rewards_timing_and_steps(registry, spec_dir):
    spec = make_spec("pretrain")
    spec.rewards["lin_vel_z_l2"] = RewardTermSpec(weight=-2.0, enabled=False)
    plan = compile_ok(spec, registry, spec_dir)
    weights = {r.name: (r.kind, r.weight) for r in plan.rewards}
    assert "lin_vel_z_l2" not in weights  # disabled terms are dropped
    assert weights["dof_pos_limits"] == ("joint_pos_limits", 0.0)  # zero weights are kept
    assert weights["dof_torques_l2"] == ("joint_torques_l2", -2.5e-5)
    # defaults of the params class are filled in
    feet = next(r for r in plan.rewards if r.name == "feet_air_time")
    assert feet.params == {
        "bodies": "feet",
        "threshold": 0.5,
        "command_name": "base_velocity",
        "command_threshold": 0.1,
    }
    assert plan.actions[0].dim == 12 and plan.action_dim == 12
    assert plan.actions[0].params == {"joint_names": ".*", "scale": 0.5, "use_default_offset": True}
    assert plan.commands[0].interval_range_s == (10.0, 10.0) and plan.commands[0].params["heading_command"] is True
    events = {e.name: e for e in plan.events}
    assert events["push_robot"].mode == "interval" and events["push_robot"].interval_range_s == (10.0, 15.0)
    assert events["physics_material"].params["num_buckets"] == 64
    assert [(t.name, t.mode) for t in plan.terminations] == [("time_out", "time_out"), ("base_contact", "failure")]
    assert plan.sim.control_dt == pytest.approx(0.02) and plan.sim.max_episode_length == 1000
    assert plan.steps == registry.stages["pretrain"].steps and plan.run_name == "pretrain"
    assert plan.robot.contact_thresholds == {"feet": 1.0, "thighs": 1.0, "base": 1.0}
    assert plan.robot.contact_bodies["thighs"] == ("LF_THIGH", "LH_THIGH", "RF_THIGH", "RH_THIGH")
    assert plan.imagination is None  # only finetune imagines


def test_contact_threshold_comes_from_the_terms(registry, spec_dir):
    spec = make_spec("init")
    spec.rewards["undesired_contacts"] = RewardTermSpec(weight=-1.0, params={"bodies": "thighs", "threshold": 5.0})
    plan = compile_ok(spec, registry, spec_dir)
    assert plan.robot.contact_thresholds["thighs"] == 5.0
    assert plan.robot.contact_thresholds["feet"] == 1.0  # read by feet_air_time only: the default


def test_last_action_follows_the_action_width(registry, spec_dir):
    spec = make_spec("init", actions={"hips": ActionTermSpec(kind="joint_position", params={"joint_names": ".*_HAA"})})
    plan = compile_ok(spec, registry, spec_dir)
    assert plan.action_dim == 4
    assert plan.observations["policy"].term("actions").dim == 4 and plan.observations["policy"].dim == 40


def test_normalizer_overrides(registry, spec_dir):
    spec = make_spec("pretrain")
    terms = spec.observations["system_state"].terms
    terms["base_lin_vel"] = obs(normalizer=NormalizerSpec(mean=[0.1, 0.2, 0.3]))
    terms["joint_pos"] = obs("joint_pos_rel", normalizer=NormalizerSpec(std=0.5))
    spec.observations["system_action"].terms["last_action"] = obs(normalizer=NormalizerSpec(std=2.0))
    plan = compile_ok(spec, registry, spec_dir)
    state = plan.observations["system_state"]
    assert state.term("base_lin_vel").mean == (0.1, 0.2, 0.3)
    assert state.term("base_lin_vel").std == (0.5, 0.5, 0.1)  # not overridden: the robot's values
    assert state.term("joint_pos").std == (0.5,) * 12
    assert plan.observations["system_action"].std == (2.0,) * 12


def test_run_references_resolve_to_absolute_paths(registry, spec_dir):
    spec = make_spec(
        "finetune",
        runner=RunnerSpec(
            policy_from=RunRefSpec(spec="init.toml", checkpoint="model_300.pt"),
            world_model_from=RunRefSpec(spec="pretrain.toml"),
        ),
    )
    plan = compile_ok(spec, registry, spec_dir)
    assert plan.policy_from.spec == str((spec_dir / "init.toml").resolve())
    assert plan.policy_from.checkpoint == "model_300.pt" and plan.policy_from.run == "latest"
    assert plan.world_model_from.spec == str((spec_dir / "pretrain.toml").resolve())
    assert plan.imagination.num_envs == 64 and "imagine" in plan.steps


def test_plan_round_trips_through_json(registry, spec_dir):
    plan = compile_ok(make_spec("finetune"), registry, spec_dir)
    data = json.loads(json.dumps(plan_to_dict(plan)))
    again = plan_from_dict(data)
    assert again.observations["system_state"].mean == plan.observations["system_state"].mean
    assert again.fingerprint() == plan.fingerprint()
    assert json.loads(json.dumps(plan_to_dict(again))) == data


def test_disabled_event_is_dropped(registry, spec_dir):
    spec = make_spec("visualize")
    spec.events["push_robot"] = attrs.evolve(spec.events["push_robot"], enabled=False)
    plan = compile_ok(spec, registry, spec_dir)
    assert [e.name for e in plan.events] == ["physics_material"]


# --------------------------------------------------------------------------------------------------------------------
# diagnostics
# --------------------------------------------------------------------------------------------------------------------
def test_unknown_robot(registry, spec_dir):
    found = compile_fail(make_spec("init", robot=RobotSpec(name="anymal-d")), registry, spec_dir)
    d = found[("RWM202", "robot.name")]
    assert "did you mean 'anymal_d'" in d.message


def test_unknown_term_kind(registry, spec_dir):
    spec = make_spec("init")
    spec.rewards["feet_airtime"] = RewardTermSpec(weight=0.5)
    spec.rewards["torques"] = RewardTermSpec(kind="joint_torque_l2", weight=-1.0)
    found = compile_fail(spec, registry, spec_dir)
    assert "did you mean 'feet_air_time'" in found[("RWM203", "rewards.feet_airtime")].message
    assert "did you mean 'joint_torques_l2'" in found[("RWM203", "rewards.torques.kind")].message


def test_invalid_term_params(registry, spec_dir):
    spec = make_spec("init")
    spec.rewards["feet_air_time"] = RewardTermSpec(weight=0.5, params={"threshhold": 0.5})
    spec.rewards["track_lin_vel_xy_exp"] = RewardTermSpec(weight=1.0, params={"std": "0.5"})
    spec.rewards["lin_vel_z_l2"] = RewardTermSpec(weight=-2.0, params={"std": 1.0})
    spec.events["physics_material"] = EventTermSpec(
        kind="randomize_rigid_body_material", mode="startup", params={"static_friction_range": [0.8, 0.8, 0.1]}
    )
    spec.events["add_mass"] = EventTermSpec(
        kind="randomize_rigid_body_mass",
        mode="startup",
        params={"mass_distribution_params": [-5, 5], "operation": "multiply"},
    )
    found = compile_fail(spec, registry, spec_dir)
    assert "did you mean 'threshold'" in found[("RWM204", "rewards.feet_air_time.threshhold")].message
    assert "expected a number" in found[("RWM204", "rewards.track_lin_vel_xy_exp.std")].message
    assert "takes no parameters" in found[("RWM204", "rewards.lin_vel_z_l2.std")].message
    assert ("RWM204", "events.physics_material.static_friction_range") in found
    # a missing parameter has no key to point at: the structuring step reports it at the term's table
    _, diags = check_spec(spec, registry, spec_file=spec_dir / "this.toml")
    assert "missing required parameter 'dynamic_friction_range' of event kind 'randomize_rigid_body_material'" in [
        d.message for d in diags if d.dotted_path == "events.physics_material"
    ]
    assert ("RWM204", "events.add_mass.operation") in found


def test_semantic_param_checks(registry, spec_dir):
    spec = make_spec("init")
    spec.events["reset"] = EventTermSpec(
        kind="reset_root_state_uniform",
        mode="reset",
        params=dict(pose_range={"x": [0.5, -0.5], "yaw_rate": [0, 1]}, velocity_range={}),
    )
    spec.commands["base_velocity"] = CommandTermSpec(
        kind="uniform_velocity", params=dict(lin_vel_x=(-1.0, 1.0), lin_vel_y=(-1.0, 1.0), ang_vel_z=(-1.0, 1.0))
    )
    spec.events["push_robot"] = EventTermSpec(
        kind="push_by_setting_velocity", mode="interval", params={"velocity_range": {"x": [-0.5, 0.5]}}
    )
    plan, diags = compile_plan(spec, registry, spec_file=spec_dir / "this.toml")
    assert plan is None
    found = {(d.code, d.dotted_path): d for d in diags}
    assert "low <= high" in found[("RWM204", "events.reset.pose_range.x")].message
    assert "unknown axis 'yaw_rate'" in found[("RWM204", "events.reset.pose_range.yaw_rate")].message
    assert ("RWM204", "commands.base_velocity.heading") in found
    assert ("RWM204", "events.push_robot") in found  # interval event without interval_range_s


def test_command_reference_check(registry):
    spec = make_spec("init")
    spec.rewards["stand_still"] = RewardTermSpec(weight=-1.0, params={"command_name": "walk"})
    diags = list(registry.checks["command_references"].function(spec, registry))
    assert [(d.code, d.dotted_path) for d in diags] == [("RWM204", "rewards.stand_still.command_name")]
    assert list(registry.checks["command_references"].function(make_spec("pretrain"), registry)) == []


def test_missing_observation_groups(registry, spec_dir):
    spec = make_spec("pretrain", policy=PolicySpec(critic_observations=["critic"]))
    del spec.observations["system_contact"]
    found = compile_fail(spec, registry, spec_dir)
    assert ("RWM207", "observations.system_contact") in found
    assert ("RWM207", "observations.critic") in found
    spec = make_spec("init", observations={"system_stat": ObservationGroupSpec(terms={})})
    found = compile_fail(spec, registry, spec_dir)
    assert ("RWM207", "observations.policy") in found
    assert "did you mean 'system_state'" in found[("RWM207", "observations.system_stat")].message


def test_binary_groups_hold_contact_flags(registry, spec_dir):
    spec = make_spec("pretrain")
    spec.observations["system_contact"].terms["foot_contact"] = obs("base_lin_vel")
    spec.observations["system_termination"].terms["base_contact"] = obs(
        "body_contact", bodies="base", normalizer=NormalizerSpec(std=1.0)
    )
    found = compile_fail(spec, registry, spec_dir)
    assert ("RWM207", "observations.system_contact.terms.foot_contact.kind") in found
    assert ("RWM208", "observations.system_termination.terms.base_contact.normalizer") in found


def test_state_block_problems(registry, spec_dir):
    spec = make_spec("pretrain")
    terms = spec.observations["system_state"].terms
    terms["joint_position"] = obs("joint_pos_rel")
    terms["base_lin_vel"] = obs("joint_pos_rel")
    terms["joint_vel"] = obs("joint_vel_rel", normalizer=NormalizerSpec(std=[1.0, 2.0]))
    terms["joint_torque"] = obs("joint_effort", normalizer=NormalizerSpec(std=0.0))
    spec.observations["policy"].terms["base_lin_vel"] = obs(normalizer=NormalizerSpec(std=1.0))
    found = compile_fail(spec, registry, spec_dir)
    assert "did you mean 'joint_pos'" in found[("RWM208", "observations.system_state.terms.joint_position")].message
    assert ("RWM208", "observations.system_state.terms.base_lin_vel.kind") in found
    assert "2 values" in found[("RWM208", "observations.system_state.terms.joint_vel.normalizer.std")].message
    assert ("RWM208", "observations.system_state.terms.joint_torque.normalizer.std") in found
    assert ("RWM208", "observations.policy.terms.base_lin_vel.normalizer") in found


def test_missing_run_reference(registry, spec_dir):
    spec = make_spec("finetune", runner=RunnerSpec(world_model_from=RunRefSpec(spec="pretrian.toml")))
    d = compile_fail(spec, registry, spec_dir)[("RWM209", "runner.world_model_from.spec")]
    assert "pretrian.toml" in d.message


def test_inconsistent_sizes(registry, spec_dir):
    wm = WorldModelSpec(
        base_hidden=[256, 128],
        history_horizon=32,
        train=WorldModelTrainSpec(eval_trajectory_length=32, replay_buffer_size=16),
    )
    found = compile_fail(make_spec("pretrain", world_model=wm), registry, spec_dir)
    assert ("RWM210", "world_model.base_hidden") in found
    assert ("RWM210", "world_model.train.eval_trajectory_length") in found
    assert ("RWM210", "world_model.train.replay_buffer_size") in found
    # a feed-forward base may taper
    compile_ok(
        make_spec("pretrain", world_model=WorldModelSpec(architecture="mlp", base_hidden=[256, 128])),
        registry,
        spec_dir,
    )


def test_unknown_architecture(registry, spec_dir):
    found = compile_fail(make_spec("pretrain", world_model=WorldModelSpec(architecture="gruu")), registry, spec_dir)
    assert "did you mean 'gru'" in found[("RWM206", "world_model.architecture")].message


@pytest.mark.parametrize(
    "stage, change, expected",
    [
        ("pretrain", {"world_model": None}, ("RWM211", "world_model")),
        ("finetune", {"imagination": ImaginationSpec(num_envs=0)}, ("RWM211", "imagination.num_envs")),
        ("finetune", {"imagination": None}, ("RWM211", "imagination.num_envs")),
        ("finetune", {"runner": RunnerSpec()}, ("RWM211", "runner.world_model_from")),
        (
            "visualize",
            {"runner": RunnerSpec(world_model_from=RunRefSpec(spec="finetune.toml"))},
            ("RWM211", "runner.policy_from"),
        ),
        (
            "visualize",
            {"runner": RunnerSpec(policy_from=RunRefSpec(spec="finetune.toml"))},
            ("RWM211", "runner.world_model_from"),
        ),
    ],
)
def test_stage_requirements(registry, spec_dir, stage, change, expected):
    assert expected in compile_fail(make_spec(stage, **change), registry, spec_dir)


def test_contact_group_problems(registry, spec_dir):
    spec = make_spec("pretrain")
    spec.rewards["undesired_contacts"] = RewardTermSpec(weight=-1.0, params={"bodies": "thigh"})
    spec.terminations["base_contact"] = TerminationTermSpec(
        kind="illegal_contact", params={"bodies": "base", "threshold": 5.0}
    )
    found = compile_fail(spec, registry, spec_dir)
    assert "did you mean 'thighs'" in found[("RWM212", "rewards.undesired_contacts.bodies")].message
    # system_termination's base_contact (1 N) disagrees with the termination's 5 N
    assert ("RWM212", "observations.system_termination.terms.base_contact.threshold") in found


def test_unknown_backend_and_no_actions(registry, spec_dir):
    found = compile_fail(make_spec("init", backend=BackendSpec(name="isaac"), actions={}), registry, spec_dir)
    assert ("RWM205", "backend.name") in found
    assert ("RWM204", "actions") in found


def test_action_selecting_no_joint(registry, spec_dir):
    spec = make_spec("init", actions={"a": ActionTermSpec(kind="joint_position", params={"joint_names": "KNEE"})})
    assert ("RWM204", "actions.a.joint_names") in compile_fail(spec, registry, spec_dir)


# --------------------------------------------------------------------------------------------------------------------
# backend compile
# --------------------------------------------------------------------------------------------------------------------
def fake_backend_compile(plan, registry):
    return Artifacts(backend="fake", objects={"num_envs": plan.sim.num_envs}, dumps={"plan": plan.run_name})


def test_compile_backend(registry, spec_dir):
    plan = compile_ok(make_spec("init"), registry, spec_dir)
    reg = attrs.evolve(registry, backends=dict(registry.backends))
    reg.backends["fake"] = BackendDef(name="fake", description="test", compile=f"{__name__}:fake_backend_compile")
    reg.backends["needy"] = BackendDef(
        name="needy",
        description="test",
        compile="x:y",
        requires=(
            Requirement(module="no_such_module_rwmspec", install="pip install no-such-dist"),
            Requirement(module="attrs.converters", install="pip install attrs"),
        ),
    )
    artifacts = compile_backend(plan, reg, "fake")
    assert artifacts.objects == {"num_envs": 64} and artifacts.dumps == {"plan": "init"}
    with pytest.raises(SpecError) as err:
        compile_backend(plan, reg, "needy")
    codes = [(d.code, d.hint) for d in err.value.diagnostics]
    # the install command is the backend's own; an installed dotted module is found by its top-level package
    assert codes == [("RWM401", "install it: pip install no-such-dist")]
    with pytest.raises(SpecError) as err:
        compile_backend(plan, reg, "isaac")
    assert err.value.diagnostics[0].code == "RWM205"


# --------------------------------------------------------------------------------------------------------------------
# stages are records; robot options are applied by the robot's plugin
# --------------------------------------------------------------------------------------------------------------------
def with_records(registry, **tables):
    """A copy of the registry whose named tables have extra records (a third-party plugin's, say)."""
    copies = {name: {**getattr(registry, name), **records} for name, records in tables.items()}
    return attrs.evolve(registry, **copies)


def test_the_stage_record_decides_steps_and_requirements(registry, spec_dir):
    probe = StageDef(
        name="probe",
        description="test",
        steps=("collect",),
        references=("policy_from",),
        single_pass=True,
    )
    reg = with_records(registry, stages={"probe": probe})
    spec = make_spec("init", experiment=ExperimentSpec(name="x", stage="probe"))
    assert ("RWM211", "runner.policy_from") in compile_fail(spec, reg, spec_dir)
    spec.runner = RunnerSpec(policy_from=RunRefSpec(spec="init.toml"))
    plan = compile_ok(spec, reg, spec_dir)
    assert plan.steps == ("collect",) and plan.world_model is None and plan.imagination is None
    assert (plan.runner.max_iterations, plan.runner.save_interval) == (1, 1)  # single pass


def test_unknown_stage(registry, spec_dir):
    found = compile_fail(make_spec("init", experiment=ExperimentSpec(name="x", stage="pre-train")), registry, spec_dir)
    assert list(found) == [("RWM214", "experiment.stage")]
    assert "did you mean 'pretrain'" in found[("RWM214", "experiment.stage")].message
    assert "finetune, init, pretrain, visualize" in found[("RWM214", "experiment.stage")].hint


def test_robot_options_resolve_the_actuator(registry, spec_dir):
    plan = compile_ok(make_spec("init"), registry, spec_dir)
    assert plan.robot.actuator == ANYMAL_D.actuator  # defaults: Kp 40, Kd 5
    spec = make_spec("init", robot=RobotSpec(name="anymal_d", options={"actuator_stiffness": 80.0}))
    plan = compile_ok(spec, registry, spec_dir)
    assert (plan.robot.actuator.stiffness, plan.robot.actuator.damping) == (80.0, 5.0)
    assert plan.robot.actuator.effort_limit == ANYMAL_D.actuator.effort_limit
    assert plan.robot.options["actuator_stiffness"] == 80.0
    # a robot without apply_options: its own actuator
    plain = attrs.evolve(ANYMAL_D, name="plain_d", options_type=None, apply_options=None)
    reg = with_records(registry, robots={"plain_d": plain})
    plan = compile_ok(make_spec("init", robot=RobotSpec(name="plain_d")), reg, spec_dir)
    assert plan.robot.actuator == ANYMAL_D.actuator


def test_robot_plugin_rejecting_its_options_is_rwm213(registry, spec_dir):
    def refuse(robot, options):
        raise ValueError("Kp 80 needs Kd >= 6")

    picky = attrs.evolve(ANYMAL_D, name="picky_d", apply_options=refuse)
    reg = with_records(registry, robots={"picky_d": picky})
    found = compile_fail(make_spec("init", robot=RobotSpec(name="picky_d")), reg, spec_dir)
    assert "Kp 80 needs Kd >= 6" in found[("RWM213", "robot.options")].message


# --------------------------------------------------------------------------------------------------------------------
# imagination: what the imagination env would otherwise refuse after the simulator boots
# --------------------------------------------------------------------------------------------------------------------
def test_finetune_compiles_with_imagination(registry, spec_dir):
    plan = compile_ok(make_spec("finetune"), registry, spec_dir)
    assert plan.imagination is not None and "imagine" in plan.steps


def test_system_state_must_turn_back_into_view_fields(registry, spec_dir):
    spec = make_spec("finetune")
    state = spec.observations["system_state"].terms
    state["base_lin_vel"] = obs("generated_commands")  # a command, not a state
    state["joint_vel"] = obs("joint_pos_rel")  # joint_pos twice, joint_vel never
    found = compile_fail(spec, registry, spec_dir)
    assert "cannot turn kind 'generated_commands'" in (
        found[("RWM215", "observations.system_state.terms.base_lin_vel.kind")].message
    )
    assert "'joint_pos' and 'joint_vel' both describe" in (
        found[("RWM215", "observations.system_state.terms.joint_vel")].message
    )
    # what the rewards and the policy read is now missing from imagination
    assert "reads 'base_lin_vel'" in found[("RWM216", "rewards.track_lin_vel_xy_exp")].message
    assert "reads 'joint_vel'" in found[("RWM216", "rewards.dof_acc_l2")].message
    assert ("RWM216", "observations.policy.terms.base_lin_vel") in found
    assert ("RWM216", "observations.policy.terms.joint_vel") in found
    # pretrain never imagines: the same groups are fine there
    pretrain = make_spec("pretrain")
    pretrain.observations["system_state"].terms["joint_vel"] = obs("joint_pos_rel")
    compile_ok(pretrain, registry, spec_dir)


def test_zero_weight_rewards_may_read_anything(registry, spec_dir):
    spec = make_spec("finetune")
    del spec.observations["system_state"].terms["joint_torque"]
    assert (
        "reads 'joint_torque'" in compile_fail(spec, registry, spec_dir)[("RWM216", "rewards.dof_torques_l2")].message
    )
    spec.rewards["dof_torques_l2"] = RewardTermSpec(kind="joint_torques_l2", weight=0.0)
    compile_ok(spec, registry, spec_dir)


def test_contact_groups_and_pushes_need_predictions(registry, spec_dir):
    spec = make_spec("finetune", imagination=ImaginationSpec(num_envs=64, push_interval_range=(50, 80)))
    del spec.observations["system_contact"].terms["thigh_contact"]
    del spec.observations["system_state"].terms["base_lin_vel"]
    spec.observations["policy"].terms["base_lin_vel"] = obs(enabled=False)
    spec.rewards["track_lin_vel_xy_exp"] = RewardTermSpec(weight=0.0)
    spec.rewards["lin_vel_z_l2"] = RewardTermSpec(weight=0.0)
    found = compile_fail(spec, registry, spec_dir)
    assert "contact group 'thighs'" in found[("RWM216", "rewards.undesired_contacts")].message
    assert "'base_lin_vel'" in found[("RWM216", "imagination.push_interval_range")].message
    assert set(found) == {("RWM216", "rewards.undesired_contacts"), ("RWM216", "imagination.push_interval_range")}


def test_binary_group_terms_and_widths(registry, spec_dir):
    # a contact kind of another plugin that reports a group with one flag per group instead of per body
    any_contact = TermKind(
        name="any_contact",
        category="observation",
        description="test",
        params_type=registry.term_kinds[("observation", "body_contact")].params_type,
        dim=1,
        contact_group_param="bodies",
    )
    reg = with_records(registry, term_kinds={("observation", "any_contact"): any_contact})
    spec = make_spec("finetune")
    spec.observations["system_termination"].terms["feet_any"] = obs("any_contact", bodies="feet", threshold=1.0)
    found = compile_fail(spec, reg, spec_dir)
    message = found[("RWM215", "observations.system_termination.terms.feet_any")].message
    assert "contact group 'feet' has 1 flags here but 4" in message


def test_state_field_width_comes_from_the_view_field_record(registry, spec_dir):
    narrow = ViewField(name="joint_torque", width=3)
    reg = with_records(registry, view_fields={"joint_torque": narrow})
    found = compile_fail(make_spec("finetune"), reg, spec_dir)
    assert "has 12 columns but the view field 'joint_torque' has 3" in (
        found[("RWM215", "observations.system_state.terms.joint_torque")].message
    )
    joints = ViewField(name="joint_torque", width="joints")
    compile_ok(make_spec("finetune"), with_records(registry, view_fields={"joint_torque": joints}), spec_dir)


def test_penalty_name_and_real_data_steps(registry, spec_dir):
    imagination = ImaginationSpec(num_envs=64, uncertainty_penalty_weight=1.0, real_data_share=0.2)
    spec = make_spec("finetune", imagination=imagination)
    spec.rewards["uncertainty_penalty"] = RewardTermSpec(kind="action_rate_l2", weight=-0.01)
    spec.ppo = attrs.evolve(spec.ppo, num_steps_per_env=32)
    found = compile_fail(spec, registry, spec_dir)
    assert set(found) == {("RWM217", "rewards.uncertainty_penalty"), ("RWM210", "imagination.real_data_share")}
    spec.rewards["penalty_twin"] = spec.rewards.pop("uncertainty_penalty")
    spec.ppo = attrs.evolve(spec.ppo, num_steps_per_env=imagination.steps_per_iteration)
    compile_ok(spec, registry, spec_dir)


def test_imagined_terms_need_a_torch_implementation(registry, spec_dir):
    # a third-party reward that only a backend of its own implements
    bound_only = attrs.evolve(registry.term_kinds[("reward", "action_rate_l2")], name="bound_only", function=None)
    reg = with_records(registry, term_kinds={("reward", "bound_only"): bound_only})
    spec = make_spec("finetune")
    spec.rewards["bound_only"] = RewardTermSpec(weight=-0.01)
    assert "no torch implementation" in compile_fail(spec, reg, spec_dir)[("RWM216", "rewards.bound_only")].message
    pretrain = make_spec("pretrain")
    pretrain.rewards["bound_only"] = RewardTermSpec(weight=-0.01)
    compile_ok(pretrain, reg, spec_dir)


def test_declared_view_fields_must_be_predicted(registry, spec_dir):
    # a task plugin's field that only the world model could supply in imagination
    terrain = ViewField(name="terrain_height", width=1)
    rough = attrs.evolve(registry.term_kinds[("reward", "action_rate_l2")], name="rough", reads=("terrain_height",))
    reg = with_records(registry, view_fields={"terrain_height": terrain}, term_kinds={("reward", "rough"): rough})
    spec = make_spec("finetune")
    spec.rewards["rough"] = RewardTermSpec(weight=-0.1)
    assert "reads 'terrain_height'" in compile_fail(spec, reg, spec_dir)[("RWM216", "rewards.rough")].message
    # the action and the command are always there: action_rate_l2 reads nothing the model predicts
    spec.rewards["rough"] = RewardTermSpec(kind="action_rate_l2", weight=-0.1)
    compile_ok(spec, reg, spec_dir)
