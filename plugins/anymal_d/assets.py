"""Where the packaged ANYmal D model file lives.

Light module: no MuJoCo import, so ``rwmspec validate`` can resolve the path without the simulator installed.
"""

from __future__ import annotations

import pathlib
from importlib import resources

#: File name of the MJCF inside the ``rwmspec_plugins.anymal_d`` package (see docs/robots.md).
MJCF_FILE = "anymal_d.xml"


def mjcf_path() -> pathlib.Path:
    """Return the path of the installed ANYmal D MJCF (robot, floor, PD actuators and sensors in one file)."""
    path = pathlib.Path(str(resources.files(__package__).joinpath(MJCF_FILE)))
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the ANYmal D model file is missing from the installed package; reinstall rwmspec "
            "(pyproject.toml must ship '*.xml' as package data)"
        )
    return path
