"""Finding runs: the runs directory, new run directories, the runs of a spec, resume checks, run references.

The runs of a spec are the run directories ``<runs-dir>/<experiment.name>/<timestamp>_<run_name>/`` that hold a
``plan.json``, newest first. Experiment name and run name come from the compiled spec (overlays and ``--set``
included), so two specs that share both share their runs.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rwmspec.plan import Plan, RunRefPlan, plan_to_dict
from rwmspec_runtime.checkpoints import LATEST, list_checkpoints, resolve_checkpoint
from rwmspec_runtime.errors import runtime_error
from rwmspec_runtime.rundir import RunDir

RUNS_DIR_ENV = "RWMSPEC_RUNS_DIR"
TIMESTAMP = "%Y-%m-%d_%H-%M-%S"
_RUN_NAME = re.compile(r"^(?P<ts>\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2})(?:-(?P<k>\d+))?_(?P<name>.+)$")


def runs_root(runs_dir: str | Path | None = None) -> Path:
    """``--runs-dir``, else ``$RWMSPEC_RUNS_DIR``, else ``./runs``."""
    return Path(runs_dir or os.environ.get(RUNS_DIR_ENV) or "runs")


def experiment_dir(root: str | Path, experiment: str) -> Path:
    return Path(root) / experiment


def new_run_dir(root: str | Path, plan: Plan, now: datetime.datetime | None = None) -> RunDir:
    """Create ``<root>/<experiment>/<YYYY-MM-DD_HH-MM-SS>_<run_name>/`` (``<ts>-2_...`` when that name is taken)."""
    stamp = (now or datetime.datetime.now()).strftime(TIMESTAMP)
    parent = experiment_dir(root, plan.experiment.name)
    parent.mkdir(parents=True, exist_ok=True)
    k = 1
    while True:
        name = f"{stamp}_{plan.run_name}" if k == 1 else f"{stamp}-{k}_{plan.run_name}"
        try:
            (parent / name).mkdir()
        except FileExistsError:
            k += 1
            continue
        return RunDir(parent / name)


def _order(path: Path) -> tuple[str, int]:
    m = _RUN_NAME.match(path.name)
    return (m.group("ts"), int(m.group("k") or 1)) if m else ("", 0)


def runs_of(root: str | Path, experiment: str, run_name: str) -> list[RunDir]:
    """Run directories of an experiment whose name ends in ``_<run_name>``, newest first."""
    parent = experiment_dir(root, experiment)
    if not parent.is_dir():
        return []
    found = []
    for path in parent.iterdir():
        m = _RUN_NAME.match(path.name)
        if m and m.group("name") == run_name and RunDir(path).exists:
            found.append(path)
    return [RunDir(p) for p in sorted(found, key=_order, reverse=True)]


def latest_run(root: str | Path, experiment: str, run_name: str) -> RunDir | None:
    """The newest run that has a checkpoint."""
    return next((r for r in runs_of(root, experiment, run_name) if list_checkpoints(r.path)), None)


def locate_run(root: str | Path, experiment: str, ref: str | Path) -> RunDir:
    """A run given as a path, or as a directory name under ``<root>/<experiment>/``."""
    path = Path(ref)
    if not path.exists() and len(path.parts) == 1:
        path = experiment_dir(root, experiment) / path
    if not RunDir(path).exists:
        parent = experiment_dir(root, experiment)
        names = sorted((p.name for p in parent.iterdir() if RunDir(p).exists), reverse=True) if parent.is_dir() else []
        raise runtime_error(
            "RWM501",
            f"{path} is not a run directory",
            file=path,
            hint=f"runs of experiment '{experiment}' under {parent}: {', '.join(names) or 'none'}",
        )
    return RunDir(path)


# ----------------------------------------------------------------------------------------------------------------
# resuming
# ----------------------------------------------------------------------------------------------------------------
def resume_fingerprint(plan_dict: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a plan (as a dict) that must be equal to continue a run.

    Left out: how long to train and how often to save (``runner.max_iterations``, ``runner.save_interval``), where
    to log (``logging``), the learning device, and the path of the spec file.
    """
    data = json.loads(
        json.dumps(plan_to_dict(plan_dict) if isinstance(plan_dict, Plan) else plan_dict, default=str)
    )  # tuples -> lists, as stored in plan.json
    data.pop("logging", None)
    data.pop("spec_file", None)
    for section, key in (("runner", "max_iterations"), ("runner", "save_interval"), ("sim", "device")):
        data.get(section, {}).pop(key, None)
    return data


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: data}


