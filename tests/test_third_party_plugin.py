"""A separate distribution adds a robot with its own state blocks and a whole world-model architecture, through the
``rwmspec`` entry-point group alone, and the init -> pretrain -> finetune chain runs with them on the embedded backend.

The distribution is the package in ``tests/data/tiny_quad`` installed the way pip leaves one: the package and a
``tiny_quad-0.1.dist-info`` (metadata and ``entry_points.txt``) in a folder on ``sys.path`` (here ``PYTHONPATH`` of
the ``rwmspec`` processes). Nothing in ``rwmspec/``, ``runtime/`` or ``plugins/`` knows its names.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import helpers

DATA = Path(__file__).resolve().parent / "data" / "tiny_quad"


def install(site: Path) -> Path:
    """Install the tiny_quad distribution into ``site`` (a folder to put on sys.path); returns ``site``."""
    shutil.copytree(DATA / "tiny_quad", site / "tiny_quad")
    info = site / "tiny_quad-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-quad\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[rwmspec]\ntiny_quad = tiny_quad.plugin\n")
    return site


def rwmspec(site: Path, *args: object) -> subprocess.CompletedProcess:
    """``rwmspec`` in a fresh interpreter that also sees the distribution installed in ``site``."""
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return helpers.rwmspec(*args, env={"PYTHONPATH": path})


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """The installed distribution's folder and a copy of its specs."""
    root = tmp_path_factory.mktemp("third_party")
    site = install(root / "site")
    specs = root / "specs"
    shutil.copytree(DATA / "specs", specs)
    return site, specs


def test_the_distribution_registers_through_the_entry_point_group(installed):
    site, specs = installed
    listed = rwmspec(site, "plugins")
    assert listed.returncode == 0, listed.stderr
    assert "tiny_quad" in listed.stdout and "tiny-quad" in listed.stdout
    checked = rwmspec(site, "validate", *sorted(specs.glob("*.toml")))  # the stages; base/ holds their fragments
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_init_pretrain_finetune_run_with_the_plugin_robot_and_architecture(installed, tmp_path):
    site, specs = installed
    runs = tmp_path / "runs"
    done = rwmspec(site, "run", specs / "finetune.toml", "--with-deps", "--runs-dir", runs, "--console", "compact")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    stages = {}
    for stage in ("init", "pretrain", "finetune"):
        (run,) = (runs / "tiny_quad").glob(f"*_{stage}")
        assert json.loads((run / "run.json").read_text())["status"] == "finished", stage
        stages[stage] = run
    plan = json.loads((stages["finetune"] / "plan.json").read_text())
    # the robot's own blocks sized the world model: 3 + 3 + 3 + 4 + 4 + 4 columns
    assert plan["robot"]["name"] == "tiny_quad" and plan["world_model"]["state_dim"] == 21
    assert plan["world_model"]["architecture"] == "tiny_mlp"
    rows = [json.loads(line) for line in (stages["finetune"] / "metrics.jsonl").read_text().splitlines()]
    learning = rows[-1]
    assert "Loss/surrogate" in learning and "Perf/imagination_fps" in learning
    assert "System Dynamics/state_loss" in learning
    # the checkpoint holds the plugin's model (its single MLP), not the built-in ensemble
    from rwmspec_runtime.checkpoints import load_checkpoint

    weights = load_checkpoint(stages["finetune"] / "model_2.pt")["world_model_state_dict"]
    assert sorted(weights) == ["net.0.bias", "net.0.weight", "net.2.bias", "net.2.weight"]


def test_core_knows_nothing_of_the_plugin():
    """The seams hold: no module of rwmspec, the runtime or the built-in plugins names the third party's records."""
    for folder in ("rwmspec", "runtime", "plugins"):
        for path in (helpers.ROOT / folder).rglob("*.py"):
            text = path.read_text()
            assert "tiny_quad" not in text and "tiny_mlp" not in text, path
