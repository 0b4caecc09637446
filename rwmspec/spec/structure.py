"""Structuring the merged raw dict into the attrs model, with every problem turned into a diagnostic.

One cattrs ``Converter(forbid_extra_keys=True)`` with detailed validation does the work. Its default hooks
convert silently (``int("5")``, ``str(5)``, iterating a string as a list), so strict hooks replace them for
primitives, ``Literal``, unions, tuples, lists and dicts. The exception groups cattrs raises are walked by
``iter_errors`` into ``(path, exception)`` pairs, and each pair becomes a ``Diagnostic`` whose message rwmspec
writes itself.

Term tables are prepared before structuring: keys besides the common ones (``weight``, ``mode``, ...) are the term
kind's params; they are moved into ``params`` and checked against ``registry.term_kinds[(category, kind)]``'s params
class. ``[robot.options]``, ``[backend.options]`` and ``[world_model.options]`` are checked against the options
class of the plugin they name.

When a spec has structural errors, the offending values are removed and structuring is retried, so that the
semantic checks still run on the rest (``StructureResult.partial``): one ``validate`` run reports everything.
"""

from __future__ import annotations

import copy
import datetime
import difflib
import json
import types
import typing
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any, Literal

import attrs
import cattrs
from cattrs.errors import AttributeValidationNote, ClassValidationError, ForbiddenExtraKeysError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn

from rwmspec.diagnostics import Diagnostic, dotted
from rwmspec.spec.model import (
    ActionTermSpec,
    BackendSpec,
    CommandTermSpec,
    EventTermSpec,
    ObservationTermSpec,
    RewardTermSpec,
    Spec,
    TerminationTermSpec,
    WorldModelSpec,
)

Path = tuple[str | int, ...]

#: spec table -> (term category, attrs class of one term table)
TERM_TABLES: dict[str, tuple[str, type]] = {
    "commands": ("command", CommandTermSpec),
    "actions": ("action", ActionTermSpec),
    "events": ("event", EventTermSpec),
    "terminations": ("termination", TerminationTermSpec),
    "rewards": ("reward", RewardTermSpec),
}


# ----------------------------------------------------------------------------------------------------------------------
# problems raised by the strict hooks
# ----------------------------------------------------------------------------------------------------------------------
class Problem(Exception):
    """A structuring problem with rwmspec's own code, message and hint."""

    def __init__(self, code: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint


class _Group(Exception):
    """Several problems below one value (list elements, dict entries), each with its sub-path."""

    def __init__(self, items: list[tuple[Path, BaseException]]):
        super().__init__(f"{len(items)} problems")
        self.items = items


def suggest(name: str, choices: Sequence[str]) -> str | None:
    """The closest choice to a misspelt name, if any is close."""
    found = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(name: str, choices: Sequence[str]) -> str:
    s = suggest(name, choices)
    return f"; did you mean '{s}'?" if s else ""


def list_choices(choices: Sequence[str], limit: int = 16) -> str:
    names = [str(c) for c in choices]
    if not names:
        return "(none)"
    if len(names) > limit:
        return ", ".join(names[:limit]) + f", ... ({len(names) - limit} more)"
    return ", ".join(names)


def describe_value(v: Any) -> str:
    if isinstance(v, bool):
        return f"the boolean {str(v).lower()}"
    if isinstance(v, int):
        return f"the integer {v}"
    if isinstance(v, float):
        return f"the number {v!r}"
    if isinstance(v, str):
        return f"the string {json.dumps(v)}"
    if isinstance(v, list | tuple):
        return f"an array of {len(v)} value{'s' if len(v) != 1 else ''}"
    if isinstance(v, dict):
        return "a table"
    if isinstance(v, datetime.date | datetime.time):
        return f"the date/time {v.isoformat()}"
    return f"a {type(v).__name__}"


_NAMES = {
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
    str: ("a string", "strings"),
    bool: ("a boolean", "booleans"),
}


def describe_type(t: Any, plural: bool = False) -> str:
    if t in _NAMES:
        return _NAMES[t][plural]
    if t is Any:
        return "values" if plural else "any value"
    origin = typing.get_origin(t)
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(a) for a in typing.get_args(t))
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(t) if a is not type(None)]
        return " or ".join(describe_type(m, plural) for m in members)
    if origin in (list, tuple):
        args = typing.get_args(t)
        if origin is tuple and args and args[-1] is not Ellipsis:
            inner = describe_type(args[0], plural=len(args) != 1) if len(set(args)) == 1 else "values"
            return f"arrays of {len(args)} {inner}" if plural else f"an array of {len(args)} {inner}"
        inner = describe_type(args[0], plural=True) if args else "values"
        return f"arrays of {inner}" if plural else f"an array of {inner}"
    if origin is dict or attrs.has(t) or t is dict:
        return "tables" if plural else "a table"
    return getattr(t, "__name__", str(t))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _mismatch(expected: Any, value: Any) -> Problem:
    hint = None
    if isinstance(value, str) and expected in (int, float):
        if _is_number(value):
            hint = "remove the quotes around the number"
    elif isinstance(value, str) and expected is bool and value.lower() in ("true", "false"):
        hint = f"write {value.lower()} without quotes"
    elif expected is int and isinstance(value, float) and value.is_integer():
        hint = f"write {int(value)} without a decimal point"
    elif expected is str and isinstance(value, int | float | bool):
        hint = "put the value in quotes"
    return Problem("RWM103", f"expected {describe_type(expected)}, got {describe_value(value)}", hint)


