"""N MuJoCo worlds stepped together: one ``mujoco.rollout`` call per control step, all states in one array.

The state of every env lives in ``state`` (``[N, nstate]`` float64, MuJoCo's full physics state: time, qpos,
qvel, ...). A control step hands that array, the actuator targets held over ``decimation`` substeps and the per-env
models to a persistent ``mujoco.rollout.Rollout`` thread pool; the C threads release the GIL, step every env and
write the trajectory and the sensor values of each substep into preallocated buffers. The PD (and DC-motor) law
runs inside MuJoCo's actuators at every substep, so Python never touches an individual env.

``rollout`` starts each call from the given states with a zero solver warm start; results do not depend on which
thread stepped which env, so a seed gives the same numbers for any thread count.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import mujoco
import numpy as np
from mujoco import rollout

from rwmspec_plugins.embedded import rotations
from rwmspec_plugins.embedded.model import ModelIndex

CONTROL_SPEC = mujoco.mjtState.mjSTATE_CTRL.value
#: Envs per thread-pool task for ``chunk_size = 0``: this many tasks per thread balance uneven contact loads.
TASKS_PER_THREAD = 4
#: speed (m/s or rad/s) beyond which an env's simulation counts as diverged: far above what a legged robot reaches
#: (ANYmal's joints stay below about 20 rad/s, its base below 5 m/s) and far below MuJoCo's own 1e10 check
MAX_SPEED = 200.0


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_threads(num_threads: int) -> int:
    return num_threads if num_threads > 0 else available_cores()


def resolve_chunk_size(num_envs: int, threads: int, chunk_size: int) -> int:
    if chunk_size > 0:
        return chunk_size
    return max(1, math.ceil(num_envs / (TASKS_PER_THREAD * threads)))


class BatchedPhysics:
    """Physics of ``N = len(models)`` envs; ``models`` are compatible MjModels (one per env, possibly shared)."""

    def __init__(
        self,
        models: Sequence[mujoco.MjModel],
        index: ModelIndex,
        *,
        decimation: int,
        num_threads: int = 0,
        chunk_size: int = 0,
        contact_history: int = 1,
    ) -> None:
        if decimation < 1:
            raise ValueError(f"decimation must be >= 1, got {decimation}")
        self.models = list(models)
        self.index = index
        self.num_envs = len(self.models)
        self.decimation = decimation
        self.physics_dt = float(self.models[0].opt.timestep)
        self.threads = resolve_threads(num_threads)
        self.chunk_size = resolve_chunk_size(self.num_envs, self.threads, chunk_size)
        #: substeps whose contact forces count (Isaac Lab's contact-sensor history), at most one control step
        self.contact_history = max(1, min(contact_history, decimation))
        # one MjData per worker thread; a pool of 0 threads steps on the calling thread
        self._pool = rollout.Rollout(nthread=self.threads if self.threads > 1 else 0)
        self._datas = [mujoco.MjData(self.models[0]) for _ in range(self.threads)]
        n, nstate = self.num_envs, index.nstate
        self.state = np.zeros((n, nstate))
        self._trajectory = np.zeros((n, decimation, nstate))
        #: sensor values after each substep of the last control step, ``[N, decimation, nsensordata]``
        self.sensordata = np.zeros((n, decimation, index.nsensordata))
        self._control = np.zeros((n, decimation, index.nu))
        self._speed_cols = np.concatenate([index.base_lin_vel, index.base_ang_vel, index.joint_vel])
        #: contact-group body columns: all groups' force columns in one gather, and each group's body slice
        groups = list(index.contact_force)
        cols = np.concatenate([index.contact_force[g].reshape(-1) for g in groups]) if groups else np.zeros(0, int)
        contiguous = len(cols) > 0 and np.array_equal(cols, np.arange(cols[0], cols[0] + len(cols)))
        # a slice reads the sensor buffer in place; a column list would copy it first
        self._contact_cols: slice | np.ndarray = slice(int(cols[0]), int(cols[0]) + len(cols)) if contiguous else cols
        sizes = [len(index.contact_force[g]) for g in groups]
        starts = np.cumsum([0, *sizes])
        self.contact_slices = {
            g: slice(int(a), int(b)) for g, a, b in zip(groups, starts[:-1], starts[1:], strict=True)
        }

    def close(self) -> None:
        """Stop the worker threads (also done when the object is garbage collected)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    # ---------------------------------------------------------------------------------------------------------------
    # stepping
    # ---------------------------------------------------------------------------------------------------------------
    def step(self, targets: np.ndarray) -> np.ndarray:
        """Advance all envs by one control step with joint targets ``[N, J]`` (plan joint order).

        :return: ``[N]`` bool, envs whose simulation went unstable (MuJoCo reset them to the model's default
            state mid-step); the caller must reset them.
        """
        if self._pool is None:
            raise RuntimeError("the physics pool was closed")
        self._control[:, :, self.index.actuator] = targets[:, None, :]
        start_time = self.state[:, 0].copy()
        self._pool.rollout(
            self.models,
            self._datas,
            self.state,
            self._control,
            control_spec=CONTROL_SPEC,
            skip_checks=True,
            nstep=self.decimation,
            state=self._trajectory,
            sensordata=self.sensordata,
            chunk_size=self.chunk_size,
        )
        self.state[:] = self._trajectory[:, -1]
        # an unstable env is reset by mj_step (time restarts at 0) and its rollout stops advancing; one whose speeds
        # ran away without tripping MuJoCo's own check would feed huge observations to the policy, whose huge
        # actions then poison PPO's value targets: both count as unstable
        expected = start_time + (self.decimation - 0.5) * self.physics_dt
        speeds = np.abs(self.state[:, self._speed_cols]).max(axis=1)
        return ~(self.state[:, 0] > expected) | ~np.isfinite(self.state).all(axis=1) | ~(speeds < MAX_SPEED)

    def clear_sensors(self, mask: np.ndarray) -> None:
        """Zero the sensor values of the envs in ``mask`` (a reset env has no torques or contact forces yet)."""
        self.sensordata[mask] = 0.0

    # ---------------------------------------------------------------------------------------------------------------
    # read-out, all ``[N, ...]`` float64 views or new arrays
    # ---------------------------------------------------------------------------------------------------------------
    @property
    def base_quat(self) -> np.ndarray:
        return self.state[:, self.index.base_quat]

    def base_lin_vel_b(self) -> np.ndarray:
        """Base linear velocity in the base frame, ``[N, 3]``."""
        return rotations.rotate_inverse(self.base_quat, self.state[:, self.index.base_lin_vel])

    def base_ang_vel_b(self) -> np.ndarray:
        """Base angular velocity in the base frame (a free joint's angular velocity is body-frame), ``[N, 3]``."""
        return self.state[:, self.index.base_ang_vel]

    def projected_gravity(self) -> np.ndarray:
        """Unit gravity direction in the base frame, ``[N, 3]``: minus the third row of ``R(q)``."""
        w, x, y, z = self.base_quat.T
        return -np.stack([2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y)], axis=-1)

    def heading(self) -> np.ndarray:
        """Yaw of the base's forward axis (rad), ``[N]``."""
        return rotations.heading(self.base_quat)

    def joint_pos(self) -> np.ndarray:
        return self.state[:, self.index.joint_pos]

    def joint_vel(self) -> np.ndarray:
        return self.state[:, self.index.joint_vel]

    def joint_torque(self) -> np.ndarray:
        """Joint torque the actuators applied in the last substep, ``[N, J]``."""
        return self.sensordata[:, -1, self.index.joint_torque]

    def contact_force_sq_max(self) -> np.ndarray:
        """Largest squared net contact force norm over the contact history of every contact-group body, ``[N, B]``.

        Bodies are in ``contact_slices`` order (groups concatenated); squared, so a threshold test needs no root.
        """
        forces = self.sensordata[:, -self.contact_history :, self._contact_cols]  # [N, H, B * 3]
        forces = forces.reshape(self.num_envs, forces.shape[1], -1, 3)
        return np.einsum("nhbk,nhbk->nhb", forces, forces).max(axis=1)

    def contact_force_norm(self, group: str) -> np.ndarray:
        """Largest net contact force norm of each body of ``group`` over the contact history, ``[N, B_g]``."""
        return np.sqrt(self.contact_force_sq_max()[:, self.contact_slices[group]])

    # ---------------------------------------------------------------------------------------------------------------
    # writing states (resets, pushes)
    # ---------------------------------------------------------------------------------------------------------------
    def set_root_velocity_w(self, mask: np.ndarray, lin_vel_w: np.ndarray, ang_vel_w: np.ndarray) -> None:
        """Set the base velocity of the envs in ``mask`` from world-frame linear and angular velocities."""
        quat = self.state[mask][:, self.index.base_quat]
        self.state[np.ix_(mask, self.index.base_lin_vel)] = lin_vel_w
        self.state[np.ix_(mask, self.index.base_ang_vel)] = rotations.rotate_inverse(quat, ang_vel_w)

    def root_velocity_w(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World-frame linear and angular base velocities of the envs in ``mask``, each ``[M, 3]``."""
        rows = self.state[mask]
        return rows[:, self.index.base_lin_vel], rotations.rotate(
            rows[:, self.index.base_quat], rows[:, self.index.base_ang_vel]
        )
