"""`rwmspec run | eval | play | export`: the runtime's subcommands.

``rwmspec.cli`` (which must stay free of torch) forwards these subcommands' argv here: ``main(["run", ...])``.
Each subcommand is one ``Command`` entry in ``COMMANDS``; later stages add theirs (``eval-model``) with
``register_command`` instead of editing the parser.

Exit codes: 0 success, 1 bad input (spec, run directory or checkpoint problems, rendered as diagnostics without a
traceback), 2 usage errors, 3 internal errors, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rwmspec.diagnostics import Diagnostic, SpecError, render
from rwmspec.manager import resolve


@dataclass(frozen=True)
class Command:
    """One subcommand: its help line, how it adds its arguments, and the function that runs it."""

    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]
    epilog: str = ""


#: subcommand name -> Command, or its ``"module:attr"`` reference (imported when the parser is built)
COMMANDS: dict[str, Command | str] = {}


def register_command(name: str, command: Command | str) -> None:
    """Add a subcommand, e.g. ``register_command("eval-model", "rwmspec_runtime.world_model.cli:EVAL_MODEL")``."""
    COMMANDS[name] = command


# ----------------------------------------------------------------------------------------------------------------
# run
# ----------------------------------------------------------------------------------------------------------------
def _configure_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", type=Path, help="the experiment spec (TOML)")
    p.add_argument(
        "--overlay",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="overlay spec applied after SPEC, in order (repeatable)",
    )
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one value after the overlays, e.g. --set runner.max_iterations=10 (repeatable)",
    )
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


def _run(args: argparse.Namespace) -> int:
    from rwmspec_runtime.training import TrainRequest, train

    train(
        TrainRequest(
            spec=args.spec,
            overlays=tuple(args.overlay),
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


def _configure_eval(p: argparse.ArgumentParser) -> None:
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


def _eval(args: argparse.Namespace) -> int:
    from rwmspec_runtime.evaluation import evaluate, format_report
    from rwmspec_runtime.rundir import RunDir

    report = evaluate(
        RunDir(args.run),
        num_envs=args.num_envs,
        steps=args.steps,
        checkpoint=args.checkpoint,
        seed=args.seed,
        device=args.device,
    )
    print(format_report(report))
    return 0


def _configure_play(p: argparse.ArgumentParser) -> None:
    _add_run_arguments(p)
    p.add_argument("--video", type=Path, required=True, metavar="OUT.mp4", help="MP4 file to write")
    p.add_argument("--steps", type=int, default=500, help="policy steps to record (default: 500)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--seed", type=int, default=None, help="seed (default: the run's experiment.seed + 1)")


def _play(args: argparse.Namespace) -> int:
    from rwmspec_runtime.play import play
    from rwmspec_runtime.rundir import RunDir

    path = play(
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


def _configure_export(p: argparse.ArgumentParser) -> None:
    _add_run_arguments(p)
    p.add_argument(
        "--format",
        choices=("jit", "onnx"),
        default="jit",
        help="jit: TorchScript policy.pt; onnx: policy.onnx (default: jit)",
    )
    p.add_argument("--out", type=Path, default=None, help="output folder (default: RUN/exported)")


def _export(args: argparse.Namespace) -> int:
    from rwmspec_runtime.export import export_policy
    from rwmspec_runtime.rundir import RunDir

    path = export_policy(RunDir(args.run), args.format, checkpoint=args.checkpoint, out=args.out)
    print(f"wrote {path} (input layout: {path.with_name('policy.json')})")
    return 0


register_command(
    "run",
    Command(
        "train a spec (or continue a run)",
        _configure_run,
        _run,
        "examples:\n"
        "  rwmspec run specs/anymal_d_init.toml --overlay specs/overlays/cpu.toml\n"
        "  rwmspec run specs/anymal_d_init.toml --resume                  # continue the newest run\n"
        "  rwmspec run specs/anymal_d_finetune.toml --with-deps           # train init and pretrain first if needed\n",
    ),
)
register_command("eval", Command("evaluate a run's policy in the real backend", _configure_eval, _eval))
register_command("play", Command("render a run's policy to an MP4 video (headless)", _configure_play, _play))
register_command("export", Command("export a run's policy to TorchScript or ONNX", _configure_export, _export))
register_command("eval-model", "rwmspec_runtime.world_model.cli:EVAL_MODEL")


# ----------------------------------------------------------------------------------------------------------------
# entry point
# ----------------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rwmspec", description="rwmspec runtime commands")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, entry in COMMANDS.items():
        command = resolve(entry) if isinstance(entry, str) else entry
        p = sub.add_parser(
            name,
            help=command.help,
            description=command.help,
            epilog=command.epilog or None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.configure(p)
        p.set_defaults(handler=command.handler)
    return parser


def _sources(diags: Sequence[Diagnostic]) -> dict[str, str]:
    out = {}
    for d in diags:
        if d.file and d.line is not None and d.file not in out and Path(d.file).is_file():
            out[d.file] = Path(d.file).read_text(encoding="utf-8", errors="replace")
    return out


def report(error: SpecError, stream=None) -> None:
    """Print a SpecError's diagnostics: the full form on a terminal, one line each otherwise."""
    stream = stream or sys.stderr
    tty = stream.isatty()
    stream.write(
        render(
            error.diagnostics,
            "full" if tty else "concise",
            _sources(error.diagnostics),
            color=tty and "NO_COLOR" not in os.environ,
        )
    )
    stream.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one runtime subcommand; ``argv`` starts with the subcommand name."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    try:
        return args.handler(args)
    except SpecError as exc:
        report(exc)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; continue a run with the resume command printed at its start", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("RWMSPEC_FULL_ERROR"):
            raise
        print(
            f"internal error: {type(exc).__name__}: {exc}\n(set RWMSPEC_FULL_ERROR=1 for the traceback)",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":
    sys.exit(main())
