"""Runner steps of the world-model stages: ``store_transitions`` and ``update_world_model``.

Both act on the run's shared ``WorldModelSystem``. ``update_world_model`` owns the model's checkpoint entries; when
the plan names ``runner.world_model_from`` (finetune), it starts from that run's weights after checking the plan
fingerprint, so an incompatible model is refused before any training.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from rwmspec_runtime import checkpoints
from rwmspec_runtime.steps import IterationContext, NonFiniteError, Step
from rwmspec_runtime.world_model.evaluation import evaluate_world_model, state_block_slices, termination_at_falls
from rwmspec_runtime.world_model.system import WorldModelSystem
from rwmspec_runtime.world_model.system_data import observed_system_groups
from rwmspec_runtime.world_model.trainer import LOG_PREFIX

#: noise levels of the noised autoregressive error (rwm_method §3.7; 0.5 is upstream's extra level)
EVAL_NOISE_SIGMAS = (0.1, 0.2, 0.4, 0.8)


class StoreTransitions(Step):
    """Append every real transition of ``ctx.rollout`` to the replay buffer (normalized system groups, dones,
    time-outs; pre-reset terminal states for envs whose episode ended)."""

    name = "store_transitions"
    timing = "collection"

    def __init__(self, runner: Any) -> None:
        super().__init__(runner)
        self.system = WorldModelSystem.of(runner)

    def run(self, ctx: IterationContext) -> None:
        system = self.system
        for t in ctx.rollout:
            observed = observed_system_groups(t.next_obs, t.dones, t.extras, system.groups)
            entry = system.normalizer.entry(observed)
            system.buffer.add(
                entry.state,
                entry.action,
                entry.contact,
                entry.termination,
                entry.extension,
                done=t.dones,
                time_out=t.extras.get("time_outs"),
            )
        ctx.metrics[f"{LOG_PREFIX}replay_buffer_steps"] = float(system.buffer.num_steps)


class UpdateWorldModel(Step):
    """One world-model update per iteration (``world_model.train``: mini-batches x sequences), and every
    ``eval_interval`` iterations the autoregressive error on buffer trajectories. Logs ``System Dynamics/*``."""

    name = "update_world_model"

    def __init__(self, runner: Any) -> None:
        super().__init__(runner)
        self.system = WorldModelSystem.of(runner)
        self.train_spec = runner.plan.world_model.train
        self.blocks = state_block_slices(runner.plan.observations["system_state"])
        source = runner.references.get("runner.world_model_from")
        if source is not None:
            # finetune: start from the pretrained weights (not its optimizer, as upstream)
            self.system.load_state_dict(
                checkpoints.load_checkpoint(source, map_location=runner.device), optimizer=False, path=source
            )

    def run(self, ctx: IterationContext) -> None:
        system = self.system
        if system.buffer.num_valid(system.window_length) == 0:
            return  # the buffer does not hold one full M + N window yet
        losses = system.trainer.update(system.buffer, system.generator)
        if self.runner.plan.runner.check_for_nan and not all(map(torch.isfinite, map(torch.tensor, losses.values()))):
            raise NonFiniteError(f"a world-model loss is not finite: {losses}")
        ctx.metrics.update({f"{LOG_PREFIX}{k}": v for k, v in losses.items()})
        interval = self.train_spec.eval_interval
        if interval > 0 and (ctx.iteration + 1) % interval == 0:
            ctx.metrics.update(self.evaluate())

    def evaluate(self) -> dict[str, float]:
        """Autoregressive error (plain, noised, per block) and head precision/recall on buffer trajectories; empty
        while the buffer holds no trajectory of ``eval_trajectory_length`` steps without an episode boundary."""
        spec, system = self.train_spec, self.system
        if system.buffer.num_valid(spec.eval_trajectory_length) == 0:
            return {}
        trajectories = system.buffer.trajectories(
            spec.eval_trajectory_length, spec.num_eval_trajectories, system.generator
        )
        result = evaluate_world_model(
            system.model, trajectories, noise_sigmas=EVAL_NOISE_SIGMAS, blocks=self.blocks, generator=system.generator
        )
        metrics = result.metrics()
        # trajectories never hold a fall before their end, so the termination head is scored on windows ending in one
        length = system.model.history_horizon + 1
        falls = system.buffer.termination_windows(length, spec.num_eval_trajectories, system.generator)
        if falls is not None and system.model.termination_dim > 0:
            others = system.buffer.sample_windows(spec.num_eval_trajectories, length, system.generator)
            metrics.update(termination_at_falls(system.model, falls, others))
        return {f"{LOG_PREFIX}{k}": v for k, v in metrics.items()}

    def state_dict(self) -> dict[str, Any]:
        return self.system.state_dict()

    def load_state_dict(self, checkpoint: Mapping[str, Any]) -> None:
        self.system.load_state_dict(checkpoint, path=self.runner.run_dir.path)
