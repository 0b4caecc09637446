"""Console output per iteration: the rsl_rl-style block, the compact line, and ``auto``."""

from __future__ import annotations

import io

import pytest

from rwmspec_runtime.progress import Progress

METRICS = {
    "Train/mean_reward": 12.5,
    "Train/mean_episode_length": 345.0,
    "Train/mean_step_reward": 0.0125,
    "Loss/value": 0.25,
    "Loss/surrogate": -0.01,
    "Loss/entropy": 17.0,
    "Loss/learning_rate": 1e-3,
    "Policy/mean_std": 0.8,
    "Perf/total_fps": 12345.0,
    "Perf/collection_time": 1.5,
    "Perf/learning_time": 0.5,
    "Perf/iteration_time": 2.0,
    "Episode_Reward/track_lin_vel_xy_exp": 0.61,
    "Episode_Termination/base_contact": 3.0,
}


def _progress(mode: str, out: io.StringIO) -> Progress:
    return Progress(mode, total_iterations=10, start_iteration=4, steps_per_iteration=1000, run_name="x_init", file=out)


def test_full_block_has_the_rsl_rl_fields():
    out = io.StringIO()
    _progress("full", out).update(5, METRICS)
    text = out.getvalue()
    assert "Learning iteration 5/10" in text
    for label in (
        "Steps per second: 12,345",
        "Collection time: 1.500s",
        "Learning time: 0.500s",
        "Mean value loss: 0.2500",
        "Mean reward: 12.50",
        "Mean episode length: 345.0",
        "Mean action std: 0.800",
        "Episode_Reward/track_lin_vel_xy_exp: 0.6100",
        "Time elapsed:",
        "ETA:",
        "Total steps: 1,000",
    ):
        assert label in text, label


def test_compact_line_and_auto_off_a_terminal():
    out = io.StringIO()
    progress = _progress("auto", out)
    assert progress.mode == "compact"  # a StringIO is not a terminal
    progress.update(5, METRICS)
    (line,) = out.getvalue().splitlines()
    assert line.startswith("it 5/10 | 12,345 steps/s | reward 12.50 | ep len 345")
    assert "std 0.80" in line and "ETA" in line


def test_eta_counts_only_this_process_iterations():
    progress = _progress("compact", io.StringIO())
    progress.started -= 10.0  # 10 s for iteration 5 (the first of this process, resumed at 4)
    assert progress.eta(5) == pytest.approx(50.0, rel=0.01)  # 5 iterations left at 10 s each


def test_unknown_mode():
    with pytest.raises(ValueError, match="auto, full or compact"):
        Progress("fancy", total_iterations=1, start_iteration=0, steps_per_iteration=1)
