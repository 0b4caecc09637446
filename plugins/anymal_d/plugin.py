"""Robot plugin ``anymal_d``: ANYbotics ANYmal D, as data.

Joint order follows Isaac Lab (HAA of LF, LH, RF, RH, then HFE, then KFE). Normalizer statistics are the
upstream RWM values (rwm_method §3.6). Physical parameters of the MJCF model are derived from ANYbotics
anymal_d_simple_description (BSD-3-Clause, Copyright 2023 ANYbotics AG); see ``anymal_d.xml``.
"""

from __future__ import annotations

import attrs

from rwmspec import hookimpl
from rwmspec.types import ActuatorDef, ContactGroup, RobotAsset, RobotDef, StateBlock

LEGS = ("LF", "LH", "RF", "RH")
JOINT_NAMES = tuple(f"{leg}_{j}" for j in ("HAA", "HFE", "KFE") for leg in LEGS)
#: Isaac Lab ANYMAL_D_CFG init state: HAA 0, front HFE 0.4, hind HFE -0.4, front KFE -0.8, hind KFE 0.8
DEFAULT_JOINT_POS = (0.0, 0.0, 0.0, 0.0, 0.4, -0.4, 0.4, -0.4, -0.8, 0.8, -0.8, 0.8)
_HAA_LIMITS = {
    "LF": (-0.7853985, 0.6108655),
    "LH": (-0.7853985, 0.6108655),
    "RF": (-0.6108655, 0.7853985),
    "RH": (-0.6108655, 0.7853985),
}
_FREE = (-9.42477796076938, 9.42477796076938)
JOINT_POS_LIMITS = tuple(_HAA_LIMITS[leg] for leg in LEGS) + (_FREE,) * 8


def _labels(prefix: str, names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{prefix}[{n}]" for n in names)


STATE_BLOCKS = (
    StateBlock(
        name="base_lin_vel",
        dim=3,
        mean=(0.0, 0.0, 0.0),
        std=(0.5, 0.5, 0.1),
        labels=("v_x", "v_y", "v_z"),
        description="base linear velocity in the base frame (m/s)",
    ),
    StateBlock(
        name="base_ang_vel",
        dim=3,
        mean=(0.0, 0.0, 0.0),
        std=(0.3, 0.3, 0.5),
        labels=("w_x", "w_y", "w_z"),
        description="base angular velocity in the base frame (rad/s)",
    ),
    StateBlock(
        name="projected_gravity",
        dim=3,
        mean=(0.0, 0.0, -1.0),
        std=(0.02, 0.02, 0.04),
        labels=("g_x", "g_y", "g_z"),
        description="unit gravity vector in the base frame",
    ),
    StateBlock(
        name="joint_pos",
        dim=12,
        mean=(0.0,) * 12,
        std=(0.15,) * 12,
        labels=_labels("q", JOINT_NAMES),
        description="joint positions relative to the default pose (rad)",
    ),
    StateBlock(
        name="joint_vel",
        dim=12,
        mean=(0.0,) * 12,
        std=(1.0,) * 4 + (1.5,) * 4 + (2.5,) * 4,
        labels=_labels("dq", JOINT_NAMES),
        description="joint velocities (rad/s)",
    ),
    StateBlock(
        name="joint_torque",
        dim=12,
        mean=(-2.0, -2.0, 2.0, 2.0, -6.0, 8.0, -6.0, 8.0, 12.0, -12.0, 12.0, -12.0),
        std=(15.0,) * 12,
        labels=_labels("tau", JOINT_NAMES),
        description="applied joint torques (N m)",
    ),
)

CONTACT_GROUPS = (
    ContactGroup(name="feet", bodies=tuple(f"{leg}_FOOT" for leg in LEGS), description="foot contacts"),
    ContactGroup(
        name="thighs",
        bodies=tuple(f"{leg}_THIGH" for leg in LEGS),
        description="thigh contacts (the paper's 'knee contacts')",
    ),
    ContactGroup(name="base", bodies=("base",), description="trunk contact (a fall)"),
)


def _positive(_: object, attribute: attrs.Attribute, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0 (got {value})")


@attrs.define(kw_only=True)
class AnymalDOptions:
    """``[robot.options]`` of ``anymal_d``: the PD gains of the embedded backend's DC-motor actuators.

    The default is Isaac Lab's simple ANYdrive actuator (Kp 40). With it the 52 kg robot sags far below its
    nominal stance (knees deflect 0.5 to 0.9 rad) and PPO learned to stand but not to walk in 30 M steps; Kp 80
    holds the stance and walks within 200 iterations (docs/results.md). Isaac Lab's own ANYmal D uses its LSTM
    actuator network, which these options do not touch.
    """

    actuator_stiffness: float = attrs.field(
        default=40.0, validator=_positive, metadata={"doc": "Kp of every joint (N m / rad)."}
    )
    actuator_damping: float = attrs.field(
        default=5.0, validator=_positive, metadata={"doc": "Kd of every joint (N m s / rad)."}
    )


def apply_options(robot: RobotDef, options: AnymalDOptions | None) -> RobotDef:
    """The robot with the PD gains of ``options`` (the embedded backend's actuators read them from the plan)."""
    if options is None:
        return robot
    actuator = attrs.evolve(robot.actuator, stiffness=options.actuator_stiffness, damping=options.actuator_damping)
    return attrs.evolve(robot, actuator=actuator)


ANYMAL_D = RobotDef(
    name="anymal_d",
    description="ANYbotics ANYmal D quadruped (12 DoF), simple ANYdrive PD actuation (Kp 40, Kd 5, 80 N m)",
    joint_names=JOINT_NAMES,
    default_joint_pos=DEFAULT_JOINT_POS,
    actuator=ActuatorDef(stiffness=40.0, damping=5.0, effort_limit=80.0, saturation_effort=120.0, velocity_limit=7.5),
    state_blocks=STATE_BLOCKS,
    contact_groups=CONTACT_GROUPS,
    base_body="base",
    init_base_height=0.6,
    joint_pos_limits=JOINT_POS_LIMITS,
    options_type=AnymalDOptions,
    apply_options=apply_options,
)

ASSETS = (
    RobotAsset(
        robot="anymal_d",
        backend="embedded",
        ref="rwmspec_plugins.anymal_d:anymal_d.xml",
        description="MJCF model: physical parameters of ANYbotics' description, simple PD actuation",
    ),
    RobotAsset(
        robot="anymal_d",
        backend="isaaclab",
        ref="rwmspec_plugins.anymal_d.isaaclab:articulation",
        description="Isaac Lab's ANYMAL_D_CFG (USD and LSTM actuator net from the Isaac Sim asset server)",
    ),
)


@hookimpl
def rwmspec_robots():
    yield ANYMAL_D


@hookimpl
def rwmspec_robot_assets():
    yield from ASSETS
