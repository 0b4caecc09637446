"""Plan -> backend Artifacts: the backend plugin's own compile function, after checking that it can run here."""

from __future__ import annotations

import importlib.util

from rwmspec.diagnostics import Diagnostic, SpecError, did_you_mean
from rwmspec.manager import Registry, resolve
from rwmspec.plan import Plan
from rwmspec.types import Artifacts


def missing_requirements(registry: Registry, backend: str) -> list[Diagnostic]:
    """RWM401 diagnostics for the modules a backend needs that are not installed (nothing is imported)."""
    found = []
    for requirement in registry.backends[backend].requires:
        # only the top-level package: find_spec of a dotted name would import its parents (isaaclab is heavy)
        if importlib.util.find_spec(requirement.module.split(".")[0]) is None:
            found.append(
                Diagnostic(
                    "RWM401",
                    f"backend '{backend}' needs the Python module '{requirement.module}', which is not installed",
                    path=("backend", "name"),
                    hint=f"install it: {requirement.install}",
                )
            )
    return found


def compile_backend(plan: Plan, registry: Registry, backend: str | None = None) -> Artifacts:
    """Compile a Plan with a backend plugin (the plan's own backend unless ``backend`` names another).

    :raises SpecError: the backend is unknown (RWM205) or needs modules that are not installed (RWM401).
    """
    name = backend or plan.sim.backend
    if name not in registry.backends:
        names = sorted(registry.backends)
        raise SpecError(
            [
                Diagnostic(
                    "RWM205",
                    f"unknown backend '{name}'{did_you_mean(name, names)} (backends: "
                    f"{', '.join(names) or 'none registered'})",
                    path=("backend", "name"),
                    hint="run `rwmspec list backends`",
                )
            ]
        )
    missing = missing_requirements(registry, name)
    if missing:
        raise SpecError(missing)
    compile_fn = resolve(registry.backends[name].compile)
    return compile_fn(plan, registry)
