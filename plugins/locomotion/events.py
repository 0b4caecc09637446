"""Event terms that need no simulator of their own: they run on every env that offers what they call.

``PushBySettingVelocity`` (kind ``push_by_setting_velocity``) is the push of the real envs (``[events]``) and of the
imagined ones (``imagination.push_interval_range``), written once against ``env.add_root_velocity``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from rwmspec_runtime.mdp import RandomSource, as_tensor

#: the axes of a root velocity, in the order ``add_root_velocity`` takes them (linear x, y, z, then angular)
VELOCITY_AXES = ("x", "y", "z", "roll", "pitch", "yaw")


class PushBySettingVelocity:
    """Adds a velocity drawn uniformly per axis from ``velocity_range`` to the root velocity of the envs it fires in
    (Isaac Lab's ``push_by_setting_velocity``). An axis missing from the range is not pushed.

    The env applies it with ``add_root_velocity(mask, linear [N, 3], angular [N, 3])``: the real backends in the world
    frame, as Isaac Lab does; the imagination to its predicted base velocity.
    """

    uniform_draws = len(VELOCITY_AXES)

    def __init__(self, velocity_range: Mapping[str, Sequence[float]]) -> None:
        #: ``[6, 2]`` low/high per axis
        self.bounds = torch.tensor(
            [tuple(velocity_range.get(axis, (0.0, 0.0))) for axis in VELOCITY_AXES], dtype=torch.float64
        )

    def __call__(self, env: Any, mask: torch.Tensor | None, rng: RandomSource) -> None:
        u = as_tensor(rng.random((env.num_envs, self.uniform_draws)))
        bounds = self.bounds.to(u)
        delta = bounds[:, 0] + (bounds[:, 1] - bounds[:, 0]) * u
        env.add_root_velocity(mask, delta[:, :3], delta[:, 3:])
