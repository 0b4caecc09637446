"""``learning_curve.png``: mean episode reward and episode length per iteration, and for runs that learn in
imagination the mean reward per step imagined next to the real one (matplotlib Agg, no display)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rwmspec_runtime.checkpoints import atomic_write

CURVES = (("Train/mean_reward", "mean episode reward"), ("Train/mean_episode_length", "mean episode length (steps)"))
# the model-exploitation view: a policy that games the model earns more imagined than real reward per step
IMAGINED_VS_REAL = (
    ("Model Based/per_step_reward_sum_imagination", "imagined"),
    ("Model Based/per_step_reward_sum_real", "real"),
)


def plot_tags(ax: Any, records: Sequence[dict[str, Any]], lines: Sequence[tuple[str, str | None]]) -> bool:
    """Draw each ``(tag, label)`` of ``lines`` over the iterations of ``records`` on ``ax`` (records without the tag
    are gaps); whether anything was drawn."""
    drawn = False
    for tag, name in lines:
        points = [(r["iteration"], r[tag]) for r in records if r.get(tag) is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="." if len(points) < 50 else None, label=name)
            drawn = True
    return drawn


def write_learning_curve(records: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Plot the curves of ``metrics.jsonl`` records (iterations without finished episodes are gaps)."""
    # a bare Figure renders through Agg without pyplot, so no display and no global backend switch
    from matplotlib.figure import Figure

    panels: list[tuple[tuple[tuple[str, str | None], ...], str]] = [(((tag, None),), label) for tag, label in CURVES]
    if any(IMAGINED_VS_REAL[0][0] in r for r in records):
        panels.append((IMAGINED_VS_REAL, "reward per step"))
    fig = Figure(figsize=(8, 3 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (lines, label) in zip(axes, panels, strict=True):
        if not plot_tags(ax, records, lines):
            ax.text(0.5, 0.5, "no finished episodes yet", ha="center", va="center", transform=ax.transAxes)
        elif len(lines) > 1:
            ax.legend()
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("iteration")
    if title:
        fig.suptitle(title)
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
