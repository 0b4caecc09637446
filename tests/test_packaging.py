"""The distribution layout: every package folder is listed in pyproject.toml and every built-in plugin is an entry point."""

from __future__ import annotations

from pathlib import Path

import tomli

from helpers import ROOT

PYPROJECT = tomli.loads((ROOT / "pyproject.toml").read_text())


def _import_name(folder: Path) -> str:
    rel = folder.relative_to(ROOT)
    mapping = {v: k for k, v in PYPROJECT["tool"]["setuptools"]["package-dir"].items()}
    head, *rest = rel.parts
    return ".".join([mapping[head], *rest])


def test_every_package_folder_is_listed():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    folders = {
        _import_name(init.parent)
        for top in ("rwmspec", "runtime", "plugins")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert folders - listed == set(), "add these packages to [tool.setuptools] packages in pyproject.toml"


def test_every_builtin_plugin_is_an_entry_point():
    eps = dict(PYPROJECT["project"]["entry-points"]["rwmspec"])
    # the runtime registers its stages, steps and commands like any plugin
    assert eps.pop("runtime") == "rwmspec_runtime.plugin"
    plugin_dirs = {p.parent.name for p in (ROOT / "plugins").glob("*/plugin.py")}
    assert plugin_dirs == set(eps), (
        "each plugins/<name>/plugin.py must be registered under [project.entry-points.rwmspec]"
    )
    for name, target in eps.items():
        assert target == f"rwmspec_plugins.{name}.plugin"
