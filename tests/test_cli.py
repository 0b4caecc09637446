"""The `rwmspec` command line: commands, output formats, exit codes, plugin commands, internal errors."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest

import rwmspec.manager
from rwmspec import cli, hookimpl
from rwmspec.manager import build_registry
from rwmspec.plan import plan_from_dict
from rwmspec.types import CommandDef

from helpers import ROOT

VALID = "tests/specs/valid/init_minimal.toml"
INVALID = "tests/specs/invalid/wrong_type.toml"


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("RWMSPEC_FULL_ERROR", raising=False)


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_ok(capsys):
    code, out, _ = run(
        capsys, "validate", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests/specs/valid").glob("*.toml"))
    )
    assert code == 0
    assert out.endswith("All checks passed (3 files).\n")


def test_validate_errors_exit_1_in_concise_format_when_piped(capsys):
    code, out, _ = run(capsys, "validate", INVALID, VALID)
    assert code == 1
    first = out.splitlines()[0]
    assert first.startswith("tests/specs/invalid/wrong_type.toml:4:8: error[RWM103] experiment.seed:")
    assert out.endswith("Found 6 errors and 0 warnings in 2 files.\n")


def test_validate_formats(capsys, monkeypatch):
    code, out, _ = run(capsys, "validate", INVALID, "--output-format", "json")
    assert code == 1 and len(json.loads(out)) == 6
    code, out, _ = run(capsys, "validate", INVALID, "--output-format", "full")
    assert code == 1 and " --> tests/specs/invalid/wrong_type.toml:4:8\n" in out and "^^^" in out
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code, out, _ = run(capsys, "validate", INVALID)
    assert out.startswith("::error file=tests/specs/invalid/wrong_type.toml,line=4,col=8,title=rwmspec (RWM103)::")


def test_validate_with_overlay_and_set(capsys):
    code, out, _ = run(capsys, "validate", VALID, "--set", "backend.num_envs=0", "--set", "ppo.gamma=0.5")
    assert code == 1
    assert out.splitlines()[0] == ("--set backend.num_envs=0: error[RWM201] backend.num_envs: must be >= 1 (got 0)")
    code, _, _ = run(capsys, "validate", VALID, "--overlay", "specs/overlays/tiny.toml")
    assert code == 0


def _raising_plugin():
    module = types.ModuleType("raising_plugin")

    @hookimpl
    def rwmspec_backends():
        raise RuntimeError("backend table is broken")

    module.rwmspec_backends = rwmspec_backends
    return module


def test_plugin_problems_warn_and_strict_makes_them_exit_3(capsys, monkeypatch):
    monkeypatch.setattr(rwmspec.manager, "_cached", build_registry([("raising", _raising_plugin())]))
    code, out, _ = run(capsys, "validate", VALID)
    assert code == 0
    assert (
        "rwmspec: warning[RWM303] plugin raising (inline -) raised in rwmspec_backends(): RuntimeError: "
        "backend table is broken" in out
    )
    code, out, _ = run(capsys, "validate", VALID, "--strict")
    assert code == 3
    code, out, _ = run(capsys, "plugins")
    assert code == 3 and "error[RWM303]" in out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["validate"],
        ["validate", VALID, "--output-format", "xml"],
        ["explain", "RWM999"],
        ["explain"],
        ["list", "widgets"],
    ],
)
def test_usage_errors_exit_2(capsys, argv):
    code, _, _ = run(capsys, *argv)
    assert code == 2


def test_help_lists_spec_and_runtime_commands(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in (
        "validate",
        "compile",
        "show",
        "schema",
        "explain",
        "plugins",
        "list",
        "run",
        "eval",
        "play",
        "eval-model",
        "export",
    ):
        assert f"    {command}" in out
    assert "exit codes: 0 ok, 1 spec errors, 2 usage errors, 3 plugin or internal errors, 130 interrupted" in out


def test_compile_writes_resolved_plan_and_backend_dumps(capsys, tmp_path):
    code, out, err = run(
        capsys,
        "compile",
        "specs/anymal_d_pretrain.toml",
        "--out",
        str(tmp_path),
        "--overlay",
        "specs/overlays/tiny.toml",
    )
    assert code == 0, err
    written = sorted(p.name for p in tmp_path.iterdir())
    assert {"resolved.toml", "plan.json"} < set(written) and len(written) > 2
    plan = plan_from_dict(json.loads((tmp_path / "plan.json").read_text()))
    assert plan.sim.num_envs == 8 and plan.steps[0] == "collect"
    # the resolved spec is a complete spec of its own
    code, _, err = run(capsys, "validate", str(tmp_path / "resolved.toml"))
    assert code == 0, err


def test_compile_of_a_bad_spec_writes_nothing(capsys, tmp_path):
    code, _, err = run(capsys, "compile", INVALID, "--out", str(tmp_path / "out"))
    assert code == 1 and "error[RWM103]" in err
    assert not (tmp_path / "out").exists()


def test_compile_for_an_unknown_backend(capsys, tmp_path):
    code, _, err = run(capsys, "compile", VALID, "--backend", "embeded", "--out", str(tmp_path))
    assert code == 1 and "RWM205" in err and "did you mean 'embedded'" in err


def test_show_with_origins(capsys):
    code, out, _ = run(capsys, "show", "specs/anymal_d_init.toml", "--origin", "--set", "ppo.lam=0.9")
    assert code == 0
    assert 'stage = "init"  # specs/anymal_d_init.toml:' in out
    assert "lam = 0.9  # --set ppo.lam=0.9" in out
    assert "desired_kl = 0.01  # specs/base/anymal_d_flat.toml:" in out and "(extends)" in out
    assert "push_velocity" not in out  # the init stage has no [imagination] table
    code, out, err = run(capsys, "show", INVALID)
    assert code == 1 and out == "" and "RWM103" in err


def test_schema_print_and_check(capsys):
    code, out, _ = run(capsys, "schema")
    assert code == 0 and json.loads(out)["$schema"].startswith("http://json-schema.org/draft-07")
    code, out, _ = run(capsys, "schema", "--check")
    assert code == 0, out


def test_schema_check_fails_with_the_regenerate_command(capsys, tmp_path):
    stale = tmp_path / "schema.json"
    stale.write_text("{}\n")
    code, out, _ = run(capsys, "schema", "--check", "--path", str(stale))
    assert code == 1 and "regenerate it with: rwmspec schema --write" in out
    code, _, _ = run(capsys, "schema", "--write", "--path", str(stale))
    assert code == 0
    assert run(capsys, "schema", "--check", "--path", str(stale))[0] == 0


def test_explain(capsys):
    code, out, _ = run(capsys, "explain", "rwm103")
    assert code == 0 and out.startswith("RWM103: Wrong type") and "\nFix\n" in out
    assert run(capsys, "explain", "103")[1] == out
    code, _, err = run(capsys, "explain", "RWM13")
    assert code == 2 and "did you mean" in err


def test_plugins_json(capsys):
    code, out, _ = run(capsys, "plugins", "--json")
    data = json.loads(out)
    assert code == (3 if data["problems"] else 0)
    names = {p["name"]: p for p in data["plugins"]}
    assert names["anymal_d"]["hooks"] == ["rwmspec_robot_assets", "rwmspec_robots"]
    assert names["anymal_d"]["records"] == {
        "assets": ["anymal_d/embedded", "anymal_d/isaaclab"],
        "robots": ["anymal_d"],
    }
    assert names["anymal_d"]["distribution"] == "rwmspec" and names["anymal_d"]["version"]
    assert {"run", "eval", "play", "export", "eval-model"} <= set(names["runtime"]["records"]["commands"])
    assert "isaaclab/reward/feet_air_time" in names["isaaclab"]["records"]["bindings"]


def test_plugins_table_counts_each_plugins_records(capsys):
    code, out, _ = run(capsys, "plugins")
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert "assets 2, robots 1" in rows["anymal_d"]
    assert "commands 5" in rows["runtime"] and "stages 4" in rows["runtime"]


@pytest.mark.parametrize(
    ("what", "expect"),
    [
        ("robots", {"name": "anymal_d", "assets": ["embedded", "isaaclab"]}),
        ("terms", {"name": "feet_air_time", "bindings": ["isaaclab"]}),
        ("backends", {"name": "embedded", "requires": ["mujoco", "torch"]}),
        ("architectures", {"name": "gru"}),
        (
            "assets",
            {"robot": "anymal_d", "backend": "isaaclab", "ref": "rwmspec_plugins.anymal_d.isaaclab:articulation"},
        ),
        ("bindings", {"backend": "isaaclab", "kind": "stand_still", "ref": "rwmspec_plugins.isaaclab.mdp:stand_still"}),
        ("stages", {"name": "finetune", "world_model": True, "references": ["world_model_from"]}),
        ("steps", {"name": "imagine", "step": "rwmspec_runtime.imagination.step:Imagine"}),
        ("commands", {"name": "eval-model", "runs": True}),
    ],
)
def test_list(capsys, what, expect):
    code, out, _ = run(capsys, "list", what)
    assert code == 0 and all(str(v[0] if isinstance(v, list) else v) in out for v in expect.values() if v is not True)
    code, out, _ = run(capsys, "list", what, "--json")
    assert any(expect.items() <= row.items() for row in json.loads(out)), expect


def test_list_view_fields(capsys):
    code, out, _ = run(capsys, "list", "view-fields", "--json")
    registry = rwmspec.manager.get_registry()
    assert code == 0 and [row["name"] for row in json.loads(out)] == sorted(registry.view_fields)


def test_list_backends_says_how_to_install_what_is_missing(capsys, monkeypatch):
    real = cli.importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec", lambda name, *a: None if name == "rsl_rl" else real(name, *a))
    code, out, _ = run(capsys, "list", "backends", "--json")
    isaaclab = next(row for row in json.loads(out) if row["name"] == "isaaclab")
    assert code == 0 and not isaaclab["available"]
    (missing,) = isaaclab["missing"]
    assert "'rsl_rl'" in missing["message"] and "pip install rsl-rl-lib==5.5.1" in missing["hint"]


# ----------------------------------------------------------------------------------------------------------------------
# commands of plugins (CommandDef)
# ----------------------------------------------------------------------------------------------------------------------
def _hello_module() -> types.ModuleType:
    """The functions a plugin's CommandDef references, importable as ``hello_command``."""
    module = types.ModuleType("hello_command")

    def configure(p):
        p.add_argument("--name", default="world")

    def hello(args):
        print(f"hello {args.name}")
        return 0

    module.configure, module.hello = configure, hello
    return module


