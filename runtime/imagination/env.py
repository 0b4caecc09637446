"""``ImaginationEnv``: N imagined envs rolled out by a world model, behind rsl-rl-lib's VecEnv interface.

The env is small: the world model, the reward, the termination, the seed pool, the command process and the event
manager (pushes) are passed in (mbrl-lib's ``ModelEnv`` habit); ``ImaginationEnv.from_plan`` builds them from a
compiled plan. One ``step(a)`` (rwm_method §4.3, corrected where the method notes upstream bugs):

1. the model predicts s_{t+1} from ``(s_t, normalize(a_t))`` after the env's memory (the assigned member's mean, or
   the ensemble mean; never a sample), contact and termination probabilities and the epistemic uncertainty
   (``WorldModel.step``);
2. the reward of the predicted state (``rewards.ImaginedReward``: the same term functions as the real backend, plus
   the uncertainty penalty);
3. terminated = ``rewards.predicted_termination``; time-out when the episode reaches
   ``imagination.max_episode_length`` steps; done = either;
4. commands count down (``processes``) and interval events (pushes) fire (the runtime's ``EventManager``, the same
   push term as the real envs');
5. done envs start new episodes from the seed pool (``seeds``), and the policy observation of the new states is
   built by the ``ObservationManager`` (with the terms' noise when ``imagination.observation_noise`` is on, whatever
   the group's own ``corruption`` says: finetune turns the real policy group's corruption off but imagines with
   noise, as upstream).

``reset(env_ids)`` seeds the given envs from freshly drawn windows on the spot; ``refill_seeds`` refills the pool
(the ``imagine`` step calls it once per iteration, after the world model's update). Only the new episodes' memory
rows, members, timers, commands, episode sums and lengths change.

GPU: everything is batched, nothing loops over envs. ``advance`` (steps 1-5 without the observation) has fixed
shapes and no host synchronisation, and every step, reset and refill writes into the same tensors
(``state.ImaginedState``, ``state_tensors``), so ``observe`` + policy + ``advance`` can be captured in one CUDA graph
(register ``step_generators`` with it) and replayed, with ``refill_seeds`` run eagerly between replays.
``compile_step`` puts the step's tensor work under ``torch.compile``, which traces it whole and writes the new state
into the persistent tensors from its fused kernels (``graph.GraphedStep`` does both for the ``imagine`` step).
``step`` adds one host read (whether any episode ended, to fill ``log`` like Isaac Lab); ``rollout_step`` is ``step``
without it.

Shapes: N imagined envs, S state width, A actions, K ensemble members.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import torch
from tensordict import TensorDict

from rwmspec.compile import PUSH_FIELD, imagined_events
from rwmspec.manager import Registry, get_registry
from rwmspec.plan import Plan
from rwmspec_runtime.imagination.processes import CommandProcess, PushedVelocity, StepNoise, Streams
from rwmspec_runtime.imagination.rewards import PENALTY_TERM, ImaginedReward, RewardOutcome, predicted_termination
from rwmspec_runtime.imagination.seeds import SeedPool, Seeds, exclusive_count
from rwmspec_runtime.imagination.state import ImaginedState
from rwmspec_runtime.imagination.state_mapping import StateMapping, soft_joint_pos_limits
from rwmspec_runtime.mdp import ContactTimers, EventManager, ObservationManager, Uniforms, contact_timers, make_command
from rwmspec_runtime.world_model.protocol import Memory, Prediction, WorldModel
from rwmspec_runtime.world_model.system import WorldModelSystem
from rwmspec_runtime.world_model.system_data import SystemNormalizer

__all__ = ["LOG_PREFIX", "PENALTY_TERM", "ImaginationEnv", "RewardOutcome", "exclusive_count"]

#: log prefix of imagined episode sums (Isaac Lab's ``Episode_Reward/<term>`` counterpart)
LOG_PREFIX = "Imagination/"


def _cleared(timers: ContactTimers, column: torch.Tensor) -> ContactTimers:
    """``timers`` with the rows where ``column`` ``[N, 1]`` is true set to zero (an episode start)."""

    def clear(t: torch.Tensor) -> torch.Tensor:
        return t.masked_fill(column, 0.0)

    return ContactTimers(
        current_air_time=clear(timers.current_air_time),
        current_contact_time=clear(timers.current_contact_time),
        last_air_time=clear(timers.last_air_time),
        last_contact_time=clear(timers.last_contact_time),
    )


class ImaginationEnv:
    """Imagined envs of a world model (rsl-rl-lib VecEnv duck type; auto-resets in ``step``).

    :param model: the world model (``WorldModel`` protocol).
    :param normalizer: the run's ``SystemNormalizer`` (states and actions to and from the model's units).
    :param mapping: predicted ``system_state`` columns as view fields and contact groups.
    :param reward: the reward of a predicted step; its ``terms`` are the logged reward terms.
    :param seeds: the seed pool new episodes start from.
    :param observations: the PPO observation groups of imagined states (``obs_groups`` of them are returned).
    :param commands: the command process; ``events``: the interval events (pushes) and ``pushed_velocity``, where a
        push lands in the predicted state (None without pushes).
    :param streams: the random streams (``processes.Streams``).
    :param termination: ``Prediction -> [N] bool``.
    :param sample_members: each env reads one ensemble member, redrawn per episode (else the ensemble mean).

    Attributes: ``num_envs``, ``num_actions``, ``num_steps_per_env``, ``max_episode_length``, ``episode_length_buf``
    (``[N]`` long), ``device``, ``step_dt``, ``reward_terms`` (names of the logged reward terms).
    """

    def __init__(
        self,
        model: WorldModel,
        normalizer: SystemNormalizer,
        mapping: StateMapping,
        reward: ImaginedReward,
        seeds: SeedPool,
        observations: ObservationManager,
        *,
        num_envs: int,
        num_steps_per_env: int,
        max_episode_length: int,
        commands: CommandProcess,
        events: EventManager,
        pushed_velocity: PushedVelocity | None,
        streams: Streams,
        termination: Callable[[Prediction], torch.Tensor] = predicted_termination,
        sample_members: bool = False,
    ) -> None:
        self.model = model
        self.normalizer = normalizer
        self.mapping = mapping
        self.reward = reward
        self.termination = termination
        self.seeds = seeds
        self.observer = observations
        self.obs_groups = tuple(observations.groups)
        self.commands = commands
        self.events = events
        self.pushed_velocity = pushed_velocity
        self.streams = streams
        self.sample_members = sample_members and model.ensemble_size > 1
        self.device = seeds.device
        self.num_envs = num_envs
        self.num_actions = model.action_dim
        self.num_steps_per_env = num_steps_per_env
        self.max_episode_length = max_episode_length
        self.step_dt = reward.dt
        self.reward_terms = reward.terms
        self.history_horizon = model.history_horizon
        #: the step's tensor work: ``_advance`` eagerly, or its compiled form (``compile_step``)
        self._tensor_step = self._advance
        # the persistent state must be normal tensors (inference tensors cannot be updated outside inference mode)
        with torch.inference_mode(False):
            self.s = self._zero_state()
        self._obs: TensorDict | None = None

    @classmethod
    def from_plan(
        cls,
        plan: Plan,
        system: WorldModelSystem,
        *,
        num_envs: int | None = None,
        registry: Registry | None = None,
        seed: int | None = None,
    ) -> ImaginationEnv:
        """The plan's imagined MDP on a ``WorldModelSystem`` (model, normalizer, replay buffer).

        The compiler guarantees what this reads for every stage that imagines (`rwmspec validate` reports what is
        missing), so nothing here re-checks the spec.

        :param num_envs: overrides ``imagination.num_envs``.
        :param registry: plugin registry for the term functions (default: the installed plugins).
        :param seed: overrides the plan seed of the env's random streams.
        """
        spec = plan.imagination
        registry = registry if registry is not None else get_registry()
        device = system.device
        n = int(num_envs if num_envs is not None else spec.num_envs)
        streams = Streams.seeded(plan.experiment.seed if seed is None else seed, device)
        robot = registry.robots.get(plan.robot.name)
        limits = soft_joint_pos_limits(robot, device) if robot is not None else None
        mapping = StateMapping(plan, device, soft_joint_pos_limits=limits, registry=registry)
        reward = ImaginedReward(
            plan.rewards,
            registry,
            mapping,
            system.normalizer,
            dt=plan.sim.control_dt,
            penalty_weight=spec.uncertainty_penalty_weight,
            dof_acc_uses_joint_pos=plan.quirks.dof_acc_uses_joint_pos,
            lagged_first_contact=plan.quirks.feet_air_time_lagged_first_contact,
        )
        groups = tuple(dict.fromkeys([*plan.policy.actor_observations, *plan.policy.critic_observations]))
        observations = ObservationManager(
            {g: attrs.evolve(plan.observations[g], corruption=bool(spec.observation_noise)) for g in groups},
            registry,
            device,
            streams.noise,
        )
        # the plan's command term, the class the real env runs; imagination draws its uniforms itself, so the term's
        # own generator (it draws a first command when built) is a throwaway one
        term = (
            make_command(plan.commands[0], registry, 1, generator=torch.Generator(device=device).manual_seed(0))
            if plan.commands
            else None
        )
        low, high = spec.command_resample_interval_range
        events = EventManager(imagined_events(spec, plan.sim.control_dt), registry, "imagination")
        pushed_velocity = (
            PushedVelocity(mapping.columns(PUSH_FIELD), mapping.scale_of(PUSH_FIELD)) if events.interval_count else None
        )
        widths = {}
        for block in mapping.contact_blocks + mapping.termination_blocks:
            # one width per group: the compiler sizes every contact term of a group by the group's bodies
            widths.setdefault(block.group, block.columns.stop - block.columns.start)
        expected = 2 * n * spec.steps_per_iteration / spec.max_episode_length  # twice the time-outs of an iteration
        seeds = SeedPool(
            system.model,
            system.normalizer,
            system.buffer,
            mapping,
            widths,
            device=device,
            generator=streams.window,
            warm_up_context=not plan.quirks.skip_imagination_context_warmup,
            size=int(math.ceil(expected)),
        )
        return cls(
            system.model,
            system.normalizer,
            mapping,
            reward,
            seeds,
            observations,
            num_envs=n,
            num_steps_per_env=spec.steps_per_iteration,
            max_episode_length=spec.max_episode_length,
            commands=CommandProcess(term, (int(low), int(high))),
            events=events,
            pushed_velocity=pushed_velocity,
            streams=streams,
            sample_members=spec.member_sampling == "per_env_random",
        )

    def _zero_state(self) -> ImaginedState:
        n, S = self.num_envs, self.model.state_dim
        f32 = {"device": self.device, "dtype": torch.float32}
        long = {"device": self.device, "dtype": torch.long}
        state = torch.zeros(n, S, **f32)
        state_obs = self.normalizer.denormalize_state(state)
        contacts = {
            g: torch.zeros(n, w, dtype=torch.bool, device=self.device) for g, w in self.seeds.contact_widths.items()
        }
        return ImaginedState(
            state=state,
            state_obs=state_obs,
            fields=self.mapping.fields(state_obs),
            last_action=torch.zeros(n, self.num_actions, **f32),
            memory=self.model.initial_memory(n),
            members=torch.zeros(n, **long),
            command=torch.zeros(n, self.commands.dim, **f32),
            contacts=contacts,
            timers={g: contact_timers.zeros(n, c.shape[1], self.device) for g, c in contacts.items()},
            episode_length=torch.zeros(n, **long),
            episode_sums=torch.zeros(n, len(self.reward_terms), **f32),
            episode_return=torch.zeros(n, **f32),
            command_left=torch.zeros(n, **long),
            event_time_left=torch.zeros(self.events.interval_count, n, **f32),
            pool_next=torch.zeros((), **long),
        )

    # ---------------------------------------------------------------------------------------------------------------
    # VecEnv interface
    # ---------------------------------------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        """Whether ``reset`` has seeded the envs from the replay buffer."""
        return self._obs is not None

    @property
    def episode_length_buf(self) -> torch.Tensor:
        """``[N]`` steps elapsed in each imagined episode."""
        return self.s.episode_length

    @episode_length_buf.setter
    def episode_length_buf(self, value: torch.Tensor) -> None:
        value = torch.as_tensor(value, device=self.device)
        if value.shape != (self.num_envs,):
            raise ValueError(f"episode_length_buf must have shape ({self.num_envs},), got {tuple(value.shape)}")
        with torch.no_grad():
            self.s.episode_length.copy_(value)

    @property
    def unwrapped(self) -> ImaginationEnv:
        return self

    # live per-env tensors (updated in place by every step and reset: clone to keep a copy)
    @property
    def members(self) -> torch.Tensor | None:
        """``[N]`` ensemble member of each env, or None when every env reads the ensemble mean."""
        return self.s.members if self.sample_members else None

    @property
    def memory(self) -> Memory:
        """The model memory of all envs (rows = envs)."""
        return self.s.memory

    @property
    def state(self) -> torch.Tensor:
        """``[N, S]`` current normalized states."""
        return self.s.state

    @property
    def state_obs(self) -> torch.Tensor:
        """``[N, S]`` current states in ``system_state`` units (denormalized)."""
        return self.s.state_obs

    @property
    def command(self) -> torch.Tensor:
        """``[N, C]`` current commands."""
        return self.s.command

    @property
    def contact_timers(self) -> dict[str, ContactTimers]:
        return self.s.timers

    @property
    def seed_pool_size(self) -> int:
        return self.seeds.size

    def get_observations(self) -> TensorDict:
        """The PPO groups (actor and critic), ``{group: [N, dim]}``; zeros before the first ``reset``."""
        if self._obs is None:
            groups = self.observer.groups
            return TensorDict(
                {g: torch.zeros(self.num_envs, groups[g].group.dim, device=self.device) for g in self.obs_groups},
                batch_size=[self.num_envs],
                device=self.device,
            )
        return self._obs

    @torch.no_grad()
    def reset(self, env_ids: torch.Tensor | None = None) -> TensorDict:
        """Start new episodes in envs ``env_ids`` (``[B]`` indices; None = all, and the seed pool is refilled) from
        freshly drawn replay-buffer windows; returns the observations."""
        n, s = self.num_envs, self.s
        ids = (
            torch.arange(n, device=self.device)
            if env_ids is None
            else torch.as_tensor(env_ids, device=self.device).long().reshape(-1)
        )
        before = s.snapshot()
        seeds = self.seeds.draw(ids.numel())
        mask = torch.zeros(n, dtype=torch.bool, device=self.device).index_fill(0, ids, True)
        self._start_episodes(
            mask,
            self._uniform(self.commands.draws + 2 + self.events.interval_count, self.streams.start),
            Seeds(
                state=s.state.index_copy(0, ids, seeds.state),
                last_action=s.last_action.index_copy(0, ids, seeds.last_action),
                contacts={g: c.index_copy(0, ids, seeds.contacts[g]) for g, c in s.contacts.items()},
                memory=self.model.write_memory_rows(s.memory, ids, seeds.memory),
            ),
        )
        s.commit(before)
        if env_ids is None:
            self.refill_seeds()
        self._obs = self.observe()
        return self._obs

    @torch.no_grad()
    def refill_seeds(self) -> int:
        """Draw a fresh pool of warmed-up seeds (with the model's current weights); returns how many seeds envs
        took from the previous pool. A pool that was outrun is doubled past that count first."""
        used = int(self.s.pool_next)
        self.seeds.refill(used)
        self.s.pool_next.zero_()
        return used

    @property
    def seeds_used(self) -> int:
        """Seeds taken from the pool since the last refill (a host read)."""
        return int(self.s.pool_next)

    @torch.no_grad()
    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """One imagined step of all envs (see the module docstring).

        :param actions: ``[N, A]`` raw policy actions.
        :return: observations, rewards ``[N]``, dones ``[N]`` bool, extras: ``time_outs`` ``[N]`` bool,
            ``log`` (``Imagination/<term>``: mean episode sum of the envs that ended in this step divided by
            ``max_episode_length * dt``, 0-d tensors; empty when none ended), ``epistemic_uncertainty`` ``[N]``,
            ``reward_terms`` (name -> weighted ``[N]``, the penalty included) and ``finished`` (0-d tensor sums
            over the envs that ended: ``count``, ``return``, ``length``, and ``terms``: name -> episode sum).
        """
        obs, rewards, dones, extras = self.rollout_step(actions)
        finished = extras["finished"]
        if bool(finished["count"] > 0):  # the one host read of a step
            scale = 1.0 / (finished["count"] * self.max_episode_length * self.step_dt)
            extras["log"] = {f"{LOG_PREFIX}{name}": value * scale for name, value in finished["terms"].items()}
        else:
            extras["log"] = {}
        return obs, rewards, dones, extras

    @torch.no_grad()
    def rollout_step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """``step`` without its host read: ``extras`` has no ``log``. What the ``imagine`` step runs, eagerly or
        replayed from a CUDA graph (``rwmspec_runtime.imagination.graph.GraphedStep``)."""
        if self._obs is None:
            raise RuntimeError(
                "ImaginationEnv.step before reset(): seed the imagined envs from the replay buffer first"
            )
        rewards, dones, extras = self.advance(actions)
        self._obs = self.observe()
        return self._obs, rewards, dones, extras

    # ---------------------------------------------------------------------------------------------------------------
    # the parts of a step
    # ---------------------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Steps 1-5 of the module docstring without the observation: rewards ``[N]``, dones ``[N]`` and the extras
        of ``step`` except ``log``. No host synchronisation, fixed shapes (CUDA-graph capturable)."""
        n = self.num_envs
        if actions.shape != (n, self.num_actions):
            raise ValueError(f"actions must have shape ({n}, {self.num_actions}), got {tuple(actions.shape)}")
        action = actions.detach().to(device=self.device, dtype=torch.float32)
        return self._tensor_step(action, self._draw_step_noise())

    def compile_step(self, mode: str = "default", *, fullgraph: bool = False) -> None:
        """Run the step's tensor work (model, reward, bookkeeping, state commit) under ``torch.compile`` from now on;
        ``fullgraph`` makes any graph break an error (the tests use it)."""
        compiled = torch.compile(self._advance, mode=mode, dynamic=False, fullgraph=fullgraph)

        def step(action: torch.Tensor, noise: StepNoise) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
            # dynamo traces the GRU cells (they read an nn.GRU's weights) only with allow_rnn, and a process that
            # builds several envs compiles the same code again (guards on ``self``) past the default recompile
            # limit: both set for this call only, not for the whole process
            with torch._dynamo.config.patch(allow_rnn=True, recompile_limit=64):
                return compiled(action, noise)

        self._tensor_step = step

    def _advance(self, action: torch.Tensor, noise: StepNoise) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """``advance`` on its random draws: tensor work only (no generator, no host read), so that
        ``torch.compile`` can trace all of it and fuse the state commit into the kernels that compute the state."""
        s = self.s
        before = s.snapshot()
        prediction, memory = self.predict(action)
        outcome = self.reward(s, action, prediction, self.max_episode_length)
        rewards, length = outcome.rewards, outcome.episode_length
        time_outs = length >= self.max_episode_length
        dones = self.termination(prediction) | time_outs

        # the episodes that end here, as sums over the done envs (no host sync)
        done_f = dones.to(torch.float32)
        sums = s.episode_sums + outcome.per_term
        returns = s.episode_return + rewards
        # one matrix-vector product: compiled, a sum over envs per column would be fused with the state commit into
        # a kernel of a few blocks
        totals = done_f @ torch.cat(
            [done_f.unsqueeze(-1), returns.unsqueeze(-1), length.to(torch.float32).unsqueeze(-1), sums], dim=-1
        )
        count, finished_return, finished_length, *finished_terms = totals.unbind()
        finished = {
            "count": count,
            "return": finished_return,
            "length": finished_length,
            "terms": dict(zip(self.reward_terms, finished_terms, strict=True)),
        }

        # the new state
        s.memory = memory
        s.episode_sums, s.episode_return, s.episode_length = sums, returns, length
        s.last_action = action
        s.contacts = outcome.contacts
        s.timers = outcome.timers
        s.state, s.state_obs, s.fields = prediction.next_state, outcome.state_obs, outcome.fields
        s.command, s.command_left = self.commands.advance(s.command, s.command_left, noise.command)
        if self.events.interval_count:
            s.event_time_left, _ = self.events.interval(self, s.event_time_left, self.step_dt, Uniforms(noise.events))
        self._start_from_pool(dones, noise.start)
        s.commit(before)
        extras = {
            "time_outs": time_outs,
            "epistemic_uncertainty": prediction.epistemic,
            "reward_terms": outcome.weighted,
            "finished": finished,
        }
        return rewards, dones, extras

    @torch.no_grad()
    def predict(self, action: torch.Tensor) -> tuple[Prediction, Memory]:
        """Step 1: the model's prediction for ``action`` ``[N, A]`` (raw) in the current states and its memory after
        it. Changes nothing."""
        s = self.s
        return self.model.step(s.state, self.normalizer.normalize_action(action), s.memory, self.members)

    @torch.no_grad()
    def observe(self) -> TensorDict:
        """The PPO observation groups of the current states (with noise per ``imagination.observation_noise``)."""
        s = self.s
        view = self.mapping.view(
            s.state_obs,
            fields=s.fields,
            prev_joint_vel=s.fields["joint_vel"],
            contacts=s.contacts,
            command=s.command,
            action=s.last_action,
            prev_action=s.last_action,
            dt=self.step_dt,
            contact_timers=s.timers,
            episode_length=s.episode_length,
            max_episode_length=self.max_episode_length,
        )
        return self.observer.compute(view, self.obs_groups)

    # ---------------------------------------------------------------------------------------------------------------
    # persistent state
    # ---------------------------------------------------------------------------------------------------------------
    @property
    def step_generators(self) -> tuple[torch.Generator, ...]:
        """The random streams ``advance`` and ``observe`` draw from (episode starts, commands, events, observation
        noise): register them with a CUDA graph that captures those calls. Window draws have a stream of their own."""
        return self.streams.step_generators

    @property
    def state_layout(self) -> int:
        """Changes exactly when ``state_tensors`` would return other tensors: the per-env state is committed into the
        same tensors for the env's lifetime, and only a refill that grows the seed pool allocates new pool tensors."""
        return self.seeds.generation

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Every per-env state and seed-pool tensor by path (``"state"``, ``"memory/0"``, ``"pool/state"``, ...).

        Steps, resets and refills update them in place: the same tensors for the env's lifetime (until a refill
        grows the pool), which is what a captured CUDA graph of ``advance`` needs."""
        return {**self.s.tensors(), **self.seeds.tensors()}

    def add_root_velocity(self, mask: torch.Tensor, linear: torch.Tensor, angular: torch.Tensor) -> None:
        """What the push event term calls: ``linear`` ``[N, 3]`` (m/s) added to the predicted base velocity of the envs
        in ``mask``. Imagined pushes set x and y only (``rwmspec.compile.imagined_events``), so ``angular`` is zero."""
        pushed = self.pushed_velocity.add(self.s.state_obs, mask, linear)
        self._set_state(self.normalizer.normalize_state(pushed), pushed)

    # ---------------------------------------------------------------------------------------------------------------
    # internals
    # ---------------------------------------------------------------------------------------------------------------
    def _uniform(self, width: int, generator: torch.Generator) -> torch.Tensor:
        """``[N, width]`` uniform draws in [0, 1) from ``generator``."""
        return torch.rand(self.num_envs, width, generator=generator, device=self.device)

    def _draw_step_noise(self) -> StepNoise:
        draws = self.commands.draws
        return StepNoise(
            command=self._uniform(draws + 1, self.streams.command),
            events=self._uniform(self.events.interval_draws, self.streams.events),
            start=self._uniform(draws + 2 + self.events.interval_count, self.streams.start),
        )

    def _set_state(self, state: torch.Tensor, state_obs: torch.Tensor | None = None) -> None:
        s = self.s
        s.state = state
        s.state_obs = self.normalizer.denormalize_state(state) if state_obs is None else state_obs
        s.fields = self.mapping.fields(s.state_obs)

    def _start_from_pool(self, dones: torch.Tensor, u: torch.Tensor) -> None:
        """Done envs take the next seeds of the pool, in env order (no host sync); ``u``: ``_start_episodes``."""
        s = self.s
        index = (s.pool_next + exclusive_count(dones)) % self.seeds.size  # [N]: seed of each env if it ends
        self._start_episodes(dones, u, self.seeds.take(index))
        s.pool_next = s.pool_next + dones.sum()

    def _start_episodes(self, mask: torch.Tensor, u: torch.Tensor, seeds: Seeds) -> None:
        """New episodes in the envs of ``mask`` ``[N]`` bool; ``seeds`` holds full ``[N]``-row candidates, of which
        only the masked rows are used. ``u`` ``[N, D + 2 + E]``: every env's draws (member, command (D), command
        interval, E interval-event timers), used in the masked rows."""
        s = self.s
        column = mask.unsqueeze(-1)
        s.memory = self.model.where_memory(mask, seeds.memory, s.memory)
        self._set_state(
            torch.where(column, seeds.state, s.state),
            torch.where(column, self.normalizer.denormalize_state(seeds.state), s.state_obs),
        )
        s.last_action = torch.where(column, seeds.last_action, s.last_action)
        s.contacts = {g: torch.where(column, seeds.contacts[g], c) for g, c in s.contacts.items()}
        s.timers = {g: _cleared(t, column) for g, t in s.timers.items()}
        if self.sample_members:
            K = self.model.ensemble_size
            drawn = torch.floor(u[:, 0] * K).to(torch.long).clamp_(max=K - 1)
            s.members = torch.where(mask, drawn, s.members)
        s.episode_length = s.episode_length.masked_fill(mask, 0)
        s.episode_sums = s.episode_sums.masked_fill(column, 0.0)
        s.episode_return = s.episode_return.masked_fill(mask, 0.0)
        d = self.commands.draws
        s.command, s.command_left = self.commands.start(mask, s.command, s.command_left, u[:, 1 : 2 + d])
        s.event_time_left = self.events.reset_timers(s.event_time_left, mask, Uniforms(u[:, 2 + d :]))
