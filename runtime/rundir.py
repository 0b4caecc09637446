"""One run directory: where a training run keeps its plan, metrics, checkpoints and plots.

Layout (``<runs-dir>/<experiment>/<YYYY-MM-DD_HH-MM-SS>_<run_name>/``)::

    run.json             how the run was started (spec, overlays, --set values, command) and its status
    plan.json            the compiled plan (``rwmspec.plan.plan_to_dict``); eval, play and export read it
    resolved.toml        the resolved spec (what ran, after extends, overlays and --set)
    metrics.jsonl        one JSON object per iteration: {"iteration": n, "time": ..., "<tag>": value, ...}
    events.out.tfevents.*  TensorBoard scalars (same tags)
    model_<n>.pt         checkpoints, n = completed iterations
    latest               text file: the name of the newest checkpoint
    learning_curve.png   mean reward and episode length per iteration (rewritten at every checkpoint)
    eval.json            written by `rwmspec eval`
    exported/            written by `rwmspec export`
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rwmspec.plan import Plan, plan_from_dict, plan_to_dict
from rwmspec_runtime.checkpoints import atomic_write_text, checkpoint_iteration, read_latest_pointer
from rwmspec_runtime.errors import runtime_error

PLAN_FILE = "plan.json"
RUN_FILE = "run.json"
RESOLVED_FILE = "resolved.toml"
METRICS_FILE = "metrics.jsonl"
CURVE_FILE = "learning_curve.png"
EVAL_FILE = "eval.json"
EXPORT_DIR = "exported"


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


class RunDir:
    """A run directory on disk. Creating the object touches nothing; ``write_*`` methods write atomically."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def exists(self) -> bool:
        """True when the directory holds an rwmspec run (a ``plan.json``)."""
        return (self.path / PLAN_FILE).is_file()

    def require(self) -> RunDir:
        """This run, or an RWM501 error when the directory is missing or not a run."""
        if not self.path.is_dir():
            raise runtime_error(
                "RWM501",
                f"run directory {self.path} does not exist",
                file=self.path,
                hint="list runs with `ls <runs-dir>/<experiment>/`",
            )
        if not self.exists:
            raise runtime_error(
                "RWM501",
                f"{self.path} is not an rwmspec run directory (it has no {PLAN_FILE})",
                file=self.path,
                hint="pass the directory that `rwmspec run` printed at start",
            )
        return self

    # -- plan and run record --------------------------------------------------------------------------------------
    def write_plan(self, plan: Plan) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.file(PLAN_FILE), _dump(plan_to_dict(plan)))

    def plan_dict(self) -> dict[str, Any]:
        return json.loads(self.file(PLAN_FILE).read_text(encoding="utf-8"))

    def plan(self) -> Plan:
        """The plan this run was trained with (not the current spec file)."""
        self.require()
        try:
            return plan_from_dict(self.plan_dict())
        except Exception as exc:
            raise runtime_error(
                "RWM501",
                f"{self.file(PLAN_FILE)} cannot be read as a plan of this rwmspec version "
                f"({type(exc).__name__}: {exc})",
                file=self.file(PLAN_FILE),
                hint="use the rwmspec version that wrote the run (see run.json)",
            ) from exc

    def write_run_record(self, record: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.file(RUN_FILE), _dump(record))

    def run_record(self) -> dict[str, Any]:
        path = self.file(RUN_FILE)
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def update_run_record(self, **changes: Any) -> None:
        record = self.run_record()
        record.update(changes)
        self.write_run_record(record)

    def write_resolved(self, text: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.file(RESOLVED_FILE), text)

    def write_json(self, name: str, data: Any) -> Path:
        return atomic_write_text(self.file(name), _dump(data))

    # -- progress -------------------------------------------------------------------------------------------------
    @property
    def latest_checkpoint_name(self) -> str | None:
        return read_latest_pointer(self.path)

    @property
    def completed_iterations(self) -> int:
        """Iterations stored in the newest checkpoint (0 without one)."""
        name = self.latest_checkpoint_name
        return (checkpoint_iteration(name) or 0) if name else 0