# ----------------------------------------------------------------------------------------------------------------------
# strict hooks
# ----------------------------------------------------------------------------------------------------------------------
def _structure_int(v: Any, _: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    raise _mismatch(int, v)


def _structure_float(v: Any, _: Any) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    raise _mismatch(float, v)


def _structure_str(v: Any, _: Any) -> str:
    if isinstance(v, str):
        return v
    raise _mismatch(str, v)


def _structure_bool(v: Any, _: Any) -> bool:
    if isinstance(v, bool):
        return v
    raise _mismatch(bool, v)


def _is_literal(t: Any) -> bool:
    return typing.get_origin(t) is Literal


def _is_union(t: Any) -> bool:
    return typing.get_origin(t) in (typing.Union, types.UnionType)


def _is_list(t: Any) -> bool:
    origin = typing.get_origin(t)
    return origin is list or (origin is tuple and typing.get_args(t)[-1:] == (Ellipsis,)) or t is list


def _is_fixed_tuple(t: Any) -> bool:
    return typing.get_origin(t) is tuple and typing.get_args(t)[-1:] != (Ellipsis,)


def _is_dict(t: Any) -> bool:
    return typing.get_origin(t) is dict or t is dict


def _accepts(t: Any, v: Any) -> bool:
    """Shallow check: could ``v`` be a value of type ``t``? Used to pick a union member."""
    if t is Any:
        return True
    if t is bool:
        return isinstance(v, bool)
    if t is int:
        return isinstance(v, int) and not isinstance(v, bool)
    if t is float:
        return isinstance(v, int | float) and not isinstance(v, bool)
    if t is str:
        return isinstance(v, str)
    if t is type(None):
        return v is None
    if _is_literal(t):
        return any(v == a and type(v) is type(a) for a in typing.get_args(t))
    if _is_list(t) or _is_fixed_tuple(t):
        return isinstance(v, list | tuple)
    if _is_dict(t) or attrs.has(t):
        return isinstance(v, dict)
    return isinstance(v, t) if isinstance(t, type) else False


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)

    def literal_factory(t: Any) -> Any:
        allowed = typing.get_args(t)

        def hook(v: Any, _: Any) -> Any:
            for a in allowed:
                if v == a and type(v) is type(a):
                    return a
            if not any(isinstance(v, type(a)) for a in allowed):
                raise Problem("RWM103", f"expected {describe_type(t)}, got {describe_value(v)}")
            hint = None
            s = suggest(str(v), [str(a) for a in allowed])
            if s:
                hint = f"did you mean {json.dumps(s)}?"
            raise Problem("RWM104", f"must be {describe_type(t)} (got {json.dumps(v)})", hint)

        return hook

    def union_factory(t: Any) -> Any:
        members = typing.get_args(t)

        def hook(v: Any, _: Any) -> Any:
            if v is None and type(None) in members:
                return None
            candidates = [m for m in members if m is not type(None)]
            for m in candidates:
                if _accepts(m, v):
                    return conv.structure(v, m)
            if len(candidates) == 1:  # X | None: report as X
                return conv.structure(v, candidates[0])
            raise Problem("RWM103", f"expected {describe_type(t)}, got {describe_value(v)}")

        return hook

    def fixed_tuple_factory(t: Any) -> Any:
        args = typing.get_args(t)

        def hook(v: Any, _: Any) -> Any:
            if not isinstance(v, list | tuple):
                raise Problem("RWM103", f"expected {describe_type(t)}, got {describe_value(v)}")
            if len(v) != len(args):
                raise Problem("RWM103", f"expected {describe_type(t)}, got {len(v)} value{'s' * (len(v) != 1)}")
            return tuple(_structure_items(conv, enumerate(v), lambda i: args[i]))

        return hook

    def list_factory(t: Any) -> Any:
        args = typing.get_args(t)
        item = args[0] if args else Any
        as_tuple = typing.get_origin(t) is tuple

        def hook(v: Any, _: Any) -> Any:
            if not isinstance(v, list | tuple):
                raise Problem("RWM103", f"expected {describe_type(t)}, got {describe_value(v)}")
            out = _structure_items(conv, enumerate(v), lambda i: item)
            return tuple(out) if as_tuple else out

        return hook

    def dict_factory(t: Any) -> Any:
        args = typing.get_args(t)
        item = args[1] if len(args) == 2 else Any

        def hook(v: Any, _: Any) -> Any:
            if not isinstance(v, dict):
                raise Problem("RWM103", f"expected a table, got {describe_value(v)}")
            values = _structure_items(conv, v.items(), lambda k: item)
            return dict(zip(v.keys(), values, strict=True))

        return hook

    def attrs_factory(cl: type) -> Any:
        attrs.resolve_types(cl)
        inner = make_dict_structure_fn(cl, conv)

        def hook(v: Any, _: Any) -> Any:
            if not isinstance(v, dict):
                raise Problem("RWM103", f"expected a table, got {describe_value(v)}")
            return inner(v, cl)

        return hook

    conv.register_structure_hook_factory(attrs.has, attrs_factory)
    conv.register_structure_hook_factory(_is_dict, dict_factory)
    conv.register_structure_hook_factory(_is_list, list_factory)
    conv.register_structure_hook_factory(_is_fixed_tuple, fixed_tuple_factory)
    conv.register_structure_hook_factory(_is_union, union_factory)
    conv.register_structure_hook_factory(_is_literal, literal_factory)
    conv.register_structure_hook_func(lambda t: t is Any, lambda v, _: v)
    return conv


