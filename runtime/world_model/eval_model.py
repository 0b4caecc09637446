"""`rwmspec eval-model RUN`: how well a run's world model predicts fresh real trajectories (rwm_method §3.7).

The run's saved plan and one checkpoint give both the world model (``WorldModelSystem.from_checkpoint``,
fingerprint-checked) and the deterministic policy. The policy drives K fresh envs of the run's backend (the env's
own random commands, another seed than training) and every step's normalized ``system_*`` groups go into a
``ReplayBuffer`` exactly as the pretrain stage's ``store_transitions`` stores them (pre-reset terminal states,
``done``/``time_out`` flags). From it come trajectories of L steps that never cross an episode boundary, one per env
where possible, and on them ``evaluate_world_model`` measures the relative autoregressive error e (plain, noised,
per state block), contact and termination precision/recall along the rollout and the epistemic disagreement.

How many steps are collected: L + max(M, L // 4), M the history horizon. The margin lets each env's window start at
a random offset (so the context is not always the reset pose) and keeps envs whose policy falls only after L steps.
Every episode counter is set to 0 before the first step, so no env can time out inside a window (Isaac Lab's
training envs start at random episode lengths); the collection is cut to the episode length when that is shorter.

Written: ``RUN/eval_model.json`` (atomically) and ``RUN/eval_model/*.png`` (``--out DIR`` moves both): one figure per
state block with true vs predicted trajectories (physical units) and the ensemble members' spread, and the error vs
horizon curves (``rwmspec_runtime.world_model.plots``).
"""

from __future__ import annotations

import datetime
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import torch
from tensordict import TensorDict

from rwmspec.manager import get_registry
from rwmspec_runtime import checkpoints
from rwmspec_runtime.errors import runtime_error
from rwmspec_runtime.rundir import RunDir
from rwmspec_runtime.world_model.evaluation import (
    ModelEvaluation,
    context_memory,
    evaluate_world_model,
    state_block_slices,
)
from rwmspec_runtime.world_model.protocol import WorldModel
from rwmspec_runtime.world_model.replay_buffer import ReplayBuffer, Windows, applied_action_pairs
from rwmspec_runtime.world_model.system_data import SystemNormalizer, observed_system_groups

if TYPE_CHECKING:
    from rwmspec.plan import Plan
    from rwmspec_runtime.world_model.system import WorldModelSystem

REPORT_FILE = "eval_model.json"
PLOT_DIR = "eval_model"
#: noise levels of the noised error (rwm_method §3.7, as the pretrain stage logs them)
NOISE_SIGMAS = (0.1, 0.2, 0.4, 0.8)
#: default cap on the held-out envs (one trajectory each); --num-trajectories overrides it
DEFAULT_MAX_TRAJECTORIES = 64
#: trajectories drawn in the plots
PLOTTED_TRAJECTORIES = 3
#: candidate windows drawn per wanted trajectory when picking one window per env
_CANDIDATES_PER_TRAJECTORY = 8


@dataclass
class CollectionStats:
    """What a ``fill_buffer`` call rolled."""

    steps: int  #: env steps per env
    num_envs: int
    terminations: int  #: episodes ended by a failure (falls)
    time_outs: int
    seconds: float


def report_horizons(max_horizon: int) -> list[int]:
    """Horizons of the report table: 1, 50, 100, then every 100 steps, up to ``max_horizon``, and ``max_horizon``."""
    candidates = [1, 50, *range(100, max_horizon + 1, 100), max_horizon]
    return sorted({h for h in candidates if 1 <= h <= max_horizon})


