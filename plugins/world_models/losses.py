"""The built-in ensemble's training losses (rwm_method §3.3): autoregressive state loss, bound loss, teacher-forced
auxiliary losses, bootstrap resampling per ensemble member.

Shapes: K members, B windows of length L = M + N (M history horizon, N forecast horizon), S/A/C/R/E widths.

One mini-batch, per member k with its bootstrap resample ``boot[k]`` ([B] indices):

* **state rollout** (outer autoregression, gradients through time): step 0 feeds the M-step true history
  (the warm-up) and predicts s_M; step i >= 1 feeds only the previous step's reparameterised sample
  ``mu + sigma * eps`` with its applied action, carrying the base memory (a recurrent hidden state, or the MLP's
  sliding window). Each member starts from an empty memory. The warm-up does not depend on the member, so it runs
  once on the B distinct windows and its memory is gathered per member; the N - 1 feedback steps run on all K*B
  rows at once.
* **state loss** per step: ``sampled_mse`` = sum over dims of (sample - target)^2, mean over the batch; or ``nll``
  = Gaussian negative log-likelihood summed over dims (same scale). Mean over the N steps.
* **bound loss**: mean(max_logstd) - mean(min_logstd) of the member (the same at every step).
* **auxiliary losses**, teacher-forced: the auxiliary base reads the true sequence, so its features for the N
  targets come from one pass over the L - 1 true pairs (its memory after each true step is exactly what step-wise
  teacher forcing would carry). Contact and termination: BCE with logits (optional ``pos_weight``), extension: MSE.

Quirk ``shared_hidden_state_across_members`` (upstream): members run one after another and member k starts its
warm-up from the memory left by member k-1's rollout (and its auxiliary pass from member k-1's auxiliary memory),
row for row although the rows hold different bootstrap resamples; member 0 starts empty. The carried memory keeps
its autograd graph, as upstream's single backward over the summed member losses does.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch.nn import functional as F

from rwmspec_plugins.world_models.bases import Memory
from rwmspec_runtime.world_model.protocol import LossSettings
from rwmspec_runtime.world_model.replay_buffer import Windows, applied_action_pairs

if TYPE_CHECKING:
    from rwmspec_plugins.world_models.ensemble import SystemDynamicsEnsemble

STATE_LOSSES = ("sampled_mse", "nll")
LOSS_NAMES = ("state", "bound", "contact", "termination", "extension")


@dataclass
class LossTerms:
    """Per-member loss terms ``[K]`` plus the rollout's per-step state losses and samples."""

    state: torch.Tensor
    bound: torch.Tensor
    contact: torch.Tensor
    termination: torch.Tensor
    extension: torch.Tensor
    state_per_step: torch.Tensor  #: [N, K]
    samples: list[torch.Tensor] = field(default_factory=list, repr=False)  #: N tensors [K, B, S]

    def total(self, weights: Any) -> torch.Tensor:
        """Weighted sum of the member means (``weights``: a ``LossWeightsSpec``)."""
        return sum(getattr(weights, name) * getattr(self, name).mean() for name in LOSS_NAMES)

    def member_means(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name).mean() for name in LOSS_NAMES}


def _randn(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    sample_device = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=sample_device).to(device)