def _structure_items(conv: cattrs.Converter, items: Any, type_of: Any) -> list[Any]:
    out, problems = [], []
    for key, value in items:
        try:
            out.append(conv.structure(value, type_of(key)))
        except Exception as exc:  # collected: every element is checked
            problems.append(((key,), exc))
    if problems:
        raise _Group(problems)
    return out


@cache
def converter() -> cattrs.Converter:
    """The shared strict converter (built on first use)."""
    return _make_converter()


# ----------------------------------------------------------------------------------------------------------------------
# error walker
# ----------------------------------------------------------------------------------------------------------------------
def iter_errors(
    exc: BaseException, path: Path = (), owner: type | None = None
) -> Iterator[tuple[Path, BaseException, type | None]]:
    """Flatten cattrs' exception groups (and ours) into ``(path, exception, owning attrs class)``."""
    if isinstance(exc, _Group):
        for sub, e in exc.items:
            yield from iter_errors(e, path + sub, owner)
    elif isinstance(exc, BaseExceptionGroup):
        cl = exc.cl if isinstance(exc, ClassValidationError) else owner
        for e in exc.exceptions:
            sub = path
            for note in getattr(e, "__notes__", ()):
                if isinstance(note, AttributeValidationNote):
                    sub = (*path, note.name)
                elif isinstance(note, IterableValidationNote):
                    sub = (*path, note.index)
            yield from iter_errors(e, sub, cl)
    else:
        yield path, exc, owner


def _field_doc(cl: type | None, name: str) -> str | None:
    if cl is None or not attrs.has(cl):
        return None
    f = attrs.fields_dict(cl).get(name)
    return f.metadata.get("doc") if f is not None else None


def _public_fields(cl: type) -> list[str]:
    return [f.name for f in attrs.fields(cl)] if attrs.has(cl) else []