def _command_plugin(*commands: CommandDef) -> types.ModuleType:
    module = types.ModuleType("command_plugin")

    @hookimpl
    def rwmspec_commands():
        yield from commands

    module.rwmspec_commands = rwmspec_commands
    return module


@pytest.fixture
def hello_plugin(monkeypatch):
    """An inline plugin with `rwmspec hello` and `rwmspec needs-missing` (whose module is not installed)."""
    monkeypatch.setitem(sys.modules, "hello_command", _hello_module())
    plugin = _command_plugin(
        CommandDef(
            name="hello",
            help="say hello",
            configure="hello_command:configure",
            handler="hello_command:hello",
            epilog="examples:\n  rwmspec hello --name rwm\n",
        ),
        CommandDef(
            name="needs-missing",
            help="a command whose module is not installed",
            configure="hello_missing_dependency:configure",
            handler="hello_missing_dependency:run",
        ),
    )
    monkeypatch.setattr(rwmspec.manager, "_cached", build_registry([("hello", plugin)]))


def test_a_plugin_command_is_listed_in_help_and_runs(capsys, hello_plugin):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "    hello" in out and "say hello [hello]" in out
    assert "    needs-missing" in out  # listed from its record alone: its module is imported only when it runs
    code, out, err = run(capsys, "hello", "--name", "rwm")
    assert (code, out, err) == (0, "hello rwm\n", "")
    code, out, _ = run(capsys, "hello", "--help")
    assert code == 0 and out.startswith("usage: rwmspec hello [-h] [--name NAME]") and "rwmspec hello --name rwm" in out
    code, _, err = run(capsys, "hello", "--frobnicate")
    assert code == 2 and "unrecognized arguments: --frobnicate" in err


