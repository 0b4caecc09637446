"""Off-screen rendering of the embedded backend: the camera of `rwmspec play` and the twin view of visualize.

Rendering uses ``mujoco.Renderer`` with an off-screen OpenGL backend, chosen before mujoco is imported
(``choose_gl_backend``, called by the env factory when rendering is asked for): the ``MUJOCO_GL`` the user set, else
the first of ``egl`` and ``osmesa`` that can open a context (probed in a child process, because mujoco binds its
backend at import). Without one, rendering stops with RWM507 naming ``scripts/setup_render.sh``. The camera follows
the robot's base body. The classes implement ``rwmspec_runtime.rendering.Renderer`` / ``TwinRenderer``.

Light at import (no mujoco): mujoco is imported inside the classes.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np

from rwmspec_plugins.embedded.rotations import from_euler_xyz, heading
from rwmspec_runtime.errors import runtime_error

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


def rendering_unavailable(reason: str) -> Exception:
    return runtime_error(
        "RWM507",
        f"headless rendering is unavailable: {reason}",
        hint=f"install the OpenGL libraries with `{SETUP_COMMAND}` (EGL or OSMesa), then retry; "
        "or set MUJOCO_GL=egl|osmesa",
    )


def twin_pose(
    position: np.ndarray, yaw: float, lin_vel_b: np.ndarray, yaw_rate: float, gravity_b: np.ndarray, dt: float
) -> tuple[np.ndarray, float, np.ndarray]:
    """Advance an imagined base pose by one control step: ``(position [3], yaw, quaternion wxyz [4])``.

    Roll and pitch come from the predicted gravity direction ``g_b = R^T (0, 0, -1)`` of ``R = Rz Ry Rx``, so
    ``g_b = (sin p, -sin r cos p, -cos r cos p)``; yaw and the horizontal position integrate the predicted rates.
    """
    pitch = math.asin(float(np.clip(gravity_b[0], -1.0, 1.0)))
    roll = math.atan2(-float(gravity_b[1]), -float(gravity_b[2]))
    yaw = yaw + float(yaw_rate) * dt
    c, s = math.cos(yaw), math.sin(yaw)
    position = position.copy()
    position[0] += (c * lin_vel_b[0] - s * lin_vel_b[1]) * dt
    position[1] += (s * lin_vel_b[0] + c * lin_vel_b[1]) * dt
    quat = from_euler_xyz(np.array(roll), np.array(pitch), np.array(yaw))
    return position, yaw, quat


class Camera:
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
            raise rendering_unavailable(f"{type(exc).__name__}: {exc}") from exc
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


class TwinCamera(Camera):
    """Renders env 0 of the embedded backend next to an imagined twin posed from a predicted state (visualize).

    The twin's pose comes from ``twin_pose``; its joints from the predicted joint
    positions (the ``joint_pos_rel`` block plus the default pose). Terms are found by kind, not by name.
    """

    def __init__(self, env, base_body: str, width: int = 480, height: int = 360) -> None:
        super().__init__(env, base_body, width, height)
        self.index = self.physics.index
        plan = env.plan
        self.kinds = {t.kind: slice(t.start, t.start + t.dim) for t in plan.observations["system_state"].terms}
        self.default_joint_pos = np.asarray(plan.robot.default_joint_pos)
        self._pose: tuple[np.ndarray, float] | None = None

    def real_pose(self) -> tuple[np.ndarray, float]:
        """Base position and yaw of env 0 (the twin starts there)."""
        row = self.physics.state[0]
        return np.array(row[self.index.base_pos]), float(heading(row[self.index.base_quat][None])[0])

    def start(self) -> None:
        """Place the twin where the real env 0 is (its pose integrates from there)."""
        self._pose = self.real_pose()

    def side_by_side(self, state: np.ndarray, dt: float, *, reset: bool = False) -> np.ndarray:
        """``[H, 2W, 3]``: the real env 0 on the left, the twin on the right after advancing its pose one step of
        ``dt`` from its denormalized ``system_state`` row ``state`` (``reset``: the real env restarted, so the twin
        restarts from its pose)."""
        position, yaw = self.real_pose() if reset or self._pose is None else self._pose
        k = self.kinds
        position, yaw, quat = twin_pose(
            position, yaw, state[k["base_lin_vel"]], state[k["base_ang_vel"]][2], state[k["projected_gravity"]], dt
        )
        self._pose = (position, yaw)
        position = position.copy()
        position[2] = self.physics.state[0][self.index.base_pos][2]  # the state has no height: the real robot's
        joints = (
            state[k["joint_pos_rel"]] + self.default_joint_pos
            if "joint_pos_rel" in k
            else self.physics.state[0][self.index.joint_pos]
        )
        twin = np.array(self.physics.state[0], dtype=np.float64)
        twin[self.index.base_pos] = position
        twin[self.index.base_quat] = quat
        twin[self.index.joint_pos] = joints
        return np.concatenate([self.frame(), self.frame(twin)], axis=1)
