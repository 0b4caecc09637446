"""Structuring the merged raw dict into the attrs model, with every problem turned into a diagnostic.

The strict converter and its error walker live in ``rwmspec.spec.convert``; this module prepares the raw dict for
them and repairs it after them.

Term tables are prepared before structuring: keys besides the common ones (``weight``, ``mode``, ...) are the term
kind's params; they are moved into ``params`` and checked against ``registry.term_kinds[(category, kind)]``'s params
class. ``[robot.options]``, ``[backend.options]`` and ``[world_model.options]`` are checked against the options
class of the plugin they name. This module is the one owner of these rules (RWM203, RWM204 for the structure of
params, RWM213): the compiler structures params again only to get typed objects, and reports nothing about them.

When a spec has structural errors, the offending values are removed and structuring is retried, so that the
semantic checks still run on the rest (``StructureResult.partial``): one ``validate`` run reports everything.
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from rwmspec.diagnostics import Diagnostic, did_you_mean, failed_plugins, list_choices
from rwmspec.spec.convert import (
    RawProblem,
    converter,
    errors_to_problems,
    field_types,
    is_dict,
    is_fixed_tuple,
    is_list,
    is_literal,
    is_union,
    public_fields,
    strip_optional,
)
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

if TYPE_CHECKING:
    from rwmspec.manager import Registry

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
# term tables and plugin options
# ----------------------------------------------------------------------------------------------------------------------
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
        valid = public_fields(params_type)
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
    table: dict[str, Any], name: str, path: Path, category: str, term_cls: type, registry: Registry
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
        ) + failed_plugins(registry)
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


def prepare_terms(raw: dict[str, Any], registry: Registry) -> list[RawProblem]:
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
    check = getattr(record.options_type, "check", None)
    if not problems and check is not None:
        # well-typed values an options class rejects (ranges, combinations): its own check() says why
        structured = converter().structure(section["options"], record.options_type)
        for field, why in structured.check():
            message = f"option '{field}' of {label} '{name}' {why}"
            problems.append(RawProblem(Diagnostic("RWM213", message, (table, "options", field))))
    return problems


def prepare_options(raw: dict[str, Any], registry: Registry) -> list[RawProblem]:
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
_NO_FIELD = object()


def _slot(path: Path) -> tuple[str, Any]:
    """What ``path`` is in the model: ("unknown"|"optional"|"entry"|"required"|"none", its type)."""
    t: Any = Spec
    for i, part in enumerate(path):
        t = strip_optional(t)
        last = i == len(path) - 1
        if attrs.has(t):
            fields = attrs.fields_dict(t)
            if part not in fields:
                return ("unknown", None) if last else ("none", None)
            kind = "optional" if fields[part].default is not attrs.NOTHING else "required"
            t = field_types(t)[part]
            if last:
                return kind, t
        elif is_dict(t):
            args = typing.get_args(t)
            t = args[1] if len(args) == 2 else Any
            if last:
                return "entry", t
        else:
            return "none", None  # inside an array or a free-form value
    return "none", None


def placeholder(t: Any) -> Any:
    """A value of type ``t`` that stands in for a missing or bad required value, so that the checks can run."""
    t = strip_optional(t)
    if is_literal(t):
        return typing.get_args(t)[0]
    if is_union(t):
        return placeholder(next(a for a in typing.get_args(t) if a is not type(None)))
    if is_fixed_tuple(t):
        return [placeholder(a) for a in typing.get_args(t)]
    if is_list(t):
        return []
    if is_dict(t) or attrs.has(t):
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


def structure_spec(raw: dict[str, Any], registry: Registry) -> StructureResult:
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
