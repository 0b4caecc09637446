"""Run directories of a spec: naming, ordering, resume checks, and run references between stages."""

from __future__ import annotations

import datetime
from pathlib import Path

import attrs
import pytest
import torch

from rwmspec.diagnostics import SpecError
from rwmspec.plan import RunRefPlan, plan_to_dict
from rwmspec_runtime import checkpoints
from rwmspec_runtime.runs import (
    check_resumable,
    latest_run,
    locate_run,
    new_run_dir,
    plan_differences,
    resolve_reference,
    runs_of,
    runs_root,
)
from rwmspec_runtime.training import TrainRequest, _resolve_references

from helpers import SPECS, TINY, compile_tiny

SPEC = SPECS / "anymal_d_init.toml"
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def plan():
    return compile_tiny(SPEC.name)


def _fake_run(root: Path, plan, when: datetime.datetime, with_checkpoint: bool = True):
    run = new_run_dir(root, plan, now=when)
    run.write_plan(plan)
    if with_checkpoint:
        payload = {
            "actor_state_dict": {},
            "critic_state_dict": {},
            "optimizer_state_dict": {},
            "iter": 1,
            "infos": None,
        }
        checkpoints.save_checkpoint(payload, run.path, 1)
    return run


def test_runs_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("RWMSPEC_RUNS_DIR", raising=False)
    assert runs_root() == Path("runs")
    monkeypatch.setenv("RWMSPEC_RUNS_DIR", str(tmp_path))
    assert runs_root() == tmp_path
    assert runs_root(tmp_path / "cli") == tmp_path / "cli"


def test_run_names_order_and_latest(tmp_path, plan):
    t = datetime.datetime(2025, 3, 1, 12, 0, 0)
    old = _fake_run(tmp_path, plan, t)
    same_second = _fake_run(tmp_path, plan, t)
    newest_no_ckpt = _fake_run(tmp_path, plan, t + datetime.timedelta(hours=1), with_checkpoint=False)
    assert old.name == "2025-03-01_12-00-00_init" and same_second.name == "2025-03-01_12-00-00-2_init"
    (tmp_path / "anymal_d_flat" / "2025-03-02_00-00-00_pretrain").mkdir()  # another stage: not a run of this spec
    assert [r.name for r in runs_of(tmp_path, "anymal_d_flat", "init")] == [
        newest_no_ckpt.name,
        same_second.name,
        old.name,
    ]
    assert latest_run(tmp_path, "anymal_d_flat", "init").name == same_second.name
    assert locate_run(tmp_path, "anymal_d_flat", old.name).path == old.path
    with pytest.raises(SpecError) as err:
        locate_run(tmp_path, "anymal_d_flat", "2020-01-01_00-00-00_init")
    assert err.value.diagnostics[0].code == "RWM501" and old.name in err.value.diagnostics[0].hint


def test_plan_differences_ignore_what_may_change_on_resume(plan, tmp_path):
    longer = attrs.evolve(
        plan,
        runner=attrs.evolve(plan.runner, max_iterations=99, save_interval=7),
        sim=attrs.evolve(plan.sim, device="cuda:0"),
    )
    assert plan_differences(plan_to_dict(plan), plan_to_dict(longer)) == []
    other = attrs.evolve(plan, policy=attrs.evolve(plan.policy, actor_hidden_dims=[32]))
    assert plan_differences(plan_to_dict(plan), plan_to_dict(other)) == ["policy.actor_hidden_dims: [16] -> [32]"]
    run = _fake_run(tmp_path, plan, datetime.datetime(2025, 1, 1))
    check_resumable(run, longer)
    with pytest.raises(SpecError, match="actor_hidden_dims"):
        check_resumable(run, other)


def test_reference_to_a_missing_run_names_the_command(tmp_path, plan):
    ref = RunRefPlan(spec=str(SPEC))
    with pytest.raises(SpecError) as err:
        resolve_reference("runner.policy_from", ref, plan, root=tmp_path, overlays=[TINY])
    (diag,) = err.value.diagnostics
    assert diag.code == "RWM503" and "runner.policy_from" in diag.message
    assert f"rwmspec run {SPEC} --overlay {TINY}" in diag.hint and "--with-deps" in diag.hint


def test_reference_resolves_latest_run_and_checkpoint(tmp_path, plan):
    _fake_run(tmp_path, plan, datetime.datetime(2025, 1, 1))
    newer = _fake_run(tmp_path, plan, datetime.datetime(2025, 1, 2))
    path = resolve_reference("runner.policy_from", RunRefPlan(spec=str(SPEC)), plan, root=tmp_path)
    assert path == newer.file("model_1.pt")
    named = resolve_reference(
        "runner.policy_from", RunRefPlan(spec=str(SPEC), run=newer.name, checkpoint="model_1.pt"), plan, root=tmp_path
    )
    assert named == path
    with pytest.raises(SpecError, match="RWM502|does not exist"):
        resolve_reference(
            "runner.policy_from", RunRefPlan(spec=str(SPEC), checkpoint="model_9.pt"), plan, root=tmp_path
        )
    with pytest.raises(SpecError) as err:
        resolve_reference("runner.policy_from", RunRefPlan(spec=str(SPEC), run="nope"), plan, root=tmp_path)
    assert err.value.diagnostics[0].code == "RWM503" and newer.name in err.value.diagnostics[0].message


def test_with_deps_trains_the_referenced_spec_first(tmp_path, plan):
    """A plan whose policy comes from the init spec: --with-deps trains init once, then reuses its run."""
    dependent = attrs.evolve(plan, policy_from=RunRefPlan(spec=str(SPEC)))
    request = TrainRequest(spec=SPEC, overlays=(TINY,), runs_dir=tmp_path, with_deps=True, console="compact")
    lines: list[str] = []
    found = _resolve_references(request, dependent, tmp_path, lines.append)
    (run,) = runs_of(tmp_path, "anymal_d_flat", "init")
    assert found == {"runner.policy_from": run.file("model_2.pt")}
    assert any("training it first (--with-deps)" in line for line in lines)
    assert _resolve_references(request, dependent, tmp_path, lines.append) == found
    assert len(runs_of(tmp_path, "anymal_d_flat", "init")) == 1
    with pytest.raises(SpecError, match="RWM503|no run"):
        _resolve_references(attrs.evolve(request, with_deps=False), dependent, tmp_path / "empty", lines.append)