@attrs.frozen
class RawProblem:
    """A diagnostic before it is located in a file; ``key`` says whether the key (not its value) is at fault."""

    diagnostic: Diagnostic
    key: bool = False


def errors_to_problems(
    exc: BaseException, base: Path = (), *, code_override: str | None = None, what: str = "key"
) -> list[RawProblem]:
    """Diagnostics (path only) for a structuring exception."""
    out = []
    for path, e, owner in iter_errors(exc, base):
        if isinstance(e, ForbiddenExtraKeysError):
            valid = _public_fields(e.cl)
            for key in sorted(e.extra_fields):
                msg = f"unknown {what} '{key}'{did_you_mean(key, valid)}"
                out.append(
                    RawProblem(
                        Diagnostic(
                            code_override or "RWM101",
                            msg,
                            (*path, key),
                            hint=f"valid {what}s here: {list_choices(valid)}",
                        ),
                        key=True,
                    )
                )
        elif isinstance(e, KeyError):
            name = path[-1] if path else str(e)
            doc = _field_doc(owner, str(name))
            field_type = _hints(owner).get(name) if owner is not None and attrs.has(owner) else None
            what_to_add = f"a [{dotted(path)}] table" if attrs.has(_strip_optional(field_type)) else f"`{name} = ...`"
            hint = f"add {what_to_add}" + (f": {doc}" if doc else "")
            out.append(
                RawProblem(Diagnostic(code_override or "RWM102", f"missing required {what} '{name}'", path, hint=hint))
            )
        elif isinstance(e, Problem):
            out.append(RawProblem(Diagnostic(code_override or e.code, e.message, path, hint=e.hint)))
        else:  # a validator of a plugin's params class, or anything else cattrs raised: keep its own words
            message = str(e) if isinstance(e, ValueError | TypeError) else f"{type(e).__name__}: {e}"
            out.append(RawProblem(Diagnostic(code_override or "RWM103", message, path)))
    return out


# ----------------------------------------------------------------------------------------------------------------------
# term tables and plugin options
# ----------------------------------------------------------------------------------------------------------------------
def _plugin_load_hint(registry: Any) -> str:
    failed = [p.name for p in getattr(registry, "plugins", ()) if p.error]
    if failed:
        return f"; plugin(s) {', '.join(repr(f) for f in failed)} failed to load (run `rwmspec plugins`)"
    return ""


def structure_params(
    params: dict[str, Any],
    params_type: type | None,
    *,
    where: dict[str, Path],
    term_path: Path,
    label: str,
    code: str,
    what: str = "parameter",
    also: Sequence[str] = (),
) -> tuple[dict[str, Any], list[RawProblem]]:
    """Check ``params`` against ``params_type``; return them with defaults filled, or as given when invalid.

    ``where`` maps each key to the table it was written in (flat in the term table, or under ``params``);
    ``also`` are other valid keys of that table, offered as did-you-mean suggestions for unknown keys.
    """
    if params_type is None:
        problems = [
            RawProblem(
                Diagnostic(
                    code, f"unknown {what} '{k}': {label} takes no {what}s{did_you_mean(k, also)}", (*where[k], k)
                ),
                key=True,
            )
            for k in params
        ]
        return params, problems
    conv = converter()
    try:
        obj = conv.structure(params, params_type)
    except Exception as exc:
        problems = []
        valid = _public_fields(params_type)
        for rp in errors_to_problems(exc, (), code_override=code, what=what):
            d = rp.diagnostic
            key = d.path[0] if d.path else None
            at = where.get(key, term_path) if isinstance(key, str) else term_path
            if rp.key:
                msg = f"unknown {what} '{key}' of {label}{did_you_mean(str(key), [*valid, *also])}"
                d = attrs.evolve(d, message=msg, hint=f"valid {what}s: {list_choices(valid)}", path=(*at, *d.path))
            elif d.code == code and d.message.startswith("missing required"):
                d = attrs.evolve(d, message=f"{d.message} of {label}", path=term_path)
            else:
                d = attrs.evolve(d, path=(*at, *d.path))
            problems.append(RawProblem(d, key=rp.key))
        return params, problems
    return conv.unstructure(obj), []


