"""The robot of the plan: the registered robot with its ``[robot.options]`` applied by the robot's own plugin."""

from __future__ import annotations

from typing import Any

from rwmspec.compile.context import Compilation
from rwmspec.spec.convert import converter
from rwmspec.types import RobotDef


def apply_robot_options(c: Compilation, robot: RobotDef) -> RobotDef:
    """The robot with its ``[robot.options]`` applied by its plugin (the robot itself without ``apply_options``)."""
    if robot.apply_options is None:
        return robot
    options: Any = None
    if robot.options_type is not None:
        options = c.spec.robot.options
        if not isinstance(options, robot.options_type):
            try:
                options = converter().structure(dict(options or {}), robot.options_type)
            except Exception:  # the structuring step reported the options (RWM213)
                return robot
    try:
        return robot.apply_options(robot, options)
    except Exception as exc:  # the plugin rejects a combination of well-typed options
        c.error(
            "RWM213",
            f"robot '{robot.name}' cannot apply these options: {type(exc).__name__}: {exc}",
            ("robot", "options"),
        )
        return robot
