"""The shipped ANYmal D specs compile to the upstream values.

Expected values are written here as literals, each with the section of the reference it comes from:
rwm_method.md (upstream robotic_world_model / rsl_rl_rwm and the RWM paper) and Isaac Lab 3.0's
AnymalDFlatEnvCfg + AnymalDFlatPPORunnerCfg as instantiated from the isaaclab 3.0.0 wheel (isaaclab_kitless.md §2.2).
"""

from __future__ import annotations

import math

import pytest

from rwmspec.api import load_and_compile
from rwmspec.diagnostics import render
from rwmspec.plan import Plan

from helpers import SPECS

STAGES = ("init", "pretrain", "finetune", "visualize")
#: runner steps of each stage, as the runtime's stage records (rwmspec_runtime.plugin) list them
STAGE_STEPS = {
    "init": ("collect", "update_policy"),
    "pretrain": ("collect", "store_transitions", "update_world_model", "update_policy"),
    "finetune": ("collect", "store_transitions", "update_world_model", "imagine", "update_policy"),
    "visualize": ("visualize",),
}


def compile_spec(name: str, overlays: tuple[str, ...] = ()) -> Plan:
    """Load, check and compile like `rwmspec validate`; the shipped specs have no diagnostic at all."""
    result = load_and_compile(SPECS / name, [SPECS / "overlays" / o for o in overlays])
    assert result.diagnostics == [], render(result.diagnostics)
    assert result.plan is not None
    return result.plan


@pytest.fixture(scope="module")
def plans() -> dict[str, Plan]:
    return {stage: compile_spec(f"anymal_d_{stage}.toml") for stage in STAGES}


def rewards(plan: Plan) -> dict[str, tuple[str, float]]:
    return {r.name: (r.kind, r.weight) for r in plan.rewards}


# isaaclab_kitless §2.2 (AnymalDFlatEnvCfg, flat weights) = rwm_method §2.3 "Pretrain / Finetune / Visualize" column
# without stand_still
FLAT_REWARDS = {
    "track_lin_vel_xy_exp": ("track_lin_vel_xy_exp", 1.0),
    "track_ang_vel_z_exp": ("track_ang_vel_z_exp", 0.5),
    "lin_vel_z_l2": ("lin_vel_z_l2", -2.0),
    "ang_vel_xy_l2": ("ang_vel_xy_l2", -0.05),
    "dof_torques_l2": ("joint_torques_l2", -2.5e-5),
    "dof_acc_l2": ("joint_acc_l2", -2.5e-7),
    "action_rate_l2": ("action_rate_l2", -0.01),
    "feet_air_time": ("feet_air_time", 0.5),
    "undesired_contacts": ("undesired_contacts", -1.0),
    "flat_orientation_l2": ("flat_orientation_l2", -5.0),
    "dof_pos_limits": ("joint_pos_limits", 0.0),
}
# rwm_method §2.3: RewardsCfg_TRAIN adds stand_still (threshold 0.05, command base_velocity) with weight -1.0
TRAIN_REWARDS = {**FLAT_REWARDS, "stand_still": ("stand_still", -1.0)}

# rwm_method §3.6: fixed state normalizer (45) and action normalizer (12)
STATE_MEAN = (
    (0.0, 0.0, 0.0)
    + (0.0, 0.0, 0.0)
    + (0.0, 0.0, -1.0)
    + (0.0,) * 12
    + (0.0,) * 12
    + (-2.0, -2.0, 2.0, 2.0, -6.0, 8.0, -6.0, 8.0, 12.0, -12.0, 12.0, -12.0)
)
STATE_STD = (
    (0.5, 0.5, 0.1)
    + (0.3, 0.3, 0.5)
    + (0.02, 0.02, 0.04)
    + (0.15,) * 12
    + (1.0, 1.0, 1.0, 1.0, 1.5, 1.5, 1.5, 1.5, 2.5, 2.5, 2.5, 2.5)
    + (15.0,) * 12
)


