"""Binding term kinds to their torch functions, and the one place where reward terms are weighted and summed.

The embedded backend and the imagination env both do::

    fns = bind_term_functions(plan.rewards, registry, "reward")     # once
    terms = call_reward_terms(view, plan.rewards, fns)              # every step: name -> weighted [N]
    reward = total_reward(terms, view)

so the real and the imagined reward of the same state are the same numbers. ``compute_observation_group`` does the
same for observation groups (without noise, which the caller adds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from rwmspec.manager import Registry, resolve
from rwmspec.plan import ObservationGroupPlan, ObservationTermPlan, TermPlan
from rwmspec.types import TermKind
from rwmspec_runtime.mdp.state import StateView

TermFunction = Callable[..., torch.Tensor]


def resolve_term_function(kind: TermKind) -> TermFunction:
    """The torch implementation of ``kind`` (its ``function`` reference, imported)."""
    if kind.function is None:
        raise ValueError(
            f"{kind.category} term kind {kind.name!r} has no torch implementation (its TermKind "
            "`function` is unset), so the embedded backend and imagination cannot compute it; set "
            "`function='package.module:attr'` in the plugin that registers it"
        )
    try:
        fn = resolve(kind.function)
    except (ImportError, AttributeError) as exc:
        raise ImportError(
            f"{kind.category} term kind {kind.name!r}: cannot import its function {kind.function!r}: {exc}"
        ) from exc
    if not callable(fn):
        raise TypeError(f"{kind.category} term kind {kind.name!r}: {kind.function!r} is not callable")
    return fn


def bind_term_functions(
    terms: Sequence[TermPlan | ObservationTermPlan], registry: Registry, category: str
) -> dict[str, TermFunction]:
    """Term name -> function for plan terms of ``category`` (``"reward"`` or ``"observation"``)."""
    bound: dict[str, TermFunction] = {}
    for term in terms:
        kind = registry.term_kinds.get((category, term.kind))
        if kind is None:
            known = sorted(registry.kinds(category))
            raise KeyError(
                f"{category} term {term.name!r} has kind {term.kind!r}, which no installed plugin "
                f"registers; known {category} kinds: {known}"
            )
        bound[term.name] = resolve_term_function(kind)
    return bound


def _call(fn: TermFunction, view: StateView, term: TermPlan | ObservationTermPlan) -> torch.Tensor:
    params: Mapping[str, Any] = term.params
    try:
        return fn(view, **params)
    except TypeError as exc:
        raise TypeError(
            f"term {term.name!r} (kind {term.kind!r}): calling its function with params {sorted(params)} failed: {exc}"
        ) from exc


def call_reward_terms(
    view: StateView, terms: Sequence[TermPlan], fns: Mapping[str, TermFunction]
) -> dict[str, torch.Tensor]:
    """Weighted reward terms ``value * weight * dt``, name -> ``[N]``; terms with weight 0 are skipped (not computed).

    ``fns`` maps term names to functions (``bind_term_functions``). The env reward is the sum of the values.
    """
    out: dict[str, torch.Tensor] = {}
    for term in terms:
        if term.weight == 0.0:
            continue
        value = _call(fns[term.name], view, term)
        if value.shape != (view.num_envs,):
            raise ValueError(
                f"reward term {term.name!r} (kind {term.kind!r}) returned shape {tuple(value.shape)}; "
                f"a reward function must return one value per env, shape "
                f"({view.num_envs},)"
            )
        out[term.name] = value * (term.weight * view.dt)
    return out


def total_reward(weighted: Mapping[str, torch.Tensor], view: StateView) -> torch.Tensor:
    """Sum of weighted reward terms, ``[N]`` (zeros when every weight is 0)."""
    total = torch.zeros(view.num_envs, device=view.action.device)
    for value in weighted.values():
        total = total + value
    return total


def compute_observation_group(
    view: StateView, group: ObservationGroupPlan, fns: Mapping[str, TermFunction]
) -> torch.Tensor:
    """Concatenate the group's terms in plan order, ``[N, group.dim]`` float32, without noise, clip or scale.

    Each term's width is checked against the plan's slice, so a term whose size disagrees with its registered
    ``dim`` fails here, naming the term.
    """
    parts = []
    for term in group.terms:
        value = _call(fns[term.name], view, term)
        if value.ndim != 2 or value.shape[1] != term.dim:
            raise ValueError(
                f"observation group {group.name!r}, term {term.name!r} (kind {term.kind!r}) returned "
                f"shape {tuple(value.shape)}, but the plan gives it {term.dim} columns "
                f"[{term.start}:{term.stop}]"
            )
        parts.append(value.to(torch.float32))
    if not parts:
        return torch.zeros(view.num_envs, 0, device=view.action.device)
    return torch.cat(parts, dim=-1)