def margin_steps(length: int, history_horizon: int) -> int:
    """Extra steps collected beyond one window (see the module docstring)."""
    return max(history_horizon, length // 4)


def fill_buffer(
    env: Any,
    act: Callable[[TensorDict], torch.Tensor],
    normalizer: SystemNormalizer,
    buffer: ReplayBuffer,
    steps: int,
    groups: tuple[str, ...],
) -> CollectionStats:
    """Step ``env`` ``steps`` times with ``act(obs) -> actions [N, A]`` and append every step's normalized system
    groups to ``buffer`` (pre-reset terminal observations where an episode ended, as ``store_transitions`` does)."""
    start = time.perf_counter()
    terminations = time_outs = 0
    obs = env.get_observations()
    with torch.inference_mode():
        for _ in range(steps):
            obs, _, dones, extras = env.step(act(obs).to(env.device))
            observed = observed_system_groups(obs, dones, extras, groups)
            entry = normalizer.entry(observed)
            timed_out = extras.get("time_outs")
            buffer.add(
                entry.state,
                entry.action,
                entry.contact,
                entry.termination,
                entry.extension,
                done=dones,
                time_out=timed_out,
            )
            done = dones.to(torch.bool).reshape(-1)
            timed_out = (
                torch.zeros_like(done)
                if timed_out is None
                else timed_out.to(device=done.device, dtype=torch.bool).reshape(-1)
            )
            terminations += int((done & ~timed_out).sum())
            time_outs += int((done & timed_out).sum())
    return CollectionStats(steps, buffer.num_envs, terminations, time_outs, time.perf_counter() - start)


def select_windows(windows: Windows, index: torch.Tensor) -> Windows:
    """The windows at ``index`` (``[n]`` long)."""
    index = index.to(windows.state.device)
    return Windows(
        state=windows.state[index],
        action=windows.action[index],
        contact=windows.contact[index],
        termination=windows.termination[index],
        extension=windows.extension[index],
        env_ids=windows.env_ids[index],
        slots=windows.slots[index],
    )


def spread_trajectories(
    buffer: ReplayBuffer, length: int, count: int, generator: torch.Generator | None = None
) -> Windows:
    """Up to ``count`` boundary-free windows of ``length`` steps, one per env first (at a random valid start), then
    further windows of envs already used: overlapping windows of one env are nearly the same sample."""
    candidates = buffer.trajectories(length, count * _CANDIDATES_PER_TRAJECTORY, generator)
    seen: set[int] = set()
    first, rest = [], []
    for i, env_id in enumerate(candidates.env_ids.tolist()):
        (rest if env_id in seen else first).append(i)
        seen.add(env_id)
    chosen = torch.tensor((first + rest)[:count], dtype=torch.long)
    return select_windows(candidates, chosen)


@torch.no_grad()
def member_rollout(model: WorldModel, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The ensemble-mean rollout of ``evaluation.autoregressive_rollout`` that also keeps every member's prediction.

    :param state: ``[B, T, S]`` buffer-layout states (normalized); ``action`` ``[B, T, A]`` likewise.
    :return: predicted ``[B, T, S]`` (the true context for t < M, the fed-back ensemble mean after) and the member
        predictions ``[K, B, T, S]`` (each member's one-step prediction from the same fed-back history, asked for
        with ``step(members=...)`` on the same memory; nan for t < M).
    """
    M, T = model.history_horizon, state.shape[1]
    pairs_state, pairs_action = applied_action_pairs(state, action)
    predicted = state.clone()
    members = state.new_full((model.ensemble_size, *state.shape), math.nan)
    was_training = model.training
    model.eval()
    memory = context_memory(model, pairs_state, pairs_action)
    for t in range(M, T):
        fed, applied = predicted[:, t - 1], pairs_action[:, t - 1]
        for k in range(model.ensemble_size):
            ids = torch.full((state.shape[0],), k, dtype=torch.long, device=state.device)
            members[k, :, t] = model.step(fed, applied, memory, ids)[0].next_state.to(members.dtype)
        mean, memory = model.step(fed, applied, memory)
        predicted[:, t] = mean.next_state.to(predicted.dtype)
    model.train(was_training)
    return predicted, members


def _pr(pr: Any) -> dict[str, Any] | None:
    if pr is None:
        return None
    return {
        "precision": _finite(pr.precision),
        "recall": _finite(pr.recall),
        "true_positive": pr.true_positive,
        "false_positive": pr.false_positive,
        "false_negative": pr.false_negative,
    }


def _finite(x: float) -> float | None:
    """JSON has no nan: undefined scores are null."""
    return None if x is None or not math.isfinite(x) else float(x)


def _at(per_step: torch.Tensor, horizons: list[int]) -> dict[str, float]:
    return {str(h): float(per_step[h - 1]) for h in horizons}


def evaluation_report(result: ModelEvaluation, horizons: list[int], history_horizon: int) -> dict[str, Any]:
    """The JSON-ready numbers of one ``evaluate_world_model`` result."""
    epistemic = result.rollout.epistemic[:, history_horizon:] if result.rollout is not None else None
    return {
        "error": result.error,
        "error_per_step": [float(v) for v in result.error_per_step],
        "error_at": _at(result.error_per_step, horizons),
        "noised": {f"{s:g}": v for s, v in result.noised.items()},
        "noised_at": {f"{s:g}": _at(steps, horizons) for s, steps in result.noised_per_step.items()},
        "blocks": dict(result.blocks),
        "blocks_at": {name: _at(steps, horizons) for name, steps in result.blocks_per_step.items()},
        "contact": _pr(result.contact),
        "termination": _pr(result.termination),
        "epistemic_mean": None if epistemic is None else float(epistemic.float().mean()),
    }


def _no_trajectory(run: RunDir, ckpt: Path, length: int, stats: CollectionStats, plan: Plan) -> Exception:
    return runtime_error(
        "RWM509",
        f"no held-out trajectory of {length} steps without an episode boundary: the policy of {ckpt.name} "
        f"fell in every one of {stats.num_envs} envs before {length} steps ({stats.terminations} falls in "
        f"{stats.steps} steps per env)",
        file=run.path,
        hint=f"evaluate a checkpoint whose policy walks (a later one, or train the run longer), or shorten the "
        f"trajectories with --length (at least world_model.history_horizon + 1 = "
        f"{plan.world_model.history_horizon + 1})",
    )


def evaluate_run_model(
    run: RunDir,
    *,
    checkpoint: str = checkpoints.LATEST,
    num_trajectories: int | None = None,
    length: int | None = None,
    seed: int | None = None,
    device: str = "cpu",
    out: str | Path | None = None,
    plots: bool = True,
) -> dict[str, Any]:
    """Evaluate ``run``'s world model on fresh real trajectories; writes the JSON report and plots, returns it."""
    from rwmspec_runtime.ppo import build_actor
    from rwmspec_runtime.seeding import seed_everything
    from rwmspec_runtime.training import make_env
    from rwmspec_runtime.world_model.system import WorldModelSystem

    plan = run.require().plan()
    ckpt_path = checkpoints.resolve_checkpoint(run.path, checkpoint)
    if plan.world_model is None:
        raise runtime_error(
            "RWM504",
            f"run {run.path} (stage '{plan.experiment.stage}') has no world model",
            file=run.path,
            hint="eval-model evaluates pretrain and finetune runs; for a policy-only run use `rwmspec eval RUN`",
        )
    wm = plan.world_model
    M = wm.history_horizon
    length = wm.train.eval_trajectory_length if length is None else length
    if length <= M:
        raise runtime_error(
            "RWM509",
            f"--length {length} leaves nothing to predict after the {M}-step context",
            file=run.path,
            hint=f"use --length of at least {M + 1}",
        )
    if length > plan.sim.max_episode_length:
        raise runtime_error(
            "RWM509",
            f"--length {length} exceeds the episode length of {plan.sim.max_episode_length} "
            "steps, so every trajectory would cross a time-out",
            file=run.path,
            hint=f"use --length of at most {plan.sim.max_episode_length}",
        )
    count = num_trajectories or min(wm.train.num_eval_trajectories, DEFAULT_MAX_TRAJECTORIES)
    if count < 1:
        raise ValueError(f"--num-trajectories must be >= 1, got {count}")
    eval_seed = plan.experiment.seed + 1 if seed is None else seed

    system = WorldModelSystem.from_checkpoint(plan, ckpt_path, num_envs=1, device=device)
    actor = build_actor(plan, checkpoints.load_checkpoint(ckpt_path)["actor_state_dict"], device)
    # another seed than training: commands, pushes and resets the policy has not seen in this order
    eval_plan = attrs.evolve(
        plan,
        experiment=attrs.evolve(plan.experiment, seed=eval_seed),
        sim=attrs.evolve(plan.sim, num_envs=count, device=device),
    )
    steps = min(length + margin_steps(length, M), plan.sim.max_episode_length)
    buffer = ReplayBuffer(
        count, steps, wm.state_dim, wm.action_dim, wm.contact_dim, wm.termination_dim, wm.extension_dim, device
    )
    seed_everything(eval_seed)
    env = make_env(eval_plan, get_registry(), device=device, num_envs=count)
    try:
        env.episode_length_buf = torch.zeros_like(env.episode_length_buf)
        stats = fill_buffer(env, lambda obs: actor(obs.to(device)), system.normalizer, buffer, steps, system.groups)
    finally:
        close = getattr(env, "close", None)
        if callable(close):
            close()
    if buffer.num_valid(length) == 0:
        raise _no_trajectory(run, ckpt_path, length, stats, plan)

    generator = torch.Generator(device=device).manual_seed(eval_seed)
    windows = spread_trajectories(buffer, length, count, generator)
    blocks = state_block_slices(plan.observations["system_state"])
    start = time.perf_counter()
    result = evaluate_world_model(system.model, windows, noise_sigmas=NOISE_SIGMAS, blocks=blocks, generator=generator)
    eval_seconds = time.perf_counter() - start
    horizons = report_horizons(length - M)

    out_dir = Path(out) if out is not None else run.path
    report: dict[str, Any] = {
        "run": str(run.path),
        "checkpoint": ckpt_path.name,
        "stage": plan.experiment.stage,
        "fingerprint": plan.fingerprint(),
        "architecture": wm.architecture,
        "ensemble_size": wm.ensemble_size,
        "history_horizon": M,
        "forecast_horizon": wm.forecast_horizon,
        "length": length,
        "trajectories": len(windows),
        "trajectories_requested": count,
        "distinct_envs": len(set(windows.env_ids.tolist())),
        "seed": eval_seed,
        "collection": {
            "num_envs": stats.num_envs,
            "steps": stats.steps,
            "falls": stats.terminations,
            "time_outs": stats.time_outs,
            "seconds": round(stats.seconds, 3),
        },
        "evaluation_seconds": round(eval_seconds, 3),
        "horizons": horizons,
        "noise_sigmas": list(NOISE_SIGMAS),
        **evaluation_report(result, horizons, M),
        "plots": [],
        "time": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    if plots:
        report["plots"] = [str(p) for p in _write_plots(plan, system, windows, result, out_dir / PLOT_DIR, ckpt_path)]
    checkpoints.atomic_write_text(out_dir / REPORT_FILE, json.dumps(report, indent=2, sort_keys=True) + "\n")
    report["report_file"] = str(out_dir / REPORT_FILE)
    return report


def _write_plots(
    plan: Plan, system: WorldModelSystem, windows: Windows, result: ModelEvaluation, directory: Path, ckpt_path: Path
) -> list[Path]:
    from rwmspec_runtime.world_model import plots

    shown = select_windows(windows, torch.arange(min(PLOTTED_TRAJECTORIES, len(windows))))
    predicted, members = member_rollout(system.model, shown.state, shown.action)
    norm = system.normalizer
    truth = norm.denormalize_state(shown.state).cpu()
    predicted = norm.denormalize_state(predicted).cpu()
    members = norm.denormalize_state(members).cpu()
    group = plan.observations["system_state"]
    blocks = [plots.StateBlock(t.name, slice(t.start, t.stop), tuple(t.labels)) for t in group.terms]
    title = f"{Path(plan.spec_file).name} {ckpt_path.parent.name}/{ckpt_path.name}"
    paths = plots.write_trajectory_plots(
        directory,
        blocks,
        truth,
        predicted,
        members,
        history_horizon=plan.world_model.history_horizon,
        dt=plan.sim.control_dt,
        title=title,
    )
    paths.append(
        plots.write_error_curves(
            directory / "error_vs_horizon.png",
            result.error_per_step,
            result.noised_per_step,
            result.blocks_per_step,
            dt=plan.sim.control_dt,
            title=title,
        )
    )
    return paths


# ----------------------------------------------------------------------------------------------------------------
# console output
# ----------------------------------------------------------------------------------------------------------------
def _fmt(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.4f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    return [line(header), line(["-" * w for w in widths]), *map(line, rows)]


def format_report(report: dict[str, Any]) -> str:
    """The console tables of an ``evaluate_run_model`` report."""
    c = report["collection"]
    lines = [
        f"world model of {report['run']} ({report['checkpoint']}, stage {report['stage']}, "
        f"{report['architecture']} x{report['ensemble_size']}, M={report['history_horizon']}, "
        f"N={report['forecast_horizon']})",
        f"held-out data: {report['trajectories']} trajectories x {report['length']} steps from "
        f"{report['distinct_envs']} envs ({c['num_envs']} envs x {c['steps']} steps of the run's policy, "
        f"{c['falls']} falls, seed {report['seed']}, {c['seconds']:.1f} s)",
    ]
    if report["trajectories"] < report["trajectories_requested"]:
        lines.append(
            f"note: only {report['trajectories']} of {report['trajectories_requested']} requested "
            "trajectories exist without an episode boundary (the policy falls)"
        )
    sigmas = list(report["noised"])
    lines += ["", "relative autoregressive error e = |s_hat - s|_1 / |s|_1 (normalized space), by steps ahead:"]
    header = ["horizon", "e", *(f"e sigma={s}" for s in sigmas)]
    rows = [
        [str(h), _fmt(report["error_at"][str(h)]), *(_fmt(report["noised_at"][s][str(h)]) for s in sigmas)]
        for h in report["horizons"]
    ]
    rows.append(["mean", _fmt(report["error"]), *(_fmt(report["noised"][s]) for s in sigmas)])
    lines += _table(header, rows)
    lines += ["", "per state block:"]
    header = ["block", "mean e", *(f"h={h}" for h in report["horizons"])]
    rows = [
        [name, _fmt(value), *(_fmt(report["blocks_at"][name][str(h)]) for h in report["horizons"])]
        for name, value in report["blocks"].items()
    ]
    lines += _table(header, rows)
    lines.append("")
    for name in ("contact", "termination"):
        pr = report[name]
        if pr is None:
            lines.append(f"{name}: no such head")
            continue
        lines.append(
            f"{name} (along the rollout): precision {_fmt(pr['precision'])}, recall {_fmt(pr['recall'])} "
            f"(tp {pr['true_positive']}, fp {pr['false_positive']}, fn {pr['false_negative']})"
        )
    epistemic = report["epistemic_mean"]
    lines.append(
        f"epistemic (mean along the rollout): {_fmt(epistemic)}"
        + (" (one ensemble member: always 0)" if report["ensemble_size"] == 1 else "")
    )
    if "report_file" in report:
        lines.append(
            f"written: {report['report_file']}"
            + (f" and {len(report['plots'])} plots in {Path(report['plots'][0]).parent}" if report["plots"] else "")
        )
    return "\n".join(lines)
