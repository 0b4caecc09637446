"""``ImaginationEnv``: N imagined envs rolled out by the world model, behind rsl-rl-lib's VecEnv interface.

Each imagined env holds a predicted ``system_state`` s_t (normalized, the model's input), the last applied action,
its rows of the model's recurrent memory, an ensemble member, a velocity command and contact timers. One ``step(a)``
(rwm_method §4.3, corrected where the method notes upstream bugs):

1. the model consumes ``(s_t, normalize(a_t))`` after the env's memory and predicts s_{t+1} (the assigned member's
   mean, or the ensemble mean; never a sample), contact and termination probabilities and the epistemic
   uncertainty u (disagreement of the member means, ``SystemDynamicsEnsemble.epistemic``);
2. s_{t+1} is denormalized and turned into a ``StateView`` (``StateMapping``); contacts are ``prob > 0.5``; contact
   timers advance with them (``contact_timers.advance``); ``prev_joint_vel`` is the joint velocity of s_t;
3. rewards come from the plan's reward terms through the same ``call_reward_terms`` / ``total_reward`` as the real
   backend, so the same state gives the same reward. The uncertainty penalty is one more term::

       r = sum_i w_i * term_i * dt  -  lambda * u * dt          (logged as ``uncertainty_penalty`` when lambda > 0)

   with lambda = ``imagination.uncertainty_penalty_weight`` (>= 0; upstream writes the same with a negative weight);
4. terminated = any predicted termination probability > 0.5; time-out when the episode reaches
   ``imagination.max_episode_length`` steps; done = either;
5. commands count down per env and are redrawn every U[low, high) steps (``command_resample_interval_range``, the
   interval redrawn with every command); imagined pushes (``push_interval_range``) add U(-v, v) m/s to the base x/y
   velocity of s_{t+1} when their per-env timer runs out (after the reward, like the real env's interval events);
6. done envs start new episodes from the seed pool (below), and the policy observation of the new states is built.

Seeds. A new episode starts from one replay-buffer window of ``history_horizon`` M entries (entry k = (s_k,
a_{k-1})): the first M - 1 entries' (state, applied action) pairs warm the model's memory up, the last entry becomes
the current state, its ``system_action`` the last action and its contact labels the current contacts; so the first
imagined prediction has seen M (state, action) pairs, as in training. Quirk ``skip_imagination_context_warmup``
(upstream Gen-2): the same last entry with an empty memory. ``reset(env_ids)`` seeds the given envs this way on the
spot. Envs that end inside ``step`` take *pre-warmed* seeds from a pool that ``refill_seeds`` fills (P windows drawn
uniformly from the buffer and warmed up in one batch): the k-th env to end since the last refill takes seed k, so
each new episode still starts from its own uniformly drawn window, while the step keeps fixed shapes and never waits
for the host. The ``imagine`` step refills the pool once per iteration, after the world model's update (the warm-up
memory depends on the weights); should more envs end before a refill than the pool holds, seeds are used again
(``refill_seeds`` reports how many were used and grows the pool for next time). Only the new episodes' memory rows,
members, timers, commands, episode sums and lengths change.

Commands: drawn with ``terms.commands.commands_from_uniform`` (``VelocityCommand``'s sampler without heading control: the
predicted state has no yaw) from the plan's command ranges and standing share; zero without a command term.

Quirks (``plan.quirks``, defaults corrected): ``dof_acc_uses_joint_pos`` puts the previous state's joint positions
(relative to the default pose) where the previous joint velocities belong; ``feet_air_time_lagged_first_contact``
gives the reward terms the contact timers from *before* this step's update.

Observation noise: the PPO groups get their terms' uniform noise when ``imagination.observation_noise`` is on,
whatever the group's own ``corruption`` says (finetune turns the real policy group's corruption off but imagines
with noise, as upstream).

Randomness: five ``torch.Generator`` streams on the env's device, seeded from the plan seed: windows (``reset``,
``refill_seeds``), episode starts (members, first commands and timers), commands, pushes, observation noise. A step
draws every env's uniforms of each stream up front (``_StepNoise``) and uses them where they apply, so the step's
tensor work (``_advance``) calls no generator. The same seed on the CPU gives the same numbers.

GPU: everything is batched, nothing loops over envs. ``advance`` (steps 1-6 without the observation) has fixed
shapes and no host synchronisation, and every step, reset and refill writes into the same tensors
(``state_tensors``), so ``observe`` + policy + ``advance`` can be captured in one CUDA graph (register
``step_generators`` with it) and replayed, with ``refill_seeds`` run eagerly between replays once per iteration.
``torch.compile`` of ``_advance`` traces it whole (with ``torch._dynamo.config.allow_rnn``: the GRU cells read the
weights of an ``nn.GRU``) and writes the new state into the persistent tensors from its fused kernels
(``graph.GraphedStep`` does both for the ``imagine`` step). ``step`` adds one host read (whether any episode ended,
to fill ``log`` like Isaac Lab); ``rollout_step`` is ``step`` without it.

Shapes: N imagined envs, S state width, A actions, K ensemble members, M history horizon.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import attrs
import numpy as np
import torch
from tensordict import TensorDict

from rwmspec.manager import Registry, get_registry
from rwmspec_plugins.embedded.observations import ObservationAssembler
from rwmspec_runtime.imagination.state_mapping import StateMapping, soft_joint_pos_limits
from rwmspec_runtime.terms import contact_timers
from rwmspec_runtime.terms.commands import VelocityRanges, commands_from_uniform
from rwmspec_runtime.terms.registry import bind_term_functions, call_reward_terms, total_reward
from rwmspec_runtime.terms.state import ContactTimers
from rwmspec_runtime.world_model.ensemble import DynamicsOutput, ModelMemory, Prediction
from rwmspec_runtime.world_model.replay_buffer import applied_action_pairs

#: name of the uncertainty penalty among the reward terms (episode sums, logs)
PENALTY_TERM = "uncertainty_penalty"
#: log prefix of imagined episode sums (Isaac Lab's ``Episode_Reward/<term>`` counterpart)
LOG_PREFIX = "Imagination/"
#: mixes the plan seed into the imagination's own streams (distinct from the real env's)
_STREAM_KEY = 0x1A61
_THRESHOLD = 0.5
#: smallest seed pool
_MIN_POOL = 64
#: uniform draws per env and step of each random stream (see ``_StepNoise``)
_COMMAND_DRAWS, _PUSH_DRAWS, _START_DRAWS = 5, 3, 7
#: command params holding sampling ranges (heading control is never used: imagination has no yaw)
_RANGE_KEYS = ("lin_vel_x", "lin_vel_y", "ang_vel_z")


@dataclass
class RewardOutcome:
    """What ``ImaginationEnv.reward`` computes from one prediction, each ``[N, ·]``."""

    weighted: dict[str, torch.Tensor]  #: term name -> weighted reward ``[N]`` (``* dt``; penalty included)
    per_term: torch.Tensor  #: ``[N, T]`` the same, one column per name of ``ImaginationEnv.reward_terms``
    rewards: torch.Tensor  #: ``[N]`` their sum
    state_obs: torch.Tensor  #: ``[N, S]`` the predicted state in system_state units
    fields: dict[str, torch.Tensor]  #: its view fields
    contacts: dict[str, torch.Tensor]  #: predicted contact groups ``[N, B]`` bool
    timers: dict[str, ContactTimers]  #: contact timers advanced with them
    episode_length: torch.Tensor  #: ``[N]`` episode lengths counting this step


@dataclass
class _StepNoise:
    """One step's uniform draws in [0, 1), ``[N, ·]`` per stream, made before the step's tensor work."""

    command: torch.Tensor  #: ``[N, _COMMAND_DRAWS]``: a redrawn command (4) and its resampling interval (1)
    push: torch.Tensor  #: ``[N, _PUSH_DRAWS]``: push velocity x, y and the next push interval
    start: torch.Tensor  #: ``[N, _START_DRAWS]``: a new episode's member, command (4), command and push intervals


@dataclass
class _Seeds:
    """Episode starts, one row each: current normalized state, last raw action, contact flags, model memory."""

    state: torch.Tensor
    last_action: torch.Tensor
    contacts: dict[str, torch.Tensor]
    memory: ModelMemory

    def tree(self) -> dict[str, Any]:
        return {"state": self.state, "last_action": self.last_action, "contacts": self.contacts, "memory": self.memory}


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


@torch.library.custom_op("rwmspec::exclusive_count", mutates_args=())
def exclusive_count(flags: torch.Tensor) -> torch.Tensor:
    """``[N]`` long: how many of ``flags[:i]`` are set, for each i (an exclusive prefix sum).

    A custom op so that ``torch.compile`` keeps it a kernel of its own: inductor fuses a scan with the gathers that
    consume it into one kernel whose grid the scan limits to a single block (a quarter of a millisecond per
    imagined step at 8192 envs on an H100, against microseconds for the scan alone).
    """
    taken = flags.to(torch.long)
    return torch.cumsum(taken, dim=0) - taken


@exclusive_count.register_fake
def _(flags: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(flags, dtype=torch.long)


def _generators(seed: int, device: torch.device, count: int) -> list[torch.Generator]:
    states = np.random.SeedSequence([int(seed), _STREAM_KEY]).generate_state(count)
    return [torch.Generator(device=device).manual_seed(int(s)) for s in states]


class ImaginationEnv:
    """The plan's imagined MDP on a ``WorldModelSystem`` (rsl-rl-lib VecEnv duck type; auto-resets in ``step``).

    :param plan: compiled plan with ``imagination`` and ``world_model`` sections.
    :param system: the run's ``WorldModelSystem`` (model, normalizer, replay buffer).
    :param num_envs: overrides ``imagination.num_envs``.
    :param registry: plugin registry for the term functions (default: the installed plugins).
    :param seed: overrides the plan seed of the env's random streams.

    Attributes: ``num_envs``, ``num_actions``, ``num_steps_per_env``, ``max_episode_length``, ``episode_length_buf``
    (``[N]`` long), ``device``, ``step_dt``, ``reward_terms`` (names of the logged reward terms).
    """

    def __init__(
        self,
        plan: Any,
        system: Any,
        *,
        num_envs: int | None = None,
        registry: Registry | None = None,
        seed: int | None = None,
    ) -> None:
        # the persistent state must be normal tensors (inference tensors cannot be updated outside inference mode)
        with torch.inference_mode(False):
            self._build(plan, system, num_envs, registry, seed)

    def _build(self, plan: Any, system: Any, num_envs: int | None, registry: Registry | None, seed: int | None) -> None:
        spec = plan.imagination
        if spec is None:
            raise ValueError(f"{plan.spec_file}: stage '{plan.experiment.stage}' has no [imagination] table")
        registry = registry if registry is not None else get_registry()
        self.plan = plan
        self.spec = spec
        self.registry = registry
        self.system = system
        self.model = system.model
        self.normalizer = system.normalizer
        self.buffer = system.buffer
        self.device = system.device
        self.num_envs = int(num_envs if num_envs is not None else spec.num_envs)
        if self.num_envs < 1:
            raise ValueError(f"{plan.spec_file}: imagination.num_envs = {self.num_envs}: imagine at least one env")
        self.num_actions = plan.action_dim
        self.num_steps_per_env = spec.steps_per_iteration
        self.max_episode_length = spec.max_episode_length
        self.step_dt = plan.sim.control_dt
        self.history_horizon = plan.world_model.history_horizon
        self.warm_up_context = not plan.quirks.skip_imagination_context_warmup
        self.dof_acc_uses_joint_pos = plan.quirks.dof_acc_uses_joint_pos
        self.lagged_first_contact = plan.quirks.feet_air_time_lagged_first_contact
        self.penalty_weight = float(spec.uncertainty_penalty_weight)
        K = self.model.ensemble_size
        self.sample_members = spec.member_sampling == "per_env_random" and K > 1
        seed = plan.experiment.seed if seed is None else seed
        (self._window_gen, self._start_gen, self._command_gen, self._push_gen, self._noise_gen) = _generators(
            seed, self.device, 5
        )

        robot = registry.robots.get(plan.robot.name)
        limits = soft_joint_pos_limits(robot, self.device) if robot is not None else None
        self.mapping = StateMapping(plan, self.device, soft_joint_pos_limits=limits, registry=registry)
        self._reward_fns = bind_term_functions(plan.rewards, registry, "reward")
        if any(t.name == PENALTY_TERM for t in plan.rewards) and self.penalty_weight > 0.0:
            raise ValueError(
                f"{plan.spec_file}: a reward term is named {PENALTY_TERM!r}, the name imagination logs "
                f"its uncertainty penalty under; rename the reward table"
            )
        self.reward_terms = tuple(t.name for t in plan.rewards if t.weight != 0.0) + (
            (PENALTY_TERM,) if self.penalty_weight > 0.0 else ()
        )
        self.obs_groups = tuple(dict.fromkeys([*plan.policy.actor_observations, *plan.policy.critic_observations]))
        missing = [g for g in self.obs_groups if g not in plan.observations]
        if missing:
            raise ValueError(
                f"{plan.spec_file}: policy.actor/critic_observations name group(s) {missing} that the "
                f"plan does not define (groups: {sorted(plan.observations)})"
            )
        groups = {
            g: attrs.evolve(plan.observations[g], corruption=bool(spec.observation_noise)) for g in self.obs_groups
        }
        self._observer = ObservationAssembler(groups, registry, self.device, self._noise_gen)

        n, S, A = self.num_envs, plan.world_model.state_dim, self.num_actions
        f32 = {"device": self.device, "dtype": torch.float32}
        self._command_ranges, self._standing_share = self._command_distribution(plan)
        low, high = spec.command_resample_interval_range
        self._command_interval = (int(low), int(high))
        self._push_interval = None if spec.push_interval_range is None else tuple(map(int, spec.push_interval_range))
        if self._push_interval is not None:
            if "base_lin_vel" in self.mapping.missing_fields:
                raise ValueError(
                    f"{plan.spec_file}: imagination.push_interval_range pushes the base velocity, but no "
                    f"observations.system_state term of kind base_lin_vel predicts it; add one or remove "
                    f"push_interval_range"
                )
            self._push_columns = self.mapping.columns("base_lin_vel").start
            self._push_scale = spec.push_velocity * self.mapping.scale_of("base_lin_vel")

        # per-env state: persistent tensors, updated in place (``_commit``) so a captured CUDA graph of ``advance``
        # reads and writes the same memory on every replay
        self._state = torch.zeros(n, S, **f32)  # normalized s_t
        self._state_obs = self.normalizer.denormalize_state(self._state)  # system_state units
        self._fields = self.mapping.fields(self._state_obs)
        self._last_action = torch.zeros(n, A, **f32)
        self._memory: ModelMemory = self.model.initial_memory(n)
        self._members = torch.zeros(n, dtype=torch.long, device=self.device)
        self._command = torch.zeros(n, 3, **f32)
        self._contacts = {
            g: torch.zeros(n, self._group_width(g), dtype=torch.bool, device=self.device)
            for g in self.mapping.contact_groups
        }
        self.contact_timers: dict[str, ContactTimers] = {
            g: contact_timers.zeros(n, c.shape[1], self.device) for g, c in self._contacts.items()
        }
        self._episode_length = torch.zeros(n, dtype=torch.long, device=self.device)
        self._episode_sums = torch.zeros(n, len(self.reward_terms), **f32)  # columns: reward_terms
        self._episode_return = torch.zeros(n, **f32)
        self._command_left = torch.zeros(n, dtype=torch.long, device=self.device)
        self._push_left = torch.zeros(n, dtype=torch.long, device=self.device)
        self._pool_next = torch.zeros((), dtype=torch.long, device=self.device)  # seeds taken since the last refill
        expected = 2 * n * self.num_steps_per_env / self.max_episode_length  # twice the time-outs of an iteration
        self._allocate_pool(max(_MIN_POOL, int(math.ceil(expected))))
        self._obs: TensorDict | None = None
        self._check_terms()

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
        return self._episode_length

    @episode_length_buf.setter
    def episode_length_buf(self, value: torch.Tensor) -> None:
        value = torch.as_tensor(value, device=self.device)
        if value.shape != (self.num_envs,):
            raise ValueError(f"episode_length_buf must have shape ({self.num_envs},), got {tuple(value.shape)}")
        with torch.no_grad():
            self._episode_length.copy_(value)

    @property
    def unwrapped(self) -> ImaginationEnv:
        return self

    # live per-env tensors (updated in place by every step and reset: clone to keep a copy)
    @property
    def members(self) -> torch.Tensor | None:
        """``[N]`` ensemble member of each env, or None when every env reads the ensemble mean."""
        return self._members if self.sample_members else None

    @property
    def memory(self) -> ModelMemory:
        """The model memory of all envs (rows = envs)."""
        return self._memory

    @property
    def state(self) -> torch.Tensor:
        """``[N, S]`` current normalized states."""
        return self._state

    @property
    def state_obs(self) -> torch.Tensor:
        """``[N, S]`` current states in ``system_state`` units (denormalized)."""
        return self._state_obs

    @property
    def command(self) -> torch.Tensor:
        """``[N, 3]`` current velocity commands ``(v_x, v_y, w_z)``."""
        return self._command

    def get_observations(self) -> TensorDict:
        """The PPO groups (actor and critic), ``{group: [N, dim]}``; zeros before the first ``reset``."""
        if self._obs is None:
            return TensorDict(
                {
                    g: torch.zeros(self.num_envs, self.plan.observations[g].dim, device=self.device)
                    for g in self.obs_groups
                },
                batch_size=[self.num_envs],
                device=self.device,
            )
        return self._obs

    @torch.no_grad()
    def reset(self, env_ids: torch.Tensor | None = None) -> TensorDict:
        """Start new episodes in envs ``env_ids`` (``[B]`` indices; None = all, and the seed pool is refilled) from
        freshly drawn replay-buffer windows; returns the observations."""
        n = self.num_envs
        ids = (
            torch.arange(n, device=self.device)
            if env_ids is None
            else torch.as_tensor(env_ids, device=self.device).long().reshape(-1)
        )
        before = self._snapshot()
        seeds = self._draw_seeds(ids.numel())
        mask = torch.zeros(n, dtype=torch.bool, device=self.device).index_fill(0, ids, True)
        self._start_episodes(
            mask,
            self._uniform(_START_DRAWS, self._start_gen),
            _Seeds(
                state=self._state.index_copy(0, ids, seeds.state),
                last_action=self._last_action.index_copy(0, ids, seeds.last_action),
                contacts={g: c.index_copy(0, ids, seeds.contacts[g]) for g, c in self._contacts.items()},
                memory=self._memory_rows(
                    lambda base, old, rows: base.write_memory_rows(old, ids, rows), self._memory, seeds.memory
                ),
            ),
        )
        self._commit(before)
        if env_ids is None:
            self.refill_seeds()
        self._obs = self.observe()
        return self._obs

    @torch.no_grad()
    def refill_seeds(self) -> int:
        """Draw a fresh pool of warmed-up seeds (with the model's current weights); returns how many seeds envs
        took from the previous pool. A pool that was outrun is doubled past that count first."""
        used = int(self._pool_next)
        if used > self.seed_pool_size:
            self._allocate_pool(2 * used)
        seeds = self._draw_seeds(self.seed_pool_size)
        old, new = _flatten(self._pool_tree()), _flatten(seeds.tree())
        _copy_into([old[k] for k in old], [new[k] for k in old])
        self._pool_next.zero_()
        return used

    @property
    def seeds_used(self) -> int:
        """Seeds taken from the pool since the last refill (a host read)."""
        return int(self._pool_next)

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
        """Steps 1-6 of the module docstring without the observation: rewards ``[N]``, dones ``[N]`` and the extras
        of ``step`` except ``log``. No host synchronisation, fixed shapes (CUDA-graph capturable)."""
        n = self.num_envs
        if actions.shape != (n, self.num_actions):
            raise ValueError(f"actions must have shape ({n}, {self.num_actions}), got {tuple(actions.shape)}")
        action = actions.detach().to(device=self.device, dtype=torch.float32)
        return self._advance(action, self._draw_step_noise())

    def _advance(self, action: torch.Tensor, noise: _StepNoise) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """``advance`` on its random draws: tensor work only (no generator, no host read), so that
        ``torch.compile`` can trace all of it and fuse the state commit into the kernels that compute the state."""
        n = self.num_envs
        before = self._snapshot()
        out, prediction = self.predict(action)
        outcome = self.reward(action, prediction)
        weighted, rewards, length = outcome.weighted, outcome.rewards, outcome.episode_length
        if prediction.termination_prob.shape[1] > 0:
            terminated = (prediction.termination_prob > _THRESHOLD).any(dim=-1)
        else:
            terminated = torch.zeros(n, dtype=torch.bool, device=self.device)
        time_outs = length >= self.max_episode_length
        dones = terminated | time_outs

        # the episodes that end here, as sums over the done envs (no host sync)
        done_f = dones.to(torch.float32)
        sums = self._episode_sums + outcome.per_term
        returns = self._episode_return + rewards
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
        self._memory = out.memory
        self._episode_sums, self._episode_return, self._episode_length = sums, returns, length
        self._last_action = action
        self._contacts = outcome.contacts
        self.contact_timers = outcome.timers
        self._set_state(prediction.next_state, outcome.state_obs, outcome.fields)
        self._advance_commands(noise.command)
        self._push(noise.push)
        self._start_from_pool(dones, noise.start)
        self._commit(before)
        extras = {
            "time_outs": time_outs,
            "epistemic_uncertainty": prediction.epistemic,
            "reward_terms": weighted,
            "finished": finished,
        }
        return rewards, dones, extras

    @torch.no_grad()
    def predict(self, action: torch.Tensor) -> tuple[DynamicsOutput, Prediction]:
        """Step 1: the model's outputs for ``action`` ``[N, A]`` (raw) in the current states, memory after it in
        ``out.memory``. Changes nothing."""
        model = self.model
        out = model(self._state.unsqueeze(1), self.normalizer.normalize_action(action).unsqueeze(1), self._memory)
        return out, model.summarize(out, self.members)

    @torch.no_grad()
    def reward(self, action: torch.Tensor, prediction: Prediction) -> RewardOutcome:
        """Steps 2-3: the predicted state as a view, its contacts and timers, and the rewards of taking ``action``
        (raw, ``[N, A]``) in the current states. Changes nothing."""
        dt = self.step_dt
        next_obs = self.normalizer.denormalize_state(prediction.next_state)
        fields = self.mapping.fields(next_obs)
        contacts = self.mapping.contacts(prediction.contact_prob > _THRESHOLD, prediction.termination_prob > _THRESHOLD)
        timers = {g: contact_timers.advance(t, contacts[g], dt) for g, t in self.contact_timers.items()}
        previous = (
            self._fields["joint_pos"] - self.mapping.default_joint_pos
            if self.dof_acc_uses_joint_pos
            else self._fields["joint_vel"]
        )
        length = self._episode_length + 1
        view = self.mapping.view(
            next_obs,
            fields=fields,
            prev_joint_vel=previous,
            contacts=contacts,
            command=self._command,
            action=action,
            prev_action=self._last_action,
            dt=dt,
            contact_timers=self.contact_timers if self.lagged_first_contact else timers,
            episode_length=length,
            max_episode_length=self.max_episode_length,
        )
        weighted = call_reward_terms(view, self.plan.rewards, self._reward_fns)
        if self.penalty_weight > 0.0:
            weighted[PENALTY_TERM] = prediction.epistemic * (-self.penalty_weight * dt)
        columns = [weighted[name] for name in self.reward_terms]
        per_term = torch.stack(columns, dim=-1) if columns else next_obs.new_zeros(next_obs.shape[0], 0)
        return RewardOutcome(
            weighted=weighted,
            per_term=per_term,
            rewards=total_reward(weighted, view),
            state_obs=next_obs,
            fields=fields,
            contacts=contacts,
            timers=timers,
            episode_length=length,
        )

    @torch.no_grad()
    def observe(self) -> TensorDict:
        """The PPO observation groups of the current states (with noise per ``imagination.observation_noise``)."""
        view = self.mapping.view(
            self._state_obs,
            fields=self._fields,
            prev_joint_vel=self._fields["joint_vel"],
            contacts=self._contacts,
            command=self._command,
            action=self._last_action,
            prev_action=self._last_action,
            dt=self.step_dt,
            contact_timers=self.contact_timers,
            episode_length=self._episode_length,
            max_episode_length=self.max_episode_length,
        )
        return self._observer.compute(view, self.obs_groups)

    # ---------------------------------------------------------------------------------------------------------------
    # persistent state
    # ---------------------------------------------------------------------------------------------------------------
    @property
    def step_generators(self) -> tuple[torch.Generator, ...]:
        """The random streams ``advance`` and ``observe`` draw from (episode starts, commands, pushes, observation
        noise): register them with a CUDA graph that captures those calls. Window draws have a stream of their own."""
        return self._start_gen, self._command_gen, self._push_gen, self._noise_gen

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Every per-env state and seed-pool tensor by path (``"state"``, ``"memory/state"``, ``"pool/state"``, ...).

        Steps, resets and refills update them in place: the same tensors for the env's lifetime (until a refill
        grows the pool), which is what a captured CUDA graph of ``advance`` needs."""
        return {**_flatten(self._snapshot()), **_flatten(self._pool_tree(), "pool")}

    def _snapshot(self) -> dict[str, Any]:
        """The per-env state as it is referenced now (tensors, dicts and the model memory)."""
        return {
            "state": self._state,
            "state_obs": self._state_obs,
            "fields": dict(self._fields),
            "last_action": self._last_action,
            "memory": self._memory,
            "members": self._members,
            "command": self._command,
            "contacts": dict(self._contacts),
            "timers": dict(self.contact_timers),
            "episode_length": self._episode_length,
            "episode_sums": self._episode_sums,
            "episode_return": self._episode_return,
            "command_left": self._command_left,
            "push_left": self._push_left,
            "pool_next": self._pool_next,
        }

    def _commit(self, before: dict[str, Any]) -> None:
        """Copy the state computed since ``before = _snapshot()`` into ``before``'s tensors (one fused copy) and
        make those the state again: every step leaves the state in the same memory."""
        old, new = _flatten(before), _flatten(self._snapshot())
        if old.keys() != new.keys():
            raise RuntimeError(f"imagination state changed its layout: {sorted(old.keys() ^ new.keys())}")
        changed = [k for k in old if new[k] is not old[k]]
        _copy_into([old[k] for k in changed], [new[k] for k in changed])
        self._state, self._state_obs, self._fields = before["state"], before["state_obs"], before["fields"]
        self._last_action, self._memory, self._members = before["last_action"], before["memory"], before["members"]
        self._command, self._contacts, self.contact_timers = before["command"], before["contacts"], before["timers"]
        self._episode_length, self._episode_sums = before["episode_length"], before["episode_sums"]
        self._episode_return, self._command_left = before["episode_return"], before["command_left"]
        self._push_left, self._pool_next = before["push_left"], before["pool_next"]

    # ---------------------------------------------------------------------------------------------------------------
    # internals
    # ---------------------------------------------------------------------------------------------------------------
    @staticmethod
    def _command_distribution(plan: Any) -> tuple[VelocityRanges | None, float]:
        """Ranges and standing share of the plan's velocity command (None without a command term)."""
        if not plan.commands:
            return None, 0.0
        params = dict(plan.commands[0].params)
        ranges = dict(params.get("ranges") or {})
        ranges.update({k: params[k] for k in _RANGE_KEYS if k in params})
        ranges = {k: v for k, v in ranges.items() if k in _RANGE_KEYS}
        return VelocityRanges.from_mapping(ranges), float(params.get("rel_standing_envs", 0.0))

    def _uniform(self, width: int, generator: torch.Generator) -> torch.Tensor:
        """``[N, width]`` uniform draws in [0, 1) from ``generator``."""
        return torch.rand(self.num_envs, width, generator=generator, device=self.device)

    def _draw_step_noise(self) -> _StepNoise:
        return _StepNoise(
            command=self._uniform(_COMMAND_DRAWS, self._command_gen),
            push=self._uniform(_PUSH_DRAWS, self._push_gen),
            start=self._uniform(_START_DRAWS, self._start_gen),
        )

    def _commands(self, u: torch.Tensor) -> torch.Tensor:
        """``[N, 3]`` commands from draws ``u`` ``[N, 4]`` (zeros without a command term)."""
        if self._command_ranges is None:
            return torch.zeros(self.num_envs, 3, device=self.device)
        return commands_from_uniform(u, self._command_ranges, self._standing_share)

    def _group_width(self, group: str) -> int:
        blocks = [b for b in self.mapping.contact_blocks + self.mapping.termination_blocks if b.group == group]
        widths = {b.columns.stop - b.columns.start for b in blocks}
        if len(widths) != 1:
            raise ValueError(
                f"{self.plan.spec_file}: contact group {group!r} appears with different widths "
                f"{sorted(widths)} in the system_contact/system_termination terms"
            )
        return widths.pop()

    @staticmethod
    def _interval(bounds: tuple[int, int], u: torch.Tensor) -> torch.Tensor:
        """``[N]`` integers uniform in [low, high) (= low when low == high) from draws ``u`` ``[N]``."""
        low, high = bounds
        return low + torch.floor(u * (high - low)).to(torch.long)

    def _set_state(
        self, state: torch.Tensor, state_obs: torch.Tensor | None = None, fields: dict[str, torch.Tensor] | None = None
    ) -> None:
        self._state = state
        self._state_obs = self.normalizer.denormalize_state(state) if state_obs is None else state_obs
        self._fields = self.mapping.fields(self._state_obs) if fields is None else fields

    def _advance_commands(self, u: torch.Tensor) -> None:
        """Count the commands down; expired ones are redrawn from ``u`` ``[N, _COMMAND_DRAWS]``."""
        self._command_left = self._command_left - 1
        expired = self._command_left <= 0
        self._command = torch.where(expired.unsqueeze(-1), self._commands(u[:, :4]), self._command)
        self._command_left = torch.where(expired, self._interval(self._command_interval, u[:, 4]), self._command_left)

    def _push(self, u: torch.Tensor) -> None:
        """Count the push timers down; pushes that fire take their velocity and next interval from ``u``."""
        if self._push_interval is None:
            return
        self._push_left = self._push_left - 1
        fire = self._push_left <= 0
        delta = (2.0 * u[:, :2] - 1.0) * self._push_scale * fire.unsqueeze(-1)
        start, S = self._push_columns, self._state_obs.shape[1]
        pushed = self._state_obs + torch.nn.functional.pad(delta, (start, S - start - 2))
        self._set_state(self.normalizer.normalize_state(pushed), pushed)
        self._push_left = torch.where(fire, self._interval(self._push_interval, u[:, 2]), self._push_left)

    # -- seeds ---------------------------------------------------------------------------------------------------
    def _memory_rows(self, fn: Callable[..., Any], *memories: ModelMemory) -> ModelMemory:
        """``fn(base, *parts)`` applied to the state base's and the auxiliary base's parts of ``memories``."""
        model = self.model
        state = fn(model.state_base, *(m.state for m in memories))
        aux = None
        if model.auxiliary_base is not None:
            aux = fn(model.auxiliary_base, *(m.auxiliary for m in memories))
        return ModelMemory(state, aux)

    def _draw_seeds(self, count: int) -> _Seeds:
        """``count`` seeds from windows drawn uniformly from the replay buffer (see the module docstring)."""
        M = self.history_horizon
        windows = self.buffer.sample_windows(count, M, self._window_gen)
        state = windows.state.to(self.device, torch.float32)
        action = windows.action.to(self.device, torch.float32)
        if self.warm_up_context and M > 1:
            memory = self._warm_up(*applied_action_pairs(state, action))
        else:
            memory = self.model.initial_memory(count)
        contacts = self.mapping.contacts(
            windows.contact[:, -1].to(self.device) > _THRESHOLD, windows.termination[:, -1].to(self.device) > _THRESHOLD
        )
        return _Seeds(
            state=state[:, -1],
            last_action=self.normalizer.denormalize_action(action[:, -1]),
            contacts={g: contacts[g] for g in self._contacts},
            memory=memory,
        )

    def _warm_up(self, state: torch.Tensor, action: torch.Tensor) -> ModelMemory:
        """The model memory after the (state, action) pairs ``[B, M - 1, ·]`` of new episodes' windows."""
        return self.model.warm_up(state, action)

    def _allocate_pool(self, size: int) -> None:
        """An empty pool of ``size`` seeds (zeros until ``refill_seeds``), as normal tensors."""
        self.seed_pool_size = size
        S, A = self._state.shape[1], self._last_action.shape[1]
        with torch.inference_mode(False):
            self._pool = _Seeds(
                state=self._state.new_zeros(size, S),
                last_action=self._last_action.new_zeros(size, A),
                contacts={g: c.new_zeros(size, c.shape[1]) for g, c in self._contacts.items()},
                memory=self.model.initial_memory(size),
            )

    def _pool_tree(self) -> dict[str, Any]:
        return self._pool.tree()

    def _start_from_pool(self, dones: torch.Tensor, u: torch.Tensor) -> None:
        """Done envs take the next seeds of the pool, in env order (no host sync); ``u``: ``_start_episodes``."""
        P = self.seed_pool_size
        index = (self._pool_next + exclusive_count(dones)) % P  # [N]: seed of each env if it ends
        pool = self._pool
        self._start_episodes(
            dones,
            u,
            _Seeds(
                state=pool.state.index_select(0, index),
                last_action=pool.last_action.index_select(0, index),
                contacts={g: c.index_select(0, index) for g, c in pool.contacts.items()},
                memory=self._memory_rows(lambda base, rows: base.select_memory(rows, index), pool.memory),
            ),
        )
        self._pool_next = self._pool_next + dones.sum()

    def _start_episodes(self, mask: torch.Tensor, u: torch.Tensor, seeds: _Seeds) -> None:
        """New episodes in the envs of ``mask`` ``[N]`` bool; ``seeds`` holds full ``[N]``-row candidates, of which
        only the masked rows are used. ``u`` ``[N, _START_DRAWS]``: every env's draws (member, command, command and
        push intervals), used in the masked rows."""
        column = mask.unsqueeze(-1)

        def rows(base: Any, new: Any, old: Any) -> Any:
            def pick(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
                view = [1] * b.dim()
                view[base.memory_batch_dim] = -1
                return torch.where(mask.view(view), a, b)

            if isinstance(old, tuple):
                return tuple(pick(a, b) for a, b in zip(new, old, strict=True))
            return pick(new, old)

        self._memory = self._memory_rows(rows, seeds.memory, self._memory)
        self._set_state(
            torch.where(column, seeds.state, self._state),
            torch.where(column, self.normalizer.denormalize_state(seeds.state), self._state_obs),
        )
        self._last_action = torch.where(column, seeds.last_action, self._last_action)
        self._contacts = {g: torch.where(column, seeds.contacts[g], c) for g, c in self._contacts.items()}
        self.contact_timers = {g: _cleared(t, column) for g, t in self.contact_timers.items()}
        if self.sample_members:
            K = self.model.ensemble_size
            drawn = torch.floor(u[:, 0] * K).to(torch.long).clamp_(max=K - 1)
            self._members = torch.where(mask, drawn, self._members)
        self._episode_length = self._episode_length.masked_fill(mask, 0)
        self._episode_sums = self._episode_sums.masked_fill(column, 0.0)
        self._episode_return = self._episode_return.masked_fill(mask, 0.0)
        self._command = torch.where(column, self._commands(u[:, 1:5]), self._command)
        self._command_left = torch.where(mask, self._interval(self._command_interval, u[:, 5]), self._command_left)
        if self._push_interval is not None:
            self._push_left = torch.where(mask, self._interval(self._push_interval, u[:, 6]), self._push_left)

    def _check_terms(self) -> None:
        """Fail at construction, naming the term, when a reward or PPO observation term reads a view field that no
        ``system_state`` term predicts, or a contact group that neither binary head predicts."""
        missing = self.mapping.missing_fields
        fields = self.mapping.fields(self._state_obs[:1])
        for name in missing:
            fields[name] = torch.full_like(fields[name], float("nan"))
        contacts = {g: c[:1] for g, c in self._contacts.items()}
        timers = {g: contact_timers.zeros(1, c.shape[1], self.device) for g, c in contacts.items()}
        one = torch.zeros(1, self.num_actions, device=self.device)
        view = self.mapping.view(
            self._state_obs[:1],
            fields=fields,
            prev_joint_vel=fields["joint_vel"],
            contacts=contacts,
            command=torch.zeros(1, 3, device=self.device),
            action=one,
            prev_action=one,
            dt=self.step_dt,
            contact_timers=timers,
            episode_length=torch.zeros(1, dtype=torch.long, device=self.device),
            max_episode_length=self.max_episode_length,
        )
        hint = (
            "imagination builds its state view from the world model's system_state, system_contact and "
            "system_termination groups"
        )
        generator = torch.Generator(device=self.device).manual_seed(0)  # leaves the noise stream untouched
        observer = ObservationAssembler(
            {g: self._observer.groups[g].group for g in self.obs_groups}, self.registry, self.device, generator
        )
        try:
            weighted = call_reward_terms(view, self.plan.rewards, self._reward_fns)
            obs = observer.compute(view, self.obs_groups)
        except KeyError as exc:
            raise ValueError(f"{self.plan.spec_file}: {exc.args[0]} ({hint})") from None
        bad = [f"reward term {name!r}" for name, value in weighted.items() if not torch.isfinite(value).all()]
        bad += [f"observation group {g!r}" for g in self.obs_groups if not torch.isfinite(obs[g]).all()]
        if bad:
            raise ValueError(
                f"{self.plan.spec_file}: {', '.join(bad)} read(s) state the world model does not "
                f"predict ({', '.join(missing)}); add the matching term to [observations.system_state] "
                f"or set the reward weight to 0 ({hint})"
            )


def _copy_into(targets: list[torch.Tensor], sources: list[torch.Tensor]) -> None:
    """``targets[i].copy_(sources[i])``: eagerly one ``_foreach_copy_``; under ``torch.compile`` one copy per tensor,
    which inductor folds into the kernel that computes the source (it lowers ``_foreach_copy_`` to one horizontal
    kernel over every tensor instead, which fails to build for the imagination's ~70 state tensors)."""
    if torch.compiler.is_compiling():
        for target, source in zip(targets, sources, strict=True):
            target.copy_(source)
    elif targets:
        torch._foreach_copy_(targets, sources)


def _flatten(value: Any, prefix: str = "", out: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a ``_snapshot`` by path (``"fields/joint_pos"``, ``"memory/state/0"``, ...)."""
    out = {} if out is None else out
    if prefix == "":  # the snapshot itself: its keys are the top-level names
        for key, item in value.items():
            _flatten(item, key, out)
    elif isinstance(value, torch.Tensor):
        out[prefix] = value
    elif isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}/{key}", out)
    elif isinstance(value, tuple):
        for i, item in enumerate(value):
            _flatten(item, f"{prefix}/{i}", out)
    elif isinstance(value, ModelMemory):
        _flatten(value.state, f"{prefix}/state", out)
        _flatten(value.auxiliary, f"{prefix}/auxiliary", out)
    elif isinstance(value, ContactTimers):
        for name in ("current_air_time", "current_contact_time", "last_air_time", "last_contact_time"):
            out[f"{prefix}/{name}"] = getattr(value, name)
    elif value is not None:
        raise TypeError(f"unexpected state entry {prefix} of type {type(value).__name__}")
    return out
