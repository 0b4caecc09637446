"""Observation groups: term widths and slices, and the world-model groups' normalizer statistics and plot labels."""

from __future__ import annotations

from typing import Any

from rwmspec.compile.context import Compilation, Path_, ResolvedTerm
from rwmspec.compile.terms import resolve_term, term_dim
from rwmspec.diagnostics import did_you_mean
from rwmspec.plan import (
    ObservationGroupPlan,
    ObservationTermPlan,
)
from rwmspec.spec.model import SYSTEM_GROUPS, ObservationTermSpec

#: Observation kinds whose width is the plan's action width rather than a property of the robot.
ACTION_SIZED_OBSERVATIONS = frozenset({"last_action"})
#: World-model groups whose terms are binary contact flags (never normalised).
BINARY_GROUPS = ("system_contact", "system_termination")


def compile_observations(c: Compilation, action_dim: int) -> dict[str, ObservationGroupPlan]:
    groups: dict[str, ObservationGroupPlan] = {}
    for gname, group in c.spec.observations.items():
        gpath = ("observations", gname)
        if gname.startswith("system_") and gname not in SYSTEM_GROUPS:
            c.error(
                "RWM207",
                f"unknown world-model observation group '{gname}'"
                f"{did_you_mean(gname, SYSTEM_GROUPS)} (groups: {', '.join(SYSTEM_GROUPS)})",
                gpath,
            )
            continue
        terms: list[ObservationTermPlan] = []
        start = 0
        for tname, term in group.terms.items():
            if not term.enabled:
                continue
            tpath = (*gpath, "terms", tname)
            r = resolve_term(c, "observation", tname, term, tpath)
            if r is None:
                continue
            dim = action_dim if r.kind.name in ACTION_SIZED_OBSERVATIONS else term_dim(c, r)
            if dim is None:
                if r.kind.dim is None:
                    c.error("RWM204", f"observation kind '{r.kind.name}' does not declare its width", tpath)
                continue
            stats = normalizer_statistics(c, gname, tname, term, r, dim, tpath)
            if stats is None:
                continue
            mean, std, labels = stats
            terms.append(
                ObservationTermPlan(
                    name=tname,
                    kind=r.kind.name,
                    params=r.params_dict,
                    dim=dim,
                    start=start,
                    noise=term.noise,
                    clip=tuple(term.clip) if term.clip is not None else None,
                    scale=term.scale,
                    mean=mean,
                    std=std,
                    labels=labels,
                )
            )
            start += dim
        groups[gname] = ObservationGroupPlan(name=gname, terms=tuple(terms), dim=start, corruption=group.corruption)
    return groups


def normalizer_statistics(
    c: Compilation, group: str, name: str, term: ObservationTermSpec, r: ResolvedTerm, dim: int, path: Path_
) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None, tuple[str, ...]] | None:
    """Per-dimension normalizer statistics and plot labels of a term; None after reporting a problem."""
    if group in BINARY_GROUPS:
        param = r.kind.contact_group_param
        if param is None:
            binary = sorted(k.name for k in c.registry.kinds("observation").values() if k.contact_group_param)
            c.error(
                "RWM207",
                f"group '{group}' holds binary contact flags; term '{name}' has kind '{r.kind.name}', which "
                f"reports no contact group (contact kinds: {', '.join(binary) or 'none registered'})",
                (*path, "kind"),
                hint=f'use kind = "{binary[0]}" with the contact group' if binary else None,
            )
            return None
        contact_group = getattr(r.params, param, None)
        if not isinstance(contact_group, str):
            c.error(
                "RWM207",
                f"term '{name}' of '{group}' names no contact group: kind '{r.kind.name}' reads it from "
                f"parameter '{param}'",
                (*path, param),
                hint=f'set {param} = "<a contact group of the robot>"',
            )
            return None
        if term.normalizer is not None:
            c.error(
                "RWM208",
                f"term '{name}' of '{group}' is a binary flag and is never normalised",
                (*path, "normalizer"),
                hint="remove the normalizer table",
            )
            return None
        contact = c.robot.contact_group(contact_group)
        return None, None, contact.bodies if contact else ()
    if not group.startswith("system_"):
        if term.normalizer is not None:
            c.error(
                "RWM208",
                f"normalizer overrides apply to world-model groups only (term '{name}' is in group '{group}')",
                (*path, "normalizer"),
                hint="remove the normalizer table",
            )
            return None
        return None, None, ()
    block = c.robot.state_block(name)
    if group == "system_state":
        if block is None:
            blocks = [b.name for b in c.robot.state_blocks]
            c.error(
                "RWM208",
                f"'{name}' is not a state block of robot '{c.robot.name}'"
                f"{did_you_mean(name, blocks)} (blocks: {', '.join(blocks)})",
                path,
                hint="the term name in system_state names the block; set kind for the observation",
            )
            return None
        if block.dim != dim:
            c.error(
                "RWM208",
                f"state block '{name}' has {block.dim} dims but kind '{r.kind.name}' gives {dim}",
                (*path, "kind"),
            )
            return None
    if block is not None and block.dim == dim:
        mean, std, labels = tuple(block.mean), tuple(block.std), tuple(block.labels)
    else:
        mean, std, labels = (0.0,) * dim, (1.0,) * dim, ()
    if term.normalizer is not None:
        npath = (*path, "normalizer")
        mean = normalizer_override(c, term.normalizer.mean, mean, dim, (*npath, "mean"), positive=False)
        std = normalizer_override(c, term.normalizer.std, std, dim, (*npath, "std"), positive=True)
        if mean is None or std is None:
            return None
    return mean, std, labels


def normalizer_override(
    c: Compilation, value: Any, default: tuple[float, ...], dim: int, path: Path_, positive: bool
) -> tuple[float, ...] | None:
    if value is None:
        return default
    values = [value] * dim if isinstance(value, int | float) else list(value)
    if len(values) != dim:
        c.error(
            "RWM208",
            f"normalizer override has {len(values)} values but the term has {dim} dims",
            path,
            hint=f"give one value for every dimension or {dim} values",
        )
        return None
    if positive and any(not v > 0 for v in values):
        c.error("RWM208", f"normalizer std must be > 0 (got {values})", path)
        return None
    return tuple(float(v) for v in values)
