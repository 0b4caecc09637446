"""MDP terms: each term's kind and typed params, contact groups and thresholds, widths, and the term tables
(commands, actions, events, terminations, rewards) as ``TermPlan`` records.

Unknown kinds (RWM203) and the structure of params (RWM204) are ``rwmspec.spec.structure``'s to report: a term
that fails there is skipped here silently. This module reports what the params' own ``check()`` finds (RWM204),
contact groups (RWM212) and the rules of the term tables themselves.
"""

from __future__ import annotations

import math
from typing import Any

from rwmspec.compile.context import Compilation, Path_, ResolvedTerm
from rwmspec.diagnostics import did_you_mean, dotted
from rwmspec.plan import (
    TermPlan,
)
from rwmspec.spec.convert import converter
from rwmspec.types import TermKind

#: Contact force threshold (N) of a contact group no spec term sets (Isaac Lab's contact sensor default).
DEFAULT_CONTACT_THRESHOLD = 1.0


def resolve_term(c: Compilation, category: str, name: str, term: Any, path: Path_) -> ResolvedTerm | None:
    """The term's kind and typed params; None (unreported: the structuring step reported it) when the kind is
    unknown or the params do not structure, or after reporting a well-typed but invalid value."""
    kind = c.registry.term_kinds.get((category, term.kind or name))
    if kind is None:
        return None
    params = structure_params(c, kind, term.params, path)
    if params is None and kind.params_type is not None:
        return None
    if params is not None and not check_contact_groups(c, params, path):
        return None
    plain = converter().unstructure(params) if params is not None else {}
    c.resolved[path] = ResolvedTerm(kind=kind, params=params, params_dict=plain, path=path)
    return c.resolved[path]


def structure_params(c: Compilation, kind: TermKind, raw: Any, path: Path_) -> Any:
    """``raw`` as a ``kind.params_type`` instance, checked with its ``check()`` method (RWM204)."""
    ptype = kind.params_type
    if ptype is None:
        return None
    if isinstance(raw, ptype):
        params = raw
    else:
        try:
            params = converter().structure(dict(raw or {}), ptype)
        except Exception:  # the structuring step reported every problem of these params (RWM204)
            return None
    ok = True
    check = getattr(params, "check", None)
    for field, problem in check() if check else ():
        where = (field,) if isinstance(field, str) else tuple(field)
        c.error(
            "RWM204",
            f"parameter '{dotted(where)}' of {kind.category} kind '{kind.name}': {problem}",
            (*path, *where),
        )
        ok = False
    return params if ok else None


def check_contact_groups(c: Compilation, params: Any, path: Path_) -> bool:
    groups = getattr(params, "contact_groups", None)
    if groups is None or c.robot is None:
        return True
    ok = True
    for group, threshold in groups().items():
        if c.robot.contact_group(group) is None:
            names = [g.name for g in c.robot.contact_groups]
            c.error(
                "RWM212",
                f"robot '{c.robot.name}' has no contact group '{group}'"
                f"{did_you_mean(group, names)} (groups: {', '.join(names)})",
                (*path, "bodies"),
            )
            ok = False
        elif threshold is not None:
            first = c.thresholds.get(group)
            if first is None:
                c.thresholds[group] = (threshold, path)
            elif not math.isclose(first[0], threshold):
                c.error(
                    "RWM212",
                    f"contact group '{group}' gets threshold {threshold} N here but "
                    f"{first[0]} N at {dotted(first[1])}; a group has one contact threshold",
                    (*path, "threshold"),
                    hint=f"use the same threshold for every term on '{group}'",
                )
                ok = False
    return ok


def term_dim(c: Compilation, resolved: ResolvedTerm) -> int | None:
    dim = resolved.kind.dim
    if dim is None or isinstance(dim, int):
        return dim
    try:
        return int(dim(resolved.params, c.robot))
    except Exception as exc:  # a plugin's dim function rejects these params for this robot
        c.error(
            "RWM204",
            f"{resolved.kind.category} kind '{resolved.kind.name}' cannot size itself for "
            f"robot '{c.robot.name}': {type(exc).__name__}: {exc}",
            resolved.path,
        )
        return None


def resolve_section(
    c: Compilation, category: str, section: str, table: dict[str, Any]
) -> list[tuple[str, Any, ResolvedTerm]]:
    out = []
    for name, term in table.items():
        if not getattr(term, "enabled", True):
            continue
        resolved = resolve_term(c, category, name, term, (section, name))
        if resolved is not None:
            out.append((name, term, resolved))
    return out


def compile_actions(c: Compilation) -> tuple[TermPlan, ...]:
    plans = []
    if not c.spec.actions:
        c.error(
            "RWM204",
            "the spec defines no action term",
            ("actions",),
            hint='add e.g. [actions.joint_pos] with kind = "joint_position"',
        )
    for name, _term, r in resolve_section(c, "action", "actions", c.spec.actions):
        dim = term_dim(c, r)
        if dim == 0:
            c.error(
                "RWM204",
                f"action '{name}' selects no joint of robot '{c.robot.name}' "
                f"(joints: {', '.join(c.robot.joint_names)})",
                (*r.path, "joint_names"),
            )
        plans.append(TermPlan(name=name, kind=r.kind.name, params=r.params_dict, dim=dim or 0))
    return tuple(plans)


def compile_commands(c: Compilation) -> tuple[TermPlan, ...]:
    plans = []
    for name, term, r in resolve_section(c, "command", "commands", c.spec.commands):
        low, high = term.resampling_time_range_s
        if not 0 < low <= high:
            c.error(
                "RWM201",
                f"resampling_time_range_s must be [low, high] with 0 < low <= high (got [{low}, {high}])",
                (*r.path, "resampling_time_range_s"),
            )
        plans.append(
            TermPlan(
                name=name,
                kind=r.kind.name,
                params=r.params_dict,
                interval_range_s=(float(low), float(high)),
                dim=r.kind.dim if isinstance(r.kind.dim, int) else 0,
            )
        )
    return tuple(plans)


def compile_events(c: Compilation) -> tuple[TermPlan, ...]:
    plans = []
    for name, term, r in resolve_section(c, "event", "events", c.spec.events):
        interval = term.interval_range_s
        if term.mode == "interval":
            if interval is None:
                c.error("RWM204", f"interval event '{name}' needs interval_range_s = [low, high] (s)", r.path)
            elif not 0 < interval[0] <= interval[1]:
                c.error(
                    "RWM201",
                    f"interval_range_s must be [low, high] with 0 < low <= high (got {list(interval)})",
                    (*r.path, "interval_range_s"),
                )
        elif interval is not None:
            c.error(
                "RWM204",
                f'interval_range_s applies to mode = "interval" only (event \'{name}\' has mode "{term.mode}")',
                (*r.path, "interval_range_s"),
            )
        plans.append(
            TermPlan(
                name=name,
                kind=r.kind.name,
                params=r.params_dict,
                mode=term.mode,
                interval_range_s=tuple(map(float, interval)) if interval else None,
            )
        )
    return tuple(plans)


def compile_terminations(c: Compilation) -> tuple[TermPlan, ...]:
    return tuple(
        TermPlan(name=name, kind=r.kind.name, params=r.params_dict, mode="time_out" if term.time_out else "failure")
        for name, term, r in resolve_section(c, "termination", "terminations", c.spec.terminations)
    )


def compile_rewards(c: Compilation) -> tuple[TermPlan, ...]:
    return tuple(
        TermPlan(name=name, kind=r.kind.name, params=r.params_dict, weight=float(term.weight))
        for name, term, r in resolve_section(c, "reward", "rewards", c.spec.rewards)
    )
