"""World-model ablation (issue 4): does autoregressive training beat teacher forcing and an MLP base, as in the paper?

Three variants of the pretrain spec's world model, trained on the same data and scored on the same held-out
trajectories by the relative autoregressive error e at horizons 50, 100 and 200 steps (rwm_method §3.7, §6.1
Fig. 4 and Fig. S8: RWM-AR < RWM-TF and RWM-AR < MLP):

* ``gru_ar``: the spec's GRU base trained autoregressively over N = ``forecast_horizon`` steps (8);
* ``gru_tf``: the same GRU trained with teacher forcing (N = 1);
* ``mlp_ar``: an MLP base (``base_hidden`` layers over the flattened M-step window, paper Table S8) trained
  autoregressively over N steps.

Data: a policy drives the embedded backend with the pretrain spec's observation groups (``--policy-run RUN``: that
run's checkpoint, actions sampled from its Gaussian unless ``--deterministic``; ``--random-policy``: Gaussian noise
actions, for smoke tests). Every step's normalized ``system_*`` groups go into a training ``ReplayBuffer`` as the
pretrain stage stores them; a held-out buffer comes from other envs with another seed, and from it one set of
boundary-free trajectories of ``--length`` steps (default ``eval_trajectory_length``, 400) that every variant and
seed is scored on. Seeds vary the model's initialization, the mini-batch draws and the reparameterisation noise; the
data is shared (``--data-seed``). On the CPU the same arguments give the same numbers.

Each variant trains ``--updates`` clipped Adam steps on mini-batches of ``--batch-size`` windows with the spec's
optimizer settings (``WorldModelTrainer``). The script prints timings, a table (variant x horizon: mean +- std over
seeds, then per seed) and writes JSON (``--json-out``).

The models come from the architecture registry (``system.build_world_model``), so a plugin's architecture can be
ablated by adding a variant. ``scripts/world_model_ablation.py`` is the command line (it adds the default spec).

Usage::

    python scripts/world_model_ablation.py --policy-run runs/anymal_d_flat/<init run> --device cuda \\
        --json-out ablation.json        # full sizes: about 6 minutes on one H100 with 16 cores
    python scripts/world_model_ablation.py --quick --random-policy --overlay specs/overlays/tiny.toml
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import torch

if TYPE_CHECKING:
    from rwmspec.plan import Plan

#: variant -> (architecture, forecast horizon; None = the spec's N)
VARIANTS = {"gru_ar": ("gru", None), "gru_tf": ("gru", 1), "mlp_ar": ("mlp", None)}
#: sizes by mode; every entry can be overridden by the flag of the same name
SIZES = {
    "full": dict(
        train_envs=1024,
        train_steps=500,
        heldout_envs=256,
        trajectories=100,
        updates=1200,
        batch_size=4096,
        log_every=100,
        horizons=(50, 100, 200),
        seeds=(0, 1, 2),
    ),
    "quick": dict(
        train_envs=4,
        train_steps=24,
        heldout_envs=3,
        trajectories=3,
        updates=4,
        batch_size=8,
        log_every=2,
        horizons=(1, 4, 8),
        seeds=(0, 1, 2),
    ),
}
#: seed offset of the held-out envs (other commands, pushes and resets than the training data)
HELD_OUT_SEED_OFFSET = 1000


def parse_args(argv: list[str] | None, default_spec: Path | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--spec",
        type=Path,
        default=default_spec,
        required=default_spec is None,
        help=f"spec with the world model (default: {default_spec})",
    )
    p.add_argument("--overlay", action="append", type=Path, default=[], metavar="FILE", help="overlay (repeatable)")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one spec value (repeatable)",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--policy-run", type=Path, metavar="RUN", help="run directory whose policy collects the data")
    source.add_argument("--random-policy", action="store_true", help="Gaussian random actions (smoke tests)")
    p.add_argument("--checkpoint", default="latest", help="checkpoint of --policy-run (default: latest)")
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="act with the policy's mean (default: sample from its Gaussian, as pretraining does)",
    )
    p.add_argument("--random-action-std", type=float, default=0.3, help="std of --random-policy actions")
    p.add_argument("--quick", action="store_true", help="tiny sizes (tests); flags below still override them")
    for name, kind, what in (
        ("train-envs", int, "envs collecting the training data"),
        ("train-steps", int, "steps per training env (= replay buffer size)"),
        ("heldout-envs", int, "envs collecting the held-out data"),
        ("trajectories", int, "held-out trajectories scored"),
        ("updates", int, "training updates (mini-batches) per variant and seed"),
        ("batch-size", int, "windows per mini-batch"),
        ("log-every", int, "updates between loss reports"),
    ):
        p.add_argument(
            f"--{name}",
            type=kind,
            default=None,
            help=f"{what} (full/quick default: "
            f"{SIZES['full'][name.replace('-', '_')]}/{SIZES['quick'][name.replace('-', '_')]})",
        )
    p.add_argument(
        "--length",
        type=int,
        default=None,
        help="held-out trajectory length in steps, context included (default: eval_trajectory_length)",
    )
    p.add_argument("--horizons", type=int, nargs="+", default=None, help="steps ahead reported (default 50 100 200)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="training seeds (default 0 1 2)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the data collection")
    p.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    p.add_argument(
        "--forecast-horizon",
        type=int,
        default=None,
        help="N of the autoregressive variants (default: the spec's world_model.forecast_horizon)",
    )
    p.add_argument(
        "--noise-sigmas",
        type=float,
        nargs="*",
        default=[],
        help="also score the noised error at these sigmas (rwm_method §3.7)",
    )
    p.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json-out", type=Path, default=None, help="JSON file to write")
    args = p.parse_args(argv)
    size = SIZES["quick" if args.quick else "full"]
    for key, default in size.items():
        if getattr(args, key, None) is None:
            setattr(args, key, default)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available")
    return args


def log(message: str) -> None:
    print(message, flush=True)


# ----------------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------------
def make_policy(args: argparse.Namespace, plan: Plan, device: str):
    """``act(obs) -> actions [N, A]`` and a description."""
    if args.random_policy:
        std = args.random_action_std

        def act(obs):
            n = obs.batch_size[0]
            return std * torch.randn(n, plan.action_dim, device=device)

        return act, f"random Gaussian actions, std {std}"
    from rwmspec_runtime import checkpoints
    from rwmspec_runtime.ppo import build_actor
    from rwmspec_runtime.rundir import RunDir

    run = RunDir(args.policy_run).require()
    policy_plan = run.plan()
    ckpt = checkpoints.resolve_checkpoint(run.path, args.checkpoint)
    for group in policy_plan.policy.actor_observations:
        theirs = policy_plan.observations[group].dim
        ours = plan.observations[group].dim if group in plan.observations else None
        if ours != theirs:
            raise SystemExit(
                f"--policy-run {run.path}: its actor reads observation group {group!r} of {theirs} dims, "
                f"but {args.spec} gives {ours}; use a run of the same robot and policy observations"
            )
    if policy_plan.action_dim != plan.action_dim:
        raise SystemExit(f"--policy-run {run.path}: {policy_plan.action_dim} actions, the spec has {plan.action_dim}")
    actor = build_actor(policy_plan, checkpoints.load_checkpoint(ckpt)["actor_state_dict"], device)
    stochastic = not args.deterministic

    def act(obs):
        return actor(obs.to(device), stochastic_output=stochastic)

    return act, f"{ckpt} ({'sampled' if stochastic else 'deterministic'})"


def collect(plan: Plan, act, num_envs: int, steps: int, seed: int, device: str):
    """A replay buffer of ``num_envs`` x ``steps`` normalized system steps of ``act`` in the plan's backend."""
    from rwmspec.manager import get_registry
    from rwmspec_runtime.seeding import seed_everything
    from rwmspec_runtime.training import make_env
    from rwmspec_runtime.world_model.eval_model import fill_buffer
    from rwmspec_runtime.world_model.replay_buffer import ReplayBuffer
    from rwmspec_runtime.world_model.system_data import SystemNormalizer

    wm = plan.world_model
    normalizer = SystemNormalizer(plan, device)
    buffer = ReplayBuffer(
        num_envs, steps, wm.state_dim, wm.action_dim, wm.contact_dim, wm.termination_dim, wm.extension_dim, device
    )
    env_plan = attrs.evolve(
        plan,
        experiment=attrs.evolve(plan.experiment, seed=seed),
        sim=attrs.evolve(plan.sim, num_envs=num_envs, device=device),
    )
    seed_everything(seed)
    env = make_env(env_plan, get_registry(), device=device, num_envs=num_envs)
    try:
        # every episode starts at 0, so a held-out window can only end by a fall, never by a random time-out
        env.episode_length_buf = torch.zeros_like(env.episode_length_buf)
        stats = fill_buffer(env, act, normalizer, buffer, steps, tuple(normalizer.streams.values()))
    finally:
        env.close()
    return buffer, stats


