"""Command terms: objects that own their command and its resampling, built from the registry for every env.

A command kind (``TermKind`` of category ``command``) names its implementation in ``function``: a class with the
``CommandTerm`` interface below, built with ``from_params``. The real backends and the imagination env build the same
class from the same plan term (``make_command``), so a command distribution is written once, in the plugin that
declares the kind:

* a real backend calls ``step(dt, fields)`` once per control step (the term counts its timers down in seconds and
  redraws the expired envs from its own generator) and ``reset(mask)`` when envs reset;
* the imagination env draws its uniforms up front (so its step traces whole under ``torch.compile``) and asks the
  term for commands from them (``from_uniform``), counting its own resampling intervals in imagined steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import torch

from rwmspec.manager import Registry, resolve
from rwmspec.plan import TermPlan

#: resampling range of a command term that sets none (Isaac Lab's default)
DEFAULT_RESAMPLING_S = (10.0, 10.0)


@runtime_checkable
class CommandTerm(Protocol):
    """A command of N envs (see the module docstring)."""

    #: width of the command vector
    dim: int
    #: uniforms ``from_uniform`` reads per env
    uniform_draws: int

    @property
    def command(self) -> torch.Tensor:
        """``[N, dim]`` current commands (never modified in place: updates build new tensors)."""
        ...

    def reset(self, mask: torch.Tensor) -> None:
        """Redraw the commands of the envs in ``mask`` (``[N]`` bool)."""
        ...

    def step(self, dt: float, fields: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Advance one control step of ``dt`` seconds; ``fields`` are the backend's named quantities (e.g.
        ``heading`` for heading control). Returns the commands."""
        ...

    def from_uniform(self, u: torch.Tensor) -> torch.Tensor:
        """Commands ``[n, dim]`` from uniforms ``u`` ``[n, uniform_draws]`` in [0, 1), with no host read."""
        ...


def make_command(term: TermPlan, registry: Registry, num_envs: int, *, generator: torch.Generator) -> CommandTerm:
    """The command term object of a plan's command ``term`` (its kind's ``function`` class, ``from_params``)."""
    kind = registry.term_kinds.get(("command", term.kind))
    if kind is None or kind.function is None:
        raise ValueError(
            f"command term {term.name!r}: kind {term.kind!r} has no implementation (TermKind.function) in the "
            f"installed plugins"
        )
    cls = resolve(kind.function)
    command = cls.from_params(
        num_envs,
        term.params,
        generator=generator,
        resampling_time_range_s=term.interval_range_s or DEFAULT_RESAMPLING_S,
    )
    if not isinstance(command, CommandTerm):
        raise TypeError(f"command kind {term.kind!r}: {kind.function} does not implement CommandTerm")
    return command
