"""Embedded backend below the env: compile checks, the MuJoCo model it builds, actuators, start-up and reset events."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import attrs
import mujoco
import numpy as np
import pytest
import torch

from rwmspec import api
from rwmspec.diagnostics import SpecError
from rwmspec.manager import get_registry
from rwmspec.plan import TermPlan
from rwmspec_plugins.embedded.compile import EmbeddedConfig, compile_embedded
from rwmspec_plugins.embedded.env import EmbeddedVecEnv
from rwmspec_plugins.embedded.events import build_env_models
from rwmspec_plugins.embedded.model import actuator_parameters, build_model, plan_actuator
from rwmspec_plugins.embedded.physics import BatchedPhysics
from rwmspec_plugins.embedded.plugin import EmbeddedOptions
from rwmspec_runtime.mdp import EventManager

from helpers import SPECS, TINY, compile_tiny

SPEC = SPECS / "anymal_d_pretrain.toml"


@pytest.fixture(scope="module")
def plan():
    return compile_tiny(SPEC.name)


@pytest.fixture(scope="module")
def robot(plan):
    return get_registry().robots[plan.robot.name]


@pytest.fixture(scope="module")
def built(plan):
    return build_model(plan, compile_embedded(plan, get_registry()).objects["config"].mjcf)


# ---------------------------------------------------------------------------------------------------------------------
# compile
# ---------------------------------------------------------------------------------------------------------------------
def test_compile_returns_config_and_dump(plan):
    artifacts = compile_embedded(plan, get_registry())
    assert artifacts.backend == "embedded"
    assert isinstance(artifacts.objects["config"], EmbeddedConfig)
    assert artifacts.objects["config"].options == EmbeddedOptions()
    assert '"control_dt": 0.02' in artifacts.dumps["embedded.json"]


def test_compile_rejects_unsupported_kinds_naming_term_and_supported_kinds(plan):
    bad = plan.terminations + (TermPlan(name="fell_asleep", kind="bad_orientation", mode="failure"),)
    # the push term runs with the env (reset, interval), which start-up events, acting on the models, do not have
    bad_event = TermPlan(
        name="push_now", kind="push_by_setting_velocity", mode="startup", params={"velocity_range": {}}
    )
    broken = attrs.evolve(plan, terminations=bad, events=plan.events + (bad_event,))
    with pytest.raises(SpecError) as info:
        compile_embedded(broken, get_registry())
    found = {d.path: d for d in info.value.diagnostics}
    assert all(d.code == "RWM402" for d in found.values())
    term = found[("terminations", "fell_asleep", "kind")]
    assert "bad_orientation" in term.message and "time_out, illegal_contact" in term.hint
    event = found[("events", "push_now", "kind")]
    assert "mode reset, interval" in event.message


def test_compile_rejects_restitution_wrench_and_bad_options(plan):
    events = []
    for e in plan.events:
        if e.kind == "randomize_rigid_body_material":
            e = attrs.evolve(e, params={**e.params, "restitution_range": (0.0, 0.5)})
        if e.kind == "apply_external_force_torque":
            e = attrs.evolve(e, params={**e.params, "force_range": (-1.0, 1.0)})
        events.append(e)
    broken = attrs.evolve(
        plan, events=tuple(events), sim=attrs.evolve(plan.sim, options={"num_threads": -1, "no_such_option": 1})
    )
    with pytest.raises(SpecError) as info:
        compile_embedded(broken, get_registry())
    paths = {d.path for d in info.value.diagnostics}
    assert ("events", "physics_material", "restitution_range") in paths
    assert ("events", "base_external_force_torque", "force_range") in paths
    # a plan built by hand skipped validate: its options get validate's own diagnostic (RWM213) at compile time
    options = next(d for d in info.value.diagnostics if d.path[:2] == ("backend", "options"))
    assert "no_such_option" in options.message and options.code == "RWM213"


def test_validate_reports_out_of_range_options():
    result = api.load_and_compile(
        SPEC, overlays=[TINY], sets=["backend.options.num_threads=-2", "backend.options.contact_history=0"]
    )
    found = {d.path: d for d in result.diagnostics}
    assert result.plan is None
    assert found[("backend", "options", "num_threads")].code == "RWM213"
    assert "contact_history" in found[("backend", "options", "contact_history")].message


# ---------------------------------------------------------------------------------------------------------------------
# model and actuators
# ---------------------------------------------------------------------------------------------------------------------
def test_model_uses_plan_timestep_and_only_backend_sensors(plan, built):
    model, index = built
    assert model.opt.timestep == pytest.approx(plan.sim.physics_dt)
    joints = len(plan.robot.joint_names)
    bodies = len({b for group in plan.robot.contact_bodies.values() for b in group})
    assert model.nsensordata == joints + 3 * bodies
    assert index.joint_pos.shape == (joints,) and index.actuator.shape == (joints,)
    assert set(index.contact_force) == set(plan.robot.contact_bodies)


def _isaac_lab_dc_motor(q, qd, target, kp, kd, saturation, effort, velocity_limit):
    torque = kp * (target - q) - kd * qd
    upper = np.clip(saturation * (1.0 - qd / velocity_limit), 0.0, effort)
    lower = np.clip(saturation * (-1.0 - qd / velocity_limit), -effort, 0.0)
    return np.clip(torque, lower, upper)


def test_dc_motor_actuator_matches_isaac_lab_within_rated_speed(plan, built):
    """MuJoCo's dcmotor with the derived constants reproduces Isaac Lab's DCMotor torque-speed clip (with the gains
    the plan's robot options give)."""
    model, index = built
    a = plan_actuator(plan)
    assert actuator_parameters(a).dc_motor
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    for _ in range(50):
        q = rng.uniform(-1.0, 1.0, len(index.joint_pos))
        qd = rng.uniform(-0.99, 0.99, len(index.joint_pos)) * a.velocity_limit
        target = q + rng.uniform(-3.0, 3.0, len(index.joint_pos))
        data.qpos[index.joint_pos - 1] = q
        data.qvel[index.joint_vel - 1 - model.nq] = qd
        data.ctrl[index.actuator] = target
        mujoco.mj_forward(model, data)
        expected = _isaac_lab_dc_motor(
            q, qd, target, a.stiffness, a.damping, a.saturation_effort, a.effort_limit, a.velocity_limit
        )
        np.testing.assert_allclose(data.sensordata[index.joint_torque], expected, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------------
# events
# ---------------------------------------------------------------------------------------------------------------------
def test_startup_randomisation_is_per_env_and_within_ranges(plan, built):
    model, _ = built
    events = EventManager(plan.events, get_registry(), "embedded")
    models = build_env_models(model, events, 6, np.random.default_rng(1))
    assert len({id(m) for m in models}) == 6
    base = model.body("base").id
    ratios = np.array([m.body_mass[base] for m in models]) / model.body_mass[base]
    assert np.all((ratios >= 0.8) & (ratios <= 1.25)) and len(set(ratios)) == 6
    for m in models:
        np.testing.assert_allclose(
            m.body_inertia[base] / model.body_inertia[base], m.body_mass[base] / model.body_mass[base]
        )
        offset = m.body_ipos[base] - model.body_ipos[base]
        assert np.all(np.abs(offset) <= [0.05, 0.05, 0.01])
        assert np.all(m.geom_friction[model.geom_contype > 0, 0] == pytest.approx(0.8))
        assert m.body_subtreemass[0] == pytest.approx(
            model.body_subtreemass[0] + m.body_mass[base] - model.body_mass[base]
        )
    shared = build_env_models(model, events, 6, np.random.default_rng(1), variants=2)
    assert len({id(m) for m in shared}) == 2 and shared[0] is shared[2]


def _physics(plan, built, n=4):
    model, index = built
    return BatchedPhysics([model] * n, index, decimation=plan.sim.decimation, num_threads=1)


def test_reset_events_draw_root_and_joint_states_in_range(plan, robot, built):
    physics = _physics(plan, built, n=64)
    model, index = built
    default = np.zeros(index.nstate)
    default[index.base_pos] = (0.0, 0.0, 0.6)
    default[index.base_quat] = (1.0, 0.0, 0.0, 0.0)
    default[index.joint_pos] = robot.default_joint_pos
    events = EventManager(plan.events, get_registry(), "embedded")
    env = SimpleNamespace(physics=physics, default_state=default, soft_joint_limits=None)
    mask = np.zeros(64, dtype=bool)
    mask[::2] = True
    physics.state[:] = -7.0
    physics.state[mask] = default  # what the env writes before the reset events
    events.reset(env, torch.from_numpy(mask), np.random.default_rng(2))
    assert np.all(physics.state[~mask] == -7.0)
    rows = physics.state[mask]
    assert np.all(np.abs(rows[:, index.base_pos[:2]]) <= 0.5) and np.allclose(rows[:, index.base_pos[2]], 0.6)
    np.testing.assert_allclose(np.linalg.norm(rows[:, index.base_quat], axis=1), 1.0)
    lin, ang = physics.root_velocity_w(mask)
    assert np.all(np.abs(lin) <= 0.5 + 1e-9) and np.all(np.abs(ang) <= 0.5 + 1e-9)
    factor = rows[:, index.joint_pos[4:]] / np.asarray(robot.default_joint_pos[4:])
    assert np.all((factor >= 0.5) & (factor <= 1.5)) and factor.std() > 0.1
    assert np.all(rows[:, index.joint_pos[:4]] == 0.0)  # HAA default 0 stays 0 when scaled


def test_interval_push_fires_on_its_timer_and_adds_velocity(plan, built):
    push = TermPlan(
        name="push",
        kind="push_by_setting_velocity",
        mode="interval",
        interval_range_s=(0.1, 0.1),
        params={"velocity_range": {"x": (1.0, 1.0), "yaw": (0.5, 0.5)}},
    )
    physics = _physics(plan, built)
    physics.state[:, physics.index.base_quat] = (np.cos(0.3), 0.0, 0.0, np.sin(0.3))  # yawed base
    env = SimpleNamespace(physics=physics, num_envs=4)
    env.add_root_velocity = functools.partial(EmbeddedVecEnv.add_root_velocity, env)
    events = EventManager((push,), get_registry(), "embedded")
    time_left = events.draw_timers(4, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    fired = []
    for _ in range(5):
        time_left, pushed = events.interval(env, time_left, 0.02, rng)
        fired.append(bool(pushed.all()))
    assert fired == [False, False, False, False, True]
    lin, ang = physics.root_velocity_w(np.ones(4, dtype=bool))
    np.testing.assert_allclose(lin, [[1.0, 0.0, 0.0]] * 4, atol=1e-12)
    np.testing.assert_allclose(ang, [[0.0, 0.0, 0.5]] * 4, atol=1e-12)


def test_physics_reports_unstable_envs(plan, built):
    physics = _physics(plan, built, n=3)
    model, index = built
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    mujoco.mj_getState(model, data, physics.state[0], mujoco.mjtState.mjSTATE_FULLPHYSICS.value)
    physics.state[1:] = physics.state[0]
    targets = np.tile(np.asarray(get_registry().robots["anymal_d"].default_joint_pos), (3, 1))
    targets[1] = np.nan
    unstable = physics.step(targets)
    assert unstable.tolist() == [False, True, False]