def test_a_plugin_command_whose_module_is_missing_says_what_to_install(capsys, hello_plugin):
    code, out, err = run(capsys, "needs-missing")
    assert code == 3 and out == ""
    assert err == (
        "rwmspec needs-missing: needs the Python module 'hello_missing_dependency', which is not installed (the "
        "command comes from plugin hello (inline -)).\nInstall it with:  pip install hello_missing_dependency\n"
    )


def test_a_plugin_command_shadowing_a_builtin_is_reported(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "hello_command", _hello_module())
    shadow = CommandDef(name="validate", help="not rwmspec's", configure="hello_command:configure", handler="x:y")
    monkeypatch.setattr(rwmspec.manager, "_cached", build_registry([("shadow", _command_plugin(shadow))]))
    message = (
        "command 'validate' of plugin shadow (inline -) shadows rwmspec's built-in command 'validate', so it never runs"
    )
    code, out, _ = run(capsys, "plugins")
    assert code == 3 and f"error[RWM305] {message}" in out
    code, out, _ = run(capsys, "validate", VALID)  # the built-in runs, the plugin's problem is a warning
    assert (
        code == 0 and f"warning[RWM305] {message}" in out and out.endswith("Found 0 errors and 1 warning in 1 file.\n")
    )
    assert run(capsys, "validate", VALID, "--strict")[0] == 3
    code, out, _ = run(capsys, "list", "commands", "--json")
    assert {"name": "validate", "runs": False, "help": "not rwmspec's", "provider": "shadow (inline -)"} in json.loads(
        out
    )


