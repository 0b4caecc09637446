"""`rwmspec run | eval | play | export`: the runtime's subcommands, as ``configure`` and handler functions.

The runtime's plugin (``rwmspec_runtime.plugin``) registers each pair as a ``CommandDef``; ``rwmspec.cli`` builds the
parser, imports these functions only when their command is invoked, and turns errors into exit codes for every
command in one place: 0 success, 1 bad input (``SpecError``: spec, run directory or checkpoint problems, rendered as
diagnostics without a traceback), 2 usage errors, 3 internal errors, 130 interrupted. A handler returns 0 or raises.

Light module: the handlers import the training, evaluation and export code (torch, the simulator) when they run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rwmspec.cli import add_spec_inputs


# ----------------------------------------------------------------------------------------------------------------
# run
# ----------------------------------------------------------------------------------------------------------------
def configure_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", type=Path, help="the experiment spec (TOML)")
    add_spec_inputs(p)
    p.add_argument(
        "--runs-dir",
        type=Path,
        default=None,
        help="root of the run directories (default: $RWMSPEC_RUNS_DIR, else ./runs)",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        default=None,
        metavar="RUN",
        help="continue the newest run of this spec, or RUN (a run directory or its name), from its latest checkpoint",
    )
    p.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="train in DIR: continues the run there if DIR holds one, else starts a new run in it",
    )
    p.add_argument(
        "--checkpoint",
        default="latest",
        metavar="NAME",
        help="checkpoint to resume from (default: latest), e.g. model_200.pt",
    )
    p.add_argument("--device", default=None, help="torch device for learning (same as --set backend.device=...)")
    p.add_argument(
        "--num-envs",
        "--num_envs",
        type=int,
        default=None,
        dest="num_envs",
        help="parallel envs (same as --set backend.num_envs=N)",
    )
    p.add_argument(
        "--max-iterations",
        "--max_iterations",
        type=int,
        default=None,
        dest="max_iterations",
        help="total iterations of the run (same as --set runner.max_iterations=N)",
    )
    p.add_argument(
        "--with-deps",
        action="store_true",
        help="first train the specs this one refers to (runner.policy_from, ...) when they have no run",
    )
    p.add_argument(
        "--console",
        choices=("auto", "full", "compact"),
        default=None,
        help="per-iteration output (default: the spec's logging.console)",
    )


def run(args: argparse.Namespace) -> int:
    """Train the spec's stage, or continue a run."""
    from rwmspec_runtime.training import TrainRequest, train

    train(
        TrainRequest(
            spec=args.spec,
            overlays=tuple(Path(overlay) for overlay in args.overlay),
            sets=tuple(args.sets),
            runs_dir=args.runs_dir,
            resume=args.resume,
            run_dir=args.run_dir,
            device=args.device,
            num_envs=args.num_envs,
            max_iterations=args.max_iterations,
            checkpoint=args.checkpoint,
            with_deps=args.with_deps,
            console=args.console,
        )
    )
    return 0


# ----------------------------------------------------------------------------------------------------------------
# eval, play, export
# ----------------------------------------------------------------------------------------------------------------
def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, help="run directory (printed by `rwmspec run` at start)")
    p.add_argument("--checkpoint", default="latest", metavar="NAME", help="checkpoint file (default: latest)")


def configure_eval(p: argparse.ArgumentParser) -> None:
    _add_run_arguments(p)
    p.add_argument(
        "--num-envs",
        "--num_envs",
        type=int,
        default=None,
        dest="num_envs",
        help="envs to evaluate (default: the run's backend.num_envs, at most 64)",
    )
    p.add_argument("--steps", type=int, default=1000, help="policy steps per env (default: 1000)")
    p.add_argument("--seed", type=int, default=None, help="seed (default: the run's experiment.seed + 1)")
    p.add_argument("--device", default="cpu", help="torch device of the policy (default: cpu)")


def evaluate(args: argparse.Namespace) -> int:
    """Evaluate a run's policy in the real backend and print the report."""
    from rwmspec_runtime.evaluation import evaluate as evaluate_run
    from rwmspec_runtime.evaluation import format_report
    from rwmspec_runtime.rundir import RunDir

    report = evaluate_run(
        RunDir(args.run),
        num_envs=args.num_envs,
        steps=args.steps,
        checkpoint=args.checkpoint,
        seed=args.seed,
        device=args.device,
    )
    print(format_report(report))
    return 0


def configure_play(p: argparse.ArgumentParser) -> None:
    _add_run_arguments(p)
    p.add_argument("--video", type=Path, required=True, metavar="OUT.mp4", help="MP4 file to write")
    p.add_argument("--steps", type=int, default=500, help="policy steps to record (default: 500)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--seed", type=int, default=None, help="seed (default: the run's experiment.seed + 1)")


def play(args: argparse.Namespace) -> int:
    """Render a run's policy to an MP4 video."""
    from rwmspec_runtime.play import play as play_run
    from rwmspec_runtime.rundir import RunDir

    path = play_run(
        RunDir(args.run),
        args.video,
        steps=args.steps,
        checkpoint=args.checkpoint,
        width=args.width,
        height=args.height,
        seed=args.seed,
    )
    print(f"wrote {path}")
    return 0


def configure_export(p: argparse.ArgumentParser) -> None:
    _add_run_arguments(p)
    p.add_argument(
        "--format",
        choices=("jit", "onnx"),
        default="jit",
        help="jit: TorchScript policy.pt; onnx: policy.onnx (default: jit)",
    )
    p.add_argument("--out", type=Path, default=None, help="output folder (default: RUN/exported)")


def export(args: argparse.Namespace) -> int:
    """Export a run's policy to TorchScript or ONNX."""
    from rwmspec_runtime.export import export_policy
    from rwmspec_runtime.rundir import RunDir

    path = export_policy(RunDir(args.run), args.format, checkpoint=args.checkpoint, out=args.out)
    print(f"wrote {path} (input layout: {path.with_name('policy.json')})")
    return 0
