"""`rwmspec run` as a function: compile the spec, pick or create the run directory, make the env, train.

Resume rules (docs/running.md):

- ``rwmspec run SPEC`` starts a new run ``<runs-dir>/<experiment>/<timestamp>_<run_name>/``.
- ``--resume`` continues the newest run of this spec (same experiment and run name) from its ``latest``
  checkpoint; ``--resume RUN`` continues that run (a path, or a directory name under the experiment folder).
- ``--run-dir DIR`` trains in DIR: a new run when DIR holds no run, otherwise that run continues (so rerunning the
  same command resumes, DreamerV3 style).
- ``runner.max_iterations`` is a total: a 4-iteration run stopped after 2 runs 2 more. The checkpoint is loaded
  exactly once. A run whose plan differs (other than iterations, save interval, logging, device) is refused.
"""

from __future__ import annotations

import datetime
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

import rwmspec
from rwmspec.diagnostics import SpecError
from rwmspec.manager import Registry, get_registry, resolve
from rwmspec.plan import Plan
from rwmspec_runtime import checkpoints
from rwmspec_runtime.errors import runtime_error
from rwmspec_runtime.rundir import RunDir
from rwmspec_runtime.runs import (
    check_resumable,
    dependencies,
    locate_run,
    new_run_dir,
    resolve_reference,
    runs_of,
    runs_root,
)
from rwmspec_runtime.seeding import seed_everything


@attrs.frozen(kw_only=True)
class TrainRequest:
    """What `rwmspec run` was asked to do (the CLI's arguments, typed)."""

    spec: Path
    overlays: tuple[Path, ...] = ()
    sets: tuple[str, ...] = ()
    runs_dir: Path | None = None
    #: None: no resume; "latest": the newest run of the spec; otherwise a run directory or its name
    resume: str | None = None
    run_dir: Path | None = None
    device: str | None = None
    num_envs: int | None = None
    max_iterations: int | None = None
    checkpoint: str = checkpoints.LATEST
    with_deps: bool = False
    console: str | None = None

    @property
    def all_sets(self) -> tuple[str, ...]:
        """``--set`` values, with ``--device``, ``--num-envs`` and ``--max-iterations`` as sets after them."""
        extra = []
        if self.device is not None:
            extra.append(f"backend.device={self.device}")
        if self.num_envs is not None:
            extra.append(f"backend.num_envs={self.num_envs}")
        if self.max_iterations is not None:
            extra.append(f"runner.max_iterations={self.max_iterations}")
        return (*self.sets, *extra)

    def command(self, resume: Path | None = None) -> str:
        """This request as a shell command; with ``resume``, the command that continues that run."""
        args = ["rwmspec", "run", str(self.spec)]
        for overlay in self.overlays:
            args += ["--overlay", str(overlay)]
        for item in self.sets:
            args += ["--set", item]
        for flag, value in (
            ("--runs-dir", self.runs_dir),
            ("--device", self.device),
            ("--num-envs", self.num_envs),
            ("--max-iterations", self.max_iterations),
        ):
            if value is not None:
                args += [flag, str(value)]
        if resume is not None:
            args += ["--resume", str(resume)]
        return shlex.join(args)


def compile_spec(spec: Path, overlays: Sequence[Path] = (), sets: Sequence[str] = ()) -> tuple[Plan, str]:
    """The plan of a spec (raising ``SpecError`` with every diagnostic on bad input) and its resolved TOML."""
    from rwmspec import api

    # a spec that is run is a whole spec, wherever it lies: check it as one (a fragment's missing keys are errors)
    result = api.load_and_compile(spec, overlays=list(overlays), sets=list(sets), fragment=False)
    if result.plan is None or any(d.severity == "error" for d in result.diagnostics):
        raise SpecError(result.diagnostics)
    return result.plan, api.resolved_toml(result.spec)


def make_env(plan: Plan, registry: Registry, *, device: str, num_envs: int | None = None, render: bool = False):
    """The plan's backend env (rsl-rl-lib VecEnv), made from the artifacts its backend compiles.

    The one path from plan to env: ``compile_backend`` (which reports missing modules as RWM401 and an unknown
    backend as RWM205) produces exactly what `rwmspec compile --out` shows, and the backend's ``make_env`` builds the
    env from those artifacts. ``render``: the env will draw pictures (``rwmspec_runtime.rendering``).
    """
    from rwmspec.compile import compile_backend

    backend = registry.backends.get(plan.sim.backend)
    if backend is not None and backend.make_env is None:
        raise runtime_error(
            "RWM401",
            f"backend {plan.sim.backend!r} only compiles configs; it cannot make environments",
            file=plan.spec_file,
            hint='use backend.name = "embedded" to train on this machine',
        )
    artifacts = compile_backend(plan, registry)
    assert backend is not None and backend.make_env is not None  # compile_backend refused unknown backends
    return resolve(backend.make_env)(plan, artifacts, registry, device=device, num_envs=num_envs, render=render)


