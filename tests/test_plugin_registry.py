"""The plugin registry with third-party plugins installed the way pip installs them: a ``*.dist-info`` folder with an
``entry_points.txt`` on ``sys.path``. One plugin adds a robot, one fails to import, one conflicts with anymal_d."""

from __future__ import annotations

import inspect
import re
import sys
import textwrap
import types
from pathlib import Path

import pytest

from rwmspec import hookimpl, hookspecs
from rwmspec.api import load_and_compile
from rwmspec.compile import compile_backend
from rwmspec.diagnostics import SpecError, render
from rwmspec.manager import build_registry
from rwmspec.types import RobotAsset, RobotDef

from helpers import ROOT

FAKEBOT = """
from rwmspec import hookimpl
from rwmspec.types import ActuatorDef, ContactGroup, RobotDef, StateBlock

LEGS = ("FL", "FR", "RL", "RR")
JOINTS = tuple(f"{leg}_{j}" for j in ("hip", "thigh", "calf") for leg in LEGS)

FAKEBOT = RobotDef(
    name="fakebot", description="a 12-DoF quadruped from a third-party distribution",
    joint_names=JOINTS, default_joint_pos=(0.0,) * 12,
    actuator=ActuatorDef(stiffness=20.0, damping=0.5, effort_limit=23.7),
    state_blocks=(StateBlock(name="base_lin_vel", dim=3, mean=(0.0,) * 3, std=(1.0,) * 3),),
    contact_groups=(ContactGroup(name="feet", bodies=tuple(f"{leg}_foot" for leg in LEGS)),
                    ContactGroup(name="base", bodies=("trunk",))),
    base_body="trunk", init_base_height=0.3)


@hookimpl
def rwmspec_robots():
    yield FAKEBOT
"""

BROKEN = "import fakebot_missing_dependency  # noqa: F401\n"

