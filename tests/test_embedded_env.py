"""The embedded backend's VecEnv on the real pretrain spec (tiny overlay): interface, MDP timing, resets, seeding."""

from __future__ import annotations

import os

import attrs
import numpy as np
import pytest
import torch

from rwmspec.manager import get_registry
from rwmspec.plan import TermPlan
from rwmspec_plugins.embedded.env import UNSTABLE_LOG_KEY
from rwmspec_runtime.training import make_env

from helpers import compile_tiny

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

N = 8


@pytest.fixture(scope="module")
def plan():
    plan = compile_tiny("anymal_d_pretrain.toml")
    assert plan.sim.num_envs == N
    return attrs.evolve(plan, sim=attrs.evolve(plan.sim, options={"num_threads": 1}))


def _env(plan, **options):
    if options:
        plan = attrs.evolve(plan, sim=attrs.evolve(plan.sim, options={**plan.sim.options, **options}))
    return make_env(plan, get_registry(), device="cpu")


def _with_command(plan, **params):
    command = plan.commands[0]
    interval = params.pop("interval", command.interval_range_s)
    return attrs.evolve(
        plan, commands=(attrs.evolve(command, params={**command.params, **params}, interval_range_s=interval),)
    )


def _zeros(env):
    return torch.zeros(env.num_envs, env.num_actions)


def test_vec_env_interface_and_observation_groups(plan):
    env = _env(plan)
    assert (env.num_envs, env.num_actions, env.max_episode_length) == (N, 12, 1000)
    assert env.step_dt == pytest.approx(0.02) and env.device == torch.device("cpu")
    obs = env.get_observations()
    assert list(obs.keys()) == list(plan.observations)
    for name, group in plan.observations.items():
        assert obs[name].shape == (N, group.dim) and obs[name].dtype == torch.float32
    assert obs["policy"].shape[1] == 48 and obs["system_state"].shape[1] == 45
    obs, rewards, dones, extras = env.step(torch.randn(N, 12))
    assert rewards.shape == (N,) and dones.shape == (N,) and dones.dtype == torch.bool
    assert extras["time_outs"].shape == (N,) and extras["time_outs"].dtype == torch.bool
    assert set(extras["terminal_observations"].keys()) == {g for g in plan.observations if g.startswith("system_")}
    env.episode_length_buf = torch.full((N,), 5)
    assert env.episode_length_buf.dtype == torch.long
    with pytest.raises(ValueError, match="shape"):
        env.step(torch.zeros(N, 3))
    env.close()


def test_observation_terms_follow_plan_slices(plan):
    env = _env(plan)
    actions = 0.3 * torch.randn(N, 12)
    obs, *_ = env.step(actions)
    policy, state = plan.observations["policy"], plan.observations["system_state"]
    view = env.view
    # uncorrupted world-model groups are the term values exactly
    torch.testing.assert_close(
        obs["system_state"][:, state.slice("joint_pos")], view.joint_pos - view.default_joint_pos
    )
    torch.testing.assert_close(obs["system_state"][:, state.slice("joint_torque")], view.joint_torque)
    torch.testing.assert_close(obs["system_action"], actions)
    torch.testing.assert_close(obs["policy"][:, policy.slice("velocity_commands")], env.commands.command)
    torch.testing.assert_close(obs["policy"][:, policy.slice("actions")], actions)
    # the corrupted policy group carries uniform noise of each term's half-width
    for term in policy.terms:
        clean = (
            obs["system_state"][:, state.slice(term.name)]
            if term.name in ("base_lin_vel", "base_ang_vel", "projected_gravity")
            else None
        )
        if clean is None:
            continue
        error = obs["policy"][:, policy.slice(term.name)] - clean
        assert error.abs().max() <= term.noise + 1e-6 and error.abs().max() > 0
    contact = obs["system_contact"]
    assert set(contact.unique().tolist()) <= {0.0, 1.0}
    assert contact[:, 4:].sum() > 0  # standing robots have feet on the ground


def test_joint_torque_is_the_applied_actuator_force(plan):
    env = _env(plan)
    env.step(_zeros(env))
    torque = env.view.joint_torque
    assert torque.abs().max() <= 80.0 + 1e-4
    assert torque.abs().max() > 1.0  # the PD holds the robot up


def test_rsl_rl_ppo_runs_one_iteration(plan):
    from rsl_rl.runners import OnPolicyRunner

    from rwmspec_runtime.ppo import train_cfg

    env = _env(plan)
    cfg = train_cfg(plan)
    cfg["num_steps_per_env"] = 4
    runner = OnPolicyRunner(env, cfg, log_dir=None, device="cpu")
    before = [p.detach().clone() for p in runner.alg.actor.parameters()]
    runner.learn(num_learning_iterations=1, init_at_random_ep_len=True)
    after = list(runner.alg.actor.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True))  # PPO updated the actor
    assert (env.episode_length_buf > 4).any()  # random initial episode lengths were accepted
    env.close()


def test_commands_resample_on_their_timer(plan):
    interval = 0.1
    env = _env(_with_command(plan, interval=(interval, interval), rel_standing_envs=0.0))
    first = env.commands.command[:, :2].clone()
    # the command's own float32 countdown decides the step; it must be the one 0.1 s / 0.02 s predicts
    time_left, expected_step = torch.tensor(interval), 0
    while time_left > 0:
        time_left, expected_step = time_left - torch.tensor(env.step_dt), expected_step + 1
    assert expected_step in (5, 6)
    for step in range(1, expected_step + 1):
        obs, _, dones, _ = env.step(_zeros(env))
        assert not dones.any()
        planar = env.commands.command[:, :2]
        if step < expected_step:
            torch.testing.assert_close(planar, first)
        else:
            assert (planar != first).all()
            torch.testing.assert_close(obs["policy"][:, 9:11], planar)


