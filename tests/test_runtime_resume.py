"""Resume by rerunning (real path: specs/anymal_d_init.toml + the tiny overlay on the embedded backend).

A run trained for 2 iterations and continued with a total of 4 runs 2 more iterations, loads its checkpoint
exactly once, and keeps one metrics record per iteration; a changed plan is refused.
"""

from __future__ import annotations

import json

import pytest
import torch

from rwmspec.diagnostics import SpecError
from rwmspec_runtime import checkpoints
from rwmspec_runtime.rundir import RunDir
from rwmspec_runtime.training import TrainRequest, train

from helpers import SPECS, TINY

SPEC = SPECS / "anymal_d_init.toml"
torch.set_num_threads(1)  # tiny networks: a second intra-op thread only contends with the physics threads


def _quiet(_: str) -> None:
    return None


@pytest.fixture
def count_loads(monkeypatch):
    """Counts torch.load calls on checkpoint files."""
    loads: list[str] = []
    real_load = torch.load

    def counting(f, *args, **kwargs):
        loads.append(str(f))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counting)
    return loads


def _iterations(run: RunDir) -> list[int]:
    return [json.loads(line)["iteration"] for line in run.file("metrics.jsonl").read_text().splitlines()]


def test_resume_continues_to_the_total_and_loads_once(tmp_path, count_loads, capsys):
    request = TrainRequest(spec=SPEC, overlays=(TINY,), runs_dir=tmp_path, console="compact")
    first = train(request, log=_quiet)
    assert first.completed_iterations == 2 and _iterations(first) == [1, 2]
    assert count_loads == []
    assert first.run_record()["status"] == "finished"
    capsys.readouterr()

    resumed = train(
        TrainRequest(
            spec=SPEC, overlays=(TINY,), runs_dir=tmp_path, resume="latest", max_iterations=4, console="compact"
        ),
        log=print,
    )
    out = capsys.readouterr().out
    assert resumed.path == first.path
    assert count_loads == [str(first.file("model_2.pt"))], "the checkpoint must be loaded exactly once"
    assert "it 3/4" in out and "it 1/4" not in out
    assert f"--resume {first.path}" in out, "the exact resume command is printed at start"
    assert _iterations(resumed) == [1, 2, 3, 4]
    assert checkpoints.load_checkpoint(resumed.file("model_4.pt"))["iter"] == 4
    assert resumed.latest_checkpoint_name == "model_4.pt"
    assert json.loads(resumed.file("plan.json").read_text())["runner"]["max_iterations"] == 4

    # the plan changed: refused, naming what differs
    with pytest.raises(SpecError) as err:
        train(
            TrainRequest(spec=SPEC, overlays=(TINY,), runs_dir=tmp_path, resume="latest", sets=("ppo.gamma=0.9",)),
            log=_quiet,
        )
    (diag,) = err.value.diagnostics
    assert diag.code == "RWM505" and "ppo.gamma: 0.99 -> 0.9" in diag.message


def test_run_dir_starts_then_continues(tmp_path, count_loads):
    run_dir = tmp_path / "mine"
    request = TrainRequest(spec=SPEC, overlays=(TINY,), run_dir=run_dir, max_iterations=1, console="compact")
    train(request, log=_quiet)
    assert RunDir(run_dir).completed_iterations == 1 and count_loads == []
    train(TrainRequest(spec=SPEC, overlays=(TINY,), run_dir=run_dir, max_iterations=2, console="compact"), log=_quiet)
    assert RunDir(run_dir).completed_iterations == 2
    assert count_loads == [str(run_dir / "model_1.pt")]
    assert _iterations(RunDir(run_dir)) == [1, 2]


def test_resume_without_a_run_says_how_to_start_one(tmp_path):
    with pytest.raises(SpecError) as err:
        train(TrainRequest(spec=SPEC, overlays=(TINY,), runs_dir=tmp_path, resume="latest"), log=_quiet)
    (diag,) = err.value.diagnostics
    assert diag.code == "RWM505" and "no run of" in diag.message
    assert f"rwmspec run {SPEC} --overlay {TINY}" in diag.hint


def test_resume_and_run_dir_together_is_an_error(tmp_path):
    with pytest.raises(SpecError, match="give only one"):
        train(TrainRequest(spec=SPEC, overlays=(TINY,), resume="latest", run_dir=tmp_path), log=_quiet)


def test_same_seed_same_first_iteration_on_the_real_backend(tmp_path):
    """Seeded runs of the embedded backend on the CPU agree to the last bit; another seed differs."""

    def first(seed: int, name: str) -> dict:
        run = train(
            TrainRequest(
                spec=SPEC,
                overlays=(TINY,),
                run_dir=tmp_path / name,
                max_iterations=1,
                sets=(f"experiment.seed={seed}",),
                console="compact",
            ),
            log=_quiet,
        )
        return json.loads(run.file("metrics.jsonl").read_text().splitlines()[0])

    a, b, c = first(5, "a"), first(5, "b"), first(6, "c")
    for key in ("Train/mean_step_reward", "Loss/value", "Loss/surrogate", "Policy/mean_std"):
        assert a[key] == b[key], key
    assert a["Train/mean_step_reward"] != c["Train/mean_step_reward"]
