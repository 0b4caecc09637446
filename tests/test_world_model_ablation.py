"""The world-model ablation (``rwmspec_runtime.world_model.ablation``, the library of scripts/world_model_ablation.py)
with --quick: runs end to end, writes every variant, seed and horizon, and repeats its numbers exactly for the same
seeds on the CPU."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from rwmspec_runtime.world_model import ablation

from helpers import ROOT, TINY

torch.set_num_threads(1)
PRETRAIN = ROOT / "specs" / "anymal_d_pretrain.toml"


def run(out: Path, *extra: str, source: tuple[str, ...] = ("--random-policy",)) -> dict:
    argv = ["--quick", *source, "--overlay", str(TINY), "--device", "cpu", "--json-out", str(out), *extra]
    assert ablation.main(argv, default_spec=PRETRAIN) == 0
    return json.loads(out.read_text())


def test_quick_ablation_writes_all_variants_seeds_and_horizons(tmp_path, capsys):
    record = run(tmp_path / "a.json")
    text = capsys.readouterr().out
    horizons = ["1", "4", "8"]
    assert set(record["results"]) == {"gru_ar", "gru_tf", "mlp_ar"}
    expected = {"gru_ar": ("gru", 2), "gru_tf": ("gru", 1), "mlp_ar": ("mlp", 2)}  # tiny overlay: N = 2
    for variant, by_seed in record["results"].items():
        assert set(by_seed) == {"0", "1", "2"}
        for r in by_seed.values():
            assert (r["architecture"], r["forecast_horizon"]) == expected[variant]
            assert list(r["error_at"]) == horizons and all(math.isfinite(v) for v in r["error_at"].values())
            assert r["losses"][-1]["update"] == record["sizes"]["updates"]
        summary = record["summary"]["by_variant"][variant]
        for h in horizons:
            values = [by_seed[s]["error_at"][h] for s in ("0", "1", "2")]
            assert summary[h]["values"] == pytest.approx(values)
            assert summary[h]["mean"] == pytest.approx(sum(values) / 3)
    assert set(record["summary"]["ranking"]) == set(horizons)
    assert isinstance(record["summary"]["paper_ordering_holds"], bool)
    assert record["data"]["held_out"]["trajectories"] == 3
    assert "e@8 mean +- std" in text and "gru_tf" in text and "env steps/s" in text
    # same seeds, same numbers (the data is collected again from scratch)
    again = run(tmp_path / "b.json", "--variants", "gru_ar", "--seeds", "1")
    assert again["results"]["gru_ar"]["1"]["error_at"] == record["results"]["gru_ar"]["1"]["error_at"]


def test_a_run_policy_collects_the_data(tmp_path):
    """--policy-run: an init run's actor (sampled actions) drives the pretrain spec's env, reproducibly."""
    from rwmspec_runtime.training import TrainRequest, train

    init = train(
        TrainRequest(
            spec=ROOT / "specs" / "anymal_d_init.toml",
            overlays=(TINY,),
            runs_dir=tmp_path,
            max_iterations=1,
            console="compact",
        ),
        log=lambda _: None,
    )
    extra = ("--variants", "gru_tf", "--seeds", "0", "--trajectories", "2", "--horizons", "1", "2")
    first = run(tmp_path / "a.json", *extra, source=("--policy-run", str(init.path)))
    again = run(tmp_path / "b.json", *extra, source=("--policy-run", str(init.path)))
    assert first["policy"].endswith("model_1.pt (sampled)")
    assert list(first["results"]) == ["gru_tf"] and first["data"]["held_out"]["trajectories"] == 2
    assert again["results"]["gru_tf"]["0"]["error_at"] == first["results"]["gru_tf"]["0"]["error_at"]


def test_horizons_beyond_the_trajectory_are_refused(tmp_path):
    with pytest.raises(SystemExit, match="raise --length or lower the horizons"):
        ablation.main(["--quick", "--random-policy", "--overlay", str(TINY), "--horizons", "50"], default_spec=PRETRAIN)
