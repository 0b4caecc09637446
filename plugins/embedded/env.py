"""``EmbeddedVecEnv``: the plan's MDP on batched MuJoCo physics, behind rsl-rl-lib 5.x's VecEnv interface.

One ``step`` follows Isaac Lab's ``ManagerBasedRLEnv.step``:

1. actions -> joint targets (``default + scale * action``); ``decimation`` physics substeps in one rollout call;
2. ``episode_length_buf += 1``; the post-physics ``StateView`` (contact flags over the group thresholds, contact
   timers advanced);
3. terminations and rewards from the shared term functions; per-term episode sums;
4. envs that are done: their ``system_*`` observations are kept as ``extras["terminal_observations"]``, the
   episode sums and termination counts go to ``extras["log"]``, and they are reset (reset events, zero actions,
   zero timers, new command, new interval timers, no torques or contacts until the next physics step);
5. commands advance (heading control, resampling), interval events (pushes) fire;
6. all observation groups of the new state.

Physics arrays are NumPy (float64, from MuJoCo); the MDP is torch float32 on the CPU next to them, and what ``step``
returns is moved to ``device`` once per step (hundreds of tiny GPU kernels per step measured slower on a 16-core
H100 host than the CPU ops plus one copy).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import mujoco
import numpy as np
import torch
from tensordict import TensorDict

from rwmspec.manager import Registry
from rwmspec.plan import Plan, plan_to_dict
from rwmspec.spec.model import SYSTEM_GROUPS
from rwmspec.types import RobotDef
from rwmspec_plugins.embedded.compile import EmbeddedConfig
from rwmspec_plugins.embedded.events import build_env_models
from rwmspec_plugins.embedded.model import STATE_SPEC, ModelIndex, build_model
from rwmspec_plugins.embedded.physics import BatchedPhysics
from rwmspec_runtime.mdp import (
    ContactTimers,
    EventManager,
    ObservationManager,
    StateView,
    bind_term_functions,
    call_reward_terms,
    contact_timers,
    make_command,
    total_reward,
)

#: Log key of envs whose simulation went unstable (reset and reported as truncations).
UNSTABLE_LOG_KEY = "Episode_Termination/physics_unstable"


@contextlib.contextmanager
def torch_single_threaded(enabled: bool = True) -> Iterator[None]:
    """Run small CPU tensor ops on one thread: the MDP tensors are tiny, and torch's intra-op threads would spin
    against the physics threads for the same cores (measured 10x slower element-wise ops on a busy 2-core host)."""
    if not enabled:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _default_state(model: mujoco.MjModel, index: ModelIndex, robot: RobotDef) -> np.ndarray:
    """Full physics state of the default pose: base at the robot's initial height, level, at rest."""
    data = mujoco.MjData(model)
    state = np.zeros(index.nstate)
    mujoco.mj_getState(model, data, state, STATE_SPEC)
    state[index.base_pos] = (0.0, 0.0, robot.init_base_height)
    state[index.base_quat] = (1.0, 0.0, 0.0, 0.0)
    state[index.joint_pos] = robot.default_joint_pos
    return state


class _ActionMap:
    """Joint-position action terms: ``targets[:, joints] = offset + scale * action[:, columns]``."""

    def __init__(self, plan: Plan, default_joint_pos: np.ndarray) -> None:
        self.default = default_joint_pos
        self.terms: list[tuple[np.ndarray, slice, float, np.ndarray]] = []
        start = 0
        for term in plan.actions:
            regex = re.compile(term.params.get("joint_names", ".*"))
            joints = np.array([j for j, name in enumerate(plan.robot.joint_names) if regex.fullmatch(name)])
            offset = default_joint_pos[joints] if term.params.get("use_default_offset", True) else np.zeros(len(joints))
            self.terms.append((joints, slice(start, start + term.dim), float(term.params.get("scale", 1.0)), offset))
            start += term.dim
        self.dim = start

    def targets(self, actions: np.ndarray) -> np.ndarray:
        """``[N, J]`` joint targets; joints no term drives hold their default position."""
        targets = np.broadcast_to(self.default, (actions.shape[0], len(self.default))).copy()
        for joints, columns, scale, offset in self.terms:
            targets[:, joints] = offset + scale * actions[:, columns]
        return targets


