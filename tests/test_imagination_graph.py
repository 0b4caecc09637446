"""GraphedStep: the imagined step compiled and replayed from a CUDA graph gives the eager step's numbers (needs a GPU;
skipped elsewhere; run on the lent H100 with ``pytest tests/test_imagination_graph.py``)."""

from __future__ import annotations

import os

import attrs
import pytest
import torch
from tensordict import TensorDict

from rwmspec_runtime.imagination.env import ImaginationEnv
from rwmspec_runtime.imagination.graph import GraphedStep
from rwmspec_runtime.training import compile_spec

from helpers import SPECS, TINY
from world_model_helpers import system_with_smooth_data

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")

N = 64


def _env(seed: int = 0) -> ImaginationEnv:
    plan, _ = compile_spec(SPECS / "anymal_d_finetune.toml", [TINY])
    # every env ends every other step; one step per iteration sizes the seed pool at its minimum (64)
    plan = attrs.evolve(
        plan,
        imagination=attrs.evolve(
            plan.imagination, num_envs=N, max_episode_length=2, steps_per_iteration=1, push_interval_range=(2, 5)
        ),
        world_model=attrs.evolve(plan.world_model, ensemble_size=3),
    )
    system = system_with_smooth_data(plan, buffer_envs=8, steps=40, seed=seed, device="cuda")
    env = ImaginationEnv.from_plan(plan, system, seed=seed)
    env.reset()
    return env


def test_replays_give_the_eager_steps_and_recapture_when_the_pool_grows():
    actions = torch.randn(12, N, 12, generator=torch.Generator(device="cuda").manual_seed(3), device="cuda")
    runs = {}
    with torch.inference_mode():
        for mode in ("eager", "graph"):
            env = _env()
            step = GraphedStep(env) if mode == "graph" else env.rollout_step
            out = []
            for t, a in enumerate(actions):
                if t == 6:  # over 3 x 64 episodes (time-outs and the untrained head's falls) started from a
                    # pool of 64: the refill doubles past that, in new tensors
                    assert env.seed_pool_size == 64
                    used = env.refill_seeds()
                    assert used > 3 * N and env.seed_pool_size == 2 * used
                obs, rewards, dones, _ = step(a)
                out.append((rewards.clone(), dones.clone(), obs, env.state.clone()))
            # the returned observations are the caller's: the next replays left them as they were
            assert all(not torch.equal(out[t][2]["policy"], out[t + 1][2]["policy"]) for t in range(len(out) - 1))
            runs[mode] = out
            if mode == "graph":
                assert step.captures == 2, "a capture at the start and one after the pool moved"
    for eager, graph in zip(runs["eager"], runs["graph"], strict=True):
        for e, g in zip(eager, graph, strict=True):
            e, g = (e["policy"], g["policy"]) if isinstance(e, TensorDict) else (e, g)
            torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)