DUPE = """
from rwmspec import hookimpl
from rwmspec_plugins.anymal_d.plugin import ANYMAL_D


@hookimpl
def rwmspec_robots():
    yield ANYMAL_D
"""


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Install the fake distribution 'fakebot-robots 1.2.0' with three entry points."""
    dist = tmp_path / "fakebot_robots-1.2.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakebot-robots\nVersion: 1.2.0\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent("""\
        [rwmspec]
        fakebot = fakebot_plugin
        broken = fakebot_broken
        dupe = fakebot_dupe
    """)
    )
    (tmp_path / "fakebot_plugin.py").write_text(FAKEBOT)
    (tmp_path / "fakebot_broken.py").write_text(BROKEN)
    (tmp_path / "fakebot_dupe.py").write_text(DUPE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("RWMSPEC_DISABLE_PLUGINS", raising=False)
    yield tmp_path
    for name in ("fakebot_plugin", "fakebot_broken", "fakebot_dupe"):
        sys.modules.pop(name, None)


def test_third_party_robot_is_registered_with_its_distribution(installed):
    registry = build_registry()
    assert "fakebot" in registry.robots
    info = next(p for p in registry.plugins if p.name == "fakebot")
    assert (info.distribution, info.version, info.hooks, info.error) == (
        "fakebot-robots",
        "1.2.0",
        ("rwmspec_robots",),
        None,
    )
    assert registry.providers[("robots", "fakebot")] == "fakebot (fakebot-robots 1.2.0)"


def test_import_failure_is_rwm301_with_root_cause_and_the_others_keep_working(installed):
    registry = build_registry()
    (problem,) = [p for p in registry.problems if p.code == "RWM301"]
    assert problem.message == (
        "plugin entry point 'broken = fakebot_broken' (fakebot-robots 1.2.0) failed to "
        "import: ModuleNotFoundError: No module named 'fakebot_missing_dependency'"
    )
    assert next(p for p in registry.plugins if p.name == "broken").error.startswith("ModuleNotFoundError")
    assert {"anymal_d", "fakebot"} <= set(registry.robots)
    assert registry.term_kinds  # the built-in plugins still load


def test_conflict_is_rwm305_naming_both_providers(installed):
    registry = build_registry()
    (problem,) = [p for p in registry.problems if p.code == "RWM305"]
    assert re.fullmatch(
        r"robot 'anymal_d' is provided by two plugins: anymal_d \(rwmspec \S+\) and "
        r"dupe \(fakebot-robots 1\.2\.0\)",
        problem.message,
    )
    assert "RWMSPEC_DISABLE_PLUGINS" in problem.hint
    assert registry.providers[("robots", "anymal_d")].startswith("anymal_d (rwmspec")


def test_disabled_plugins_are_not_loaded(installed, monkeypatch):
    monkeypatch.setenv("RWMSPEC_DISABLE_PLUGINS", "broken, dupe")
    registry = build_registry()
    assert registry.problems == []
    assert {p.name for p in registry.plugins} >= {"fakebot", "anymal_d"}
    assert "broken" not in {p.name for p in registry.plugins}


def test_a_spec_can_use_the_third_party_robot(installed, tmp_path):
    spec = tmp_path / "fakebot.toml"
    spec.write_text(
        textwrap.dedent(f"""\
        [experiment]
        extends = "{(ROOT / "tests/specs/valid/init_minimal.toml").as_posix()}"
        name = "fakebot_flat"

        [robot]
        name = "fakebot"

        [rewards.undesired_contacts]
        weight = -1.0
        bodies = "thighs"
    """)
    )
    result = load_and_compile(spec, registry=build_registry())
    assert [d.code for d in result.diagnostics] == ["RWM212"]  # fakebot has no thighs group
    assert "fakebot" in result.diagnostics[0].message
    spec.write_text(spec.read_text().replace('"thighs"', '"base"'))
    result = load_and_compile(spec, registry=build_registry())
    assert result.ok, render(result.diagnostics)
    assert result.plan.robot.joint_names[0] == "FL_hip"


def _fakebot_plan(tmp_path: Path, registry):
    spec = tmp_path / "fakebot.toml"
    spec.write_text(
        textwrap.dedent(f"""\
        [experiment]
        extends = "{(ROOT / "tests/specs/valid/init_minimal.toml").as_posix()}"
        name = "fakebot_flat"

        [robot]
        name = "fakebot"
    """)
    )
    result = load_and_compile(spec, registry=registry)
    assert result.ok, render(result.diagnostics)
    return result.plan


def test_a_robot_without_an_embedded_asset_is_rwm402_naming_the_fix(installed, tmp_path):
    registry = build_registry()
    plan = _fakebot_plan(tmp_path, registry)
    with pytest.raises(SpecError) as info:
        compile_backend(plan, registry, "embedded")
    (problem,) = info.value.diagnostics
    assert (problem.code, problem.path) == ("RWM402", ("robot", "name"))
    assert problem.message == "robot 'fakebot' has no MJCF model, which the embedded backend simulates"
    assert "RobotAsset(robot='fakebot', backend='embedded', ref='package:relative/file.xml')" in problem.hint
    assert "rwmspec_robot_assets()" in problem.hint


def _asset_plugin(ref: str) -> types.ModuleType:
    """A third party that bridges fakebot to the embedded backend."""
    return _module(
        "fakebot_embedded",
        rwmspec_robot_assets=lambda: [RobotAsset(robot="fakebot", backend="embedded", ref=ref)],
    )


def test_the_embedded_backend_takes_the_mjcf_of_the_robots_asset(installed, tmp_path):
    from importlib import resources

    # a file shipped in an installed package; the backend only resolves it here, MuJoCo reads it when an env is made
    registry = build_registry([("bridge", _asset_plugin("rwmspec_plugins.anymal_d:anymal_d.xml"))])
    artifacts = compile_backend(_fakebot_plan(tmp_path, registry), registry, "embedded")
    expected = resources.files("rwmspec_plugins.anymal_d").joinpath("anymal_d.xml")
    assert artifacts.objects["config"].mjcf == str(expected)
    assert '"mjcf": "rwmspec_plugins.anymal_d:anymal_d.xml"' in artifacts.dumps["embedded.json"]

    registry = build_registry([("bridge", _asset_plugin("rwmspec_plugins.anymal_d:fakebot.xml"))])
    with pytest.raises(SpecError) as info:
        compile_backend(_fakebot_plan(tmp_path, registry), registry, "embedded")
    (problem,) = info.value.diagnostics
    assert problem.code == "RWM402" and "MJCF 'rwmspec_plugins.anymal_d:fakebot.xml' not found" in problem.message
    assert problem.hint == "reinstall plugin bridge (inline -), or fix its RobotAsset ref"


# ----------------------------------------------------------------------------------------------------------------------
# hook problems found without an entry point (inline plugins)
# ----------------------------------------------------------------------------------------------------------------------
def _module(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(module, hook_name, hookimpl(fn))
    return module


def test_hook_that_raises_is_rwm303():
    def rwmspec_robots():
        raise ValueError("robot table is corrupt")

    registry = build_registry([("raiser", _module("raiser", rwmspec_robots=rwmspec_robots))], load_entry_points=False)
    assert [(p.code, p.message) for p in registry.problems] == [
        ("RWM303", "plugin raiser (inline -) raised in rwmspec_robots(): ValueError: robot table is corrupt")
    ]


def test_wrong_record_type_is_rwm304():
    registry = build_registry(
        [("wrong", _module("wrong", rwmspec_robots=lambda: [{"name": "dict"}]))], load_entry_points=False
    )
    assert [p.code for p in registry.problems] == ["RWM304"]
    assert "returned dict from rwmspec_robots(), expected RobotDef" in registry.problems[0].message


def test_misspelt_hook_is_rwm302_with_did_you_mean():
    registry = build_registry([("typo", _module("typo", rwmspec_robot=lambda: []))], load_entry_points=False)
    (problem,) = registry.problems
    assert problem.code == "RWM302"
    assert problem.message.endswith("implements unknown hook rwmspec_robot(); did you mean rwmspec_robots()?")


def test_hook_with_arguments_the_spec_lacks_is_rwm302():
    def rwmspec_robots(config):
        return []

    registry = build_registry([("args", _module("args", rwmspec_robots=rwmspec_robots))], load_entry_points=False)
    assert [p.code for p in registry.problems] == ["RWM302"]


def test_records_are_kept_in_typed_tables():
    registry = build_registry(load_entry_points=True)
    assert isinstance(registry.robots["anymal_d"], RobotDef)
    assert all(isinstance(k, tuple) and len(k) == 2 for k in registry.term_kinds)
    assert registry.kinds("reward") and all(k.category == "reward" for k in registry.kinds("reward").values())


# ----------------------------------------------------------------------------------------------------------------------
# docs/plugins.md documents every hook with its signature
# ----------------------------------------------------------------------------------------------------------------------
def test_every_hook_is_documented_with_its_signature():
    doc = (ROOT / "docs/plugins.md").read_text(encoding="utf-8")
    hooks = [
        (name, fn) for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("rwmspec_")
    ]
    assert hooks
    for name, fn in hooks:
        params = ", ".join(inspect.signature(fn).parameters)
        assert f"`{name}({params})`" in doc, f"document {name}({params}) in docs/plugins.md"