def test_heading_envs_steer_towards_their_heading(plan):
    env = _env(_with_command(plan, rel_heading_envs=1.0, rel_standing_envs=0.0))
    env.step(_zeros(env))
    heading = torch.as_tensor(env.physics.heading(), dtype=torch.float32)
    error = torch.atan2(
        torch.sin(env.commands.heading_target - heading), torch.cos(env.commands.heading_target - heading)
    )
    torch.testing.assert_close(env.commands.command[:, 2], torch.clamp(0.5 * error, -1.0, 1.0), atol=1e-5, rtol=0)


def test_push_sets_base_velocity_at_the_push_step(plan):
    push = TermPlan(
        name="push_robot",
        kind="push_by_setting_velocity",
        mode="interval",
        interval_range_s=(0.1, 0.1),
        params={"velocity_range": {"x": (1.5, 1.5)}},
    )
    events = tuple(e for e in plan.events if e.mode != "interval") + (push,)
    env = _env(attrs.evolve(plan, events=events))
    everyone = np.ones(N, dtype=bool)
    velocities = []
    for _ in range(6):
        env.step(_zeros(env))
        velocities.append(env.physics.root_velocity_w(everyone)[0][:, 0])
    jumps = np.diff(np.stack(velocities), axis=0)  # change of world v_x between consecutive steps
    assert np.all(jumps[3] > 1.2)  # step 5 (0.1 s): the push adds 1.5 m/s on top of the dynamics
    assert np.all(np.abs(np.delete(jumps, 3, axis=0)) < 0.5)


def test_time_outs_reset_exactly_those_envs(plan):
    env = _env(plan)
    limit = env.max_episode_length
    buf = torch.full((N,), 10)
    buf[[1, 3]] = limit - 1
    env.episode_length_buf = buf
    obs, _, dones, extras = env.step(_zeros(env))
    assert dones.nonzero().flatten().tolist() == [1, 3]
    assert extras["time_outs"].nonzero().flatten().tolist() == [1, 3]
    assert env.episode_length_buf.tolist() == [11, 0, 11, 0, 11, 11, 11, 11]
    assert extras["log"]["Episode_Termination/time_out"] == 2
    assert extras["log"]["Episode_Termination/base_contact"] == 0
    assert torch.all(obs["system_action"][[1, 3]] == 0)  # a reset clears the last action


def test_base_contact_terminates_and_terminal_observations_are_pre_reset(plan):
    env = _env(plan)
    env.step(_zeros(env))
    index = env.physics.index
    # upside down with the trunk's top on the floor: base contact in the next step
    env.physics.state[2, index.base_pos] = (0.0, 0.0, 0.14)
    env.physics.state[2, index.base_quat] = (0.0, 1.0, 0.0, 0.0)
    obs, _, dones, extras = env.step(_zeros(env))
    assert dones.nonzero().flatten().tolist() == [2]
    assert not extras["time_outs"].any()
    assert extras["log"]["Episode_Termination/base_contact"] == 1
    terminal = extras["terminal_observations"]
    assert terminal["system_termination"].shape == (N, 1)
    assert terminal["system_termination"][2, 0] == 1.0  # the fall, seen before the reset
    assert obs["system_termination"][2, 0] == 0.0  # a fresh env has no contacts yet
    assert not torch.equal(terminal["system_state"][2], obs["system_state"][2])
    assert env.episode_length_buf[2] == 0 and env.physics.state[2, index.base_pos[2]] == pytest.approx(0.6)


def test_episode_sums_are_logged_with_isaac_lab_normalisation(plan):
    env = _env(plan)
    buf = torch.full((N,), 10)
    buf[0] = env.max_episode_length - 3
    env.episode_length_buf = buf
    total = torch.zeros(N)
    for _ in range(3):
        _, rewards, dones, extras = env.step(0.2 * torch.randn(N, 12))
        total += rewards
    assert dones.nonzero().flatten().tolist() == [0]
    log = extras["log"]
    assert {f"Episode_Reward/{t.name}" for t in plan.rewards} <= set(log)
    summed = sum(v for k, v in log.items() if k.startswith("Episode_Reward/")) * plan.sim.episode_length_s
    assert summed == pytest.approx(total[0].item(), rel=1e-4, abs=1e-6)
    assert log["Episode_Reward/dof_pos_limits"] == 0.0  # weight 0: kept in the log, never computed


def test_unstable_envs_are_reset_as_truncations(plan):
    env = _env(plan)
    actions = _zeros(env)
    actions[4] = float("nan")
    _, _, dones, extras = env.step(actions)
    assert dones.nonzero().flatten().tolist() == [4]
    assert extras["time_outs"][4] and extras["log"][UNSTABLE_LOG_KEY] == 1
    assert torch.isfinite(env.get_observations()["policy"]).all()


def _rollout(env, steps=6):
    g = torch.Generator().manual_seed(3)
    out = []
    for _ in range(steps):
        obs, rewards, dones, _ = env.step(torch.randn(N, 12, generator=g))
        out.append(torch.cat([obs["policy"], obs["system_state"], rewards[:, None], dones[:, None].float()], 1))
    return torch.stack(out)


def test_same_seed_same_numbers_for_any_thread_count(plan):
    reference = _rollout(_env(plan))
    torch.testing.assert_close(_rollout(_env(plan)), reference, rtol=0, atol=0)
    torch.testing.assert_close(_rollout(_env(plan, num_threads=2, chunk_size=3)), reference, rtol=0, atol=0)
    other = attrs.evolve(plan, experiment=attrs.evolve(plan.experiment, seed=plan.experiment.seed + 1))
    assert not torch.equal(_rollout(_env(other)), reference)
