"""Runner step ``imagine``: PPO's rollout from the world model's imagination (MBPO-PPO, rwm_method §4.2, §4.5, §5.1).

Each iteration, after ``update_world_model``:

* for the first ``imagination.warmup_iterations`` iterations only the world model learns: the step sets
  ``ctx.scratch["skip_policy_update"]``; it does the same while the replay buffer holds no ``history_horizon``-entry
  window yet (e.g. right after a resume: the buffer is not checkpointed);
* on the first iteration after that, all imagined envs are seeded from the replay buffer; afterwards they persist
  across iterations and only done envs start new episodes (upstream Gen-2), from the env's seed pool, which is
  refilled at the start of every iteration (after ``update_world_model``, whose new weights the warm-up uses);
* ``imagination.steps_per_iteration`` steps with ``alg.act`` / ``alg.process_env_step``, then
  ``alg.compute_returns`` on the last observations; ``update_policy`` then trains on the storage. On a CUDA device
  with ``imagination.cuda_graph`` the env's part of a step is replayed from a CUDA graph of the compiled step
  (``graph.GraphedStep``; the policy's act and PPO's storage step stay eager), otherwise it runs eagerly.

Real data (``imagination.real_data_share`` = p > 0): PPO's storage is widened by R = round(p / (1 - p) * n) slots
after the n imagined envs, filled column by column from ``ctx.rollout`` (the real env's transitions of this
iteration) by cycling over the real envs (slot j holds real env j mod n_real). Every mini-batch then holds about a
share p of real transitions (oversampled real envs; upstream mixes at < 0.2%). Their values and log-probabilities
come from the current policy on the real observations with the *real* actions (the real rollout was taken with the
same weights, so these are its behaviour log-probs), and their returns bootstrap from the real env's last
observations (``runner.obs``). The real and imagined step counts must match (``imagination.steps_per_iteration`` =
``ppo.num_steps_per_env``).

Metrics (TensorBoard tags), over the iteration's imagined steps:

* ``Imagination/<term>``: mean episode sum of the imagined episodes that ended, divided by
  ``max_episode_length * dt``: the same normalisation as the real env's ``Episode_Reward/<term>``, so the two tags
  of one term compare directly (upstream logs it the same way);
* ``Train/mean_reward_imagination``, ``Train/mean_episode_length_imagination``: imagined episodes that ended in this
  iteration (the real counterparts are ``Train/mean_reward`` / ``Train/mean_episode_length``);
* ``Model Based/per_step_reward_imagination/<term>``: mean weighted (``* dt``) value of each term per imagined step;
  the real env reports its terms only as episode sums, so the per-step real counterpart exists for the total only:
  ``Model Based/per_step_reward_sum_imagination`` and ``Model Based/per_step_reward_sum_real`` (mean reward per
  step of the real rollout);
* ``Model Based/epistemic_uncertainty`` (mean u per imagined step), ``Model Based/real_data_slots`` (R, when > 0),
  ``Model Based/imagination_new_episodes`` (episodes started from the seed pool in the iteration),
  ``Model Based/imagination_seeds_reused`` (starts beyond the pool's size, which reused seeds; the pool grows),
  ``Perf/imagination_fps`` (imagined env steps per second of the rollout).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch
from tensordict import TensorDict

from rwmspec_runtime.imagination.env import LOG_PREFIX, ImaginationEnv
from rwmspec_runtime.imagination.graph import GraphedStep
from rwmspec_runtime.steps import IterationContext, Step, check_finite
from rwmspec_runtime.world_model.system import WorldModelSystem

if TYPE_CHECKING:
    from rwmspec_runtime.runner import Runner

SKIP_KEY = "skip_policy_update"


def real_data_slots(share: float, num_imagined: int) -> int:
    """R storage slots of real data for a real-data share ``share`` in [0, 1) (validated by the compiler) next to
    ``num_imagined`` envs."""
    return int(round(share / (1.0 - share) * num_imagined))


class MixedPolicyEnv:
    """What PPO's storage is sized for when real data joins imagination: n imagined envs then R real-data slots.

    Only the shape side of a VecEnv (``num_envs``, ``num_steps_per_env``, ``device``, ``get_observations``); the
    ``imagine`` step fills both parts itself.
    """

    def __init__(self, imagined: ImaginationEnv, real_columns: torch.Tensor, real_obs: TensorDict) -> None:
        self.imagined = imagined
        self.real_columns = real_columns
        self.num_envs = imagined.num_envs + real_columns.numel()
        self.num_steps_per_env = imagined.num_steps_per_env
        self.num_actions = imagined.num_actions
        self.device = imagined.device
        self._real_obs = real_obs

    def real_part(self, obs: TensorDict) -> TensorDict:
        """The R real-data slots of a real-env observation (``[n_real]`` batch, any groups)."""
        return obs.select(*self.imagined.obs_groups)[self.real_columns].to(self.device)

    def get_observations(self) -> TensorDict:
        return torch.cat([self.imagined.get_observations(), self.real_part(self._real_obs)], dim=0)


class Imagine(Step):
    """Fill PPO's rollout storage from imagined rollouts of the world model (see the module docstring)."""

    name = "imagine"
    timing = "collection"

    def __init__(self, runner: Runner) -> None:
        super().__init__(runner)
        # `rwmspec validate` guarantees what a stage that imagines needs: an [imagination] table with envs, and a real
        # rollout as long as the imagined one when real data joins PPO's batch
        plan = runner.plan
        spec = plan.imagination
        self.system = WorldModelSystem.of(runner)
        self.env = ImaginationEnv.from_plan(plan, self.system, registry=runner.registry)
        # the captured env step on a GPU when asked for, the plain one elsewhere
        self.env_step = (
            GraphedStep(self.env) if spec.cuda_graph and self.env.device.type == "cuda" else self.env.rollout_step
        )
        self.warmup_iterations = spec.warmup_iterations
        self.check_nan = plan.runner.check_for_nan
        slots = real_data_slots(spec.real_data_share, self.env.num_envs)
        self.mixed: MixedPolicyEnv | None = None
        if slots > 0:
            columns = torch.arange(slots, device=self.env.device) % runner.env.num_envs
            self.mixed = MixedPolicyEnv(self.env, columns, runner.obs)
        self.policy_env = self.mixed if self.mixed is not None else self.env

    def run(self, ctx: IterationContext) -> None:
        env = self.env
        if ctx.iteration < self.warmup_iterations:
            ctx.scratch[SKIP_KEY] = True
            return
        if not env.started:
            buffer = self.system.buffer
            if buffer.num_valid(env.history_horizon) == 0:
                ctx.scratch[SKIP_KEY] = True
                ctx.metrics["Model Based/imagination_waiting_for_buffer"] = 1.0
                return
            env.reset()
            if self.runner.plan.runner.init_at_random_ep_len:
                # as for the real envs: otherwise every imagined episode (and command and push timer) starts in the
                # same step, and the imagined reward per iteration swings with the common episode phase
                env.episode_length_buf = torch.randint_like(env.episode_length_buf, high=int(env.max_episode_length))
        else:
            env.refill_seeds()  # the world model changed: warm the episode starts up with the new weights
        start = time.perf_counter()
        stats = self._rollout(ctx)
        seconds = time.perf_counter() - start
        ctx.metrics.update(stats)
        ctx.metrics["Perf/imagination_fps"] = env.num_envs * env.num_steps_per_env / max(seconds, 1e-9)

    def _rollout(self, ctx: IterationContext) -> dict[str, float]:
        env, alg, mixed = self.env, self.runner.alg, self.mixed
        n = env.num_envs
        zero = torch.zeros((), device=env.device)
        totals: dict[str, torch.Tensor] = {
            "reward": zero,
            "epistemic": zero,
            "count": zero,
            "return": zero,
            "length": zero,
        }
        term_steps = {name: zero for name in env.reward_terms}
        term_episodes = {name: zero for name in env.reward_terms}
        with torch.inference_mode():
            obs = env.get_observations()
            for t in range(env.num_steps_per_env):
                real = ctx.rollout[t] if mixed is not None else None
                policy_obs = obs if real is None else torch.cat([obs, mixed.real_part(real.obs)], dim=0)
                actions = alg.act(policy_obs)
                if real is not None:
                    # the real slots keep the actions the real env took; score them under the current policy
                    taken = torch.cat([actions[:n], real.actions[mixed.real_columns].to(actions.device)], dim=0)
                    alg.transition.actions = taken
                    alg.transition.actions_log_prob = alg.actor.get_output_log_prob(taken).detach()
                obs, rewards, dones, extras = self.env_step(actions[:n])
                if self.check_nan:
                    check_finite(obs, rewards)
                step_rewards, step_dones, time_outs = rewards, dones, extras["time_outs"]
                if real is not None:
                    cols = mixed.real_columns
                    real_time_outs = real.extras.get("time_outs", torch.zeros_like(real.dones, dtype=torch.bool))
                    step_rewards = torch.cat([rewards, real.rewards[cols].to(rewards.device)])
                    step_dones = torch.cat([dones, real.dones[cols].to(dones.device).to(torch.bool)])
                    time_outs = torch.cat([time_outs, real_time_outs[cols].to(dones.device).to(torch.bool)])
                    next_obs = torch.cat([obs, mixed.real_part(real.next_obs)], dim=0)
                else:
                    next_obs = obs
                alg.process_env_step(next_obs, step_rewards, step_dones, {"time_outs": time_outs})
                finished = extras["finished"]
                totals = {
                    "reward": totals["reward"] + rewards.mean(),
                    "epistemic": totals["epistemic"] + extras["epistemic_uncertainty"].mean(),
                    "count": totals["count"] + finished["count"],
                    "return": totals["return"] + finished["return"],
                    "length": totals["length"] + finished["length"],
                }
                for name, value in extras["reward_terms"].items():
                    term_steps[name] = term_steps[name] + value.mean()
                    term_episodes[name] = term_episodes[name] + finished["terms"][name]
            last = obs if mixed is None else torch.cat([obs, mixed.real_part(self.runner.obs)], dim=0)
            alg.compute_returns(last)
        return self._metrics(ctx, totals, term_steps, term_episodes)

    def _metrics(
        self,
        ctx: IterationContext,
        totals: dict[str, torch.Tensor],
        term_steps: dict[str, torch.Tensor],
        term_episodes: dict[str, torch.Tensor],
    ) -> dict[str, float]:
        env = self.env
        steps = env.num_steps_per_env
        names = list(term_steps)
        # one transfer for every number of the iteration
        packed = torch.stack(
            [totals[k] for k in ("reward", "epistemic", "count", "return", "length")]
            + [term_steps[k] for k in names]
            + [term_episodes[k] for k in names]
        ).tolist()
        reward, epistemic, count, returns, lengths = packed[:5]
        per_step, per_episode = packed[5 : 5 + len(names)], packed[5 + len(names) :]
        out = {
            "Model Based/per_step_reward_sum_imagination": reward / steps,
            "Model Based/epistemic_uncertainty": epistemic / steps,
        }
        for name, value in zip(names, per_step, strict=True):
            out[f"Model Based/per_step_reward_imagination/{name}"] = value / steps
        if count > 0:
            out["Train/mean_reward_imagination"] = returns / count
            out["Train/mean_episode_length_imagination"] = lengths / count
            episode_s = env.max_episode_length * env.step_dt
            for name, value in zip(names, per_episode, strict=True):
                out[f"{LOG_PREFIX}{name}"] = value / count / episode_s
        if ctx.rollout:
            out["Model Based/per_step_reward_sum_real"] = float(
                torch.stack([t.rewards.mean() for t in ctx.rollout]).mean()
            )
        if self.mixed is not None:
            out["Model Based/real_data_slots"] = float(self.mixed.real_columns.numel())
        started = env.seeds_used
        out["Model Based/imagination_new_episodes"] = float(started)
        out["Model Based/imagination_seeds_reused"] = float(max(0, started - env.seed_pool_size))
        return out
