"""`rwmspec eval RUN`: roll a run's deterministic policy in the real backend and measure how well it walks.

Reported (and written to ``RUN/eval.json``):

- tracking fractions: the mean per-step value of the unweighted ``track_lin_vel_xy_exp`` and
  ``track_ang_vel_z_exp`` reward terms, each 1.0 per step for perfect tracking (so the mean is a fraction);
- fall rate: episodes ended by a non-time-out termination, divided by all env-episodes of the evaluation;
- mean episode length (steps and seconds) of the episodes that ended on their own (by a fall or a time-out).

The run's saved plan is used (not the current spec file); commands are the env's own random commands.

Term means come from the env's episode log (the VecEnv contract, Isaac Lab semantics): when envs reset,
``extras["log"]["Episode_Reward/<term>"]`` is the mean weighted episode sum of the reset envs divided by the
episode length in seconds. Before the last step every env's episode counter is set to one step short of the
time-out, so every env-episode ends, and is logged, inside the evaluation; those forced cut-offs count as
episodes but not as episode lengths.
"""

from __future__ import annotations

import datetime
from typing import Any

import attrs
import torch

from rwmspec.manager import get_registry
from rwmspec_runtime import checkpoints
from rwmspec_runtime.ppo import build_actor
from rwmspec_runtime.rundir import EVAL_FILE, RunDir
from rwmspec_runtime.seeding import seed_everything
from rwmspec_runtime.training import make_env

#: reward kinds whose unweighted per-step value is a tracking quality in [0, 1]
TRACKING_KINDS = {"track_lin_vel_xy_exp": "lin_vel_xy", "track_ang_vel_z_exp": "ang_vel_z"}
DEFAULT_MAX_ENVS = 64


def evaluate(
    run: RunDir,
    *,
    num_envs: int | None = None,
    steps: int = 1000,
    checkpoint: str = checkpoints.LATEST,
    seed: int | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Evaluate ``run``'s policy for ``steps`` steps of ``num_envs`` envs; writes and returns the report."""
    if steps < 1:
        raise ValueError(f"--steps must be >= 1, got {steps}")
    plan = run.require().plan()
    ckpt_path = checkpoints.resolve_checkpoint(run.path, checkpoint)
    actor = build_actor(plan, checkpoints.load_checkpoint(ckpt_path)["actor_state_dict"], device)
    n = num_envs or min(plan.sim.num_envs, DEFAULT_MAX_ENVS)
    eval_seed = plan.experiment.seed + 1 if seed is None else seed
    # another seed than training: commands, pushes and resets come in an order the policy has not trained on
    eval_plan = attrs.evolve(
        plan,
        experiment=attrs.evolve(plan.experiment, seed=eval_seed),
        sim=attrs.evolve(plan.sim, num_envs=n, device=device),
    )
    tracked = [t for t in plan.rewards if t.kind in TRACKING_KINDS and t.weight != 0.0]
    term_sums = {t.name: 0.0 for t in tracked}  # weighted sums over every env-step
    seed_everything(eval_seed)
    env = make_env(eval_plan, get_registry(), device=device, num_envs=n)
    try:
        episode_length = torch.zeros(n, dtype=torch.long)
        lengths: list[int] = []
        falls = episodes = 0
        obs = env.get_observations().to(device)
        with torch.inference_mode():
            for step in range(steps):
                if step == steps - 1:
                    env.episode_length_buf = torch.full_like(env.episode_length_buf, int(env.max_episode_length) - 1)
                obs, _, dones, extras = env.step(actor(obs).to(env.device))
                obs = obs.to(device)
                done = dones.bool().cpu()
                count = int(done.sum())
                log = extras.get("log") or {}
                for name in term_sums:
                    if count:
                        term_sums[name] += float(log[f"Episode_Reward/{name}"]) * plan.sim.episode_length_s * count
                time_outs = extras.get("time_outs", torch.zeros_like(done)).bool().cpu()
                episode_length += 1
                fell = done & ~time_outs
                falls += int(fell.sum())
                episodes += count
                ended = fell if step == steps - 1 else done
                lengths.extend(episode_length[ended].tolist())
                episode_length[done] = 0
    finally:
        close = getattr(env, "close", None)
        if callable(close):
            close()

    env_steps = n * steps
    tracking = {
        TRACKING_KINDS[t.kind]: term_sums[t.name] / (t.weight * plan.sim.control_dt * env_steps) for t in tracked
    }
    mean_length = sum(lengths) / len(lengths) if lengths else None
    report = {
        "run": str(run.path),
        "checkpoint": ckpt_path.name,
        "num_envs": n,
        "steps": steps,
        "seed": eval_seed,
        "tracking": tracking,
        "fall_rate": falls / episodes,
        "falls": falls,
        "episodes": episodes,
        "episodes_ended": len(lengths),
        "mean_episode_length": mean_length,
        "mean_episode_length_s": None if mean_length is None else mean_length * plan.sim.control_dt,
        "max_episode_length": plan.sim.max_episode_length,
        "time": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    run.write_json(EVAL_FILE, report)
    return report


def format_report(report: dict[str, Any]) -> str:
    """The console table of an evaluation report."""
    rows = [
        ("run", report["run"]),
        ("checkpoint", report["checkpoint"]),
        ("envs x steps", f"{report['num_envs']} x {report['steps']}"),
    ]
    for key, label in (("lin_vel_xy", "tracking lin vel xy"), ("ang_vel_z", "tracking ang vel z")):
        value = report["tracking"].get(key)
        rows.append((label, "n/a (no such reward term)" if value is None else f"{value:.1%}"))
    rows.append(("fall rate", f"{report['fall_rate']:.1%} ({report['falls']} of {report['episodes']} episodes)"))
    length = report["mean_episode_length"]
    rows.append(
        (
            "mean episode length",
            "n/a (no episode ended on its own)"
            if length is None
            else f"{length:.1f} steps ({report['mean_episode_length_s']:.2f} s, "
            f"{report['episodes_ended']} episodes ended; max {report['max_episode_length']})",
        )
    )
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:>{width}}: {value}" for label, value in rows) + f"\n(written to {EVAL_FILE})"
