"""PNG plots of a world-model evaluation (``rwmspec eval-model``), drawn with matplotlib's Agg canvas (no display).

* ``write_trajectory_plots``: one figure per state block (``state_<block>.png``), one panel per dimension, the true
  trajectory (solid) and the autoregressive prediction (dashed) of a few held-out trajectories in physical units,
  with the spread of the ensemble members' means (min to max) as a band and the true context shaded.
* ``write_error_curves``: the relative error e vs steps ahead: plain and noised, and per state block.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from rwmspec_runtime.checkpoints import atomic_write

#: colours of the plotted trajectories (matplotlib's default cycle)
_COLORS = ("C0", "C1", "C2", "C3", "C4", "C5")


@dataclass(frozen=True)
class StateBlock:
    """One term of the ``system_state`` group: its name, its slice of the state vector, per-dimension labels."""

    name: str
    dims: slice
    labels: tuple[str, ...] = ()

    def label(self, i: int) -> str:
        return self.labels[i] if i < len(self.labels) else f"{self.name}[{i}]"


def _figure(rows: int, cols: int, width: float, height: float):
    # a bare Figure renders through Agg without pyplot, so no display and no global backend switch
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(rows, cols, sharex=True, squeeze=False)
    return fig, axes


def _save(fig, path: Path) -> Path:
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=90))


def write_trajectory_plots(
    directory: str | Path,
    blocks: Sequence[StateBlock],
    truth: torch.Tensor,
    predicted: torch.Tensor,
    members: torch.Tensor,
    *,
    history_horizon: int,
    dt: float,
    title: str = "",
) -> list[Path]:
    """One ``state_<block>.png`` per block.

    :param truth: ``[B, T, S]`` true states (physical units), B the plotted trajectories.
    :param predicted: ``[B, T, S]`` ensemble-mean rollout (equal to ``truth`` for t < M).
    :param members: ``[K, B, T, S]`` member means along the rollout (nan for t < M).
    :param dt: control period (s), for the time axis.
    """
    directory = Path(directory)
    B, T = truth.shape[:2]
    t = torch.arange(T) * dt
    lo, hi = members.amin(dim=0), members.amax(dim=0)
    spread = members.shape[0] > 1
    paths = []
    for block in blocks:
        width = block.dims.stop - block.dims.start
        cols = 3 if width % 3 == 0 or width > 4 else width
        rows = math.ceil(width / cols)
        fig, axes = _figure(rows, cols, 4.0 * cols, 2.2 * rows + 0.6)
        for i in range(rows * cols):
            ax = axes[i // cols][i % cols]
            if i >= width:
                ax.set_visible(False)
                continue
            d = block.dims.start + i
            ax.axvspan(0.0, (history_horizon - 1) * dt, color="0.9", lw=0)
            for b in range(B):
                color = _COLORS[b % len(_COLORS)]
                ax.plot(t, truth[b, :, d], color=color, lw=1.0)
                ax.plot(t[history_horizon:], predicted[b, history_horizon:, d], color=color, lw=1.0, ls="--")
                if spread:
                    ax.fill_between(
                        t[history_horizon:],
                        lo[b, history_horizon:, d],
                        hi[b, history_horizon:, d],
                        color=color,
                        alpha=0.2,
                        lw=0,
                    )
            ax.set_title(block.label(i), fontsize=9)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        for ax in axes[-1]:
            ax.set_xlabel("time (s)", fontsize=8)
        band = ", band: ensemble members' min-max" if spread else ""
        fig.suptitle(
            f"{block.name}: true (solid) vs predicted (dashed) of {B} held-out trajectories; "
            f"grey: true context{band}\n{title}",
            fontsize=9,
        )
        paths.append(_save(fig, directory / f"state_{block.name}.png"))
    return paths


def write_error_curves(
    path: str | Path,
    error_per_step: torch.Tensor,
    noised_per_step: Mapping[float, torch.Tensor],
    blocks_per_step: Mapping[str, torch.Tensor],
    *,
    dt: float,
    title: str = "",
) -> Path:
    """e vs steps ahead (``error_per_step[k]`` is k + 1 steps ahead): plain and noised, then per block."""
    fig, axes = _figure(2, 1, 8.0, 7.0)
    steps = torch.arange(1, error_per_step.numel() + 1)
    top, bottom = axes[0][0], axes[1][0]
    top.plot(steps, error_per_step.cpu(), color="k", lw=1.5, label="e")
    for sigma, curve in noised_per_step.items():
        top.plot(steps, curve.cpu(), lw=1.0, label=f"noised, sigma={sigma:g}")
    for name, curve in blocks_per_step.items():
        bottom.plot(steps, curve.cpu(), lw=1.0, label=name)
    for ax, what in ((top, "e"), (bottom, "e per state block")):
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    bottom.set_xlabel(f"steps ahead (x {dt * 1000:g} ms)")
    fig.suptitle(f"relative autoregressive error vs horizon\n{title}", fontsize=9)
    return _save(fig, Path(path))
