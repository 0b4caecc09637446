"""What `rwmspec play` and the visualize stage ask of a backend's env to make pictures, and the video writer.

A backend whose envs can render implements ``make_renderer(width, height, *, twin=False)`` on its env, returning a
``Renderer`` (``twin=True``: a ``TwinRenderer`` that draws env 0 next to a twin posed from imagined states). Envs
that are made for rendering are asked for with ``make_env(..., render=True)``, so that a backend can prepare its
graphics before its simulator loads (MuJoCo binds its OpenGL backend at import).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rwmspec_runtime.errors import runtime_error


@runtime_checkable
class Renderer(Protocol):
    def frame(self) -> np.ndarray:
        """``[H, W, 3]`` uint8 image of env 0."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class TwinRenderer(Renderer, Protocol):
    def start(self) -> None:
        """Place the twin where the real env 0 is."""
        ...

    def side_by_side(self, state: np.ndarray, dt: float, *, reset: bool = False) -> np.ndarray:
        """``[H, 2W, 3]``: env 0 and its twin after one step of ``dt`` to the denormalized ``system_state`` row
        ``state`` (``reset``: the real env restarted, the twin restarts with it)."""
        ...


def make_renderer(env: Any, width: int, height: int, *, twin: bool = False) -> Renderer:
    """The env's renderer, or RWM507 when its backend cannot render."""
    factory = getattr(env, "make_renderer", None)
    if factory is None:
        raise runtime_error(
            "RWM507",
            f"the {type(env).__name__} env cannot render",
            hint='rendering needs a backend whose envs implement make_renderer, e.g. backend.name = "embedded"',
        )
    return factory(width, height, twin=twin)


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
