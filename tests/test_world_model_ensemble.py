"""SystemDynamicsEnsemble: shapes, heads, bounds, memory handling, checkpoints and the architecture registry."""

from __future__ import annotations

import subprocess
import sys
import types
from functools import partial

import pytest
import torch
from torch.nn import functional as F

from rwmspec import hookimpl
from rwmspec.manager import build_registry, get_registry, resolve
from rwmspec.spec.model import LossWeightsSpec, UpstreamQuirksSpec
from rwmspec.types import ArchitectureDef
from rwmspec_plugins.world_models.bases import MlpBase, RecurrentBase, WorldModelBase, gru_cell_inference
from rwmspec_plugins.world_models.ensemble import ModelMemory, SystemDynamicsEnsemble
from rwmspec_plugins.world_models.ensemble_linear import EnsembleMLP
from rwmspec_runtime.world_model.protocol import LossSettings, WorldModel
from rwmspec_runtime.world_model.system import build_world_model

from world_model_helpers import random_windows as shared_random_windows
from world_model_helpers import tiny_world_model, tiny_world_model_plan

S, A, C, R, E, M, N = 6, 2, 2, 1, 1, 4, 3
ARCHS = ("gru", "lstm", "mlp")


# the shared tiny world model, with one extension channel
tiny_plan = partial(tiny_world_model_plan, extension_dim=E)
make_model = partial(tiny_world_model, extension_dim=E)
random_windows = partial(shared_random_windows, extension_dim=E)


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
    assert isinstance(model, WorldModel)
    memory = model.initial_memory(B)
    pred, after = model.step(torch.randn(B, S), torch.randn(B, A), memory, torch.tensor([0, 1, 2, 0, 1]))
    assert isinstance(after, ModelMemory) and after.state is not memory.state
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
    # no pairs to consume (M = 1 seeds): the memory it was given, or the empty one
    assert model.warm_up(state[:, :0], action[:, :0], warm) is warm
    empty = model.warm_up(state[:, :0], action[:, :0])
    assert all(torch.all(leaf == 0) for leaf in torch.utils._pytree.tree_leaves(empty))


def test_absent_heads_give_empty_tensors_and_no_auxiliary_base():
    model = make_model(contact_dim=0, termination_dim=0, extension_dim=0)
    assert model.auxiliary_base is None and not model.has_auxiliary_heads
    out = model(torch.randn(4, M, S), torch.randn(4, M, A))
    assert out.contact_logits.shape == (3, 4, 0) and out.extension.shape == (3, 4, 0)


@pytest.mark.parametrize("arch", ARCHS)
def test_step_after_warm_up_picks_member_or_ensemble_mean(arch):
    model = make_model(architecture=arch)
    state, action = torch.randn(4, M, S), torch.randn(4, M, A)
    members = model(state, action).mean
    ids = torch.tensor([2, 0, 1, 2])
    memory = model.warm_up(state[:, :-1], action[:, :-1])
    picked, _ = model.step(state[:, -1], action[:, -1], memory, ids)
    mean, _ = model.step(state[:, -1], action[:, -1], memory)
    torch.testing.assert_close(picked.next_state, members[ids, torch.arange(4)])
    torch.testing.assert_close(mean.next_state, members.mean(dim=0))


def test_epistemic_reductions():
    means = torch.randn(3, 5, S)
    default = make_model()
    quirk = SystemDynamicsEnsemble(tiny_plan(), quirks=UpstreamQuirksSpec(epistemic_summed_std=True))
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
    memory_a, memory_b = a.memory, b.memory
    for _ in range(3):
        pa, memory_a = model.step(state[:, -1], action[:, -1], memory_a, ids)
        pb, memory_b = other.step(state[:, -1], action[:, -1], memory_b, ids)
        assert torch.equal(pa.next_state, pb.next_state) and torch.equal(pa.epistemic, pb.epistemic)


