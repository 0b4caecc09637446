"""``learning_curve.png``: mean episode reward and episode length per iteration (matplotlib Agg, no display)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rwmspec_runtime.checkpoints import atomic_write

CURVES = (("Train/mean_reward", "mean episode reward"), ("Train/mean_episode_length", "mean episode length (steps)"))


def write_learning_curve(records: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Plot the curves of ``metrics.jsonl`` records (iterations without finished episodes are gaps)."""
    # a bare Figure renders through Agg without pyplot, so no display and no global backend switch
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 6), layout="constrained")
    axes = fig.subplots(len(CURVES), 1, sharex=True)
    for ax, (tag, label) in zip(axes, CURVES, strict=True):
        points = [(r["iteration"], r[tag]) for r in records if r.get(tag) is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="." if len(points) < 50 else None)
        else:
            ax.text(0.5, 0.5, "no finished episodes yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("iteration")
    if title:
        fig.suptitle(title)
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
