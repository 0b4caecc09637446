"""SystemDynamicsEnsemble: shapes, heads, bounds, memory handling, checkpoints and the architecture registry."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest
import torch
from torch.nn import functional as F

from rwmspec import hookimpl
from rwmspec.manager import build_registry, get_registry, resolve
from rwmspec.plan import WorldModelPlan
from rwmspec.spec.model import LossWeightsSpec, WorldModelTrainSpec
from rwmspec.types import ArchitectureDef
from rwmspec_runtime.world_model.bases import MlpBase, RecurrentBase, WorldModelBase, gru_cell_inference
from rwmspec_runtime.world_model.ensemble import SystemDynamicsEnsemble
from rwmspec_runtime.world_model.ensemble_linear import EnsembleMLP
from rwmspec_runtime.world_model.losses import world_model_losses
from rwmspec_runtime.world_model.replay_buffer import Windows

S, A, C, R, E, M, N = 6, 2, 2, 1, 1, 4, 3
ARCHS = ("gru", "lstm", "mlp")


def tiny_plan(**overrides) -> WorldModelPlan:
    fields = dict(
        architecture="gru",
        base_hidden=(16, 16),
        state_mean_hidden=(16,),
        state_logstd_hidden=(16,),
        auxiliary_hidden=(16,),
        ensemble_size=3,
        history_horizon=M,
        forecast_horizon=N,
        separate_auxiliary_base=True,
        residual=True,
        logstd_bounds_init=(-5.0, -4.0),
        state_dim=S,
        action_dim=A,
        contact_dim=C,
        termination_dim=R,
        extension_dim=E,
        loss_weights=LossWeightsSpec(),
        train=WorldModelTrainSpec(mini_batch_size=16, num_mini_batches=2),
    )
    fields.update(overrides)
    return WorldModelPlan(**fields)


def make_model(seed: int = 0, **overrides) -> SystemDynamicsEnsemble:
    torch.manual_seed(seed)
    return SystemDynamicsEnsemble(tiny_plan(**overrides))


def random_windows(batch: int, length: int, seed: int = 1) -> Windows:
    g = torch.Generator().manual_seed(seed)
    return Windows(
        state=torch.randn(batch, length, S, generator=g),
        action=torch.randn(batch, length, A, generator=g),
        contact=(torch.rand(batch, length, C, generator=g) > 0.5).float(),
        termination=(torch.rand(batch, length, R, generator=g) > 0.9).float(),
        extension=torch.randn(batch, length, E, generator=g),
        env_ids=torch.zeros(batch, dtype=torch.long),
        slots=torch.zeros(batch, length, dtype=torch.long),
    )


@pytest.mark.parametrize("arch", ARCHS)
def test_output_shapes(arch):
    model = make_model(architecture=arch)
    B, T = 5, M
    out = model(torch.randn(B, T, S), torch.randn(B, T, A))
    assert out.mean.shape == (3, B, S) and out.logstd.shape == (3, B, S)
    assert out.contact_logits.shape == (3, B, C)
    assert out.termination_logits.shape == (3, B, R)
    assert out.extension.shape == (3, B, E)
    seq = model.forward_sequence(torch.randn(B, T, S), torch.randn(B, T, A))
    assert seq.mean.shape == (3, B, T, S) and seq.contact_logits.shape == (3, B, T, C)
    pred = model.predict(torch.randn(B, S), torch.randn(B, A), member_ids=torch.tensor([0, 1, 2, 0, 1]))
    assert pred.next_state.shape == (B, S)
    assert pred.aleatoric.shape == pred.epistemic.shape == (B,)
    assert pred.contact_prob.shape == (B, C) and pred.termination_prob.shape == (B, R)
    assert pred.extension.shape == (B, E)


@pytest.mark.parametrize("arch", ARCHS)
def test_warm_up_remembers_what_a_forward_pass_remembers(arch):
    model = make_model(architecture=arch)
    state, action = torch.randn(4, M, S), torch.randn(4, M, A)
    memory = model(state, action).memory
    warm = model.warm_up(state, action)
    for part in ("state", "auxiliary"):
        expected, got = getattr(memory, part), getattr(warm, part)
        expected, got = (expected, got) if isinstance(expected, tuple) else ((expected,), (got,))
        for e, g in zip(expected, got, strict=True):
            torch.testing.assert_close(g, e, rtol=0, atol=0)


def test_absent_heads_give_empty_tensors_and_no_auxiliary_base():
    model = make_model(contact_dim=0, termination_dim=0, extension_dim=0)
    assert model.auxiliary_base is None and not model.has_auxiliary_heads
    out = model(torch.randn(4, M, S), torch.randn(4, M, A))
    assert out.contact_logits.shape == (3, 4, 0) and out.extension.shape == (3, 4, 0)


def test_predict_picks_member_or_ensemble_mean():
    model = make_model()
    state, action = torch.randn(4, M, S), torch.randn(4, M, A)
    members = model(state, action).mean
    ids = torch.tensor([2, 0, 1, 2])
    picked = model.predict(state, action, member_ids=ids).next_state
    model.reset()
    mean = model.predict(state, action).next_state
    torch.testing.assert_close(picked, members[ids, torch.arange(4)])
    torch.testing.assert_close(mean, members.mean(dim=0))


def test_epistemic_reductions():
    means = torch.randn(3, 5, S)
    default = make_model()
    quirk = SystemDynamicsEnsemble(tiny_plan(), epistemic_summed_std=True)
    torch.testing.assert_close(default.epistemic(means), means.var(dim=0, unbiased=False).mean(dim=-1))
    torch.testing.assert_close(quirk.epistemic(means), means.std(dim=0).sum(dim=-1))
    assert torch.all(make_model(ensemble_size=1).epistemic(means[:1]) == 0)


def test_residual_zero_final_layer_predicts_last_state():
    model = make_model()
    with torch.no_grad():
        model.state_mean_head.output_layer.weight.zero_()
        model.state_mean_head.output_layer.bias.zero_()
    state = torch.randn(4, M, S)
    out = model(state, torch.randn(4, M, A))
    assert torch.equal(out.mean, state[:, -1].expand(3, 4, S))


def test_logstd_stays_within_bounds_for_extreme_raw_values():
    model = make_model()
    with torch.no_grad():
        model.min_logstd.uniform_(-6.0, -4.0)
        model.log_delta_logstd.uniform_(-1.0, 1.0)
    raw = torch.tensor([-1e6, -1e3, -10.0, 0.0, 10.0, 1e3, 1e6]).repeat_interleave(S).view(1, -1, S).expand(3, -1, S)
    logstd = model.bound_logstd(raw)
    lo, hi = model.min_logstd.unsqueeze(1), model.max_logstd.unsqueeze(1)
    assert torch.isfinite(logstd).all()
    assert torch.all(logstd >= lo)
    # the double softplus is a soft clamp: the top saturates at max + softplus(min - max), just above max
    assert torch.all(logstd <= hi + F.softplus(lo - hi) + 1e-6)
    assert torch.all(logstd[:, 0] - lo[:, 0] < 1e-5), "very negative raw values sit on the lower bound"
    # monotone in the raw value
    assert torch.all(logstd[:, 1:] >= logstd[:, :-1])


def _loop_reference(head: EnsembleMLP, x: torch.Tensor, shared: bool) -> torch.Tensor:
    outs = []
    for k in range(head.layers[0].ensemble_size):
        h = x if shared else x[k]
        for i, layer in enumerate(head.layers):
            h = F.linear(h, layer.weight[k].T, layer.bias[k])
            if i < len(head.layers) - 1:
                h = torch.relu(h)
        outs.append(h)
    return torch.stack(outs)


@pytest.mark.parametrize("shared", [True, False])
def test_batched_heads_match_a_per_member_loop(shared):
    model = make_model(state_mean_hidden=(16, 8))
    x = torch.randn(7, 16) if shared else torch.randn(3, 7, 16)
    for head in (model.state_mean_head, model.state_logstd_head, model.contact_head, model.termination_head):
        torch.testing.assert_close(head(x, shared=shared), _loop_reference(head, x, shared), atol=1e-6, rtol=0)
    # a member subset reads those members' weights
    sub = model.state_mean_head(x if shared else x[[2, 0]], shared=shared, members=[2, 0])
    torch.testing.assert_close(sub, _loop_reference(model.state_mean_head, x, shared)[[2, 0]], atol=1e-6, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_state_dict_round_trip_gives_identical_predictions(arch, tmp_path):
    model = make_model(seed=0, architecture=arch)
    path = tmp_path / "wm.pt"
    torch.save(model.state_dict(), path)
    other = make_model(seed=123, architecture=arch)
    other.load_state_dict(torch.load(path))
    state, action = torch.randn(5, M, S), torch.randn(5, M, A)
    a, b = model(state, action), other(state, action)
    for field in ("mean", "logstd", "contact_logits", "termination_logits", "extension"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    ids = torch.tensor([0, 1, 2, 1, 0])
    for _ in range(3):
        pa, pb = model.predict(state[:, -1], action[:, -1], ids), other.predict(state[:, -1], action[:, -1], ids)
        assert torch.equal(pa.next_state, pb.next_state) and torch.equal(pa.epistemic, pb.epistemic)


def _memory_rows(base: WorldModelBase, rows) -> torch.Tensor:
    mem = base.memory
    parts = mem if isinstance(mem, tuple) else (mem,)
    return torch.stack([p.index_select(base.memory_batch_dim, torch.as_tensor(rows)).float() for p in parts])


@pytest.mark.parametrize("arch", ARCHS)
def test_per_env_reset_only_touches_those_rows(arch):
    model = make_model(architecture=arch)
    B = 5
    model.predict(torch.randn(B, M, S), torch.randn(B, M, A))
    model.predict(torch.randn(B, S), torch.randn(B, A))
    keep, reset = [0, 2, 4], [1, 3]
    before = {
        name: _memory_rows(base, keep) for name, base in (("state", model.state_base), ("aux", model.auxiliary_base))
    }
    model.reset(torch.tensor(reset))
    for name, base in (("state", model.state_base), ("aux", model.auxiliary_base)):
        assert torch.all(_memory_rows(base, reset) == 0), name
        assert torch.equal(_memory_rows(base, keep), before[name]), name
    # a step for a subset of envs advances only their rows
    untouched = _memory_rows(model.state_base, keep)
    model.predict(torch.randn(2, S), torch.randn(2, A), env_ids=torch.tensor(reset))
    assert torch.equal(_memory_rows(model.state_base, keep), untouched)
    assert not torch.all(_memory_rows(model.state_base, reset) == 0)
    model.reset()
    assert model.memory is None


def test_reset_memory_equals_fresh_start():
    model = make_model()
    state, action = torch.randn(3, M, S), torch.randn(3, M, A)
    fresh = model(state, action).mean.mean(dim=0)
    model.predict(torch.randn(3, M, S), torch.randn(3, M, A))
    model.reset(torch.tensor([0, 1, 2]))
    torch.testing.assert_close(model.predict(state, action).next_state, fresh)


def test_env_ids_step_needs_a_kept_memory():
    model = make_model()
    with pytest.raises(RuntimeError, match="init_memory"):
        model.predict(torch.randn(2, S), torch.randn(2, A), env_ids=torch.tensor([0, 1]))
    model.init_memory(4)
    model.predict(torch.randn(2, S), torch.randn(2, A), env_ids=torch.tensor([0, 1]))


@pytest.mark.parametrize("arch", ("gru", "lstm"))
def test_member_loss_independent_of_other_members_unless_quirk(arch):
    windows = random_windows(12, M + N)

    def member_losses(quirk: bool, perturb: bool) -> tuple[torch.Tensor, torch.Tensor]:
        model = make_model(seed=3, architecture=arch)
        if perturb:
            with torch.no_grad():
                model.state_mean_head.layers[0].weight[0] += 3.0
        terms = world_model_losses(
            model,
            windows,
            forecast_horizon=N,
            shared_hidden_state_across_members=quirk,
            generator=torch.Generator().manual_seed(7),
        )
        # gradient of member 1's loss wrt member 0's head: zero unless member 1 continues member 0's rollout
        terms.state[1].backward()
        return terms.state.detach(), model.state_mean_head.layers[0].weight.grad[0].abs().sum()

    (base, grad), (perturbed, _) = member_losses(False, False), member_losses(False, True)
    assert (base[0] - perturbed[0]).abs() > 1e-2
    torch.testing.assert_close(base[1:], perturbed[1:], atol=1e-6, rtol=0)
    assert grad == 0
    (quirk_base, quirk_grad), (quirk_perturbed, _) = member_losses(True, False), member_losses(True, True)
    assert (quirk_base[1] - quirk_perturbed[1]).abs() > 1e-5, "member 1 continues member 0's hidden state"
    assert quirk_grad > 0
    # member 0 starts from an empty memory in both modes, so the sequential emulation matches the batched path
    torch.testing.assert_close(quirk_base[0], base[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_single_step_cells_match_the_sequence_kernel(cell):
    torch.manual_seed(0)
    fused = RecurrentBase(8, (16, 16), cell, single_step_cells=True)
    plain = RecurrentBase(8, (16, 16), cell, single_step_cells=False)
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(5, 1, 8)
    with torch.no_grad():
        memory = fused(torch.randn(5, 3, 8), fused.initial_memory(5))[1]  # a non-empty memory
    (fa, ma), (pa, pm) = fused(x, memory), plain(x, memory)
    torch.testing.assert_close(fa, pa, atol=1e-6, rtol=1e-5)
    for a, b in zip(ma if cell == "lstm" else (ma,), pm if cell == "lstm" else (pm,), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    fa.square().sum().backward()
    pa.square().sum().backward()
    for (name, a), b in zip(fused.named_parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4, msg=name)


# ----------------------------------------------------------------------------------------------------------------------
# the architecture registry
# ----------------------------------------------------------------------------------------------------------------------
def test_written_out_gru_cell_matches_torch():
    torch.manual_seed(0)
    cell = torch.nn.GRUCell(5, 8)
    x, h = torch.randn(4, 5), torch.randn(4, 8)
    expected = torch.gru_cell(x, h, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    got = gru_cell_inference(x, h, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    torch.testing.assert_close(got, expected)


def test_builtin_architectures_are_registered():
    archs = get_registry().architectures
    assert {"gru", "lstm", "mlp"} <= set(archs)
    assert archs["gru"].recurrent and archs["lstm"].recurrent and not archs["mlp"].recurrent
    plan = tiny_plan()
    assert isinstance(resolve(archs["gru"].factory)(8, plan), RecurrentBase)
    assert resolve(archs["lstm"].factory)(8, plan).cell == "lstm"
    assert isinstance(resolve(archs["mlp"].factory)(8, plan), MlpBase)


def test_plugin_module_does_not_import_torch():
    code = (
        "import sys, rwmspec_plugins.world_models.plugin as p; list(p.rwmspec_world_model_architectures()); "
        "assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_recurrent_base_needs_equal_layer_sizes():
    with pytest.raises(ValueError, match=r"world_model.base_hidden = \[16, 8\].*equal"):
        make_model(base_hidden=(16, 8))


def test_unknown_architecture_names_the_known_ones():
    with pytest.raises(ValueError, match=r"world_model.architecture = 'transformer'.*gru.*lstm.*mlp"):
        make_model(architecture="transformer")


def test_builtin_architectures_reject_options():
    with pytest.raises(ValueError, match=r"takes no options"):
        make_model(options={"dropout": 0.1})


class MeanPoolBase(WorldModelBase):
    """A third-party base: a linear layer on the running mean of the inputs (memory: running sum and count)."""

    recurrent = False
    memory_batch_dim = 0

    def __init__(self, input_dim: int, width: int) -> None:
        super().__init__()
        self.input_dim, self.output_dim = input_dim, width
        self.linear = torch.nn.Linear(input_dim, width)

    def initial_memory(self, batch_size, *, device=None, dtype=None):
        return (torch.zeros(batch_size, self.input_dim, device=device), torch.zeros(batch_size, 1, device=device))

    def forward(self, x, memory):
        total, count = memory[0] + x.sum(dim=1), memory[1] + x.shape[1]
        return torch.tanh(self.linear(total / count)), (total, count)


def build_mean_pool(input_dim, plan):
    return MeanPoolBase(input_dim, plan.base_hidden[-1])


def test_a_plugin_adds_an_architecture():
    plugin = types.ModuleType("mean_pool_plugin")

    @hookimpl
    def rwmspec_world_model_architectures():
        yield ArchitectureDef(
            name="mean_pool", description="running-mean base", recurrent=False, factory=f"{__name__}:build_mean_pool"
        )

    plugin.rwmspec_world_model_architectures = rwmspec_world_model_architectures
    registry = build_registry([("mean_pool", plugin)], load_entry_points=False)
    torch.manual_seed(0)
    model = SystemDynamicsEnsemble(tiny_plan(architecture="mean_pool"), registry=registry)
    assert isinstance(model.state_base, MeanPoolBase)
    terms = world_model_losses(
        model, random_windows(6, M + N), forecast_horizon=N, generator=torch.Generator().manual_seed(0)
    )
    terms.total(LossWeightsSpec()).backward()
    assert model.state_base.linear.weight.grad is not None
    model.predict(torch.randn(3, M, S), torch.randn(3, M, A))
    model.reset(torch.tensor([1]))
    assert torch.all(model.state_base.memory[1][1] == 0) and torch.all(model.state_base.memory[1][0] > 0)
