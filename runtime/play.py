"""`rwmspec play RUN --video out.mp4`: render a run's deterministic policy headless to an MP4.

The env is made for rendering (``make_env(..., render=True)``) and draws its own frames (``rendering.Renderer``;
the embedded backend's camera follows the robot's base body). Frames are written at the control rate with
imageio-ffmpeg (H.264).
"""

from __future__ import annotations

from pathlib import Path

import attrs
import torch

from rwmspec.manager import get_registry
from rwmspec_runtime import checkpoints
from rwmspec_runtime.ppo import build_actor
from rwmspec_runtime.rendering import make_renderer, mp4_writer
from rwmspec_runtime.rundir import RunDir
from rwmspec_runtime.seeding import seed_everything
from rwmspec_runtime.training import make_env


def play(
    run: RunDir,
    video: str | Path,
    *,
    steps: int = 500,
    checkpoint: str = checkpoints.LATEST,
    width: int = 640,
    height: int = 480,
    seed: int | None = None,
) -> Path:
    """Roll the run's policy in one env for ``steps`` steps and write every frame to ``video`` (MP4)."""
    if steps < 1:
        raise ValueError(f"--steps must be >= 1, got {steps}")
    plan = run.require().plan()
    ckpt_path = checkpoints.resolve_checkpoint(run.path, checkpoint)
    actor = build_actor(plan, checkpoints.load_checkpoint(ckpt_path)["actor_state_dict"])
    play_seed = plan.experiment.seed + 1 if seed is None else seed
    play_plan = attrs.evolve(
        plan,
        experiment=attrs.evolve(plan.experiment, seed=play_seed),
        sim=attrs.evolve(plan.sim, num_envs=1, device="cpu"),
    )
    seed_everything(play_seed)
    env = make_env(play_plan, get_registry(), device="cpu", num_envs=1, render=True)
    camera = None
    try:
        camera = make_renderer(env, width, height)
        with mp4_writer(video, plan.sim.control_dt) as append:
            obs = env.get_observations()
            append(camera.frame())
            with torch.inference_mode():
                for _ in range(steps):
                    obs, _, _, _ = env.step(actor(obs))
                    append(camera.frame())
    finally:
        if camera is not None:
            camera.close()
        close = getattr(env, "close", None)
        if callable(close):
            close()
    return Path(video)
