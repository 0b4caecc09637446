"""Every rwmspec hook, in one module. Docstrings are the contract.

Registration hooks are plural nouns and return an iterable of typed records (``rwmspec.types``). The plugin
manager flattens the results of all plugins, checks names, and reports a name given by two plugins as a
conflict naming both providers. Built-in plugins use exactly these hooks through the ``rwmspec`` entry-point
group, like any third-party distribution::

    # pyproject.toml of a third-party plugin
    [project.entry-points.rwmspec]
    go2 = "rwmspec_go2.plugin"

    # rwmspec_go2/plugin.py
    from rwmspec import hookimpl
    from rwmspec.types import RobotDef

    @hookimpl
    def rwmspec_robots():
        yield RobotDef(name="go2", ...)

Keep heavy imports (torch, mujoco, isaaclab) inside the functions that records reference by
``"module:attr"``; a hook body itself must import only light modules.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from rwmspec.types import ArchitectureDef, BackendDef, CheckDef, RobotDef, TermKind

hookspec = pluggy.HookspecMarker("rwmspec")


# ---------------------------------------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------------------------------------
@hookspec
def rwmspec_robots() -> Iterable[RobotDef]:
    """Robots this plugin provides.

    :return: ``RobotDef`` records; names must be unique across all plugins.
    """


@hookspec
def rwmspec_term_kinds() -> Iterable[TermKind]:
    """MDP term kinds (observations, rewards, terminations, events, commands, actions) with typed params.

    :return: ``TermKind`` records; ``(category, name)`` must be unique across all plugins.
    """


@hookspec
def rwmspec_backends() -> Iterable[BackendDef]:
    """Simulator backends.

    :return: ``BackendDef`` records.
    """


@hookspec
def rwmspec_world_model_architectures() -> Iterable[ArchitectureDef]:
    """World-model base architectures (e.g. ``gru``, ``lstm``, ``mlp``, or a transformer).

    :return: ``ArchitectureDef`` records.
    """


@hookspec
def rwmspec_checks() -> Iterable[CheckDef]:
    """Extra semantic checks run by ``rwmspec validate`` after the built-in ones.

    :return: ``CheckDef`` records whose function yields ``rwmspec.diagnostics.Diagnostic`` objects.
    """
