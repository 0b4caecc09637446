"""The ``imagine`` runner step in a tiny finetune run on the embedded backend: warm-up, PPO storage sized for the
imagined envs, metrics, and real transitions mixed into PPO's storage."""

from __future__ import annotations

import os

import attrs
import pytest
import torch

from rwmspec.diagnostics import SpecError
from rwmspec.manager import get_registry
from rwmspec_runtime.imagination.step import Imagine, real_data_slots
from rwmspec_runtime.runner import Runner
from rwmspec_runtime.seeding import seed_everything
from rwmspec_runtime.steps import IterationContext
from rwmspec_runtime.training import compile_spec, make_env

from helpers import SPECS, TINY

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
torch.set_num_threads(1)


def _runner(tmp_path, *sets: str) -> Runner:
    """A finetune runner on the tiny overlay without run references (fresh policy and world model)."""
    plan, _ = compile_spec(SPECS / "anymal_d_finetune.toml", [TINY], sets)
    plan = attrs.evolve(plan, sim=attrs.evolve(plan.sim, options={**plan.sim.options, "num_threads": 1}))
    seed_everything(plan.experiment.seed)
    env = make_env(plan, get_registry(), device="cpu")
    return Runner(plan, env, tmp_path, device="cpu", log=lambda _: None, references={})


def _imagine(runner) -> Imagine:
    return next(s for s in runner.steps if s.name == "imagine")


def test_finetune_trains_the_policy_in_imagination_after_the_warmup(tmp_path):
    runner = _runner(
        tmp_path, "ppo.num_steps_per_env=6", "runner.max_iterations=3", "runner.init_at_random_ep_len=false"
    )
    plan = runner.plan
    step = _imagine(runner)
    assert step.policy_env is step.env
    storage = runner.alg.storage
    assert (storage.num_envs, storage.num_transitions_per_env) == (plan.imagination.num_envs, 4)
    runner.learn()
    runner.env.close()
    history = runner.metrics.history
    warmup, trained = history[0], history[-1]
    assert "Loss/value" not in warmup and "Perf/imagination_fps" not in warmup
    assert "System Dynamics/total_loss" in warmup, "the world model trains during the warm-up"
    for key in (
        "Loss/value",
        "Loss/surrogate",
        "Perf/imagination_fps",
        "Model Based/epistemic_uncertainty",
        "Model Based/per_step_reward_sum_imagination",
        "Model Based/per_step_reward_sum_real",
        "Model Based/per_step_reward_imagination/track_lin_vel_xy_exp",
    ):
        assert key in trained, key
        assert torch.isfinite(torch.tensor(trained[key])), key
    assert step.env.started
    # imagined envs persist across iterations: lengths count on unless an episode ended
    assert int(step.env.episode_length_buf.max()) <= 2 * plan.imagination.steps_per_iteration


def test_imagined_episodes_start_spread_over_the_episode_like_the_real_ones(tmp_path):
    runner = _runner(
        tmp_path, "ppo.num_steps_per_env=4", "imagination.warmup_iterations=0", "runner.init_at_random_ep_len=true"
    )
    ctx = IterationContext(iteration=0)
    for step in runner.steps[:-1]:
        step.run(ctx)
    env = _imagine(runner).env
    assert env.started
    lengths = env.episode_length_buf
    assert int(lengths.max()) < env.max_episode_length
    assert len(torch.unique(lengths)) > 1, "all imagined episodes started in the same step"
    runner.env.close()


def test_warmup_iterations_skip_the_policy_update_and_leave_the_storage_empty(tmp_path):
    runner = _runner(tmp_path, "ppo.num_steps_per_env=4", "imagination.warmup_iterations=2")
    ctx = IterationContext(iteration=1)
    _imagine(runner).run(ctx)
    assert ctx.scratch["skip_policy_update"] is True
    assert runner.alg.storage.step == 0 and not _imagine(runner).env.started
    runner.env.close()


def test_imagination_waits_for_a_full_window_in_the_replay_buffer(tmp_path):
    runner = _runner(
        tmp_path, "ppo.num_steps_per_env=4", "imagination.warmup_iterations=0", "world_model.history_horizon=6"
    )
    ctx = IterationContext(iteration=0)
    for step in runner.steps[:-1]:  # 4 real steps < the 6-entry window
        step.run(ctx)
    assert ctx.scratch["skip_policy_update"] is True and not _imagine(runner).env.started
    runner.env.close()


def test_real_data_share_widens_the_storage_with_real_transitions(tmp_path):
    runner = _runner(
        tmp_path, "ppo.num_steps_per_env=4", "imagination.warmup_iterations=0", "imagination.real_data_share=0.6"
    )
    n, real_envs = runner.plan.imagination.num_envs, runner.env.num_envs
    slots = real_data_slots(0.6, n)
    assert slots == 12
    step = _imagine(runner)
    storage = runner.alg.storage
    assert step.policy_env.num_envs == storage.num_envs == n + slots
    ctx = IterationContext(iteration=0)
    for s in runner.steps:
        if s.name == "update_policy":
            break
        s.run(ctx)
    assert storage.step == 4
    columns = torch.arange(slots) % real_envs
    real = slice(n, n + slots)
    assert torch.equal(storage.actions[:, real], torch.stack([t.actions[columns] for t in ctx.rollout]))
    assert torch.equal(storage.rewards[:, real, 0], torch.stack([t.rewards[columns] for t in ctx.rollout]))
    assert torch.equal(
        storage.observations["policy"][:, real], torch.stack([t.obs["policy"][columns] for t in ctx.rollout])
    )
    # their log-probs are the current policy's for the actions the real env took
    alg = runner.alg
    with torch.inference_mode():
        alg.actor(ctx.rollout[0].obs[columns], stochastic_output=True)
        log_prob = alg.actor.get_output_log_prob(ctx.rollout[0].actions[columns])
    torch.testing.assert_close(storage.actions_log_prob[0, real, 0], log_prob)
    assert torch.isfinite(storage.returns).all()
    runner.steps[-1].run(ctx)
    assert "Model Based/real_data_slots" in ctx.metrics and "Loss/value" in ctx.metrics
    runner.env.close()


def test_real_data_share_with_unequal_step_counts_is_a_spec_error(tmp_path):
    """`rwmspec validate` owns the rule (the imagine step relies on it and does not check again)."""
    with pytest.raises(SpecError) as caught:
        _runner(tmp_path, "imagination.real_data_share=0.5")
    (diagnostic,) = [d for d in caught.value.diagnostics if d.severity == "error"]
    assert diagnostic.code == "RWM210" and diagnostic.path == ("imagination", "real_data_share")
    assert "imagination.steps_per_iteration (4) must equal ppo.num_steps_per_env (24)" in diagnostic.message


def test_real_data_slots():
    assert real_data_slots(0.0, 100) == 0
    assert real_data_slots(0.2, 100) == 25
    assert real_data_slots(0.5, 100) == 100
