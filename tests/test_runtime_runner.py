"""The generic runner on a dummy VecEnv: steps from the plan, checkpoints, metrics, TensorBoard, determinism.

``make_plan`` and ``DummyEnv`` are shared with the other tests/test_runtime_*.py files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import attrs
import pytest

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import torch  # noqa: E402
from tensordict import TensorDict  # noqa: E402

from rwmspec.diagnostics import SpecError  # noqa: E402
from rwmspec.plan import (  # noqa: E402
    STAGE_STEPS,
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
from rwmspec_runtime import checkpoints  # noqa: E402
from rwmspec_runtime.runner import Runner  # noqa: E402
from rwmspec_runtime.seeding import seed_everything  # noqa: E402
from rwmspec_runtime.steps import STEP_TABLE, Step, register_step  # noqa: E402

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
    steps: tuple[str, ...] = STAGE_STEPS["init"],
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


def test_two_iterations_write_checkpoints_pointer_metrics_and_events(tmp_path):
    runner = train(tmp_path)
    assert runner.iteration == 2
    assert sorted(p.name for p in checkpoints.list_checkpoints(tmp_path)) == ["model_1.pt", "model_2.pt"]
    assert (tmp_path / "latest").read_text().strip() == "model_2.pt"
    assert not (tmp_path / "latest").is_symlink()
    assert list(tmp_path.glob("events.out.tfevents.*")), "TensorBoard event file missing"
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in lines] == [1, 2]
    for tag in (
        "Loss/value",
        "Loss/surrogate",
        "Loss/entropy",
        "Policy/mean_std",
        "Perf/total_fps",
        "Train/mean_step_reward",
        "Episode_Reward/track",
        "Episode/fell",
    ):
        assert tag in lines[-1], tag
    assert (tmp_path / "learning_curve.png").stat().st_size > 1000
    ckpt = checkpoints.load_checkpoint(tmp_path / "model_2.pt")
    assert ckpt["iter"] == 2
    assert ckpt["rwmspec"]["plan"]["experiment"]["seed"] == 7
    assert ckpt["rwmspec"]["steps"] == ["collect", "update_policy"]


def test_tensorboard_tags(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tmp_path, plan=make_plan(max_iterations=3, num_envs=8))
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {
        "Train/mean_reward",
        "Train/mean_episode_length",
        "Loss/value",
        "Perf/total_fps",
        "Policy/mean_std",
        "Episode_Reward/track",
    } <= tags
    assert [e.step for e in acc.Scalars("Loss/value")] == [1, 2, 3]


def _first_iteration(tmp_path: Path, seed: int) -> dict:
    train(tmp_path, plan=make_plan(max_iterations=1, seed=seed))
    return json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])


def test_same_seed_same_first_iteration_on_cpu(tmp_path):
    a = _first_iteration(tmp_path / "a", seed=3)
    b = _first_iteration(tmp_path / "b", seed=3)
    c = _first_iteration(tmp_path / "c", seed=4)
    for key in ("Train/mean_step_reward", "Loss/value", "Loss/surrogate"):
        assert a[key] == b[key], key
    assert a["Train/mean_step_reward"] != c["Train/mean_step_reward"]


def test_unknown_step_fails_at_start_listing_the_known_ones(tmp_path):
    plan = make_plan(steps=("collect", "world_model_dreams", "update_policy"))
    with pytest.raises(SpecError) as err:
        Runner(plan, DummyEnv(), tmp_path, device="cpu")
    (diag,) = err.value.diagnostics
    assert diag.code == "RWM508"
    assert "'world_model_dreams'" in diag.message and "collect, imagine, store_transitions" in diag.message


def test_nan_observation_stops_with_a_diagnostic_naming_the_group(tmp_path):
    plan = make_plan()
    with pytest.raises(SpecError) as err:
        train(tmp_path, plan=plan, env=DummyEnv(nan_after=3))
    (diag,) = err.value.diagnostics
    assert diag.code == "RWM506" and "observation group 'policy'" in diag.message


class _CountingStep(Step):
    """A registered extra step: runs after collect, sees the rollout, saves and restores its own state."""

    name = "count_transitions"

    def __init__(self, runner):
        super().__init__(runner)
        self.seen = 0

    def run(self, ctx):
        self.seen += len(ctx.rollout)
        ctx.metrics["Test/seen"] = float(self.seen)

    def state_dict(self):
        return {"count_state_dict": {"seen": self.seen}}

    def load_state_dict(self, checkpoint):
        self.seen = checkpoint["count_state_dict"]["seen"]


@pytest.fixture
def counting_step():
    register_step("count_transitions", _CountingStep)
    yield
    STEP_TABLE.pop("count_transitions")


def test_registered_step_runs_in_plan_order_and_owns_checkpoint_state(tmp_path, counting_step):
    plan = make_plan(steps=("collect", "count_transitions", "update_policy"))
    runner = train(tmp_path, plan=plan)
    assert runner.steps[1].seen == 2 * plan.ppo.num_steps_per_env
    ckpt = checkpoints.load_checkpoint(tmp_path / "model_2.pt")
    assert ckpt["count_state_dict"] == {"seen": 16}
    resumed = Runner(
        attrs.evolve(plan, runner=attrs.evolve(plan.runner, max_iterations=3)),
        DummyEnv(),
        tmp_path,
        device="cpu",
        log=lambda _: None,
    )
    resumed.restore(ckpt)
    resumed.learn()
    assert resumed.steps[1].seen == 24 and resumed.iteration == 3


def test_policy_acts_without_filling_storage_when_the_plan_imagines(tmp_path):
    """With an ``imagine`` step the real rollout only acts; PPO storage stays empty for the imagination step."""

    class _Imagine(Step):
        name = "imagine"

        def run(self, ctx):
            ctx.scratch["storage_steps"] = self.runner.alg.storage.step

    register_step("imagine", _Imagine)
    try:
        runner = Runner(make_plan(steps=("collect", "imagine")), DummyEnv(), tmp_path, device="cpu", log=lambda _: None)
        runner.learn()
        assert runner.alg.storage.step == 0
    finally:
        STEP_TABLE.pop("imagine")


def test_policy_from_loads_weights_but_not_the_iteration_count(tmp_path):
    source = train(tmp_path / "a")
    target = Runner(make_plan(seed=99), DummyEnv(), tmp_path / "b", device="cpu", log=lambda _: None)
    target.load_policy(checkpoints.load_checkpoint(tmp_path / "a" / "model_2.pt"))
    assert target.iteration == 0
    for key, value in source.alg.get_policy().state_dict().items():
        assert torch.equal(target.alg.get_policy().state_dict()[key], value), key
