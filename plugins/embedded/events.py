"""The embedded backend's event terms: start-up randomisation of the per-env MuJoCo models and reset states.

They are bound to their kinds through ``TermBinding("embedded", "event", kind)`` and run by the runtime's
``EventManager`` (``rwmspec_runtime.mdp.events``), which also keeps the interval timers; the push
(``push_by_setting_velocity``) is the locomotion plugin's backend-neutral term, applied through
``EmbeddedVecEnv.add_root_velocity``. Isaac Lab semantics, with MuJoCo's model fields:

* ``randomize_rigid_body_material``: ``num_buckets`` materials are drawn once; every collision geom of the selected
  bodies in every env picks a bucket. MuJoCo has one sliding friction coefficient per geom: it gets the bucket's
  *static* friction (the robot's geoms have priority over the floor's, so their value is the contact's).
  Restitution is not modelled (the compile step rejects non-zero restitution ranges).
* ``randomize_rigid_body_mass``: mass per env and body by the operation and distribution; the inertia is scaled by
  the same ratio (Isaac Lab ``recompute_inertia``). ``randomize_rigid_body_com``: one offset per env added to the
  centre of mass of the selected bodies. ``build_env_models`` follows them with ``mj_setConst``.
* ``reset_root_state_uniform``: default root pose plus offsets (yaw etc. composed after the default orientation),
  world-frame velocities drawn per axis. ``reset_joints_by_scale``: default joint state times a factor per joint,
  clamped to the soft joint limits.
* ``apply_external_force_torque`` with zero ranges (the flat task) applies nothing.

Start-up terms act on ``ModelVariants``; reset terms on the env (its ``physics``, ``default_state`` and
``soft_joint_limits``). All draws come from the NumPy generator the manager passes and are drawn for every env (or
model) and then masked, so the random stream does not depend on which envs reset together. None of them draws
pre-drawn uniforms (``uniform_draws = None``): they run on the real envs only.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np
import torch

from rwmspec_plugins.embedded import rotations
from rwmspec_plugins.embedded.model import bodies_matching, geoms_of_bodies
from rwmspec_runtime.mdp import EventManager

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
@dataclass
class ModelVariants:
    """What start-up events change: copies of the compiled ``model``, one per env or shared round-robin."""

    model: mujoco.MjModel
    models: list[mujoco.MjModel]


def build_env_models(
    model: mujoco.MjModel, events: EventManager, num_envs: int, rng: np.random.Generator, *, variants: int = 0
) -> list[mujoco.MjModel]:
    """One model per env with the start-up events applied (``[model] * N`` when there are none).

    :param variants: number of distinct models; 0 gives every env its own (Isaac Lab semantics). With ``K > 0``
        env ``i`` uses variant ``i % K``, trading randomisation diversity for memory (about 170 kB per model).
    """
    if not events.by_mode["startup"]:
        return [model] * num_envs
    count = num_envs if variants <= 0 else min(variants, num_envs)
    target = ModelVariants(model, [copy.copy(model) for _ in range(count)])
    events.startup(target, rng)
    data = mujoco.MjData(model)
    for m in target.models:
        mujoco.mj_setConst(m, data)  # derived constants (subtree masses, inverse weights) of the new inertias
    return [target.models[i % count] for i in range(num_envs)]


class RandomizeRigidBodyMaterial:
    uniform_draws = None

    def __init__(
        self,
        *,
        static_friction_range: Sequence[float],
        dynamic_friction_range: Sequence[float],
        restitution_range: Sequence[float],
        num_buckets: int = 64,
        body_names: str = ".*",
    ) -> None:
        # MuJoCo's sliding friction is one coefficient: the static one; dynamic friction and restitution are not
        # modelled (the compile step rejects a non-zero restitution range)
        self.static_friction_range = tuple(static_friction_range)
        self.num_buckets = int(num_buckets)
        self.body_names = body_names

    def __call__(self, target: ModelVariants, mask: None, rng: np.random.Generator) -> None:
        geoms = geoms_of_bodies(target.model, self.body_names)
        static = rng.uniform(*self.static_friction_range, size=self.num_buckets)
        bucket = rng.integers(0, self.num_buckets, size=(len(target.models), len(geoms)))
        for m, choice in zip(target.models, bucket, strict=True):
            m.geom_friction[geoms, 0] = static[choice]


class RandomizeRigidBodyMass:
    uniform_draws = None

    def __init__(
        self,
        *,
        mass_distribution_params: Sequence[float],
        operation: str,
        distribution: str = "uniform",
        body_names: str = "base",
    ) -> None:
        self.params = tuple(mass_distribution_params)
        self.operation = operation
        self.distribution = distribution
        self.body_names = body_names

    def __call__(self, target: ModelVariants, mask: None, rng: np.random.Generator) -> None:
        model = target.model
        bodies = bodies_matching(model, self.body_names)
        default = model.body_mass[bodies]
        sample = _sample(rng, self.distribution, self.params, (len(target.models), len(bodies)))
        masses = np.clip(_apply_operation(default, sample, self.operation), 1e-6, None)
        for m, mass in zip(target.models, masses, strict=True):
            m.body_mass[bodies] = mass
            m.body_inertia[bodies] = model.body_inertia[bodies] * (mass / default)[:, None]


class RandomizeRigidBodyCom:
    uniform_draws = None

    def __init__(self, *, com_range: Mapping[str, Sequence[float]], body_names: str = "base") -> None:
        self.bounds = _axis_ranges(com_range, ("x", "y", "z"))
        self.body_names = body_names

    def __call__(self, target: ModelVariants, mask: None, rng: np.random.Generator) -> None:
        bodies = bodies_matching(target.model, self.body_names)
        offsets = _uniform(rng, self.bounds, len(target.models))
        for m, offset in zip(target.models, offsets, strict=True):
            m.body_ipos[bodies] = target.model.body_ipos[bodies] + offset


# ---------------------------------------------------------------------------------------------------------------------
# reset: the state array of the envs that reset (the env has written their default state first)
# ---------------------------------------------------------------------------------------------------------------------
class ResetRootStateUniform:
    uniform_draws = None

    def __init__(
        self, *, pose_range: Mapping[str, Sequence[float]], velocity_range: Mapping[str, Sequence[float]]
    ) -> None:
        self.pose = _axis_ranges(pose_range, POSE_AXES)
        self.velocity = _axis_ranges(velocity_range, POSE_AXES)

    def __call__(self, env: Any, mask: torch.Tensor, rng: np.random.Generator) -> None:
        physics, rows = env.physics, mask.numpy()
        idx, state, n = physics.index, physics.state, physics.num_envs
        pose = _uniform(rng, self.pose, n)[rows]
        velocity = _uniform(rng, self.velocity, n)[rows]
        default = env.default_state
        default_quat = np.broadcast_to(default[idx.base_quat], (len(pose), 4))
        quat = rotations.multiply(default_quat, rotations.from_euler_xyz(pose[:, 3], pose[:, 4], pose[:, 5]))
        state[np.ix_(rows, idx.base_pos)] = default[idx.base_pos] + pose[:, :3]
        state[np.ix_(rows, idx.base_quat)] = quat
        physics.set_root_velocity_w(rows, velocity[:, :3], velocity[:, 3:])


class ResetJointsByScale:
    uniform_draws = None

    def __init__(self, *, position_range: Sequence[float], velocity_range: Sequence[float]) -> None:
        self.position_range = tuple(position_range)
        self.velocity_range = tuple(velocity_range)

    def __call__(self, env: Any, mask: torch.Tensor, rng: np.random.Generator) -> None:
        physics, rows = env.physics, mask.numpy()
        idx, state, n = physics.index, physics.state, physics.num_envs
        joints = len(idx.joint_pos)
        pos_scale = rng.uniform(*self.position_range, size=(n, joints))[rows]
        vel_scale = rng.uniform(*self.velocity_range, size=(n, joints))[rows]
        pos = env.default_state[idx.joint_pos] * pos_scale
        if env.soft_joint_limits is not None:
            pos = np.clip(pos, env.soft_joint_limits[:, 0], env.soft_joint_limits[:, 1])
        state[np.ix_(rows, idx.joint_pos)] = pos
        state[np.ix_(rows, idx.joint_vel)] = env.default_state[idx.joint_vel] * vel_scale


class ApplyExternalForceTorque:
    """Admitted with zero ranges only (the compile step checks): no wrench to apply."""

    uniform_draws = 0

    def __init__(
        self, *, force_range: Sequence[float], torque_range: Sequence[float], body_names: str = "base"
    ) -> None:
        pass

    def __call__(self, env: Any, mask: torch.Tensor, rng: np.random.Generator) -> None:
        pass
