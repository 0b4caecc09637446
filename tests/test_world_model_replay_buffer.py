"""ReplayBuffer: windows never cross an episode boundary or the write pointer; ring wrap-around; terminal states;
the upstream quirk; evaluation trajectories; checkpoints."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rwmspec_runtime.world_model.replay_buffer import ReplayBuffer, applied_action_pairs

S, A = 3, 1


def _fill(
    num_envs: int, capacity: int, dones: list[list[bool]], time_outs: list[list[bool]], *, quirk: bool = False
) -> ReplayBuffer:
    """Each entry's state is (global step, env, 0): windows reveal exactly which entries they hold."""
    buf = ReplayBuffer(num_envs, capacity, S, A, windows_cross_episodes=quirk)
    envs = torch.arange(num_envs, dtype=torch.float32)
    for step, (done, time_out) in enumerate(zip(dones, time_outs, strict=True)):
        state = torch.stack([torch.full((num_envs,), float(step)), envs, torch.zeros(num_envs)], dim=1)
        buf.add(state, torch.full((num_envs, A), float(step)), done=torch.tensor(done), time_out=torch.tensor(time_out))
    return buf


def _reference_windows(num_envs, capacity, dones, time_outs, length, quirk):
    """Brute force: the valid windows as lists of global steps, per env."""
    steps = len(dones)
    held = min(steps, capacity)
    valid = []
    for env in range(num_envs):
        if quirk:  # raw slot order; slot j holds the last step written to it; terminations only break windows
            slot_step = [max(s for s in range(steps) if s % capacity == j) for j in range(held)]
            for start in range(held - length + 1):
                entries = slot_step[start : start + length]
                if not any(dones[s][env] and not time_outs[s][env] for s in entries[:-1]):
                    valid.append((env, tuple(entries)))
        else:  # chronological: the last `held` steps
            chronological = list(range(steps - held, steps))
            for start in range(held - length + 1):
                entries = chronological[start : start + length]
                if not any(dones[s][env] for s in entries[:-1]):
                    valid.append((env, tuple(entries)))
    return valid


@st.composite
def buffer_cases(draw):
    num_envs = draw(st.integers(1, 3))
    capacity = draw(st.integers(2, 9))
    steps = draw(st.integers(0, 24))
    flags = st.lists(st.booleans(), min_size=num_envs, max_size=num_envs)
    dones = [draw(flags) for _ in range(steps)]
    time_outs = [draw(flags) for _ in range(steps)]
    length = draw(st.integers(1, 6))
    return num_envs, capacity, dones, time_outs, length


@settings(max_examples=150, deadline=None)
@given(case=buffer_cases(), quirk=st.booleans(), seed=st.integers(0, 2**16))
def test_windows_match_the_brute_force_reference(case, quirk, seed):
    num_envs, capacity, dones, time_outs, length = case
    buf = _fill(num_envs, capacity, dones, time_outs, quirk=quirk)
    reference = _reference_windows(num_envs, capacity, dones, time_outs, length, quirk)
    assert buf.num_valid(length) == len(reference)
    g = torch.Generator().manual_seed(seed)
    if not reference:
        with pytest.raises(ValueError, match="no window of"):
            buf.sample_windows(4, length, g)
        return
    windows = buf.sample_windows(32, length, g)
    allowed = set(reference)
    for b in range(32):
        env = int(windows.env_ids[b])
        entries = tuple(int(s) for s in windows.state[b, :, 0])
        assert (env, entries) in allowed
        assert torch.all(windows.state[b, :, 1] == env)
        assert torch.equal(windows.action[b, :, 0], windows.state[b, :, 0])
        if not quirk:
            # consecutive steps: the window crosses neither the write pointer nor a done (first L - 1 entries)
            assert entries == tuple(range(entries[0], entries[0] + length))
            assert not any(dones[s][env] for s in entries[:-1])


def test_wrap_around_keeps_chronological_windows():
    buf = _fill(2, 5, [[False, False]] * 8, [[False, False]] * 8)
    assert buf.num_steps == 5 and buf.write_pointer == 3
    # held steps 3..7; windows of 3: starts at steps 3, 4, 5 per env
    assert buf.num_valid(3) == 6
    windows = buf.sample_windows(200, 3, torch.Generator().manual_seed(0))
    starts = windows.state[:, 0, 0]
    assert set(starts.tolist()) == {3.0, 4.0, 5.0}
    assert torch.all(windows.state[:, 1:, 0] - windows.state[:, :-1, 0] == 1)