def _rows(memory: ModelMemory, model: SystemDynamicsEnsemble, rows) -> dict[str, torch.Tensor]:
    """Rows ``rows`` of each base's memory, batch first, stacked over the base's memory parts."""
    picked = model.select_memory(memory, torch.as_tensor(rows))
    out = {}
    for name, base, parts in (
        ("state", model.state_base, picked.state),
        ("aux", model.auxiliary_base, picked.auxiliary),
    ):
        parts = parts if isinstance(parts, tuple) else (parts,)
        out[name] = torch.stack([p.movedim(base.memory_batch_dim, 0).float() for p in parts])
    return out


@pytest.mark.parametrize("arch", ARCHS)
def test_memory_rows_are_selected_written_and_blended_per_row(arch):
    model = make_model(architecture=arch)
    B = 5
    memory = model.warm_up(torch.randn(B, M, S), torch.randn(B, M, A))
    _, memory = model.step(torch.randn(B, S), torch.randn(B, A), memory)
    keep, reset = [0, 2, 4], [1, 3]
    before = _rows(memory, model, keep)
    # a reset: the empty memory written into rows ``reset``
    cleared = model.write_memory_rows(memory, torch.tensor(reset), model.initial_memory(len(reset)))
    for name in ("state", "aux"):
        assert torch.all(_rows(cleared, model, reset)[name] == 0), name
        assert torch.equal(_rows(cleared, model, keep)[name], before[name]), name
    # the same reset as a row-wise blend with fixed shapes (what a compiled imagination step does)
    mask = torch.zeros(B, dtype=torch.bool)
    mask[reset] = True
    blended = model.where_memory(mask, model.initial_memory(B), memory)
    for got, expected in zip(
        torch.utils._pytree.tree_leaves(blended), torch.utils._pytree.tree_leaves(cleared), strict=True
    ):
        assert torch.equal(got, expected)
    # a step of a subset of rows, written back, advances only those rows
    index = torch.tensor(reset)
    _, rows = model.step(torch.randn(2, S), torch.randn(2, A), model.select_memory(cleared, index))
    advanced = model.write_memory_rows(cleared, index, rows)
    assert torch.equal(_rows(advanced, model, keep)["state"], before["state"])
    assert not torch.all(_rows(advanced, model, reset)["state"] == 0)
    # rows may repeat (seed pools, bootstrap resamples)
    twice = _rows(memory, model, [2, 2])["state"]
    assert torch.equal(twice[:, 0], before["state"][:, 1]) and torch.equal(twice[:, 1], before["state"][:, 1])


def test_cleared_memory_equals_a_fresh_start():
    model = make_model()
    state, action = torch.randn(3, M, S), torch.randn(3, M, A)
    fresh = model(state, action).mean.mean(dim=0)
    used = model.warm_up(torch.randn(3, M, S), torch.randn(3, M, A))
    cleared = model.where_memory(torch.ones(3, dtype=torch.bool), model.initial_memory(3), used)
    memory = model.warm_up(state[:, :-1], action[:, :-1], cleared)
    torch.testing.assert_close(model.step(state[:, -1], action[:, -1], memory)[0].next_state, fresh)


@pytest.mark.parametrize("arch", ARCHS)
def test_step_traces_whole_for_compiled_imagination(arch):
    """Imagination compiles ``step`` with fullgraph=True: a graph break or a host read fails here."""
    model = make_model(architecture=arch).eval()
    memory = model.warm_up(torch.randn(4, M, S), torch.randn(4, M, A))
    state, action, ids = torch.randn(4, S), torch.randn(4, A), torch.tensor([0, 2, 1, 0])

    def advance(state, action, memory, ids):
        prediction, after = model.step(state, action, memory, ids)
        return prediction, model.where_memory(ids > 0, after, memory)

    with torch.no_grad(), torch._dynamo.config.patch(allow_rnn=True):
        got, got_memory = torch.compile(advance, fullgraph=True, backend="eager")(state, action, memory, ids)
        expected, expected_memory = advance(state, action, memory, ids)
    torch.testing.assert_close(got.next_state, expected.next_state)
    torch.testing.assert_close(got_memory, expected_memory)


