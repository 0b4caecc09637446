"""The `rwmspec` command line.

Spec commands (validate, compile, show, schema, explain, plugins, list) need only the light dependencies. Runtime
commands (run, eval, play, eval-model, export) are forwarded with their full argv to ``rwmspec_runtime.cli:main``,
imported only then.

Exit codes: 0 ok, 1 spec errors, 2 usage errors, 3 plugin or internal errors. ``RWMSPEC_FULL_ERROR=1`` prints the
Python traceback of internal errors; ``RWMSPEC_DISABLE_PLUGINS=a,b`` skips entry points by name.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
RUNTIME_COMMANDS = {
    "run": "train the stage a spec describes",
    "eval": "evaluate a trained policy on the real (simulated) env",
    "play": "roll out a trained policy and record a video",
    "eval-model": "evaluate a trained world model against real trajectories",
    "export": "export a trained policy to TorchScript or ONNX",
}
DEFAULT_SCHEMA_PATH = "specs/rwmspec.schema.json"
LIST_WHAT = ("robots", "terms", "backends", "architectures")


# ----------------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------------
def _default_format() -> str:
    if os.environ.get("GITHUB_ACTIONS") == "true":
        return "github"
    return "full" if sys.stdout.isatty() else "concise"


def _color() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _print_diagnostics(
    diags: Sequence[Any], fmt: str, sources: dict[str, str] | None = None, stream: Any = None
) -> None:
    from rwmspec.diagnostics import render

    stream = stream or sys.stdout
    if diags or fmt == "json":
        stream.write(render(diags, fmt, sources or {}, color=fmt == "full" and _color() and stream is sys.stdout))


def _exit_code(diags: Sequence[Any]) -> int:
    errors = [d for d in diags if d.severity == "error"]
    if any(d.code.startswith("RWM3") for d in errors):
        return EXIT_INTERNAL
    return EXIT_SPEC if errors else EXIT_OK


def _add_spec_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--overlay",
        action="append",
        default=[],
        metavar="FILE",
        help="overlay file applied after the spec (repeatable; later overlays win)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="sets",
        help="override one value, e.g. --set backend.num_envs=64 (repeatable; TOML values, else strings)",
    )


def _add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--output-format",
        choices=("full", "concise", "json", "github"),
        default=None,
        help="diagnostic format (default: full on a terminal, concise otherwise, github when GITHUB_ACTIONS=true)",
    )


# ----------------------------------------------------------------------------------------------------------------------
# commands
# ----------------------------------------------------------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    from rwmspec.api import load_and_compile
    from rwmspec.diagnostics import summary
    from rwmspec.manager import get_registry, problem_diagnostics

    fmt = args.output_format or _default_format()
    registry = get_registry()
    diags = problem_diagnostics(registry, severity="warning")
    sources: dict[str, str] = {}
    for spec in args.specs:
        result = load_and_compile(spec, args.overlay, args.sets, registry)
        diags += result.diagnostics
        sources.update(result.loaded.sources)
    if args.strict:
        diags = [d.with_severity("error") for d in diags]
    _print_diagnostics(diags, fmt, sources)
    if fmt in ("full", "concise"):
        print(summary(diags, len(args.specs)))
    return _exit_code(diags)


def cmd_compile(args: argparse.Namespace) -> int:
    from rwmspec.api import load_and_compile, resolved_toml
    from rwmspec.compile import compile_backend
    from rwmspec.diagnostics import SpecError
    from rwmspec.manager import get_registry
    from rwmspec.plan import plan_to_dict

    fmt = args.output_format or _default_format()
    registry = get_registry()
    result = load_and_compile(args.spec, args.overlay, args.sets, registry)
    _print_diagnostics(result.diagnostics, fmt, result.loaded.sources, stream=sys.stderr)
    if result.plan is None:
        return _exit_code(result.diagnostics) or EXIT_SPEC
    try:
        artifacts = compile_backend(result.plan, registry, args.backend)
    except SpecError as exc:
        _print_diagnostics(
            [result.loaded.locate(d) for d in exc.diagnostics], fmt, result.loaded.sources, stream=sys.stderr
        )
        return _exit_code(exc.diagnostics) or EXIT_SPEC
    out = Path(args.out)
    files = {
        "resolved.toml": resolved_toml(result.spec),
        "plan.json": json.dumps(plan_to_dict(result.plan), indent=2) + "\n",
    }
    for name, text in artifacts.dumps.items():
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts or rel.as_posix() in files:
            raise ValueError(f"backend '{artifacts.backend}' produced a dump with an unsafe name: {name!r}")
        files[rel.as_posix()] = text
    for name, text in files.items():
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
        print(target)
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from rwmspec.api import load_and_compile, resolved_toml

    fmt = args.output_format or ("full" if sys.stderr.isatty() else "concise")
    result = load_and_compile(args.spec, args.overlay, args.sets)
    _print_diagnostics(result.diagnostics, fmt, result.loaded.sources, stream=sys.stderr)
    spec = result.spec
    if spec is None:
        return _exit_code(result.diagnostics) or EXIT_SPEC
    sys.stdout.write(resolved_toml(spec, result.loaded.origins if args.origin else None))
    return _exit_code(result.diagnostics)


def cmd_schema(args: argparse.Namespace) -> int:
    from rwmspec.manager import get_registry
    from rwmspec.schema import build_schema, schema_text

    if args.markdown:
        from rwmspec.schema import reference_markdown

        sys.stdout.write(reference_markdown())
        return EXIT_OK
    registry = get_registry()
    if not (args.check or args.write):
        sys.stdout.write(schema_text(build_schema(registry, builtin_only=args.builtin_only)))
        return EXIT_OK
    text = schema_text(build_schema(registry, builtin_only=True))
    path = Path(args.path)
    if args.write:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
        return EXIT_OK
    current = path.read_text(encoding="utf-8") if path.is_file() else None
    if current == text:
        print(f"{path} is up to date")
        return EXIT_OK
    import difflib

    state = "is missing" if current is None else "is out of date"
    diff = difflib.unified_diff((current or "").splitlines(True), text.splitlines(True), str(path), "generated", n=1)
    sys.stdout.writelines(list(diff)[:80])
    print(f"\n{path} {state}; regenerate it with: rwmspec schema --write")
    return EXIT_SPEC


def cmd_explain(args: argparse.Namespace) -> int:
    from rwmspec.codes import CODES, explain, render_markdown

    if args.all:
        sys.stdout.write(render_markdown())
        return EXIT_OK
    if not args.code:
        print("rwmspec explain: give a code (e.g. RWM103) or --all", file=sys.stderr)
        return EXIT_USAGE
    code = args.code.upper()
    if code.isdigit():
        code = f"RWM{code.zfill(3)}"
    if code not in CODES:
        import difflib

        close = difflib.get_close_matches(code, list(CODES), n=1)
        more = f"; did you mean {close[0]}?" if close else ""
        print(
            f"rwmspec explain: unknown code '{args.code}'{more} (codes: {min(CODES)}..{max(CODES)}, see "
            f"`rwmspec explain --all`)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    sys.stdout.write(explain(code))
    return EXIT_OK


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join(lines) + "\n"


def cmd_plugins(args: argparse.Namespace) -> int:
    from rwmspec.diagnostics import render
    from rwmspec.manager import get_registry, problem_diagnostics

    registry = get_registry()
    diags = problem_diagnostics(registry)
    if args.json:
        data = {
            "plugins": [
                {
                    "name": p.name,
                    "module": p.module,
                    "distribution": p.distribution,
                    "version": p.version,
                    "hooks": list(p.hooks),
                    "error": p.error,
                }
                for p in registry.plugins
            ],
            "problems": [{"code": p.code, "message": p.message, "hint": p.hint} for p in registry.problems],
        }
        print(json.dumps(data, indent=2))
    else:
        rows = [
            [
                p.name,
                f"{p.distribution} {p.version}",
                p.module,
                "FAILED" if p.error else ", ".join(h.removeprefix("rwmspec_") for h in p.hooks) or "-",
            ]
            for p in registry.plugins
        ]
        sys.stdout.write(_table(rows, ["plugin", "distribution", "module", "hooks"]))
        if diags:
            sys.stdout.write("\n" + render(diags, "concise"))
    return EXIT_INTERNAL if diags else EXIT_OK


def _missing_modules(requires: Sequence[str]) -> list[str]:
    missing = []
    for module in requires:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module)
    return missing


def _params_text(params_type: Any) -> str:
    import attrs

    if params_type is None or not attrs.has(params_type):
        return "-"
    out = []
    for f in attrs.fields(params_type):
        out.append(f.name if f.default is attrs.NOTHING else f"{f.name}?")
    return ", ".join(out)


def cmd_list(args: argparse.Namespace) -> int:
    from rwmspec.manager import get_registry

    registry = get_registry()
    provider = registry.providers
    rows: list[dict[str, Any]]
    if args.what == "robots":
        rows = [
            {
                "name": r.name,
                "provider": provider.get(("robots", n), "?"),
                "joints": len(r.joint_names),
                "state_blocks": [f"{b.name}({b.dim})" for b in r.state_blocks],
                "contact_groups": [g.name for g in r.contact_groups],
                "description": r.description,
            }
            for n, r in sorted(registry.robots.items())
        ]
        cols = ["name", "joints", "state_blocks", "contact_groups", "provider"]
    elif args.what == "terms":
        rows = [
            {
                "category": cat,
                "name": name,
                "params": _params_text(k.params_type),
                "provider": provider.get(("term_kinds", (cat, name)), "?"),
                "description": k.description,
            }
            for (cat, name), k in sorted(registry.term_kinds.items())
        ]
        cols = ["category", "name", "params", "provider"]
    elif args.what == "backends":
        rows = []
        for n, b in sorted(registry.backends.items()):
            missing = _missing_modules(b.requires)
            rows.append(
                {
                    "name": n,
                    "available": not missing,
                    "missing": missing,
                    "provider": provider.get(("backends", n), "?"),
                    "description": b.description,
                }
            )
        cols = ["name", "available", "missing", "provider"]
    else:
        rows = [
            {
                "name": n,
                "recurrent": a.recurrent,
                "provider": provider.get(("architectures", n), "?"),
                "description": a.description,
            }
            for n, a in sorted(registry.architectures.items())
        ]
        cols = ["name", "recurrent", "provider", "description"]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK

    def cell(v: Any) -> str:
        if isinstance(v, list):
            return ", ".join(map(str, v)) or "-"
        if isinstance(v, bool):
            return "yes" if v else "no"
        return str(v)

    sys.stdout.write(_table([[cell(r[c]) for c in cols] for r in rows], cols))
    if args.what == "terms":
        print("\n(params marked ? have defaults; `rwmspec schema` documents each one)")
    return EXIT_OK


def forward_runtime(argv: list[str]) -> int:
    """Hand a runtime command to ``rwmspec_runtime.cli:main(argv)``; explain what to install when torch is missing."""
    command = argv[0]
    missing = [m for m in ("torch", "rwmspec_runtime") if importlib.util.find_spec(m) is None]
    if missing:
        print(
            f"rwmspec {command}: needs the runtime dependencies ({', '.join(missing)} not installed).\n"
            f"Install them with:  pip install torch==2.13.0 && pip install -e .[runtime]",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    try:
        from rwmspec_runtime.cli import main as runtime_main
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("torch", "mujoco", "rsl_rl", "tensordict", "rwmspec_runtime"):
            print(
                f"rwmspec {command}: the runtime cannot be imported ({exc}).\n"
                f"Install the runtime dependencies with:  pip install -e .[runtime]",
                file=sys.stderr,
            )
            return EXIT_INTERNAL
        raise
    return int(runtime_main(argv) or 0)


# ----------------------------------------------------------------------------------------------------------------------
# parser and main
# ----------------------------------------------------------------------------------------------------------------------
EPILOG = """\
examples:
  rwmspec validate specs/*.toml
  rwmspec show specs/anymal_d_finetune.toml --origin --overlay specs/overlays/tiny.toml
  rwmspec compile specs/anymal_d_init.toml --backend isaaclab --out build/init
  rwmspec run specs/anymal_d_init.toml --overlay specs/overlays/cpu.toml
  rwmspec explain RWM204

[runtime] commands need torch and the simulator: pip install -e .[runtime]
exit codes: 0 ok, 1 spec errors, 2 usage errors, 3 plugin or internal errors
environment: RWMSPEC_FULL_ERROR=1 (tracebacks), RWMSPEC_DISABLE_PLUGINS=a,b (skip entry points), NO_COLOR
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rwmspec",
        description="Declarative model-based RL for legged robots: check, compile and run TOML experiment specs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("validate", help="check specs: types, plugins, cross-table rules (exit 1 on errors)")
    p.add_argument("specs", nargs="+", metavar="SPEC")
    _add_spec_inputs(p)
    _add_format(p)
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("compile", help="write resolved.toml, plan.json and the backend's config dumps")
    p.add_argument("spec", metavar="SPEC")
    _add_spec_inputs(p)
    p.add_argument("--backend", default=None, metavar="NAME", help="backend to compile for (default: the spec's)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    _add_format(p)
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("show", help="print the resolved spec (with --origin: where each value came from)")
    p.add_argument("spec", metavar="SPEC")
    _add_spec_inputs(p)
    p.add_argument("--origin", action="store_true", help="annotate every value with its file:line, --set or default")
    _add_format(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("schema", help="print, check or write the JSON Schema of the spec language")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--check", action="store_true", help="exit 1 when the committed schema differs")
    g.add_argument("--write", action="store_true", help="regenerate the committed schema")
    g.add_argument("--markdown", action="store_true", help="print the key reference of docs/spec.md instead")
    p.add_argument("--path", default=DEFAULT_SCHEMA_PATH, help=f"committed schema (default: {DEFAULT_SCHEMA_PATH})")
    p.add_argument(
        "--builtin-only", action="store_true", help="only the built-in plugins' kinds (what --check and --write use)"
    )
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("explain", help="explain a diagnostic code (What / Why / Example / Fix)")
    p.add_argument("code", nargs="?", metavar="CODE")
    p.add_argument("--all", action="store_true", help="every code, as Markdown (docs/diagnostics.md)")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("plugins", help="installed plugins, versions, hooks and load errors")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("list", help="robots, term kinds, backends or world-model architectures")
    p.add_argument("what", choices=LIST_WHAT)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    for name, text in RUNTIME_COMMANDS.items():
        sub.add_parser(name, help=f"{text} [runtime]", add_help=False)
    return parser


def _internal_error(exc: BaseException) -> int:
    if os.environ.get("RWMSPEC_FULL_ERROR") == "1":
        traceback.print_exc()
    else:
        root = exc
        while root.__cause__ is not None or (root.__context__ is not None and not root.__suppress_context__):
            root = root.__cause__ or root.__context__
        where = f" (caused by {type(root).__name__}: {root})" if root is not exc else ""
        print(
            f"rwmspec: internal error: {type(exc).__name__}: {exc}{where}\n"
            f"This is a bug in rwmspec or a plugin; set RWMSPEC_FULL_ERROR=1 to see the traceback.",
            file=sys.stderr,
        )
    return EXIT_INTERNAL


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in RUNTIME_COMMANDS:
            return forward_runtime(argv)
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.version:
            import rwmspec

            print(f"rwmspec {rwmspec.__version__}")
            return EXIT_OK
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        return args.func(args)
    except SystemExit as exc:  # argparse: usage errors and --help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        print("rwmspec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        from rwmspec.diagnostics import SpecError

        if isinstance(exc, SpecError):  # bad input found by the runtime or a backend
            _print_diagnostics(exc.diagnostics, _default_format(), stream=sys.stderr)
            return _exit_code(exc.diagnostics) or EXIT_SPEC
        return _internal_error(exc)