def test_terminal_state_is_stored_pre_reset_and_ends_windows():
    buf = ReplayBuffer(1, 10, S, A)
    terminal = torch.tensor([[9.0, 9.0, 9.0]])
    for step in range(6):
        done = step == 2
        state = terminal if done else torch.full((1, S), float(step))
        buf.add(state, torch.zeros(1, A), done=torch.tensor([done]))
    windows = buf.trajectories(3, 10, torch.Generator().manual_seed(0))
    rows = {tuple(w[:, 0].tolist()) for w in windows.state}
    # the episode ends on the terminal state; the next episode starts after it
    assert rows == {(0.0, 1.0, 9.0), (3.0, 4.0, 5.0)}


def test_quirk_lets_windows_cross_time_outs_and_the_write_pointer():
    time_out_at_2 = [[s == 2] for s in range(12)]
    clean = _fill(1, 8, time_out_at_2, time_out_at_2)
    quirk = _fill(1, 8, time_out_at_2, time_out_at_2, quirk=True)
    # held: steps 4..11; the time-out at step 2 is gone, so only the write pointer differs
    assert clean.num_valid(4) == 5 and quirk.num_valid(4) == 5
    quirk_windows = quirk.sample_windows(300, 4, torch.Generator().manual_seed(0))
    steps = quirk_windows.state[:, :, 0]
    assert torch.any(steps[:, 1:] - steps[:, :-1] != 1), "upstream windows straddle the write pointer"
    # a time-out inside the held range breaks clean windows only
    fresh_clean = _fill(1, 20, time_out_at_2, time_out_at_2)
    fresh_quirk = _fill(1, 20, time_out_at_2, time_out_at_2, quirk=True)
    assert fresh_clean.num_valid(4) < fresh_quirk.num_valid(4) == 12 - 4 + 1


def test_trajectories_are_distinct_and_capped():
    buf = _fill(3, 10, [[False] * 3] * 10, [[False] * 3] * 10)
    trajectories = buf.trajectories(4, 100, torch.Generator().manual_seed(0))
    assert len(trajectories) == buf.num_valid(4) == 3 * 7
    keys = {(int(e), int(s)) for e, s in zip(trajectories.env_ids, trajectories.state[:, 0, 0], strict=True)}
    assert len(keys) == len(trajectories)
    assert len(buf.trajectories(4, 5, torch.Generator().manual_seed(0))) == 5


def test_add_checks_shapes_and_missing_streams():
    buf = ReplayBuffer(2, 4, S, A, contact_dim=2)
    with pytest.raises(ValueError, match="contact is missing"):
        buf.add(torch.zeros(2, S), torch.zeros(2, A))
    with pytest.raises(ValueError, match=r"state has shape \(3, 3\), expected \(2, 3\)"):
        buf.add(torch.zeros(3, S), torch.zeros(2, A), torch.zeros(2, 2))


def test_applied_action_pairs_shift_the_action_stream():
    state = torch.arange(5.0).view(1, 5, 1)
    action = torch.arange(5.0).view(1, 5, 1) + 100  # entry k holds a_{k-1}
    s, a = applied_action_pairs(state, action)
    assert s[0, :, 0].tolist() == [0, 1, 2, 3] and a[0, :, 0].tolist() == [101, 102, 103, 104]


def test_state_dict_round_trip():
    dones = [[s % 4 == 3, False] for s in range(9)]
    buf = _fill(2, 6, dones, [[False, False]] * 9)
    other = ReplayBuffer(2, 6, S, A)
    other.load_state_dict(buf.state_dict())
    assert other.num_valid(3) == buf.num_valid(3) and other.write_pointer == buf.write_pointer
    a = buf.sample_windows(10, 3, torch.Generator().manual_seed(0))
    b = other.sample_windows(10, 3, torch.Generator().manual_seed(0))
    assert torch.equal(a.state, b.state)
    with pytest.raises(ValueError, match="replay_buffer_size"):
        ReplayBuffer(2, 7, S, A).load_state_dict(buf.state_dict())


def test_termination_windows_end_in_a_fall_never_a_time_out():
    buf = ReplayBuffer(2, 12, S, A)
    for step in range(8):
        state = torch.full((2, S), float(step))
        done = torch.tensor([step == 5, step == 5])
        buf.add(state, torch.zeros(2, A), done=done, time_out=torch.tensor([False, True]))
    windows = buf.termination_windows(3, 10, torch.Generator().manual_seed(0))
    assert windows.env_ids.tolist() == [0]  # env 1 timed out: not a fall
    assert windows.state[0, :, 0].tolist() == [3.0, 4.0, 5.0]
    assert ReplayBuffer(1, 4, S, A).termination_windows(2, 1) is None
