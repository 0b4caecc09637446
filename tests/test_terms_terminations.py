"""Termination terms against their definitions on hand-made states."""

from __future__ import annotations

import pytest
import torch

from rwmspec_plugins.locomotion import terminations
from rwmspec_runtime.mdp.state import StateView


def _view(**overrides) -> StateView:
    n, j = 3, 2
    fields = dict(
        base_lin_vel=torch.zeros(n, 3),
        base_ang_vel=torch.zeros(n, 3),
        projected_gravity=torch.tensor([[0.0, 0.0, -1.0]]).repeat(n, 1),
        joint_pos=torch.zeros(n, j),
        joint_vel=torch.zeros(n, j),
        joint_torque=torch.zeros(n, j),
        prev_joint_vel=torch.zeros(n, j),
        default_joint_pos=torch.zeros(j),
        contacts={"base": torch.tensor([[False], [True], [False]])},
        command=torch.zeros(n, 3),
        action=torch.zeros(n, j),
        prev_action=torch.zeros(n, j),
        dt=0.02,
    )
    fields.update(overrides)
    return StateView(**fields)


def test_illegal_contact_flags_envs_whose_group_touches():
    assert terminations.illegal_contact(_view(), bodies="base").tolist() == [False, True, False]


def test_time_out_at_the_episode_length():
    view = _view(episode_length=torch.tensor([9, 10, 11]), max_episode_length=10)
    assert terminations.time_out(view).tolist() == [False, True, True]


def test_time_out_without_episode_counters_is_an_error():
    with pytest.raises(ValueError, match="episode_length"):
        terminations.time_out(_view())
