"""Velocity command generator: resampling timers, heading control, standing envs, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rwmspec_plugins.locomotion.commands import VelocityCommand, VelocityRanges, commands_from_uniform, wrap_to_pi

N = 8
RANGES = VelocityRanges(
    lin_vel_x=(-1.0, 1.0), lin_vel_y=(-0.5, 0.5), ang_vel_z=(-1.0, 1.0), heading=(-math.pi, math.pi)
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_initial_commands_lie_in_ranges():
    cmd = VelocityCommand(N, RANGES, generator=gen(), resampling_time_range_s=(4.0, 6.0))
    c = cmd.command.numpy()
    assert cmd.command.shape == (N, 3) and cmd.command.dtype == torch.float32
    assert (np.abs(c[:, 0]) <= 1).all() and (np.abs(c[:, 1]) <= 0.5).all() and (np.abs(c[:, 2]) <= 1).all()
    assert ((cmd.time_left >= 4.0) & (cmd.time_left <= 6.0)).all()


def test_resampling_happens_when_timers_expire_and_only_for_those_envs():
    dt = 0.1
    cmd = VelocityCommand(N, RANGES, generator=gen(1), resampling_time_range_s=(0.25, 1.0))
    heading = torch.zeros(N)
    for _ in range(30):
        before_cmd, before_time = cmd.command.clone(), cmd.time_left.clone()
        expire = (before_time - dt) <= 0.0
        after = cmd.step(dt, {"heading": heading})
        assert torch.equal(after[~expire], before_cmd[~expire])
        torch.testing.assert_close(cmd.time_left[~expire], before_time[~expire] - dt)
        if expire.any():
            assert (cmd.time_left[expire] >= 0.25).all() and (cmd.time_left[expire] <= 1.0).all()
            assert not torch.equal(after[expire], before_cmd[expire])


def test_resample_and_reset_touch_only_given_envs():
    cmd = VelocityCommand(N, RANGES, generator=gen(2))
    before = cmd.command.clone()
    cmd.resample([1, 5])
    changed = (cmd.command != before).any(dim=1)
    assert changed.tolist() == [i in (1, 5) for i in range(N)]
    before = cmd.command.clone()
    mask = torch.zeros(N, dtype=torch.bool)
    mask[3] = True
    cmd.reset(mask)
    assert ((cmd.command != before).any(dim=1)).tolist() == [i == 3 for i in range(N)]


def test_handed_out_commands_are_never_modified():
    cmd = VelocityCommand(N, RANGES, generator=gen(3), resampling_time_range_s=(0.1, 0.1))
    first = cmd.command
    snapshot = first.clone()
    cmd.step(0.2, {"heading": torch.zeros(N)})
    assert torch.equal(first, snapshot)


def test_standing_envs_get_zero_command():
    cmd = VelocityCommand(
        N, RANGES, generator=gen(4), rel_standing_envs=1.0, heading_command=True, heading_control_stiffness=0.5
    )
    assert cmd.is_standing_env.all() and torch.equal(cmd.command, torch.zeros(N, 3))
    assert torch.equal(cmd.step(0.02, {"heading": torch.ones(N)}), torch.zeros(N, 3))
    none_stand = VelocityCommand(N, RANGES, generator=gen(4), rel_standing_envs=0.0)
    assert not none_stand.is_standing_env.any()


def test_heading_control_math():
    stiffness = 0.5
    cmd = VelocityCommand(
        N,
        RANGES,
        generator=gen(5),
        heading_command=True,
        heading_control_stiffness=stiffness,
        rel_heading_envs=1.0,
        resampling_time_range_s=(100.0, 100.0),
    )
    assert cmd.is_heading_env.all()
    target = cmd.heading_target.numpy().astype(np.float64)
    yaw = np.linspace(-3.0, 3.0, N)
    out = cmd.step(0.02, {"heading": torch.tensor(yaw, dtype=torch.float32)}).numpy()
    error = np.angle(np.exp(1j * (target - yaw)))  # wrapped to (-pi, pi]
    np.testing.assert_allclose(out[:, 2], np.clip(stiffness * error, -1.0, 1.0), atol=1e-5)


def test_heading_error_wraps_the_short_way_and_clips():
    ranges = VelocityRanges(lin_vel_x=(0, 0), lin_vel_y=(0, 0), ang_vel_z=(-0.4, 0.4), heading=(3.0, 3.0))
    cmd = VelocityCommand(2, ranges, generator=gen(), heading_command=True, heading_control_stiffness=1.0)
    out = cmd.step(0.02, {"heading": torch.tensor([-3.0, 2.9])})
    # target 3.0 from yaw -3.0: the short way is -(2*pi - 6) = -0.283 rad, not +6 rad
    np.testing.assert_allclose(out[:, 2].numpy(), [6.0 - 2 * math.pi, 0.1], atol=1e-5)
    out = cmd.step(0.02, {"heading": torch.tensor([1.0, 3.0])})
    np.testing.assert_allclose(out[:, 2].numpy(), [0.4, 0.0], atol=1e-6)  # 2.0 clipped to 0.4


def test_non_heading_envs_keep_sampled_yaw_rate():
    cmd = VelocityCommand(
        N, RANGES, generator=gen(6), heading_command=True, rel_heading_envs=0.0, resampling_time_range_s=(100.0, 100.0)
    )
    before = cmd.command.clone()
    assert torch.equal(cmd.step(0.02, {"heading": torch.full((N,), 2.0)}), before)


def test_deterministic_under_seed():
    def run(seed):
        cmd = VelocityCommand(
            N,
            RANGES,
            generator=gen(seed),
            heading_command=True,
            heading_control_stiffness=0.5,
            rel_heading_envs=0.5,
            rel_standing_envs=0.2,
            resampling_time_range_s=(0.1, 0.3),
        )
        return torch.stack([cmd.step(0.05, {"heading": torch.full((N,), 0.1 * t)}) for t in range(20)])

    assert torch.equal(run(7), run(7))
    assert not torch.equal(run(7), run(8))


def test_global_rng_is_not_used():
    torch.manual_seed(0)
    a = VelocityCommand(N, RANGES, generator=gen(9)).command
    torch.manual_seed(123)
    b = VelocityCommand(N, RANGES, generator=gen(9)).command
    assert torch.equal(a, b)


def test_commands_from_uniform():
    u = torch.rand(1000, 4, generator=gen(10))
    out = commands_from_uniform(
        u, {"lin_vel_x": (-1, 1), "lin_vel_y": (0.2, 0.4), "ang_vel_z": (-1, 1)}, standing_fraction=0.25
    )
    assert out.shape == (1000, 3) and out.dtype == torch.float32
    standing = (out == 0).all(dim=1)
    assert torch.equal(standing, u[:, 3] < 0.25)
    assert 0.15 < standing.float().mean() < 0.35
    moving = out[~standing]
    assert ((moving[:, 1] >= 0.2) & (moving[:, 1] <= 0.4)).all()
    torch.testing.assert_close(moving[:, 0], -1 + 2 * u[~standing, 0])
    assert not (commands_from_uniform(torch.rand(200, 4, generator=gen(12)), RANGES) == 0).all(dim=1).any()


def test_from_params_flat_and_nested():
    flat = {
        "lin_vel_x": [-1, 1],
        "lin_vel_y": [-1, 1],
        "ang_vel_z": [-1, 1],
        "heading": [-3.14, 3.14],
        "heading_command": True,
        "heading_control_stiffness": 0.5,
        "rel_standing_envs": 0.02,
    }
    a = VelocityCommand.from_params(N, flat, generator=gen(13), resampling_time_range_s=(10.0, 10.0))
    nested = {
        "ranges": {k: flat[k] for k in ("lin_vel_x", "lin_vel_y", "ang_vel_z", "heading")},
        "heading_command": True,
        "heading_control_stiffness": 0.5,
        "rel_standing_envs": 0.02,
    }
    b = VelocityCommand.from_params(N, nested, generator=gen(13), resampling_time_range_s=(10.0, 10.0))
    assert torch.equal(a.command, b.command) and a.heading_control_stiffness == 0.5
    with pytest.raises(ValueError, match="unknown key\\(s\\) \\['lin_vel_q'\\]"):
        VelocityCommand.from_params(N, {**flat, "lin_vel_q": [0, 1]}, generator=gen())


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"resampling_time_range_s": (0.0, 1.0)}, "must be positive"),
        ({"rel_standing_envs": 1.5}, "rel_standing_envs"),
        ({"resampling_time_range_s": (2.0, 1.0)}, "low > high"),
    ],
)
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VelocityCommand(N, RANGES, generator=gen(), **kwargs)


def test_heading_command_needs_heading_range():
    ranges = VelocityRanges(lin_vel_x=(-1, 1), lin_vel_y=(-1, 1), ang_vel_z=(-1, 1))
    with pytest.raises(ValueError, match="needs a `heading` range"):
        VelocityCommand(N, ranges, generator=gen(), heading_command=True)
    with_heading = VelocityRanges(lin_vel_x=(-1, 1), lin_vel_y=(-1, 1), ang_vel_z=(-1, 1), heading=(-3, 3))
    with pytest.raises(ValueError, match="heading has shape"):
        command = VelocityCommand(N, with_heading, generator=gen(), heading_command=True)
        command.step(0.02, {"heading": torch.zeros(N, 1)})


def test_wrap_to_pi():
    angles = torch.tensor([0.0, 3 * math.pi / 2, -3 * math.pi / 2, 7.0, -7.0])
    expected = np.angle(np.exp(1j * angles.numpy().astype(np.float64)))
    np.testing.assert_allclose(wrap_to_pi(angles).numpy(), expected, atol=1e-6)
