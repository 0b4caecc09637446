"""``WorldModelTrainer``: the world model's own Adam optimizer and its update step (rwm_method §3.3, §3.5).

One ``update`` draws ``num_mini_batches`` mini-batches of ``mini_batch_size`` windows of length M + N from the replay
buffer and takes one clipped Adam step on each. The runner logs the returned scalars as ``System Dynamics/<key>``.
The model is any ``WorldModel``: the trainer only reads its parameters, ``history_horizon`` and ``losses``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import torch

from rwmspec_runtime.world_model.protocol import Losses, LossSettings, WorldModel
from rwmspec_runtime.world_model.replay_buffer import ReplayBuffer, Windows

if TYPE_CHECKING:
    from rwmspec.plan import WorldModelPlan

#: Prefix of the trainer's scalars in the run's metric writers (upstream's log keys).
LOG_PREFIX = "System Dynamics/"
#: Keys ``update`` returns after the model's own ``<name>_loss`` terms, in order.
UPDATE_KEYS = ("total_loss", "learning_rate")


class WorldModelTrainer:
    """Trains a ``WorldModel`` from a ``ReplayBuffer``.

    :param model: the model (moved to ``device``); its parameters that require grad are optimized.
    :param wm_plan: the ``WorldModelPlan`` (``forecast_horizon``, ``loss_weights``, ``train``).
    :param quirks: the plan's ``UpstreamQuirksSpec`` (``shared_hidden_state_across_members`` is read); None: all off.
    :param device: where training runs.
    :param autocast_dtype: e.g. ``torch.bfloat16``: run the forward pass under autocast (losses stay float32).
    :param compile: wrap ``model.losses`` in ``torch.compile`` (dynamo splits the graph around the cuDNN RNN).
    """

    def __init__(
        self,
        model: WorldModel,
        wm_plan: WorldModelPlan,
        quirks: Any = None,
        device: torch.device | str = "cpu",
        *,
        autocast_dtype: torch.dtype | None = None,
        compile: bool = False,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.plan = wm_plan
        self.train_spec = wm_plan.train
        self.loss_weights = wm_plan.loss_weights
        self.forecast_horizon = wm_plan.forecast_horizon
        spec = self.train_spec
        self.loss_settings = LossSettings(
            forecast_horizon=wm_plan.forecast_horizon,
            state_loss=spec.state_loss,
            bootstrap=spec.bootstrap,
            contact_pos_weight=spec.contact_pos_weight,
            termination_pos_weight=spec.termination_pos_weight,
            shared_hidden_state_across_members=bool(getattr(quirks, "shared_hidden_state_across_members", False)),
        )
        self.autocast_dtype = autocast_dtype
        # what must not learn (e.g. train.freeze_auxiliary) the model's factory has set to requires_grad False
        params = [p for p in model.parameters() if p.requires_grad]
        fused = {"fused": True} if self.device.type == "cuda" else {}
        self.optimizer = torch.optim.Adam(
            params, lr=self.train_spec.learning_rate, weight_decay=self.train_spec.weight_decay, **fused
        )
        self._params = params
        self._loss_fn = torch.compile(model.losses, dynamic=False) if compile else model.losses

    @property
    def window_length(self) -> int:
        return self.model.history_horizon + self.forecast_horizon

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def compute_losses(self, windows: Windows, generator: torch.Generator | None = None) -> Losses:
        """Loss terms of one mini-batch (with autograd graph)."""
        with self._autocast():
            return self._loss_fn(windows, self.loss_settings, generator)

    def train_step(self, windows: Windows, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One clipped Adam step on one mini-batch; the detached scalars (no device sync)."""
        self.model.train()
        terms = self.compute_losses(windows, generator)
        total = terms.total(self.loss_weights)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(self._params, self.train_spec.max_grad_norm)
        self.optimizer.step()
        scalars = {f"{k}_loss": v.detach() for k, v in terms.member_means().items()}
        scalars["total_loss"] = total.detach()
        return scalars

    def update(self, buffer: ReplayBuffer, generator: torch.Generator | None = None) -> dict[str, float]:
        """``num_mini_batches`` steps on fresh windows: the model's loss terms (``<name>_loss``, in its order) averaged
        over them, then ``UPDATE_KEYS`` (total loss, learning rate)."""
        spec = self.train_spec
        sums: dict[str, torch.Tensor] = {}
        for _ in range(spec.num_mini_batches):
            windows = buffer.sample_windows(spec.mini_batch_size, self.window_length, generator)
            for key, value in self.train_step(windows, generator).items():
                sums[key] = sums[key] + value if key in sums else value
        keys = list(sums)
        means = (torch.stack([sums[k] for k in keys]) / spec.num_mini_batches).tolist()  # one device sync
        out = dict(zip(keys, means, strict=True))
        out["learning_rate"] = float(self.optimizer.param_groups[0]["lr"])
        return out

    # -- checkpoints ---------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The optimizer state (the model's weights are saved from ``model.state_dict()``)."""
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
