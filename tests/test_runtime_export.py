"""Policy export: TorchScript that loads without rwmspec, ONNX that passes the checker and matches torch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from rwmspec_runtime import checkpoints
from rwmspec_runtime.export import export_policy
from rwmspec_runtime.ppo import build_actor
from rwmspec_runtime.rundir import RunDir

from runner_helpers import POLICY_DIM, train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("run")
    runner = train(path)
    RunDir(path).write_plan(runner.plan)
    return RunDir(path)


def _actor_actions(run: RunDir, obs: torch.Tensor) -> torch.Tensor:
    actor = build_actor(run.plan(), checkpoints.load_checkpoint(run.file("model_2.pt"))["actor_state_dict"])
    with torch.no_grad():
        return actor(torch_obs(obs))


def torch_obs(policy: torch.Tensor):
    from tensordict import TensorDict

    return TensorDict({"policy": policy}, batch_size=[policy.shape[0]])


def test_torchscript_runs_without_rwmspec(run, tmp_path):
    path = export_policy(run, "jit", out=tmp_path)
    assert path.name == "policy.pt"
    obs = torch.randn(5, POLICY_DIM)
    torch.save(obs, tmp_path / "obs.pt")
    script = (
        "import sys\n"
        "for name in ('rwmspec', 'rwmspec_runtime', 'rwmspec_plugins', 'rsl_rl', 'tensordict'):\n"
        "    sys.modules[name] = None  # any import of these now fails\n"
        "import torch\n"
        f"policy = torch.jit.load({str(path)!r})\n"
        f"print(tuple(policy(torch.zeros(1, {POLICY_DIM})).shape))\n"
        f"torch.save(policy(torch.load({str(tmp_path / 'obs.pt')!r})), {str(tmp_path / 'out.pt')!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 3)"
    torch.testing.assert_close(torch.load(tmp_path / "out.pt"), _actor_actions(run, obs))


def test_onnx_passes_the_checker_and_matches_torch(run):
    import onnx
    from onnx.reference import ReferenceEvaluator

    path = export_policy(run, "onnx")
    assert path == run.file("exported") / "policy.onnx"
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    obs = torch.randn(4, POLICY_DIM)  # batch 4 although exported with batch 1: the batch axis is dynamic
    (actions,) = ReferenceEvaluator(model).run(None, {"obs": obs.numpy()})
    np.testing.assert_allclose(actions, _actor_actions(run, obs).numpy(), rtol=1e-5, atol=1e-5)


def test_layout_file_describes_inputs_and_actions(run):
    export_policy(run, "jit")
    layout = json.loads(run.file("exported/policy.json").read_text())
    assert layout["input_dim"] == POLICY_DIM and layout["action_dim"] == 3
    assert layout["inputs"][0]["group"] == "policy"
    assert layout["checkpoint"].endswith("model_2.pt")


def test_unknown_format(run):
    with pytest.raises(ValueError, match="choose one of jit, onnx"):
        export_policy(run, "tflite")
