"""Reward term functions: each maps a ``StateView`` to an unweighted ``[N]`` float tensor.

The env reward is ``sum_i weight_i * term_i * dt`` (Isaac Lab reward-manager semantics); the weighting lives in
``rwmspec_runtime.mdp.terms.call_reward_terms``, the one place where real and imagined envs combine terms.
Definitions follow Isaac Lab's locomotion rewards plus the RWM ``stand_still`` term (rwm_method §2.3). Contact
thresholds are applied when the view is built (see ``observations.body_contact``), so the ``threshold`` parameters
of contact terms are accepted for spec compatibility only.
"""

from __future__ import annotations

import torch

from rwmspec_plugins.locomotion.observations import _contact_group
from rwmspec_runtime.mdp.state import ContactTimers, StateView

#: Tolerance (s) of the "touched down during the last control step" test. Timers advance by exactly ``dt`` per
#: step, so a body that just landed has ``current_contact_time == dt``; the tolerance keeps float32 rounding from
#: missing it while staying far below ``2 * dt``.
FIRST_CONTACT_TOLERANCE_S = 1e-6


def _sq_norm(x: torch.Tensor) -> torch.Tensor:
    return torch.sum(torch.square(x), dim=-1)


def track_lin_vel_xy_exp(view: StateView, *, std: float = 0.5, command_name: str = "base_velocity") -> torch.Tensor:
    """``exp(-||c_xy - v_xy||^2 / std^2)``, ``[N]``; v in the base frame."""
    error = _sq_norm(view.command[:, :2] - view.base_lin_vel[:, :2])
    return torch.exp(-error / std**2)


def track_ang_vel_z_exp(view: StateView, *, std: float = 0.5, command_name: str = "base_velocity") -> torch.Tensor:
    """``exp(-(c_z - w_z)^2 / std^2)``, ``[N]``."""
    error = torch.square(view.command[:, 2] - view.base_ang_vel[:, 2])
    return torch.exp(-error / std**2)


def lin_vel_z_l2(view: StateView) -> torch.Tensor:
    """``v_z^2``, ``[N]``."""
    return torch.square(view.base_lin_vel[:, 2])


def ang_vel_xy_l2(view: StateView) -> torch.Tensor:
    """``||w_xy||^2``, ``[N]``."""
    return _sq_norm(view.base_ang_vel[:, :2])


def joint_torques_l2(view: StateView) -> torch.Tensor:
    """``||tau||^2`` over all joints, ``[N]``."""
    return _sq_norm(view.joint_torque)


def joint_acc_l2(view: StateView) -> torch.Tensor:
    """``||(qd - qd_prev) / dt||^2``, ``[N]``: joint acceleration by finite difference over one control step.

    Upstream RWM's imagination differences against the previous joint *positions* by mistake (rwm_method §4.3);
    both paths here use the previous joint velocities.
    """
    return _sq_norm((view.joint_vel - view.prev_joint_vel) / view.dt)


def action_rate_l2(view: StateView) -> torch.Tensor:
    """``||a - a_prev||^2``, ``[N]``."""
    return _sq_norm(view.action - view.prev_action)


def flat_orientation_l2(view: StateView) -> torch.Tensor:
    """``||g_xy||^2`` of the projected gravity, ``[N]``: zero when the base is level."""
    return _sq_norm(view.projected_gravity[:, :2])


def joint_pos_limits(view: StateView) -> torch.Tensor:
    """Sum over joints of how far each position lies outside its soft limits (rad), ``[N]``; 0 without limits.

    Soft limits are ``[J, 2]`` (or ``[N, J, 2]``) lower/upper bounds; a joint inside its range contributes 0.
    """
    limits = view.soft_joint_pos_limits
    q = view.joint_pos
    if limits is None:
        return torch.zeros(q.shape[0], dtype=q.dtype, device=q.device)
    below = (limits[..., 0] - q).clamp(min=0.0)
    above = (q - limits[..., 1]).clamp(min=0.0)
    return torch.sum(below + above, dim=-1)


def first_contact(timers: ContactTimers, dt: float) -> torch.Tensor:
    """Bodies that touched down during the last control step, ``[N, B]`` bool (Isaac Lab ``compute_first_contact``)."""
    t = timers.current_contact_time
    return (t > 0.0) & (t < dt + FIRST_CONTACT_TOLERANCE_S)


def feet_air_time(
    view: StateView,
    *,
    bodies: str = "feet",
    threshold: float = 0.5,
    command_name: str = "base_velocity",
    command_threshold: float = 0.1,
) -> torch.Tensor:
    """``sum_b (last_air_time_b - threshold) * first_contact_b``, zero unless ``||c_xy|| > command_threshold``; ``[N]``.

    Rewards steps longer than ``threshold`` seconds, paid once at each touchdown. Reads the contact timers of group
    ``bodies``, already advanced with this step's contacts.
    """
    try:
        timers = view.contact_timers[bodies]
    except KeyError:
        raise KeyError(
            f"feet_air_time: the state view has no contact timers for group {bodies!r} (it has "
            f"{sorted(view.contact_timers)}); the env must advance timers for every group that "
            "feet_air_time names in `bodies`"
        ) from None
    landed = first_contact(timers, view.dt).to(timers.last_air_time.dtype)
    reward = torch.sum((timers.last_air_time - threshold) * landed, dim=-1)
    moving = torch.linalg.vector_norm(view.command[:, :2], dim=-1) > command_threshold
    return reward * moving


def undesired_contacts(view: StateView, *, bodies: str = "thighs", threshold: float = 1.0) -> torch.Tensor:
    """Number of bodies of contact group ``bodies`` in contact, ``[N]`` float."""
    return torch.sum(_contact_group(view, bodies).to(torch.float32), dim=-1)


def stand_still(view: StateView, *, threshold: float = 0.05, command_name: str = "base_velocity") -> torch.Tensor:
    """``sum_j |q_j - q0_j|`` when the full command norm ``||(v_x, v_y, w_z)||`` is below ``threshold``; ``[N]``.

    Penalises leaving the default pose while told to stand (upstream RWM ``joint_pos_stand_still``).
    """
    deviation = torch.sum(torch.abs(view.joint_pos - view.default_joint_pos), dim=-1)
    standing = torch.linalg.vector_norm(view.command, dim=-1) < threshold
    return deviation * standing
