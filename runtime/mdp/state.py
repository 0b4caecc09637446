"""The named-state view every term function reads.

Real backends build it from the simulator; the imagination env builds it from the world model's predicted
(denormalised) state. Term functions must read nothing else, so both paths give identical rewards for the same
state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ContactTimers:
    """Per-body contact timers of one contact group (Isaac Lab contact-sensor semantics), each [N, B] in seconds.

    Advanced once per control step by ``rwmspec_runtime.mdp.contact_timers.advance`` from the binary contacts,
    by the real backend and by the imagination env alike.
    """

    current_air_time: torch.Tensor  #: time since the body left contact (0 while in contact)
    current_contact_time: torch.Tensor  #: time since the body touched down (0 while in the air)
    last_air_time: torch.Tensor  #: duration of the last completed flight phase
    last_contact_time: torch.Tensor  #: duration of the last completed stance phase


class StateView:
    """Batched state of N envs, as term functions read it: ``view.<name>``.

    Two kinds of members:

    * the MDP's own, the same for every robot and task: ``action`` / ``prev_action`` ``[N, A]`` (raw policy actions
      of this and the previous step), ``command`` ``[N, C]``, ``dt`` (control period, s), ``contacts`` (group ->
      ``[N, B_g]`` bool: force over the group's threshold), ``contact_timers`` (group -> ``ContactTimers``, advanced
      with this step's contacts), ``episode_length`` ``[N]`` (steps, counting this one) and ``max_episode_length``;
    * named *fields*: the physical quantities a robot's simulator (or the world model) provides, declared by plugins
      as ``ViewField`` records (``rwmspec list view-fields``). Locomotion declares, for instance, ``base_lin_vel``
      ``[N, 3]``, ``projected_gravity`` ``[N, 3]``, ``joint_pos`` ``[N, J]``, ``prev_joint_vel``,
      ``default_joint_pos`` ``[J]`` and ``soft_joint_pos_limits`` ``[J, 2]`` (None without limits).

    Fields are keyword arguments of the constructor and attributes of the view; nothing else is fixed, so a robot with
    other quantities (a base height, wheel speeds) passes them the same way and its terms read them by name.
    """

    def __init__(
        self,
        *,
        contacts: dict[str, torch.Tensor],
        command: torch.Tensor,
        action: torch.Tensor,
        prev_action: torch.Tensor,
        dt: float,
        episode_length: torch.Tensor | None = None,
        max_episode_length: int | None = None,
        contact_timers: dict[str, ContactTimers] | None = None,
        **fields: torch.Tensor | None,
    ) -> None:
        self.contacts = contacts
        self.command = command
        self.action = action
        self.prev_action = prev_action
        self.dt = dt
        self.episode_length = episode_length
        self.max_episode_length = max_episode_length
        self.contact_timers = contact_timers if contact_timers is not None else {}
        #: the named physical fields (see the class docstring)
        self.fields = fields

    def __getattr__(self, name: str) -> torch.Tensor | None:
        # only reached when ``name`` is not an attribute: the named fields
        fields = self.__dict__.get("fields", {})
        if name in fields:
            return fields[name]
        raise AttributeError(
            f"the state view has no field {name!r} (fields: {', '.join(sorted(fields)) or 'none'}); the backend "
            "or the world model must provide it"
        )

    def as_dict(self) -> dict[str, object]:
        """Every member and field by name: ``StateView(**view.as_dict())`` is a copy."""
        members = {
            "contacts": self.contacts,
            "command": self.command,
            "action": self.action,
            "prev_action": self.prev_action,
            "dt": self.dt,
            "episode_length": self.episode_length,
            "max_episode_length": self.max_episode_length,
            "contact_timers": self.contact_timers,
        }
        return {**members, **self.fields}

    def replace(self, **changes: object) -> StateView:
        """A copy with some members or fields replaced."""
        return StateView(**{**self.as_dict(), **changes})

    @property
    def num_envs(self) -> int:
        return self.action.shape[0]

    @property
    def joint_pos_rel(self) -> torch.Tensor:
        return self.joint_pos - self.default_joint_pos
