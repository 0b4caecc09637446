"""Backend plugin ``isaaclab``: compiles a Plan into Isaac Lab 3.0 config objects and runs it kit-less on Newton.

Only light imports here. The compile step (``compile.py``), the env factory (``env.py``), the robot articulations
(``robots.py``) and the extra term functions (``mdp.py``) import Isaac Lab inside their functions and are referenced
by ``"module:attr"`` strings, so `rwmspec validate` and `rwmspec list` never import Isaac Lab, warp or torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import attrs

from rwmspec import hookimpl
from rwmspec.spec.model import doc
from rwmspec.types import BackendDef

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
    requires=("isaaclab", "isaaclab_tasks", "isaaclab_rl", "warp", "rsl_rl"),
)


@hookimpl
def rwmspec_backends():
    yield ISAACLAB
