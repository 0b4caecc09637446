"""The generic runner on a dummy VecEnv: steps from the plan, checkpoints, metrics, TensorBoard, determinism.

``make_plan``, ``DummyEnv`` and ``train`` live in ``runner_helpers`` (shared with the other runtime tests).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import attrs
import pytest

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import torch  # noqa: E402

from rwmspec import hookimpl  # noqa: E402
from rwmspec.diagnostics import SpecError  # noqa: E402
from rwmspec.manager import Registry, build_registry  # noqa: E402
from rwmspec.types import StepDef  # noqa: E402
from rwmspec_runtime import checkpoints  # noqa: E402
from rwmspec_runtime.runner import Runner  # noqa: E402
from rwmspec_runtime.steps import Step  # noqa: E402

from runner_helpers import DummyEnv, make_plan, train  # noqa: E402


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


def registry_with_steps(**steps: type[Step]) -> Registry:
    """The installed plugins plus an inline plugin registering ``steps`` (name -> class of this module)."""

    class _Steps:
        @hookimpl
        def rwmspec_runner_steps(self):
            for name, cls in steps.items():
                yield StepDef(name=name, description="test step", step=f"{__name__}:{cls.__name__}")

    return build_registry(extra_plugins=[("test_steps", _Steps())])


def test_registered_step_runs_in_plan_order_and_owns_checkpoint_state(tmp_path):
    plan = make_plan(steps=("collect", "count_transitions", "update_policy"))
    registry = registry_with_steps(count_transitions=_CountingStep)
    runner = Runner(plan, DummyEnv(), tmp_path, device="cpu", log=lambda _: None, registry=registry)
    runner.learn()
    assert runner.steps[1].seen == 2 * plan.ppo.num_steps_per_env
    ckpt = checkpoints.load_checkpoint(tmp_path / "model_2.pt")
    assert ckpt["count_state_dict"] == {"seen": 16}
    resumed = Runner(
        attrs.evolve(plan, runner=attrs.evolve(plan.runner, max_iterations=3)),
        DummyEnv(),
        tmp_path,
        device="cpu",
        log=lambda _: None,
        registry=registry,
    )
    resumed.restore(ckpt)
    resumed.learn()
    assert resumed.steps[1].seen == 24 and resumed.iteration == 3


class _ImagineStub(Step):
    """Stands for ``imagine``: a step that brings the env PPO learns from (here a second dummy env)."""

    name = "imagine_stub"

    def __init__(self, runner):
        super().__init__(runner)
        self.policy_env = DummyEnv()
        self.policy_env.num_steps_per_env = runner.plan.ppo.num_steps_per_env

    def run(self, ctx):
        ctx.scratch["storage_steps"] = self.runner.alg.storage.step


def test_policy_acts_without_filling_storage_when_the_plan_imagines(tmp_path):
    """With an ``imagine`` step the real rollout only acts; PPO storage stays empty for the imagination step."""

    registry = registry_with_steps(imagine_stub=_ImagineStub)
    plan = make_plan(steps=("collect", "imagine_stub"))
    runner = Runner(plan, DummyEnv(), tmp_path, device="cpu", log=lambda _: None, registry=registry)
    runner.learn()
    assert runner.alg.storage.step == 0


def test_policy_from_loads_weights_but_not_the_iteration_count(tmp_path):
    source = train(tmp_path / "a")
    target = Runner(make_plan(seed=99), DummyEnv(), tmp_path / "b", device="cpu", log=lambda _: None)
    target.load_policy(checkpoints.load_checkpoint(tmp_path / "a" / "model_2.pt"))
    assert target.iteration == 0
    for key, value in source.alg.get_policy().state_dict().items():
        assert torch.equal(target.alg.get_policy().state_dict()[key], value), key
