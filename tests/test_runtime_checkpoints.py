"""Checkpoint files: atomic writes, the latest pointer, clear errors for damaged files, rsl-rl-lib compatibility."""

from __future__ import annotations

import shutil

import pytest
import torch

from rwmspec.diagnostics import SpecError
from rwmspec_runtime import checkpoints
from rwmspec_runtime.ppo import train_cfg

from runner_helpers import DummyEnv, make_plan, train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A dummy run with model_1.pt and model_2.pt."""
    path = tmp_path_factory.mktemp("run")
    train(path)
    return path


@pytest.fixture
def run_copy(run_dir, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(run_dir, target)
    return target


def test_interrupted_write_leaves_no_partial_file_and_keeps_the_pointer(run_copy, monkeypatch):
    payload = checkpoints.load_checkpoint(run_copy / "model_2.pt")

    def dies_halfway(obj, f):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("No space left on device")

    monkeypatch.setattr(checkpoints.torch, "save", dies_halfway)
    with pytest.raises(OSError, match="No space left"):
        checkpoints.save_checkpoint(payload, run_copy, 3)
    assert not (run_copy / "model_3.pt").exists()
    assert not list(run_copy.glob(".*.tmp")), "temporary file left behind"
    assert checkpoints.read_latest_pointer(run_copy) == "model_2.pt"


def test_interrupted_pointer_write_keeps_the_old_pointer(run_copy, monkeypatch):
    def fails(path, text):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints, "atomic_write_text", fails)
    payload = checkpoints.load_checkpoint(run_copy / "model_2.pt")
    with pytest.raises(KeyboardInterrupt):
        checkpoints.save_checkpoint(payload, run_copy, 3)
    assert checkpoints.read_latest_pointer(run_copy) == "model_2.pt"
    assert checkpoints.resolve_checkpoint(run_copy).name == "model_2.pt"


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_checkpoint_names_the_file_and_the_previous_good_one(run_copy, damage):
    path = run_copy / "model_2.pt"
    data = path.read_bytes()
    path.write_bytes(
        {"truncate": data[: len(data) // 2], "garbage": b"\x00not a checkpoint" * 50, "empty": b""}[damage]
    )
    with pytest.raises(SpecError) as err:
        checkpoints.load_checkpoint(checkpoints.resolve_checkpoint(run_copy))
    (diag,) = err.value.diagnostics
    assert diag.code == "RWM502"
    assert str(path) in diag.message and "truncated or corrupted" in diag.message
    assert diag.file == str(path)
    assert "model_1.pt" in diag.hint
    previous = checkpoints.load_checkpoint(run_copy / "model_1.pt")
    assert previous["iter"] == 1 and "actor_state_dict" in previous


def test_pointer_to_a_missing_file_is_a_clear_error(run_copy):
    (run_copy / "model_2.pt").unlink()
    with pytest.raises(SpecError) as err:
        checkpoints.resolve_checkpoint(run_copy)
    (diag,) = err.value.diagnostics
    assert diag.code == "RWM502" and "model_2.pt does not exist" in diag.message and "model_1.pt" in diag.message


def test_not_a_checkpoint_dict(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "model_5.pt")
    with pytest.raises(SpecError, match="lacks actor_state_dict, critic_state_dict"):
        checkpoints.load_checkpoint(tmp_path / "model_5.pt")


def test_run_without_checkpoint(tmp_path):
    with pytest.raises(SpecError, match="has no checkpoint"):
        checkpoints.resolve_checkpoint(tmp_path)


def test_rsl_rl_on_policy_runner_loads_our_checkpoint(run_dir):
    from rsl_rl.runners import OnPolicyRunner

    plan = make_plan()
    rsl = OnPolicyRunner(DummyEnv(plan.sim.num_envs), train_cfg(plan), log_dir=None, device="cpu")
    rsl.load(str(run_dir / "model_2.pt"))
    assert rsl.current_learning_iteration == 2
    ours = checkpoints.load_checkpoint(run_dir / "model_2.pt")["actor_state_dict"]
    for key, value in rsl.alg.get_policy().state_dict().items():
        assert torch.equal(value, ours[key]), key


def test_fingerprint_check(run_dir):
    payload = checkpoints.load_checkpoint(run_dir / "model_2.pt")
    checkpoints.check_fingerprint(payload, make_plan().fingerprint(), run_dir / "model_2.pt")
    with pytest.raises(SpecError) as err:
        checkpoints.check_fingerprint(payload, "0123456789abcdef", run_dir / "model_2.pt")
    assert err.value.diagnostics[0].code == "RWM504" and "0123456789abcdef" in err.value.diagnostics[0].message
