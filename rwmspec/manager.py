"""The plugin manager: loads the ``rwmspec`` entry points and flattens registration hooks into a Registry.

Collect, then check (conda's habit): every plugin's records are gathered first; a name given twice is a conflict
that names both providers; a plugin that fails to import is reported with its root exception while the others
keep working.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from importlib.metadata import Distribution, EntryPoint, entry_points
from typing import Any

import attrs
import pluggy

from rwmspec import hookspecs
from rwmspec.diagnostics import root_cause, suggest
from rwmspec.types import (
    ArchitectureDef,
    BackendDef,
    CheckDef,
    CommandDef,
    RobotAsset,
    RobotDef,
    StageDef,
    StepDef,
    TermBinding,
    TermKind,
    ViewField,
)

GROUP = "rwmspec"


@attrs.frozen
class PluginInfo:
    """One loaded (or failed) plugin, as `rwmspec plugins` lists it."""

    name: str
    module: str
    distribution: str
    version: str
    hooks: tuple[str, ...] = ()
    error: str | None = None

    @property
    def provider(self) -> str:
        return f"{self.name} ({self.distribution} {self.version})"


@attrs.frozen
class PluginProblem:
    """A problem found while loading plugins; rendered as an RWM3xx diagnostic."""

    code: str
    message: str
    hint: str | None = None


@attrs.define
class Registry:
    """Everything the installed plugins registered, keyed by name."""

    robots: dict[str, RobotDef] = attrs.field(factory=dict)
    #: (robot, backend) -> asset
    assets: dict[tuple[str, str], RobotAsset] = attrs.field(factory=dict)
    view_fields: dict[str, ViewField] = attrs.field(factory=dict)
    #: (category, kind) -> term kind
    term_kinds: dict[tuple[str, str], TermKind] = attrs.field(factory=dict)
    #: (backend, category, kind) -> the backend's own implementation
    bindings: dict[tuple[str, str, str], TermBinding] = attrs.field(factory=dict)
    backends: dict[str, BackendDef] = attrs.field(factory=dict)
    architectures: dict[str, ArchitectureDef] = attrs.field(factory=dict)
    steps: dict[str, StepDef] = attrs.field(factory=dict)
    stages: dict[str, StageDef] = attrs.field(factory=dict)
    commands: dict[str, CommandDef] = attrs.field(factory=dict)
    checks: dict[str, CheckDef] = attrs.field(factory=dict)
    plugins: list[PluginInfo] = attrs.field(factory=list)
    problems: list[PluginProblem] = attrs.field(factory=list)
    #: record key -> provider description, for conflict messages and `rwmspec list`
    providers: dict[tuple[str, Any], str] = attrs.field(factory=dict)

    def kinds(self, category: str) -> dict[str, TermKind]:
        return {name: k for (cat, name), k in self.term_kinds.items() if cat == category}

    def asset(self, robot: str, backend: str) -> RobotAsset | None:
        """The asset ``backend`` simulates ``robot`` with, if a plugin supplies one."""
        return self.assets.get((robot, backend))

    def binding(self, backend: str, category: str, kind: str) -> TermBinding | None:
        """``backend``'s own implementation of the term kind, if a plugin supplies one."""
        return self.bindings.get((backend, category, kind))


def _dist_of(ep: EntryPoint) -> tuple[str, str]:
    dist: Distribution | None = getattr(ep, "dist", None)
    if dist is None:
        return ("unknown", "?")
    return (dist.metadata["Name"] or "unknown", dist.version or "?")


def _disabled() -> set[str]:
    return {n.strip() for n in os.environ.get("RWMSPEC_DISABLE_PLUGINS", "").split(",") if n.strip()}


def make_plugin_manager(
    extra_plugins: Iterable[tuple[str, Any]] = (), *, load_entry_points: bool = True
) -> tuple[pluggy.PluginManager, list[PluginInfo], list[PluginProblem]]:
    """A pluggy manager with the entry-point plugins (unless disabled) and ``extra_plugins`` registered."""
    pm = pluggy.PluginManager("rwmspec")
    pm.add_hookspecs(hookspecs)
    infos: list[PluginInfo] = []
    problems: list[PluginProblem] = []
    disabled = _disabled()
    eps = sorted(entry_points(group=GROUP), key=lambda e: e.name) if load_entry_points else []
    seen: set[str] = set()
    for ep in eps:
        if ep.name in seen or ep.name in disabled:
            continue
        seen.add(ep.name)
        dist, version = _dist_of(ep)
        try:
            module = ep.load()
        except Exception as exc:  # a broken third-party plugin must not take the others down
            root = root_cause(exc)
            msg = f"{type(root).__name__}: {root}"
            infos.append(PluginInfo(ep.name, ep.value, dist, version, error=msg))
            problems.append(
                PluginProblem(
                    "RWM301",
                    f"plugin entry point '{ep.name} = {ep.value}' ({dist} {version}) failed to import: {msg}",
                    "keep heavy imports (torch, mujoco, isaaclab) inside functions, not at module top level",
                )
            )
            continue
        _register(pm, module, ep.name, dist, version, infos, problems)
    for name, module in extra_plugins:
        _register(pm, module, name, "inline", "-", infos, problems)
    return pm, infos, problems


