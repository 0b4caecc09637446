"""Plan -> ``EmbeddedConfig``: checks that the embedded backend implements every term of the plan and finds the
robot's MJCF file (its embedded ``RobotAsset``).

Light module (no mujoco, no torch): `rwmspec compile` runs it without importing the simulator. Every problem is
collected and raised at once as ``SpecError`` with RWM402 diagnostics that name the term, its kind and what the
backend supports.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from rwmspec.diagnostics import Diagnostic, SpecError
from rwmspec.manager import Registry
from rwmspec.plan import Plan, TermPlan, plan_to_dict
from rwmspec.spec.convert import structure
from rwmspec.types import Artifacts
from rwmspec_plugins.embedded.plugin import EVENT_TERMS, EmbeddedOptions

BACKEND = "embedded"
#: Event kinds the backend binds to its own terms, per mode (see events.py for their semantics).
EVENT_KINDS: dict[str, tuple[str, ...]] = {
    mode: tuple(kind for kind, (_cls, runs_in) in EVENT_TERMS.items() if runs_in == mode)
    for mode in ("startup", "reset", "interval")
}
#: Modes in which a kind's backend-neutral event term (``TermKind.function``, e.g. the push) runs: it is called with
#: the env, which start-up events (acting on the models before the env exists) do not have.
NEUTRAL_EVENT_MODES = ("reset", "interval")
TERMINATION_KINDS = ("time_out", "illegal_contact")
COMMAND_KINDS = ("uniform_velocity",)
ACTION_KINDS = ("joint_position",)
#: Categories whose kinds run through their torch function (``TermKind.function``), shared with imagination.
FUNCTION_CATEGORIES = {"observation": "observations", "reward": "rewards"}


@attrs.frozen(kw_only=True)
class EmbeddedConfig:
    """What ``make_embedded_env`` needs beyond the plan: the structured backend options and the robot's MJCF."""

    options: EmbeddedOptions
    #: path of the robot's MJCF file, resolved from its embedded ``RobotAsset``
    mjcf: str


def compile_embedded(plan: Plan, registry: Registry) -> Artifacts:
    """Check ``plan`` against the embedded backend.

    :return: ``Artifacts(backend="embedded", objects={"config": EmbeddedConfig}, dumps={"embedded.json": ...})``.
    :raises SpecError: RWM402 diagnostics for every term or option the backend cannot run.
    """
    problems: list[Diagnostic] = []

    def problem(message: str, path: tuple[Any, ...], hint: str | None = None) -> None:
        problems.append(Diagnostic("RWM402", message, path=path, hint=hint, file=plan.spec_file))

    options = _options(plan, problems)
    mjcf = _mjcf(plan, registry, problem)
    robot = registry.robots.get(plan.robot.name)
    # the plan's actuator has the robot's [robot.options] applied
    actuator = plan.robot.actuator or (robot.actuator if robot else None)
    for message, path, hint in _term_problems(plan, registry):
        problem(message, path, hint)
    if problems:
        raise SpecError(problems)
    assert options is not None and mjcf is not None
    config = EmbeddedConfig(options=options, mjcf=str(mjcf))
    dump = {
        "backend": BACKEND,
        "options": attrs.asdict(options),
        "num_envs": plan.sim.num_envs,
        "physics_dt": plan.sim.physics_dt,
        "decimation": plan.sim.decimation,
        "control_dt": plan.sim.control_dt,
        "max_episode_length": plan.sim.max_episode_length,
        # the asset reference, not the path: the dump reads the same on every machine
        "mjcf": registry.asset(plan.robot.name, BACKEND).ref,
        "actuator": attrs.asdict(actuator) if actuator else None,
        "observation_groups": {name: g.dim for name, g in plan.observations.items()},
        "terms": {
            section: [t["name"] for t in plan_to_dict(getattr(plan, section))]
            for section in ("commands", "actions", "events", "terminations", "rewards")
        },
    }
    return Artifacts(
        backend=BACKEND,
        objects={"config": config},
        dumps={"embedded.json": json.dumps(dump, indent=2, default=str) + "\n"},
    )


def structure_options(options: Mapping[str, Any] | EmbeddedOptions | None) -> EmbeddedOptions:
    """``[backend.options]`` as ``EmbeddedOptions``, through rwmspec's one strict converter.

    `rwmspec validate` reports unknown keys, wrong types (RWM213) and out-of-range values (the plugin's
    ``embedded_options`` check), so only a plan built by hand fails here: ``SpecError`` with those diagnostics.
    """
    if isinstance(options, EmbeddedOptions):
        return options
    return structure(dict(options or {}), EmbeddedOptions, path=("backend", "options"), code="RWM213")


