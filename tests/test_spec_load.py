"""Loading: extends chains, overlays, --set, precedence, origins, fragments, and never raising for bad input."""

from __future__ import annotations

import textwrap

import attrs
import pytest

from rwmspec.api import load_and_compile, resolved_toml
from rwmspec.diagnostics import render
from rwmspec.manager import get_registry
from rwmspec.spec.load import Origin, load_spec, parse_set

from helpers import ROOT

MINIMAL = ROOT / "tests/specs/valid/init_minimal.toml"


@pytest.fixture
def files(tmp_path, monkeypatch):
    """Write files (relative names -> TOML text) under tmp_path and chdir there."""
    monkeypatch.chdir(tmp_path)

    def write(**named: str) -> None:
        for name, text in named.items():
            path = tmp_path / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))

    return write


def load(path, overlays=(), sets=(), **kw):
    return load_spec(path, overlays, sets, get_registry(), **kw)


def codes(loaded):
    return [d.code for d in loaded.diagnostics]


def base_chain(files):
    files(
        **{
            "base__flat.toml": f"""
            [experiment]
            extends = "{MINIMAL.as_posix()}"
            seed = 1
            [ppo]
            gamma = 0.9
            lam = 0.9
            [policy]
            actor_hidden_dims = [64, 64, 64]
        """,
            "spec.toml": """
            [experiment]
            extends = "base/flat.toml"
            name = "mine"
            [ppo]
            gamma = 0.95
            [policy]
            actor_hidden_dims = [32]
        """,
            "o1.toml": "[ppo]\nlam = 0.8\nclip_param = 0.3\n",
            "o2.toml": "[ppo]\nlam = 0.7\n",
        }
    )


def test_precedence_set_over_overlays_over_spec_over_extends_over_defaults(files):
    base_chain(files)
    loaded = load("spec.toml", ["o1.toml", "o2.toml"], ["ppo.clip_param=0.1"])
    assert loaded.diagnostics == []
    spec = loaded.spec
    assert spec.experiment.name == "mine"  # spec over extends
    assert spec.experiment.seed == 1  # nearest base over the farther one (minimal has none: default)
    assert spec.experiment.stage == "init"  # farthest base
    assert spec.ppo.gamma == 0.95  # spec over base
    assert spec.ppo.lam == 0.7  # later overlay over earlier overlay over base
    assert spec.ppo.clip_param == 0.1  # --set over overlay
    assert spec.ppo.entropy_coef == 0.005  # schema default
    assert spec.policy.actor_hidden_dims == [32]  # arrays are replaced, not merged


def test_origins_name_file_line_and_column(files):
    base_chain(files)
    loaded = load("spec.toml", ["o1.toml", "o2.toml"], ["ppo.clip_param=0.1"])
    o = loaded.origins
    assert o[("ppo", "gamma")] == Origin("spec", "spec.toml", 6, 9)
    assert o[("ppo", "lam")] == Origin("overlay", "o2.toml", 2, 7)
    assert o[("experiment", "seed")] == Origin("extends", "base/flat.toml", 4, 8)
    assert o[("ppo", "clip_param")] == Origin("set", text="ppo.clip_param=0.1")
    assert o[("ppo", "entropy_coef")] == Origin("default")
    assert str(o[("ppo", "lam")]) == "o2.toml:2:7 (overlay)"
    assert str(o[("ppo", "clip_param")]) == "--set ppo.clip_param=0.1"
    # every value of the resolved spec has an origin
    text = resolved_toml(loaded.spec, loaded.origins)
    assert "gamma = 0.95  # spec.toml:6:9" in text
    assert "entropy_coef = 0.005  # default" in text


def test_term_params_are_moved_into_params_with_defaults_and_kind_filled(files):
    files(**{"spec.toml": f'[experiment]\nextends = "{MINIMAL.as_posix()}"\n'})
    spec = load("spec.toml").spec
    air = spec.rewards["feet_air_time"]
    assert air.kind == "feet_air_time"
    assert air.params["threshold"] == 0.5 and air.params["bodies"] == "feet"
    assert "command_threshold" in air.params  # default of the kind's params class
    assert spec.observations["policy"].terms["base_lin_vel"].kind == "base_lin_vel"


