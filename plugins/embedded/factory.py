"""The embedded backend's env factory (``BackendDef.make_env``): light, so that rendering can be set up first.

MuJoCo binds its OpenGL backend when it is imported, so an env made for rendering chooses one
(``render.choose_gl_backend``) before ``env.py`` imports mujoco.
"""

from __future__ import annotations

import sys
from typing import Any

from rwmspec.manager import Registry
from rwmspec.plan import Plan
from rwmspec.types import Artifacts


def make_embedded_env(
    plan: Plan,
    artifacts: Artifacts,
    registry: Registry,
    *,
    device: Any = "cpu",
    num_envs: int | None = None,
    render: bool = False,
) -> Any:
    """The embedded env of ``plan`` from its compiled ``artifacts`` (``num_envs`` overrides ``plan.sim.num_envs``;
    ``render``: choose an off-screen OpenGL backend first, RWM507 when none works)."""
    if render:
        from rwmspec_plugins.embedded.render import GL_BACKENDS, choose_gl_backend, rendering_unavailable

        if choose_gl_backend() is None and "mujoco" not in sys.modules:
            raise rendering_unavailable(f"neither of {', '.join(GL_BACKENDS)} can open an OpenGL context")
    from rwmspec_plugins.embedded.env import EmbeddedVecEnv

    return EmbeddedVecEnv(plan, registry, artifacts.objects["config"], device=device, num_envs=num_envs)
