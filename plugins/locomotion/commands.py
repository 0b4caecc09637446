"""The ``uniform_velocity`` command term, shared by the real backends and the imagination env.

``VelocityCommand`` follows Isaac Lab's ``UniformVelocityCommand``: every env holds ``(v_x, v_y, w_z)`` in the base
frame and redraws it when its own timer (drawn from ``resampling_time_range_s``) runs out. A share
``rel_heading_envs`` of envs instead track a random heading: their ``w_z`` is recomputed every step as
``clip(stiffness * wrap(heading_target - yaw), ang_vel_z range)``; a share ``rel_standing_envs`` get a zero
command. ``from_uniform`` is the imagination's sampler (upstream RWM: uniform, no heading envs), on uniforms its
caller draws (``commands_from_uniform``). The class implements ``rwmspec_runtime.mdp.commands.CommandTerm``.

All of ``VelocityCommand``'s randomness comes from the ``torch.Generator`` passed in, never from the global RNG, so a
seed fixes the command sequence. Command tensors handed out are never modified afterwards (updates build new tensors).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch

Range = tuple[float, float]


def _check_range(name: str, value: Any) -> Range:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"velocity command: `{name}` must be a pair [low, high] of numbers, got {value!r}") from None
    if low > high:
        raise ValueError(f"velocity command: `{name}` = [{low}, {high}] has low > high; swap the bounds")
    return (low, high)


@dataclass(frozen=True)
class VelocityRanges:
    """Sampling ranges: ``lin_vel_x``/``lin_vel_y`` (m/s), ``ang_vel_z`` (rad/s), ``heading`` (rad, heading envs)."""

    lin_vel_x: Range
    lin_vel_y: Range
    ang_vel_z: Range
    heading: Range | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                object.__setattr__(self, f.name, _check_range(f.name, value))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> VelocityRanges:
        """Ranges from a mapping with the field names as keys (``heading`` optional)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"velocity command ranges: unknown key(s) {unknown}; expected {sorted(names)}")
        missing = sorted(n for n in ("lin_vel_x", "lin_vel_y", "ang_vel_z") if n not in data)
        if missing:
            raise ValueError(f"velocity command ranges: missing key(s) {missing}; give each as [low, high]")
        return cls(**dict(data))


def wrap_to_pi(angle: torch.Tensor) -> torch.Tensor:
    """Angles wrapped to ``(-pi, pi]``."""
    return torch.atan2(torch.sin(angle), torch.cos(angle))


def _uniform(u: torch.Tensor, bounds: Range) -> torch.Tensor:
    """Map samples ``u`` in [0, 1) to ``bounds``."""
    return bounds[0] + (bounds[1] - bounds[0]) * u


def _as_ranges(ranges: VelocityRanges | Mapping[str, Any]) -> VelocityRanges:
    return ranges if isinstance(ranges, VelocityRanges) else VelocityRanges.from_mapping(ranges)


def commands_from_uniform(
    u: torch.Tensor, ranges: VelocityRanges | Mapping[str, Any], standing_fraction: float = 0.0
) -> torch.Tensor:
    """Commands ``(v_x, v_y, w_z)`` ``[n, 3]``, uniform in ``ranges``, from draws ``u`` ``[n, 4]`` in [0, 1) (three
    for the velocities, one for standing: a row is zero with probability ``standing_fraction``). No heading control:
    the imagination env has no yaw. The caller draws ``u``, so the mapping traces under ``torch.compile``."""
    ranges = _as_ranges(ranges)
    if not 0.0 <= standing_fraction <= 1.0:
        raise ValueError(f"standing_fraction must lie in [0, 1], got {standing_fraction}")
    command = torch.stack(
        [_uniform(u[:, 0], ranges.lin_vel_x), _uniform(u[:, 1], ranges.lin_vel_y), _uniform(u[:, 2], ranges.ang_vel_z)],
        dim=-1,
    )
    standing = u[:, 3] < standing_fraction
    return torch.where(standing.unsqueeze(-1), torch.zeros_like(command), command)


#: keys of a ``uniform_velocity`` command term's params that ``VelocityCommand.from_params`` understands
_OPTION_KEYS = ("heading_command", "heading_control_stiffness", "rel_heading_envs", "rel_standing_envs")


