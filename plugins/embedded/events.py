"""Plan events on the batched physics: start-up randomisation of the models, reset states, interval pushes.

Isaac Lab semantics, with MuJoCo's model fields:

* ``randomize_rigid_body_material``: ``num_buckets`` materials are drawn once; every collision geom of the selected
  bodies in every env picks a bucket. MuJoCo has one sliding friction coefficient per geom: it gets the bucket's
  *static* friction (the robot's geoms have priority over the floor's, so their value is the contact's).
  Restitution is not modelled (the compile step rejects non-zero restitution ranges).
* ``randomize_rigid_body_mass``: mass per env and body by the operation and distribution; the inertia is scaled by
  the same ratio (Isaac Lab ``recompute_inertia``). ``randomize_rigid_body_com``: one offset per env added to the
  centre of mass of the selected bodies. Both are followed by ``mj_setConst``.
* ``reset_root_state_uniform``: default root pose plus offsets (yaw etc. composed after the default orientation),
  world-frame velocities drawn per axis. ``reset_joints_by_scale``: default joint state times a factor per joint,
  clamped to the soft joint limits.
* ``push_by_setting_velocity``: a velocity drawn per axis is added to the world-frame base velocity; each env fires
  when its own timer (drawn from ``interval_range_s``, redrawn on firing and on reset) runs out.
* ``apply_external_force_torque`` with zero ranges (the flat task) applies nothing.

All draws come from the NumPy generator passed in and are drawn for every env of the batch (then masked), so the
random stream does not depend on which envs reset together.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import mujoco
import numpy as np

from rwmspec.plan import Plan, TermPlan
from rwmspec_plugins.embedded import rotations
from rwmspec_plugins.embedded.model import bodies_matching, geoms_of_bodies
from rwmspec_plugins.embedded.physics import BatchedPhysics

STARTUP_KINDS = ("randomize_rigid_body_material", "randomize_rigid_body_mass", "randomize_rigid_body_com")
RESET_KINDS = ("reset_root_state_uniform", "reset_joints_by_scale", "apply_external_force_torque")
INTERVAL_KINDS = ("push_by_setting_velocity",)
POSE_AXES = ("x", "y", "z", "roll", "pitch", "yaw")


def _axis_ranges(ranges: Mapping[str, Sequence[float]], axes: Sequence[str]) -> np.ndarray:
    """``[len(axes), 2]`` low/high per axis; a missing axis is not randomised (0, 0)."""
    return np.array([tuple(ranges.get(axis, (0.0, 0.0))) for axis in axes], dtype=float)


def _uniform(rng: np.random.Generator, bounds: np.ndarray, n: int) -> np.ndarray:
    """``[n, A]`` draws from ``bounds`` ``[A, 2]``."""
    return bounds[:, 0] + (bounds[:, 1] - bounds[:, 0]) * rng.random((n, bounds.shape[0]))


def _sample(rng: np.random.Generator, distribution: str, params: Sequence[float], shape: tuple[int, ...]) -> np.ndarray:
    a, b = params
    if distribution == "uniform":
        return rng.uniform(a, b, shape)
    if distribution == "log_uniform":
        return np.exp(rng.uniform(np.log(a), np.log(b), shape))
    if distribution == "gaussian":
        return rng.normal(a, b, shape)
    raise ValueError(f"unknown distribution {distribution!r}; use uniform, log_uniform or gaussian")


def _apply_operation(default: np.ndarray, sample: np.ndarray, operation: str) -> np.ndarray:
    if operation == "add":
        return default + sample
    if operation == "scale":
        return default * sample
    if operation == "abs":
        return sample
    raise ValueError(f"unknown operation {operation!r}; use add, scale or abs")


# ---------------------------------------------------------------------------------------------------------------------
# start-up: per-env models
# ---------------------------------------------------------------------------------------------------------------------
def build_env_models(
    model: mujoco.MjModel, events: Sequence[TermPlan], num_envs: int, rng: np.random.Generator, *, variants: int = 0
) -> list[mujoco.MjModel]:
    """One model per env with the start-up events applied (``[model] * N`` when there are none).

    :param variants: number of distinct models; 0 gives every env its own (Isaac Lab semantics). With ``K > 0``
        env ``i`` uses variant ``i % K``, trading randomisation diversity for memory (about 170 kB per model).
    """
    startup = [e for e in events if e.mode == "startup"]
    if not startup:
        return [model] * num_envs
    count = num_envs if variants <= 0 else min(variants, num_envs)
    models = [copy.copy(model) for _ in range(count)]
    for event in startup:
        if event.kind == "randomize_rigid_body_material":
            _randomize_material(model, models, event.params, rng)
        elif event.kind == "randomize_rigid_body_mass":
            _randomize_mass(model, models, event.params, rng)
        elif event.kind == "randomize_rigid_body_com":
            _randomize_com(model, models, event.params, rng)
        else:
            raise ValueError(
                f"event {event.name!r}: kind {event.kind!r} cannot run at start-up on the embedded "
                f"backend (start-up kinds: {', '.join(STARTUP_KINDS)})"
            )
    data = mujoco.MjData(model)
    for m in models:
        mujoco.mj_setConst(m, data)  # derived constants (subtree masses, inverse weights) of the new inertias
    return [models[i % count] for i in range(num_envs)]


def _randomize_material(
    model: mujoco.MjModel, models: list[mujoco.MjModel], params: Mapping[str, Any], rng: np.random.Generator
) -> None:
    geoms = geoms_of_bodies(model, params.get("body_names", ".*"))
    num_buckets = int(params.get("num_buckets", 64))
    static = rng.uniform(*params["static_friction_range"], size=num_buckets)
    bucket = rng.integers(0, num_buckets, size=(len(models), len(geoms)))
    for m, choice in zip(models, bucket, strict=True):
        m.geom_friction[geoms, 0] = static[choice]


def _randomize_mass(
    model: mujoco.MjModel, models: list[mujoco.MjModel], params: Mapping[str, Any], rng: np.random.Generator
) -> None:
    bodies = bodies_matching(model, params.get("body_names", "base"))
    default = model.body_mass[bodies]
    sample = _sample(
        rng, params.get("distribution", "uniform"), params["mass_distribution_params"], (len(models), len(bodies))
    )
    masses = np.clip(_apply_operation(default, sample, params["operation"]), 1e-6, None)
    for m, mass in zip(models, masses, strict=True):
        m.body_mass[bodies] = mass
        m.body_inertia[bodies] = model.body_inertia[bodies] * (mass / default)[:, None]


def _randomize_com(
    model: mujoco.MjModel, models: list[mujoco.MjModel], params: Mapping[str, Any], rng: np.random.Generator
) -> None:
    bodies = bodies_matching(model, params.get("body_names", "base"))
    offsets = _uniform(rng, _axis_ranges(params["com_range"], ("x", "y", "z")), len(models))
    for m, offset in zip(models, offsets, strict=True):
        m.body_ipos[bodies] = model.body_ipos[bodies] + offset


# ---------------------------------------------------------------------------------------------------------------------
# reset and interval events on the state array
# ---------------------------------------------------------------------------------------------------------------------
class ResetEvents:
    """Writes the reset state of a set of envs: the default state, then each reset event in plan order."""

    def __init__(
        self, plan: Plan, physics: BatchedPhysics, default_state: np.ndarray, soft_joint_limits: np.ndarray | None
    ) -> None:
        self.events = [e for e in plan.events if e.mode == "reset"]
        for e in self.events:
            if e.kind not in RESET_KINDS:
                raise ValueError(
                    f"event {e.name!r}: kind {e.kind!r} cannot run at reset on the embedded backend "
                    f"(reset kinds: {', '.join(RESET_KINDS)})"
                )
        self.physics = physics
        self.default_state = default_state
        idx = physics.index
        self.default_joint_pos = default_state[idx.joint_pos]
        self.default_joint_vel = default_state[idx.joint_vel]
        self.soft_joint_limits = soft_joint_limits

    def apply(self, mask: np.ndarray, rng: np.random.Generator) -> None:
        """Reset the envs in ``mask`` (``[N]`` bool)."""
        if not mask.any():
            return
        self.physics.state[mask] = self.default_state
        for event in self.events:
            if event.kind == "reset_root_state_uniform":
                self._root_state(mask, event.params, rng)
            elif event.kind == "reset_joints_by_scale":
                self._joints(mask, event.params, rng)
            # apply_external_force_torque: the compile step admits zero ranges only, i.e. no wrench

    def _root_state(self, mask: np.ndarray, params: Mapping[str, Any], rng: np.random.Generator) -> None:
        n, idx, state = self.physics.num_envs, self.physics.index, self.physics.state
        pose = _uniform(rng, _axis_ranges(params.get("pose_range", {}), POSE_AXES), n)[mask]
        velocity = _uniform(rng, _axis_ranges(params.get("velocity_range", {}), POSE_AXES), n)[mask]
        default_quat = np.broadcast_to(self.default_state[idx.base_quat], (len(pose), 4))
        quat = rotations.multiply(default_quat, rotations.from_euler_xyz(pose[:, 3], pose[:, 4], pose[:, 5]))
        state[np.ix_(mask, idx.base_pos)] = self.default_state[idx.base_pos] + pose[:, :3]
        state[np.ix_(mask, idx.base_quat)] = quat
        self.physics.set_root_velocity_w(mask, velocity[:, :3], velocity[:, 3:])

    def _joints(self, mask: np.ndarray, params: Mapping[str, Any], rng: np.random.Generator) -> None:
        n, idx, state = self.physics.num_envs, self.physics.index, self.physics.state
        joints = len(idx.joint_pos)
        pos_scale = rng.uniform(*params["position_range"], size=(n, joints))[mask]
        vel_scale = rng.uniform(*params["velocity_range"], size=(n, joints))[mask]
        pos = self.default_joint_pos * pos_scale
        if self.soft_joint_limits is not None:
            pos = np.clip(pos, self.soft_joint_limits[:, 0], self.soft_joint_limits[:, 1])
        state[np.ix_(mask, idx.joint_pos)] = pos
        state[np.ix_(mask, idx.joint_vel)] = self.default_joint_vel * vel_scale


class IntervalEvents:
    """Per-env timers of the interval events; ``step`` fires the envs whose timer ran out."""

    def __init__(self, plan: Plan, physics: BatchedPhysics, rng: np.random.Generator) -> None:
        self.events = [e for e in plan.events if e.mode == "interval"]
        for e in self.events:
            if e.kind not in INTERVAL_KINDS:
                raise ValueError(
                    f"event {e.name!r}: kind {e.kind!r} cannot run at intervals on the embedded "
                    f"backend (interval kinds: {', '.join(INTERVAL_KINDS)})"
                )
            if e.interval_range_s is None:
                raise ValueError(f"interval event {e.name!r} has no interval_range_s")
        self.physics = physics
        n = physics.num_envs
        self.time_left = (
            np.stack([rng.uniform(*e.interval_range_s, size=n) for e in self.events])
            if self.events
            else np.zeros((0, n))
        )
        #: ``[N]`` bool, envs pushed by the last ``step`` (any interval event)
        self.fired = np.zeros(n, dtype=bool)

    def reset(self, mask: np.ndarray, rng: np.random.Generator) -> None:
        """Redraw the timers of the envs in ``mask`` (an env reset restarts its intervals)."""
        for i, e in enumerate(self.events):
            drawn = rng.uniform(*e.interval_range_s, size=self.physics.num_envs)
            self.time_left[i] = np.where(mask, drawn, self.time_left[i])

    def step(self, dt: float, rng: np.random.Generator) -> np.ndarray:
        """Count down by ``dt`` and fire the due envs. Returns ``[N]`` bool of the envs that fired."""
        n = self.physics.num_envs
        self.fired = np.zeros(n, dtype=bool)
        for i, event in enumerate(self.events):
            self.time_left[i] -= dt
            due = self.time_left[i] < 1e-6
            drawn = rng.uniform(*event.interval_range_s, size=n)
            self.time_left[i] = np.where(due, drawn, self.time_left[i])
            delta = _uniform(rng, _axis_ranges(event.params.get("velocity_range", {}), POSE_AXES), n)
            if due.any():
                lin, ang = self.physics.root_velocity_w(due)
                self.physics.set_root_velocity_w(due, lin + delta[due, :3], ang + delta[due, 3:])
            self.fired |= due
        return self.fired
