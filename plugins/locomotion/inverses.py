"""Inverses of the observation kinds that reproduce one view field (``TermKind.inverse``).

Imagination predicts ``system_state`` columns; each inverse turns a term's columns back into the view field its
observation function read, so rewards see the same quantities as on the real robot. Each undoes the function of the
same kind in ``rwmspec_plugins.locomotion.observations``. Plain arithmetic on tensors: no torch import needed here.
"""

from __future__ import annotations

from typing import Any


def same(columns: Any, default_joint_pos: Any) -> Any:
    """The observation is the field itself (velocities, gravity, torques; the default joint velocity is zero)."""
    return columns


def plus_default_joint_pos(columns: Any, default_joint_pos: Any) -> Any:
    """``joint_pos_rel`` is the joint position minus the default pose."""
    return columns + default_joint_pos
