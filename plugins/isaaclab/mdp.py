"""Isaac Lab term functions for the locomotion kinds that Isaac Lab 3.0 does not ship.

They follow Isaac Lab's term-function contract: the first argument is the ``ManagerBasedRLEnv``, scene entities
arrive as resolved ``SceneEntityCfg`` objects, and each returns a torch tensor with one row per env. Asset and
sensor data are read through Isaac Lab 3.0's ``.torch`` views of its warp arrays. Their torch twins for the
embedded backend and imagination are ``rwmspec_plugins.locomotion.rewards.stand_still`` and
``rwmspec_plugins.locomotion.observations.body_contact``.

Only the isaaclab backend imports this module (through the ``TermBinding`` records of ``plugin.py``), so it imports
Isaac Lab at the top like Isaac Lab's own mdp modules.
"""

from __future__ import annotations

from typing import Any

import torch
from isaaclab.managers import SceneEntityCfg

#: The whole robot (every joint); Isaac Lab resolves entity names to ids only for params given in the term config.
ROBOT_ENTITY = SceneEntityCfg("robot")


def stand_still(
    env: Any, command_name: str = "base_velocity", threshold: float = 0.05, asset_cfg: SceneEntityCfg = ROBOT_ENTITY
) -> torch.Tensor:
    """Deviation from the default pose while the robot is told to stand, ``[N]``.

    ``sum_j |q_j - q0_j|`` over the entity's joints, counted only where the full command norm ``||c||`` is below
    ``threshold`` (RWM's ``stand_still`` penalty; give it a negative weight).
    """
    asset = env.scene[asset_cfg.name]
    joint_pos = asset.data.joint_pos.torch[:, asset_cfg.joint_ids]
    default_joint_pos = asset.data.default_joint_pos.torch[:, asset_cfg.joint_ids]
    deviation = torch.sum(torch.abs(joint_pos - default_joint_pos), dim=1)
    standing = torch.linalg.vector_norm(env.command_manager.get_command(command_name), dim=1) < threshold
    return deviation * standing


def body_contact(env: Any, sensor_cfg: SceneEntityCfg, threshold: float = 1.0) -> torch.Tensor:
    """Binary contact flags of the sensor's selected bodies as floats (1 = in contact), ``[N, B]``.

    A body is in contact when the largest net normal force norm over the sensor's force history exceeds
    ``threshold`` (N): the same test as Isaac Lab's ``illegal_contact`` and ``undesired_contacts``.
    """
    sensor = env.scene.sensors[sensor_cfg.name]
    forces = sensor.data.net_normal_forces_w_history.torch[:, :, sensor_cfg.body_ids]  # [N, H, B, 3]
    peak = torch.max(torch.linalg.vector_norm(forces, dim=-1), dim=1)[0]  # [N, B]
    return (peak > threshold).to(torch.float32)
