"""Params classes of the locomotion term kinds: what a spec writes flat beside ``weight``/``mode`` in a term table.

Field names are a contract: the torch term functions (``rwmspec_runtime.terms``) and the Isaac Lab bindings take
exactly these keyword arguments. Every field is documented (the docs feed `rwmspec schema` and docs/terms.md).

Two optional methods give the compiler what it cannot read from the types alone:

* ``check() -> Iterator[tuple[str | tuple[str, ...], str]]`` yields ``(field, problem)`` for values that are well
  typed but wrong (an empty range, an unknown axis); ``field`` is a field name or a key path below the params
  (``("pose_range", "yaw")``). The compiler reports them as RWM204.
* ``contact_groups() -> dict[str, float | None]`` maps each robot contact group the term reads (named in the
  ``bodies`` field) to the contact force threshold (N) it asks for (the ``threshold`` field), or ``None`` when it
  only reads the group's contact flags. The compiler checks that the groups exist and that all terms agree on one
  threshold per group (RWM212).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Literal

import attrs

from rwmspec.spec.model import doc

Range = tuple[float, float]

#: axes of a rigid-body pose or twist, as Isaac Lab names them
POSE_AXES = ("x", "y", "z", "roll", "pitch", "yaw")
#: axes of a position offset
POSITION_AXES = ("x", "y", "z")


def _range_problems(name: str, value: Range) -> Iterator[tuple[str, str]]:
    low, high = value
    if not (math.isfinite(low) and math.isfinite(high)):
        yield name, f"range bounds must be finite numbers (got [{low}, {high}])"
    elif low > high:
        yield name, f"range must be [low, high] with low <= high (got [{low}, {high}]); swap the two values"


def _axes_problems(name: str, value: dict[str, Range], axes: tuple[str, ...]) -> Iterator[tuple[tuple[str, str], str]]:
    for axis, rng in value.items():
        if axis not in axes:
            yield (name, axis), f"unknown axis {axis!r}; axes are {', '.join(axes)} (a missing axis is not randomised)"
        else:
            for _, problem in _range_problems(name, rng):
                yield (name, axis), problem


def _positive(name: str, value: float) -> Iterator[tuple[str, str]]:
    if not value > 0:
        yield name, f"must be > 0 (got {value})"


def _non_negative(name: str, value: float) -> Iterator[tuple[str, str]]:
    if not value >= 0:
        yield name, f"must be >= 0 (got {value})"


class _ContactForceParams:
    """Shared behaviour of params that name a contact group (``bodies``) and its force ``threshold`` (N)."""

    bodies: str
    threshold: float

    def check(self) -> Iterator[tuple[str, str]]:
        yield from _non_negative("threshold", self.threshold)

    def contact_groups(self) -> dict[str, float | None]:
        return {self.bodies: self.threshold}


# --------------------------------------------------------------------------------------------------------------------
# observations
# --------------------------------------------------------------------------------------------------------------------
@attrs.define(kw_only=True)
class GeneratedCommandsParams:
    command_name: str = doc(
        "Name of the command table (`[commands.<name>]`) whose current value is observed.", "base_velocity"
    )


@attrs.define(kw_only=True)
class BodyContactParams(_ContactForceParams):
    bodies: str = doc(
        "Robot contact group whose bodies are observed (`feet`, `thighs`, `base` for ANYmal D); "
        "one binary flag per body."
    )
    threshold: float = doc("Contact force norm (N) above which a body counts as in contact.", 1.0)


# --------------------------------------------------------------------------------------------------------------------
# rewards
# --------------------------------------------------------------------------------------------------------------------
@attrs.define(kw_only=True)
class TrackVelocityParams:
    std: float = doc("Tracking kernel width: the term is exp(-error^2 / std^2).", 0.5)
    command_name: str = doc("Name of the velocity command to track.", "base_velocity")

    def check(self) -> Iterator[tuple[str, str]]:
        yield from _positive("std", self.std)


@attrs.define(kw_only=True)
class FeetAirTimeParams:
    bodies: str = doc("Contact group of the feet.", "feet")
    threshold: float = doc(
        "Air time (s) a step must exceed to earn a positive reward; shorter steps are penalised.", 0.5
    )
    command_name: str = doc("Velocity command gating the term.", "base_velocity")
    command_threshold: float = doc("The term is zero while the commanded planar speed is at most this (m/s).", 0.1)

    def check(self) -> Iterator[tuple[str, str]]:
        yield from _non_negative("threshold", self.threshold)
        yield from _non_negative("command_threshold", self.command_threshold)

    def contact_groups(self) -> dict[str, float | None]:
        # `threshold` is a time here; the contact flags come from the group's force threshold
        return {self.bodies: None}


@attrs.define(kw_only=True)
class UndesiredContactsParams(_ContactForceParams):
    bodies: str = doc("Contact group whose contacts are penalised (one count per body in contact).", "thighs")
    threshold: float = doc("Contact force norm (N) above which a body counts as in contact.", 1.0)


@attrs.define(kw_only=True)
class StandStillParams:
    threshold: float = doc("The term is active while the command norm is below this value.", 0.05)
    command_name: str = doc("Velocity command gating the term.", "base_velocity")

    def check(self) -> Iterator[tuple[str, str]]:
        yield from _non_negative("threshold", self.threshold)


# --------------------------------------------------------------------------------------------------------------------
# terminations
# --------------------------------------------------------------------------------------------------------------------
@attrs.define(kw_only=True)
class IllegalContactParams(_ContactForceParams):
    bodies: str = doc("Contact group whose contact ends the episode as a failure.", "base")
    threshold: float = doc("Contact force norm (N) above which a body counts as in contact.", 1.0)


# --------------------------------------------------------------------------------------------------------------------
# events
# --------------------------------------------------------------------------------------------------------------------
@attrs.define(kw_only=True)
class RigidBodyMaterialParams:
    body_names: str = doc("Regular expression selecting the robot bodies whose collision material is randomised.", ".*")
    static_friction_range: Range = doc("Static friction coefficient range.")
    dynamic_friction_range: Range = doc("Dynamic friction coefficient range.")
    restitution_range: Range = doc("Restitution coefficient range.")
    num_buckets: int = doc("Materials are drawn from this many pre-sampled buckets (Isaac Lab semantics).", 64)

    def check(self) -> Iterator[tuple[str, str]]:
        for name in ("static_friction_range", "dynamic_friction_range", "restitution_range"):
            yield from _range_problems(name, getattr(self, name))
            if getattr(self, name)[0] < 0:
                yield name, f"material coefficients must be >= 0 (got {list(getattr(self, name))})"
        if self.num_buckets < 1:
            yield "num_buckets", f"must be >= 1 (got {self.num_buckets})"


@attrs.define(kw_only=True)
class RigidBodyMassParams:
    body_names: str = doc("Regular expression selecting the bodies whose mass is randomised.", "base")
    mass_distribution_params: Range = doc(
        "Parameters of the distribution: (low, high) for `uniform` and `log_uniform`, (mean, std) for `gaussian`."
    )
    operation: Literal["add", "scale", "abs"] = doc(
        "How the sample changes the default mass: added (kg), multiplied, or used as the mass itself."
    )
    distribution: Literal["uniform", "log_uniform", "gaussian"] = doc(
        "Distribution the sample is drawn from.", "uniform"
    )

    def check(self) -> Iterator[tuple[str, str]]:
        low, high = self.mass_distribution_params
        if self.distribution == "gaussian":
            yield from _non_negative("mass_distribution_params", high)
        else:
            yield from _range_problems("mass_distribution_params", self.mass_distribution_params)
        if self.distribution == "log_uniform" and low <= 0:
            yield "mass_distribution_params", f"log_uniform needs positive bounds (got [{low}, {high}])"


@attrs.define(kw_only=True)
class RigidBodyComParams:
    body_names: str = doc("Regular expression selecting the bodies whose centre of mass is shifted.", "base")
    com_range: dict[str, Range] = doc(
        "Offset range (m) per axis of the body frame, e.g. `{x = [-0.05, 0.05], y = [-0.05, 0.05], z = [-0.01, 0.01]}`."
    )

    def check(self) -> Iterator[tuple[str, str]]:
        yield from _axes_problems("com_range", self.com_range, POSITION_AXES)


@attrs.define(kw_only=True)
class ExternalForceTorqueParams:
    body_names: str = doc("Regular expression selecting the bodies the wrench acts on.", "base")
    force_range: Range = doc("Range of each force component (N), drawn per body and axis.")
    torque_range: Range = doc("Range of each torque component (N m), drawn per body and axis.")

    def check(self) -> Iterator[tuple[str, str]]:
        yield from _range_problems("force_range", self.force_range)
        yield from _range_problems("torque_range", self.torque_range)


@attrs.define(kw_only=True)
class ResetRootStateParams:
    pose_range: dict[str, Range] = doc(
        "Offset of the root pose from the default, per axis: `x`, `y`, `z` (m) and `roll`, `pitch`, `yaw` (rad)."
    )
    velocity_range: dict[str, Range] = doc(
        "Root velocity per axis: `x`, `y`, `z` (m/s) and `roll`, `pitch`, `yaw` (rad/s)."
    )

    def check(self) -> Iterator[tuple[str, str]]:
        yield from _axes_problems("pose_range", self.pose_range, POSE_AXES)
        yield from _axes_problems("velocity_range", self.velocity_range, POSE_AXES)


@attrs.define(kw_only=True)
class ResetJointsByScaleParams:
    position_range: Range = doc("Factor range applied to the default joint positions.")
    velocity_range: Range = doc("Factor range applied to the default joint velocities.")

    def check(self) -> Iterator[tuple[str, str]]:
        yield from _range_problems("position_range", self.position_range)
        yield from _range_problems("velocity_range", self.velocity_range)


@attrs.define(kw_only=True)
class PushByVelocityParams:
    velocity_range: dict[str, Range] = doc(
        "Velocity added to the root, per axis: `x`, `y`, `z` (m/s) and `roll`, `pitch`, `yaw` (rad/s)."
    )

    def check(self) -> Iterator[tuple[str, str]]:
        yield from _axes_problems("velocity_range", self.velocity_range, POSE_AXES)


# --------------------------------------------------------------------------------------------------------------------
# commands and actions
# --------------------------------------------------------------------------------------------------------------------
@attrs.define(kw_only=True)
class UniformVelocityParams:
    lin_vel_x: Range = doc("Range of the forward velocity command (m/s).")
    lin_vel_y: Range = doc("Range of the lateral velocity command (m/s).")
    ang_vel_z: Range = doc("Range of the yaw-rate command (rad/s); unused by heading envs.")
    heading: Range | None = doc("Range of the target heading (rad); needed when `heading_command` is true.", None)
    heading_command: bool = doc("Heading envs get a target heading and their yaw rate follows it.", True)
    heading_control_stiffness: float = doc("Gain from heading error to yaw-rate command.", 0.5)
    rel_standing_envs: float = doc("Share of envs commanded to stand still at each resampling.", 0.02)
    rel_heading_envs: float = doc("Share of envs using heading control (when `heading_command` is true).", 1.0)

    def check(self) -> Iterator[tuple[str, str]]:
        for name in ("lin_vel_x", "lin_vel_y", "ang_vel_z"):
            yield from _range_problems(name, getattr(self, name))
        if self.heading is not None:
            yield from _range_problems("heading", self.heading)
        elif self.heading_command:
            yield "heading", "heading_command = true needs a heading range, e.g. heading = [-3.14159, 3.14159]"
        for name in ("rel_standing_envs", "rel_heading_envs"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                yield name, f"must be a share in [0, 1] (got {value})"
        yield from _non_negative("heading_control_stiffness", self.heading_control_stiffness)


@attrs.define(kw_only=True)
class JointPositionParams:
    joint_names: str = doc("Regular expression selecting the actuated joints, in the robot's joint order.", ".*")
    scale: float = doc("Joint position target = offset + scale * action (rad per unit action).", 0.5)
    use_default_offset: bool = doc("Offset the targets by the default joint positions.", True)
