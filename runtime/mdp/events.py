"""Event terms and the event manager, shared by the real backends and the imagination env.

An event kind (``TermKind`` of category ``event``) is implemented by an *event term*: a class built from the term's
params (``cls(**params)``) and called as ``term(env, mask, rng)``. The env is whatever object the backend passes in;
what a term needs of it is the term's contract (``push_by_setting_velocity`` calls ``env.add_root_velocity``, the
embedded start-up terms change its per-env MuJoCo models). So a term that only needs such a method is written once
and runs on every backend that offers the method, the imagination included; a term that changes a simulator's own
objects is bound per backend (``TermBinding(backend, "event", kind)``, which takes precedence over the kind's
backend-neutral ``function``).

``EventManager`` is Isaac Lab's event manager: ``startup`` events run once, ``reset`` events run in plan order on the
envs that reset, and ``interval`` events fire per env when the env's own timer (drawn from ``interval_range_s``,
redrawn when it fires and when the env resets) runs out.

Random draws come from the ``rng`` the caller passes (anything with NumPy's ``random(size)``: the embedded backend's
``numpy.random.Generator``, or the imagination's ``Uniforms`` of pre-drawn tensors). Every term and timer draws for
all N envs and uses the rows it applies to, so the random stream does not depend on which envs reset or fire
together. Timers are kept by the caller (``draw_timers``, ``reset_timers``, ``interval`` return new tensors), which is
what the imagination's functional, graph-captured step needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch

from rwmspec.manager import Registry, resolve
from rwmspec.plan import TermPlan

#: a timer below this counts as run out (the countdown subtracts dt in floating point)
_DUE = 1e-6


class RandomSource(Protocol):
    """Uniform draws in [0, 1): NumPy's ``Generator.random`` signature (arrays or tensors both do)."""

    def random(self, size: int | tuple[int, ...]) -> Any: ...


@runtime_checkable
class EventTerm(Protocol):
    """One event of N envs (see the module docstring)."""

    #: uniforms per env one call draws (the imagination draws them before its step)
    uniform_draws: int

    def __call__(self, env: Any, mask: torch.Tensor | None, rng: RandomSource) -> None:
        """Apply the event to the envs of ``mask`` (``[N]`` bool; None at start-up: every env)."""
        ...


class Uniforms:
    """A ``RandomSource`` over uniforms drawn in advance, ``[N, width]``: each ``random((N, k))`` (or ``random(N)``)
    hands out the next ``k`` columns. Slicing traces under ``torch.compile``, a generator call would not."""

    def __init__(self, u: torch.Tensor) -> None:
        self.u = u
        self.used = 0

    def random(self, size: int | tuple[int, ...]) -> torch.Tensor:
        shape = (size,) if isinstance(size, int) else tuple(size)
        if len(shape) > 2 or shape[0] != self.u.shape[0]:
            raise ValueError(f"pre-drawn uniforms are [{self.u.shape[0]}, ·]; cannot hand out {size}")
        width = shape[1] if len(shape) == 2 else 1
        if self.used + width > self.u.shape[1]:
            raise ValueError(f"an event drew more than the {self.u.shape[1]} uniforms per env drawn for it")
        out = self.u[:, self.used : self.used + width]
        self.used += width
        return out if len(shape) == 2 else out[:, 0]


def as_tensor(draws: Any, like: torch.Tensor | None = None) -> torch.Tensor:
    """Draws of a ``RandomSource`` as a tensor (NumPy draws stay float64 on the CPU; ``like`` sets device/dtype)."""
    tensor = torch.as_tensor(draws)
    return tensor if like is None else tensor.to(like)


