"""Import layers: the compiler (rwmspec) knows neither the runtime nor a plugin, the runtime knows no plugin, and a
plugin knows no other plugin. They meet only through the registry.

Every import counts, wherever it is written (inside functions, under ``if TYPE_CHECKING:``), relative ones resolved;
so do "module:attr" strings in runtime and plugin modules, which the registry imports just the same.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import NamedTuple

import pytest

from helpers import ROOT

#: import name of each package folder (pyproject's [tool.setuptools.package-dir])
FOLDERS = {"rwmspec": "rwmspec", "rwmspec_runtime": "runtime", "rwmspec_plugins": "plugins"}
#: a whole string naming a module, optionally with ":attr" (entry points, term functions, factories)
MODULE_REFERENCE = re.compile(r"(rwmspec(?:_runtime|_plugins)?(?:\.\w+)*)(?::[\w.]+)?")


class Arrow(NamedTuple):
    file: str
    line: int
    importer: str
    imported: str
    how: str  # "import" or "string"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.importer} -> {self.imported}"


def module_name(path: Path) -> str:
    """The import name of a .py file under one of the package folders."""
    for package, folder in FOLDERS.items():
        base = ROOT / folder
        if path.is_relative_to(base):
            parts = [package, *path.relative_to(base).with_suffix("").parts]
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    raise ValueError(f"{path} is in no package folder")


def arrows(source: str, module: str, file: str, *, is_package: bool, strings: bool) -> list[Arrow]:
    """Every import in ``source`` (module ``module``), and with ``strings`` every module-naming string constant."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Arrow(file, node.lineno, module, alias.name, "import") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            # `from pkg import sub` may name a submodule: record pkg.sub (an attribute lies under pkg all the same)
            found += [
                Arrow(file, node.lineno, module, target if alias.name == "*" else f"{target}.{alias.name}", "import")
                for alias in node.names
            ]
        elif strings and isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = MODULE_REFERENCE.fullmatch(node.value)
            if match and ("." in match[1] or ":" in node.value):
                found.append(Arrow(file, node.lineno, module, match[1], "string"))
    return found


def broken_rule(importer: str, imported: str) -> str | None:
    """The layer rule the arrow ``importer -> imported`` breaks, or None."""
    top, _, rest = importer.partition(".")
    target_top, _, target_rest = imported.partition(".")
    if top == "rwmspec" and target_top in ("rwmspec_runtime", "rwmspec_plugins"):
        return f"rwmspec imports nothing of {target_top}"
    if top == "rwmspec_runtime" and target_top == "rwmspec_plugins":
        return "rwmspec_runtime imports nothing of rwmspec_plugins"
    plugin, target_plugin = rest.partition(".")[0], target_rest.partition(".")[0]
    if top == target_top == "rwmspec_plugins" and plugin and target_plugin and plugin != target_plugin:
        return f"plugin {plugin} imports no other plugin"
    return None


def package_arrows(package: str) -> list[Arrow]:
    found = []
    for path in sorted((ROOT / FOLDERS[package]).rglob("*.py")):
        found += arrows(
            path.read_text(),
            module_name(path),
            str(path.relative_to(ROOT)),
            is_package=path.name == "__init__.py",
            strings=package != "rwmspec",
        )
    return found


@pytest.mark.parametrize("package", FOLDERS)
def test_no_import_crosses_a_layer(package):
    offending = [
        f"{arrow} ({rule}{', a module:attr string' if arrow.how == 'string' else ''})"
        for arrow in package_arrows(package)
        if (rule := broken_rule(arrow.importer, arrow.imported))
    ]
    assert not offending, f"{len(offending)} import(s) cross a layer:\n" + "\n".join(offending)


def test_the_walk_sees_every_kind_of_import():
    source = """
from typing import TYPE_CHECKING
import rwmspec_plugins.embedded.env as env
from . import steps
from ..mdp import state
if TYPE_CHECKING:
    from rwmspec_plugins.locomotion import rewards

def later():
    from rwmspec_plugins import world_models

FACTORY = "rwmspec_plugins.world_models.ensemble:SystemDynamicsEnsemble"
MESSAGE = "rwmspec_plugins is a namespace"
"""
    found = arrows(source, "rwmspec_runtime.imagination.env", "x.py", is_package=False, strings=True)
    assert {(a.imported, a.how) for a in found} == {
        ("typing.TYPE_CHECKING", "import"),
        ("rwmspec_plugins.embedded.env", "import"),
        ("rwmspec_runtime.imagination.steps", "import"),
        ("rwmspec_runtime.mdp.state", "import"),
        ("rwmspec_plugins.locomotion.rewards", "import"),
        ("rwmspec_plugins.world_models", "import"),
        ("rwmspec_plugins.world_models.ensemble", "string"),
    }
    init = arrows("from .plugin import X", "rwmspec_plugins.embedded", "x.py", is_package=True, strings=False)
    assert [a.imported for a in init] == ["rwmspec_plugins.embedded.plugin.X"]


def test_the_rules():
    assert broken_rule("rwmspec.compile", "rwmspec_runtime.training")
    assert broken_rule("rwmspec", "rwmspec_plugins")
    assert broken_rule("rwmspec_runtime.play", "rwmspec_plugins.embedded.env")
    assert broken_rule("rwmspec_plugins.isaaclab.env", "rwmspec_plugins.locomotion.rewards")
    assert not broken_rule("rwmspec_plugins.isaaclab.env", "rwmspec_plugins.isaaclab.mdp")
    assert not broken_rule("rwmspec_plugins.isaaclab.env", "rwmspec_runtime.mdp.state")
    assert not broken_rule("rwmspec_runtime.runner", "rwmspec.plan")
    assert not broken_rule("rwmspec_plugins", "rwmspec_plugins.embedded")


def test_every_module_is_walked():
    modules = {module_name(p) for folder in FOLDERS.values() for p in (ROOT / folder).rglob("*.py")}
    assert {"rwmspec.compile", "rwmspec_runtime.runner", "rwmspec_plugins.embedded.env"} <= modules
    assert any(a.importer == "rwmspec_runtime.runner" for a in package_arrows("rwmspec_runtime"))
