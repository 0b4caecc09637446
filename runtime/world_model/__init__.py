"""The learned world model's runtime: the ``WorldModel`` protocol, replay buffer, training and evaluation.

Architectures (the built-in ensemble included) come from plugins; ``WorldModel``, ``Prediction``, ``LossSettings``,
``Losses`` and ``Memory`` are importable from here without importing torch until first used.
"""

from __future__ import annotations

from typing import Any

_PROTOCOL = ("Losses", "LossSettings", "Memory", "Prediction", "WorldModel")


def __getattr__(name: str) -> Any:
    # lazy: the package is imported by light modules (the eval-model command's parser) that must not load torch
    if name in _PROTOCOL:
        from rwmspec_runtime.world_model import protocol

        return getattr(protocol, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
