"""What happens to imagined envs besides the model's prediction: commands, pushes, and the random draws behind them.

* **Commands** come from the plan's command term, the same class the real env runs (``CommandTerm.from_uniform``;
  the velocity command has no heading control here: the predicted state has no yaw). Each env counts its command
  down in steps and redraws it every U[low, high) steps (``imagination.command_resample_interval_range``, the
  interval redrawn with every command); zero commands without a command term.
* **Pushes** (``imagination.push_interval_range``) are the real envs' push event term, run by the runtime's
  ``EventManager`` on imagined envs (``rwmspec.compile.imagined_events``): when an env's push timer runs out (after
  the reward, like the real env's interval events), U(-v, v) m/s is added to its predicted base x/y velocity
  (``PushedVelocity``).

Randomness: five ``torch.Generator`` streams on the env's device, seeded from the plan seed (``Streams``): windows
(seed draws), episode starts (members, first commands and timers), commands, events, observation noise. A step draws
every env's uniforms of each stream up front (``StepNoise``) and uses them where they apply, so the step's tensor
work calls no generator and traces whole under ``torch.compile``. The same seed on the CPU gives the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rwmspec_runtime.mdp import CommandTerm

#: mixes the plan seed into the imagination's own streams (distinct from the real env's)
_STREAM_KEY = 0x1A61


@dataclass
class Streams:
    """The imagination's random streams (see the module docstring)."""

    window: torch.Generator
    start: torch.Generator
    command: torch.Generator
    events: torch.Generator
    noise: torch.Generator

    @classmethod
    def seeded(cls, seed: int, device: torch.device) -> Streams:
        states = np.random.SeedSequence([int(seed), _STREAM_KEY]).generate_state(5)
        return cls(*(torch.Generator(device=device).manual_seed(int(s)) for s in states))

    @property
    def step_generators(self) -> tuple[torch.Generator, ...]:
        """The streams a step draws from (a CUDA graph of the step registers them); windows have their own."""
        return self.start, self.command, self.events, self.noise


@dataclass
class StepNoise:
    """One step's uniform draws in [0, 1), ``[N, ·]`` per stream, made before the step's tensor work."""

    command: torch.Tensor  #: ``[N, D + 1]``: a redrawn command (D = the term's ``uniform_draws``) and its interval
    events: torch.Tensor  #: ``[N, EventManager.interval_draws]``: the interval events' timers and terms
    start: torch.Tensor  #: ``[N, D + 2 + E]``: a new episode's member, command (D), command interval, E event timers


def interval(bounds: tuple[int, int], u: torch.Tensor) -> torch.Tensor:
    """``[N]`` integers uniform in [low, high) (= low when low == high) from draws ``u`` ``[N]``."""
    low, high = bounds
    return low + torch.floor(u * (high - low)).to(torch.long)


class CommandProcess:
    """Imagined commands: the plan's command term sampled on pre-drawn uniforms, redrawn on a per-env countdown.

    :param term: the plan's command term object, or None (commands stay zero).
    :param interval_range: ``[low, high)`` steps between redraws.
    """

    def __init__(self, term: CommandTerm | None, interval_range: tuple[int, int]) -> None:
        self.term = term
        self.dim = term.dim if term is not None else 3
        self.draws = term.uniform_draws if term is not None else 0
        self.interval_range = interval_range

    def sample(self, u: torch.Tensor) -> torch.Tensor:
        """``[N, dim]`` commands from draws ``u`` ``[N, draws]``."""
        if self.term is None:
            return torch.zeros(u.shape[0], self.dim, device=u.device)
        return self.term.from_uniform(u)

    def advance(self, command: torch.Tensor, left: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Count the commands down; expired ones are redrawn from ``u`` ``[N, draws + 1]``."""
        left = left - 1
        expired = left <= 0
        command = torch.where(expired.unsqueeze(-1), self.sample(u[:, :-1]), command)
        return command, torch.where(expired, interval(self.interval_range, u[:, -1]), left)

    def start(
        self, mask: torch.Tensor, command: torch.Tensor, left: torch.Tensor, u: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A new command and countdown in the envs of ``mask``, from ``u`` ``[N, draws + 1]``."""
        command = torch.where(mask.unsqueeze(-1), self.sample(u[:, :-1]), command)
        return command, torch.where(mask, interval(self.interval_range, u[:, -1]), left)


@dataclass(frozen=True)
class PushedVelocity:
    """Where a push lands in the predicted state: the ``system_state`` columns of the base linear velocity, and the
    scale of their observation term (a push in m/s is ``scale`` times that in state units)."""

    columns: slice
    scale: float

    def add(self, state_obs: torch.Tensor, mask: torch.Tensor, linear: torch.Tensor) -> torch.Tensor:
        """``state_obs`` ``[N, S]`` with ``linear`` ``[N, 3]`` (m/s) added to the base velocity of the envs in
        ``mask``. The model predicts the velocity in the base frame and no yaw, so the push is added in that frame."""
        delta = linear.to(state_obs.dtype) * self.scale * mask.unsqueeze(-1)
        start, width = self.columns.start, state_obs.shape[1]
        return state_obs + torch.nn.functional.pad(delta, (start, width - self.columns.stop))
