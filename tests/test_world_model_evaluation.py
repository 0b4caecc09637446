"""The relative autoregressive error e: zero for a perfect model (with the training alignment of actions), known
growth for a constant bias, per-block errors, noised variants, and auxiliary precision/recall."""

from __future__ import annotations

import math

import pytest
import torch

from rwmspec_plugins.world_models.bases import WorldModelBase
from rwmspec_plugins.world_models.ensemble import SystemDynamicsEnsemble
from rwmspec_runtime.world_model.evaluation import (
    autoregressive_rollout,
    evaluate_world_model,
    precision_recall,
    relative_error,
    termination_at_falls,
)
from rwmspec_runtime.world_model.replay_buffer import Windows

from world_model_helpers import tiny_world_model_plan

S, A, C, M, T = 6, 2, 2, 4, 12


def windows_of(state: torch.Tensor, action: torch.Tensor, contact: torch.Tensor | None = None) -> Windows:
    B, L = state.shape[:2]
    contact = contact if contact is not None else torch.zeros(B, L, C)
    return Windows(
        state=state,
        action=action,
        contact=contact,
        termination=torch.zeros(B, L, 1),
        extension=torch.zeros(B, L, 0),
        env_ids=torch.arange(B),
        slots=torch.zeros(B, L, dtype=torch.long),
    )


class LastInputBase(WorldModelBase):
    """Features = the last (state, action) pair itself, so the heads can express any linear dynamics."""

    recurrent = False
    memory_batch_dim = 0

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        self.input_dim = self.output_dim = input_dim

    def initial_memory(self, batch_size, *, device=None, dtype=None):
        return torch.zeros(batch_size, self.input_dim, device=device, dtype=dtype)

    def forward(self, x, memory):
        return x[:, -1], x[:, -1]


def build_last_input(input_dim, plan):
    return LastInputBase(input_dim)


def linear_model(a_matrix: torch.Tensor, b_matrix: torch.Tensor) -> SystemDynamicsEnsemble:
    """An ensemble whose every member predicts s' = A s + B a exactly (ReLU(x) - ReLU(-x) = x in the mean head)."""
    D = S + A
    model = SystemDynamicsEnsemble(
        tiny_world_model_plan(architecture="last_input", state_mean_hidden=(2 * D,)), base_factory=build_last_input
    )
    linear = torch.cat([a_matrix - torch.eye(S), b_matrix], dim=1)  # residual adds s back
    eye = torch.eye(D)
    with torch.no_grad():
        first, last = model.state_mean_head.layers
        first.weight.copy_(torch.cat([eye, -eye], dim=1).expand_as(first.weight))
        first.bias.zero_()
        last.weight.copy_(torch.cat([linear.T, -linear.T], dim=0).expand_as(last.weight))
        last.bias.zero_()
    return model


def linear_trajectories(a_matrix, b_matrix, batch=5, seed=0):
    """Buffer layout: entry k holds (s_k, a_{k-1})."""
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(batch, S, generator=g) * 2
    states, actions, last_action = [], [], torch.zeros(batch, A)
    for _ in range(T):
        states.append(s)
        actions.append(last_action)
        a = torch.randn(batch, A, generator=g)
        s, last_action = s @ a_matrix.T + a @ b_matrix.T, a
    return torch.stack(states, dim=1), torch.stack(actions, dim=1)


def _system(seed=0):
    g = torch.Generator().manual_seed(seed)
    rotation, _ = torch.linalg.qr(torch.randn(S, S, generator=g))
    return 0.98 * rotation, 0.5 * torch.randn(S, A, generator=g)


def test_perfect_model_has_zero_error():
    a_matrix, b_matrix = _system()
    model = linear_model(a_matrix, b_matrix)
    state, action = linear_trajectories(a_matrix, b_matrix)
    result = evaluate_world_model(model, windows_of(state, action))
    assert result.error_per_step.shape == (T - M,)
    assert result.error < 1e-5
    rollout = autoregressive_rollout(model, state, action)
    torch.testing.assert_close(rollout.state, state, atol=1e-4, rtol=0)
    # pairing s_k with the buffer's own entry (a_{k-1}) instead of the applied action breaks the perfect model
    lagged = torch.cat([torch.zeros_like(action[:, :1]), action[:, :-1]], dim=1)
    assert evaluate_world_model(model, windows_of(state, lagged)).error > 1e-2


def _constant_bias_model(bias: torch.Tensor) -> SystemDynamicsEnsemble:
    torch.manual_seed(0)
    model = SystemDynamicsEnsemble(tiny_world_model_plan())
    with torch.no_grad():
        model.state_mean_head.output_layer.weight.zero_()
        model.state_mean_head.output_layer.bias.copy_(bias.expand(3, S))
    return model


