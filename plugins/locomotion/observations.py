"""Observation term functions: each maps a ``StateView`` to an ``[N, d]`` float tensor.

The same functions build the real env's observation groups (embedded backend) and the imagined policy observation
(imagination env), so both see identical layouts. They read only the view; parameter names follow Isaac Lab's
``isaaclab.envs.mdp`` observation functions so a spec reads the same for every backend.

Returned tensors may alias the view's tensors: callers concatenate them (which copies) before adding noise.
"""

from __future__ import annotations

import torch

from rwmspec_runtime.mdp.state import StateView


def base_lin_vel(view: StateView) -> torch.Tensor:
    """Base linear velocity in the base frame, ``[N, 3]`` (m/s)."""
    return view.base_lin_vel


def base_ang_vel(view: StateView) -> torch.Tensor:
    """Base angular velocity in the base frame, ``[N, 3]`` (rad/s)."""
    return view.base_ang_vel


def projected_gravity(view: StateView) -> torch.Tensor:
    """Unit gravity direction in the base frame, ``[N, 3]``."""
    return view.projected_gravity


def generated_commands(view: StateView, *, command_name: str = "base_velocity") -> torch.Tensor:
    """The velocity command ``(v_x, v_y, w_z)``, ``[N, 3]``.

    The view carries the env's one velocity command; ``command_name`` is accepted so that specs keep Isaac Lab's
    parameter, and the spec checks make sure it names that command.
    """
    return view.command


def joint_pos_rel(view: StateView) -> torch.Tensor:
    """Joint positions relative to the default pose, ``[N, J]`` (rad)."""
    return view.joint_pos - view.default_joint_pos


def joint_vel_rel(view: StateView) -> torch.Tensor:
    """Joint velocities relative to the default joint velocity, ``[N, J]`` (rad/s).

    The default joint velocity of every supported robot is zero, so this is the joint velocity itself.
    """
    return view.joint_vel


def joint_effort(view: StateView) -> torch.Tensor:
    """Applied joint torques, ``[N, J]`` (N m): what the actuator model commanded after saturation."""
    return view.joint_torque


def last_action(view: StateView) -> torch.Tensor:
    """The raw policy action applied in the step that produced this observation, ``[N, A]``.

    Isaac Lab's ``last_action`` reads the action manager after the step, i.e. the action just applied; in the view
    that is ``action`` (``prev_action`` is the one before it).
    """
    return view.action


def body_contact(view: StateView, *, bodies: str, threshold: float = 1.0) -> torch.Tensor:
    """Binary contact flags of contact group ``bodies`` as floats (0 or 1), ``[N, B]``.

    ``threshold`` (N) is not applied here: whoever builds the view applies it to the contact forces. The imagination
    env only has binary contacts predicted by the world model, never forces, so the view must carry flags and the
    threshold has to live with the real backend (``RobotPlan.contact_thresholds``). It stays a parameter so specs
    keep Isaac Lab's ``body_contact`` signature.
    """
    return _contact_group(view, bodies).to(torch.float32)


def _contact_group(view: StateView, group: str) -> torch.Tensor:
    try:
        return view.contacts[group]
    except KeyError:
        raise KeyError(
            f"contact group {group!r} is not in the state view (it has {sorted(view.contacts)}); name one "
            "of the robot's contact groups in the term's `bodies` parameter"
        ) from None
