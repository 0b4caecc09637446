"""`rwmspec eval-model RUN`: the relative autoregressive error of a run's world model on fresh real trajectories.

``configure`` and ``eval_model`` are the command's functions (the runtime's plugin registers them as a
``CommandDef``; ``rwmspec.cli`` imports them when the command runs and reports its errors). The work lives in
``rwmspec_runtime.world_model.eval_model`` and is imported by the handler, so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = (
    "examples:\n"
    "  rwmspec eval-model runs/anymal_d_flat_pretrain/2025-01-01_12-00-00_pretrain\n"
    "  rwmspec eval-model RUN --checkpoint model_500.pt --num-trajectories 32 --length 400 --json\n"
    "\n"
    "writes RUN/eval_model.json and the plots RUN/eval_model/*.png (or into --out DIR)\n"
)


def configure(p: argparse.ArgumentParser) -> None:
    # the examples belong with the options they show, whichever plugin record registers the command
    p.epilog = EPILOG
    p.add_argument("run", type=Path, help="run directory of a pretrain or finetune run (printed by `rwmspec run`)")
    p.add_argument("--checkpoint", default="latest", metavar="NAME", help="checkpoint file (default: latest)")
    p.add_argument(
        "--num-trajectories",
        type=int,
        default=None,
        metavar="K",
        help="held-out trajectories = real envs rolled (default: the plan's "
        "world_model.train.num_eval_trajectories, at most 64)",
    )
    p.add_argument(
        "--length",
        type=int,
        default=None,
        metavar="L",
        help="steps per trajectory, context included (default: world_model.train.eval_trajectory_length)",
    )
    p.add_argument(
        "--seed", type=int, default=None, help="seed (default: the run's experiment.seed + 1, as `rwmspec eval`)"
    )
    p.add_argument("--device", default="cpu", help="torch device of the policy and the model (default: cpu)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="write eval_model.json and eval_model/*.png into DIR (default: the run directory)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of the table")


def eval_model(args: argparse.Namespace) -> int:
    """Evaluate a run's world model, write the report and plots, print the table (or JSON)."""
    import json

    from rwmspec_runtime.rundir import RunDir
    from rwmspec_runtime.world_model.eval_model import evaluate_run_model, format_report

    report = evaluate_run_model(
        RunDir(args.run),
        checkpoint=args.checkpoint,
        num_trajectories=args.num_trajectories,
        length=args.length,
        seed=args.seed,
        device=args.device,
        out=args.out,
    )
    print(json.dumps(report, indent=2, sort_keys=True) if args.json else format_report(report))
    return 0
