"""Term-kind plugin ``locomotion``: the MDP terms of legged velocity tracking (Isaac Lab's velocity task).

Each kind names its params class (``params.py``), the torch function the embedded backend and the imagination env
call (``rwmspec_plugins.locomotion.<category>:<kind>``; the push event's term is written once against the env's
``add_root_velocity`` (``events.py``); the other events and the actions are implemented by the backends
themselves), the view fields it reads and, for observations that reproduce one view field, the inverse imagination
uses to turn predicted columns back into that field (``inverses.py``). How a backend implements a kind with its own
terms (Isaac Lab's ``mdp`` functions) is that backend's business: its plugin registers ``TermBinding`` records.

The check ``command_references`` reports terms whose ``command_name`` names no command table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import attrs

from rwmspec import hookimpl
from rwmspec.diagnostics import Diagnostic
from rwmspec.manager import Registry
from rwmspec.spec.model import Spec
from rwmspec.types import CheckDef, RobotDef, TermKind, ViewField
from rwmspec_plugins.locomotion import params as P

_OBS = "rwmspec_plugins.locomotion.observations"
_REW = "rwmspec_plugins.locomotion.rewards"
_TERM = "rwmspec_plugins.locomotion.terminations"
_INV = "rwmspec_plugins.locomotion.inverses"
_EVENTS = "rwmspec_plugins.locomotion.events"


def _num_joints(_params: Any, robot: RobotDef) -> int:
    return len(robot.joint_names)


def _num_contact_bodies(params: P.BodyContactParams, robot: RobotDef) -> int:
    group = robot.contact_group(params.bodies)
    if group is None:
        raise ValueError(f"robot {robot.name!r} has no contact group {params.bodies!r}")
    return len(group.bodies)


def _num_selected_joints(params: P.JointPositionParams, robot: RobotDef) -> int:
    pattern = re.compile(params.joint_names)
    return sum(1 for name in robot.joint_names if pattern.fullmatch(name))


def _observation(
    name: str,
    description: str,
    dim: Any,
    params_type: type | None = None,
    *,
    reads: tuple[str, ...] = (),
    state_field: str | None = None,
    inverse: str = "same",
    contact_group_param: str | None = None,
) -> TermKind:
    return TermKind(
        name=name,
        category="observation",
        description=description,
        params_type=params_type,
        function=f"{_OBS}:{name}",
        dim=dim,
        reads=reads or ((state_field,) if state_field else ()),
        state_field=state_field,
        inverse=f"{_INV}:{inverse}" if state_field else None,
        contact_group_param=contact_group_param,
    )


def _reward(name: str, description: str, params_type: type | None = None, reads: tuple[str, ...] = ()) -> TermKind:
    return TermKind(
        name=name,
        category="reward",
        description=description,
        params_type=params_type,
        function=f"{_REW}:{name}",
        reads=reads,
    )


def _event(name: str, description: str, params_type: type, function: str | None = None) -> TermKind:
    # most events change the simulation itself, so each backend binds its own implementation (TermBinding); a
    # ``function`` is an event term that runs on any env offering what it calls
    return TermKind(name=name, category="event", description=description, params_type=params_type, function=function)


OBSERVATIONS = (
    _observation("base_lin_vel", "Base linear velocity in the base frame (m/s).", 3, state_field="base_lin_vel"),
    _observation("base_ang_vel", "Base angular velocity in the base frame (rad/s).", 3, state_field="base_ang_vel"),
    _observation("projected_gravity", "Unit gravity direction in the base frame.", 3, state_field="projected_gravity"),
    _observation(
        "joint_pos_rel",
        "Joint positions relative to the default pose (rad).",
        _num_joints,
        state_field="joint_pos",
        inverse="plus_default_joint_pos",
    ),
    _observation(
        "joint_vel_rel",
        "Joint velocities relative to the default (zero) velocities (rad/s).",
        _num_joints,
        state_field="joint_vel",
    ),
    _observation("joint_effort", "Applied joint torques (N m).", _num_joints, state_field="joint_torque"),
    _observation(
        "last_action", "The raw policy action most recently applied (one value per action dimension).", _num_joints
    ),
    _observation(
        "generated_commands",
        "Current value of a command, e.g. (v_x, v_y, w_z) of a velocity command.",
        3,
        P.GeneratedCommandsParams,
    ),
    _observation(
        "body_contact",
        "Binary contact flags of the bodies of a contact group (1 = in contact).",
        _num_contact_bodies,
        P.BodyContactParams,
        contact_group_param="bodies",
    ),
)

REWARDS = (
    _reward(
        "track_lin_vel_xy_exp",
        "exp(-|c_xy - v_xy|^2 / std^2): planar velocity tracking in the base frame.",
        P.TrackVelocityParams,
        reads=("base_lin_vel",),
    ),
    _reward(
        "track_ang_vel_z_exp",
        "exp(-(c_z - w_z)^2 / std^2): yaw-rate tracking.",
        P.TrackVelocityParams,
        reads=("base_ang_vel",),
    ),
    _reward("lin_vel_z_l2", "v_z^2: vertical base velocity.", reads=("base_lin_vel",)),
    _reward("ang_vel_xy_l2", "|w_xy|^2: roll and pitch rates.", reads=("base_ang_vel",)),
    _reward("joint_torques_l2", "|tau|^2: applied joint torques.", reads=("joint_torque",)),
    _reward("joint_acc_l2", "|(dq - dq_prev) / dt|^2: joint accelerations.", reads=("joint_vel",)),
    _reward("action_rate_l2", "|a - a_prev|^2: change of the action."),
    _reward(
        "flat_orientation_l2",
        "|g_xy|^2: tilt of the base (projected gravity off the z axis).",
        reads=("projected_gravity",),
    ),
    _reward(
        "joint_pos_limits",
        "Sum over joints of how far the position lies outside the soft limits (rad).",
        reads=("joint_pos",),
    ),
    _reward(
        "feet_air_time",
        "Sum over feet of (last air time - threshold) at touchdown, zero for small commands.",
        P.FeetAirTimeParams,
    ),
    _reward("undesired_contacts", "Number of bodies of a contact group in contact.", P.UndesiredContactsParams),
    _reward(
        "stand_still",
        "Sum of |q - q_default| while the command norm is below the threshold (RWM).",
        P.StandStillParams,
        reads=("joint_pos",),
    ),
)

TERMINATIONS = (
    TermKind(
        name="time_out",
        category="termination",
        description="The episode reached its length (a truncation).",
        function=f"{_TERM}:time_out",
    ),
    TermKind(
        name="illegal_contact",
        category="termination",
        description="A body of a contact group touches something (a fall).",
        params_type=P.IllegalContactParams,
        function=f"{_TERM}:illegal_contact",
    ),
)

EVENTS = (
    _event(
        "randomize_rigid_body_material",
        "Friction and restitution of the selected bodies' collision shapes.",
        P.RigidBodyMaterialParams,
    ),
    _event("randomize_rigid_body_mass", "Mass of the selected bodies.", P.RigidBodyMassParams),
    _event("randomize_rigid_body_com", "Centre-of-mass offset of the selected bodies.", P.RigidBodyComParams),
    _event(
        "apply_external_force_torque",
        "Constant external wrench on the selected bodies until the next event.",
        P.ExternalForceTorqueParams,
    ),
    _event(
        "reset_root_state_uniform",
        "Root pose and velocity drawn around the default root state.",
        P.ResetRootStateParams,
    ),
    _event(
        "reset_joints_by_scale",
        "Joint positions and velocities: defaults times a random factor.",
        P.ResetJointsByScaleParams,
    ),
    _event(
        "push_by_setting_velocity",
        "Push: add a random velocity to the root.",
        P.PushByVelocityParams,
        function=f"{_EVENTS}:PushBySettingVelocity",
    ),
)

COMMANDS = (
    TermKind(
        name="uniform_velocity",
        category="command",
        description="Base velocity command (v_x, v_y, w_z) drawn uniformly, optionally with heading control "
        "and standing envs.",
        params_type=P.UniformVelocityParams,
        function="rwmspec_plugins.locomotion.commands:VelocityCommand",
        dim=3,
    ),
)

ACTIONS = (
    TermKind(
        name="joint_position",
        category="action",
        description="Joint position targets for the robot's PD actuators: offset + scale * action.",
        params_type=P.JointPositionParams,
        dim=_num_selected_joints,
    ),
)

ALL_KINDS = OBSERVATIONS + REWARDS + TERMINATIONS + EVENTS + COMMANDS + ACTIONS

#: the per-env physical quantities these terms read (``StateView`` fields): a real backend fills them from its
#: simulator; imagination from the world model's ``system_state`` (the observation kinds with a ``state_field``)
VIEW_FIELDS = (
    ViewField(name="base_lin_vel", width=3, description="base linear velocity in the base frame (m/s)"),
    ViewField(name="base_ang_vel", width=3, description="base angular velocity in the base frame (rad/s)"),
    ViewField(name="projected_gravity", width=3, description="unit gravity direction in the base frame"),
    ViewField(name="joint_pos", width="joints", description="absolute joint positions (rad)"),
    ViewField(name="joint_vel", width="joints", description="joint velocities (rad/s)"),
    ViewField(name="joint_torque", width="joints", description="applied joint torques (N m)"),
)


def _command_references(spec: Spec, registry: Registry) -> Iterator[Diagnostic]:
    """Terms with a ``command_name`` param must name a ``[commands.<name>]`` table of the spec."""
    tables = [("rewards", spec.rewards), ("terminations", spec.terminations)]
    tables += [(("observations", group, "terms"), g.terms) for group, g in spec.observations.items()]
    for section, terms in tables:
        prefix = section if isinstance(section, tuple) else (section,)
        for name, term in terms.items():
            if not getattr(term, "enabled", True):
                continue
            params = term.params if isinstance(term.params, dict) else _as_dict(term.params)
            command = params.get("command_name")
            if command is None:
                kind = registry.term_kinds.get((_CATEGORY[prefix[0]], term.kind or name))
                fields = getattr(kind.params_type, "__attrs_attrs__", ()) if kind and kind.params_type else ()
                command = next((f.default for f in fields if f.name == "command_name"), None)
            if not isinstance(command, str) or command in spec.commands:
                continue
            known = ", ".join(sorted(spec.commands)) or "none"
            yield Diagnostic(
                "RWM204",
                f"term '{name}' reads command '{command}', which the spec does not define (commands: {known})",
                path=(*prefix, name, "command_name"),
                hint=f"add a [commands.{command}] table or set command_name to one of the defined commands",
            )


_CATEGORY = {"rewards": "reward", "terminations": "termination", "observations": "observation"}


def _as_dict(params: Any) -> dict[str, Any]:
    return attrs.asdict(params) if attrs.has(type(params)) else dict(params or {})


@hookimpl
def rwmspec_term_kinds():
    yield from ALL_KINDS


@hookimpl
def rwmspec_view_fields():
    yield from VIEW_FIELDS


@hookimpl
def rwmspec_checks():
    yield CheckDef(
        name="command_references",
        description="Terms with a command_name refer to a defined command.",
        function=_command_references,
    )