def test_error_grows_linearly_for_a_constant_bias():
    bias = torch.tensor([0.1, -0.2, 0.05, 0.0, 0.0, 0.0])
    model = _constant_bias_model(bias)
    g = torch.Generator().manual_seed(0)
    constant = torch.randn(4, 1, S, generator=g) + 2.0
    state = constant.expand(4, T, S).clone()  # the true system stands still
    action = torch.randn(4, T, A, generator=g)
    blocks = {"first": slice(0, 3), "second": slice(3, 6)}
    result = evaluate_world_model(model, windows_of(state, action), blocks=blocks)
    steps_ahead = torch.arange(1, T - M + 1, dtype=torch.float32)
    expected = steps_ahead * (bias.abs().sum() / constant[:, 0].abs().sum(dim=-1)).mean()
    torch.testing.assert_close(result.error_per_step, expected, atol=1e-5, rtol=1e-5)
    assert result.error == pytest.approx(float(expected.mean()), rel=1e-5)
    first = steps_ahead * (bias[:3].abs().sum() / constant[:, 0, :3].abs().sum(dim=-1)).mean()
    torch.testing.assert_close(result.blocks_per_step["first"], first, atol=1e-5, rtol=1e-5)
    assert result.blocks["second"] < 1e-6  # (s + s + s) / 3 may round
    metrics = result.metrics()
    assert metrics["autoregressive_error/second"] < 1e-6 and "autoregressive_error" in metrics


def test_noised_variants_compare_with_the_noised_truth():
    model = _constant_bias_model(torch.zeros(S))
    state = (torch.randn(6, 1, S, generator=torch.Generator().manual_seed(1)) + 2.0).expand(6, T, S).clone()
    action = torch.zeros(6, T, A)
    result = evaluate_world_model(
        model, windows_of(state, action), noise_sigmas=[0.1, 0.8], generator=torch.Generator().manual_seed(0)
    )
    assert result.error < 1e-6  # a standing-still model on a standing-still system
    assert 0.0 < result.noised[0.1] < result.noised[0.8]
    assert set(result.metrics()) >= {"autoregressive_error_noised_0.1", "autoregressive_error_noised_0.8"}


def test_relative_error_matches_the_definition():
    truth = torch.tensor([[[1.0, -1.0], [2.0, 2.0], [4.0, 0.0]]])
    predicted = torch.tensor([[[1.0, -1.0], [1.0, 2.0], [4.0, 2.0]]])
    torch.testing.assert_close(relative_error(predicted, truth, 1), torch.tensor([1 / 4, 2 / 4]))


def test_precision_recall():
    prob = torch.tensor([0.9, 0.8, 0.2, 0.1, 0.7])
    target = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
    pr = precision_recall(prob, target)
    assert (pr.true_positive, pr.false_positive, pr.false_negative) == (2, 1, 1)
    assert pr.precision == pytest.approx(2 / 3) and pr.recall == pytest.approx(2 / 3)
    none = precision_recall(torch.zeros(3), torch.zeros(3))
    assert math.isnan(none.precision) and math.isnan(none.recall)


@pytest.mark.parametrize("mode", ["rollout", "teacher_forced"])
def test_contact_scores_of_an_always_in_contact_head(mode):
    model = _constant_bias_model(torch.zeros(S))
    with torch.no_grad():
        model.contact_head.output_layer.weight.zero_()
        model.contact_head.output_layer.bias.fill_(10.0)
    g = torch.Generator().manual_seed(0)
    state = torch.randn(5, T, S, generator=g)
    contact = (torch.rand(5, T, C, generator=g) > 0.5).float()
    result = evaluate_world_model(model, windows_of(state, torch.zeros(5, T, A), contact), auxiliary_mode=mode)
    positives = contact[:, M:]
    assert result.contact.recall == 1.0
    assert result.contact.precision == pytest.approx(float(positives.mean()))
    assert result.metrics()["contact_recall"] == 1.0


@pytest.mark.parametrize("bias, recall", [(-10.0, 0.0), (10.0, 1.0)])
def test_termination_at_falls_scores_the_last_entry(bias, recall):
    model = _constant_bias_model(torch.zeros(S))
    with torch.no_grad():
        model.termination_head.output_layer.weight.zero_()
        model.termination_head.output_layer.bias.fill_(bias)
    g = torch.Generator().manual_seed(0)
    falls = windows_of(torch.randn(4, M + 1, S, generator=g), torch.zeros(4, M + 1, A))
    falls.termination[:, -1] = 1.0
    others = windows_of(torch.randn(6, M + 1, S, generator=g), torch.zeros(6, M + 1, A))
    scores = termination_at_falls(model, falls, others)
    assert scores["termination_recall_at_falls"] == recall  # a head that never fires: "never terminate"
    assert scores["termination_prob_at_falls"] == pytest.approx(torch.sigmoid(torch.tensor(bias)).item(), abs=1e-6)
    if bias > 0:
        assert scores["termination_precision_at_falls"] == pytest.approx(4 / 10)


@pytest.mark.parametrize("training", [True, False])
def test_evaluation_restores_the_training_mode(training):
    model = _constant_bias_model(torch.zeros(S)).train(training)
    evaluate_world_model(model, windows_of(torch.randn(2, T, S), torch.randn(2, T, A)), auxiliary_mode="teacher_forced")
    assert model.training == training


def test_too_short_trajectories_are_rejected():
    model = _constant_bias_model(torch.zeros(S))
    with pytest.raises(ValueError, match="eval_trajectory_length"):
        evaluate_world_model(model, windows_of(torch.randn(2, M, S), torch.randn(2, M, A)))
