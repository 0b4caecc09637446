"""`rwmspec eval`: tracking fractions equal the mean unweighted per-step term values; falls and lengths counted."""

from __future__ import annotations

import pytest
import torch

import rwmspec_plugins.embedded.env as embedded_env
from rwmspec_runtime.evaluation import evaluate, format_report
from rwmspec_runtime.training import TrainRequest, train

from helpers import SPECS, TINY

SPEC = SPECS / "anymal_d_init.toml"
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train(
        TrainRequest(
            spec=SPEC, overlays=(TINY,), runs_dir=tmp_path_factory.mktemp("runs"), max_iterations=1, console="compact"
        ),
        log=lambda _: None,
    )


def test_tracking_is_the_mean_unweighted_term_value(run, monkeypatch):
    """Record what the env's reward function computes every step, and compare with what eval reports."""
    recorded: list[dict[str, torch.Tensor]] = []
    real = embedded_env.call_reward_terms

    def recording(view, terms, fns):
        weighted = real(view, terms, fns)
        recorded.append({k: v.clone() for k, v in weighted.items()})
        return weighted

    monkeypatch.setattr(embedded_env, "call_reward_terms", recording)
    report = evaluate(run, num_envs=3, steps=25)
    plan = run.plan()
    assert len(recorded) == 25
    for kind, key in (("track_lin_vel_xy_exp", "lin_vel_xy"), ("track_ang_vel_z_exp", "ang_vel_z")):
        term = next(t for t in plan.rewards if t.kind == kind)
        raw = torch.stack([r[term.name] for r in recorded]) / (term.weight * plan.sim.control_dt)
        assert report["tracking"][key] == pytest.approx(raw.mean().item(), rel=1e-4)
    assert report["episodes"] >= 3 and report["steps"] == 25
    assert run.file("eval.json").is_file()
    text = format_report(report)
    assert "tracking lin vel xy:" in text and "fall rate:" in text


class _ScriptedEnv:
    """Envs that fall at the 4th step of every episode; each tracking term's raw value is 0.5 at every step.

    Logs follow the VecEnv contract (Isaac Lab semantics): at resets, ``Episode_Reward/<term>`` is the mean weighted
    episode sum of the reset envs divided by the episode length in seconds.
    """

    def __init__(self, plan, num_envs: int) -> None:
        self.plan, self.num_envs, self.device = plan, num_envs, "cpu"
        self.num_actions = plan.action_dim
        self.max_episode_length = plan.sim.max_episode_length
        self.episode_length_buf = torch.zeros(num_envs, dtype=torch.long)
        self.sums = torch.zeros(num_envs)
        self.tracked = [t for t in plan.rewards if t.kind.startswith("track_")]
        self.closed = False

    def get_observations(self):
        from tensordict import TensorDict

        return TensorDict(
            {g: torch.zeros(self.num_envs, grp.dim) for g, grp in self.plan.observations.items()},
            batch_size=[self.num_envs],
        )

    def step(self, actions):
        self.episode_length_buf += 1
        # raw value 0.5 per step: weighted 0.5 * weight * dt; one running sum per term is the same up to the weight
        self.sums += 0.5 * self.plan.sim.control_dt
        time_outs = self.episode_length_buf >= self.max_episode_length
        fell = (self.episode_length_buf == 4) & ~time_outs
        dones = fell | time_outs
        log = {}
        if dones.any():
            for t in self.tracked:
                mean_sum = float((self.sums[dones] * t.weight).mean())
                log[f"Episode_Reward/{t.name}"] = mean_sum / self.plan.sim.episode_length_s
            self.sums[dones] = 0.0
            self.episode_length_buf[dones] = 0
        return self.get_observations(), torch.zeros(self.num_envs), dones, {"time_outs": time_outs, "log": log}

    def close(self):
        self.closed = True


def test_falls_lengths_and_tracking_are_counted_per_env_episode(run, monkeypatch):
    made = []

    def make_scripted(plan, registry, *, device, num_envs=None):
        made.append(_ScriptedEnv(plan, num_envs))
        return made[-1]

    monkeypatch.setattr("rwmspec_runtime.evaluation.make_env", make_scripted)
    report = evaluate(run, num_envs=3, steps=10)
    # per env: falls at steps 4 and 8, then the episode running at step 10 is cut off (a time-out, not a fall)
    assert report["falls"] == 6 and report["episodes"] == 9
    assert report["fall_rate"] == pytest.approx(6 / 9)
    assert report["episodes_ended"] == 6 and report["mean_episode_length"] == 4.0
    assert report["tracking"] == {"lin_vel_xy": pytest.approx(0.5), "ang_vel_z": pytest.approx(0.5)}
    assert made[0].closed and made[0].plan.experiment.seed == run.plan().experiment.seed + 1
