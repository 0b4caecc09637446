"""rwmspec: declarative model-based RL for legged robots.

Importing this package loads only light dependencies (attrs, cattrs, tomli, pluggy): never torch, mujoco or
isaaclab. Plugin authors import ``hookimpl`` from here.
"""

from __future__ import annotations

import pluggy

hookimpl = pluggy.HookimplMarker("rwmspec")

__all__ = ["hookimpl", "__version__"]


def __getattr__(name: str):
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("rwmspec")
        except PackageNotFoundError:  # running from a source tree that was never installed
            return "0+unknown"
    raise AttributeError(name)