def make_event_term(term: TermPlan, registry: Registry, backend: str) -> EventTerm:
    """The event term object of a plan's event ``term`` on ``backend``: the backend's own binding, else the kind's
    backend-neutral ``function``, built with the term's params."""
    binding = registry.binding(backend, "event", term.kind)
    kind = registry.term_kinds.get(("event", term.kind))
    ref = binding.ref if binding is not None else kind.function if kind is not None else None
    if ref is None:
        raise ValueError(
            f"event {term.name!r}: kind {term.kind!r} has no implementation on the {backend} backend (no "
            f"TermBinding for it and no backend-neutral TermKind.function)"
        )
    built = resolve(ref)(**term.params)
    if not isinstance(built, EventTerm):
        raise TypeError(f"event kind {term.kind!r}: {ref} does not implement EventTerm (uniform_draws, __call__)")
    return built


class EventManager:
    """A plan's events on one backend, by mode (see the module docstring).

    :param events: the plan's event terms (any modes; each mode runs its terms in plan order).
    :param backend: the backend whose bindings implement the kinds (``"imagination"`` for imagined envs).
    """

    def __init__(self, events: Sequence[TermPlan], registry: Registry, backend: str) -> None:
        self.terms = {e.name: make_event_term(e, registry, backend) for e in events}
        self.by_mode = {mode: [e for e in events if e.mode == mode] for mode in ("startup", "reset", "interval")}
        #: (low, high) interval range (s) of each interval event, in plan order
        self.interval_ranges = [tuple(map(float, e.interval_range_s)) for e in self.by_mode["interval"]]

    @property
    def interval_count(self) -> int:
        return len(self.by_mode["interval"])

    @property
    def interval_draws(self) -> int:
        """Uniforms per env one ``interval`` call draws: a timer and the term's draws per interval event."""
        return sum(1 + self.terms[e.name].uniform_draws for e in self.by_mode["interval"])

    def startup(self, env: Any, rng: RandomSource) -> None:
        """Run the start-up events (once, before the first reset)."""
        for event in self.by_mode["startup"]:
            self.terms[event.name](env, None, rng)

    def reset(self, env: Any, mask: torch.Tensor, rng: RandomSource) -> None:
        """Run the reset events on the envs of ``mask``, in plan order."""
        for event in self.by_mode["reset"]:
            self.terms[event.name](env, mask, rng)

    def draw_timers(self, num_envs: int, rng: RandomSource, like: torch.Tensor | None = None) -> torch.Tensor:
        """``[E, N]`` fresh time (s) until each interval event fires in each env."""
        rows = [self._interval(i, as_tensor(rng.random(num_envs), like)) for i in range(self.interval_count)]
        if rows:
            return torch.stack(rows)
        empty = torch.zeros(0, num_envs, dtype=torch.float64)
        return empty if like is None else empty.to(like)

    def reset_timers(self, time_left: torch.Tensor, mask: torch.Tensor, rng: RandomSource) -> torch.Tensor:
        """Redraw the timers of the envs in ``mask``: a reset env starts its intervals anew."""
        fresh = self.draw_timers(time_left.shape[1], rng, time_left)
        return torch.where(mask, fresh, time_left)

    def interval(
        self, env: Any, time_left: torch.Tensor, dt: float, rng: RandomSource
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Count every timer down by ``dt`` and fire the due envs' events (a fired timer is redrawn).

        :return: the new timers ``[E, N]`` and ``[N]`` bool of the envs where any event fired.
        """
        num_envs = time_left.shape[1]
        fired = torch.zeros(num_envs, dtype=torch.bool, device=time_left.device)
        rows = []
        for i, event in enumerate(self.by_mode["interval"]):
            left = time_left[i] - dt
            due = left < _DUE
            rows.append(torch.where(due, self._interval(i, as_tensor(rng.random(num_envs), left)), left))
            self.terms[event.name](env, due, rng)
            fired = fired | due
        return (torch.stack(rows) if rows else time_left), fired

    def _interval(self, i: int, u: torch.Tensor) -> torch.Tensor:
        """``[N]`` intervals (s) of interval event ``i`` from uniforms ``u`` ``[N]``: U(low, high)."""
        low, high = self.interval_ranges[i]
        return low + (high - low) * u