class EmbeddedVecEnv:
    """N envs of one plan on MuJoCo (rsl-rl-lib ``VecEnv`` duck type; auto-resets inside ``step``).

    Attributes: ``num_envs``, ``num_actions``, ``device``, ``max_episode_length`` (steps), ``episode_length_buf``
    (``[N]`` long, settable), ``cfg`` (the plan as plain data), ``step_dt`` (control period, s).
    """

    def __init__(
        self,
        plan: Plan,
        registry: Registry,
        config: EmbeddedConfig,
        *,
        device: str | torch.device = "cpu",
        num_envs: int | None = None,
    ) -> None:
        options = config.options
        self.plan = plan
        self.cfg: dict[str, Any] = plan_to_dict(plan)
        #: device of everything the env returns; the MDP itself runs on the CPU next to the physics (measured
        #: faster than hundreds of tiny GPU kernels per step, and one host-to-device copy per step suffices)
        self.device = torch.device(device)
        self._cpu = torch.device("cpu")
        self.num_envs = int(num_envs if num_envs is not None else plan.sim.num_envs)
        if self.num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {self.num_envs}")
        self.robot = registry.robots[plan.robot.name]
        self.step_dt = plan.sim.control_dt
        self.max_episode_length = plan.sim.max_episode_length
        self.max_episode_length_s = plan.sim.episode_length_s

        # random streams: one per consumer, so adding draws in one never shifts another
        seeds = np.random.SeedSequence(plan.experiment.seed).spawn(5)
        self._startup_rng, self._reset_rng, self._interval_rng = (np.random.default_rng(s) for s in seeds[:3])
        self._command_gen = torch.Generator().manual_seed(int(seeds[3].generate_state(1)[0]))
        self._noise_gen = torch.Generator().manual_seed(int(seeds[4].generate_state(1)[0]))

        # physics
        model, index = build_model(
            plan, config.mjcf, solver_iterations=options.solver_iterations, ls_iterations=options.ls_iterations
        )
        self.model = model
        self.events = EventManager(plan.events, registry, "embedded")
        models = build_env_models(model, self.events, self.num_envs, self._startup_rng, variants=options.model_variants)
        self.physics = BatchedPhysics(
            models,
            index,
            decimation=plan.sim.decimation,
            num_threads=options.num_threads,
            chunk_size=options.chunk_size,
            contact_history=options.contact_history,
        )
        #: what reset events start from: the default state, and the soft limits joint positions are clamped to
        self.default_state = _default_state(model, index, self.robot)
        limits = np.asarray(self.robot.soft_joint_pos_limits) if self.robot.soft_joint_pos_limits else None
        self.soft_joint_limits = limits
        #: ``[E, N]`` seconds until each interval event fires in each env
        self._event_time_left = self.events.draw_timers(self.num_envs, self._interval_rng)
        default_joint_pos = np.asarray(self.robot.default_joint_pos, dtype=float)
        self._actions = _ActionMap(plan, default_joint_pos)
        self.num_actions = self._actions.dim

        # MDP
        f32 = {"device": self._cpu, "dtype": torch.float32}
        self._default_joint_pos = torch.as_tensor(default_joint_pos, **f32)
        self._soft_limits = torch.as_tensor(limits, **f32) if limits is not None else None
        self._groups = {g: (b, plan.robot.contact_thresholds.get(g, 1.0)) for g, b in plan.robot.contact_bodies.items()}
        self.commands = (
            make_command(plan.commands[0], registry, self.num_envs, generator=self._command_gen)
            if plan.commands
            else None
        )
        self._reward_fns = bind_term_functions(plan.rewards, registry, "reward")
        self._termination_fns = bind_term_functions(plan.terminations, registry, "termination")
        self._observer = ObservationManager(plan.observations, registry, self._cpu, self._noise_gen)
        self._system_groups = [g for g in plan.observations if g in SYSTEM_GROUPS]

        n = self.num_envs
        self.action = torch.zeros(n, self.num_actions, **f32)
        self.prev_action = torch.zeros_like(self.action)
        self._episode_length_buf = torch.zeros(n, dtype=torch.long)
        self.episode_sums = {t.name: torch.zeros(n, **f32) for t in plan.rewards}
        self.contact_timers: dict[str, ContactTimers] = {
            g: contact_timers.zeros(n, len(b)) for g, (b, _) in self._groups.items()
        }
        self._contacts: dict[str, torch.Tensor] = {
            g: torch.zeros(n, len(b), dtype=torch.bool) for g, (b, _) in self._groups.items()
        }
        slices = self.physics.contact_slices
        self._contact_threshold_sq = (
            np.concatenate(
                [np.full(slices[g].stop - slices[g].start, threshold**2) for g, (_, threshold) in self._groups.items()]
            )
            if self._groups
            else np.zeros(0)
        )

        everyone = np.ones(n, dtype=bool)
        self.physics.state[:] = self.default_state
        self.events.reset(self, torch.from_numpy(everyone), self._reset_rng)
        self.physics.clear_sensors(everyone)
        self._prev_joint_vel = self._to_torch(self.physics.joint_vel())
        self.view = self._build_view(self._kinematics())
        self._obs = self._observer.compute(self.view).to(self.device)

    # ---------------------------------------------------------------------------------------------------------------
    # VecEnv interface
    # ---------------------------------------------------------------------------------------------------------------
    @property
    def episode_length_buf(self) -> torch.Tensor:
        """``[N]`` steps elapsed in each env's episode (a CPU tensor: it belongs to the MDP, which runs on the CPU)."""
        return self._episode_length_buf

    @episode_length_buf.setter
    def episode_length_buf(self, value: torch.Tensor) -> None:
        value = torch.as_tensor(value).to(self._cpu)
        if value.shape != (self.num_envs,):
            raise ValueError(f"episode_length_buf must have shape ({self.num_envs},), got {tuple(value.shape)}")
        self._episode_length_buf = value.to(torch.long).clone()

    @property
    def unwrapped(self) -> EmbeddedVecEnv:
        return self

    def make_renderer(self, width: int, height: int, *, twin: bool = False) -> Any:
        """A camera on env 0 (``rwmspec_runtime.rendering.Renderer``); ``twin``: env 0 next to an imagined twin."""
        from rwmspec_plugins.embedded.render import Camera, TwinCamera

        camera = TwinCamera if twin else Camera
        return camera(self, self.plan.robot.base_body, width, height)

    def get_observations(self) -> TensorDict:
        """Every observation group of the plan, ``{group: [N, dim]}``."""
        return self._obs

    def reset(self) -> TensorDict:
        """Reset every env (episode sums are discarded, not logged) and return the observations."""
        everyone = torch.ones(self.num_envs, dtype=torch.bool)
        with torch_single_threaded():
            self._reset_envs(everyone)
            self.view = self._build_view(self._kinematics())
            self._obs = self._observer.compute(self.view).to(self.device)
        return self._obs

    def close(self) -> None:
        self.physics.close()

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """One control step of every env; see the module docstring for the order of events.

        :param actions: ``[N, num_actions]`` raw policy actions (any device).
        :return: observations, rewards ``[N]``, dones ``[N]`` (bool), extras with ``time_outs`` (``[N]`` bool),
            ``log`` (dict of scalars, filled when envs reset) and ``terminal_observations`` (``system_*`` groups
            before the reset, valid in the rows of done envs); tensors on ``device``.
        """
        with torch_single_threaded():
            obs, rewards, dones, extras = self._step(actions)
        if self.device == self._cpu:
            return obs, rewards, dones, extras
        extras = {
            "time_outs": extras["time_outs"].to(self.device),
            "log": extras["log"],
            "terminal_observations": extras["terminal_observations"].to(self.device),
        }
        return obs, rewards.to(self.device), dones.to(self.device), extras

    def _step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """``step`` on the CPU; only the observations are already on ``device``."""
        if actions.shape != (self.num_envs, self.num_actions):
            raise ValueError(
                f"actions must have shape ({self.num_envs}, {self.num_actions}), got {tuple(actions.shape)}"
            )
        self.prev_action = self.action
        self.action = actions.detach().to(device=self._cpu, dtype=torch.float32).clone()
        targets = self._actions.targets(self.action.cpu().numpy().astype(np.float64))
        unstable = self.physics.step(targets)
        self._episode_length_buf += 1

        # post-physics state: contacts, timers, terminations, rewards
        flags = torch.from_numpy(self.physics.contact_force_sq_max() > self._contact_threshold_sq)
        contacts = {g: flags[:, self.physics.contact_slices[g]] for g in self._groups}
        self._contacts = contacts
        self.contact_timers = {
            g: contact_timers.advance(t, contacts[g], self.step_dt) for g, t in self.contact_timers.items()
        }
        kinematics = self._kinematics()
        view = self._build_view(kinematics)
        term_dones = {
            t.name: self._termination_fns[t.name](view, **t.params).to(torch.bool) for t in self.plan.terminations
        }
        time_outs = torch.zeros(self.num_envs, dtype=torch.bool)
        terminated = torch.zeros_like(time_outs)
        for t in self.plan.terminations:
            if t.mode == "time_out":
                time_outs |= term_dones[t.name]
            else:
                terminated |= term_dones[t.name]
        unstable_t = torch.from_numpy(unstable)
        time_outs |= unstable_t & ~terminated
        weighted = call_reward_terms(view, self.plan.rewards, self._reward_fns)
        if bool(unstable_t.any()):
            # a diverged state says nothing about the policy: its terms would only corrupt the value targets
            weighted = {name: value.masked_fill(unstable_t, 0.0) for name, value in weighted.items()}
        rewards = total_reward(weighted, view)
        for name, value in weighted.items():
            self.episode_sums[name] += value
        self._prev_joint_vel = view.joint_vel
        dones = terminated | time_outs

        # resets
        log: dict[str, float] = {}
        if bool(dones.any()):
            terminal = self._observer.compute(view, self._system_groups)
            log = self._episode_log(dones, term_dones, unstable_t)
            self._reset_envs(dones)
        else:
            terminal = None

        # commands and interval events see the reset envs' new states
        if terminal is not None:
            kinematics = self._kinematics()
        if self.commands is not None:
            self.commands.step(self.step_dt, {"heading": self._to_torch(kinematics["heading"])})
        if self.events.interval_count:
            self._event_time_left, pushed = self.events.interval(
                self, self._event_time_left, self.step_dt, self._interval_rng
            )
            if bool(pushed.any()):
                kinematics = self._kinematics()
        self.view = self._build_view(kinematics)
        obs = self._observer.compute(self.view)
        if terminal is None:
            terminal = obs.select(*self._system_groups)
        self._obs = obs.to(self.device)
        extras = {"time_outs": time_outs, "log": log, "terminal_observations": terminal}
        return self._obs, rewards, dones, extras

    def add_root_velocity(self, mask: torch.Tensor, linear: torch.Tensor, angular: torch.Tensor) -> None:
        """Add world-frame linear and angular velocities ``[N, 3]`` to the root of the envs in ``mask`` (what the
        push event term calls)."""
        rows = mask.numpy()
        if rows.any():
            lin, ang = self.physics.root_velocity_w(rows)
            self.physics.set_root_velocity_w(rows, lin + linear.numpy()[rows], ang + angular.numpy()[rows])

    # ---------------------------------------------------------------------------------------------------------------
    # internals
    # ---------------------------------------------------------------------------------------------------------------
    @staticmethod
    def _to_torch(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    def _kinematics(self) -> dict[str, np.ndarray]:
        p = self.physics
        return {
            "base_lin_vel": p.base_lin_vel_b(),
            "base_ang_vel": p.base_ang_vel_b(),
            "projected_gravity": p.projected_gravity(),
            "joint_pos": p.joint_pos(),
            "joint_vel": p.joint_vel(),
            "joint_torque": p.joint_torque(),
            "heading": p.heading(),
        }

    def _build_view(self, kin: dict[str, np.ndarray]) -> StateView:
        # one float64 -> float32 conversion for all physics quantities, then views into it
        keys = ("base_lin_vel", "base_ang_vel", "projected_gravity", "joint_pos", "joint_vel", "joint_torque")
        packed = self._to_torch(np.concatenate([kin[k] for k in keys], axis=1))
        parts = dict(zip(keys, torch.split(packed, [kin[k].shape[1] for k in keys], dim=1), strict=True))
        command = self.commands.command if self.commands is not None else torch.zeros(self.num_envs, 3)
        return StateView(
            base_lin_vel=parts["base_lin_vel"],
            base_ang_vel=parts["base_ang_vel"],
            projected_gravity=parts["projected_gravity"],
            joint_pos=parts["joint_pos"],
            joint_vel=parts["joint_vel"],
            joint_torque=parts["joint_torque"],
            prev_joint_vel=self._prev_joint_vel,
            default_joint_pos=self._default_joint_pos,
            contacts=self._contacts,
            command=command,
            action=self.action,
            prev_action=self.prev_action,
            dt=self.step_dt,
            soft_joint_pos_limits=self._soft_limits,
            episode_length=self._episode_length_buf,
            max_episode_length=self.max_episode_length,
            contact_timers=self.contact_timers,
        )

    def _episode_log(
        self, dones: torch.Tensor, term_dones: dict[str, torch.Tensor], unstable: torch.Tensor
    ) -> dict[str, float]:
        """Isaac Lab's reset log: mean episode sum per reward term over the done envs divided by the maximum
        episode length in seconds, and the number of done envs each termination term ended."""
        log: dict[str, float] = {}
        for name, sums in self.episode_sums.items():
            log[f"Episode_Reward/{name}"] = float(sums[dones].mean()) / self.max_episode_length_s
        for name, done in term_dones.items():
            log[f"Episode_Termination/{name}"] = float(torch.count_nonzero(done & dones))
        if bool(unstable.any()):
            log[UNSTABLE_LOG_KEY] = float(torch.count_nonzero(unstable))
        return log

    def _reset_envs(self, mask: torch.Tensor) -> None:
        """Reset the envs in ``mask`` (``[N]`` bool): physics state, MDP buffers, command, interval timers."""
        mask = mask.cpu()
        mask_np = mask.numpy()
        self.physics.state[mask_np] = self.default_state
        self.events.reset(self, mask, self._reset_rng)
        self._event_time_left = self.events.reset_timers(self._event_time_left, mask, self._interval_rng)
        self.physics.clear_sensors(mask_np)
        keep = ~mask.unsqueeze(-1)
        self.action = torch.where(keep, self.action, 0.0)
        self.prev_action = torch.where(keep, self.prev_action, 0.0)
        for name in self.episode_sums:
            self.episode_sums[name] = torch.where(mask, 0.0, self.episode_sums[name])
        self._episode_length_buf = torch.where(mask, 0, self._episode_length_buf)
        self._contacts = {g: c & keep for g, c in self._contacts.items()}
        self.contact_timers = {g: contact_timers.reset(t, mask) for g, t in self.contact_timers.items()}
        joint_vel = self._to_torch(self.physics.joint_vel())
        self._prev_joint_vel = torch.where(keep, self._prev_joint_vel, joint_vel)
        if self.commands is not None:
            self.commands.reset(mask)