class VelocityCommand:
    """Batched ``(v_x, v_y, w_z)`` commands of ``num_envs`` envs (Isaac Lab ``UniformVelocityCommand`` semantics).

    Call ``step(dt, fields)`` once per control step: it counts down the per-env timers, redraws the expired envs,
    recomputes ``w_z`` of heading envs from the current yaw (``fields["heading"]``) and zeroes standing envs.
    ``reset(env_ids)`` redraws the given envs (as an env reset does). The constructor draws a first command for
    every env.
    """

    dim = 3
    #: three velocities and the standing draw (``commands_from_uniform``)
    uniform_draws = 4

    def __init__(
        self,
        num_envs: int,
        ranges: VelocityRanges | Mapping[str, Any],
        *,
        generator: torch.Generator,
        resampling_time_range_s: Range = (10.0, 10.0),
        heading_command: bool = False,
        heading_control_stiffness: float = 1.0,
        rel_heading_envs: float = 1.0,
        rel_standing_envs: float = 0.0,
    ) -> None:
        self.ranges = _as_ranges(ranges)
        self.resampling_time_range_s = _check_range("resampling_time_range_s", resampling_time_range_s)
        if self.resampling_time_range_s[0] <= 0.0:
            raise ValueError(
                f"velocity command: resampling_time_range_s = {list(self.resampling_time_range_s)} "
                "must be positive; use a huge value such as [1e9, 1e9] to never resample"
            )
        for name, share in (("rel_heading_envs", rel_heading_envs), ("rel_standing_envs", rel_standing_envs)):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"velocity command: `{name}` = {share} must lie in [0, 1]")
        if heading_command and self.ranges.heading is None:
            raise ValueError("velocity command: heading_command = true needs a `heading` range, e.g. [-3.14, 3.14]")
        self.num_envs = num_envs
        self.heading_command = bool(heading_command)
        self.heading_control_stiffness = float(heading_control_stiffness)
        self.rel_heading_envs = float(rel_heading_envs)
        self.rel_standing_envs = float(rel_standing_envs)
        self.generator = generator
        self.device = generator.device
        self._time_left = torch.zeros(num_envs, device=self.device)
        self._command = torch.zeros(num_envs, 3, device=self.device)
        self._heading_target = torch.zeros(num_envs, device=self.device)
        self._is_heading_env = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        self._is_standing_env = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        self.resample(None)

    @classmethod
    def from_params(
        cls,
        num_envs: int,
        params: Mapping[str, Any],
        *,
        generator: torch.Generator,
        resampling_time_range_s: Range = (10.0, 10.0),
    ) -> VelocityCommand:
        """Build from a command term's params: the range keys (flat, or nested under ``ranges``) and options."""
        params = dict(params)
        nested = params.pop("ranges", None)
        options = {k: params.pop(k) for k in _OPTION_KEYS if k in params}
        range_data = dict(nested or {})
        range_data.update(params)
        return cls(
            num_envs,
            VelocityRanges.from_mapping(range_data),
            generator=generator,
            resampling_time_range_s=resampling_time_range_s,
            **options,
        )

    # -- read-only state ------------------------------------------------------------------------------------------
    @property
    def command(self) -> torch.Tensor:
        """Current commands, ``[N, 3]``."""
        return self._command

    @property
    def time_left(self) -> torch.Tensor:
        """Seconds until each env redraws its command, ``[N]``."""
        return self._time_left

    @property
    def heading_target(self) -> torch.Tensor:
        """Target yaw of each env (rad), ``[N]``; used only by heading envs."""
        return self._heading_target

    @property
    def is_heading_env(self) -> torch.Tensor:
        return self._is_heading_env

    @property
    def is_standing_env(self) -> torch.Tensor:
        return self._is_standing_env

    # -- updates --------------------------------------------------------------------------------------------------
    def _mask(self, env_ids: torch.Tensor | Sequence[int] | None) -> torch.Tensor:
        if env_ids is None:
            return torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        index = torch.as_tensor(env_ids, device=self.device)
        if index.dtype == torch.bool:
            if index.shape != (self.num_envs,):
                raise ValueError(f"env mask has shape {tuple(index.shape)}, expected ({self.num_envs},)")
            return index
        mask = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        mask[index.long()] = True
        return mask

    def resample(self, env_ids: torch.Tensor | Sequence[int] | None = None) -> None:
        """Draw new commands, timers, heading targets and env roles for ``env_ids`` (indices or bool mask; None = all).

        Draws random numbers for all envs and keeps those of the selected ones, so the random stream does not
        depend on how many envs expire together.
        """
        mask = self._mask(env_ids)
        u = torch.rand(self.num_envs, 7, generator=self.generator, device=self.device)
        r = self.ranges
        drawn = torch.stack(
            [_uniform(u[:, 1], r.lin_vel_x), _uniform(u[:, 2], r.lin_vel_y), _uniform(u[:, 3], r.ang_vel_z)], dim=-1
        )
        self._time_left = torch.where(mask, _uniform(u[:, 0], self.resampling_time_range_s), self._time_left)
        self._command = torch.where(mask.unsqueeze(-1), drawn, self._command)
        if self.heading_command:
            assert r.heading is not None  # checked in __init__
            self._heading_target = torch.where(mask, _uniform(u[:, 4], r.heading), self._heading_target)
            self._is_heading_env = torch.where(mask, u[:, 5] < self.rel_heading_envs, self._is_heading_env)
        self._is_standing_env = torch.where(mask, u[:, 6] < self.rel_standing_envs, self._is_standing_env)
        self._zero_standing()

    def reset(self, env_ids: torch.Tensor | Sequence[int] | None = None) -> None:
        """Redraw the commands of envs that reset (indices or bool mask; None = all)."""
        self.resample(env_ids)

    def from_uniform(self, u: torch.Tensor) -> torch.Tensor:
        """Commands ``[n, 3]`` from draws ``u`` ``[n, 4]``: uniform in the ranges, standing rows zero; no heading
        control (imagination has no yaw)."""
        return commands_from_uniform(u, self.ranges, self.rel_standing_envs)

    def step(self, dt: float, fields: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Advance one control step; ``fields["heading"]`` is each env's current yaw (rad), ``[N]``, read only with
        heading control. Returns ``[N, 3]``."""
        self._time_left = self._time_left - dt
        self.resample(self._time_left <= 0.0)
        if self.heading_command:
            heading = fields["heading"]
            if heading.shape != (self.num_envs,):
                raise ValueError(f"heading has shape {tuple(heading.shape)}, expected ({self.num_envs},)")
            error = wrap_to_pi(self._heading_target - heading.to(self._heading_target.dtype))
            yaw_rate = torch.clamp(self.heading_control_stiffness * error, *self.ranges.ang_vel_z)
            command = self._command.clone()
            command[:, 2] = torch.where(self._is_heading_env, yaw_rate, command[:, 2])
            self._command = command
        self._zero_standing()
        return self._command

    def _zero_standing(self) -> None:
        self._command = torch.where(self._is_standing_env.unsqueeze(-1), torch.zeros_like(self._command), self._command)
