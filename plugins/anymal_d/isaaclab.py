"""ANYmal D's Isaac Lab articulation, the ``isaaclab`` backend's ``RobotAsset`` of ``anymal_d``.

Only the isaaclab backend resolves it (it imports Isaac Lab). It returns a fresh ``ArticulationCfg`` whose prim path
is ``{ENV_REGEX_NS}/Robot``: the backend names the scene entity ``robot`` and puts the contact sensor on the bodies
under that prim.
"""

from __future__ import annotations

from typing import Any

#: Prim path of the robot in every env; the contact sensor's prim path is derived from it.
ROBOT_PRIM_PATH = "{ENV_REGEX_NS}/Robot"


def articulation() -> Any:
    """ANYmal D as Isaac Lab's velocity tasks place it: ``ANYMAL_D_CFG`` spawned 0.65 m above the env origin.

    The asset is Isaac Lab's own: the USD and the ANYdrive LSTM actuator network are downloaded from the Isaac Sim
    asset server (``ISAACSIM_ASSET_ROOT`` points at a local mirror when offline).
    """
    from isaaclab.utils import replace
    from isaaclab_assets.robots.anymal import ANYMAL_D_CFG

    init_state = replace(ANYMAL_D_CFG.init_state, pos=(0.0, 0.0, 0.65))
    return replace(ANYMAL_D_CFG, prim_path=ROBOT_PRIM_PATH, init_state=init_state)