# --------------------------------------------------------------------------------------------------------------------
# shared by every stage
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stage", STAGES)
def test_shared_env(plans, stage):
    plan = plans[stage]
    # rwm_method §2.1: dt 0.005, decimation 4 -> 50 Hz, 20 s = 1000 steps
    assert (plan.sim.physics_dt, plan.sim.decimation, plan.sim.episode_length_s) == (0.005, 4, 20.0)
    assert math.isclose(plan.sim.control_dt, 0.02) and plan.sim.max_episode_length == 1000
    # rwm_method §2.1: JointPositionAction, 12 joints, scale 0.5, default offset
    (action,) = plan.actions
    assert (action.kind, action.dim, action.params) == (
        "joint_position",
        12,
        {"joint_names": ".*", "scale": 0.5, "use_default_offset": True},
    )
    # rwm_method §2.1 / isaaclab_kitless §2.2: UniformVelocityCommand
    (command,) = plan.commands
    assert command.name == "base_velocity" and command.interval_range_s == (10.0, 10.0)
    assert command.params == {
        "lin_vel_x": (-1.0, 1.0),
        "lin_vel_y": (-1.0, 1.0),
        "ang_vel_z": (-1.0, 1.0),
        "heading": (-math.pi, math.pi),
        "heading_command": True,
        "heading_control_stiffness": 0.5,
        "rel_standing_envs": 0.02,
        "rel_heading_envs": 1.0,
    }
    # rwm_method §2.1: time_out, and base contact = illegal_contact on base at 1.0 N
    assert [(t.name, t.kind, t.mode, t.params) for t in plan.terminations] == [
        ("time_out", "time_out", "time_out", {}),
        ("base_contact", "illegal_contact", "failure", {"bodies": "base", "threshold": 1.0}),
    ]
    assert plan.robot.contact_thresholds == {"feet": 1.0, "thighs": 1.0, "base": 1.0}
    # rwm_method §2.2: the 48-d policy group; noise U(±0.1, ±0.2, ±0.05, -, ±0.01, ±1.5, -)
    policy = plan.observations["policy"]
    assert [(t.name, t.kind, t.dim, t.noise) for t in policy.terms] == [
        ("base_lin_vel", "base_lin_vel", 3, 0.1),
        ("base_ang_vel", "base_ang_vel", 3, 0.2),
        ("projected_gravity", "projected_gravity", 3, 0.05),
        ("velocity_commands", "generated_commands", 3, None),
        ("joint_pos", "joint_pos_rel", 12, 0.01),
        ("joint_vel", "joint_vel_rel", 12, 1.5),
        ("actions", "last_action", 12, None),
    ]
    assert policy.dim == 48
    # rwm_method §2.2: corruption on in init and pretrain, off in finetune and visualize
    assert policy.corruption == (stage in ("init", "pretrain"))
    # rwm_method §5.4: PPO and actor-critic
    ppo = plan.ppo
    assert (ppo.num_steps_per_env, ppo.num_learning_epochs, ppo.num_mini_batches) == (24, 5, 4)
    assert (ppo.learning_rate, ppo.schedule, ppo.desired_kl) == (1.0e-3, "adaptive", 0.01)
    assert (ppo.clip_param, ppo.value_loss_coef, ppo.use_clipped_value_loss, ppo.entropy_coef) == (
        0.2,
        1.0,
        True,
        0.005,
    )
    assert (ppo.gamma, ppo.lam, ppo.max_grad_norm, ppo.normalize_advantage_per_mini_batch) == (0.99, 0.95, 1.0, False)
    pol = plan.policy
    assert pol.actor_hidden_dims == pol.critic_hidden_dims == [128, 128, 128] and pol.activation == "elu"
    assert (pol.init_noise_std, pol.noise_std_type) == (1.0, "scalar")
    assert not pol.actor_obs_normalization and not pol.critic_obs_normalization
    assert pol.actor_observations == pol.critic_observations == ["policy"]
    # visualize is one pass: the compiler fixes one iteration, saved
    expected = (1, 1) if stage == "visualize" else (plan.runner.max_iterations, 50)
    assert (plan.runner.max_iterations, plan.runner.save_interval) == expected and plan.steps == STAGE_STEPS[stage]
    assert plan.experiment.name == "anymal_d_flat" and plan.run_name == stage


