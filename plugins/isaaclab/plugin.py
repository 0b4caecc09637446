"""Backend plugin ``isaaclab``: compiles a Plan into Isaac Lab 3.0 config objects and runs it kit-less on Newton.

Besides the backend, the plugin registers how Isaac Lab implements the locomotion term kinds (``TermBinding``
records): Isaac Lab 3.0's own ``mdp`` functions and config classes where it ships them, this plugin's ``mdp.py``
where it does not. Robots bring their Isaac Lab articulation themselves (``RobotAsset`` records for this backend).

Only light imports here. The compile step (``compile.py``), the env factory (``env.py``) and the extra term
functions (``mdp.py``) import Isaac Lab inside their functions or are referenced by ``"module:attr"`` strings, so
`rwmspec validate` and `rwmspec list` never import Isaac Lab, warp or torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import attrs

from rwmspec import hookimpl
from rwmspec.spec.model import doc
from rwmspec.types import BackendDef, Requirement, TermBinding, TermCategory

#: Config-only install of Isaac Lab 3.0 (docs/isaaclab.md): enough to compile, not to simulate.
_CONFIGS_INSTALL = "bash scripts/install_isaaclab_configs.sh"
#: Physics presets of Isaac Lab's velocity tasks (``RoughPhysicsCfg``); ``newton_*`` run kit-less.
Physics = Literal["newton_mjwarp", "newton_kamino", "physx", "isaacsim_physx", "ovphysx"]


@attrs.define(kw_only=True)
class IsaacLabOptions:
    """``[backend.options]`` of the isaaclab backend."""

    physics: Physics = doc(
        "Physics preset of Isaac Lab's velocity tasks: `newton_mjwarp` (Newton with the MuJoCo-Warp solver, kit-less; "
        "Isaac Lab's default), `newton_kamino` (Newton, kit-less), `physx` (Isaac Sim PhysX when Kit runs, else "
        "OvPhysX), `isaacsim_physx` or `ovphysx`. The PhysX presets need Isaac Sim or the `ov` extra.",
        "newton_mjwarp",
    )
    terrain: Literal["plane", "random_rough"] = doc(
        "`plane`: a flat ground plane (Isaac Lab's flat velocity task; the MJWarp solver gets the flat task's "
        "smaller contact budget). `random_rough`: Isaac Lab's rough-terrain generator with only its random-rough "
        "sub-terrain at difficulty 0 and no curriculum (RWM's init stage).",
        "plane",
    )
    env_spacing: float = doc("Distance between neighbouring env origins on the plane (m).", 2.5)
    contact_history: int = doc(
        "Physics steps of contact forces the contact sensor keeps; contact terms take the "
        "maximum force over them (Isaac Lab's `history_length`).",
        3,
    )

    def check(self) -> Iterator[tuple[str, str]]:
        """Yields ``(field, problem)`` for well-typed but invalid values."""
        if not self.env_spacing > 0:
            yield "env_spacing", f"must be > 0 (got {self.env_spacing})"
        if self.contact_history < 1:
            yield "contact_history", f"must be >= 1 (got {self.contact_history})"


ISAACLAB = BackendDef(
    name="isaaclab",
    description="Isaac Lab 3.0 manager-based env and rsl-rl runner configs; runs kit-less on Newton (MuJoCo-Warp). "
    "Compiling needs only the config classes; running needs the robot's USD asset.",
    compile="rwmspec_plugins.isaaclab.compile:compile_plan_to_isaaclab",
    make_env="rwmspec_plugins.isaaclab.env:make_isaaclab_env",
    options_type=IsaacLabOptions,
    requires=(
        *(
            Requirement(module=m, install=_CONFIGS_INSTALL)
            for m in ("isaaclab", "isaaclab_tasks", "isaaclab_rl", "warp")
        ),
        Requirement(module="rsl_rl", install="pip install rsl-rl-lib==5.5.1"),
    ),
)

_IL = "isaaclab.envs.mdp"
_IL_VELOCITY = "isaaclab_tasks.core.velocity.mdp"
_OURS = "rwmspec_plugins.isaaclab.mdp"


def _bindings(category: TermCategory, refs: dict[str, str]) -> tuple[TermBinding, ...]:
    return tuple(
        TermBinding(backend=ISAACLAB.name, category=category, kind=kind, ref=ref) for kind, ref in refs.items()
    )


#: The locomotion kinds (plugin ``locomotion``) as Isaac Lab terms; each kind's params are Isaac Lab's own names.
BINDINGS = (
    *_bindings(
        "observation",
        {
            **{
                name: f"{_IL}:{name}"
                for name in (
                    "base_lin_vel",
                    "base_ang_vel",
                    "projected_gravity",
                    "joint_pos_rel",
                    "joint_vel_rel",
                    "joint_effort",
                    "last_action",
                    "generated_commands",
                )
            },
            "body_contact": f"{_OURS}:body_contact",
        },
    ),
    *_bindings(
        "reward",
        {
            **{
                name: f"{_IL}:{name}"
                for name in (
                    "track_lin_vel_xy_exp",
                    "track_ang_vel_z_exp",
                    "lin_vel_z_l2",
                    "ang_vel_xy_l2",
                    "joint_torques_l2",
                    "joint_acc_l2",
                    "action_rate_l2",
                    "flat_orientation_l2",
                    "joint_pos_limits",
                    "undesired_contacts",
                )
            },
            "feet_air_time": f"{_IL_VELOCITY}:feet_air_time",
            "stand_still": f"{_OURS}:stand_still",
        },
    ),
    *_bindings("termination", {name: f"{_IL}:{name}" for name in ("time_out", "illegal_contact")}),
    *_bindings(
        "event",
        {
            name: f"{_IL}:{name}"
            for name in (
                "randomize_rigid_body_material",
                "randomize_rigid_body_mass",
                "randomize_rigid_body_com",
                "apply_external_force_torque",
                "reset_root_state_uniform",
                "reset_joints_by_scale",
                "push_by_setting_velocity",
            )
        },
    ),
    *_bindings("command", {"uniform_velocity": f"{_IL}:UniformVelocityCommandCfg"}),
    *_bindings("action", {"joint_position": f"{_IL}:JointPositionActionCfg"}),
)


@hookimpl
def rwmspec_backends():
    yield ISAACLAB


@hookimpl
def rwmspec_term_bindings():
    yield from BINDINGS
