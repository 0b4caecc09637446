"""The isaaclab backend's compile step, checked field by field against Isaac Lab 3.0's own ANYmal-D flat task.

specs/anymal_d_init.toml is written to be Isaac Lab's ``AnymalDFlatEnvCfg`` + ``AnymalDFlatPPORunnerCfg``; compiling
it for the isaaclab backend must give the same config values. Configs are compared as ``isaaclab.utils.to_dict``
trees (values, functions by ``module:name``); every difference fails with its dotted field path. The few fields that
differ on purpose are listed in ``INTENDED_DIFFERENCES`` with the reason.

Needs Isaac Lab 3.0's config classes (``bash scripts/install_isaaclab_configs.sh``); no simulator, no robot asset.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import types
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import attrs
import pytest

from helpers import ROOT, SPECS

pytestmark = pytest.mark.isaaclab

if importlib.util.find_spec("isaaclab") is None or importlib.util.find_spec("isaaclab_tasks") is None:
    # `./dev test` installs them; a bare `pytest` without them must say so rather than pass silently
    raise ModuleNotFoundError(
        "Isaac Lab 3.0 config classes are not installed: run "
        "`bash scripts/install_isaaclab_configs.sh` (or use `./dev test`)"
    )

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # rsl_rl imports git at import time

import torch  # noqa: E402
import yaml  # noqa: E402
from isaaclab.utils import to_dict  # noqa: E402
from isaaclab_rl.rsl_rl import handle_deprecated_rsl_rl_cfg  # noqa: E402
from isaaclab_tasks.core.velocity.config.anymal_d.agents.rsl_rl_ppo_cfg import AnymalDFlatPPORunnerCfg  # noqa: E402
from isaaclab_tasks.core.velocity.config.anymal_d.flat_env_cfg import AnymalDFlatEnvCfg  # noqa: E402

from rwmspec.api import load_and_compile  # noqa: E402
from rwmspec.compile import compile_backend  # noqa: E402
from rwmspec.diagnostics import SpecError  # noqa: E402
from rwmspec.manager import get_registry  # noqa: E402
from rwmspec_plugins.isaaclab import mdp  # noqa: E402
from rwmspec_plugins.isaaclab.compile import compile_plan_to_isaaclab  # noqa: E402

#: Rigid bodies of ANYmal D (the MJCF of the robot plugin has Isaac Lab's body names): contact-sensor body regexes
#: are compared by the bodies they select.
ANYMAL_D_BODIES = tuple(b.get("name") for b in ET.parse(ROOT / "plugins/anymal_d/anymal_d.xml").iter("body"))

#: Dotted to_dict paths allowed to differ from Isaac Lab's env config, with the reason.
INTENDED_DIFFERENCES = {
    "seed": "the spec's experiment.seed (Isaac Lab leaves it None and its train script copies the runner's seed, "
    "checked in test_seed_is_the_runner_seed)",
    "sim.device": "the spec's backend.device; Isaac Lab's launcher overrides its 'cuda:0' from the command line",
    "sim.physics": "a concrete preset instead of Isaac Lab's preset table (checked in test_physics_is_the_preset)",
    "scene.sky_light": "a dome light whose HDR texture is on the Isaac Sim asset server; nothing renders headless",
    "curriculum": "no curriculum either way: Isaac Lab's flat task sets its only term to None",
    "commands.base_velocity.debug_vis": "velocity arrows are USD files on the asset server; nothing renders headless",
}
#: Runner fields allowed to differ, with the reason.
RUNNER_INTENDED_DIFFERENCES = {
    "device": "the spec's backend.device; Isaac Lab's train script overrides 'cuda:0' from the command line",
    "run_name": "rwmspec names runs after the stage (experiment.run_name); Isaac Lab leaves it empty",
}


# --------------------------------------------------------------------------------------------------------------------
# comparison
# --------------------------------------------------------------------------------------------------------------------
def _is_entity(value: object) -> bool:
    return isinstance(value, dict) and {"name", "body_names", "joint_names"} <= set(value)


def _selected_bodies(body_names: object, path: str) -> tuple[str, ...]:
    patterns = [body_names] if isinstance(body_names, str) else list(body_names)
    selected = tuple(b for b in ANYMAL_D_BODIES if any(re.fullmatch(p, b) for p in patterns))
    assert selected, f"{path}: body_names {body_names!r} select no ANYmal D body"
    return selected


def _normalise(value: object, path: str = "") -> object:
    """to_dict tree -> comparable values: body regexes become the bodies they select, None entries are dropped.

    Isaac Lab removes a term or scene entity by setting it to None; the managers skip None, so absent == None.
    """
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if item is None:
                continue
            sub = f"{path}.{key}" if path else str(key)
            if key == "body_names" and _is_entity(value) and item is not None:
                out[key] = _selected_bodies(item, sub)
            else:
                out[key] = _normalise(item, sub)
        return out
    if isinstance(value, list | tuple):
        return tuple(_normalise(v, f"{path}[{i}]") for i, v in enumerate(value))
    return value


def differences(ours: object, theirs: object, path: str = "", skip: dict[str, str] | None = None) -> list[str]:
    """Every field where two normalised to_dict trees differ, as ``dotted.path: ours != theirs`` lines."""
    skip = skip or {}
    if path in skip:
        return []
    if isinstance(ours, dict) and isinstance(theirs, dict):
        found = []
        for key in list(ours) + [k for k in theirs if k not in ours]:
            sub = f"{path}.{key}" if path else str(key)
            if sub in skip:
                continue
            if key not in theirs:
                found.append(f"{sub}: only in the rwmspec config ({ours[key]!r:.80})")
            elif key not in ours:
                found.append(f"{sub}: missing from the rwmspec config (Isaac Lab: {theirs[key]!r:.80})")
            else:
                found += differences(ours[key], theirs[key], sub, skip)
        return found
    if isinstance(ours, tuple) and isinstance(theirs, tuple) and len(ours) == len(theirs):
        return [
            d
            for i, (a, b) in enumerate(zip(ours, theirs, strict=True))
            for d in differences(a, b, f"{path}[{i}]", skip)
        ]
    return [] if ours == theirs else [f"{path}: rwmspec {ours!r:.120} != Isaac Lab {theirs!r:.120}"]


def assert_same(ours: object, theirs: object, what: str, skip: dict[str, str] | None = None) -> None:
    found = differences(
        _normalise(to_dict(ours) if not isinstance(ours, dict) else ours),
        _normalise(to_dict(theirs) if not isinstance(theirs, dict) else theirs),
        skip=skip,
    )
    assert not found, f"{what} differs from Isaac Lab's in {len(found)} field(s):\n  " + "\n  ".join(found)


# --------------------------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------------------------
def compile_spec(name: str):
    """``(plan, registry, artifacts)`` of a spec under specs/, compiled for the isaaclab backend."""
    registry = get_registry()
    result = load_and_compile(SPECS / name, registry=registry)
    assert result.ok, f"{name} does not compile: {[d.message for d in result.diagnostics]}"
    return result.plan, registry, compile_backend(result.plan, registry, "isaaclab")


@pytest.fixture(scope="module")
def init():
    return compile_spec("anymal_d_init.toml")


@pytest.fixture(scope="module")
def ours(init):
    return init[2].objects["env_cfg"]


@pytest.fixture(scope="module")
def ours_runner(init):
    return init[2].objects["runner_cfg"]


@pytest.fixture(scope="module")
def theirs():
    return AnymalDFlatEnvCfg()


@pytest.fixture(scope="module")
def theirs_runner():
    from importlib.metadata import version

    return handle_deprecated_rsl_rl_cfg(AnymalDFlatPPORunnerCfg(), version("rsl-rl-lib"))


# --------------------------------------------------------------------------------------------------------------------
# the init spec is Isaac Lab's AnymalDFlatEnvCfg + AnymalDFlatPPORunnerCfg
# --------------------------------------------------------------------------------------------------------------------
def test_whole_env_config_matches_isaac_lab(ours, theirs):
    assert_same(ours, theirs, "the env config", skip=INTENDED_DIFFERENCES)


def test_timing_matches(ours, theirs):
    for field in (
        "sim.dt",
        "decimation",
        "episode_length_s",
        "sim.render_interval",
        "scene.num_envs",
        "scene.env_spacing",
        "is_finite_horizon",
    ):
        mine, isaac = ours, theirs
        for part in field.split("."):
            mine, isaac = getattr(mine, part), getattr(isaac, part)
        assert mine == isaac, f"{field}: rwmspec {mine!r} != Isaac Lab {isaac!r}"


def test_observation_terms_in_order(ours, theirs):
    def terms(group):
        return [(name, to_dict(t)) for name, t in group.__dict__.items() if hasattr(t, "func")]

    assert [n for n, _ in terms(ours.observations.policy)] == [n for n, _ in terms(theirs.observations.policy)]
    for (name, mine), (_, isaac) in zip(
        terms(ours.observations.policy), terms(theirs.observations.policy), strict=True
    ):
        for key in ("func", "params", "noise", "clip", "scale", "history_length"):
            assert mine[key] == isaac[key], f"observations.policy.{name}.{key}: {mine[key]!r} != {isaac[key]!r}"
    assert ours.observations.policy.enable_corruption and ours.observations.policy.concatenate_terms


@pytest.mark.parametrize("section", ["rewards", "terminations", "events", "commands", "actions"])
def test_manager_section_matches(ours, theirs, section):
    skip = {k.removeprefix(f"{section}."): v for k, v in INTENDED_DIFFERENCES.items() if k.startswith(section)}
    assert_same(getattr(ours, section), getattr(theirs, section), section, skip=skip)


def test_contact_terms_select_the_group_bodies(ours):
    expected = {
        "feet_air_time": ("LF_FOOT", "LH_FOOT", "RF_FOOT", "RH_FOOT"),
        "undesired_contacts": ("LF_THIGH", "LH_THIGH", "RF_THIGH", "RH_THIGH"),
    }
    for name, bodies in expected.items():
        entity = getattr(ours.rewards, name).params["sensor_cfg"]
        assert entity.name == "contact_forces"
        assert _selected_bodies(entity.body_names, f"rewards.{name}") == bodies
    entity = ours.terminations.base_contact.params["sensor_cfg"]
    assert _selected_bodies(entity.body_names, "terminations.base_contact") == ("base",)


def test_physics_is_the_preset(ours, theirs):
    assert theirs.sim.physics.default is theirs.sim.physics.newton_mjwarp
    assert_same(ours.sim.physics, theirs.sim.physics.newton_mjwarp, "sim.physics (newton_mjwarp, flat)")


def test_seed_is_the_runner_seed(ours, theirs_runner):
    assert ours.seed == theirs_runner.seed


def test_runner_matches_isaac_lab(ours_runner, theirs_runner):
    assert_same(ours_runner, theirs_runner, "the runner config", skip=RUNNER_INTENDED_DIFFERENCES)
    assert ours_runner.run_name == "init"


def test_runner_config_builds_an_rsl_rl_runner(ours_runner):
    """to_dict(runner_cfg) is a valid rsl-rl-lib 5.5.1 train_cfg (no deprecated keys left in the models)."""
    from rsl_rl.runners import OnPolicyRunner
    from tensordict import TensorDict

    class PolicyGroupEnv:  # the 48-d policy group and 12 actions of the flat task, nothing simulated
        num_envs, num_actions, device, cfg, max_episode_length = 4, 12, "cpu", None, 1000

        def get_observations(self):
            return TensorDict({"policy": torch.zeros(self.num_envs, 48)}, batch_size=[self.num_envs])

    runner = OnPolicyRunner(PolicyGroupEnv(), to_dict(ours_runner), log_dir=None, device="cpu")
    actor = runner.alg.actor
    linears = [m for m in actor.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [128, 128, 128, 12]


def test_dumps_are_isaac_lab_yaml(init, ours, ours_runner):
    dumps = init[2].dumps
    assert yaml.unsafe_load(dumps["env.yaml"]) == to_dict(ours)
    assert yaml.unsafe_load(dumps["agent.yaml"]) == to_dict(ours_runner)


def test_robot_is_isaac_labs_anymal_d(ours, theirs):
    assert_same(ours.scene.robot, theirs.scene.robot, "scene.robot")
    assert_same(ours.scene.contact_forces, theirs.scene.contact_forces, "scene.contact_forces")


# --------------------------------------------------------------------------------------------------------------------
# world-model stages: the system_* groups
# --------------------------------------------------------------------------------------------------------------------
def test_pretrain_has_the_system_groups():
    _plan, _registry, artifacts = compile_spec("anymal_d_pretrain.toml")
    observations = artifacts.objects["env_cfg"].observations
    il_obs = "isaaclab.envs.mdp.observations"
    contact = "rwmspec_plugins.isaaclab.mdp:body_contact"
    expected = {
        "system_state": [
            ("base_lin_vel", f"{il_obs}:base_lin_vel", None),
            ("base_ang_vel", f"{il_obs}:base_ang_vel", None),
            ("projected_gravity", f"{il_obs}:projected_gravity", None),
            ("joint_pos", f"{il_obs}:joint_pos_rel", None),
            ("joint_vel", f"{il_obs}:joint_vel_rel", None),
            ("joint_torque", f"{il_obs}:joint_effort", None),
        ],
        "system_action": [("last_action", f"{il_obs}:last_action", None)],
        "system_contact": [
            ("thigh_contact", contact, ("LF_THIGH", "LH_THIGH", "RF_THIGH", "RH_THIGH")),
            ("foot_contact", contact, ("LF_FOOT", "LH_FOOT", "RF_FOOT", "RH_FOOT")),
        ],
        "system_termination": [("base_contact", contact, ("base",))],
    }
    for group_name, terms in expected.items():
        group = getattr(observations, group_name)
        assert group.concatenate_terms and not group.enable_corruption, group_name
        found = [(n, t) for n, t in group.__dict__.items() if hasattr(t, "func")]
        assert [n for n, _ in found] == [n for n, _, _ in terms], group_name
        for (name, term), (_, func, bodies) in zip(found, terms, strict=True):
            where = f"observations.{group_name}.{name}"
            assert to_dict(term)["func"] == func, where
            assert term.noise is None, where
            if bodies is not None:
                assert term.params["threshold"] == 1.0, where
                assert _selected_bodies(term.params["sensor_cfg"].body_names, where) == bodies
    assert observations.policy.enable_corruption
    rewards = artifacts.objects["env_cfg"].rewards
    assert to_dict(rewards.stand_still) == {
        "func": "rwmspec_plugins.isaaclab.mdp:stand_still",
        "weight": -1.0,
        "params": {"threshold": 0.05, "command_name": "base_velocity"},
    }


# --------------------------------------------------------------------------------------------------------------------
# options and errors
# --------------------------------------------------------------------------------------------------------------------
def _with_backend(plan, **options):
    return attrs.evolve(plan, sim=attrs.evolve(plan.sim, backend="isaaclab", options=options))


def test_options_pick_terrain_physics_and_spacing(init):
    plan, registry, _ = init
    env = compile_plan_to_isaaclab(
        _with_backend(plan, terrain="random_rough", physics="newton_kamino", env_spacing=3.0, contact_history=4),
        registry,
    ).objects["env_cfg"]
    generator = env.scene.terrain.terrain_generator
    assert env.scene.terrain.terrain_type == "generator"
    assert list(generator.sub_terrains) == ["random_rough"]
    assert generator.sub_terrains["random_rough"].proportion == 1.0
    assert generator.difficulty_range == (0.0, 0.0) and not generator.curriculum
    assert type(env.sim.physics.solver_cfg).__name__ == "KaminoPADMMSolverCfg"
    assert env.scene.env_spacing == 3.0 and env.scene.contact_forces.history_length == 4


def test_bad_options_name_the_key(init):
    plan, registry, _ = init
    # well-typed but out of range: the options' own check(), which `rwmspec validate` runs (its one owner)
    result = load_and_compile(
        SPECS / "anymal_d_init.toml", sets=["backend.name=isaaclab", "backend.options.env_spacing=-1.0"]
    )
    (problem,) = [d for d in result.diagnostics if d.severity == "error"]
    assert problem.code == "RWM213" and problem.path == ("backend", "options", "env_spacing")
    # a plan built by hand skipped validate: its unknown option still stops the compile, with validate's diagnostic
    with pytest.raises(SpecError, match=r"num_threads") as info:
        compile_plan_to_isaaclab(_with_backend(plan, num_threads=2), registry)
    assert info.value.diagnostics[0].code == "RWM213"


def test_a_param_isaac_lab_hard_codes_must_keep_its_value(init):
    plan, registry, _ = init
    rewards = tuple(
        attrs.evolve(r, params={**r.params, "command_threshold": 0.2}) if r.kind == "feet_air_time" else r
        for r in plan.rewards
    )
    with pytest.raises(SpecError, match=r"command_threshold = 0\.1 \(the spec sets 0\.2\)") as info:
        compile_plan_to_isaaclab(attrs.evolve(plan, rewards=rewards), registry)
    assert info.value.diagnostics[0].path == ("rewards", "feet_air_time", "command_threshold")


def test_a_kind_without_isaac_lab_binding_is_reported(init):
    plan, registry, _ = init
    bindings = {key: b for key, b in registry.bindings.items() if key != ("isaaclab", "reward", "lin_vel_z_l2")}
    unbound = attrs.evolve(registry, bindings=bindings)
    with pytest.raises(SpecError) as info:
        compile_plan_to_isaaclab(plan, unbound)
    (problem,) = info.value.diagnostics
    assert problem.code == "RWM402" and problem.path == ("rewards", "lin_vel_z_l2")
    assert problem.message == "reward kind 'lin_vel_z_l2' has no Isaac Lab binding"
    assert problem.hint.startswith(
        "register TermBinding(backend='isaaclab', category='reward', kind='lin_vel_z_l2', ref='package.module:attr') "
        "from a plugin's rwmspec_term_bindings() hook"
    )


def test_a_binding_that_does_not_import_names_its_ref_and_provider(init):
    plan, registry, _ = init
    key = ("isaaclab", "reward", "lin_vel_z_l2")
    bindings = {**registry.bindings, key: attrs.evolve(registry.bindings[key], ref="isaaclab.envs.mdp:no_such_term")}
    with pytest.raises(SpecError) as info:
        compile_plan_to_isaaclab(plan, attrs.evolve(registry, bindings=bindings))
    (problem,) = info.value.diagnostics
    assert "cannot import its Isaac Lab binding 'isaaclab.envs.mdp:no_such_term'" in problem.message
    assert "isaaclab (rwmspec" in problem.hint


def test_a_robot_without_isaac_lab_asset_is_rwm402_naming_the_fix(init):
    plan, registry, _ = init
    assets = {key: a for key, a in registry.assets.items() if key != ("anymal_d", "isaaclab")}
    with pytest.raises(SpecError) as info:
        compile_plan_to_isaaclab(plan, attrs.evolve(registry, assets=assets))
    (problem,) = info.value.diagnostics
    assert (problem.code, problem.path) == ("RWM402", ("robot", "name"))
    assert problem.message == "robot 'anymal_d' has no Isaac Lab articulation"
    assert (
        "RobotAsset(robot='anymal_d', backend='isaaclab'" in problem.hint and "rwmspec_robot_assets()" in problem.hint
    )


def test_the_robot_is_placed_at_the_backends_prim_path(init, ours, monkeypatch):
    from isaaclab.utils import replace

    from rwmspec_plugins.isaaclab.compile import ROBOT_PRIM_PATH

    plan, registry, _ = init
    assert ours.scene.robot.prim_path == ROBOT_PRIM_PATH
    assert ours.scene.contact_forces.prim_path.startswith(ROBOT_PRIM_PATH + "/")
    elsewhere = types.ModuleType("robot_elsewhere")
    elsewhere.articulation = lambda: replace(ours.scene.robot, prim_path="/World/Elsewhere")
    asset = attrs.evolve(registry.assets[("anymal_d", "isaaclab")], ref="robot_elsewhere:articulation")
    monkeypatch.setitem(sys.modules, "robot_elsewhere", elsewhere)
    assets = {**registry.assets, ("anymal_d", "isaaclab"): asset}
    env = compile_plan_to_isaaclab(plan, attrs.evolve(registry, assets=assets)).objects["env_cfg"]
    assert env.scene.robot.prim_path == ROBOT_PRIM_PATH


def test_every_isaaclab_binding_resolves_and_every_locomotion_kind_is_bound(init):
    from rwmspec.manager import resolve

    _plan, registry, _ = init
    bound = set()
    for (backend, category, name), binding in registry.bindings.items():
        if backend == "isaaclab":
            assert callable(resolve(binding.ref)), f"{category} kind {name!r}: {binding.ref}"
            bound.add((category, name))
    locomotion = {
        key for key in registry.term_kinds if registry.providers[("term_kinds", key)].startswith("locomotion")
    }
    assert locomotion and locomotion <= bound, f"kinds without an isaaclab binding: {sorted(locomotion - bound)}"


def test_runner_config_is_the_shared_rsl_rl_translation(init, ours_runner):
    """Isaac Lab's runner config and the runtime's PPO read one translation of the plan (rwmspec.ppo_config)."""
    from rwmspec.ppo_config import train_cfg

    plan, _, _ = init
    shared = train_cfg(plan)
    ours = to_dict(ours_runner)
    for key in ("num_steps_per_env", "save_interval", "obs_groups", "check_for_nan", "logger"):
        assert ours[key] == shared[key], key
    assert shared["algorithm"].items() <= ours["algorithm"].items()
    for model in ("actor", "critic"):
        expected = {k: v for k, v in shared[model].items() if k != "distribution_cfg"}
        assert expected.items() <= ours[model].items(), model
    assert shared["actor"]["distribution_cfg"].items() <= ours["actor"]["distribution_cfg"].items()


# --------------------------------------------------------------------------------------------------------------------
# rwmspec's own Isaac Lab term functions and the plugin's import weight
# --------------------------------------------------------------------------------------------------------------------
class _Data(SimpleNamespace):
    """Stands in for Isaac Lab 3.0 asset/sensor data: each field is read through ``.torch``."""

    def __init__(self, **tensors):
        super().__init__(**{k: SimpleNamespace(torch=v) for k, v in tensors.items()})


def test_stand_still_counts_deviation_only_while_standing():
    joint_pos = torch.tensor([[0.1, -0.2, 0.0], [0.1, -0.2, 0.0]])
    default = torch.zeros(2, 3)
    robot = SimpleNamespace(data=_Data(joint_pos=joint_pos, default_joint_pos=default))
    command = torch.tensor([[0.0, 0.0, 0.01], [0.5, 0.0, 0.0]])
    env = SimpleNamespace(scene={"robot": robot}, command_manager=SimpleNamespace(get_command=lambda name: command))
    from isaaclab.managers import SceneEntityCfg

    value = mdp.stand_still(env, "base_velocity", 0.05, SceneEntityCfg("robot", joint_ids=slice(None)))
    torch.testing.assert_close(value, torch.tensor([0.3, 0.0]))


def test_body_contact_is_the_peak_force_over_the_history():
    forces = torch.zeros(2, 3, 4, 3)  # [envs, history, bodies, xyz]
    forces[0, 2, 1] = torch.tensor([0.0, 0.0, 1.5])  # old sample above the threshold still counts
    forces[1, 0, 3] = torch.tensor([0.6, 0.0, 0.6])  # norm 0.85: below
    sensor = SimpleNamespace(data=_Data(net_normal_forces_w_history=forces))
    env = SimpleNamespace(scene=SimpleNamespace(sensors={"contact_forces": sensor}))
    entity = SimpleNamespace(name="contact_forces", body_ids=[1, 3])
    flags = mdp.body_contact(env, entity, threshold=1.0)
    assert flags.dtype == torch.float32
    torch.testing.assert_close(flags, torch.tensor([[1.0, 0.0], [0.0, 0.0]]))


def test_plugin_module_stays_light():
    code = (
        "import sys, rwmspec_plugins.isaaclab.plugin, rwmspec_plugins.isaaclab.env, "
        "rwmspec_plugins.isaaclab.compile; "
        "print(sorted(m for m in ('torch', 'isaaclab', 'warp', 'rsl_rl') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