def _prepare_term(
    table: dict[str, Any], name: str, path: Path, category: str, term_cls: type, registry: Any
) -> tuple[dict[str, Any], list[RawProblem]]:
    common = set(attrs.fields_dict(term_cls)) - {"params"}
    explicit = table.get("params") if isinstance(table.get("params"), dict) else {}
    flat = {k: v for k, v in table.items() if k not in common and k != "params"}
    out = {k: v for k, v in table.items() if k in common}
    if "params" in table and not isinstance(table["params"], dict):
        out["params"] = table["params"]  # structuring reports the wrong type
        return out, []
    where = {k: (*path, "params") for k in explicit} | {k: path for k in flat}
    params = {**explicit, **flat}
    kind = table.get("kind", name)
    if not isinstance(kind, str):
        out["params"] = params
        return out, []  # structuring reports the wrong type of `kind`
    out["kind"] = kind
    kind_path = (*path, "kind") if "kind" in table else path
    problems: list[RawProblem] = []
    term_kind = registry.term_kinds.get((category, kind)) if registry is not None else None
    if term_kind is None:
        known = sorted(registry.kinds(category)) if registry is not None else []
        hint = (
            f"available {category} kinds: {list_choices(known)}" if known else f"no {category} kinds are registered"
        ) + _plugin_load_hint(registry)
        if "kind" not in table:
            hint += f"; set `kind = \"...\"` if '{name}' is a custom term name"
        problems.append(
            RawProblem(
                Diagnostic(
                    "RWM203", f"unknown {category} kind '{kind}'{did_you_mean(kind, known)}", kind_path, hint=hint
                )
            )
        )
    else:
        params, problems = structure_params(
            params,
            term_kind.params_type,
            where=where,
            term_path=path,
            label=f"{category} kind '{kind}'",
            code="RWM204",
            also=sorted(common),
        )
    out["params"] = params
    return out, problems


def prepare_terms(raw: dict[str, Any], registry: Any) -> list[RawProblem]:
    """In place: move flat term params into ``params`` and check them; fill ``kind``. Returns the problems."""
    problems: list[RawProblem] = []
    for table_name, (category, term_cls) in TERM_TABLES.items():
        terms = raw.get(table_name)
        if not isinstance(terms, dict):
            continue
        for name, table in terms.items():
            if isinstance(table, dict):
                terms[name], found = _prepare_term(table, name, (table_name, name), category, term_cls, registry)
                problems += found
    groups = raw.get("observations")
    if isinstance(groups, dict):
        for group, gtable in groups.items():
            terms = gtable.get("terms") if isinstance(gtable, dict) else None
            if not isinstance(terms, dict):
                continue
            for name, table in terms.items():
                if isinstance(table, dict):
                    terms[name], found = _prepare_term(
                        table,
                        name,
                        ("observations", group, "terms", name),
                        "observation",
                        ObservationTermSpec,
                        registry,
                    )
                    problems += found
    return problems


def _plugin_options(
    raw: dict[str, Any], table: str, name_key: str, default_name: str | None, records: dict, label: str
) -> list[RawProblem]:
    section = raw.get(table)
    if section is None and table == "backend":  # the default backend's options get their defaults too
        section = raw[table] = {}
    if not isinstance(section, dict):
        return []
    section.setdefault("options", {})
    if not isinstance(section["options"], dict):
        return []  # structuring reports the wrong type
    name = section.get(name_key, default_name)
    record = records.get(name) if isinstance(name, str) else None
    if record is None:
        return []  # unknown plugin name: reported by the checks
    options = section["options"]
    where = dict.fromkeys(options, (table, "options"))
    section["options"], problems = structure_params(
        options,
        record.options_type,
        where=where,
        term_path=(table, "options"),
        label=f"{label} '{name}'",
        code="RWM213",
        what="option",
    )
    return problems


def prepare_options(raw: dict[str, Any], registry: Any) -> list[RawProblem]:
    if registry is None:
        return []
    return (
        _plugin_options(raw, "robot", "name", None, registry.robots, "robot")
        + _plugin_options(
            raw, "backend", "name", attrs.fields_dict(BackendSpec)["name"].default, registry.backends, "backend"
        )
        + _plugin_options(
            raw,
            "world_model",
            "architecture",
            attrs.fields_dict(WorldModelSpec)["architecture"].default,
            registry.architectures,
            "architecture",
        )
    )


