"""Export a run's policy to TorchScript or ONNX, for use without rwmspec (or Python: ONNX).

The exported module maps the concatenated actor observation groups ``[B, D]`` (in ``policy.actor_observations``
order, observation normalisation included) to deterministic actions ``[B, A]``. ``policy.json`` beside it
describes the input layout (groups, terms, slices), the action terms and the control period.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from rwmspec.plan import Plan
from rwmspec_runtime import checkpoints
from rwmspec_runtime.ppo import build_actor
from rwmspec_runtime.rundir import EXPORT_DIR, RunDir

FORMATS = {"jit": "policy.pt", "onnx": "policy.onnx"}


def policy_layout(plan: Plan, checkpoint: Path) -> dict[str, Any]:
    """What a deployment needs to feed the exported policy and read its output."""
    groups, offset = [], 0
    for name in plan.policy.actor_observations:
        group = plan.observations[name]
        groups.append(
            {
                "group": name,
                "start": offset,
                "dim": group.dim,
                "terms": [
                    {
                        "name": t.name,
                        "kind": t.kind,
                        "start": offset + t.start,
                        "dim": t.dim,
                        "scale": t.scale,
                        "clip": t.clip,
                    }
                    for t in group.terms
                ],
            }
        )
        offset += group.dim
    return {
        "input_dim": offset,
        "inputs": groups,
        "action_dim": plan.action_dim,
        "actions": [{"name": a.name, "kind": a.kind, "dim": a.dim, "params": a.params} for a in plan.actions],
        "joint_names": list(plan.robot.joint_names),
        "control_dt": plan.sim.control_dt,
        "checkpoint": str(checkpoint),
        "experiment": plan.experiment.name,
    }


def export_policy(run: RunDir, fmt: str, *, checkpoint: str = checkpoints.LATEST, out: Path | None = None) -> Path:
    """Write ``<out or run/exported>/policy.pt|policy.onnx`` and ``policy.json``; returns the policy file."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    plan = run.require().plan()
    ckpt_path = checkpoints.resolve_checkpoint(run.path, checkpoint)
    actor = build_actor(plan, checkpoints.load_checkpoint(ckpt_path)["actor_state_dict"])
    out_dir = Path(out) if out is not None else run.file(EXPORT_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / FORMATS[fmt]
    if fmt == "jit":
        with warnings.catch_warnings():
            # torch 2.9+ marks TorchScript deprecated; it remains what C++ and rsl_rl deployments load
            warnings.simplefilter("ignore", DeprecationWarning)
            scripted = torch.jit.script(actor.as_jit().cpu().eval())
            checkpoints.atomic_write(target, lambda f: torch.jit.save(scripted, f))
    else:
        _export_onnx(actor, target)
    layout = policy_layout(plan, ckpt_path)
    checkpoints.atomic_write_text(out_dir / "policy.json", json.dumps(layout, indent=2, default=str) + "\n")
    return target


def _export_onnx(actor: torch.nn.Module, target: Path) -> None:
    model = actor.as_onnx(verbose=False).cpu().eval()
    (example,) = model.get_dummy_inputs()
    program = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        input_names=model.input_names,
        output_names=model.output_names,
        opset_version=18,
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        verbose=False,
    )
    # one self-contained file: the weights of a policy MLP are far below ONNX's 2 GB single-file limit
    checkpoints.atomic_write(target, lambda f: f.write(program.model_proto.SerializeToString()))
