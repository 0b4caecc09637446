"""Runner steps: what one training iteration does, as data.

A stage's plan lists its steps (``plan.steps``, e.g. ``("collect", "update_policy")`` for ``init``; the stage's
``StageDef`` decides them). The runner looks each name up among the registered ``StepDef`` records (hook
``rwmspec_runner_steps``: name -> ``"module:Class"``, imported on first use), builds one object per step with
``Class(runner)`` and calls ``step.run(ctx)`` in plan order every iteration. Adding a step is registering a
``StepDef`` from any plugin, never subclassing the runner or editing the runtime.

A step object:

- ``__init__(runner)``: may read ``runner.plan``, ``runner.env``, ``runner.device``, ``runner.episodes``,
  ``runner.references`` (checkpoint paths of the plan's run references by spec key, e.g.
  ``{"runner.world_model_from": Path}``; empty when a run resumes, because the step's own state then comes back
  through ``load_state_dict``), ``runner.shared`` (objects steps share, e.g. the world model) and keep what it
  needs.
- ``run(ctx)``: does its work for iteration ``ctx.iteration`` (``runner.alg`` is rsl-rl-lib's PPO); writes scalar
  metrics (TensorBoard tags) into ``ctx.metrics``; reads what earlier steps left in ``ctx`` (``ctx.rollout`` from
  ``collect``, ``ctx.scratch``).
- ``state_dict()`` / ``load_state_dict(checkpoint)``: extra top-level checkpoint entries the step owns (e.g.
  ``world_model_state_dict``); the runner merges them into every checkpoint and hands the whole checkpoint back on
  resume.
- ``timing``: ``"collection"`` or ``"learning"``, the bucket its wall time is reported in.
- ``policy_env``: None, or an env (``num_envs``, ``num_steps_per_env``, ``get_observations()``) whose transitions
  fill PPO's rollout storage instead of the real env's; the runner sizes PPO's storage for it (the ``imagine`` step's
  imagination env). At most one step of a plan sets it. ``runner.alg`` exists only after all steps are built.
- ``renders(plan)`` (class method): whether the step draws pictures of the env (visualize's video); the env is
  then made for rendering (``make_env(..., render=True)``, before the simulator loads). False by default.
- A step that leaves PPO's storage unfilled in an iteration (e.g. world-model warm-up) sets
  ``ctx.scratch["skip_policy_update"] = True``; ``update_policy`` then does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from tensordict import TensorDict

from rwmspec.manager import Registry, resolve
from rwmspec.plan import Plan
from rwmspec_runtime.errors import runtime_error

if TYPE_CHECKING:
    from rwmspec_runtime.runner import Runner


@dataclass
class EnvTransition:
    """One real env step of all N envs, as the env returned it (tensors on the learning device)."""

    obs: TensorDict  #: observations the action was computed from, batch [N]
    actions: torch.Tensor  #: [N, A]
    next_obs: TensorDict  #: observations after the step (already reset where ``dones``), batch [N]
    rewards: torch.Tensor  #: [N]
    dones: torch.Tensor  #: [N] terminated or timed out
    extras: dict[str, Any]  #: the env's extras (``time_outs``, ``log``, ``terminal_observations`` ...)


@dataclass
class IterationContext:
    """What the steps of one iteration share."""

    iteration: int  #: 0-based index of the iteration being run
    metrics: dict[str, float] = field(default_factory=dict)  #: tag -> value, logged after the last step
    rollout: list[EnvTransition] = field(default_factory=list)  #: real transitions gathered by ``collect``
    scratch: dict[str, Any] = field(default_factory=dict)  #: free-form hand-over between steps


class Step:
    """Base of runner steps (see the module docstring for the contract)."""

    name: ClassVar[str] = ""
    timing: ClassVar[str] = "learning"
    policy_env: Any = None

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    @classmethod
    def renders(cls, plan: Plan) -> bool:
        """Whether this step renders the env in ``plan`` (see the module docstring)."""
        return False

    def run(self, ctx: IterationContext) -> None:
        raise NotImplementedError(f"step {type(self).__name__} must implement run(ctx)")

    def state_dict(self) -> dict[str, Any]:
        """Top-level checkpoint entries this step owns; none by default."""
        return {}

    def load_state_dict(self, checkpoint: Mapping[str, Any]) -> None:
        """Restore from a whole checkpoint dict; steps without state ignore it."""
        return None


class NonFiniteError(RuntimeError):
    """Raised inside the rollout; the runner turns it into an RWM506 diagnostic."""


def check_finite(obs: TensorDict, rewards: torch.Tensor) -> None:
    for group, tensor in obs.items():
        if not torch.isfinite(tensor).all():
            raise NonFiniteError(f"observation group '{group}' returned by the env contains NaN or inf values")
    if not torch.isfinite(rewards).all():
        raise NonFiniteError("the rewards returned by the env contain NaN or inf values")


class CollectRollout(Step):
    """Real rollout of ``ppo.num_steps_per_env`` steps with the current stochastic policy.

    When the policy learns from real data (no ``imagine`` step in the plan) each step goes into PPO's rollout storage
    and the returns are computed at the end; otherwise the policy only acts. Every transition is kept in
    ``ctx.rollout`` for later steps (``store_transitions``).
    """

    name = "collect"
    timing = "collection"

    def __init__(self, runner: Runner) -> None:
        super().__init__(runner)
        self.num_steps = runner.plan.ppo.num_steps_per_env
        #: whether PPO learns from this rollout: unless another step brings the env PPO learns from (``imagine``'s
        #: imagination env), known once every step is built
        self.feeds_policy = True
        self.check_nan = runner.plan.runner.check_for_nan

    def run(self, ctx: IterationContext) -> None:
        runner, alg, env = self.runner, self.runner.alg, self.runner.env
        obs = runner.obs
        step_rewards = []
        with torch.inference_mode():
            for _ in range(self.num_steps):
                # alg.act also records value and log-prob for PPO; acting alone needs only the actor
                actions = alg.act(obs) if self.feeds_policy else alg.actor(obs, stochastic_output=True)
                next_obs, rewards, dones, extras = env.step(actions.to(env.device))
                if self.check_nan:
                    check_finite(next_obs, rewards)
                device = runner.device
                next_obs, rewards, dones = next_obs.to(device), rewards.to(device), dones.to(device)
                if self.feeds_policy:
                    alg.process_env_step(next_obs, rewards, dones, extras)
                runner.episodes.record(rewards, dones, extras)
                ctx.rollout.append(EnvTransition(obs, actions, next_obs, rewards, dones, extras))
                step_rewards.append(rewards.mean())
                obs = next_obs
            if self.feeds_policy:
                alg.compute_returns(obs)
        runner.obs = obs
        ctx.metrics["Train/mean_step_reward"] = torch.stack(step_rewards).mean().item()


class UpdatePolicy(Step):
    """PPO update on the rollout storage (epochs x mini-batches); logs losses, learning rate and action std."""

    name = "update_policy"

    def run(self, ctx: IterationContext) -> None:
        if ctx.scratch.get("skip_policy_update"):
            return
        alg = self.runner.alg
        losses = alg.update()
        for key, value in losses.items():
            if self.runner.plan.runner.check_for_nan and not torch.isfinite(torch.tensor(value)):
                raise NonFiniteError(f"the PPO {key} loss is {value}")
            ctx.metrics[f"Loss/{key}"] = float(value)
        ctx.metrics["Loss/learning_rate"] = float(alg.learning_rate)
        ctx.metrics["Policy/mean_std"] = alg.get_policy().output_std.mean().item()


def step_classes(plan: Plan, registry: Registry) -> list[type[Step]]:
    """The Step class of each of ``plan.steps``, in order; a name no plugin registers is an RWM508 error listing
    the known ones."""
    unknown = [n for n in plan.steps if n not in registry.steps]
    if unknown:
        known = ", ".join(sorted(registry.steps))
        raise runtime_error(
            "RWM508",
            f"the plan of stage '{plan.experiment.stage}' runs step(s) {', '.join(map(repr, unknown))} that "
            f"no installed plugin provides (available steps: {known})",
            file=plan.spec_file,
            hint="install the plugin that registers these steps (hook rwmspec_runner_steps)",
        )
    classes = []
    for name in plan.steps:
        cls = resolve(registry.steps[name].step)
        if not (isinstance(cls, type) and issubclass(cls, Step)):
            raise TypeError(f"runner step {name!r}: {registry.steps[name].step} is not a Step subclass")
        classes.append(cls)
    return classes


def build_steps(runner: Runner) -> list[Step]:
    """One step object per name of ``runner.plan.steps``, in order."""
    return [cls(runner) for cls in step_classes(runner.plan, runner.registry)]