# ----------------------------------------------------------------------------------------------------------------
# training and scoring
# ----------------------------------------------------------------------------------------------------------------
def variant_plan(wm: Any, variant: str, args: argparse.Namespace) -> Any:
    architecture, horizon = VARIANTS[variant]
    horizon = horizon if horizon is not None else (args.forecast_horizon or wm.forecast_horizon)
    train = attrs.evolve(wm.train, mini_batch_size=args.batch_size, num_mini_batches=args.log_every)
    return attrs.evolve(wm, architecture=architecture, forecast_horizon=horizon, train=train)


def train_and_score(plan: Plan, variant: str, seed: int, buffer, windows, args: argparse.Namespace) -> dict[str, Any]:
    from rwmspec_runtime.world_model.evaluation import evaluate_world_model
    from rwmspec_runtime.world_model.system import build_world_model
    from rwmspec_runtime.world_model.trainer import WorldModelTrainer

    wm = variant_plan(plan.world_model, variant, args)
    device = torch.device(args.device)
    torch.manual_seed(seed)
    model = build_world_model(wm, plan.quirks)
    trainer = WorldModelTrainer(model, wm, plan.quirks, device)
    generator = torch.Generator(device=device).manual_seed(seed)
    losses = []
    start = time.perf_counter()
    done = 0
    while done < args.updates:
        chunk = min(args.log_every, args.updates - done)
        trainer.train_spec = attrs.evolve(trainer.train_spec, num_mini_batches=chunk)
        scalars = trainer.update(buffer, generator)
        done += chunk
        losses.append({"update": done, "state_loss": scalars["state_loss"], "total_loss": scalars["total_loss"]})
    train_seconds = time.perf_counter() - start
    if not all(math.isfinite(r["total_loss"]) for r in losses):
        log(f"  warning: {variant} seed {seed}: a loss is not finite: {losses[-1]}")
    start = time.perf_counter()
    result = evaluate_world_model(
        model, windows, noise_sigmas=args.noise_sigmas, generator=torch.Generator(device=device).manual_seed(seed)
    )
    eval_seconds = time.perf_counter() - start
    return {
        "architecture": wm.architecture,
        "forecast_horizon": wm.forecast_horizon,
        "error_at": {str(h): float(result.error_per_step[h - 1]) for h in args.horizons},
        "error": result.error,
        "noised": {f"{s:g}": v for s, v in result.noised.items()},
        "final_state_loss": losses[-1]["state_loss"],
        "losses": losses,
        "train_seconds": round(train_seconds, 3),
        "eval_seconds": round(eval_seconds, 3),
        "sequences_per_s": args.updates * args.batch_size / train_seconds,
    }