# --------------------------------------------------------------------------------------------------------------------
# init = Isaac Lab 3.0's own task
# --------------------------------------------------------------------------------------------------------------------
def test_init_is_isaaclab_anymal_d_flat(plans):
    plan = plans["init"]
    # isaaclab_kitless §2.2: 4096 envs, 300 iterations, seed 42, flat reward weights, no world model
    assert plan.sim.num_envs == 4096 and plan.runner.max_iterations == 300 and plan.experiment.seed == 42
    assert rewards(plan) == FLAT_REWARDS
    assert set(plan.observations) == {"policy"} and plan.world_model is None and plan.imagination is None
    params = {r.name: r.params for r in plan.rewards}
    assert (
        params["track_lin_vel_xy_exp"] == params["track_ang_vel_z_exp"] == {"std": 0.5, "command_name": "base_velocity"}
    )
    assert params["feet_air_time"] == {
        "bodies": "feet",
        "threshold": 0.5,
        "command_name": "base_velocity",
        "command_threshold": 0.1,
    }
    assert params["undesired_contacts"] == {"bodies": "thighs", "threshold": 1.0}
    # isaaclab_kitless §2.2 events, with the exact values of the 3.0 wheel
    events = {e.name: (e.kind, e.mode, e.interval_range_s, e.params) for e in plan.events}
    assert events == {
        "physics_material": (
            "randomize_rigid_body_material",
            "startup",
            None,
            {
                "body_names": ".*",
                "static_friction_range": (0.8, 0.8),
                "dynamic_friction_range": (0.6, 0.6),
                "restitution_range": (0.0, 0.0),
                "num_buckets": 64,
            },
        ),
        "add_base_mass": (
            "randomize_rigid_body_mass",
            "startup",
            None,
            {
                "body_names": "base",
                "mass_distribution_params": (0.8, 1.25),
                "operation": "scale",
                "distribution": "log_uniform",
            },
        ),
        "base_com": (
            "randomize_rigid_body_com",
            "startup",
            None,
            {"body_names": "base", "com_range": {"x": (-0.05, 0.05), "y": (-0.05, 0.05), "z": (-0.01, 0.01)}},
        ),
        "base_external_force_torque": (
            "apply_external_force_torque",
            "reset",
            None,
            {"body_names": "base", "force_range": (0.0, 0.0), "torque_range": (0.0, 0.0)},
        ),
        "reset_base": (
            "reset_root_state_uniform",
            "reset",
            None,
            {
                "pose_range": {"x": (-0.5, 0.5), "y": (-0.5, 0.5), "yaw": (-3.14, 3.14)},
                "velocity_range": {a: (-0.5, 0.5) for a in ("x", "y", "z", "roll", "pitch", "yaw")},
            },
        ),
        "reset_robot_joints": (
            "reset_joints_by_scale",
            "reset",
            None,
            {"position_range": (0.5, 1.5), "velocity_range": (0.0, 0.0)},
        ),
        "push_robot": (
            "push_by_setting_velocity",
            "interval",
            (10.0, 15.0),
            {"velocity_range": {"x": (-0.5, 0.5), "y": (-0.5, 0.5)}},
        ),
    }


