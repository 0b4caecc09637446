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
def rwmspec_robot_assets() -> Iterable[RobotAsset]:
    """What a backend needs to simulate a robot (a model file, an articulation factory), per backend.

    The robot's own plugin usually supplies them; a backend plugin may supply assets for robots it knows, and a
    third party may bridge a robot to a backend neither knows.

    :return: ``RobotAsset`` records; ``(robot, backend)`` must be unique across all plugins.
    """


@hookspec
def rwmspec_view_fields() -> Iterable[ViewField]:
    """Named state quantities that term functions read (``StateView`` fields), with their widths.

    :return: ``ViewField`` records; names must be unique across all plugins.
    """


@hookspec
def rwmspec_term_kinds() -> Iterable[TermKind]:
    """MDP term kinds (observations, rewards, terminations, events, commands, actions) with typed params.

    :return: ``TermKind`` records; ``(category, name)`` must be unique across all plugins.
    """


@hookspec
def rwmspec_term_bindings() -> Iterable[TermBinding]:
    """A backend's own implementations of term kinds (e.g. Isaac Lab ``mdp`` functions).

    :return: ``TermBinding`` records; ``(backend, category, kind)`` must be unique across all plugins.
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
def rwmspec_runner_steps() -> Iterable[StepDef]:
    """Runner steps (``collect``, ``update_policy``, ``imagine``, ...) that stages list by name.

    :return: ``StepDef`` records.
    """


@hookspec
def rwmspec_stages() -> Iterable[StageDef]:
    """Pipeline stages (``init``, ``pretrain``, ``finetune``, ``visualize``, ...): their steps and requirements.

    :return: ``StageDef`` records; a spec's ``experiment.stage`` must name one.
    """


@hookspec
def rwmspec_commands() -> Iterable[CommandDef]:
    """``rwmspec`` subcommands beyond the compiler's own (the runtime adds ``run``, ``eval``, ``play``, ...).

    :return: ``CommandDef`` records; a name must not shadow a built-in command.
    """


@hookspec
def rwmspec_checks() -> Iterable[CheckDef]:
    """Extra semantic checks run by ``rwmspec validate`` after the built-in ones.

    :return: ``CheckDef`` records whose function yields ``rwmspec.diagnostics.Diagnostic`` objects.
    """
