"""The relative autoregressive prediction error e (rwm_method §3.7) and auxiliary-head scores.

Trajectories are buffer-layout windows ``[B, T, ·]`` (``ReplayBuffer.trajectories``). From the true context
s_0..s_{M-1} the model predicts s_M, then keeps feeding its own prediction with the recorded applied action up to
s_{T-1}, using the ensemble-mean prediction (``WorldModel.step`` without members) and no sampling. For every step
t >= M:

    e_t = ||s_hat_t - s_t||_1 / ||s_t||_1        (normalized space)

``error_per_step[k]`` is e at t = M + k averaged over trajectories (k + 1 steps ahead); ``error`` averages over
trajectories and steps. The noised variants add N(0, sigma^2) to both the state and the action sequences
(normalized) and compare the rollout from the noised context with the noised truth.

Contact and termination precision/recall are measured **along the rollout** by default (the auxiliary heads read
the predicted states, as in imagination; a 0.5 threshold on the ensemble-mean probability, pooled over
trajectories, steps t >= M and dims); ``auxiliary_mode="teacher_forced"`` scores the heads on the true states.
Any ``WorldModel`` can be evaluated: only ``warm_up`` and ``step`` are called.

Upstream's evaluation pairs s_k with the buffer's own action entry (a_{k-1}), one step behind its training
alignment; here the rollout uses the training alignment (``applied_action_pairs``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from rwmspec_runtime.world_model.protocol import Memory, Prediction, WorldModel
from rwmspec_runtime.world_model.replay_buffer import Windows, applied_action_pairs

#: denominators below this are clamped (a true state of exactly zero norm has no relative error)
_EPS = 1e-8


@dataclass
class Rollout:
    """An autoregressive rollout ``[B, T, ·]``; entries t < M are the true context (probabilities: nan)."""

    state: torch.Tensor
    contact_prob: torch.Tensor
    termination_prob: torch.Tensor
    epistemic: torch.Tensor  #: [B, T]


@dataclass
class PrecisionRecall:
    """Binary-head scores; precision (recall) is nan when nothing was predicted (present) positive."""

    precision: float
    recall: float
    true_positive: int
    false_positive: int
    false_negative: int


@dataclass
class ModelEvaluation:
    error: float
    error_per_step: torch.Tensor  #: [T - M]
    noised: dict[float, float] = field(default_factory=dict)
    noised_per_step: dict[float, torch.Tensor] = field(default_factory=dict)
    blocks: dict[str, float] = field(default_factory=dict)
    blocks_per_step: dict[str, torch.Tensor] = field(default_factory=dict)
    contact: PrecisionRecall | None = None
    termination: PrecisionRecall | None = None
    rollout: Rollout | None = field(default=None, repr=False)

    def metrics(self) -> dict[str, float]:
        """Flat scalars for the metric writers (prefix them with ``System Dynamics/``)."""
        out = {"autoregressive_error": self.error}
        out.update({f"autoregressive_error_noised_{sigma:g}": v for sigma, v in self.noised.items()})
        out.update({f"autoregressive_error/{name}": v for name, v in self.blocks.items()})
        for name, pr in (("contact", self.contact), ("termination", self.termination)):
            if pr is not None:
                out[f"{name}_precision"] = pr.precision
                out[f"{name}_recall"] = pr.recall
        return out


def state_block_slices(group: Any) -> dict[str, slice]:
    """Block name -> slice of the state vector, from a plan's ``system_state`` ``ObservationGroupPlan``."""
    return {term.name: slice(term.start, term.start + term.dim) for term in group.terms}


def context_memory(model: WorldModel, pairs_state: torch.Tensor, pairs_action: torch.Tensor) -> Memory:
    """The memory after the first M - 1 (state, applied action) pairs: what ``step`` on pair M - 1 continues."""
    return model.warm_up(pairs_state[:, : model.history_horizon - 1], pairs_action[:, : model.history_horizon - 1])


@torch.no_grad()
def autoregressive_rollout(model: WorldModel, state: torch.Tensor, action: torch.Tensor) -> Rollout:
    """Roll the ensemble mean out from the true ``history_horizon`` context of buffer-layout ``state``/``action``."""
    M, T = model.history_horizon, state.shape[1]
    if T <= M:
        raise ValueError(
            f"trajectories of {T} steps leave nothing to predict after the {M}-step context: "
            f"world_model.train.eval_trajectory_length must exceed world_model.history_horizon"
        )
    pairs_state, pairs_action = applied_action_pairs(state, action)
    predicted = state.clone()
    contact = state.new_full((*state.shape[:2], model.contact_dim), math.nan)
    termination = state.new_full((*state.shape[:2], model.termination_dim), math.nan)
    epistemic = state.new_full(state.shape[:2], math.nan)
    was_training = model.training
    model.eval()
    memory = context_memory(model, pairs_state, pairs_action)
    for t in range(M, T):
        # pair t - 1: the true last context state at t = M, the previous prediction after
        p, memory = model.step(predicted[:, t - 1], pairs_action[:, t - 1], memory)
        predicted[:, t] = p.next_state.to(predicted.dtype)
        contact[:, t] = p.contact_prob.to(contact.dtype)
        termination[:, t] = p.termination_prob.to(termination.dtype)
        epistemic[:, t] = p.epistemic.to(epistemic.dtype)
    model.train(was_training)
    return Rollout(predicted, contact, termination, epistemic)


