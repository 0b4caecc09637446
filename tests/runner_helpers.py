"""A dummy VecEnv and a hand-built plan for the runner tests (tests/test_runtime_*.py): no simulator, no spec."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import torch  # noqa: E402
from tensordict import TensorDict  # noqa: E402

from rwmspec.plan import (  # noqa: E402
    ObservationGroupPlan,
    ObservationTermPlan,
    Plan,
    RobotPlan,
    SimPlan,
    TermPlan,
)
from rwmspec.spec.model import (  # noqa: E402
    ExperimentSpec,
    LoggingSpec,
    PolicySpec,
    PpoSpec,
    RunnerSpec,
    UpstreamQuirksSpec,
    VisualizeSpec,
)
from rwmspec_runtime.runner import Runner  # noqa: E402
from rwmspec_runtime.seeding import seed_everything  # noqa: E402

POLICY_DIM, CRITIC_DIM, ACTIONS = 6, 8, 3
# tiny networks: a second intra-op thread only spins against the other processes sharing the CPU
torch.set_num_threads(1)


def _group(name: str, dim: int) -> ObservationGroupPlan:
    return ObservationGroupPlan(
        name=name, dim=dim, terms=(ObservationTermPlan(name="state", kind="dummy", dim=dim, start=0),)
    )


def make_plan(
    *,
    max_iterations: int = 2,
    num_envs: int = 4,
    seed: int = 7,
    save_interval: int = 1,
    steps: tuple[str, ...] = ("collect", "update_policy"),
    **runner_kw,
) -> Plan:
    """A small init-stage plan for ``DummyEnv`` (2 mini-batches, 8 steps per env, tiny networks)."""
    return Plan(
        schema_version=1,
        spec_file="/nonexistent/dummy.toml",
        experiment=ExperimentSpec(name="dummy", stage="init", seed=seed),
        run_name="init",
        robot=RobotPlan(name="dummy", joint_names=("a", "b", "c"), default_joint_pos=(0.0, 0.0, 0.0), base_body="base"),
        sim=SimPlan(
            backend="dummy", num_envs=num_envs, device="cpu", physics_dt=0.01, decimation=2, episode_length_s=0.4
        ),
        commands=(),
        actions=(TermPlan(name="joint_pos", kind="joint_position", dim=ACTIONS),),
        events=(),
        terminations=(TermPlan(name="time_out", kind="time_out", mode="time_out"),),
        rewards=(TermPlan(name="track", kind="track_lin_vel_xy_exp", weight=1.0),),
        observations={"policy": _group("policy", POLICY_DIM), "critic": _group("critic", CRITIC_DIM)},
        world_model=None,
        imagination=None,
        ppo=PpoSpec(num_steps_per_env=8, num_learning_epochs=2, num_mini_batches=2),
        policy=PolicySpec(
            actor_hidden_dims=[16, 16],
            critic_hidden_dims=[16, 16],
            actor_observations=["policy"],
            critic_observations=["critic"],
        ),
        runner=RunnerSpec(max_iterations=max_iterations, save_interval=save_interval, **runner_kw),
        logging=LoggingSpec(writers=["tensorboard"], console="compact"),
        visualize=VisualizeSpec(),
        quirks=UpstreamQuirksSpec(),
        steps=steps,
    )


class DummyEnv:
    """rsl-rl-lib 5.x VecEnv with random observations; reward favours actions near the first policy inputs.

    Episodes last ``max_episode_length`` steps (time-outs); an env whose action norm exceeds 3 "falls".
    """

    def __init__(self, num_envs: int = 4, max_episode_length: int = 20, nan_after: int | None = None) -> None:
        self.num_envs, self.num_actions, self.device, self.cfg = num_envs, ACTIONS, "cpu", None
        self.max_episode_length = max_episode_length
        self.episode_length_buf = torch.zeros(num_envs, dtype=torch.long)
        self.nan_after = nan_after
        self.steps = 0
        self._obs = self._sample()

    def _sample(self) -> TensorDict:
        return TensorDict(
            {"policy": torch.randn(self.num_envs, POLICY_DIM), "critic": torch.randn(self.num_envs, CRITIC_DIM)},
            batch_size=[self.num_envs],
        )

    def get_observations(self) -> TensorDict:
        return self._obs

    def step(self, actions: torch.Tensor):
        self.steps += 1
        target = self._obs["policy"][:, :ACTIONS]
        rewards = torch.exp(-((actions - target) ** 2).sum(-1))
        self.episode_length_buf += 1
        time_outs = self.episode_length_buf >= self.max_episode_length
        fell = actions.norm(dim=-1) > 3.0
        dones = time_outs | fell
        self.episode_length_buf[dones] = 0
        self._obs = self._sample()
        if self.nan_after is not None and self.steps > self.nan_after:
            self._obs["policy"][0, 0] = float("nan")
        extras = {"time_outs": time_outs, "log": {"Episode_Reward/track": rewards.mean(), "fell": fell.float().mean()}}
        return self._obs, rewards, dones.long(), extras


def train(tmp_path: Path, plan: Plan | None = None, env: DummyEnv | None = None, **kw) -> Runner:
    """Seed, make the env, train: the order `rwmspec run` uses."""
    plan = plan or make_plan()
    seed_everything(plan.experiment.seed)
    runner = Runner(plan, env or DummyEnv(plan.sim.num_envs), tmp_path, device="cpu", log=lambda _: None, **kw)
    runner.learn()
    return runner
