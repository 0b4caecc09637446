"""``SystemDynamicsEnsemble``: the built-in world model (rwm_method §3.1-3.2), one ``WorldModel`` implementation.

Structure: a state base (and, with ``separate_auxiliary_base``, an auxiliary base) encodes the (state, action)
history; K ensemble members each own a state head (mean MLP with a residual on the last input state, log-std MLP
soft-bounded by learnable per-dim bounds) and auxiliary heads (contact logits, termination logits, extension), each
auxiliary head only if its width is positive. All K members' heads run as one batched operation
(``EnsembleMLP``). Everything is in normalized space. The bases are the only part that differs between the ``gru``,
``lstm`` and ``mlp`` architectures (``bases.BASE_FACTORIES``); ``build_gru``/``build_lstm``/``build_mlp`` are the
factories the ``world_models`` plugin registers.

Shapes: K members, B envs/sequences, T steps, S/A/C/E state/action/contact/extension widths, R termination width.
Actions are *applied* actions: ``action[:, t]`` is the action taken in ``state[:, t]`` (the replay buffer stores
the previous action; see ``replay_buffer.applied_action_pairs`` for the shift).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from rwmspec.plan import WorldModelPlan
from rwmspec_plugins.world_models.bases import BASE_FACTORIES, BaseFactory, Memory, WorldModelBase
from rwmspec_plugins.world_models.ensemble_linear import EnsembleMLP
from rwmspec_plugins.world_models.losses import LossTerms, world_model_losses
from rwmspec_runtime.world_model.protocol import LossSettings, Prediction
from rwmspec_runtime.world_model.replay_buffer import Windows


class ModelMemory(NamedTuple):
    """What both bases remember of the history (``auxiliary`` is None without a separate auxiliary base).

    A named tuple, so it is a torch pytree: the imagination flattens it into persistent tensors."""

    state: Memory
    auxiliary: Memory | None = None


@dataclass
class DynamicsOutput:
    """Raw per-member outputs. Shapes ``[G, B, ·]`` (``[G, B, T, ·]`` from ``forward_sequence``), G = K members
    or the member subset asked for. Heads of width 0 give empty tensors."""

    mean: torch.Tensor  #: next-state mean (normalized)
    logstd: torch.Tensor  #: next-state log-std, inside the learned bounds
    contact_logits: torch.Tensor
    termination_logits: torch.Tensor
    extension: torch.Tensor
    memory: ModelMemory | None = field(default=None, repr=False)  #: memory after the input (functional calls)


def _members_index(members: torch.Tensor | Sequence[int] | None, device: torch.device) -> torch.Tensor | None:
    return None if members is None else torch.as_tensor(members, device=device, dtype=torch.long).reshape(-1)


def _base_factory(plan: WorldModelPlan, base_factory: BaseFactory | None) -> BaseFactory:
    if base_factory is not None:
        return base_factory
    if plan.architecture not in BASE_FACTORIES:
        raise ValueError(
            f"world_model.architecture = {plan.architecture!r} has no built-in base (built-in: "
            f"{', '.join(sorted(BASE_FACTORIES))}); pass base_factory=(input_dim, plan) -> WorldModelBase"
        )
    return BASE_FACTORIES[plan.architecture]


class SystemDynamicsEnsemble(nn.Module):
    """The built-in world model (implements ``rwmspec_runtime.world_model.WorldModel``).

    :param plan: sizes and switches (``base_hidden``, head widths, ``ensemble_size``, ``train.freeze_auxiliary``...).
    :param base_factory: ``(input_dim, plan) -> WorldModelBase`` building each base; default: the built-in base of
        ``plan.architecture`` (``gru``, ``lstm`` or ``mlp``).
    :param quirks: the plan's ``UpstreamQuirksSpec`` (``epistemic_summed_std`` is read here); None: all off.
    """

    def __init__(self, plan: WorldModelPlan, *, base_factory: BaseFactory | None = None, quirks: Any = None) -> None:
        super().__init__()
        lo, hi = plan.logstd_bounds_init
        if not hi > lo:
            raise ValueError(f"world_model.logstd_bounds_init = [{lo}, {hi}]: the upper bound must exceed the lower")
        if plan.ensemble_size < 1:
            raise ValueError(f"world_model.ensemble_size = {plan.ensemble_size}: use at least 1")
        self.state_dim = plan.state_dim
        self.action_dim = plan.action_dim
        self.contact_dim = plan.contact_dim
        self.termination_dim = plan.termination_dim
        self.extension_dim = plan.extension_dim
        self.ensemble_size = plan.ensemble_size
        self.history_horizon = plan.history_horizon
        self.residual = plan.residual
        #: upstream quirk: epistemic = std over members summed over dims, instead of the variance of the member
        #: means averaged over dims
        self.epistemic_summed_std = bool(getattr(quirks, "epistemic_summed_std", False))
        self.architecture = plan.architecture
        input_dim = plan.state_dim + plan.action_dim
        K, S = plan.ensemble_size, plan.state_dim

        def build_base() -> WorldModelBase:
            base = _base_factory(plan, base_factory)(input_dim, plan)
            if not isinstance(base, WorldModelBase):
                raise TypeError(
                    f"architecture {plan.architecture!r}: the base factory returned {type(base).__name__}, "
                    f"expected a rwmspec_plugins.world_models.bases.WorldModelBase"
                )
            return base

        self.state_base = build_base()
        has_aux = plan.contact_dim + plan.termination_dim + plan.extension_dim > 0
        self.auxiliary_base = build_base() if has_aux and plan.separate_auxiliary_base else None
        self.recurrent = self.state_base.recurrent
        feat = self.state_base.output_dim
        aux_feat = self.auxiliary_base.output_dim if self.auxiliary_base is not None else feat

        self.state_mean_head = EnsembleMLP(K, feat, plan.state_mean_hidden, S)
        self.state_logstd_head = EnsembleMLP(K, feat, plan.state_logstd_hidden, S)
        # soft log-std band (PETS style): learnable lower bound, upper = lower + exp(log_delta)
        self.min_logstd = nn.Parameter(torch.full((K, S), float(lo)))
        self.log_delta_logstd = nn.Parameter(torch.full((K, S), math.log(hi - lo)))

        def aux_head(width: int) -> EnsembleMLP | None:
            return EnsembleMLP(K, aux_feat, plan.auxiliary_hidden, width) if width > 0 else None

        self.contact_head = aux_head(plan.contact_dim)
        self.termination_head = aux_head(plan.termination_dim)
        self.extension_head = aux_head(plan.extension_dim)
        self._auxiliary_frozen = False
        # the protocol leaves freezing to the model: the trainer only optimizes parameters that require grad
        self.set_auxiliary_frozen(plan.train.freeze_auxiliary)

    # -- parameter groups ----------------------------------------------------------------------------------------
    @property
    def has_auxiliary_heads(self) -> bool:
        return any(h is not None for h in (self.contact_head, self.termination_head, self.extension_head))

    @property
    def feature_base_for_auxiliary(self) -> WorldModelBase:
        """The base the auxiliary heads read (the state base without a separate auxiliary base)."""
        return self.auxiliary_base if self.auxiliary_base is not None else self.state_base

    def auxiliary_parameters(self) -> list[nn.Parameter]:
        """Auxiliary heads' parameters, plus the auxiliary base's when it is separate."""
        modules = [
            m
            for m in (self.auxiliary_base, self.contact_head, self.termination_head, self.extension_head)
            if m is not None
        ]
        return [p for m in modules for p in m.parameters()]

    def set_auxiliary_frozen(self, frozen: bool) -> None:
        """Freeze (``requires_grad=False``) the auxiliary base and heads (spec ``train.freeze_auxiliary``)."""
        self._auxiliary_frozen = frozen
        for p in self.auxiliary_parameters():
            p.requires_grad_(not frozen)

    @property
    def auxiliary_frozen(self) -> bool:
        return self._auxiliary_frozen

    @property
    def max_logstd(self) -> torch.Tensor:
        """[K, S] upper soft bound of the log-std."""
        return self.min_logstd + torch.exp(self.log_delta_logstd)

    # -- heads ---------------------------------------------------------------------------------------------------
    def bound_logstd(self, raw: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """Squash raw log-stds ``[G, *, S]`` softly into ``[min, max]`` of members ``members`` (default all)."""
        lo, hi = self.min_logstd, self.max_logstd
        if members is not None:
            lo, hi = lo.index_select(0, members), hi.index_select(0, members)
        view = (lo.shape[0],) + (1,) * (raw.dim() - 2) + (lo.shape[1],)
        lo, hi = lo.view(view), hi.view(view)
        logstd = hi - F.softplus(hi - raw)
        return lo + F.softplus(logstd - lo)

    def state_heads(
        self,
        features: torch.Tensor,
        last_state: torch.Tensor,
        *,
        shared: bool = False,
        members: torch.Tensor | Sequence[int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Next-state mean and log-std ``[G, *, S]`` from base features.

        :param features: ``[*, F]`` (``shared``) or ``[G, *, F]``.
        :param last_state: the last input state, broadcastable to ``[G, *, S]`` (residual).
        """
        index = _members_index(members, self.min_logstd.device)
        mean = self.state_mean_head(features, shared=shared, members=index)
        if self.residual:
            mean = mean + last_state
        logstd = self.bound_logstd(self.state_logstd_head(features, shared=shared, members=index), index)
        return mean, logstd

    def auxiliary_heads(
        self, features: torch.Tensor, *, shared: bool = False, members: torch.Tensor | Sequence[int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Contact logits, termination logits and extension ``[G, *, ·]`` (empty for absent heads)."""
        index = _members_index(members, self.min_logstd.device)
        groups = self.ensemble_size if index is None else index.numel()
        batch_shape = features.shape[:-1] if shared else features.shape[1:-1]

        def run(head: EnsembleMLP | None) -> torch.Tensor:
            if head is None:
                return features.new_zeros(groups, *batch_shape, 0)
            return head(features, shared=shared, members=index)

        return run(self.contact_head), run(self.termination_head), run(self.extension_head)

    def heads(
        self,
        state_features: torch.Tensor,
        auxiliary_features: torch.Tensor,
        last_state: torch.Tensor,
        *,
        shared: bool = False,
        members: torch.Tensor | Sequence[int] | None = None,
    ) -> DynamicsOutput:
        mean, logstd = self.state_heads(state_features, last_state, shared=shared, members=members)
        contact, termination, extension = self.auxiliary_heads(auxiliary_features, shared=shared, members=members)
        return DynamicsOutput(mean, logstd, contact, termination, extension)

    # -- functional forward --------------------------------------------------------------------------------------
    def initial_memory(self, batch_size: int) -> ModelMemory:
        p = self.min_logstd
        aux = (
            self.auxiliary_base.initial_memory(batch_size, device=p.device, dtype=p.dtype)
            if self.auxiliary_base is not None
            else None
        )
        return ModelMemory(self.state_base.initial_memory(batch_size, device=p.device, dtype=p.dtype), aux)

    def _encode(self, state: torch.Tensor, action: torch.Tensor, memory: ModelMemory | None, *, sequence: bool):
        if state.dim() != 3 or action.dim() != 3:
            raise ValueError(
                f"expected state [B, T, {self.state_dim}] and action [B, T, {self.action_dim}], got "
                f"{tuple(state.shape)} and {tuple(action.shape)}"
            )
        x = torch.cat([state, action.to(state.dtype)], dim=-1)
        memory = memory if memory is not None else self.initial_memory(x.shape[0])
        run = "forward_sequence" if sequence else "forward"
        state_features, state_memory = getattr(self.state_base, run)(x, memory.state)
        aux_memory = None
        if self.auxiliary_base is not None:
            aux_features, aux_memory = getattr(self.auxiliary_base, run)(x, memory.auxiliary)
        else:
            aux_features = state_features
        return state_features, aux_features, ModelMemory(state_memory, aux_memory)

    def forward(self, state: torch.Tensor, action: torch.Tensor, memory: ModelMemory | None = None) -> DynamicsOutput:
        """All members' prediction of the state after ``state[:, -1]``.

        :param state: ``[B, T, S]`` normalized states (T >= 1; T = history_horizon for a fresh memory).
        :param action: ``[B, T, A]`` applied actions.
        :param memory: what the bases remember before ``state[:, 0]`` (default: empty).
        :return: ``DynamicsOutput`` ``[K, B, ·]`` with ``.memory`` after the input.
        """
        state_features, aux_features, memory = self._encode(state, action, memory, sequence=False)
        out = self.heads(state_features, aux_features, state[:, -1], shared=True)
        out.memory = memory
        return out

    def warm_up(self, state: torch.Tensor, action: torch.Tensor, memory: ModelMemory | None = None) -> ModelMemory:
        """What the bases remember after ``(state, action)`` ``[B, T, ·]``: ``forward(...).memory`` without running
        the heads, which a warm-up discards (at K members they cost several times the bases over a long window).
        An empty sequence (T = 0) leaves ``memory`` (default: the empty memory) as it is."""
        if state.shape[1] == 0:
            return memory if memory is not None else self.initial_memory(state.shape[0])
        return self._encode(state, action, memory, sequence=False)[2]

    def forward_sequence(
        self, state: torch.Tensor, action: torch.Tensor, memory: ModelMemory | None = None
    ) -> DynamicsOutput:
        """Teacher-forced predictions after every step: ``[K, B, T, ·]``, entry t predicts the state after t."""
        state_features, aux_features, memory = self._encode(state, action, memory, sequence=True)
        out = self.heads(state_features, aux_features, state, shared=True)
        out.memory = memory
        return out

    # -- the WorldModel protocol -------------------------------------------------------------------------------
    def step(
        self, state: torch.Tensor, action: torch.Tensor, memory: ModelMemory, members: torch.Tensor | None = None
    ) -> tuple[Prediction, ModelMemory]:
        """One step of every member on the bases' shared features, summarized per row (``summarize``).

        :param state: ``[N, S]``; ``action`` ``[N, A]`` applied in it; ``memory`` the bases' memory before it.
        :param members: ``[N]`` member each row reads; None: the ensemble mean.
        """
        out = self(state.unsqueeze(1), action.unsqueeze(1), memory)
        return self.summarize(out, members), out.memory

    def select_memory(self, memory: ModelMemory, index: torch.Tensor) -> ModelMemory:
        return self._memory_parts(lambda base, part: base.select_memory(part, index), memory)

    def write_memory_rows(self, memory: ModelMemory, index: torch.Tensor, rows: ModelMemory) -> ModelMemory:
        return self._memory_parts(lambda base, part, new: base.write_memory_rows(part, index, new), memory, rows)

    def where_memory(self, mask: torch.Tensor, new: ModelMemory, old: ModelMemory) -> ModelMemory:
        return self._memory_parts(lambda base, a, b: base.where_memory(mask, a, b), new, old)

    def _memory_parts(self, fn: Callable[..., Memory], *memories: ModelMemory) -> ModelMemory:
        """``fn(base, *parts)`` on the state base's and the auxiliary base's parts of ``memories``."""
        state = fn(self.state_base, *(m.state for m in memories))
        aux = None if self.auxiliary_base is None else fn(self.auxiliary_base, *(m.auxiliary for m in memories))
        return ModelMemory(state, aux)

    def losses(self, windows: Windows, settings: LossSettings, generator: torch.Generator | None = None) -> LossTerms:
        """``losses.world_model_losses`` of one mini-batch (see there)."""
        return world_model_losses(self, windows, settings, generator)

    # -- summaries -----------------------------------------------------------------------------------------------
    def epistemic(self, member_means: torch.Tensor) -> torch.Tensor:
        """Disagreement of member means ``[K, B, S]`` -> ``[B]``: variance over members averaged over dims, or
        (quirk ``epistemic_summed_std``) std over members summed over dims. Zero for one member."""
        means = member_means.float()
        if means.shape[0] == 1:
            return means.new_zeros(means.shape[1:-1])
        if self.epistemic_summed_std:
            return means.std(dim=0).sum(dim=-1)
        return means.var(dim=0, unbiased=False).mean(dim=-1)

    def summarize(self, out: DynamicsOutput, member_ids: torch.Tensor | None = None) -> Prediction:
        """Reduce per-member outputs ``[K, B, ·]`` to a per-row ``Prediction``.

        ``member_ids`` ``[B]``: row b reads member ``member_ids[b]`` (Thompson-style sampling of imagination);
        None: ensemble mean of the state means and of the contact/termination probabilities. The aleatoric part is
        the members' mean sigma summed over dims either way.
        """

        def pick(x: torch.Tensor) -> torch.Tensor:
            x = x.float()
            if member_ids is None:
                return x.mean(dim=0)
            ids = member_ids.to(device=x.device, dtype=torch.long)
            return x[ids, torch.arange(x.shape[1], device=x.device)]

        return Prediction(
            next_state=pick(out.mean),
            aleatoric=torch.exp(out.logstd.float()).mean(dim=0).sum(dim=-1),
            epistemic=self.epistemic(out.mean),
            contact_prob=pick(torch.sigmoid(out.contact_logits.float())),
            termination_prob=pick(torch.sigmoid(out.termination_logits.float())),
            extension=pick(out.extension),
        )


# ---------------------------------------------------------------------------------------------------------------------
# factories registered by the world_models plugin: build(plan, *, quirks) -> WorldModel
# ---------------------------------------------------------------------------------------------------------------------
def _no_options(name: str, plan: WorldModelPlan) -> None:
    if getattr(plan, "options", None):
        raise ValueError(
            f"world_model.options = {dict(plan.options)}: architecture {name!r} takes no options; "
            f"remove the [world_model.options] table"
        )


def build_gru(plan: WorldModelPlan, *, quirks: Any = None) -> SystemDynamicsEnsemble:
    """The ensemble on GRU bases (``plan.base_hidden`` layers of equal size)."""
    _no_options("gru", plan)
    return SystemDynamicsEnsemble(plan, base_factory=BASE_FACTORIES["gru"], quirks=quirks)


def build_lstm(plan: WorldModelPlan, *, quirks: Any = None) -> SystemDynamicsEnsemble:
    """The ensemble on LSTM bases (``plan.base_hidden`` layers of equal size)."""
    _no_options("lstm", plan)
    return SystemDynamicsEnsemble(plan, base_factory=BASE_FACTORIES["lstm"], quirks=quirks)


def build_mlp(plan: WorldModelPlan, *, quirks: Any = None) -> SystemDynamicsEnsemble:
    """The ensemble on MLP bases over the last ``plan.history_horizon`` steps."""
    _no_options("mlp", plan)
    return SystemDynamicsEnsemble(plan, base_factory=BASE_FACTORIES["mlp"], quirks=quirks)