@pytest.mark.parametrize(
    ("expr", "path", "value"),
    [
        ("backend.num_envs=64", ("backend", "num_envs"), 64),
        ("ppo.gamma = 0.9", ("ppo", "gamma"), 0.9),
        ("policy.actor_hidden_dims=[8, 8]", ("policy", "actor_hidden_dims"), [8, 8]),
        ("backend.device=cuda:1", ("backend", "device"), "cuda:1"),
        ('backend.device="cpu"', ("backend", "device"), "cpu"),
        ("runner.check_for_nan=false", ("runner", "check_for_nan"), False),
        ('rewards."a.b".weight=1', ("rewards", "a.b", "weight"), 1),
        ("experiment.description=", ("experiment", "description"), ""),
    ],
)
def test_parse_set(expr, path, value):
    assert parse_set(expr) == (path, value)


@pytest.mark.parametrize("expr", ["backend.num_envs", "=3", "a..b=1", "a b=1"])
def test_bad_set_is_rwm004(files, expr):
    files(**{"spec.toml": f'[experiment]\nextends = "{MINIMAL.as_posix()}"\n'})
    loaded = load("spec.toml", sets=[expr])
    assert codes(loaded) == ["RWM004"]
    assert loaded.diagnostics[0].origin == f"--set {expr}"


def test_set_value_of_wrong_type_names_the_set_argument(files):
    files(**{"spec.toml": f'[experiment]\nextends = "{MINIMAL.as_posix()}"\n'})
    loaded = load("spec.toml", sets=["backend.num_envs=many"])
    (d,) = loaded.diagnostics
    assert (d.code, d.file, d.origin) == ("RWM103", None, "--set backend.num_envs=many")
    assert render([d], "concise").startswith("--set backend.num_envs=many: error[RWM103] backend.num_envs:")


def test_value_from_extends_is_located_in_the_base_file(files):
    base_chain(files)
    files(**{"base__flat.toml": 'extends_note = 1\n[experiment]\nextends = "../nothing.toml"\n'})
    loaded = load("spec.toml")
    (d,) = loaded.diagnostics
    assert (d.code, d.file, d.line, d.col) == ("RWM002", "base/flat.toml", 3, 11)


def test_cycles_are_reported_once_with_the_chain(files):
    files(
        **{
            "a.toml": '[experiment]\nextends = "b.toml"\n',
            "b.toml": '[experiment]\nextends = "a.toml"\n',
            "self.toml": '[experiment]\nextends = "self.toml"\n',
        }
    )
    (d,) = load("a.toml").diagnostics
    assert d.code == "RWM003" and d.message == "cyclic extends: a.toml -> b.toml -> a.toml"
    assert (d.file, d.line) == ("b.toml", 2)
    assert codes(load("self.toml")) == ["RWM003"]


def test_unreadable_files_are_rwm002(files, tmp_path):
    (tmp_path / "folder.toml").mkdir()
    files(**{"latin1.toml": ""})
    (tmp_path / "latin1.toml").write_bytes(b'name = "\xe9"\n')
    for name in ("missing.toml", "folder.toml", "latin1.toml"):
        loaded = load(name)
        assert codes(loaded) == ["RWM002"], name
        assert loaded.spec is None


def test_syntax_error_in_an_overlay_is_located(files):
    files(**{"spec.toml": f'[experiment]\nextends = "{MINIMAL.as_posix()}"\n', "bad.toml": "[ppo]\ngamma = = 1\n"})
    (d,) = load("spec.toml", ["bad.toml"]).diagnostics
    assert (d.code, d.file, d.line) == ("RWM001", "bad.toml", 2)


def test_schema_version(files):
    files(**{"v2.toml": f'schema_version = 2\n[experiment]\nextends = "{MINIMAL.as_posix()}"\n'})
    assert codes(load("v2.toml")) == ["RWM005"]


