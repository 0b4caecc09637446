"""Imagined against real reward per step of the fine-tuning runs of ``scripts/finetune_experiment.sh``.

    python scripts/plot_finetune_experiment.py OUT.png RUN.metrics.jsonl [RUN.metrics.jsonl ...]

One panel per run (titled by the file name), the learning curve's imagined-vs-real panel
(``rwmspec_runtime.plots.IMAGINED_VS_REAL``): the reward per step the policy earns in imagination and in the few
real envs of the same iterations. A policy that exploits the model earns more in imagination than in reality.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from matplotlib.figure import Figure

from rwmspec_runtime.plots import IMAGINED_VS_REAL, plot_tags


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    out, files = Path(argv[0]), [Path(a) for a in argv[1:]]
    cols = min(2, len(files))
    rows = -(-len(files) // cols)
    fig = Figure(figsize=(6 * cols, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True).ravel()
    for ax in axes[len(files) :]:
        ax.set_visible(False)
    for ax, path in zip(axes, files, strict=False):
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        plot_tags(ax, records, IMAGINED_VS_REAL)
        ax.set_title(path.name.removesuffix(".metrics.jsonl"), fontsize=9)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.legend()
    for ax in axes[::cols]:
        ax.set_ylabel("reward per step")
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
