"""The Python API behind `rwmspec validate`, `compile` and `show`: load -> structure -> checks -> compile_plan.

``load_and_compile`` never raises for bad input; every problem is a located ``Diagnostic`` in the result. When the
spec has structural errors, the checks and the compiler still run on the partial spec (offending values replaced
by defaults) so that one call reports everything; their findings below a removed value are dropped as
consequences. Each rule has one owner among the three steps, so nothing is reported twice and nothing is merged.

``check_spec`` runs the same steps on a ``Spec`` built in Python (path-only diagnostics, no file).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from rwmspec.compile import compile_plan
from rwmspec.diagnostics import Diagnostic, has_errors, sort_key
from rwmspec.plan import Plan
from rwmspec.spec.checks import run_checks
from rwmspec.spec.load import KeyPath, LoadedSpec, load_spec, resolved_dict
from rwmspec.spec.model import Spec
from rwmspec.spec.structure import structure_spec

if TYPE_CHECKING:
    from rwmspec.manager import Registry

#: in a fragment, these describe what other files supply, not problems of the fragment itself
_FRAGMENT_IGNORED = ("RWM102", "RWM207", "RWM211")


@attrs.frozen
class Result:
    spec: Spec | None
    plan: Plan | None
    diagnostics: list[Diagnostic]
    loaded: LoadedSpec

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def _under(path: KeyPath, prefixes: Iterable[KeyPath]) -> bool:
    return any(path[: len(p)] == p for p in prefixes)


def _written_leaf(loaded: LoadedSpec, path: KeyPath) -> bool:
    layer_no = loaded.where.get(path)
    if layer_no is None or loaded.layers[layer_no].source == "default":
        return False
    node: Any = loaded.raw
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    return not isinstance(node, dict)


def _fragment_filter(loaded: LoadedSpec, diags: list[Diagnostic]) -> list[Diagnostic]:
    """A fragment is responsible only for the values it writes (and for keys that do not exist)."""
    return [
        d
        for d in diags
        if not d.path
        or d.code == "RWM101"
        or (d.code not in _FRAGMENT_IGNORED and _written_leaf(loaded, tuple(d.path)))
    ]


def load_and_compile(
    path: str | os.PathLike,
    overlays: Sequence[str | os.PathLike] = (),
    sets: Sequence[str] = (),
    registry: Registry | None = None,
    *,
    fragment: bool | None = None,
) -> Result:
    """Load a spec and compile its Plan, collecting every diagnostic.

    :param fragment: check the file as a fragment (see ``load_spec``); default: files under ``base/`` or
        ``overlays/`` folders.
    :return: ``Result(spec, plan, diagnostics, loaded)``; ``plan`` is None when any error was found.
    """
    if registry is None:
        from rwmspec.manager import get_registry

        registry = get_registry()
    loaded = load_spec(path, overlays, sets, registry, fragment=fragment)
    diags = list(loaded.diagnostics)
    target = loaded.spec or loaded.partial
    plan = None
    if target is not None:
        candidate, found = _check_and_compile(target, registry, Path(path))
        found = [d for d in found if not _under(tuple(d.path), loaded.removed)]
        diags += loaded.locate_all(found)
        if loaded.spec is not None and not has_errors(diags):
            plan = candidate
    if loaded.fragment:
        diags = _fragment_filter(loaded, diags)
        plan = None
    return Result(loaded.spec, plan, sorted(diags, key=sort_key), loaded)


def _check_and_compile(spec: Spec, registry: Registry, spec_file: Path) -> tuple[Plan | None, list[Diagnostic]]:
    plan, compiled = compile_plan(spec, registry, spec_file=spec_file)
    return plan, run_checks(spec, registry) + compiled


def check_spec(spec: Spec, registry: Registry, *, spec_file: str | os.PathLike) -> tuple[Plan | None, list[Diagnostic]]:
    """Every step of ``load_and_compile`` but loading, for a spec built in Python: its tables are written out as a
    user would write them and structured again, then checked and compiled.

    :param spec_file: where the spec would live; run references resolve relative to its folder.
    :return: the Plan (None on any error) and every diagnostic, each with its key path only.
    """
    structured = structure_spec(resolved_dict(spec), registry)
    found = [rp.diagnostic for rp in structured.problems]
    target = structured.spec or structured.partial
    if target is None:
        return None, found
    plan, more = _check_and_compile(target, registry, Path(spec_file))
    found += [d for d in more if not _under(tuple(d.path), structured.removed)]
    return (plan if structured.spec is not None and not has_errors(found) else None), found


# ----------------------------------------------------------------------------------------------------------------------
# the resolved spec as TOML
# ----------------------------------------------------------------------------------------------------------------------
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else _string(k)


def _string(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_value(v: Any) -> str:
    """One TOML value (inline form)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {toml_value(x)}" for k, x in v.items()) + "}" if v else "{}"
    if hasattr(v, "isoformat"):
        return v.isoformat()
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def dumps_toml(data: dict[str, Any], comments: dict[KeyPath, str] | None = None) -> str:
    """A small TOML writer: scalars and arrays first, then one ``[table]`` per nested table.

    Empty tables are written as headers so that they survive a round trip; ``comments`` adds a trailing
    ``# comment`` to the given leaves (used by ``rwmspec show --origin``).
    """
    comments = comments or {}
    lines: list[str] = []

    def leaf(path: KeyPath, k: str, v: Any) -> str:
        line = f"{_key(k)} = {toml_value(v)}"
        note = comments.get((*path, k))
        return f"{line}  # {note}" if note else line

    def table(path: KeyPath, node: dict[str, Any]) -> None:
        scalars = [(k, v) for k, v in node.items() if not isinstance(v, dict)]
        tables = [(k, v) for k, v in node.items() if isinstance(v, dict)]
        if path and (scalars or not tables):
            if lines:
                lines.append("")
            lines.append("[" + ".".join(_key(str(p)) for p in path) + "]")
        lines.extend(leaf(path, k, v) for k, v in scalars)
        for k, v in tables:
            table((*path, k), v)

    table((), data)
    return "\n".join(lines) + "\n"


def resolved_toml(spec: Spec, origins: dict[KeyPath, Any] | None = None) -> str:
    """The resolved spec as TOML; with ``origins``, each value carries a comment saying where it came from."""
    data = resolved_dict(spec)
    comments = None
    if origins is not None:
        comments = {}

        def walk(node: Any, path: KeyPath) -> None:
            for k, v in node.items():
                p = (*path, k)
                if isinstance(v, dict):
                    walk(v, p)
                else:
                    comments[p] = str(origins.get(p, "default"))

        walk(data, ())
    header = "# resolved by rwmspec: the spec merged with its extends chain, overlays, --set and defaults\n"
    return header + dumps_toml(data, comments)