# ----------------------------------------------------------------------------------------------------------------------
# model introspection, for repairs
# ----------------------------------------------------------------------------------------------------------------------
@cache
def _hints(cl: type) -> dict[str, Any]:
    attrs.resolve_types(cl)
    return {f.name: f.type for f in attrs.fields(cl)}


def _strip_optional(t: Any) -> Any:
    if _is_union(t):
        members = [a for a in typing.get_args(t) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return t


_NO_FIELD = object()


def _slot(path: Path) -> tuple[str, Any]:
    """What ``path`` is in the model: ("unknown"|"optional"|"entry"|"required"|"none", its type)."""
    t: Any = Spec
    for i, part in enumerate(path):
        t = _strip_optional(t)
        last = i == len(path) - 1
        if attrs.has(t):
            fields = attrs.fields_dict(t)
            if part not in fields:
                return ("unknown", None) if last else ("none", None)
            kind = "optional" if fields[part].default is not attrs.NOTHING else "required"
            t = _hints(t)[part]
            if last:
                return kind, t
        elif _is_dict(t):
            args = typing.get_args(t)
            t = args[1] if len(args) == 2 else Any
            if last:
                return "entry", t
        else:
            return "none", None  # inside an array or a free-form value
    return "none", None


def placeholder(t: Any) -> Any:
    """A value of type ``t`` that stands in for a missing or bad required value, so that the checks can run."""
    t = _strip_optional(t)
    if _is_literal(t):
        return typing.get_args(t)[0]
    if _is_union(t):
        return placeholder(next(a for a in typing.get_args(t) if a is not type(None)))
    if _is_fixed_tuple(t):
        return [placeholder(a) for a in typing.get_args(t)]
    if _is_list(t):
        return []
    if _is_dict(t) or attrs.has(t):
        return {}
    return {int: 1, float: 1.0, str: "", bool: False}.get(t, _NO_FIELD)


def _set(raw: dict[str, Any], path: Path, value: Any) -> bool:
    node: Any = raw
    for part in path[:-1]:
        if not isinstance(node, dict):
            return False
        node = node.setdefault(part, {})
    if not isinstance(node, dict):
        return False
    node[path[-1]] = value
    return True


def _delete(raw: dict[str, Any], path: Path) -> bool:
    node: Any = raw
    for part in path[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    if isinstance(node, dict) and path and path[-1] in node:
        del node[path[-1]]
        return True
    return False


def _repair(work: dict[str, Any], path: Path) -> Path | None:
    """Remove (or, for required values, replace by a placeholder) what makes ``path`` fail; return what changed."""
    p = path
    while p:
        while p and isinstance(p[-1], int):  # an element of an array: the whole array goes
            p = p[:-1]
        if not p:
            return None
        kind, t = _slot(p)
        if kind in ("unknown", "optional", "entry") and _delete(work, p):
            return p
        if kind == "required":
            value = placeholder(t)
            if value is not _NO_FIELD and _set(work, p, value):
                return p
        p = p[:-1]
    return None


@attrs.define
class StructureResult:
    #: the spec when there were no problems at all
    spec: Spec | None
    #: the spec with the offending values removed (defaults in their place), for the semantic checks
    partial: Spec | None
    problems: list[RawProblem]
    #: paths removed to obtain ``partial``
    removed: list[Path]


def structure_spec(raw: dict[str, Any], registry: Any) -> StructureResult:
    """Structure a merged raw spec. ``raw`` is not modified."""
    work = copy.deepcopy(raw)
    problems = prepare_terms(work, registry) + prepare_options(work, registry)
    conv = converter()
    removed: list[Path] = []
    first_round = True
    for _ in range(64):  # each round fixes at least one path; nesting depth bounds the rounds
        try:
            spec = conv.structure(work, Spec)
        except Exception as exc:
            found = errors_to_problems(exc)
            if first_round:
                problems += found
                first_round = False
            changed = [_repair(work, rp.diagnostic.path) for rp in found]
            removed += [p for p in changed if p is not None]
            if all(p is None for p in changed):
                return StructureResult(None, None, problems, removed)
            continue
        if problems:
            for rp in problems:  # params problems: the partial spec keeps the table but not the bad params
                if rp.diagnostic.code in ("RWM203", "RWM204", "RWM213"):
                    removed.append(rp.diagnostic.path)
            return StructureResult(None, spec, problems, removed)
        return StructureResult(spec, spec, [], [])
    return StructureResult(None, None, problems, removed)