def plan_differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``key: stored -> current`` for every leaf of the resume fingerprints that differs."""
    a, b = _flatten(resume_fingerprint(stored)), _flatten(resume_fingerprint(current))
    missing = object()
    return [
        f"{k}: {a.get(k, '(absent)')!r} -> {b.get(k, '(absent)')!r}"
        for k in sorted(set(a) | set(b))
        if a.get(k, missing) != b.get(k, missing)
    ]


def check_resumable(run: RunDir, plan: Plan) -> None:
    """Refuse (RWM505) to continue ``run`` with a plan that trains something else than the one it started with."""
    diffs = plan_differences(run.plan_dict(), plan_to_dict(plan))
    if diffs:
        shown = "; ".join(diffs[:8]) + (f"; and {len(diffs) - 8} more" if len(diffs) > 8 else "")
        raise runtime_error(
            "RWM505",
            f"run {run.path} was trained from a different plan and cannot be resumed with this spec: {shown}",
            file=run.path,
            hint="start a new run (drop --resume / --run-dir), or restore the spec and overlays the run used "
            "(see its run.json); only runner.max_iterations, runner.save_interval, logging and the device may "
            "change",
        )


# ----------------------------------------------------------------------------------------------------------------
# run references (runner.policy_from, runner.world_model_from)
# ----------------------------------------------------------------------------------------------------------------
def run_command(spec: str | Path, overlays: Sequence[str | Path] = (), extra: Sequence[str] = ()) -> str:
    """The shell command that trains ``spec`` with ``overlays``."""
    args = ["rwmspec", "run", str(spec)]
    for overlay in overlays:
        args += ["--overlay", str(overlay)]
    return shlex.join([*args, *extra])


def resolve_reference(
    field: str, ref: RunRefPlan, referenced: Plan, *, root: str | Path, overlays: Sequence[str | Path] = ()
) -> Path:
    """The checkpoint a run reference points at.

    :param field: the spec key, e.g. ``runner.policy_from`` (for messages).
    :param referenced: the compiled plan of ``ref.spec`` (same overlays), giving its experiment and run name.
    """
    experiment, run_name = referenced.experiment.name, referenced.run_name
    command = run_command(ref.spec, overlays)
    if ref.run == "latest":
        run = latest_run(root, experiment, run_name)
        if run is None:
            where = experiment_dir(root, experiment)
            raise runtime_error(
                "RWM503",
                f"{field} refers to the latest run of {ref.spec}, but {where} has no run "
                f"'*_{run_name}' with a checkpoint",
                file=ref.spec,
                hint=f"train it first with `{command}`, or add --with-deps to run it automatically",
            )
    else:
        run = RunDir(experiment_dir(root, experiment) / ref.run)
        if not run.exists:
            available = ", ".join(r.name for r in runs_of(root, experiment, run_name)) or "none"
            raise runtime_error(
                "RWM503",
                f"{field} refers to run {ref.run!r} of {ref.spec}, which does not exist under "
                f"{experiment_dir(root, experiment)} (runs: {available})",
                file=ref.spec,
                hint=f'use run = "latest", or train it with `{command}`',
            )
    return resolve_checkpoint(run.path, ref.checkpoint or LATEST)


def dependencies(plan: Plan) -> dict[str, RunRefPlan]:
    """The plan's run references by spec key."""
    refs = {"runner.policy_from": plan.policy_from, "runner.world_model_from": plan.world_model_from}
    return {k: v for k, v in refs.items() if v is not None}