@pytest.mark.parametrize("arch", ("gru", "lstm"))
def test_member_loss_independent_of_other_members_unless_quirk(arch):
    windows = random_windows(12, M + N)

    def member_losses(quirk: bool, perturb: bool) -> tuple[torch.Tensor, torch.Tensor]:
        model = make_model(seed=3, architecture=arch)
        if perturb:
            with torch.no_grad():
                model.state_mean_head.layers[0].weight[0] += 3.0
        settings = LossSettings(forecast_horizon=N, shared_hidden_state_across_members=quirk)
        terms = model.losses(windows, settings, torch.Generator().manual_seed(7))
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
    quirks = UpstreamQuirksSpec(epistemic_summed_std=True)
    models = {name: resolve(archs[name].factory)(tiny_plan(architecture=name), quirks=quirks) for name in ARCHS}
    assert all(isinstance(m, SystemDynamicsEnsemble) and isinstance(m, WorldModel) for m in models.values())
    assert all(m.epistemic_summed_std for m in models.values())
    assert isinstance(models["gru"].state_base, RecurrentBase) and models["gru"].state_base.cell == "gru"
    assert models["lstm"].state_base.cell == "lstm"
    assert isinstance(models["mlp"].state_base, MlpBase)


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
        build_world_model(tiny_plan(architecture="transformer"))
    # the ensemble itself needs a base factory for a name it has no base of
    with pytest.raises(ValueError, match=r"'transformer' has no built-in base.*base_factory"):
        make_model(architecture="transformer")


def test_builtin_architectures_reject_options():
    with pytest.raises(ValueError, match=r"takes no options"):
        build_world_model(tiny_plan(options={"dropout": 0.1}))


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


def build_mean_pool_ensemble(plan, *, quirks):
    """A plugin's architecture factory: the built-in ensemble on the plugin's own base."""
    return SystemDynamicsEnsemble(plan, base_factory=build_mean_pool, quirks=quirks)


def build_not_a_model(plan, *, quirks):
    return torch.nn.Linear(plan.state_dim, plan.state_dim)


def _architecture_registry(name: str, factory: str):
    plugin = types.ModuleType(f"{name}_plugin")

    @hookimpl
    def rwmspec_world_model_architectures():
        yield ArchitectureDef(name=name, description="test architecture", factory=f"{__name__}:{factory}")

    plugin.rwmspec_world_model_architectures = rwmspec_world_model_architectures
    return build_registry([(name, plugin)], load_entry_points=False)


def test_a_plugin_adds_an_architecture():
    registry = _architecture_registry("mean_pool", "build_mean_pool_ensemble")
    torch.manual_seed(0)
    model = build_world_model(tiny_plan(architecture="mean_pool"), registry=registry)
    assert isinstance(model.state_base, MeanPoolBase)
    terms = model.losses(random_windows(6, M + N), LossSettings(forecast_horizon=N), torch.Generator().manual_seed(0))
    terms.total(LossWeightsSpec()).backward()
    assert model.state_base.linear.weight.grad is not None
    memory = model.warm_up(torch.randn(3, M, S), torch.randn(3, M, A))
    memory = model.write_memory_rows(memory, torch.tensor([1]), model.initial_memory(1))
    assert torch.all(memory.state[1][1] == 0) and torch.all(memory.state[1][0] > 0)


def test_a_factory_that_builds_no_world_model_is_named():
    registry = _architecture_registry("linear", "build_not_a_model")
    with pytest.raises(
        TypeError, match=r"architecture 'linear' of plugin linear.*build_not_a_model.*Linear.*WorldModel"
    ):
        build_world_model(tiny_plan(architecture="linear"), registry=registry)
