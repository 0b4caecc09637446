"""``WorldModelSystem``: the world model, its trainer, its replay buffer and normalizers, built from a plan.

The model comes from the plugin that registers ``plan.world_model.architecture`` (``build_world_model``); the
runtime then talks to it through the ``WorldModel`` protocol only.

The steps of one run share a single instance (``WorldModelSystem.of(runner)``): ``store_transitions`` fills its
buffer, ``update_world_model`` trains its model, ``imagine`` rolls the model out. ``eval-model`` and the visualize
stage build one from a checkpoint with ``from_checkpoint``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from rwmspec.manager import Registry, get_registry, resolve
from rwmspec.plan import WorldModelPlan
from rwmspec.spec.model import UpstreamQuirksSpec
from rwmspec_runtime import checkpoints
from rwmspec_runtime.world_model.protocol import WorldModel
from rwmspec_runtime.world_model.replay_buffer import ReplayBuffer
from rwmspec_runtime.world_model.system_data import SystemNormalizer
from rwmspec_runtime.world_model.trainer import WorldModelTrainer

if TYPE_CHECKING:
    from rwmspec.plan import Plan

#: checkpoint keys of the world model (beside rsl-rl-lib's policy keys)
MODEL_KEY = "world_model_state_dict"
OPTIMIZER_KEY = "world_model_optimizer_state_dict"
#: key under which the runner's steps share the instance (``runner.shared``)
SHARED_KEY = "world_model"
#: seed offset of the world model's own random stream (window sampling, bootstrap, rollout noise)
_SEED_OFFSET = 7919


def build_world_model(
    plan: WorldModelPlan, quirks: UpstreamQuirksSpec | None = None, *, registry: Registry | None = None
) -> WorldModel:
    """The model of ``plan.architecture``, built by the factory its plugin registered.

    :param quirks: the plan's ``UpstreamQuirksSpec`` (None: all off).
    :param registry: where to find the architecture (default: the installed plugins).
    :raises ValueError: the architecture is not registered. :raises TypeError: the factory built no ``WorldModel``.
    """
    registry = registry if registry is not None else get_registry()
    arch = registry.architectures.get(plan.architecture)
    if arch is None:
        known = ", ".join(sorted(registry.architectures)) or "none"
        raise ValueError(
            f"world_model.architecture = {plan.architecture!r} is not a registered architecture "
            f"(known: {known}); pick one of these or install the plugin that provides it"
        )
    model = resolve(arch.factory)(plan, quirks=quirks if quirks is not None else UpstreamQuirksSpec())
    if not isinstance(model, WorldModel) or not isinstance(model, torch.nn.Module):
        provider = registry.providers.get(("architectures", arch.name), "?")
        missing = [name for name in _PROTOCOL_MEMBERS if not hasattr(model, name)]
        raise TypeError(
            f"architecture {plan.architecture!r} of plugin {provider}: factory {arch.factory} returned "
            f"{type(model).__name__}, which is not a torch.nn.Module implementing "
            f"rwmspec_runtime.world_model.WorldModel" + (f" (missing: {', '.join(missing)})" if missing else "")
        )
    return model


#: what ``isinstance(model, WorldModel)`` checks, for naming what a plugin's model lacks
_PROTOCOL_MEMBERS = sorted(
    {*WorldModel.__annotations__, *(name for name, v in vars(WorldModel).items() if callable(v))}
    - {"__init__", "__subclasshook__"}
)


class WorldModelSystem:
    """Everything a run needs to train and use its world model.

    :param plan: the compiled plan (its ``world_model`` section must be set).
    :param num_envs: real envs feeding the replay buffer.
    :param device: where the model, buffer and training live.
    """

    def __init__(
        self, plan: Plan, num_envs: int, device: torch.device | str = "cpu", *, registry: Registry | None = None
    ) -> None:
        if plan.world_model is None:
            raise ValueError(f"{plan.spec_file}: stage '{plan.experiment.stage}' needs a [world_model] table")
        self.plan = plan
        self.device = torch.device(device)
        wm = plan.world_model
        quirks = plan.quirks
        self.normalizer = SystemNormalizer(plan, self.device)
        self.model = build_world_model(wm, quirks, registry=registry).to(self.device)
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
            system = cls(runner.plan, runner.env.num_envs, runner.device, registry=runner.registry)
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
        cls, plan: Plan, path: str | Path, num_envs: int = 1, device: torch.device | str = "cpu"
    ) -> WorldModelSystem:
        """A system whose model holds the weights of the checkpoint at ``path`` (fingerprint-checked)."""
        system = cls(plan, num_envs, device)
        system.load_state_dict(checkpoints.load_checkpoint(path, map_location=device), path=path)
        return system