def bootstrap_indices(
    ensemble_size: int, batch_size: int, bootstrap: bool, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """``[K, B]`` rows each member trains on: a resample with replacement per member, or the batch itself."""
    if not bootstrap:
        return torch.arange(batch_size, device=device).expand(ensemble_size, batch_size)
    sample_device = generator.device if generator is not None else device
    return torch.randint(batch_size, (ensemble_size, batch_size), generator=generator, device=sample_device).to(device)


def sampled_mse(sample: torch.Tensor, mean: torch.Tensor, logstd: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``[G, B, S]`` -> ``[G]``: sum over dims of the squared error of the reparameterised sample, batch mean."""
    return (sample.float() - target.float()).square().sum(dim=-1).mean(dim=-1)


def gaussian_nll(sample: torch.Tensor, mean: torch.Tensor, logstd: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``[G, B, S]`` -> ``[G]``: Gaussian negative log-likelihood of the target, summed over dims, batch mean."""
    logstd = logstd.float()
    z = (target.float() - mean.float()) * torch.exp(-logstd)
    return (0.5 * z.square() + logstd + 0.5 * math.log(2.0 * math.pi)).sum(dim=-1).mean(dim=-1)


def bce_loss(logits: torch.Tensor, target: torch.Tensor, pos_weight: float | None) -> torch.Tensor:
    """``[G, B, N, D]`` -> ``[G]`` mean binary cross-entropy with logits."""
    weight = None if pos_weight is None else logits.new_full((logits.shape[-1],), pos_weight, dtype=torch.float32)
    loss = F.binary_cross_entropy_with_logits(logits.float(), target.float(), pos_weight=weight, reduction="none")
    return loss.flatten(1).mean(dim=1)


def _rows(x: torch.Tensor, flat: torch.Tensor, groups: int) -> torch.Tensor:
    """Gather batch rows ``flat`` ([G*B]) of ``x`` ``[B, ...]`` -> ``[G, B, ...]``."""
    return x.index_select(0, flat).view(groups, -1, *x.shape[1:])


def _state_rollout(
    model: SystemDynamicsEnsemble,
    states: torch.Tensor,
    actions: torch.Tensor,
    targets: torch.Tensor,
    boot: torch.Tensor,
    eps: torch.Tensor,
    members: torch.Tensor | None,
    memory: Memory | None,
    loss_fn,
    feedback_gradient: bool,
):
    """Autoregressive rollout of members ``members`` (all when None) on their resamples ``boot`` ``[G, B]``.

    ``states``/``actions``: the (s_t, a_t) pairs ``[B, L - 1, ·]``; ``targets`` ``[B, N, S]``; ``eps``
    ``[N, G, B, S]``. ``memory`` None: each row starts empty (warm-up shared over members); else the ``[G*B]``
    rows' starting memory. Returns per-step losses ``[N, G]``, the samples and the final memory.
    """
    base = model.state_base
    M = model.history_horizon
    groups, batch = boot.shape
    flat = boot.reshape(-1)
    history = torch.cat([states[:, :M], actions[:, :M]], dim=-1)
    if memory is None:
        # member-independent warm-up from an empty memory: once on the B windows, then gathered per member
        features, memory = base(history, base.initial_memory(batch, device=history.device, dtype=history.dtype))
        features = features.index_select(0, flat)
        memory = base.select_memory(memory, flat)
    else:
        features, memory = base(history.index_select(0, flat), memory)
    features = features.view(groups, batch, -1)
    last = _rows(states[:, M - 1], flat, groups)
    per_step, samples = [], []
    for i in range(targets.shape[1]):
        mean, logstd = model.state_heads(features, last, members=members)
        sample = mean + torch.exp(logstd) * eps[i].to(mean.dtype)
        per_step.append(loss_fn(sample, mean, logstd, _rows(targets[:, i], flat, groups)))
        samples.append(sample)
        if i + 1 < targets.shape[1]:
            fed = sample if feedback_gradient else sample.detach()
            action = _rows(actions[:, M + i], flat, groups).to(fed.dtype)
            x = torch.cat([fed, action], dim=-1).view(groups * batch, 1, -1)
            step_features, memory = base(x, memory)
            features = step_features.view(groups, batch, -1)
            last = fed
    return torch.stack(per_step), samples, memory


def _auxiliary_terms(
    model: SystemDynamicsEnsemble,
    states: torch.Tensor,
    actions: torch.Tensor,
    windows: Windows,
    boot: torch.Tensor,
    members: torch.Tensor | None,
    memory: Memory | None,
    contact_pos_weight: float | None,
    termination_pos_weight: float | None,
):
    """Teacher-forced auxiliary losses ``[G]`` each, and the auxiliary base's final memory."""
    M = model.history_horizon
    groups, batch = boot.shape
    flat = boot.reshape(-1)
    zeros = states.new_zeros(groups, dtype=torch.float32)
    if not model.has_auxiliary_heads:
        return zeros, zeros, zeros, memory
    base = model.feature_base_for_auxiliary
    x = torch.cat([states, actions], dim=-1)
    if memory is None:
        features, memory = base.forward_sequence(x, base.initial_memory(batch, device=x.device, dtype=x.dtype))
        features = _rows(features[:, M - 1 :], flat, groups)  # [G, B, N, F]
    else:
        features, memory = base.forward_sequence(x.index_select(0, flat), memory)
        features = features[:, M - 1 :].reshape(groups, batch, -1, features.shape[-1])
    contact, termination, extension = model.auxiliary_heads(features, members=members)
    contact_loss = (
        bce_loss(contact, _rows(windows.contact[:, M:], flat, groups), contact_pos_weight)
        if model.contact_head is not None
        else zeros
    )
    termination_loss = (
        bce_loss(termination, _rows(windows.termination[:, M:], flat, groups), termination_pos_weight)
        if model.termination_head is not None
        else zeros
    )
    extension_loss = (
        (extension.float() - _rows(windows.extension[:, M:], flat, groups).float()).square().flatten(1).mean(dim=1)
        if model.extension_head is not None
        else zeros
    )
    return contact_loss, termination_loss, extension_loss, memory


def world_model_losses(
    model: SystemDynamicsEnsemble,
    windows: Windows,
    settings: LossSettings,
    generator: torch.Generator | None = None,
) -> LossTerms:
    """All loss terms of one mini-batch of buffer-layout windows ``[B, M + N, ·]``.

    ``settings.feedback_gradient`` False detaches the fed-back samples (an ablation); ``generator`` draws the
    bootstrap indices, then the ``[N, K, B, S]`` sampling noise, in that order.
    """
    state_loss, forecast_horizon = settings.state_loss, settings.forecast_horizon
    feedback_gradient = settings.feedback_gradient
    aux_args = (settings.contact_pos_weight, settings.termination_pos_weight)
    if state_loss not in STATE_LOSSES:
        raise ValueError(f"world_model.train.state_loss = {state_loss!r}: use one of {list(STATE_LOSSES)}")
    M, N = model.history_horizon, forecast_horizon
    if N < 1:
        raise ValueError(f"world_model.forecast_horizon = {N}: use at least 1")
    if windows.length != M + N:
        raise ValueError(
            f"windows have {windows.length} steps; the loss needs history_horizon + forecast_horizon = {M} + {N}"
        )
    loss_fn = sampled_mse if state_loss == "sampled_mse" else gaussian_nll
    # alignment: buffer entry k is (s_k, a_{k-1}); the model pairs s_t with a_t = entry t+1's action
    states, actions = applied_action_pairs(windows.state, windows.action)
    targets = windows.state[:, M:]  # s_M .. s_{M+N-1}, predicted from pairs M-1 .. M+N-2
    K, batch, device = model.ensemble_size, states.shape[0], states.device
    boot = bootstrap_indices(K, batch, settings.bootstrap, generator, device)
    eps = _randn((N, K, batch, model.state_dim), generator, device)
    bound = (model.max_logstd - model.min_logstd).mean(dim=-1)  # [K]: mean(max) - mean(min) per member
    # a frozen auxiliary part is still scored but gets no gradient (also not into a shared base)
    aux_grad = torch.no_grad() if model.auxiliary_frozen else contextlib.nullcontext()

    if not settings.shared_hidden_state_across_members or K == 1:
        per_step, samples, _ = _state_rollout(
            model, states, actions, targets, boot, eps, None, None, loss_fn, feedback_gradient
        )
        with aux_grad:
            contact, termination, extension, _ = _auxiliary_terms(
                model, states, actions, windows, boot, None, None, *aux_args
            )
    else:
        # upstream emulation: members in sequence, each continuing the previous member's memory
        state_memory: Memory | None = model.state_base.initial_memory(batch, device=device, dtype=states.dtype)
        separate = model.auxiliary_base is not None
        aux_memory = model.auxiliary_base.initial_memory(batch, device=device, dtype=states.dtype) if separate else None
        parts: list[tuple[torch.Tensor, ...]] = []
        samples_per_member: list[list[torch.Tensor]] = []
        for k in range(K):
            member = torch.tensor([k], device=device)
            step_losses, member_samples, state_memory = _state_rollout(
                model,
                states,
                actions,
                targets,
                boot[k : k + 1],
                eps[:, k : k + 1],
                member,
                state_memory,
                loss_fn,
                feedback_gradient,
            )
            with aux_grad:
                c, t, e, carried = _auxiliary_terms(
                    model,
                    states,
                    actions,
                    windows,
                    boot[k : k + 1],
                    member,
                    aux_memory if separate else state_memory,
                    *aux_args,
                )
            if separate:
                aux_memory = carried
            elif model.has_auxiliary_heads:
                state_memory = carried
            parts.append((step_losses, c, t, e))
            samples_per_member.append(member_samples)
        per_step = torch.cat([p[0] for p in parts], dim=1)
        contact, termination, extension = (torch.cat([p[j] for p in parts]) for j in (1, 2, 3))
        samples = [torch.cat([s[i] for s in samples_per_member]) for i in range(N)]

    return LossTerms(
        state=per_step.mean(dim=0),
        bound=bound,
        contact=contact,
        termination=termination,
        extension=extension,
        state_per_step=per_step,
        samples=samples,
    )
