"""``WorldModel``: what the runtime asks of a dynamics model, whatever its architecture.

An architecture plugin registers an ``ArchitectureDef`` whose ``factory`` builds a whole model from the plan:
``build(plan: WorldModelPlan, *, quirks: UpstreamQuirksSpec) -> WorldModel``. The trainer, the world-model
evaluation, imagination and visualize talk to that object through this protocol only, so a latent (RSSM-style)
model, a transformer or a single MLP plugs in without editing the runtime. The built-in GRU/LSTM/MLP
``SystemDynamicsEnsemble`` is one such model (plugin ``world_models``).

Conventions (N rows, T steps, S/A/C/R/E state/action/contact/termination/extension widths):

* states are *normalized* ``system_state`` vectors and actions *applied, normalized* actions (``action[:, t]`` is
  the action taken in ``state[:, t]``; ``replay_buffer.applied_action_pairs`` shifts the buffer's layout);
* ``Memory`` is whatever the model remembers of the history. It is opaque to the runtime except that it is a torch
  pytree (a tensor, or tuples, lists, dicts and named tuples of tensors, ``None`` allowed), so the imagination can
  keep it in persistent tensors; rows are gathered, written and blended through the model's own methods because
  only the model knows which dimension of each leaf is the batch;
* models are ``torch.nn.Module`` objects: parameters, ``state_dict``, ``train``/``eval`` and ``to`` come from there;
* the factory honours the plan's training switches that concern the model's own structure, such as
  ``train.freeze_auxiliary``: a part that must not learn has ``requires_grad`` False (the trainer optimizes only
  the parameters that require grad) and the model's ``losses`` still score it;
* ``step`` must trace whole under ``torch.compile(fullgraph=True)``: no host reads (``.item()``, ``bool(tensor)``)
  and no Python branching on tensor values, because imagination compiles it and replays it as a CUDA graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch

if TYPE_CHECKING:
    from rwmspec_runtime.world_model.replay_buffer import Windows

#: What a model remembers of the history (see the module docstring).
Memory = Any


@dataclass
class Prediction:
    """One step's prediction per row, what imagination and evaluation read. Shapes ``[N, ·]``."""

    next_state: torch.Tensor  #: [N, S] predicted next state (normalized): the row's member, or the ensemble mean
    aleatoric: torch.Tensor  #: [N] predicted noise, summed over dims (0 for a deterministic model)
    epistemic: torch.Tensor  #: [N] model uncertainty (disagreement of ensemble members; 0 for one member)
    contact_prob: torch.Tensor  #: [N, C]
    termination_prob: torch.Tensor  #: [N, R]
    extension: torch.Tensor  #: [N, E]


@dataclass
class LossSettings:
    """How one mini-batch is scored: the plan's ``world_model`` training keys, read once by the trainer."""

    forecast_horizon: int
    state_loss: str = "sampled_mse"
    bootstrap: bool = True
    contact_pos_weight: float | None = None
    termination_pos_weight: float | None = None
    #: quirk ``shared_hidden_state_across_members`` (models without members ignore it)
    shared_hidden_state_across_members: bool = False
    #: let gradients flow through fed-back samples (an ablation switch; models may ignore it)
    feedback_gradient: bool = True


class Losses(Protocol):
    """What ``WorldModel.losses`` returns."""

    def total(self, weights: Any) -> torch.Tensor:
        """The scalar the trainer minimises; ``weights``: the plan's ``LossWeightsSpec``."""
        ...

    def member_means(self) -> dict[str, torch.Tensor]:
        """Scalars logged as ``System Dynamics/<name>_loss`` (the same names at every call)."""
        ...


@runtime_checkable
class WorldModel(Protocol):
    """A learned dynamics model over the plan's ``system_*`` groups (see the module docstring)."""

    state_dim: int
    action_dim: int
    contact_dim: int
    termination_dim: int
    extension_dim: int
    #: members that ``step(members=...)`` may index (1 for a single model)
    ensemble_size: int
    #: M: (state, action) pairs a prediction conditions on; seeds and training windows have this history
    history_horizon: int

    def initial_memory(self, batch_size: int) -> Memory:
        """The empty memory of ``batch_size`` rows, on the model's device."""
        ...

    def warm_up(self, state: torch.Tensor, action: torch.Tensor, memory: Memory | None = None) -> Memory:
        """The memory after consuming ``(state, action)`` ``[N, T, ·]`` (from ``memory``, default empty); T may be 0.

        Equivalent to ``step`` over the T pairs (up to float rounding), without computing predictions."""
        ...

    def step(
        self, state: torch.Tensor, action: torch.Tensor, memory: Memory, members: torch.Tensor | None = None
    ) -> tuple[Prediction, Memory]:
        """Predict the state after taking ``action`` ``[N, A]`` in ``state`` ``[N, S]`` after ``memory``.

        :param members: ``[N]`` long: the member row n reads (imagination's per-env member sampling); None: the
            ensemble mean. Models with one member ignore it.
        :return: the prediction and the memory after this step (functional: ``memory`` is not modified).
        """
        ...

    def select_memory(self, memory: Memory, index: torch.Tensor) -> Memory:
        """Rows ``index`` (``[R]`` long, repeats allowed) of ``memory``."""
        ...

    def write_memory_rows(self, memory: Memory, index: torch.Tensor, rows: Memory) -> Memory:
        """``memory`` with rows ``index`` replaced by ``rows`` (out of place)."""
        ...

    def where_memory(self, mask: torch.Tensor, new: Memory, old: Memory) -> Memory:
        """Row-wise ``new if mask else old`` (``mask`` ``[N]`` bool), with fixed shapes (no host read)."""
        ...

    def losses(self, windows: Windows, settings: LossSettings, generator: torch.Generator | None = None) -> Losses:
        """The loss terms of one mini-batch of buffer-layout windows ``[B, M + N, ·]`` (N = forecast horizon), with
        autograd graph. ``generator`` draws all the randomness (resampling, noise), so a seed repeats a step."""
        ...
