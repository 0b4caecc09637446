"""The four stages chained as users run them: init -> pretrain -> finetune with --with-deps, then visualize; a
missing upstream run without --with-deps, and a world model trained for another plan, are refused clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import TINY, rwmspec


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """`rwmspec run` of the finetune spec with --with-deps in an empty runs directory."""
    runs = tmp_path_factory.mktemp("runs")
    done = rwmspec("run", "specs/anymal_d_finetune.toml", "--overlay", TINY, "--runs-dir", runs, "--with-deps")
    assert done.returncode == 0, done.stderr
    return runs, done


def _run(runs: Path, stage: str) -> Path:
    (run,) = (runs / "anymal_d_flat").glob(f"*_{stage}")
    return run


def test_with_deps_trains_init_and_pretrain_first_then_finetunes(chain):
    runs, done = chain
    assert done.stdout.index("no run of") < done.stdout.index("_init")
    for stage in ("init", "pretrain", "finetune"):
        run = _run(runs, stage)
        assert json.loads((run / "run.json").read_text())["status"] == "finished", stage
    record = json.loads((_run(runs, "finetune") / "run.json").read_text())
    assert record["references"]["runner.policy_from"] == str(_run(runs, "init") / "model_2.pt")
    assert record["references"]["runner.world_model_from"] == str(_run(runs, "pretrain") / "model_2.pt")


def test_finetune_learns_in_imagination_after_the_warm_up(chain):
    runs, _ = chain
    rows = [json.loads(line) for line in (_run(runs, "finetune") / "metrics.jsonl").read_text().splitlines()]
    warmup, learning = rows[0], rows[-1]  # tiny: 1 warm-up iteration, then 1 in imagination
    assert "System Dynamics/state_loss" in warmup and "Loss/surrogate" not in warmup
    assert "Loss/surrogate" in learning
    for key in (
        "Model Based/epistemic_uncertainty",
        "Model Based/per_step_reward_imagination/track_lin_vel_xy_exp",
        "Model Based/per_step_reward_sum_real",
        "Model Based/per_step_reward_sum_imagination",
    ):
        assert key in learning, key


def test_visualize_runs_on_the_finetuned_policy_and_model(chain):
    runs, _ = chain
    done = rwmspec(
        "run", "specs/anymal_d_visualize.toml", "--overlay", TINY, "--runs-dir", runs, "--set", "visualize.video=false"
    )
    assert done.returncode == 0, done.stderr
    assert (_run(runs, "visualize") / "visualize" / "joint_pos.png").is_file()


def test_a_missing_upstream_run_names_the_command_that_produces_it(tmp_path):
    done = rwmspec("run", "specs/anymal_d_finetune.toml", "--overlay", TINY, "--runs-dir", tmp_path)
    assert done.returncode == 1
    assert "error[RWM503]" in done.stderr and "Traceback" not in done.stderr
    assert "rwmspec run" in done.stderr and "anymal_d_init.toml" in done.stderr
    assert not (tmp_path / "anymal_d_flat").exists() or not list((tmp_path / "anymal_d_flat").glob("*_finetune"))


def test_finetune_refuses_a_world_model_of_another_plan(chain):
    runs, _ = chain
    done = rwmspec(
        "run",
        "specs/anymal_d_finetune.toml",
        "--overlay",
        TINY,
        "--runs-dir",
        runs,
        "--set",
        "world_model.base_hidden=[8, 8]",
    )
    assert done.returncode == 1
    assert "error[RWM504]" in done.stderr and "fingerprint" in done.stderr and "Traceback" not in done.stderr