def test_relative_run_references_follow_the_file_that_writes_them(files, tmp_path):
    files(
        **{
            "stages__init.toml": f'[experiment]\nextends = "{MINIMAL.as_posix()}"\n',
            "stages__base__refs.toml": f"""
            [experiment]
            extends = "{MINIMAL.as_posix()}"
            [runner.policy_from]
            spec = "../init.toml"
        """,
            "stages__pretrain.toml": '[experiment]\nextends = "base/refs.toml"\n',
        }
    )
    result = load_and_compile("stages/pretrain.toml", registry=get_registry())
    assert result.ok, render(result.diagnostics)
    assert result.spec.runner.policy_from.spec == "init.toml"
    assert result.plan.policy_from.spec == str((tmp_path / "stages/init.toml").resolve())


def test_structural_errors_leave_a_partial_spec_for_the_checks(files):
    files(
        **{
            "spec.toml": f"""
        [experiment]
        extends = "{MINIMAL.as_posix()}"
        stage = "warmup"
        [backend]
        num_envs = "8"
        [ppo]
        gamma = 2.0
    """
        }
    )
    result = load_and_compile("spec.toml", registry=get_registry())
    assert [d.code for d in result.diagnostics] == ["RWM214", "RWM103", "RWM201"]
    assert result.spec is None and result.plan is None and result.loaded.partial is not None


def test_fragments_report_only_what_they_write(files):
    files(
        **{
            "overlays__small.toml": """
        [backend]
        num_envs = 0
        [events.push_robot]
        enabled = false
        [rewards.feet_air_time]
        threshhold = 0.2
        [ppo]
        gama = 0.9
    """
        }
    )
    result = load_and_compile("overlays/small.toml", registry=get_registry())
    assert result.loaded.fragment
    got = {(d.code, d.dotted_path) for d in result.diagnostics}
    assert got == {
        ("RWM201", "backend.num_envs"),
        ("RWM204", "rewards.feet_air_time.threshhold"),
        ("RWM101", "ppo.gama"),
    }
    assert not load_and_compile("overlays/small.toml", registry=get_registry(), fragment=False).loaded.fragment


def test_resolved_toml_round_trips(files, tmp_path):
    files(**{"spec.toml": f'[experiment]\nextends = "{MINIMAL.as_posix()}"\n'})
    loaded = load("spec.toml", sets=['experiment.description="say \\"hi\\"\\n"', "robot.options={}"])
    assert loaded.diagnostics == []
    (tmp_path / "resolved.toml").write_text(resolved_toml(loaded.spec))
    again = load("resolved.toml")
    assert again.diagnostics == []
    assert again.spec == attrs.evolve(loaded.spec, experiment=attrs.evolve(loaded.spec.experiment, extends=None))


def test_only_a_files_own_folder_makes_it_a_fragment(tmp_path):
    """A project under a folder called base/ holds whole specs; a file directly in base/ or overlays/ is a fragment."""
    project = tmp_path / "base" / "project"
    (project / "specs").mkdir(parents=True)
    for name in ("anymal_d_init.toml", "base/anymal_d_flat.toml"):
        target = project / "specs" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((ROOT / "specs" / name).read_text())
    whole = load_and_compile(project / "specs" / "anymal_d_init.toml")
    assert whole.plan is not None and not whole.loaded.fragment, whole.diagnostics
    assert load_and_compile(project / "specs" / "base" / "anymal_d_flat.toml").loaded.fragment


def test_a_fragment_run_as_a_spec_names_what_it_lacks():
    """`rwmspec run` checks the file it is given as a whole spec: a fragment gets diagnostics, not a silent refusal."""
    from rwmspec.diagnostics import SpecError
    from rwmspec_runtime.training import compile_spec

    with pytest.raises(SpecError) as caught:
        compile_spec(ROOT / "specs" / "base" / "anymal_d_flat.toml")
    assert any(d.code == "RWM102" and d.path == ("experiment", "stage") for d in caught.value.diagnostics)
