"""World-model losses and trainer: autoregression with gradients through time, teacher-forced auxiliary heads,
loss weights, bootstrap, the trainer's update, and fitting a small linear system."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch.nn import functional as F

from rwmspec.spec.model import LossWeightsSpec, UpstreamQuirksSpec, WorldModelTrainSpec
from rwmspec_plugins.world_models.ensemble import SystemDynamicsEnsemble
from rwmspec_plugins.world_models.losses import LOSS_NAMES, bootstrap_indices
from rwmspec_runtime.world_model.protocol import LossSettings
from rwmspec_runtime.world_model.replay_buffer import ReplayBuffer
from rwmspec_runtime.world_model.trainer import UPDATE_KEYS, WorldModelTrainer

from world_model_helpers import random_windows, tiny_world_model, tiny_world_model_plan

S, A, C, R, M, N = 6, 2, 2, 1, 4, 3


# the shared tiny world model as a single member
tiny_plan = partial(tiny_world_model_plan, ensemble_size=1)
make_model = partial(tiny_world_model, ensemble_size=1)


def losses(model, windows, seed=0, **settings):
    settings.setdefault("forecast_horizon", windows.length - model.history_horizon)
    return model.losses(windows, LossSettings(**settings), torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("arch", ("gru", "mlp"))
def test_gradient_flows_through_time(arch):
    windows = random_windows(8, M + N)
    terms = losses(make_model(architecture=arch), windows)
    terms.samples[0].retain_grad()
    terms.state_per_step[-1].sum().backward()
    assert terms.samples[0].grad is not None and terms.samples[0].grad.abs().sum() > 0

    detached = losses(make_model(architecture=arch), windows, feedback_gradient=False)
    detached.samples[0].retain_grad()
    detached.state_per_step[-1].sum().backward()
    assert detached.samples[0].grad is None or torch.all(detached.samples[0].grad == 0)
    # same forward values either way: detaching only cuts the gradient
    torch.testing.assert_close(detached.state_per_step, terms.state_per_step.detach())


@pytest.mark.parametrize("arch", ("gru", "lstm", "mlp"))
def test_one_step_forecast_equals_teacher_forcing(arch):
    model = make_model(architecture=arch, ensemble_size=3, forecast_horizon=1)
    windows = random_windows(10, M + 1)
    terms = losses(model, windows, seed=5, bootstrap=False)
    # by hand: the history pairs (s_t, a_t) = (state[t], action[t + 1]) predict state[M]
    out = model(windows.state[:, :M], windows.action[:, 1 : M + 1])
    eps = torch.randn((1, 3, 10, S), generator=torch.Generator().manual_seed(5))[0]
    sample = out.mean + torch.exp(out.logstd) * eps
    expected = (sample - windows.state[:, M]).square().sum(dim=-1).mean(dim=-1)
    torch.testing.assert_close(terms.state, expected)
    contact = F.binary_cross_entropy_with_logits(
        out.contact_logits, windows.contact[:, M].expand(3, -1, -1), reduction="none"
    ).mean(dim=(1, 2))
    torch.testing.assert_close(terms.contact, contact)


@pytest.mark.parametrize("arch", ("gru", "mlp"))
def test_auxiliary_losses_are_teacher_forced(arch):
    model = make_model(architecture=arch, ensemble_size=2)
    windows = random_windows(9, M + N)
    terms = losses(model, windows, bootstrap=False)
    s, a = windows.state, windows.action
    out = model(s[:, :M], a[:, 1 : M + 1])
    contact_losses, termination_losses = [], []
    for i in range(N):
        if i > 0:  # feed the TRUE previous state, carrying the memory
            out = model(s[:, M + i - 1 : M + i], a[:, M + i : M + i + 1], out.memory)
        target_c = windows.contact[:, M + i].expand(2, -1, -1)
        target_t = windows.termination[:, M + i].expand(2, -1, -1)
        contact_losses.append(
            F.binary_cross_entropy_with_logits(out.contact_logits, target_c, reduction="none").mean(dim=(1, 2))
        )
        termination_losses.append(
            F.binary_cross_entropy_with_logits(out.termination_logits, target_t, reduction="none").mean(dim=(1, 2))
        )
    torch.testing.assert_close(terms.contact, torch.stack(contact_losses).mean(dim=0))
    torch.testing.assert_close(terms.termination, torch.stack(termination_losses).mean(dim=0))


def test_nll_state_loss_is_the_gaussian_negative_log_likelihood():
    model = make_model(ensemble_size=2, forecast_horizon=1)
    windows = random_windows(7, M + 1)
    terms = losses(model, windows, state_loss="nll", bootstrap=False)
    out = model(windows.state[:, :M], windows.action[:, 1 : M + 1])
    nll = torch.nn.GaussianNLLLoss(full=True, reduction="none")(
        out.mean, windows.state[:, M].expand(2, -1, -1), torch.exp(2 * out.logstd)
    )
    torch.testing.assert_close(terms.state, nll.sum(dim=-1).mean(dim=-1))


def test_unknown_state_loss_and_wrong_window_length_are_rejected():
    model = make_model()
    with pytest.raises(ValueError, match="state_loss = 'l1'"):
        losses(model, random_windows(4, M + N), state_loss="l1")
    with pytest.raises(ValueError, match="history_horizon \\+ forecast_horizon"):
        losses(model, random_windows(4, M + N), forecast_horizon=N + 1)


def test_bound_loss_is_the_mean_band_width():
    model = make_model(ensemble_size=3)
    with torch.no_grad():
        model.log_delta_logstd.uniform_(-1.0, 1.0)
    terms = losses(model, random_windows(4, M + N))
    torch.testing.assert_close(terms.bound, model.max_logstd.mean(dim=-1) - model.min_logstd.mean(dim=-1))


def test_loss_weights_are_respected():
    model = make_model(ensemble_size=2)
    terms = losses(model, random_windows(6, M + N))
    weights = LossWeightsSpec(state=0.5, bound=2.0, contact=0.0, termination=3.0, extension=1.0)
    expected = (
        0.5 * terms.state.mean() + 2.0 * terms.bound.mean() + 3.0 * terms.termination.mean() + terms.extension.mean()
    )
    torch.testing.assert_close(terms.total(weights), expected)
    terms.total(weights).backward()
    assert all(p.grad is None or torch.all(p.grad == 0) for p in model.contact_head.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.termination_head.parameters())


def test_pos_weight_scales_positive_targets():
    model = make_model()
    windows = random_windows(6, M + N, termination=1.0)  # every termination target positive
    plain = losses(model, windows).termination
    weighted = losses(model, windows, termination_pos_weight=3.0).termination
    torch.testing.assert_close(weighted, 3.0 * plain)


def test_bootstrap_indices():
    g = torch.Generator().manual_seed(0)
    boot = bootstrap_indices(4, 50, True, g, torch.device("cpu"))
    assert boot.shape == (4, 50) and boot.min() >= 0 and boot.max() < 50
    assert not torch.equal(boot[0], boot[1])
    assert torch.equal(bootstrap_indices(3, 5, False, g, torch.device("cpu")), torch.arange(5).expand(3, 5))


def _filled_buffer(num_envs=8, steps=40, seed=0) -> ReplayBuffer:
    g = torch.Generator().manual_seed(seed)
    buf = ReplayBuffer(num_envs, steps, S, A, C, R)
    for _ in range(steps):
        buf.add(
            torch.randn(num_envs, S, generator=g),
            torch.randn(num_envs, A, generator=g),
            (torch.rand(num_envs, C, generator=g) > 0.5).float(),
            torch.zeros(num_envs, R),
            done=torch.rand(num_envs, generator=g) < 0.05,
        )
    return buf


def test_trainer_update_reports_mean_losses_and_is_deterministic():
    plan = tiny_plan(ensemble_size=2)
    buf = _filled_buffer()
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        trainer = WorldModelTrainer(SystemDynamicsEnsemble(plan), plan, UpstreamQuirksSpec(), "cpu")
        results.append(trainer.update(buf, torch.Generator().manual_seed(1)))
    assert tuple(results[0]) == tuple(f"{name}_loss" for name in LOSS_NAMES) + UPDATE_KEYS
    assert results[0] == results[1]
    assert results[0]["learning_rate"] == plan.train.learning_rate
    r = results[0]
    assert r["total_loss"] > 0 and r["extension_loss"] == 0.0


def test_trainer_freeze_auxiliary_keeps_auxiliary_weights():
    plan = tiny_plan(train=WorldModelTrainSpec(mini_batch_size=16, num_mini_batches=2, freeze_auxiliary=True))
    torch.manual_seed(0)
    model = SystemDynamicsEnsemble(plan)
    aux_before = [p.detach().clone() for p in model.auxiliary_parameters()]
    mean_before = model.state_mean_head.layers[0].weight.detach().clone()
    trainer = WorldModelTrainer(model, plan, None, "cpu")
    result = trainer.update(_filled_buffer(), torch.Generator().manual_seed(0))
    assert all(torch.equal(a, p) for a, p in zip(aux_before, model.auxiliary_parameters(), strict=True))
    assert not torch.equal(mean_before, model.state_mean_head.layers[0].weight)
    assert result["contact_loss"] > 0  # still measured


def test_trainer_optimizer_state_round_trip():
    plan = tiny_plan()
    torch.manual_seed(0)
    trainer = WorldModelTrainer(SystemDynamicsEnsemble(plan), plan, None, "cpu")
    trainer.update(_filled_buffer(), torch.Generator().manual_seed(0))
    other = WorldModelTrainer(SystemDynamicsEnsemble(plan), plan, None, "cpu")
    other.load_state_dict(trainer.state_dict())
    assert other.optimizer.state_dict()["state"][0]["step"] == trainer.optimizer.state_dict()["state"][0]["step"]


@pytest.mark.parametrize("arch", ("gru", "mlp"))
def test_tiny_model_fits_a_linear_system(arch):
    g = torch.Generator().manual_seed(0)
    rotation, _ = torch.linalg.qr(torch.randn(S, S, generator=g))
    a_matrix, b_matrix = 0.95 * rotation, 0.5 * torch.randn(S, A, generator=g)
    num_envs, steps = 16, 200
    buf = ReplayBuffer(num_envs, steps, S, A)
    state, last_action = torch.randn(num_envs, S, generator=g), torch.zeros(num_envs, A)
    for _ in range(steps):
        buf.add(state, last_action)  # buffer layout: (s_k, a_{k-1})
        action = torch.randn(num_envs, A, generator=g)
        state, last_action = state @ a_matrix.T + action @ b_matrix.T, action
    plan = tiny_plan(
        architecture=arch,
        contact_dim=0,
        termination_dim=0,
        train=WorldModelTrainSpec(mini_batch_size=64, num_mini_batches=1, learning_rate=1e-2),
    )
    torch.manual_seed(0)
    trainer = WorldModelTrainer(SystemDynamicsEnsemble(plan), plan, None, "cpu")
    history = [trainer.update(buf, g)["state_loss"] for _ in range(200)]
    first, last = sum(history[:5]) / 5, sum(history[-10:]) / 10
    assert last < first / 10, (first, last)
