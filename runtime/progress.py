"""Console output per iteration: an rsl_rl-style block (``full``), one line (``compact``), or ``auto``.

``auto`` prints the full block on a terminal and the compact line otherwise (CI logs, files). Timing and ETA are
measured over the iterations of this process, so a resumed run's ETA is not skewed by its first segment.
"""

from __future__ import annotations

import datetime
import sys
import time
from typing import IO

from rich.console import Console
from rich.table import Table
from rich.text import Text

#: metrics shown in the block, in order, with their labels (others under "Loss/" and "Episode*" follow)
_MAIN = (
    ("Train/mean_reward", "Mean reward", "{:.2f}"),
    ("Train/mean_episode_length", "Mean episode length", "{:.1f}"),
    ("Train/mean_step_reward", "Mean step reward", "{:.4f}"),
    ("Policy/mean_std", "Mean action std", "{:.3f}"),
    ("Loss/learning_rate", "Learning rate", "{:.2e}"),
)


def _duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(round(seconds))))


class Progress:
    """Prints one block or line per finished iteration."""

    def __init__(
        self,
        mode: str,
        *,
        total_iterations: int,
        start_iteration: int,
        steps_per_iteration: int,
        run_name: str = "",
        file: IO[str] | None = None,
    ) -> None:
        """:param steps_per_iteration: real env steps per iteration (num_envs x num_steps_per_env)."""
        if mode not in ("auto", "full", "compact"):
            raise ValueError(f"console mode must be auto, full or compact, got {mode!r}")
        file = file if file is not None else sys.stdout
        self.console = Console(file=file, highlight=False, soft_wrap=True)
        self.mode = ("full" if self.console.is_terminal else "compact") if mode == "auto" else mode
        self.total = total_iterations
        self.start = start_iteration
        self.steps_per_iteration = steps_per_iteration
        self.run_name = run_name
        self.started = time.monotonic()
        self.total_steps = 0

    def eta(self, iteration: int) -> float:
        """Seconds left after ``iteration`` (1-based), from the mean iteration time of this process."""
        done = iteration - self.start
        return (time.monotonic() - self.started) / max(done, 1) * (self.total - iteration)

    def update(self, iteration: int, metrics: dict[str, float]) -> None:
        """Print iteration ``iteration`` (1-based) with its metrics (TensorBoard tags)."""
        self.total_steps += self.steps_per_iteration
        if self.mode == "full":
            self._full(iteration, metrics)
        else:
            self._compact(iteration, metrics)

    def _compact(self, iteration: int, m: dict[str, float]) -> None:
        parts = [f"it {iteration}/{self.total}", f"{m.get('Perf/total_fps', 0):,.0f} steps/s"]
        if "Train/mean_reward" in m:
            parts.append(f"reward {m['Train/mean_reward']:.2f}")
            parts.append(f"ep len {m['Train/mean_episode_length']:.0f}")
        elif "Train/mean_step_reward" in m:
            parts.append(f"step reward {m['Train/mean_step_reward']:.4f}")
        if "Visualize/autoregressive_error" in m:
            parts.append(f"twin error {m['Visualize/autoregressive_error']:.3g}")
        losses = " ".join(
            f"{k[5:]} {v:.3g}" for k, v in m.items() if k.startswith("Loss/") and k != "Loss/learning_rate"
        )
        if losses:
            parts.append(f"loss {losses}")
        if "Policy/mean_std" in m:
            parts.append(f"std {m['Policy/mean_std']:.2f}")
        parts.append(f"elapsed {_duration(time.monotonic() - self.started)}")
        parts.append(f"ETA {_duration(self.eta(iteration))}")
        self.console.print(" | ".join(parts), markup=False)

    def _full(self, iteration: int, m: dict[str, float]) -> None:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(justify="right", style="bold")
        grid.add_column()

        def row(label: str, value: str) -> None:
            grid.add_row(f"{label}:", value)

        if self.run_name:
            row("Run", self.run_name)
        row("Total steps", f"{self.total_steps:,}")
        row("Steps per second", f"{m.get('Perf/total_fps', 0):,.0f}")
        row("Collection time", f"{m.get('Perf/collection_time', 0):.3f}s")
        row("Learning time", f"{m.get('Perf/learning_time', 0):.3f}s")
        for key, value in m.items():
            if key.startswith("Loss/") and key != "Loss/learning_rate":
                row(f"Mean {key[5:]} loss", f"{value:.4f}")
        for key, label, fmt in _MAIN:
            if key in m:
                row(label, fmt.format(m[key]))
        for key, value in m.items():
            if key.startswith(("Episode", "Metrics/")):
                row(key, f"{value:.4f}")
        for key, value in m.items():
            if not key.startswith(("Loss/", "Perf/", "Train/", "Policy/", "Episode", "Metrics/")):
                row(key, f"{value:.4g}")
        row("Iteration time", f"{m.get('Perf/iteration_time', 0):.2f}s")
        row("Time elapsed", _duration(time.monotonic() - self.started))
        row("ETA", _duration(self.eta(iteration)))
        width = 80
        self.console.print(Text("#" * width))
        self.console.print(Text(f" Learning iteration {iteration}/{self.total} ".center(width), style="bold"))
        self.console.print(grid)
