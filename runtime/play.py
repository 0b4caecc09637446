"""`rwmspec play RUN --video out.mp4`: render a run's deterministic policy headless to an MP4.

Rendering uses ``mujoco.Renderer`` with an off-screen OpenGL backend, chosen before mujoco is imported: the
``MUJOCO_GL`` the user set, else the first of ``egl`` and ``osmesa`` that can open a context (probed in a child
process, because mujoco binds its backend at import). Without one, `play` stops with RWM507 naming
``scripts/setup_render.sh``. The camera follows the robot's base body. Frames are written at the control rate with
imageio-ffmpeg (H.264).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import numpy as np
import torch

from rwmspec.manager import get_registry
from rwmspec_runtime import checkpoints
from rwmspec_runtime.errors import runtime_error
from rwmspec_runtime.ppo import build_actor
from rwmspec_runtime.rundir import RunDir
from rwmspec_runtime.seeding import seed_everything
from rwmspec_runtime.training import make_env

GL_BACKENDS = ("egl", "osmesa")
SETUP_COMMAND = "bash scripts/setup_render.sh"
_PROBE = (
    "import mujoco\n"
    "m = mujoco.MjModel.from_xml_string('<mujoco><worldbody><geom size=\".1\"/></worldbody></mujoco>')\n"
    "mujoco.Renderer(m, 8, 8).render()\n"
)


def _renders(backend: str) -> bool:
    env = dict(os.environ, MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend)
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def choose_gl_backend() -> str | None:
    """Set ``MUJOCO_GL`` (and PyOpenGL's platform) to a working off-screen backend; None when there is none.

    Only effective before mujoco is imported in this process; afterwards the backend it bound is kept.
    """
    if os.environ.get("MUJOCO_GL"):
        return os.environ["MUJOCO_GL"]
    if "mujoco" in sys.modules:
        return None
    for backend in GL_BACKENDS:
        if _renders(backend):
            os.environ["MUJOCO_GL"] = backend
            os.environ.setdefault("PYOPENGL_PLATFORM", backend)
            return backend
    return None


def _unavailable(reason: str) -> Exception:
    return runtime_error(
        "RWM507",
        f"headless rendering is unavailable: {reason}",
        hint=f"install the OpenGL libraries with `{SETUP_COMMAND}` (EGL or OSMesa), then retry; "
        "or set MUJOCO_GL=egl|osmesa",
    )


class _Camera:
    """A MuJoCo renderer whose camera tracks one body of env 0 of the embedded backend."""

    def __init__(self, env, base_body: str, width: int, height: int) -> None:
        import mujoco

        from rwmspec_plugins.embedded.model import STATE_SPEC

        model = getattr(env, "model", None)
        physics = getattr(env, "physics", None)
        if not isinstance(model, mujoco.MjModel) or physics is None:
            raise runtime_error(
                "RWM507",
                f"the {type(env).__name__} env exposes no MuJoCo model to render",
                hint='play renders the embedded backend; set backend.name = "embedded"',
            )
        # visual settings only (physics untouched): a frame large enough, and a brighter head light
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        model.vis.headlight.ambient[:] = 0.35
        model.vis.headlight.diffuse[:] = 0.65
        self.model, self.physics, self.state_spec = model, physics, STATE_SPEC
        self.data = mujoco.MjData(model)
        try:
            self.renderer = mujoco.Renderer(model, height, width)
        except Exception as exc:  # mujoco raises FatalError, RuntimeError or ImportError depending on the backend
            raise _unavailable(f"{type(exc).__name__}: {exc}") from exc
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        self.camera.trackbodyid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, base_body)
        self.camera.distance, self.camera.elevation, self.camera.azimuth = 3.0, -20.0, 135.0
        self._mujoco = mujoco

    def frame(self, state: np.ndarray | None = None) -> np.ndarray:
        """``[H, W, 3]`` uint8 image of env 0's current state, or of the given full physics ``state`` row."""
        mj = self._mujoco
        row = self.physics.state[0] if state is None else state
        mj.mj_setState(self.model, self.data, np.asarray(row, dtype=np.float64), self.state_spec)
        mj.mj_forward(self.model, self.data)
        self.renderer.update_scene(self.data, camera=self.camera)
        return self.renderer.render()

    def close(self) -> None:
        self.renderer.close()


class TwinCamera(_Camera):
    """Renders env 0 of the embedded backend next to an imagined twin posed from a predicted state (visualize).

    The twin's pose comes from ``rwmspec_runtime.visualize.twin_pose``; its joints from the predicted joint
    positions (the ``joint_pos_rel`` block plus the default pose). Terms are found by kind, not by name.
    """

    def __init__(self, env, base_body: str, width: int = 480, height: int = 360) -> None:
        super().__init__(env, base_body, width, height)
        self.index = self.physics.index
        plan = env.plan
        self.kinds = {t.kind: slice(t.start, t.start + t.dim) for t in plan.observations["system_state"].terms}
        self.default_joint_pos = np.asarray(plan.robot.default_joint_pos)

    def real_pose(self) -> tuple[np.ndarray, float]:
        """Base position and yaw of env 0 (the twin starts there)."""
        from rwmspec_plugins.embedded.rotations import heading

        row = self.physics.state[0]
        return np.array(row[self.index.base_pos]), float(heading(row[self.index.base_quat][None])[0])

    def twin_pose(self, pose, state: np.ndarray, blocks, dt: float, *, reset: bool = False):
        """The twin's next pose ``(position, yaw, quaternion, joint positions)`` from its denormalized state."""
        from rwmspec_runtime.visualize import twin_pose

        position, yaw = pose[:2] if not reset else self.real_pose()
        k = self.kinds
        position, yaw, quat = twin_pose(
            position, yaw, state[k["base_lin_vel"]], state[k["base_ang_vel"]][2], state[k["projected_gravity"]], dt
        )
        position[2] = self.physics.state[0][self.index.base_pos][2]  # the state has no height: the real robot's
        joints = (
            state[k["joint_pos_rel"]] + self.default_joint_pos
            if "joint_pos_rel" in k
            else self.physics.state[0][self.index.joint_pos]
        )
        return position, yaw, quat, joints

    def side_by_side(self, pose) -> np.ndarray:
        """``[H, 2W, 3]``: the real env 0 on the left, the twin on the right."""
        position, _, quat, joints = pose
        twin = np.array(self.physics.state[0], dtype=np.float64)
        twin[self.index.base_pos] = position
        twin[self.index.base_quat] = quat
        twin[self.index.joint_pos] = joints
        return np.concatenate([self.frame(), self.frame(twin)], axis=1)


@contextlib.contextmanager
def mp4_writer(path: str | Path, dt: float) -> Iterator[Callable[[np.ndarray], None]]:
    """``append(frame)`` for an H.264 MP4 at the control rate ``1 / dt``. Frames go to a hidden partial file that
    replaces ``path`` only when the block ends without an error, so an interrupted video never looks complete."""
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        with imageio.get_writer(
            partial, fps=max(1, round(1.0 / dt)), codec="libx264", macro_block_size=1, format="FFMPEG"
        ) as writer:
            yield writer.append_data
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


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
    if choose_gl_backend() is None and "mujoco" not in sys.modules:
        raise _unavailable(f"neither of {', '.join(GL_BACKENDS)} can open an OpenGL context")
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
    env = make_env(play_plan, get_registry(), device="cpu", num_envs=1)
    camera = None
    try:
        camera = _Camera(env, plan.robot.base_body, width, height)
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
