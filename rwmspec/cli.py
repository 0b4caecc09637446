"""The `rwmspec` command line.

Built-in commands (validate, compile, show, schema, explain, plugins, list) need only the light dependencies. Every
other command is a plugin's ``CommandDef`` (the runtime adds run, eval, play, eval-model and export): `rwmspec
--help` lists it from the record alone, and its ``configure`` and ``handler`` are imported only when it is invoked,
so listing and validating never import torch. A ``CommandDef`` that shadows a built-in command is a plugin problem
(RWM305), not silently dropped.

Errors are turned into exit codes once, in ``main``, for built-in and plugin commands alike: 0 ok, 1 bad input
(rendered as diagnostics, no traceback), 2 usage errors, 3 plugin or internal errors (a command's module that is not
installed included), 130 interrupted. ``RWMSPEC_FULL_ERROR=1`` prints the Python traceback of internal errors;
``RWMSPEC_DISABLE_PLUGINS=a,b`` skips entry points by name.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rwmspec.manager import PluginProblem, Registry
    from rwmspec.types import CommandDef

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
#: Commands of rwmspec itself; a plugin's ``CommandDef`` of the same name is reported and never runs.
BUILTIN_COMMANDS = ("validate", "compile", "show", "schema", "explain", "plugins", "list")
DEFAULT_SCHEMA_PATH = "specs/rwmspec.schema.json"


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


def add_spec_inputs(p: argparse.ArgumentParser) -> None:
    """``--overlay FILE`` (``args.overlay``) and ``--set KEY=VALUE`` (``args.sets``), lists in the order given.

    Every command that reads a spec takes these, the runtime's ``run`` included, so they mean the same everywhere.
    """
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
    from rwmspec.manager import problem_diagnostics

    fmt = args.output_format or _default_format()
    registry = cli_registry()
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
    from rwmspec.plan import plan_to_dict

    fmt = args.output_format or _default_format()
    registry = cli_registry()
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
    from rwmspec.schema import build_schema, schema_text

    if args.markdown:
        from rwmspec.schema import reference_markdown

        sys.stdout.write(reference_markdown())
        return EXIT_OK
    registry = cli_registry()
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
        from rwmspec.diagnostics import suggest

        close = suggest(code, CODES)
        more = f"; did you mean {close}?" if close else ""
        print(
            f"rwmspec explain: unknown code '{args.code}'{more} (codes: {min(CODES)}..{max(CODES)}, see "
            f"`rwmspec explain --all`)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    sys.stdout.write(explain(code))
    return EXIT_OK


# ----------------------------------------------------------------------------------------------------------------------
# plugin commands
# ----------------------------------------------------------------------------------------------------------------------
def plugin_commands(registry: Registry) -> dict[str, CommandDef]:
    """The plugins' commands that can run, by name: all but those that shadow a built-in (``command_problems``)."""
    return {name: c for name, c in registry.commands.items() if name not in BUILTIN_COMMANDS}


def command_problems(registry: Registry) -> list[PluginProblem]:
    """RWM305 for every plugin command named like a built-in one: the built-in runs, so the plugin's never would."""
    from rwmspec.manager import PluginProblem

    return [
        PluginProblem(
            "RWM305",
            f"command '{name}' of plugin {registry.providers.get(('commands', name), '?')} shadows rwmspec's built-in "
            f"command '{name}', so it never runs",
            "rename the plugin's CommandDef, or disable the plugin with RWMSPEC_DISABLE_PLUGINS=<entry point name>",
        )
        for name in sorted(registry.commands)
        if name in BUILTIN_COMMANDS
    ]


def cli_registry() -> Registry:
    """The installed plugins' registry with the problems only the CLI can see (shadowed commands) among its own."""
    import attrs

    from rwmspec.manager import get_registry

    registry = get_registry()
    extra = command_problems(registry)
    return attrs.evolve(registry, problems=[*registry.problems, *extra]) if extra else registry


def _not_installed(exc: ModuleNotFoundError) -> bool:
    """The import failed because the module's package is not installed (not, say, a typo inside an installed one)."""
    if not exc.name:
        return False
    try:
        return importlib.util.find_spec(exc.name.split(".")[0]) is None
    except (ImportError, ValueError):
        return True


