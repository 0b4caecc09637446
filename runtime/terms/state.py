"""The named-state view every term function reads.

Real backends build it from the simulator; the imagination env builds it from the world model's predicted
(denormalised) state. Term functions must read nothing else, so both paths give identical rewards for the same
state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ContactTimers:
    """Per-body contact timers of one contact group (Isaac Lab contact-sensor semantics), each [N, B] in seconds.

    Advanced once per control step by ``rwmspec_runtime.terms.contact_timers.advance`` from the binary contacts,
    by the real backend and by the imagination env alike.
    """

    current_air_time: torch.Tensor  #: time since the body left contact (0 while in contact)
    current_contact_time: torch.Tensor  #: time since the body touched down (0 while in the air)
    last_air_time: torch.Tensor  #: duration of the last completed flight phase
    last_contact_time: torch.Tensor  #: duration of the last completed stance phase


@dataclass
class StateView:
    """Batched state of N envs. Shapes: N envs, J joints, A action dims, B_g bodies of contact group g."""

    base_lin_vel: torch.Tensor  #: [N, 3] base linear velocity in the base frame (m/s)
    base_ang_vel: torch.Tensor  #: [N, 3] base angular velocity in the base frame (rad/s)
    projected_gravity: torch.Tensor  #: [N, 3] unit gravity direction in the base frame
    joint_pos: torch.Tensor  #: [N, J] absolute joint positions (rad)
    joint_vel: torch.Tensor  #: [N, J] joint velocities (rad/s)
    joint_torque: torch.Tensor  #: [N, J] applied joint torques (N m)
    prev_joint_vel: torch.Tensor  #: [N, J] joint velocities one control step earlier
    default_joint_pos: torch.Tensor  #: [J] or [N, J] default pose
    contacts: dict[str, torch.Tensor]  #: group -> [N, B_g] bool, contact force norm over the group threshold
    command: torch.Tensor  #: [N, 3] commanded (v_x, v_y, w_z) in the base frame
    action: torch.Tensor  #: [N, A] raw policy action of this step
    prev_action: torch.Tensor  #: [N, A] raw policy action of the previous step
    dt: float  #: control period (s)
    #: [J, 2] soft joint position limits (rad); None when the robot has none
    soft_joint_pos_limits: torch.Tensor | None = None
    #: [N] steps elapsed in the current episode, counting this step (time_out reads it)
    episode_length: torch.Tensor | None = None
    #: episode length in steps at which an episode is truncated
    max_episode_length: int | None = None
    #: group -> contact timers, advanced with this step's contacts (feet_air_time reads them)
    contact_timers: dict[str, ContactTimers] = field(default_factory=dict)
    #: further named quantities a third-party term may need; unused by the built-in terms
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def num_envs(self) -> int:
        return self.base_lin_vel.shape[0]

    @property
    def joint_pos_rel(self) -> torch.Tensor:
        return self.joint_pos - self.default_joint_pos