def relative_error(
    predicted: torch.Tensor, truth: torch.Tensor, history_horizon: int, dims: slice = slice(None)
) -> torch.Tensor:
    """``[B, T, S]`` pair -> ``[T - M]``: mean over trajectories of ||s_hat_t - s_t||_1 / ||s_t||_1, t >= M."""
    diff = (predicted[:, history_horizon:, dims] - truth[:, history_horizon:, dims]).abs().sum(dim=-1)
    norm = truth[:, history_horizon:, dims].abs().sum(dim=-1).clamp_min(_EPS)
    return (diff / norm).mean(dim=0)


def precision_recall(prob: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> PrecisionRecall:
    """Scores of ``prob > threshold`` against ``target > 0.5``, pooled over all entries."""
    pred, true = prob > threshold, target > 0.5
    tp = int((pred & true).sum())
    fp = int((pred & ~true).sum())
    fn = int((~pred & true).sum())
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / (tp + fn) if tp + fn else math.nan
    return PrecisionRecall(precision, recall, tp, fp, fn)


@torch.no_grad()
def _teacher_forced_probs(model: WorldModel, state: torch.Tensor, action: torch.Tensor):
    """Ensemble-mean contact and termination probabilities ``[B, T - M, ·]`` for targets t >= M, each predicted
    from the true states before it."""
    pairs_state, pairs_action = applied_action_pairs(state, action)
    was_training = model.training
    model.eval()
    memory = context_memory(model, pairs_state, pairs_action)
    predictions: list[Prediction] = []
    for t in range(model.history_horizon - 1, state.shape[1] - 1):  # pair t predicts entry t + 1
        p, memory = model.step(pairs_state[:, t], pairs_action[:, t], memory)
        predictions.append(p)
    model.train(was_training)
    contact = torch.stack([p.contact_prob.float() for p in predictions], dim=1)
    termination = torch.stack([p.termination_prob.float() for p in predictions], dim=1)
    return contact, termination


def evaluate_world_model(
    model: WorldModel,
    trajectories: Windows,
    *,
    noise_sigmas: Iterable[float] = (),
    blocks: Mapping[str, slice] | None = None,
    generator: torch.Generator | None = None,
    auxiliary_mode: str = "rollout",
) -> ModelEvaluation:
    """The relative autoregressive error and its variants on buffer trajectories ``[B, T, ·]``.

    :param noise_sigmas: noise levels of the noised variants (upstream: 0.1, 0.2, 0.4, 0.5, 0.8).
    :param blocks: state block name -> slice (``state_block_slices``) for per-block errors.
    :param generator: draws the noise.
    :param auxiliary_mode: ``rollout`` or ``teacher_forced`` (see the module docstring).
    """
    if auxiliary_mode not in ("rollout", "teacher_forced"):
        raise ValueError(f"auxiliary_mode {auxiliary_mode!r}: use 'rollout' or 'teacher_forced'")
    M = model.history_horizon
    state, action = trajectories.state, trajectories.action
    rollout = autoregressive_rollout(model, state, action)
    per_step = relative_error(rollout.state, state, M)
    result = ModelEvaluation(error=float(per_step.mean()), error_per_step=per_step, rollout=rollout)
    for name, dims in (blocks or {}).items():
        block_steps = relative_error(rollout.state, state, M, dims)
        result.blocks[name] = float(block_steps.mean())
        result.blocks_per_step[name] = block_steps
    for sigma in noise_sigmas:
        sample_device = generator.device if generator is not None else state.device
        noised_state = state + sigma * torch.randn(state.shape, generator=generator, device=sample_device).to(state)
        noised_action = action + sigma * torch.randn(action.shape, generator=generator, device=sample_device).to(action)
        noised_steps = relative_error(autoregressive_rollout(model, noised_state, noised_action).state, noised_state, M)
        result.noised[float(sigma)] = float(noised_steps.mean())
        result.noised_per_step[float(sigma)] = noised_steps
    if auxiliary_mode == "rollout":
        contact_prob, termination_prob = rollout.contact_prob[:, M:], rollout.termination_prob[:, M:]
    else:
        contact_prob, termination_prob = _teacher_forced_probs(model, state, action)
    if model.contact_dim > 0:
        result.contact = precision_recall(contact_prob, trajectories.contact[:, M:])
    if model.termination_dim > 0:
        result.termination = precision_recall(termination_prob, trajectories.termination[:, M:])
    return result


@torch.no_grad()
def termination_at_falls(model: WorldModel, falls: Windows, others: Windows) -> dict[str, float]:
    """Does the termination head predict falls? Upstream's learns "never terminate" (termination is rare).

    Both window sets have ``history_horizon + 1`` entries; the head reads the true M-step context (teacher forced)
    and predicts the termination flag of the last entry. ``falls`` end in a termination, ``others`` are uniform
    windows (mostly not). Returns the recall at falls, the precision over both sets pooled, and the mean predicted
    probability at falls and elsewhere (0.5 threshold on the ensemble mean).
    """

    def last_prob(w: Windows) -> tuple[torch.Tensor, torch.Tensor]:
        _, termination = _teacher_forced_probs(model, w.state, w.action)
        return termination[:, -1], w.termination[:, -1]

    fall_prob, fall_label = last_prob(falls)
    other_prob, other_label = last_prob(others)
    pooled = precision_recall(torch.cat([fall_prob, other_prob]), torch.cat([fall_label, other_label]))
    at_falls = precision_recall(fall_prob, fall_label)
    quiet = other_label < 0.5
    return {
        "termination_recall_at_falls": at_falls.recall,
        "termination_precision_at_falls": pooled.precision,
        "termination_prob_at_falls": float(fall_prob.mean()),
        "termination_prob_elsewhere": float(other_prob[quiet].mean()) if bool(quiet.any()) else math.nan,
    }