# --------------------------------------------------------------------------------------------------------------------
# the world-model stages
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stage", ("pretrain", "finetune", "visualize"))
def test_world_model_groups(plans, stage):
    plan = plans[stage]
    assert rewards(plan) == TRAIN_REWARDS  # rwm_method §2.3
    assert next(r for r in plan.rewards if r.name == "stand_still").params == {
        "threshold": 0.05,
        "command_name": "base_velocity",
    }
    obs = plan.observations
    # rwm_method §2.2: system_state (45) with its slices, the dynamics model predicts exactly this group
    state = obs["system_state"]
    assert [(t.name, t.kind, state.slice(t.name)) for t in state.terms] == [
        ("base_lin_vel", "base_lin_vel", slice(0, 3)),
        ("base_ang_vel", "base_ang_vel", slice(3, 6)),
        ("projected_gravity", "projected_gravity", slice(6, 9)),
        ("joint_pos", "joint_pos_rel", slice(9, 21)),
        ("joint_vel", "joint_vel_rel", slice(21, 33)),
        ("joint_torque", "joint_effort", slice(33, 45)),
    ]
    assert state.dim == 45 and not state.corruption
    # rwm_method §3.6: normalizers
    assert state.mean == STATE_MEAN and state.std == STATE_STD
    assert obs["system_action"].dim == 12
    assert obs["system_action"].mean == (0.0,) * 12 and obs["system_action"].std == (1.0,) * 12
    # rwm_method §2.2: contacts = thigh [0:4] then foot [4:8] (paper Table S3), termination = base contact (1)
    contact = obs["system_contact"]
    assert [(t.name, t.kind, t.params, contact.slice(t.name)) for t in contact.terms] == [
        ("thigh_contact", "body_contact", {"bodies": "thighs", "threshold": 1.0}, slice(0, 4)),
        ("foot_contact", "body_contact", {"bodies": "feet", "threshold": 1.0}, slice(4, 8)),
    ]
    (base,) = obs["system_termination"].terms
    assert (base.name, base.kind, base.params, base.dim) == (
        "base_contact",
        "body_contact",
        {"bodies": "base", "threshold": 1.0},
        1,
    )
    assert "system_extension" not in obs
    # rwm_method §3.1: GRU 2 x 256, heads [128], K = 1, separate auxiliary base, residual mean, log-std bounds
    wm = plan.world_model
    assert (wm.architecture, wm.base_hidden, wm.ensemble_size) == ("gru", (256, 256), 1)
    assert wm.state_mean_hidden == wm.state_logstd_hidden == wm.auxiliary_hidden == (128,)
    assert wm.separate_auxiliary_base and wm.residual and wm.logstd_bounds_init == (-5.0, -4.0)
    assert (wm.state_dim, wm.action_dim, wm.contact_dim, wm.termination_dim, wm.extension_dim) == (45, 12, 8, 1, 0)
    # rwm_method §3.3 (H = 32, N = 8, loss weights) and §3.5 (optimisation)
    assert (wm.history_horizon, wm.forecast_horizon) == (32, 8)
    lw = wm.loss_weights
    assert (lw.state, lw.sequence, lw.bound, lw.kl, lw.extension, lw.contact, lw.termination) == (
        1.0,
        1.0,
        1.0,
        0.1,
        1.0,
        1.0,
        1.0,
    )
    t = wm.train
    assert (t.learning_rate, t.weight_decay, t.max_grad_norm) == (1.0e-3, 0.0, 1.0)
    assert (t.num_mini_batches, t.mini_batch_size, t.replay_buffer_size) == (20, 5000, 1000)
    assert t.bootstrap and t.state_loss == "sampled_mse" and t.termination_pos_weight is None
    assert (t.eval_interval, t.num_eval_trajectories, t.eval_trajectory_length) == (50, 100, 400)


def test_world_model_fingerprint_is_shared(plans):
    # finetune and visualize must accept the world model pretrain trained
    assert plans["pretrain"].fingerprint() == plans["finetune"].fingerprint() == plans["visualize"].fingerprint()


def test_pretrain(plans):
    plan = plans["pretrain"]
    # rwm_method §2.4: 4096 envs, 2000 iterations, no imagination, no starting weights
    assert plan.sim.num_envs == 4096 and plan.runner.max_iterations == 2000
    assert plan.imagination is None and plan.policy_from is None and plan.world_model_from is None
    assert plan.steps == ("collect", "store_transitions", "update_world_model", "update_policy")
    assert {e.name for e in plan.events} == {
        "physics_material",
        "add_base_mass",
        "base_com",
        "base_external_force_torque",
        "reset_base",
        "reset_robot_joints",
        "push_robot",
    }


