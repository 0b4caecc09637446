"""The `rwmspec` command line: commands, output formats, exit codes, runtime forwarding, internal errors."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

import rwmspec.manager
from rwmspec import cli, hookimpl
from rwmspec.manager import build_registry
from rwmspec.plan import plan_from_dict

ROOT = Path(__file__).resolve().parents[1]
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
    assert "exit codes: 0 ok, 1 spec errors, 2 usage errors, 3 plugin or internal errors" in out


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
    assert names["anymal_d"]["hooks"] == ["rwmspec_robots"]
    assert names["anymal_d"]["distribution"] == "rwmspec" and names["anymal_d"]["version"]


@pytest.mark.parametrize(
    ("what", "expect"),
    [("robots", "anymal_d"), ("terms", "feet_air_time"), ("backends", "embedded"), ("architectures", "gru")],
)
def test_list(capsys, what, expect):
    code, out, _ = run(capsys, "list", what)
    assert code == 0 and expect in out
    code, out, _ = run(capsys, "list", what, "--json")
    assert any(row["name"] == expect for row in json.loads(out))


def test_runtime_commands_are_forwarded_with_their_full_argv(monkeypatch):
    calls = []
    fake = types.ModuleType("rwmspec_runtime.cli")
    fake.main = lambda argv: calls.append(argv) or 7
    monkeypatch.setitem(sys.modules, "rwmspec_runtime.cli", fake)
    assert cli.main(["eval-model", "runs/x", "--steps", "5"]) == 7
    assert calls == [["eval-model", "runs/x", "--steps", "5"]]


def test_runtime_commands_without_torch_say_what_to_install(capsys, monkeypatch):
    real = cli.importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    code, _, err = run(capsys, "run", VALID)
    assert code == 3
    assert "pip install -e .[runtime]" in err and "torch" in err


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
