"""``ImaginedState``: every per-env tensor of N imagined envs, kept in the same memory for the env's lifetime.

A step computes new tensors functionally and then *commits* them: ``commit`` copies whatever changed since a
``snapshot`` into the snapshot's tensors and makes those the state again. So every step, reset and refill writes into
the same tensors, which is what a CUDA graph captured once needs (``graph.GraphedStep``), and under
``torch.compile`` each copy folds into the kernel that computes its source.

Shapes: N envs, S state width, A actions, C command width, T logged reward terms, B_g bodies of contact group g,
E interval events.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from rwmspec_runtime.mdp import ContactTimers
from rwmspec_runtime.world_model.protocol import Memory


@dataclass
class ImaginedState:
    """The per-env state (see the module docstring). Dicts are keyed by view field or contact group."""

    state: torch.Tensor  #: [N, S] normalized s_t (the model's input)
    state_obs: torch.Tensor  #: [N, S] s_t in system_state units
    fields: dict[str, torch.Tensor]  #: the view fields of s_t
    last_action: torch.Tensor  #: [N, A] the raw action that led to s_t
    memory: Memory  #: the model's memory of each env's history (a pytree of tensors)
    members: torch.Tensor  #: [N] long: the ensemble member each env reads
    command: torch.Tensor  #: [N, C]
    contacts: dict[str, torch.Tensor]  #: [N, B_g] bool
    timers: dict[str, ContactTimers]  #: contact timers per group
    episode_length: torch.Tensor  #: [N] long
    episode_sums: torch.Tensor  #: [N, T] weighted reward sums of the episode, one column per logged term
    episode_return: torch.Tensor  #: [N]
    command_left: torch.Tensor  #: [N] long: steps until the command is redrawn
    event_time_left: torch.Tensor  #: [E, N] float: seconds until each interval event (push) fires
    pool_next: torch.Tensor  #: 0-d long: seeds taken from the seed pool since its last refill

    def snapshot(self) -> ImaginedState:
        """The state as it is referenced now (the same tensors; the dicts copied)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return ImaginedState(**{k: dict(v) if isinstance(v, dict) else v for k, v in values.items()})

    def commit(self, before: ImaginedState) -> None:
        """Copy what changed since ``before = snapshot()`` into ``before``'s tensors (one fused copy eagerly) and make
        those the state again: every step leaves the state in the same memory."""
        old, new = before.tensors(), self.tensors()
        if old.keys() != new.keys():
            raise RuntimeError(f"imagination state changed its layout: {sorted(old.keys() ^ new.keys())}")
        changed = [k for k in old if new[k] is not old[k]]
        copy_into([old[k] for k in changed], [new[k] for k in changed])
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(before, f.name))

    def tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor by path (``"state"``, ``"fields/joint_pos"``, ``"memory/0"``, ...)."""
        return flatten({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})


def copy_into(targets: list[torch.Tensor], sources: list[torch.Tensor]) -> None:
    """``targets[i].copy_(sources[i])``: eagerly one ``_foreach_copy_``; under ``torch.compile`` one copy per tensor,
    which inductor folds into the kernel that computes the source (it lowers ``_foreach_copy_`` to one horizontal
    kernel over every tensor instead, which fails to build for the imagination's ~70 state tensors)."""
    if torch.compiler.is_compiling():
        for target, source in zip(targets, sources, strict=True):
            target.copy_(source)
    elif targets:
        torch._foreach_copy_(targets, sources)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, torch.Tensor]:
    """The tensors of a nested structure (dicts, tuples and named tuples, dataclasses such as ``ContactTimers``;
    ``None`` leaves are skipped) by ``/``-joined path."""
    out: dict[str, torch.Tensor] = {}

    def visit(value: Any, path: str) -> None:
        if isinstance(value, torch.Tensor):
            out[path] = value
        elif isinstance(value, dict):
            for key, item in value.items():
                visit(item, f"{path}/{key}" if path else str(key))
        elif isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple: its field names
            for name, item in zip(value._fields, value, strict=True):
                visit(item, f"{path}/{name}")
        elif isinstance(value, tuple | list):
            for i, item in enumerate(value):
                visit(item, f"{path}/{i}")
        elif dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                visit(getattr(value, f.name), f"{path}/{f.name}")
        elif value is not None:
            raise TypeError(f"unexpected state entry {path} of type {type(value).__name__}")

    visit(tree, prefix)
    return out
