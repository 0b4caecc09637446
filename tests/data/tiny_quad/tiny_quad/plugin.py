"""Plugin ``tiny_quad``: a robot with its own state blocks and a world-model architecture of its own.

Everything a third party needs: records through the ``rwmspec`` hooks, the MJCF shipped as package data and named by a
``RobotAsset`` for the embedded backend, and a whole dynamics model (``model.py``) behind the runtime's ``WorldModel``
protocol. No file of rwmspec is edited.
"""

from __future__ import annotations

from rwmspec import hookimpl
from rwmspec.types import ActuatorDef, ArchitectureDef, ContactGroup, RobotAsset, RobotDef, StateBlock

JOINTS = ("FL_hip", "FR_hip", "HL_hip", "HR_hip")

TINY_QUAD = RobotDef(
    name="tiny_quad",
    description="A box on four one-joint legs (tests)",
    joint_names=JOINTS,
    default_joint_pos=(0.0, 0.0, 0.0, 0.0),
    actuator=ActuatorDef(stiffness=20.0, damping=1.0, effort_limit=10.0),
    state_blocks=(
        StateBlock(name="base_lin_vel", dim=3, mean=(0.0, 0.0, 0.0), std=(0.4, 0.4, 0.2)),
        StateBlock(name="base_ang_vel", dim=3, mean=(0.0, 0.0, 0.0), std=(0.5, 0.5, 0.5)),
        StateBlock(name="projected_gravity", dim=3, mean=(0.0, 0.0, -1.0), std=(0.05, 0.05, 0.05)),
        StateBlock(name="joint_pos", dim=4, mean=(0.0,) * 4, std=(0.3,) * 4, labels=JOINTS),
        StateBlock(name="joint_vel", dim=4, mean=(0.0,) * 4, std=(2.0,) * 4, labels=JOINTS),
        StateBlock(name="joint_torque", dim=4, mean=(0.0,) * 4, std=(3.0,) * 4, labels=JOINTS),
    ),
    contact_groups=(
        ContactGroup(name="feet", bodies=("FL_foot", "FR_foot", "HL_foot", "HR_foot")),
        ContactGroup(name="base", bodies=("base",)),
    ),
    base_body="base",
    init_base_height=0.25,
    joint_pos_limits=((-1.0, 1.0),) * 4,
)


@hookimpl
def rwmspec_robots():
    yield TINY_QUAD


@hookimpl
def rwmspec_robot_assets():
    yield RobotAsset(robot="tiny_quad", backend="embedded", ref="tiny_quad:tiny_quad.xml")


@hookimpl
def rwmspec_world_model_architectures():
    yield ArchitectureDef(
        name="tiny_mlp",
        description="One deterministic MLP from the last (state, action) to the next state and the contact heads",
        factory="tiny_quad.model:build",
    )
