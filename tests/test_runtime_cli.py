"""`rwmspec run | eval | play | export` end to end, as a user types them (subprocesses, real embedded backend)."""

from __future__ import annotations

import json

import pytest

from helpers import TINY, rwmspec

SPEC = "specs/anymal_d_init.toml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`rwmspec run` of the init spec with the tiny overlay: (completed process, run directory)."""
    runs = tmp_path_factory.mktemp("runs")
    done = rwmspec("run", SPEC, "--overlay", TINY, "--runs-dir", runs)
    assert done.returncode == 0, done.stderr
    (run,) = (runs / "anymal_d_flat").iterdir()
    return done, run


def test_run_writes_a_complete_run_directory(trained):
    done, run = trained
    assert run.name.endswith("_init")
    assert f"run directory: {run}" in done.stdout
    assert f"--resume {run}" in done.stdout
    assert "it 2/2" in done.stdout  # compact console when stdout is not a terminal
    for name in (
        "plan.json",
        "resolved.toml",
        "run.json",
        "metrics.jsonl",
        "model_1.pt",
        "model_2.pt",
        "latest",
        "learning_curve.png",
    ):
        assert (run / name).is_file(), name
    assert list(run.glob("events.out.tfevents.*"))
    assert (run / "latest").read_text().strip() == "model_2.pt"
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert "[runner]" in (run / "resolved.toml").read_text()


def test_eval_reports_tracking_falls_and_episode_length(trained):
    _, run = trained
    done = rwmspec("eval", run, "--steps", "20", "--num-envs", "4")
    assert done.returncode == 0, done.stderr
    assert "tracking lin vel xy:" in done.stdout and "fall rate:" in done.stdout
    report = json.loads((run / "eval.json").read_text())
    assert report["steps"] == 20 and report["num_envs"] == 4 and report["checkpoint"] == "model_2.pt"
    assert set(report["tracking"]) == {"lin_vel_xy", "ang_vel_z"}
    assert all(0.0 < v <= 1.0 for v in report["tracking"].values())
    assert 0.0 <= report["fall_rate"] <= 1.0 and report["episodes"] >= 4


def test_export_torchscript(trained, tmp_path):
    _, run = trained
    done = rwmspec("export", run, "--format", "jit", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"wrote {tmp_path / 'policy.pt'}" in done.stdout
    assert json.loads((tmp_path / "policy.json").read_text())["input_dim"] == 48


@pytest.mark.slow
def test_play_writes_an_mp4_tracking_the_robot(trained, tmp_path):
    _, run = trained
    video = tmp_path / "walk.mp4"
    done = rwmspec("play", run, "--video", video, "--steps", "10", "--width", "96", "--height", "64")
    assert done.returncode == 0, done.stderr
    import imageio.v2 as imageio

    reader = imageio.get_reader(video)
    frames = [f for f in reader]
    assert len(frames) == 11 and frames[0].shape == (64, 96, 3)
    assert frames[-1].std() > 5, "the frame shows the scene, not a blank image"


def test_play_without_an_opengl_backend_names_the_setup_script(trained, tmp_path):
    _, run = trained
    # glfw needs a display; with none the renderer cannot start
    done = rwmspec("play", run, "--video", tmp_path / "x.mp4", "--steps", "2", env={"MUJOCO_GL": "glfw", "DISPLAY": ""})
    assert done.returncode == 1
    assert "RWM507" in done.stderr and "bash scripts/setup_render.sh" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.slow
def test_bad_inputs_are_diagnostics_without_traceback(trained, tmp_path):
    _, run = trained
    missing = rwmspec("eval", tmp_path / "no_such_run")
    assert missing.returncode == 1 and "RWM501" in missing.stderr and "Traceback" not in missing.stderr

    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("plan.json", "model_1.pt", "model_2.pt", "latest"):
        (broken / name).write_bytes((run / name).read_bytes())
    (broken / "model_2.pt").write_bytes((run / "model_2.pt").read_bytes()[:1000])
    done = rwmspec("export", broken)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "error[RWM502]" in done.stderr and str(broken / "model_2.pt") in done.stderr
    assert "model_1.pt" in done.stderr

    bad_set = rwmspec("run", SPEC, "--overlay", TINY, "--set", "ppo.gamma=oops", "--runs-dir", tmp_path)
    assert bad_set.returncode == 1 and "ppo.gamma" in bad_set.stderr and "Traceback" not in bad_set.stderr


def test_runtime_command_usage_errors_and_help(capsys):
    """The runtime's commands parse through `rwmspec`'s one parser; usage errors exit 2 before anything runs."""
    from rwmspec.cli import main

    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: rwmspec run ") and "--resume" in out and "--overlay FILE" in out
    assert "rwmspec run specs/anymal_d_finetune.toml --with-deps" in out  # the epilog of its CommandDef
    assert main(["eval-model", "--help"]) == 0
    assert "rwmspec eval-model RUN --checkpoint model_500.pt" in capsys.readouterr().out
    assert main(["no-such-command"]) == 2
    assert main(["export", "x", "--format", "tflite"]) == 2
    assert main(["run"]) == 2
    assert "the following arguments are required: spec" in capsys.readouterr().err


def test_the_runtime_module_has_no_parser_or_command_table_of_its_own():
    from rwmspec.manager import resolve
    from rwmspec_runtime import cli
    from rwmspec_runtime.plugin import COMMANDS

    assert not hasattr(cli, "main") and not hasattr(cli, "COMMANDS") and not hasattr(cli, "register_command")
    for command in COMMANDS:
        assert callable(resolve(command.configure)) and callable(resolve(command.handler)), command.name
