"""`rwmspec eval-model RUN`: report, table and plots on a tiny pretrain run; clear errors (exit 1) for an init run
and for a policy that falls everywhere; the member rollout matches the evaluation's ensemble-mean rollout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rwmspec import cli
from rwmspec.plan import WorldModelPlan
from rwmspec.spec.model import LossWeightsSpec, WorldModelTrainSpec
from rwmspec_runtime.training import TrainRequest, train
from rwmspec_runtime.world_model.eval_model import (
    REPORT_FILE,
    member_rollout,
    report_horizons,
    spread_trajectories,
)
from rwmspec_runtime.world_model.evaluation import autoregressive_rollout
from rwmspec_runtime.world_model.replay_buffer import ReplayBuffer
from rwmspec_runtime.world_model.system import build_world_model

from helpers import ROOT, TINY

torch.set_num_threads(1)


def _train(spec: str, runs_dir: Path, iterations: int):
    return train(
        TrainRequest(
            spec=ROOT / "specs" / spec,
            overlays=(TINY,),
            runs_dir=runs_dir,
            max_iterations=iterations,
            console="compact",
        ),
        log=lambda _: None,
    )


@pytest.fixture(scope="module")
def pretrain_run(tmp_path_factory):
    return _train("anymal_d_pretrain.toml", tmp_path_factory.mktemp("runs"), 2)


def test_eval_model_writes_report_table_and_plots(pretrain_run, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(
        ["eval-model", str(pretrain_run.path), "--num-trajectories", "3", "--length", "14", "--out", str(out)]
    )
    text = capsys.readouterr().out
    assert code == 0, text
    report = json.loads((out / REPORT_FILE).read_text())
    M = report["history_horizon"]
    assert report["trajectories"] == 3 and report["length"] == 14 and report["checkpoint"] == "model_2.pt"
    assert len(report["error_per_step"]) == 14 - M
    assert report["horizons"] == report_horizons(14 - M) == [1, 14 - M]
    assert report["error_at"]["1"] == pytest.approx(report["error_per_step"][0])
    assert report["error"] == pytest.approx(sum(report["error_per_step"]) / (14 - M), rel=1e-5)
    assert set(report["noised"]) == {"0.1", "0.2", "0.4", "0.8"}
    assert set(report["blocks"]) == {
        "base_lin_vel",
        "base_ang_vel",
        "projected_gravity",
        "joint_pos",
        "joint_vel",
        "joint_torque",
    }
    assert set(report["contact"]) >= {"precision", "recall"} and report["termination"] is not None
    assert report["epistemic_mean"] == 0.0  # one member
    plots = sorted(Path(p).name for p in report["plots"])
    assert plots == sorted(["error_vs_horizon.png", *(f"state_{b}.png" for b in report["blocks"])])
    for p in report["plots"]:
        assert Path(p).parent == out / "eval_model" and Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (pretrain_run.path / REPORT_FILE).exists()
    # the table: one row per horizon, the mean, and the per-block table
    assert "relative autoregressive error" in text and "per state block:" in text
    rows = [line.split() for line in text.splitlines()]
    assert ["1", f"{report['error_at']['1']:.4f}"] == rows[next(i for i, r in enumerate(rows) if r[:1] == ["1"])][:2]
    assert any(r[:2] == ["mean", f"{report['error']:.4f}"] for r in rows)
    assert any(r[:1] == ["joint_vel"] for r in rows)

    # --json prints the same report, default output into the run directory
    assert cli.main(["eval-model", str(pretrain_run.path), "--num-trajectories", "2", "--length", "8", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["length"] == 8 and (pretrain_run.path / REPORT_FILE).is_file()
    assert (pretrain_run.path / "eval_model" / "error_vs_horizon.png").is_file()


def test_init_run_has_no_world_model(tmp_path, capsys):
    run = _train("anymal_d_init.toml", tmp_path, 1)
    assert cli.main(["eval-model", str(run.path)]) == 1
    err = capsys.readouterr().err
    assert "RWM504" in err and "has no world model" in err and "Traceback" not in err


def test_a_policy_that_always_falls_gives_a_clear_error(pretrain_run, monkeypatch, capsys):
    """Wrap the real env so that every env's episode ends by a failure every 5 steps."""
    import rwmspec_runtime.training as training

    real = training.make_env

    class Falling:
        def __init__(self, env):
            self.env, self.count = env, 0
            self.num_envs, self.device = env.num_envs, env.device

        def __getattr__(self, name):
            return getattr(self.env, name)

        def step(self, actions):
            obs, rewards, dones, extras = self.env.step(actions)
            self.count += 1
            if self.count % 5 == 0:
                dones = torch.ones_like(dones)
                extras = dict(
                    extras,
                    time_outs=torch.zeros_like(dones),
                    terminal_observations=obs.select(*extras["terminal_observations"].keys()),
                )
            return obs, rewards, dones, extras

    monkeypatch.setattr(training, "make_env", lambda *a, **k: Falling(real(*a, **k)))
    assert cli.main(["eval-model", str(pretrain_run.path), "--num-trajectories", "2", "--length", "10"]) == 1
    err = capsys.readouterr().err
    assert "RWM509" in err and "fell in every one of 2 envs" in err and "--length" in err


def test_length_must_leave_steps_to_predict(pretrain_run, capsys):
    assert cli.main(["eval-model", str(pretrain_run.path), "--length", "3"]) == 1
    assert "RWM509" in capsys.readouterr().err


def test_member_rollout_matches_the_evaluation_rollout():
    plan = WorldModelPlan(
        architecture="gru",
        base_hidden=(8, 8),
        state_mean_hidden=(8,),
        state_logstd_hidden=(8,),
        auxiliary_hidden=(8,),
        ensemble_size=3,
        history_horizon=3,
        forecast_horizon=2,
        separate_auxiliary_base=True,
        residual=True,
        logstd_bounds_init=(-5.0, -4.0),
        state_dim=4,
        action_dim=2,
        contact_dim=1,
        termination_dim=1,
        extension_dim=0,
        loss_weights=LossWeightsSpec(),
        train=WorldModelTrainSpec(),
    )
    torch.manual_seed(0)
    model = build_world_model(plan)
    state, action = torch.randn(2, 9, 4), torch.randn(2, 9, 2)
    predicted, members = member_rollout(model, state, action)
    assert torch.allclose(predicted, autoregressive_rollout(model, state, action).state, atol=1e-6)
    assert members.shape == (3, 2, 9, 4) and members[:, :, :3].isnan().all()
    assert torch.allclose(members[:, :, 3:].mean(dim=0), predicted[:, 3:], atol=1e-6)
    assert (members[:, :, 3:].std(dim=0) > 0).all()  # members disagree


def test_spread_trajectories_prefers_distinct_envs():
    buffer = ReplayBuffer(4, 20, 2, 1)
    for _ in range(20):
        buffer.add(torch.randn(4, 2), torch.randn(4, 1))
    g = torch.Generator().manual_seed(0)
    assert sorted(spread_trajectories(buffer, 5, 4, g).env_ids.tolist()) == [0, 1, 2, 3]
    assert len(spread_trajectories(buffer, 5, 6, g)) == 6
