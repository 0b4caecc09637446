"""World-model throughput: training update, stateful single-step inference, and batched vs looped ensemble heads.

Sizes are the upstream ANYmal D ones (rwm_method §3): state 45, action 12, contacts 8, one termination flag; GRU
2 x 256 with a separate auxiliary base; heads 128; history M = 32, forecast N = 8.

1. **training**: sequences/s of the full update step (window sampling from a replay buffer, loss, backward, clip,
   Adam) at mini-batch 5000, ensembles 1 and 5. Next to it the same model trained with an *upstream-style* loss
   written here (members one after another, each re-running both bases over its whole resample, the auxiliary base
   teacher-forced step by step), so the speedup of the batched design is measured on the same device.
   Upstream's own numbers on an H100 (issue 4): 61k seq/s at K = 1 and 14.0k seq/s at K = 5.
2. **inference**: env*steps/s of ``SystemDynamicsEnsemble.step`` (the ``WorldModel`` protocol's one step, eager)
   carrying the memory from step to step, a random member per env, at 4096 and 8192 envs.
3. **heads**: forward + backward of all K members' heads (state mean, log-std, contact, termination) as one batched
   ``EnsembleMLP`` each vs a Python loop over per-member ``nn.Sequential`` heads.

Flags: ``--bf16`` also times training under bf16 autocast and reports its loss next to fp32 on the same batch;
``--compile`` also times ``torch.compile`` of the loss; ``--tf32`` allows TF32 in float32 matmuls (cuDNN's RNN
kernels use TF32 by default either way). ``--quick`` shrinks batch, env counts and iterations.

Usage: ``python benchmarks/world_model.py --device cpu|cuda [--quick] [--bf16] [--compile]``. Prints a table and
writes ``benchmarks/results/world_model_<device>.json``.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import time
from pathlib import Path

import torch
from results_file import RESULTS_DIR, write_json
from torch import nn

from rwmspec.plan import WorldModelPlan
from rwmspec.spec.model import LossWeightsSpec, WorldModelTrainSpec
from rwmspec_plugins.world_models.ensemble import SystemDynamicsEnsemble
from rwmspec_plugins.world_models.ensemble_linear import EnsembleMLP
from rwmspec_plugins.world_models.losses import LossTerms, bce_loss, bootstrap_indices, sampled_mse
from rwmspec_runtime.world_model.protocol import LossSettings
from rwmspec_runtime.world_model.replay_buffer import ReplayBuffer, Windows, applied_action_pairs
from rwmspec_runtime.world_model.trainer import WorldModelTrainer

ROOT = Path(__file__).resolve().parents[1]
DIMS = dict(state_dim=45, action_dim=12, contact_dim=8, termination_dim=1, extension_dim=0)
UPSTREAM_H100_SEQ_PER_S = {1: 61_000.0, 5: 14_000.0}
SIZES = {
    "full": dict(
        batch=5000,
        mini_batches=10,
        warmup=2,
        buffer_envs=512,
        buffer_steps=200,
        envs=(4096, 8192),
        inference_steps=50,
        heads_batch=5000,
        heads_iters=20,
    ),
    "quick": dict(
        batch=64,
        mini_batches=3,
        warmup=1,
        buffer_envs=64,
        buffer_steps=100,
        envs=(256, 512),
        inference_steps=10,
        heads_batch=1024,
        heads_iters=5,
    ),
}


def make_plan(ensemble: int, batch: int, mini_batches: int) -> WorldModelPlan:
    return WorldModelPlan(
        architecture="gru",
        base_hidden=(256, 256),
        state_mean_hidden=(128,),
        state_logstd_hidden=(128,),
        auxiliary_hidden=(128,),
        ensemble_size=ensemble,
        history_horizon=32,
        forecast_horizon=8,
        separate_auxiliary_base=True,
        residual=True,
        logstd_bounds_init=(-5.0, -4.0),
        loss_weights=LossWeightsSpec(),
        train=WorldModelTrainSpec(mini_batch_size=batch, num_mini_batches=mini_batches),
        **DIMS,
    )


def make_buffer(num_envs: int, steps: int, device: torch.device, seed: int = 0) -> ReplayBuffer:
    """A filled buffer of smooth random trajectories (AR(1) states) with occasional episode ends."""
    g = torch.Generator(device=device).manual_seed(seed)
    buf = ReplayBuffer(
        num_envs,
        steps,
        DIMS["state_dim"],
        DIMS["action_dim"],
        DIMS["contact_dim"],
        DIMS["termination_dim"],
        device=device,
    )
    state = torch.randn(num_envs, DIMS["state_dim"], generator=g, device=device)
    for _ in range(steps):
        action = torch.randn(num_envs, DIMS["action_dim"], generator=g, device=device)
        done = torch.rand(num_envs, generator=g, device=device) < 0.002
        buf.add(
            state,
            action,
            (torch.rand(num_envs, DIMS["contact_dim"], generator=g, device=device) > 0.5).float(),
            done.float().unsqueeze(1),
            done=done,
        )
        state = 0.95 * state + 0.3 * torch.randn(state.shape, generator=g, device=device)
    return buf


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------------------------------------------------
# the upstream-style loss (baseline only): members in sequence, every member re-runs both bases on its resample
# ---------------------------------------------------------------------------------------------------------------------
def upstream_style_losses(
    model: SystemDynamicsEnsemble, windows: Windows, settings: LossSettings, generator: torch.Generator | None = None
) -> LossTerms:
    M, N, K = model.history_horizon, settings.forecast_horizon, model.ensemble_size
    states, actions = applied_action_pairs(windows.state, windows.action)
    batch, device = states.shape[0], states.device
    boot = bootstrap_indices(K, batch, True, generator, device)
    state_losses, contact_losses, termination_losses = [], [], []
    for k in range(K):
        member = torch.tensor([k], device=device)
        s, a = states[boot[k]], actions[boot[k]]
        target, contact, termination = (x[boot[k], M:] for x in (windows.state, windows.contact, windows.termination))
        # state rollout: warm-up on the member's own resample, then feed samples
        memory = model.state_base.initial_memory(batch, device=device)
        features, memory = model.state_base(torch.cat([s[:, :M], a[:, :M]], dim=-1), memory)
        last = s[:, M - 1]
        per_step = []
        for i in range(N):
            mean, logstd = model.state_heads(features.unsqueeze(0), last, members=member)
            sample = mean + torch.exp(logstd) * torch.randn(mean.shape, generator=generator, device=device)
            per_step.append(sampled_mse(sample, mean, logstd, target[:, i]))
            if i + 1 < N:
                features, memory = model.state_base(torch.cat([sample[0], a[:, M + i]], dim=-1).unsqueeze(1), memory)
                last = sample[0]
        state_losses.append(torch.stack(per_step).mean(dim=0))
        # auxiliary: teacher-forced, one base call per step
        memory = model.auxiliary_base.initial_memory(batch, device=device)
        features, memory = model.auxiliary_base(torch.cat([s[:, :M], a[:, :M]], dim=-1), memory)
        c_steps, t_steps = [], []
        for i in range(N):
            if i > 0:
                features, memory = model.auxiliary_base(
                    torch.cat([s[:, M + i - 1], a[:, M + i - 1]], dim=-1).unsqueeze(1), memory
                )
            c, t, _ = model.auxiliary_heads(features.unsqueeze(0), members=member)
            c_steps.append(bce_loss(c.unsqueeze(2), contact[:, i].unsqueeze(0).unsqueeze(2), None))
            t_steps.append(bce_loss(t.unsqueeze(2), termination[:, i].unsqueeze(0).unsqueeze(2), None))
        contact_losses.append(torch.stack(c_steps).mean(dim=0))
        termination_losses.append(torch.stack(t_steps).mean(dim=0))
    state = torch.cat(state_losses)
    zeros = torch.zeros_like(state)
    return LossTerms(
        state=state,
        bound=(model.max_logstd - model.min_logstd).mean(dim=-1),
        contact=torch.cat(contact_losses),
        termination=torch.cat(termination_losses),
        extension=zeros,
        state_per_step=state.unsqueeze(0),
    )


# ---------------------------------------------------------------------------------------------------------------------
# measurements
# ---------------------------------------------------------------------------------------------------------------------
def time_training(ensemble: int, size: dict, device: torch.device, buffer: ReplayBuffer, *, variant: str) -> dict:
    plan = make_plan(ensemble, size["batch"], size["mini_batches"])
    torch.manual_seed(0)
    model = SystemDynamicsEnsemble(plan)
    trainer = WorldModelTrainer(
        model,
        plan,
        None,
        device,
        autocast_dtype=torch.bfloat16 if "bf16" in variant else None,
        compile="compile" in variant,
    )
    if "cells" in variant:
        for base in (model.state_base, model.auxiliary_base):
            base.sequence_cells = True
    if variant == "upstream_style":
        trainer._loss_fn = functools.partial(upstream_style_losses, model)
        for base in (model.state_base, model.auxiliary_base):
            base.single_step_cells = False  # upstream runs every step through the cuDNN sequence kernel
    g = torch.Generator(device=device).manual_seed(0)
    for _ in range(size["warmup"]):
        trainer.train_step(buffer.sample_windows(size["batch"], trainer.window_length, g), g)
    sync(device)
    start = time.perf_counter()
    result = trainer.update(buffer, g)  # ends with one device sync
    seconds = time.perf_counter() - start
    sequences = size["batch"] * size["mini_batches"]
    return {
        "ensemble": ensemble,
        "variant": variant,
        "batch": size["batch"],
        "mini_batches": size["mini_batches"],
        "seq_per_s": sequences / seconds,
        "ms_per_mini_batch": 1e3 * seconds / size["mini_batches"],
        "total_loss": result["total_loss"],
    }


def bf16_loss_agreement(ensemble: int, size: dict, device: torch.device, buffer: ReplayBuffer) -> dict:
    """fp32 vs bf16-autocast losses of the same model on the same windows and noise."""
    plan = make_plan(ensemble, size["batch"], 1)
    torch.manual_seed(0)
    model = SystemDynamicsEnsemble(plan).to(device)
    windows = buffer.sample_windows(size["batch"], 40, torch.Generator(device=device).manual_seed(1))
    out = {}
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        trainer = WorldModelTrainer(model, plan, None, device, autocast_dtype=dtype)
        with torch.no_grad():
            terms = trainer.compute_losses(windows, torch.Generator(device=device).manual_seed(2))
        out[name] = {k: float(v) for k, v in terms.member_means().items()}
        out[name]["total"] = float(terms.total(plan.loss_weights))
    out["total_rel_diff"] = abs(out["bf16"]["total"] - out["fp32"]["total"]) / abs(out["fp32"]["total"])
    return out


@torch.no_grad()
def time_inference(num_envs: int, ensemble: int, steps: int, device: torch.device) -> dict:
    plan = make_plan(ensemble, 1, 1)
    torch.manual_seed(0)
    model = SystemDynamicsEnsemble(plan).to(device).eval()
    S, A = DIMS["state_dim"], DIMS["action_dim"]
    g = torch.Generator(device=device).manual_seed(0)
    members = torch.randint(ensemble, (num_envs,), generator=g, device=device)
    memory = model.warm_up(torch.randn(num_envs, 32, S, device=device), torch.randn(num_envs, 32, A, device=device))
    state, action = torch.randn(num_envs, S, device=device), torch.randn(num_envs, A, device=device)
    for _ in range(3):
        prediction, memory = model.step(state, action, memory, members)
        state = prediction.next_state
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        prediction, memory = model.step(state, action, memory, members)
        state = prediction.next_state
    sync(device)
    seconds = time.perf_counter() - start
    return {
        "envs": num_envs,
        "ensemble": ensemble,
        "steps": steps,
        "env_steps_per_s": num_envs * steps / seconds,
        "ms_per_step": 1e3 * seconds / steps,
    }


def time_heads(ensemble: int, batch: int, iters: int, device: torch.device) -> dict:
    """Forward + backward of the four heads of all members: batched EnsembleMLP vs a per-member loop."""
    features, hidden = 256, 128
    widths = (DIMS["state_dim"], DIMS["state_dim"], DIMS["contact_dim"], DIMS["termination_dim"])
    torch.manual_seed(0)
    batched = nn.ModuleList(EnsembleMLP(ensemble, features, (hidden,), w) for w in widths).to(device)
    looped = nn.ModuleList(
        nn.ModuleList(nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, w)) for w in widths)
        for _ in range(ensemble)
    ).to(device)
    x = torch.randn(ensemble, batch, features, device=device, requires_grad=True)

    def run_batched():
        return sum(head(x).sum() for head in batched)

    def run_looped():
        return sum(head(x[k]).sum() for k in range(ensemble) for head in looped[k])

    timings = {}
    for name, fn in (("batched", run_batched), ("loop", run_looped)):
        for _ in range(3):
            fn().backward()
        sync(device)
        start = time.perf_counter()
        for _ in range(iters):
            fn().backward()
        sync(device)
        timings[name] = 1e3 * (time.perf_counter() - start) / iters
    return {
        "ensemble": ensemble,
        "batch": batch,
        "batched_ms": timings["batched"],
        "loop_ms": timings["loop"],
        "speedup": timings["loop"] / timings["batched"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="small batch, env counts and iterations")
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast and compare its losses")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile of the loss")
    parser.add_argument(
        "--cells",
        action="store_true",
        help="also time recurrent bases stepping whole sequences through the fused cell kernels",
    )
    parser.add_argument(
        "--tf32", action="store_true", help="allow TF32 in float32 matmuls (torch.set_float32_matmul_precision('high'))"
    )
    parser.add_argument("--ensembles", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--skip-baseline", action="store_true", help="do not time the upstream-style loss")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/...)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    size = SIZES["quick" if args.quick else "full"]
    if args.tf32:
        torch.set_float32_matmul_precision("high")
    buffer = make_buffer(size["buffer_envs"], size["buffer_steps"], device)
    variants = ["fp32"] + (["bf16"] if args.bf16 else []) + (["compile"] if args.compile else [])
    variants += (["cells"] + (["cells_bf16"] if args.bf16 else [])) if args.cells else []
    variants += [] if args.skip_baseline else ["upstream_style"]

    training = []
    for ensemble in args.ensembles:
        for variant in variants:
            row = time_training(ensemble, size, device, buffer, variant=variant)
            if device.type == "cuda":
                row["vs_upstream_h100"] = row["seq_per_s"] / UPSTREAM_H100_SEQ_PER_S.get(ensemble, float("nan"))
            training.append(row)
            print(
                f"training  K={ensemble} {variant:>14}: {row['seq_per_s']:>10.0f} seq/s "
                f"({row['ms_per_mini_batch']:.1f} ms per mini-batch of {size['batch']})",
                flush=True,
            )
    inference = []
    for num_envs in size["envs"]:
        for ensemble in args.ensembles:
            row = time_inference(num_envs, ensemble, size["inference_steps"], device)
            inference.append(row)
            print(
                f"inference {num_envs:>5} envs K={ensemble}: {row['env_steps_per_s']:>12.0f} env*steps/s "
                f"({row['ms_per_step']:.2f} ms per step)",
                flush=True,
            )
    heads = time_heads(max(args.ensembles), size["heads_batch"], size["heads_iters"], device)
    print(
        f"heads K={heads['ensemble']} batch {heads['batch']}: batched {heads['batched_ms']:.2f} ms, "
        f"loop {heads['loop_ms']:.2f} ms, speedup {heads['speedup']:.2f}x",
        flush=True,
    )
    agreement = bf16_loss_agreement(max(args.ensembles), size, device, buffer) if args.bf16 else None

    print()
    print(f"{'section':<10} {'K':>2} {'variant / envs':>16} {'throughput':>14} {'unit':<12} {'vs upstream H100':>17}")
    by_key = {(r["ensemble"], r["variant"]): r for r in training}
    for r in training:
        ratio = f"{r['vs_upstream_h100']:.2f}x" if "vs_upstream_h100" in r else "-"
        print(
            f"{'training':<10} {r['ensemble']:>2} {r['variant']:>16} {r['seq_per_s']:>14.0f} {'seq/s':<12} {ratio:>17}"
        )
    for r in inference:
        print(
            f"{'inference':<10} {r['ensemble']:>2} {r['envs']:>16} {r['env_steps_per_s']:>14.0f} "
            f"{'env*steps/s':<12} {'-':>17}"
        )
    for ensemble in args.ensembles:
        if (ensemble, "upstream_style") in by_key:
            speedup = by_key[(ensemble, "fp32")]["seq_per_s"] / by_key[(ensemble, "upstream_style")]["seq_per_s"]
            print(f"batched training vs upstream-style loss, same device, K={ensemble}: {speedup:.2f}x")
    print(f"batched heads vs per-member loop, K={heads['ensemble']}: {heads['speedup']:.2f}x")
    if agreement is not None:
        print(f"bf16 vs fp32 total loss on the same batch: relative difference {agreement['total_rel_diff']:.2e}")

    record = {
        "device": args.device,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "quick": args.quick,
        "tf32": args.tf32,
        "sizes": size,
        "model": {
            "architecture": "gru",
            "base_hidden": [256, 256],
            "heads": 128,
            "history_horizon": 32,
            "forecast_horizon": 8,
            **DIMS,
        },
        "upstream_h100_seq_per_s": UPSTREAM_H100_SEQ_PER_S,
        "training": training,
        "inference": inference,
        "heads": heads,
        "bf16_loss_agreement": agreement,
    }
    write_json(record, args.out or RESULTS_DIR / f"world_model_{args.device}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