def test_the_runtime_commands_are_the_runtime_plugins(capsys):
    code, out, _ = run(capsys, "--help")
    for command in ("run", "eval", "play", "eval-model", "export"):
        assert f"    {command}" in out
    assert "train a spec (or continue a run) [runtime]" in out


def test_help_imports_no_runtime_and_no_heavy_module():
    probe = (
        "import sys\nfrom rwmspec.cli import main\nassert main(['--help']) == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'mujoco', 'isaaclab', 'rsl_rl', 'tensordict') or m == 'rwmspec_runtime.cli'))"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_runtime_commands_without_torch_say_what_to_install():
    # a fresh interpreter where `import torch` fails as if torch were not installed
    probe = f"import sys\nsys.modules['torch'] = None\nfrom rwmspec.cli import main\nsys.exit(main(['run', {VALID!r}]))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert "rwmspec run: needs the Python module 'torch', which is not installed" in proc.stderr
    assert "Install it with:  pip install torch==2.13.0" in proc.stderr and "Traceback" not in proc.stderr


def test_internal_errors_exit_3_without_traceback_unless_asked(capsys, monkeypatch):
    def boom(args):
        raise KeyError("plan")

    monkeypatch.setattr(cli, "cmd_validate", boom)
    code, _, err = run(capsys, "validate", VALID)
    assert code == 3 and "internal error: KeyError: 'plan'" in err and "Traceback" not in err
    monkeypatch.setenv("RWMSPEC_FULL_ERROR", "1")
    code, _, err = run(capsys, "validate", VALID)
    assert code == 3 and "Traceback (most recent call last)" in err


def test_python_dash_m_and_the_console_script():
    proc = subprocess.run(
        [sys.executable, "-m", "rwmspec", "validate", INVALID], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 1 and "error[RWM103]" in proc.stdout and "Traceback" not in proc.stderr
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'rwmspec = "rwmspec.cli:main"' in pyproject