def _mjcf(plan: Plan, registry: Registry, problem: Callable[..., None]) -> Path | None:
    """The robot's MJCF file from its embedded asset (``"package:relative/file.xml"``), or None after a problem."""
    name = plan.robot.name
    asset = registry.asset(name, BACKEND)
    if asset is None:
        problem(
            f"robot '{name}' has no MJCF model, which the embedded backend simulates",
            ("robot", "name"),
            hint=f"use backend.name = \"isaaclab\", or register RobotAsset(robot='{name}', backend='{BACKEND}', "
            "ref='package:relative/file.xml') from a plugin's rwmspec_robot_assets() hook",
        )
        return None
    package, sep, relative = asset.ref.partition(":")
    provider = registry.providers.get(("assets", (name, BACKEND)), "?")
    if not sep or not package or not relative:
        problem(
            f"robot '{name}': the embedded RobotAsset ref {asset.ref!r} must look like 'package.name:relative/file.xml'",
            ("robot", "name"),
            hint=f"fix the RobotAsset of plugin {provider}",
        )
        return None
    try:
        path = Path(str(resources.files(package).joinpath(relative)))
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_file():
        problem(
            f"robot '{name}': MJCF {asset.ref!r} not found" + (f" at {path}" if path else f" (no package {package!r})"),
            ("robot", "name"),
            hint=f"reinstall plugin {provider}, or fix its RobotAsset ref",
        )
        return None
    return path


def _options(plan: Plan, problems: list[Diagnostic]) -> EmbeddedOptions | None:
    try:
        return structure_options(plan.sim.options)
    except SpecError as exc:  # validate's own diagnostics (RWM213), for a plan that skipped it
        problems.extend(attrs.evolve(d, file=plan.spec_file) for d in exc.diagnostics)
        return None


def _term_problems(plan: Plan, registry: Registry) -> Iterator[tuple[str, tuple[Any, ...], str | None]]:
    for category, section in FUNCTION_CATEGORIES.items():
        terms = (
            [(("observations", g.name, "terms", t.name), t) for g in plan.observations.values() for t in g.terms]
            if category == "observation"
            else [((section, t.name), t) for t in plan.rewards]
        )
        for path, term in terms:
            kind = registry.term_kinds.get((category, term.kind))
            if kind is None or kind.function is None:
                supported = sorted(n for n, k in registry.kinds(category).items() if k.function)
                yield (
                    f"{category} term '{term.name}' has kind '{term.kind}', which has no torch implementation "
                    f"the embedded backend can call",
                    (*path, "kind"),
                    f"supported {category} kinds: {', '.join(supported)}",
                )
    yield from _kind_problems(plan.terminations, "terminations", TERMINATION_KINDS)
    yield from _kind_problems(plan.commands, "commands", COMMAND_KINDS)
    yield from _kind_problems(plan.actions, "actions", ACTION_KINDS)
    neutral = tuple(sorted(n for n, k in registry.kinds("event").items() if k.function and n not in EVENT_TERMS))
    runs_in = {mode: kinds + (neutral if mode in NEUTRAL_EVENT_MODES else ()) for mode, kinds in EVENT_KINDS.items()}
    for event in plan.events:
        allowed = runs_in.get(event.mode, ())
        if event.kind not in allowed:
            modes = [m for m, kinds in runs_in.items() if event.kind in kinds]
            where = f"it runs in mode {', '.join(modes)}" if modes else "the backend does not implement it"
            yield (
                f"event '{event.name}' of kind '{event.kind}' cannot run in mode '{event.mode}' on the embedded "
                f"backend ({where})",
                ("events", event.name, "kind"),
                f"{event.mode} kinds: {', '.join(allowed) or 'none'}",
            )
        yield from _event_param_problems(event)
    if len(plan.commands) > 1:
        yield (
            "the embedded backend drives one velocity command; the plan has "
            f"{', '.join(c.name for c in plan.commands)}",
            ("commands",),
            "keep one [commands.<name>] table",
        )


def _kind_problems(
    terms: tuple[TermPlan, ...], section: str, supported: tuple[str, ...]
) -> Iterator[tuple[str, tuple[Any, ...], str | None]]:
    for term in terms:
        if term.kind not in supported:
            yield (
                f"{section[:-1]} '{term.name}' has kind '{term.kind}', which the embedded backend does not implement",
                (section, term.name, "kind"),
                f"supported kinds: {', '.join(supported)}",
            )


def _event_param_problems(event: TermPlan) -> Iterator[tuple[str, tuple[Any, ...], str | None]]:
    params = event.params
    if event.kind == "randomize_rigid_body_material" and any(params.get("restitution_range", (0.0, 0.0))):
        yield (
            f"event '{event.name}': MuJoCo contacts have no restitution coefficient, so the embedded backend "
            "cannot randomise it",
            ("events", event.name, "restitution_range"),
            "set restitution_range = [0.0, 0.0]",
        )
    if event.kind == "apply_external_force_torque":
        for key in ("force_range", "torque_range"):
            if any(params.get(key, (0.0, 0.0))):
                yield (
                    f"event '{event.name}': the embedded backend applies no external wrench, so {key} must be zero",
                    ("events", event.name, key),
                    f"set {key} = [0.0, 0.0] or disable the event",
                )
