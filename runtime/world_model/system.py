"""``WorldModelSystem``: the world model, its trainer, its replay buffer and normalizers, built from a plan.

The steps of one run share a single instance (``WorldModelSystem.of(runner)``): ``store_transitions`` fills its
buffer, ``update_world_model`` trains its model, ``imagine`` rolls the model out. ``eval-model`` and the visualize
stage build one from a checkpoint with ``from_checkpoint``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from rwmspec_runtime import checkpoints
from rwmspec_runtime.world_model.ensemble import SystemDynamicsEnsemble
from rwmspec_runtime.world_model.replay_buffer import ReplayBuffer
from rwmspec_runtime.world_model.system_data import SystemNormalizer
from rwmspec_runtime.world_model.trainer import WorldModelTrainer

#: checkpoint keys of the world model (beside rsl-rl-lib's policy keys)
MODEL_KEY = "world_model_state_dict"
OPTIMIZER_KEY = "world_model_optimizer_state_dict"
#: key under which the runner's steps share the instance (``runner.shared``)
SHARED_KEY = "world_model"
#: seed offset of the world model's own random stream (window sampling, bootstrap, rollout noise)
_SEED_OFFSET = 7919


class WorldModelSystem:
    """Everything a run needs to train and use its world model.

    :param plan: the compiled plan (its ``world_model`` section must be set).
    :param num_envs: real envs feeding the replay buffer.
    :param device: where the model, buffer and training live.
    """

    def __init__(self, plan: Any, num_envs: int, device: torch.device | str = "cpu", *, registry: Any = None) -> None:
        if plan.world_model is None:
            raise ValueError(f"{plan.spec_file}: stage '{plan.experiment.stage}' needs a [world_model] table")
        self.plan = plan
        self.device = torch.device(device)
        wm = plan.world_model
        quirks = plan.quirks
        self.normalizer = SystemNormalizer(plan, self.device)
        self.model = SystemDynamicsEnsemble(wm, registry=registry, epistemic_summed_std=quirks.epistemic_summed_std).to(
            self.device
        )
        self.trainer = WorldModelTrainer(self.model, wm, quirks, self.device)
        self.buffer = ReplayBuffer(
            num_envs,
            wm.train.replay_buffer_size,
            wm.state_dim,
            wm.action_dim,
            wm.contact_dim,
            wm.termination_dim,
            wm.extension_dim,
            self.device,
            windows_cross_episodes=quirks.replay_windows_cross_episodes,
        )
        self.generator = torch.Generator(device=self.device).manual_seed(plan.experiment.seed + _SEED_OFFSET)
        #: system observation groups the buffer is filled from, in stream order
        self.groups = tuple(self.normalizer.streams.values())

    @classmethod
    def of(cls, runner: Any) -> WorldModelSystem:
        """The run's shared instance, created on first use (its buffer holds the real env's envs)."""
        system = runner.shared.get(SHARED_KEY)
        if system is None:
            system = cls(runner.plan, runner.env.num_envs, runner.device)
            runner.shared[SHARED_KEY] = system
        return system

    @property
    def window_length(self) -> int:
        return self.trainer.window_length

    # -- checkpoints -------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Checkpoint entries: the model's weights and the optimizer state. The buffer is not saved (it is large
        and refills within a few iterations); the normalizers come from the plan."""
        return {MODEL_KEY: self.model.state_dict(), OPTIMIZER_KEY: self.trainer.state_dict()}

    def load_state_dict(
        self, checkpoint: Mapping[str, Any], *, optimizer: bool = True, path: str | Path = "checkpoint"
    ) -> None:
        """Restore from a whole checkpoint dict; refuses (RWM504) one whose plan fingerprint differs."""
        checkpoints.check_fingerprint(dict(checkpoint), self.plan.fingerprint(), path)
        if MODEL_KEY not in checkpoint:
            from rwmspec_runtime.errors import runtime_error

            stage = (checkpoint.get("rwmspec") or {}).get("plan", {}).get("experiment", {}).get("stage", "?")
            raise runtime_error(
                "RWM504",
                f"checkpoint {path} (stage '{stage}') holds no world model",
                file=path,
                hint="point world_model_from at a pretrain or finetune run",
            )
        self.model.load_state_dict(checkpoint[MODEL_KEY])
        if optimizer and OPTIMIZER_KEY in checkpoint:
            self.trainer.load_state_dict(checkpoint[OPTIMIZER_KEY])

    @classmethod
    def from_checkpoint(
        cls, plan: Any, path: str | Path, num_envs: int = 1, device: torch.device | str = "cpu"
    ) -> WorldModelSystem:
        """A system whose model holds the weights of the checkpoint at ``path`` (fingerprint-checked)."""
        system = cls(plan, num_envs, device)
        system.load_state_dict(checkpoints.load_checkpoint(path, map_location=device), path=path)
        return system