def _resolve_references(request: TrainRequest, plan: Plan, root: Path, log: Callable[[str], None]) -> dict[str, Path]:
    """Checkpoint paths of the plan's run references; with ``--with-deps`` missing ones are trained first."""
    found: dict[str, Path] = {}
    for field, ref in dependencies(plan).items():
        referenced, _ = compile_spec(Path(ref.spec), request.overlays)
        try:
            found[field] = resolve_reference(field, ref, referenced, root=root, overlays=request.overlays)
        except SpecError as missing:
            if not request.with_deps or ref.run != "latest" or missing.diagnostics[0].code != "RWM503":
                raise
            log(f"{field}: no run of {ref.spec} yet; training it first (--with-deps)")
            train(
                attrs.evolve(
                    request,
                    spec=Path(ref.spec),
                    sets=(),
                    resume=None,
                    run_dir=None,
                    num_envs=None,
                    max_iterations=None,
                    checkpoint=checkpoints.LATEST,
                ),
                log=log,
            )
            found[field] = resolve_reference(field, ref, referenced, root=root, overlays=request.overlays)
        log(f"{field}: {found[field]}")
    return found


def _choose_run(request: TrainRequest, plan: Plan, root: Path) -> tuple[RunDir, bool]:
    """(run directory, continuing an existing run?)."""
    if request.resume is not None and request.run_dir is not None:
        raise runtime_error(
            "RWM505",
            "--resume and --run-dir both name the run to continue; give only one",
            hint="--resume RUN continues RUN; --run-dir DIR continues DIR or starts a run in it",
        )
    if request.run_dir is not None:
        run = RunDir(request.run_dir)
        return run, run.exists
    if request.resume is None:
        return new_run_dir(root, plan), False
    if request.resume == "latest":
        runs = runs_of(root, plan.experiment.name, plan.run_name)
        if not runs:
            raise runtime_error(
                "RWM505",
                f"--resume: no run of {plan.spec_file} under {root / plan.experiment.name} "
                f"(runs are named '<timestamp>_{plan.run_name}')",
                file=plan.spec_file,
                hint=f"start one with `{request.command()}`, or pass --runs-dir if the runs live elsewhere",
            )
        return runs[0], True
    return locate_run(root, plan.experiment.name, request.resume), True


def train(request: TrainRequest, *, log: Callable[[str], None] = print) -> RunDir:
    """Train (or continue) one run of ``request.spec``; returns its run directory."""
    plan, resolved_toml = compile_spec(request.spec, request.overlays, request.all_sets)
    root = runs_root(request.runs_dir)
    run, continuing = _choose_run(request, plan, root)
    checkpoint_path = None
    references: dict[str, Path] = {}
    if continuing:
        check_resumable(run, plan)
        if checkpoints.list_checkpoints(run.path) or request.checkpoint != checkpoints.LATEST:
            checkpoint_path = checkpoints.resolve_checkpoint(run.path, request.checkpoint)
    else:
        try:
            references = _resolve_references(request, plan, root, log)
        except BaseException:
            if request.run_dir is None:
                run.path.rmdir()  # the directory new_run_dir just reserved, still empty: leave no dead run behind
            raise
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_run_record(
            {
                "spec": str(Path(request.spec).resolve()),
                "overlays": [str(Path(o).resolve()) for o in request.overlays],
                "sets": list(request.all_sets),
                "created": datetime.datetime.now().isoformat(timespec="seconds"),
                "rwmspec_version": rwmspec.__version__,
                "python": sys.version.split()[0],
                "references": {k: str(v) for k, v in references.items()},
            }
        )
    run.write_plan(plan)
    run.write_resolved(resolved_toml)
    run.update_run_record(status="running", resume_command=request.command(resume=run.path))

    log(f"run directory: {run.path}")
    if checkpoint_path is not None:
        log(f"resuming from {checkpoint_path}")
    elif continuing:
        log("continuing a run that has no checkpoint yet: starting from iteration 0")
    log(f"resume with:   {request.command(resume=run.path)}")
    log(f"TensorBoard:   tensorboard --logdir {run.path.parent}")

    from rwmspec_runtime.runner import Runner
    from rwmspec_runtime.steps import step_classes

    registry = get_registry()
    render = any(step.renders(plan) for step in step_classes(plan, registry))
    seed_everything(plan.experiment.seed)
    env = make_env(plan, registry, device=plan.sim.device, render=render)
    try:
        runner = Runner(
            plan,
            env,
            run,
            device=plan.sim.device,
            log=log,
            console=request.console,
            references=references,
            registry=registry,
        )
        if checkpoint_path is not None:
            runner.restore(checkpoints.load_checkpoint(checkpoint_path, map_location=plan.sim.device))
        elif "runner.policy_from" in references:
            runner.load_policy(
                checkpoints.load_checkpoint(references["runner.policy_from"], map_location=plan.sim.device)
            )
        try:
            runner.learn()
        except BaseException as exc:
            run.update_run_record(status="stopped", iterations=runner.iteration)
            if isinstance(exc, KeyboardInterrupt):
                log(
                    f"\ninterrupted after {runner.iteration} iterations; continue with: "
                    f"{request.command(resume=run.path)}"
                )
            raise
        done = runner.iteration >= plan.runner.max_iterations
        run.update_run_record(status="finished" if done else "stopped", iterations=runner.iteration)
        log(
            f"{'finished' if done else 'stopped'} after {runner.iteration}/{plan.runner.max_iterations} iterations; "
            f"checkpoint: {runner.last_checkpoint or checkpoint_path}"
        )
    finally:
        close = getattr(env, "close", None)
        if callable(close):
            close()
    return run
