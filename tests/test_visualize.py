"""The visualize stage: twin pose integration, and one pass that writes plots, the side-by-side video and metrics."""

from __future__ import annotations

import json
import math

import imageio.v2 as imageio
import numpy as np
import pytest

from rwmspec_plugins.embedded.render import twin_pose
from rwmspec_runtime.training import compile_spec
from rwmspec_runtime.visualize import OUTPUT_DIR, VIDEO_FILE

from helpers import SPECS, TINY, rwmspec

FROM_PRETRAIN = (
    'runner.policy_from.spec="anymal_d_pretrain.toml"',
    'runner.world_model_from.spec="anymal_d_pretrain.toml"',
)


def test_twin_pose_integrates_velocity_in_the_yawed_frame():
    down = np.array([0.0, 0.0, -1.0])
    position, yaw, quat = twin_pose(np.zeros(3), 0.0, np.array([1.0, 0.0, 0.0]), 0.0, down, 0.1)
    assert np.allclose(position, [0.1, 0.0, 0.0]) and yaw == 0.0 and np.allclose(quat, [1, 0, 0, 0])
    position, yaw, _ = twin_pose(np.zeros(3), math.pi / 2, np.array([1.0, 0.0, 0.0]), 1.0, down, 0.1)
    assert yaw == pytest.approx(math.pi / 2 + 0.1)
    assert position[1] > 0.099 and abs(position[0]) < 0.02


def test_twin_pose_recovers_roll_and_pitch_from_gravity():
    roll, pitch = 0.2, -0.3
    gravity = np.array([math.sin(pitch), -math.sin(roll) * math.cos(pitch), -math.cos(roll) * math.cos(pitch)])
    _, _, quat = twin_pose(np.zeros(3), 0.0, np.zeros(3), 0.0, gravity, 0.02)
    w, x, y, z = quat
    # rotate world down into the body frame with the quaternion's inverse and compare
    rot = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )
    assert np.allclose(rot.T @ np.array([0.0, 0.0, -1.0]), gravity, atol=1e-9)


# the default suite runs the visualize stage in test_stage_chain.py (no video); this pass also renders one
@pytest.mark.slow
def test_one_pass_writes_plots_video_and_metrics(tmp_path):
    done = rwmspec("run", SPECS / "anymal_d_pretrain.toml", "--overlay", TINY, "--runs-dir", tmp_path)
    assert done.returncode == 0, done.stderr
    sets = [a for s in (*FROM_PRETRAIN, "visualize.num_steps=6") for a in ("--set", s)]
    done = rwmspec("run", SPECS / "anymal_d_visualize.toml", "--overlay", TINY, "--runs-dir", tmp_path, *sets)
    assert done.returncode == 0, done.stderr
    (run,) = (tmp_path / "anymal_d_flat").glob("*_visualize")
    plan, _ = compile_spec(SPECS / "anymal_d_visualize.toml", [TINY], FROM_PRETRAIN)
    assert plan.runner.max_iterations == 1, "visualize is one pass"
    out = run / OUTPUT_DIR
    for term in plan.observations["system_state"].terms:
        assert (out / f"{term.name}.png").is_file(), term.name
    assert (out / "error.png").is_file()
    frames = [f for f in imageio.get_reader(str(out / VIDEO_FILE), format="FFMPEG")]  # noqa: C416 (len is inf)
    assert len(frames) == 6 and frames[0].shape[1] == 2 * frames[0].shape[0] * 4 // 3  # two 4:3 views
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["Visualize/autoregressive_error"] > 0.0
    assert "Visualize/autoregressive_error/joint_pos" in metrics[-1]
