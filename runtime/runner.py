"""The generic training loop: every iteration runs the steps the plan lists, in order.

Which steps run is data of the compiled plan (``plan.steps``, decided per stage by the compiler); the step objects
come from the registered ``StepDef`` records (``rwmspec_runtime.steps.build_steps``). The runner owns what every stage shares: the rsl-rl-lib PPO
algorithm, the env and its current observations, episode statistics, metrics, console output and checkpoints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

import rwmspec
from rwmspec.manager import Registry, get_registry
from rwmspec.plan import Plan, plan_to_dict
from rwmspec_runtime import checkpoints
from rwmspec_runtime.episodes import EpisodeStats
from rwmspec_runtime.errors import runtime_error
from rwmspec_runtime.metrics import MetricsLog
from rwmspec_runtime.plots import write_learning_curve
from rwmspec_runtime.ppo import build_ppo
from rwmspec_runtime.progress import Progress
from rwmspec_runtime.rundir import CURVE_FILE, RunDir
from rwmspec_runtime.seeding import rng_state, seed_everything, set_rng_state
from rwmspec_runtime.steps import CollectRollout, IterationContext, NonFiniteError, build_steps

#: checkpoint keys the runner writes itself; steps may not claim them
RESERVED_KEYS = frozenset(checkpoints.RSL_RL_KEYS) | {"rwmspec"}


class Runner:
    """Trains one plan in one env, writing into one run directory."""

    def __init__(
        self,
        plan: Plan,
        env: Any,
        run_dir: str | Path | RunDir,
        *,
        device: str = "cpu",
        log: Callable[[str], None] = print,
        console: str | None = None,
        references: Mapping[str, Path] | None = None,
        registry: Registry | None = None,
    ) -> None:
        """
        :param env: an rsl-rl-lib 5.x VecEnv (``get_observations``, ``step``, ``num_envs``, ``num_actions``,
            ``max_episode_length``, ``episode_length_buf``).
        :param log: callable taking one line of text (start-up and checkpoint messages).
        :param console: ``auto`` / ``full`` / ``compact``; defaults to ``plan.logging.console``.
        :param references: checkpoint paths of the plan's run references by spec key (``"runner.policy_from"``,
            ``"runner.world_model_from"``), for steps that load from them.
        """
        self.plan = plan
        self.env = env
        self.run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        self.device = device
        self.log = log
        self.console_mode = console or plan.logging.console
        self.references = dict(references or {})
        #: the installed plugins' records (steps, term kinds, architectures)
        self.registry = registry if registry is not None else get_registry()
        seed_everything(plan.experiment.seed)
        self.obs = env.get_observations().to(device)
        self.episodes = EpisodeStats(env.num_envs, device)
        #: completed iterations (the next iteration to run has 0-based index ``iteration``)
        self.iteration = 0
        #: objects several steps share (e.g. the world model), keyed by name; created by the steps themselves
        self.shared: dict[str, Any] = {}
        # steps first: a step may bring the env whose transitions PPO learns from (``imagine``)
        self.steps = build_steps(self)
        policy_env = next((s.policy_env for s in self.steps if s.policy_env is not None), env)
        for step in self.steps:
            if isinstance(step, CollectRollout):
                step.feeds_policy = policy_env is env
        num_steps = plan.ppo.num_steps_per_env if policy_env is env else policy_env.num_steps_per_env
        self.alg = build_ppo(
            plan,
            policy_env.get_observations().to(device),
            policy_env.num_envs,
            env.num_actions,
            device,
            num_steps=num_steps,
        )
        self.last_checkpoint: Path | None = None
        self.metrics: MetricsLog | None = None

    # ------------------------------------------------------------------------------------------------------------
    # checkpoints
    # ------------------------------------------------------------------------------------------------------------
    def checkpoint_payload(self) -> dict[str, Any]:
        """The checkpoint dict: rsl-rl-lib 5.x keys, step state, and the ``rwmspec`` record."""
        payload = self.alg.save()
        payload["iter"] = self.iteration
        payload["infos"] = {"run": self.run_dir.name}
        for step in self.steps:
            extra = step.state_dict()
            clash = RESERVED_KEYS.intersection(extra) | set(extra).intersection(payload)
            if clash:
                raise ValueError(f"step {step.name!r} saves checkpoint keys {sorted(clash)} that are already used")
            payload.update(extra)
        payload["rwmspec"] = {
            "plan": plan_to_dict(self.plan),
            "fingerprint": self.plan.fingerprint(),
            "version": rwmspec.__version__,
            "steps": list(self.plan.steps),
            "rng": rng_state(),
        }
        return payload

    def save(self) -> Path:
        """Write ``model_<iteration>.pt`` and the ``latest`` pointer (atomically), then the learning curve."""
        path = checkpoints.save_checkpoint(self.checkpoint_payload(), self.run_dir.path, self.iteration)
        self.last_checkpoint = path
        if self.plan.logging.learning_curve and self.metrics is not None:
            write_learning_curve(
                self.metrics.history,
                self.run_dir.file(CURVE_FILE),
                title=f"{self.plan.experiment.name} / {self.run_dir.name}",
            )
        return path

    def restore(self, checkpoint: Mapping[str, Any]) -> None:
        """Continue from a checkpoint of this run: weights, optimizer, iteration count, step state, RNG state."""
        self.alg.load(dict(checkpoint), None, strict=True)
        self.iteration = int(checkpoint["iter"])
        for step in self.steps:
            step.load_state_dict(checkpoint)
        record = checkpoint.get("rwmspec") or {}
        if "rng" in record:
            set_rng_state(record["rng"])

    def load_policy(self, checkpoint: Mapping[str, Any]) -> None:
        """Start from another run's actor and critic weights (``runner.policy_from``); iteration count stays 0."""
        self.alg.load(dict(checkpoint), {"actor": True, "critic": True}, strict=True)

    # ------------------------------------------------------------------------------------------------------------
    # the loop
    # ------------------------------------------------------------------------------------------------------------
    def learn(self) -> None:
        """Run iterations until ``plan.runner.max_iterations`` are complete (a total, also when resuming)."""
        plan, env = self.plan, self.env
        total = plan.runner.max_iterations
        if self.iteration >= total:
            self.log(
                f"run {self.run_dir.path} already has {self.iteration}/{total} iterations; nothing to do "
                f"(raise runner.max_iterations to train further)"
            )
            return
        self.metrics = MetricsLog(
            self.run_dir.path, tensorboard="tensorboard" in plan.logging.writers, start_iteration=self.iteration
        )
        steps_per_iteration = env.num_envs * plan.ppo.num_steps_per_env
        progress = Progress(
            self.console_mode,
            total_iterations=total,
            start_iteration=self.iteration,
            steps_per_iteration=steps_per_iteration,
            run_name=self.run_dir.name,
        )
        if plan.runner.init_at_random_ep_len:
            # spread resets over the episode so that the envs do not all time out in the same step
            env.episode_length_buf = torch.randint_like(env.episode_length_buf, high=int(env.max_episode_length))
        self.obs = env.get_observations().to(self.device)
        self.alg.train_mode()
        try:
            while self.iteration < total:
                metrics = self._iteration(steps_per_iteration)
                self.iteration += 1
                self.metrics.write(self.iteration, metrics)
                progress.update(self.iteration, metrics)
                if self.iteration % plan.runner.save_interval == 0 or self.iteration == total:
                    path = self.save()
                    self.metrics.flush()
                    if progress.mode == "full":
                        self.log(f"saved {path}")
        finally:
            self.metrics.close()

    def _iteration(self, steps_per_iteration: int) -> dict[str, float]:
        ctx = IterationContext(iteration=self.iteration)
        spent = {"collection": 0.0, "learning": 0.0}
        for step in self.steps:
            start = time.perf_counter()
            try:
                step.run(ctx)
            except NonFiniteError as exc:
                raise runtime_error(
                    "RWM506",
                    f"iteration {self.iteration + 1}, step '{step.name}': {exc}",
                    file=self.plan.spec_file,
                    hint="lower ppo.learning_rate or check the env's reward and observation terms; resume from the "
                    "last checkpoint once fixed",
                ) from exc
            spent[step.timing] = spent.get(step.timing, 0.0) + time.perf_counter() - start
        iteration_time = sum(spent.values())
        metrics = dict(ctx.metrics)
        metrics.update(self.episodes.summary())
        metrics["Perf/total_fps"] = steps_per_iteration / max(iteration_time, 1e-9)
        metrics["Perf/collection_time"] = spent["collection"]
        metrics["Perf/learning_time"] = spent["learning"]
        metrics["Perf/iteration_time"] = iteration_time
        return metrics
