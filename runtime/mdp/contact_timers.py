"""Per-body air/contact timers of one contact group, advanced once per control step from binary contacts.

Isaac Lab's ``ContactSensor`` (``track_air_time=True``) semantics, applied at the control period instead of the
physics period, because the imagination env only knows contacts once per control step and real and imagined envs
must use the same timers:

* at touchdown (in the air before, in contact now) ``last_air_time = current_air_time + dt``: the step in which
  the body landed still counts as flight, as in Isaac Lab where the elapsed interval is added before latching;
* at lift-off ``last_contact_time = current_contact_time + dt`` in the same way;
* ``current_air_time`` grows by ``dt`` per airborne step and is 0 in contact; ``current_contact_time`` the reverse.

Functions are pure: they return a new ``ContactTimers`` and never modify their input.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rwmspec_runtime.mdp.state import ContactTimers


def zeros(
    num_envs: int, num_bodies: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> ContactTimers:
    """Timers of ``num_envs`` envs and ``num_bodies`` bodies, all zero (the state after a reset)."""

    def z() -> torch.Tensor:
        return torch.zeros(num_envs, num_bodies, device=device, dtype=dtype)

    return ContactTimers(current_air_time=z(), current_contact_time=z(), last_air_time=z(), last_contact_time=z())


def advance(timers: ContactTimers, contact: torch.Tensor, dt: float) -> ContactTimers:
    """Timers after one control step of length ``dt`` with contacts ``contact`` (``[N, B]`` bool)."""
    if contact.shape != timers.current_air_time.shape:
        raise ValueError(
            f"contact flags have shape {tuple(contact.shape)} but the timers are "
            f"{tuple(timers.current_air_time.shape)} (num_envs, num_bodies)"
        )
    contact = contact.to(torch.bool)
    touchdown = contact & (timers.current_air_time > 0.0)
    liftoff = ~contact & (timers.current_contact_time > 0.0)
    zero = torch.zeros_like(timers.current_air_time)
    return ContactTimers(
        current_air_time=torch.where(contact, zero, timers.current_air_time + dt),
        current_contact_time=torch.where(contact, timers.current_contact_time + dt, zero),
        last_air_time=torch.where(touchdown, timers.current_air_time + dt, timers.last_air_time),
        last_contact_time=torch.where(liftoff, timers.current_contact_time + dt, timers.last_contact_time),
    )


def reset(timers: ContactTimers, env_ids: torch.Tensor | Sequence[int] | None = None) -> ContactTimers:
    """Timers with the rows of ``env_ids`` (indices or a ``[N]`` bool mask; None = all envs) set to zero."""
    reference = timers.current_air_time
    keep = torch.ones(reference.shape[0], dtype=torch.bool, device=reference.device)
    if env_ids is None:
        keep[:] = False
    else:
        index = torch.as_tensor(env_ids, device=reference.device)
        keep[index if index.dtype == torch.bool else index.long()] = False
    keep = keep.unsqueeze(-1)

    def cleared(t: torch.Tensor) -> torch.Tensor:
        return torch.where(keep, t, torch.zeros_like(t))

    return ContactTimers(
        current_air_time=cleared(timers.current_air_time),
        current_contact_time=cleared(timers.current_contact_time),
        last_air_time=cleared(timers.last_air_time),
        last_contact_time=cleared(timers.last_contact_time),
    )