def summarize(results: dict[str, dict[int, dict[str, Any]]], horizons: list[int]) -> dict[str, Any]:
    """variant -> horizon -> mean, std (over seeds, sample std) and the values; plus which variant is lowest."""
    summary: dict[str, Any] = {}
    for variant, by_seed in results.items():
        summary[variant] = {}
        for h in horizons:
            values = torch.tensor([r["error_at"][str(h)] for r in by_seed.values()], dtype=torch.float64)
            std = float(values.std()) if values.numel() > 1 else 0.0
            summary[variant][str(h)] = {"mean": float(values.mean()), "std": std, "values": values.tolist()}
    ranking = {str(h): sorted(summary, key=lambda v: summary[v][str(h)]["mean"]) for h in horizons}
    ordering = None
    if {"gru_ar", "gru_tf", "mlp_ar"} <= set(summary):
        ordering = all(
            summary["gru_ar"][str(h)]["mean"]
            < min(summary["gru_tf"][str(h)]["mean"], summary["mlp_ar"][str(h)]["mean"])
            for h in horizons
        )
    return {"by_variant": summary, "ranking": ranking, "paper_ordering_holds": ordering}


def format_table(summary: dict[str, Any], results: dict[str, dict[int, dict[str, Any]]], horizons: list[int]) -> str:
    by_variant = summary["by_variant"]
    head = f"{'variant':<8} {'arch':<5} {'N':>2} " + " ".join(f"{f'e@{h} mean +- std':>22}" for h in horizons)
    lines = [head, "-" * len(head)]
    for variant, row in by_variant.items():
        first = next(iter(results[variant].values()))
        cells = " ".join(f"{row[str(h)]['mean']:>12.4f} +- {row[str(h)]['std']:<6.4f}" for h in horizons)
        lines.append(f"{variant:<8} {first['architecture']:<5} {first['forecast_horizon']:>2} {cells}")
    lines += [
        "",
        f"{'variant':<8} {'seed':>4} "
        + " ".join(f"{f'e@{h}':>9}" for h in horizons)
        + f" {'mean e':>9} {'state loss':>10} {'train s':>8} {'seq/s':>9}",
    ]
    for variant, by_seed in results.items():
        for seed, r in by_seed.items():
            lines.append(
                f"{variant:<8} {seed:>4} "
                + " ".join(f"{r['error_at'][str(h)]:>9.4f}" for h in horizons)
                + f" {r['error']:>9.4f} {r['final_state_loss']:>10.4f} {r['train_seconds']:>8.1f}"
                f" {r['sequences_per_s']:>9.0f}"
            )
    lines.append("")
    for h, order in summary["ranking"].items():
        lines.append(f"horizon {h}: " + " < ".join(order))
    if summary["paper_ordering_holds"] is not None:
        lines.append(
            "paper ordering (gru_ar lowest at every horizon): "
            + ("reproduced" if summary["paper_ordering_holds"] else "NOT reproduced")
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None, *, default_spec: Path | None = None) -> int:
    """Run the ablation (see the module docstring); ``default_spec`` is ``--spec`` when the flag is absent."""
    args = parse_args(argv, default_spec)
    from rwmspec_runtime.training import compile_spec
    from rwmspec_runtime.world_model.eval_model import margin_steps, spread_trajectories

    started = time.perf_counter()
    plan, _ = compile_spec(args.spec, args.overlay, args.sets)
    if plan.world_model is None:
        raise SystemExit(f"{args.spec}: the spec has no [world_model] table; use specs/anymal_d_pretrain.toml")
    wm = plan.world_model
    M = wm.history_horizon
    length = args.length or wm.train.eval_trajectory_length
    too_far = [h for h in args.horizons if not 1 <= h <= length - M]
    if too_far:
        raise SystemExit(
            f"--horizons {too_far}: trajectories of {length} steps with a {M}-step context reach "
            f"1..{length - M} steps ahead; raise --length or lower the horizons"
        )
    heldout_steps = min(length + margin_steps(length, M), plan.sim.max_episode_length)
    if length > heldout_steps:
        raise SystemExit(f"--length {length} exceeds the episode length ({plan.sim.max_episode_length} steps)")
    windows_needed = M + max(args.forecast_horizon or wm.forecast_horizon, 1)
    if args.train_steps < windows_needed:
        raise SystemExit(f"--train-steps {args.train_steps} is shorter than one training window ({windows_needed})")
    device = args.device
    act, policy = make_policy(args, plan, device)
    log(
        f"spec {args.spec} ({plan.sim.backend}), policy: {policy}, device {device}, M={M}, "
        f"N={args.forecast_horizon or wm.forecast_horizon}, base {list(wm.base_hidden)}"
    )

    buffer, train_stats = collect(plan, act, args.train_envs, args.train_steps, args.data_seed, device)
    log(
        f"training data: {args.train_envs} envs x {args.train_steps} steps in {train_stats.seconds:.1f} s "
        f"({args.train_envs * args.train_steps / train_stats.seconds:.0f} env steps/s), "
        f"{train_stats.terminations} falls"
    )
    heldout, heldout_stats = collect(
        plan, act, args.heldout_envs, heldout_steps, args.data_seed + HELD_OUT_SEED_OFFSET, device
    )
    log(
        f"held-out data: {args.heldout_envs} envs x {heldout_steps} steps in {heldout_stats.seconds:.1f} s, "
        f"{heldout_stats.terminations} falls"
    )
    if heldout.num_valid(length) == 0:
        raise SystemExit(
            f"no held-out trajectory of {length} steps without a fall: use a policy that walks "
            "(--policy-run of a trained init run) or a shorter --length"
        )
    windows = spread_trajectories(
        heldout, length, args.trajectories, torch.Generator(device=device).manual_seed(args.data_seed)
    )
    log(
        f"scoring on {len(windows)} held-out trajectories x {length} steps from "
        f"{len(set(windows.env_ids.tolist()))} envs"
    )

    results: dict[str, dict[int, dict[str, Any]]] = {}
    for variant in args.variants:
        results[variant] = {}
        for seed in args.seeds:
            r = train_and_score(plan, variant, seed, buffer, windows, args)
            results[variant][seed] = r
            errors = " ".join(f"e@{h}={v:.4f}" for h, v in r["error_at"].items())
            log(
                f"{variant} seed {seed}: {errors} (state loss {r['final_state_loss']:.4f}; train "
                f"{r['train_seconds']:.1f} s, {r['sequences_per_s']:.0f} seq/s; eval {r['eval_seconds']:.1f} s)"
            )
    summary = summarize(results, args.horizons)
    log("")
    log(format_table(summary, results, args.horizons))
    total = time.perf_counter() - started
    log(f"total {total:.1f} s")

    if args.json_out is not None:
        record = {
            "spec": str(args.spec),
            "overlays": [str(o) for o in args.overlay],
            "sets": args.sets,
            "policy": policy,
            "device": device,
            "device_name": torch.cuda.get_device_name() if device == "cuda" else platform.processor(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "python": sys.version.split()[0],
            "sizes": {k: getattr(args, k) for k in SIZES["full"]} | {"length": length},
            "history_horizon": M,
            "data_seed": args.data_seed,
            "noise_sigmas": args.noise_sigmas,
            "data": {
                "train": {
                    "envs": args.train_envs,
                    "steps": args.train_steps,
                    "falls": train_stats.terminations,
                    "seconds": round(train_stats.seconds, 3),
                },
                "held_out": {
                    "envs": args.heldout_envs,
                    "steps": heldout_steps,
                    "falls": heldout_stats.terminations,
                    "trajectories": len(windows),
                    "seconds": round(heldout_stats.seconds, 3),
                },
            },
            "results": {v: {str(s): r for s, r in by_seed.items()} for v, by_seed in results.items()},
            "summary": summary,
            "total_seconds": round(total, 3),
            "time": datetime.datetime.now().isoformat(timespec="seconds"),
        }
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json_out.with_name(f".{args.json_out.name}.tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(tmp, args.json_out)
        log(f"wrote {args.json_out}")
    return 0
