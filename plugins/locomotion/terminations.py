"""Termination terms: pure functions of the named-state view returning a [N] bool tensor.

Like rewards, the real backend and the imagination env call the same functions, so "the robot fell" means the same
thing in both.
"""

from __future__ import annotations

import torch

from rwmspec_runtime.mdp.state import StateView


def time_out(view: StateView) -> torch.Tensor:
    """The episode reached its length: a truncation, after which the value function is bootstrapped."""
    if view.episode_length is None or view.max_episode_length is None:
        raise ValueError("time_out needs view.episode_length and view.max_episode_length")
    return view.episode_length >= view.max_episode_length


def illegal_contact(view: StateView, *, bodies: str = "base", threshold: float = 1.0) -> torch.Tensor:
    """Any body of the contact group touches something (a fall when the group is the trunk).

    ``threshold`` is applied by whoever builds the view (imagination only has binary contacts); it is accepted here
    so that one params class serves every backend.
    """
    del threshold
    return view.contacts[bodies].any(dim=-1)