def _register(pm, module, name, dist, version, infos, problems) -> None:
    try:
        pm.register(module, name=name)
    except (ValueError, pluggy.PluginValidationError) as exc:
        problems.append(PluginProblem("RWM302", f"plugin '{name}' ({dist} {version}) is invalid: {exc}"))
        infos.append(PluginInfo(name, getattr(module, "__name__", str(module)), dist, version, error=str(exc)))
        return
    callers = pm.get_hookcallers(module) or ()
    known = sorted(h.name for h in callers if h.spec is not None)
    for unknown in sorted(h.name for h in callers if h.spec is None):
        # pluggy keeps implementations of hooks it has no spec for and never calls them: a typo would go unnoticed
        close = suggest(unknown, _HOOK_NAMES)
        problems.append(
            PluginProblem(
                "RWM302",
                f"plugin '{name}' ({dist} {version}) implements unknown hook {unknown}()"
                + (f"; did you mean {close}()?" if close else ""),
                f"hooks are listed in docs/plugins.md: {', '.join(_HOOK_NAMES)}",
            )
        )
    infos.append(PluginInfo(name, getattr(module, "__name__", str(module)), dist, version, hooks=tuple(known)))


_HOOK_NAMES = sorted(n for n in dir(hookspecs) if n.startswith("rwmspec_"))

_HOOKS = (
    ("rwmspec_robots", "robots", RobotDef, lambda r: r.name, "robot"),
    ("rwmspec_robot_assets", "assets", RobotAsset, lambda r: (r.robot, r.backend), "robot asset"),
    ("rwmspec_view_fields", "view_fields", ViewField, lambda r: r.name, "view field"),
    ("rwmspec_term_kinds", "term_kinds", TermKind, lambda r: (r.category, r.name), "term kind"),
    ("rwmspec_term_bindings", "bindings", TermBinding, lambda r: (r.backend, r.category, r.kind), "term binding"),
    ("rwmspec_backends", "backends", BackendDef, lambda r: r.name, "backend"),
    ("rwmspec_world_model_architectures", "architectures", ArchitectureDef, lambda r: r.name, "architecture"),
    ("rwmspec_runner_steps", "steps", StepDef, lambda r: r.name, "runner step"),
    ("rwmspec_stages", "stages", StageDef, lambda r: r.name, "stage"),
    ("rwmspec_commands", "commands", CommandDef, lambda r: r.name, "command"),
    ("rwmspec_checks", "checks", CheckDef, lambda r: r.name, "check"),
)


def build_registry(extra_plugins: Iterable[tuple[str, Any]] = (), *, load_entry_points: bool = True) -> Registry:
    """Load plugins and collect their records. Problems are recorded, never raised."""
    pm, infos, problems = make_plugin_manager(extra_plugins, load_entry_points=load_entry_points)
    registry = Registry(plugins=infos, problems=problems)
    provider_of = {info.name: info.provider for info in infos}
    for hook_name, attr, record_type, key_of, label in _HOOKS:
        table = getattr(registry, attr)
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            provider = provider_of.get(impl.plugin_name, impl.plugin_name)
            try:
                records = list(impl.function() or ())
            except Exception as exc:
                root = root_cause(exc)
                problems.append(
                    PluginProblem("RWM303", f"plugin {provider} raised in {hook_name}(): {type(root).__name__}: {root}")
                )
                continue
            for record in records:
                if not isinstance(record, record_type):
                    problems.append(
                        PluginProblem(
                            "RWM304",
                            f"plugin {provider} returned {type(record).__name__} from {hook_name}(), "
                            f"expected {record_type.__name__}",
                            "please report this to the plugin's author",
                        )
                    )
                    continue
                key = key_of(record)
                shown = key if isinstance(key, str) else f"{'/'.join(key[:-1])} '{key[-1]}'"
                if key in table:
                    problems.append(
                        PluginProblem(
                            "RWM305",
                            f"{label} {shown!r} is provided by two plugins: {registry.providers[(attr, key)]} "
                            f"and {provider}",
                            "disable one with RWMSPEC_DISABLE_PLUGINS=<entry point name>",
                        )
                    )
                    continue
                table[key] = record
                registry.providers[(attr, key)] = provider
    return registry


def problem_diagnostics(registry: Registry, severity: str = "error") -> list[Any]:
    """The registry's plugin problems as diagnostics (no file: they belong to the installation, not a spec)."""
    from rwmspec.diagnostics import Diagnostic

    return [Diagnostic(p.code, p.message, hint=p.hint, severity=severity) for p in registry.problems]


_cached: Registry | None = None


def get_registry() -> Registry:
    """The registry of the installed plugins, built once per process."""
    global _cached
    if _cached is None:
        _cached = build_registry()
    return _cached


def resolve(ref: str) -> Any:
    """Import ``"package.module:attr"`` (the attr may be dotted)."""
    module_name, _, attr = ref.partition(":")
    if not attr:
        raise ValueError(f"reference {ref!r} must look like 'package.module:attr'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
