"""Contact timers: Isaac Lab ContactSensor air/contact-time semantics at the control period."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rwmspec_plugins.locomotion.rewards import first_contact
from rwmspec_runtime.mdp import contact_timers

DT = 0.02


def reference_timers(contact_seq: list[bool], dt: float) -> list[tuple[float, float, float, float]]:
    """Independent scalar re-statement of the sensor rules: (cur_air, cur_contact, last_air, last_contact)."""
    cur_air = cur_con = last_air = last_con = 0.0
    out = []
    for c in contact_seq:
        if c and cur_air > 0:
            last_air = cur_air + dt
        if not c and cur_con > 0:
            last_con = cur_con + dt
        cur_air = 0.0 if c else cur_air + dt
        cur_con = cur_con + dt if c else 0.0
        out.append((cur_air, cur_con, last_air, last_con))
    return out


def test_single_body_sequence_matches_hand_values():
    seq = [False, False, True, True, True, False, True]
    timers = contact_timers.zeros(1, 1)
    got = []
    for c in seq:
        timers = contact_timers.advance(timers, torch.tensor([[c]]), DT)
        got.append(
            (
                timers.current_air_time.item(),
                timers.current_contact_time.item(),
                timers.last_air_time.item(),
                timers.last_contact_time.item(),
            )
        )
    by_hand = [
        (DT, 0, 0, 0),
        (2 * DT, 0, 0, 0),
        (0, DT, 3 * DT, 0),
        (0, 2 * DT, 3 * DT, 0),
        (0, 3 * DT, 3 * DT, 0),
        (DT, 0, 3 * DT, 4 * DT),
        (0, DT, 2 * DT, 4 * DT),
    ]
    np.testing.assert_allclose(np.array(got), np.array(by_hand), atol=1e-6)


def test_random_sequences_match_reference_per_body():
    g = torch.Generator().manual_seed(0)
    steps, n, b = 40, 3, 4
    flags = torch.rand(steps, n, b, generator=g) > 0.5
    timers = contact_timers.zeros(n, b)
    history = []
    for t in range(steps):
        timers = contact_timers.advance(timers, flags[t], DT)
        history.append(
            torch.stack(
                [timers.current_air_time, timers.current_contact_time, timers.last_air_time, timers.last_contact_time],
                dim=-1,
            )
        )
    got = torch.stack(history).numpy()  # [T, N, B, 4]
    for i in range(n):
        for j in range(b):
            ref = reference_timers(flags[:, i, j].tolist(), DT)
            np.testing.assert_allclose(got[:, i, j], np.array(ref), atol=1e-5)


def test_first_contact_fires_once_per_touchdown_in_float32():
    seq = [False, True, True, False, False, True]
    timers = contact_timers.zeros(1, 1)
    fired = []
    for c in seq:
        timers = contact_timers.advance(timers, torch.tensor([[c]]), DT)
        fired.append(bool(first_contact(timers, DT)))
    assert fired == [False, True, False, False, False, True]


def test_advance_is_pure_and_checks_shapes():
    timers = contact_timers.zeros(2, 2)
    before = timers.current_air_time.clone()
    new = contact_timers.advance(timers, torch.tensor([[False, True], [True, False]]), DT)
    assert torch.equal(timers.current_air_time, before)
    assert new is not timers
    with pytest.raises(ValueError, match="contact flags have shape \\(2, 3\\)"):
        contact_timers.advance(timers, torch.zeros(2, 3, dtype=torch.bool), DT)


@pytest.mark.parametrize("env_ids", [[1], torch.tensor([1]), torch.tensor([False, True, False])])
def test_reset_zeroes_only_selected_envs(env_ids):
    timers = contact_timers.zeros(3, 2)
    for c in (False, False, True):
        timers = contact_timers.advance(timers, torch.full((3, 2), c), DT)
    cleared = contact_timers.reset(timers, env_ids)
    for name in ("current_air_time", "current_contact_time", "last_air_time", "last_contact_time"):
        old, new = getattr(timers, name), getattr(cleared, name)
        assert torch.equal(new[1], torch.zeros(2))
        assert torch.equal(new[[0, 2]], old[[0, 2]])
    assert timers.last_air_time[1].sum() > 0  # input untouched
    assert contact_timers.reset(timers, None).last_air_time.abs().sum() == 0
    assert torch.equal(contact_timers.reset(timers, []).last_air_time, timers.last_air_time)


def test_zeros_shape_dtype():
    t = contact_timers.zeros(4, 3)
    assert t.current_air_time.shape == (4, 3) and t.last_contact_time.dtype == torch.float32