def _missing_module(command: str, exc: ModuleNotFoundError, registry: Registry) -> int:
    """A plugin command needs a module that is not installed: say which, and how to install it."""
    top = str(exc.name).split(".")[0]
    # the backends' Requirement records know the right install command for the modules they share with commands
    installs = {r.module.split(".")[0]: r.install for b in registry.backends.values() for r in b.requires}
    provider = registry.providers.get(("commands", command), "?")
    print(
        f"rwmspec {command}: needs the Python module '{top}', which is not installed "
        f"(the command comes from plugin {provider}).\n"
        f"Install it with:  {installs.get(top, f'pip install {top}')}",
        file=sys.stderr,
    )
    return EXIT_INTERNAL


def _add_plugin_command(
    sub: argparse._SubParsersAction, name: str, command: CommandDef, plugin: str, invoked: bool
) -> None:
    """Add a plugin command; only the invoked one imports its ``configure`` and ``handler``."""
    from rwmspec.manager import resolve

    help_line = f"{command.help} [{plugin}]"
    if not invoked:
        sub.add_parser(name, help=help_line, add_help=False)
        return
    p = sub.add_parser(
        name,
        help=help_line,
        description=command.help,
        epilog=command.epilog or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    configure: Callable[[argparse.ArgumentParser], None] = resolve(command.configure)
    configure(p)
    p.set_defaults(func=resolve(command.handler))


# ----------------------------------------------------------------------------------------------------------------------
# plugins and list
# ----------------------------------------------------------------------------------------------------------------------
def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join(lines) + "\n"


def _key_text(key: Any) -> str:
    return key if isinstance(key, str) else "/".join(map(str, key))


def _records_by_provider(registry: Registry) -> dict[str, dict[str, list[str]]]:
    """provider -> record table (``robots``, ``assets``, ``bindings``, ...) -> the keys it provided there."""
    out: dict[str, dict[str, list[str]]] = {}
    for (table, key), provider in sorted(registry.providers.items(), key=lambda item: (item[0][0], str(item[0][1]))):
        out.setdefault(provider, {}).setdefault(table, []).append(_key_text(key))
    return out


def cmd_plugins(args: argparse.Namespace) -> int:
    from rwmspec.diagnostics import render
    from rwmspec.manager import problem_diagnostics

    registry = cli_registry()
    diags = problem_diagnostics(registry)
    records = _records_by_provider(registry)
    if args.json:
        data = {
            "plugins": [
                {
                    "name": p.name,
                    "module": p.module,
                    "distribution": p.distribution,
                    "version": p.version,
                    "hooks": list(p.hooks),
                    "records": records.get(p.provider, {}),
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
                "FAILED"
                if p.error
                else ", ".join(f"{table} {len(keys)}" for table, keys in records.get(p.provider, {}).items()) or "-",
            ]
            for p in registry.plugins
        ]
        sys.stdout.write(_table(rows, ["plugin", "distribution", "module", "records"]))
        if diags:
            sys.stdout.write("\n" + render(diags, "concise"))
    return EXIT_INTERNAL if diags else EXIT_OK


def _params_text(params_type: Any) -> str:
    import attrs

    if params_type is None or not attrs.has(params_type):
        return "-"
    out = []
    for f in attrs.fields(params_type):
        out.append(f.name if f.default is attrs.NOTHING else f"{f.name}?")
    return ", ".join(out)


#: rows of one `rwmspec list WHAT` table and the columns the text table shows (JSON has every key)
ListRows = tuple[list[dict[str, Any]], list[str]]


def _list_robots(registry: Registry) -> ListRows:
    rows = [
        {
            "name": n,
            "provider": registry.providers.get(("robots", n), "?"),
            "joints": len(r.joint_names),
            "state_blocks": [f"{b.name}({b.dim})" for b in r.state_blocks],
            "contact_groups": [g.name for g in r.contact_groups],
            "assets": sorted(backend for robot, backend in registry.assets if robot == n),
            "description": r.description,
        }
        for n, r in sorted(registry.robots.items())
    ]
    return rows, ["name", "joints", "state_blocks", "contact_groups", "assets", "provider"]


def _list_assets(registry: Registry) -> ListRows:
    rows = [
        {
            "robot": robot,
            "backend": backend,
            "ref": a.ref,
            "provider": registry.providers.get(("assets", (robot, backend)), "?"),
            "description": a.description,
        }
        for (robot, backend), a in sorted(registry.assets.items())
    ]
    return rows, ["robot", "backend", "ref", "provider"]


def _list_terms(registry: Registry) -> ListRows:
    rows = [
        {
            "category": cat,
            "name": name,
            "params": _params_text(k.params_type),
            "reads": list(k.reads),
            "bindings": sorted(b for b, c, n in registry.bindings if (c, n) == (cat, name)),
            "provider": registry.providers.get(("term_kinds", (cat, name)), "?"),
            "description": k.description,
        }
        for (cat, name), k in sorted(registry.term_kinds.items())
    ]
    return rows, ["category", "name", "params", "bindings", "provider"]


def _list_bindings(registry: Registry) -> ListRows:
    rows = [
        {
            "backend": backend,
            "category": cat,
            "kind": kind,
            "ref": b.ref,
            "provider": registry.providers.get(("bindings", (backend, cat, kind)), "?"),
        }
        for (backend, cat, kind), b in sorted(registry.bindings.items())
    ]
    return rows, ["backend", "category", "kind", "ref", "provider"]


def _list_view_fields(registry: Registry) -> ListRows:
    rows = [
        {
            "name": n,
            "width": f.width,
            "provider": registry.providers.get(("view_fields", n), "?"),
            "description": f.description,
        }
        for n, f in sorted(registry.view_fields.items())
    ]
    return rows, ["name", "width", "provider", "description"]


def _list_backends(registry: Registry) -> ListRows:
    from rwmspec.compile import missing_requirements

    rows = []
    for n, b in sorted(registry.backends.items()):
        missing = missing_requirements(registry, n)
        rows.append(
            {
                "name": n,
                "available": not missing,
                "requires": [r.module for r in b.requires],
                "missing": [{"message": d.message, "hint": d.hint} for d in missing],
                "provider": registry.providers.get(("backends", n), "?"),
                "description": b.description,
            }
        )
    return rows, ["name", "available", "requires", "provider"]


def _list_architectures(registry: Registry) -> ListRows:
    rows = [
        {
            "name": n,
            "recurrent": a.recurrent,
            "provider": registry.providers.get(("architectures", n), "?"),
            "description": a.description,
        }
        for n, a in sorted(registry.architectures.items())
    ]
    return rows, ["name", "recurrent", "provider", "description"]


def _list_stages(registry: Registry) -> ListRows:
    rows = [
        {
            "name": n,
            "steps": list(st.steps),
            "world_model": st.world_model,
            "imagination": st.imagination,
            "references": list(st.references),
            "provider": registry.providers.get(("stages", n), "?"),
            "description": st.description,
        }
        for n, st in sorted(registry.stages.items())
    ]
    return rows, ["name", "steps", "world_model", "imagination", "references", "provider"]


def _list_steps(registry: Registry) -> ListRows:
    rows = [
        {
            "name": n,
            "step": st.step,
            "provider": registry.providers.get(("steps", n), "?"),
            "description": st.description,
        }
        for n, st in sorted(registry.steps.items())
    ]
    return rows, ["name", "step", "provider"]


def _list_commands(registry: Registry) -> ListRows:
    rows = [
        {
            "name": n,
            "runs": n not in BUILTIN_COMMANDS,
            "help": c.help,
            "provider": registry.providers.get(("commands", n), "?"),
        }
        for n, c in sorted(registry.commands.items())
    ]
    return rows, ["name", "runs", "help", "provider"]


#: `rwmspec list WHAT`: one table per record kind the plugins register
LISTS: dict[str, Callable[[Registry], ListRows]] = {
    "robots": _list_robots,
    "assets": _list_assets,
    "terms": _list_terms,
    "bindings": _list_bindings,
    "view-fields": _list_view_fields,
    "backends": _list_backends,
    "architectures": _list_architectures,
    "stages": _list_stages,
    "steps": _list_steps,
    "commands": _list_commands,
}


def _cell(v: Any) -> str:
    if isinstance(v, list):
        return ", ".join(map(str, v)) or "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def cmd_list(args: argparse.Namespace) -> int:
    registry = cli_registry()
    rows, cols = LISTS[args.what](registry)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    sys.stdout.write(_table([[_cell(r[c]) for c in cols] for r in rows], cols))
    if args.what == "terms":
        print("\n(params marked ? have defaults; `rwmspec schema` documents each one)")
    if args.what == "backends":
        missing = [f"  {r['name']}: {m['message']} ({m['hint']})" for r in rows for m in r["missing"]]
        if missing:
            print("\nmissing:\n" + "\n".join(missing))
    if args.what == "commands" and not all(r["runs"] for r in rows):
        print("\n(commands that do not run are shadowed by a built-in command; see `rwmspec plugins`)")
    return EXIT_OK


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

a command marked [name] comes from plugin name (`rwmspec list commands`); those of the runtime need torch and
the simulator: pip install -e .[runtime]
exit codes: 0 ok, 1 spec errors, 2 usage errors, 3 plugin or internal errors, 130 interrupted
environment: RWMSPEC_FULL_ERROR=1 (tracebacks), RWMSPEC_DISABLE_PLUGINS=a,b (skip entry points), NO_COLOR
"""


def build_parser(registry: Registry | None = None, invoked: str | None = None) -> argparse.ArgumentParser:
    """The `rwmspec` parser: the built-in commands and, with a ``registry``, its plugins' commands.

    Only the ``invoked`` plugin command gets its arguments (its ``configure`` is imported); the others are listed
    with their help lines, which is all `rwmspec --help` shows.
    """
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
    add_spec_inputs(p)
    _add_format(p)
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("compile", help="write resolved.toml, plan.json and the backend's config dumps")
    p.add_argument("spec", metavar="SPEC")
    add_spec_inputs(p)
    p.add_argument("--backend", default=None, metavar="NAME", help="backend to compile for (default: the spec's)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    _add_format(p)
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("show", help="print the resolved spec (with --origin: where each value came from)")
    p.add_argument("spec", metavar="SPEC")
    add_spec_inputs(p)
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

    p = sub.add_parser("plugins", help="installed plugins, versions, the records each registered, load errors")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("list", help="what the plugins registered: " + ", ".join(LISTS))
    p.add_argument("what", choices=tuple(LISTS))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    if registry is not None:
        plugin_of = {info.provider: info.name for info in registry.plugins}
        for name, command in plugin_commands(registry).items():
            provider = registry.providers.get(("commands", name), "?")
            _add_plugin_command(sub, name, command, plugin_of.get(provider, provider), invoked=name == invoked)
    return parser


def _sources(diags: Sequence[Any]) -> dict[str, str]:
    """The text of every file the diagnostics point into, for the full format's source lines."""
    out = {}
    for d in diags:
        if d.file and d.line is not None and d.file not in out and Path(d.file).is_file():
            out[d.file] = Path(d.file).read_text(encoding="utf-8", errors="replace")
    return out


def _internal_error(exc: BaseException) -> int:
    from rwmspec.diagnostics import root_cause

    if os.environ.get("RWMSPEC_FULL_ERROR") == "1":
        traceback.print_exc()
    else:
        root = root_cause(exc)
        where = f" (caused by {type(root).__name__}: {root})" if root is not exc else ""
        print(
            f"rwmspec: internal error: {type(exc).__name__}: {exc}{where}\n"
            f"This is a bug in rwmspec or a plugin; set RWMSPEC_FULL_ERROR=1 to see the traceback.",
            file=sys.stderr,
        )
    return EXIT_INTERNAL


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # the command is the first word that is no option: the only global options (--help, --version) take no value
    invoked = next((a for a in argv if not a.startswith("-")), None)
    registry, plugin_command = None, None
    try:
        registry = cli_registry()
        plugin_command = invoked if invoked in plugin_commands(registry) else None
        parser = build_parser(registry, plugin_command)
        args = parser.parse_args(argv)
        if args.version:
            import rwmspec

            print(f"rwmspec {rwmspec.__version__}")
            return EXIT_OK
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        return int(args.func(args) or EXIT_OK)
    except SystemExit as exc:  # argparse: usage errors and --help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        print("\nrwmspec: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except ModuleNotFoundError as exc:
        # a plugin command whose module (or a module it imports) is not installed: an install problem, not a bug
        if registry is not None and plugin_command is not None and _not_installed(exc):
            return _missing_module(plugin_command, exc, registry)
        return _internal_error(exc)
    except Exception as exc:
        from rwmspec.diagnostics import SpecError

        if isinstance(exc, SpecError):  # bad input found by a command, the runtime or a backend
            _print_diagnostics(exc.diagnostics, _default_format(), _sources(exc.diagnostics), stream=sys.stderr)
            return _exit_code(exc.diagnostics) or EXIT_SPEC
        return _internal_error(exc)