def test_finetune(plans):
    plan = plans["finetune"]
    # rwm_method §2.4: 10 real envs; Gen-2 imagination 8192 envs x 24 steps, 256-step episodes, commands resampled
    # every U[100, 120) steps, penalty 0, 500 warm-up iterations; starts from the init policy and pretrained model
    assert plan.sim.num_envs == 10 and plan.runner.max_iterations == 2000
    im = plan.imagination
    assert (im.num_envs, im.steps_per_iteration, im.max_episode_length) == (8192, 24, 256)
    assert im.command_resample_interval_range == (100, 120)
    assert (im.uncertainty_penalty_weight, im.warmup_iterations) == (0.0, 500)
    assert im.observation_noise  # rwm_method §4.3: noise of the Isaac Lab magnitudes on imagined observations
    assert plan.policy_from.spec == str(SPECS / "anymal_d_init.toml")
    assert plan.world_model_from.spec == str(SPECS / "anymal_d_pretrain.toml")
    assert (plan.policy_from.run, plan.policy_from.checkpoint) == ("latest", "latest")
    assert "imagine" in plan.steps


def test_visualize(plans):
    plan = plans["visualize"]
    # rwm_method §2.4: 10 envs, corruption off, push and external-force events removed, commands every 2 s
    assert plan.sim.num_envs == 10
    assert "push_robot" not in {e.name for e in plan.events}
    assert "base_external_force_torque" not in {e.name for e in plan.events}
    assert plan.visualize.command_resample_s == 2.0
    assert plan.policy_from.spec == plan.world_model_from.spec == str(SPECS / "anymal_d_finetune.toml")
    assert plan.steps == ("visualize",)


# --------------------------------------------------------------------------------------------------------------------
# overlays
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stage", STAGES)
def test_tiny_overlay(stage):
    plan = compile_spec(f"anymal_d_{stage}.toml", ("tiny.toml",))
    assert plan.sim.backend == "embedded" and plan.sim.device == "cpu" and plan.sim.num_envs == 8
    assert (plan.runner.max_iterations, plan.runner.save_interval) == ((1, 1) if stage == "visualize" else (2, 1))
    assert plan.policy.actor_hidden_dims == plan.policy.critic_hidden_dims == [16]
    if stage == "init":
        assert plan.world_model is None and plan.imagination is None
        return
    wm = plan.world_model
    assert (wm.base_hidden, wm.state_mean_hidden, wm.auxiliary_hidden) == ((16, 16), (16,), (16,))
    assert (wm.history_horizon, wm.forecast_horizon) == (4, 2)
    assert (wm.train.num_mini_batches, wm.train.mini_batch_size, wm.train.replay_buffer_size) == (2, 8, 64)
    assert (wm.train.eval_interval, wm.train.num_eval_trajectories, wm.train.eval_trajectory_length) == (1, 2, 16)
    if stage == "finetune":
        im = plan.imagination
        assert (im.num_envs, im.steps_per_iteration, im.warmup_iterations) == (8, 4, 1)


@pytest.mark.parametrize("stage", STAGES)
def test_cpu_overlay(stage):
    plan = compile_spec(f"anymal_d_{stage}.toml", ("cpu.toml",))
    assert plan.sim.backend == "embedded" and plan.sim.device == "cpu"
    # the overlay caps real envs: the big stages keep their 4096 (a smaller PPO batch does not learn to walk),
    # finetune and visualize keep their 10
    assert plan.sim.num_envs == (10 if stage in ("finetune", "visualize") else 4096)
    assert plan.runner.max_iterations == (1 if stage == "visualize" else 300)
    if plan.world_model is not None:
        # same architecture as upstream: the stages keep sharing one world model
        assert plan.world_model.base_hidden == (256, 256)
        assert plan.world_model.train.num_mini_batches * plan.world_model.train.mini_batch_size < 20 * 5000
    if stage == "finetune":
        assert 0 < plan.imagination.num_envs < 8192


@pytest.mark.parametrize(
    "fragment",
    ["base/anymal_d_flat.toml", "base/anymal_d_flat_world_model.toml", "overlays/cpu.toml", "overlays/tiny.toml"],
)
def test_fragments_validate(fragment):
    result = load_and_compile(SPECS / fragment)
    assert result.loaded.fragment and result.diagnostics == [], render(result.diagnostics)


def test_spec_files_start_with_the_schema_directive():
    for path in SPECS.rglob("*.toml"):
        depth = len(path.relative_to(SPECS).parts) - 1
        assert path.read_text().splitlines()[0] == f"#:schema {'../' * depth or './'}rwmspec.schema.json", path
