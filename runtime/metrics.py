"""Per-iteration scalar metrics: ``metrics.jsonl`` (always) and TensorBoard (when the plan's writers list it).

Iterations are numbered from 1 (iteration n is the n-th; after it, n iterations are complete and the checkpoint is
``model_<n>.pt``). A resumed run first drops the records of iterations after its checkpoint, from both files, so
a crash between a checkpoint and the next one leaves no duplicated points.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from rwmspec_runtime.checkpoints import atomic_write_text
from rwmspec_runtime.rundir import METRICS_FILE


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Records of a ``metrics.jsonl``; a torn last line (crash while appending) is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


class MetricsLog:
    """Writes one record per iteration and keeps the history (for the learning curve)."""

    def __init__(self, run_dir: str | Path, *, tensorboard: bool, start_iteration: int = 0) -> None:
        """:param start_iteration: completed iterations of the checkpoint the run starts from (0 for a new run)."""
        self.path = Path(run_dir) / METRICS_FILE
        self.history = [r for r in read_metrics(self.path) if r.get("iteration", 0) <= start_iteration]
        if self.path.is_file():
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in self.history))
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events of iterations after the checkpoint a resumed run restarts from
            self.writer = SummaryWriter(
                log_dir=str(run_dir), flush_secs=10, purge_step=start_iteration + 1 if start_iteration else None
            )

    def write(self, iteration: int, metrics: dict[str, float]) -> dict[str, Any]:
        record: dict[str, Any] = {"iteration": iteration, "time": time.time()}
        record.update({k: (v if math.isfinite(v) else None) for k, v in metrics.items()})
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for tag, value in metrics.items():
                self.writer.add_scalar(tag, value, iteration)
        self.history.append(record)
        return record

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
