"""StateView builders shared by the term-function tests."""

from __future__ import annotations

import torch

from rwmspec_runtime.mdp.state import ContactTimers, StateView


class RecordingView(StateView):
    """A StateView that records every attribute read."""

    def __getattribute__(self, name):
        if not name.startswith("__"):
            object.__getattribute__(self, "__dict__").setdefault("_reads", set()).add(name)
        return object.__getattribute__(self, name)


def random_state_view(num_envs: int, num_joints: int, seed: int = 0, **overrides) -> StateView:
    """A StateView of random values at plausible scales, with feet/thighs/base contacts and feet contact timers."""
    n, j = num_envs, num_joints
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=1.0):
        return scale * torch.randn(*shape, generator=g)

    contacts = {
        "feet": torch.rand(n, 4, generator=g) > 0.5,
        "thighs": torch.rand(n, 4, generator=g) > 0.7,
        "base": torch.rand(n, 1, generator=g) > 0.9,
    }
    timers = ContactTimers(
        current_air_time=torch.rand(n, 4, generator=g),
        current_contact_time=torch.zeros(n, 4),
        last_air_time=torch.rand(n, 4, generator=g),
        last_contact_time=torch.zeros(n, 4),
    )
    fields = dict(
        base_lin_vel=r(n, 3),
        base_ang_vel=r(n, 3),
        projected_gravity=r(n, 3, scale=0.1),
        joint_pos=r(n, j, scale=0.3),
        joint_vel=r(n, j, scale=2.0),
        joint_torque=r(n, j, scale=20.0),
        prev_joint_vel=r(n, j, scale=2.0),
        default_joint_pos=r(j, scale=0.5),
        contacts=contacts,
        command=r(n, 3),
        action=r(n, j),
        prev_action=r(n, j),
        dt=0.02,
        soft_joint_pos_limits=torch.stack([-torch.ones(j) * 0.4, torch.ones(j) * 0.4], dim=-1),
        contact_timers={"feet": timers},
    )
    fields.update(overrides)
    return StateView(**fields)
