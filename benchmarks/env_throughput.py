"""Throughput of the embedded backend's env next to the raw MuJoCo rate of the same model, measured in one run.

For each env count N and thread count T, a fresh worker process (so memory deltas are clean):

1. compiles ``specs/anymal_d_pretrain.toml`` (all observation groups incl. ``system_*``, all rewards, events and
   terminations of the ANYmal D flat task) with N envs and T physics threads;
2. steps the env with random actions from a fixed-std Gaussian (the policy's initial std) and times
   ``env.step``: policy steps/s with everything included;
3. times ``mujoco.rollout`` alone on the same per-env models and thread pool, ``decimation`` substeps per call,
   from the same states and with the same joint targets as each env step (so it does exactly the env's physics
   work): the raw physics rate, whose control-rate equivalent is physics steps/s / decimation. Env steps and raw
   calls alternate, so load from other processes affects both alike;
4. reports the ratio env rate / raw control rate and the resident memory added by the env, per env.

Usage: ``python benchmarks/env_throughput.py [--quick] [--envs N ...] [--threads T ...] [--device cuda]``. Prints a
table and writes ``benchmarks/results/env_throughput.json`` (``--output`` elsewhere). Numbers depend on what else runs on the machine; the JSON records the
load average before and after each measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from results_file import RESULTS_DIR, write_json

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "anymal_d_pretrain.toml"
RESULTS = RESULTS_DIR / "env_throughput.json"
ENV_COUNTS = (64, 256, 1024, 4096)
THREADS = (1, 2)
#: (warm-up steps, timed steps) per mode
STEPS = {"quick": (5, 20), "full": (20, 100)}
TARGET = {"num_envs": 1024, "threads": 2, "ratio": 0.70}


def rss_bytes() -> int:
    """Resident set size of this process (Linux ``/proc``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker(num_envs: int, threads: int, warmup: int, steps: int, device: str) -> dict:
    """One measurement in this process; returns the result record."""
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import attrs
    import numpy as np
    import torch

    from rwmspec import api
    from rwmspec.manager import get_registry
    from rwmspec_plugins.embedded.physics import CONTROL_SPEC
    from rwmspec_runtime.training import make_env

    result = api.load_and_compile(SPEC)
    if result.plan is None:
        raise SystemExit(f"{SPEC} does not compile: {[d.message for d in result.diagnostics]}")
    plan = result.plan
    plan = attrs.evolve(
        plan, sim=attrs.evolve(plan.sim, num_envs=num_envs, options={**plan.sim.options, "num_threads": threads})
    )
    registry = get_registry()
    rss_before = rss_bytes()
    env = make_env(plan, registry, device=device)
    rss_after = rss_bytes()

    std = plan.policy.init_noise_std
    gen = torch.Generator().manual_seed(0)
    actions = [(std * torch.randn(num_envs, env.num_actions, generator=gen)).to(device) for _ in range(warmup + steps)]
    for a in actions[:warmup]:
        env.step(a)

    # raw MuJoCo: the env's own models and pool, no Python work between calls. Before each env step the env's
    # states are copied; after it the same states are stepped again with the same joint targets, so the raw call
    # does exactly the physics work of the env's own rollout. Alternating the two also makes load from other
    # processes hit both measurements alike.
    physics = env.physics
    control = np.zeros((num_envs, physics.decimation, physics.index.nu))
    trajectory = np.empty((num_envs, physics.decimation, physics.index.nstate))
    sensordata = np.empty((num_envs, physics.decimation, physics.index.nsensordata))
    pool, datas, models = physics._pool, physics._datas, physics.models
    load_start = os.getloadavg()[0]
    env_seconds = raw_seconds = 0.0
    for a in actions[warmup:]:
        snapshot = physics.state.copy()
        control[:, :, physics.index.actuator] = env._actions.targets(a.cpu().numpy().astype(np.float64))[:, None, :]
        start = time.perf_counter()
        env.step(a)
        middle = time.perf_counter()
        pool.rollout(
            models,
            datas,
            snapshot,
            control,
            control_spec=CONTROL_SPEC,
            skip_checks=True,
            nstep=physics.decimation,
            state=trajectory,
            sensordata=sensordata,
            chunk_size=physics.chunk_size,
        )
        env_seconds += middle - start
        raw_seconds += time.perf_counter() - middle
    load_end = os.getloadavg()[0]
    env.close()

    env_rate = num_envs * steps / env_seconds
    raw_physics_rate = num_envs * steps * physics.decimation / raw_seconds
    raw_control_rate = raw_physics_rate / physics.decimation
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return {
        "num_envs": num_envs,
        "threads": threads,
        "device": device,
        "chunk_size": physics.chunk_size,
        "steps": steps,
        "env_steps_per_s": env_rate,
        "raw_physics_steps_per_s": raw_physics_rate,
        "raw_control_steps_per_s": raw_control_rate,
        "ratio": env_rate / raw_control_rate,
        "memory_per_env_kb": (rss_after - rss_before) / num_envs / 1024,
        "load_average_start": load_start,
        "load_average_end": load_end,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps per measurement")
    parser.add_argument("--envs", type=int, nargs="+", default=list(ENV_COUNTS), help="env counts to measure")
    parser.add_argument("--threads", type=int, nargs="+", default=list(THREADS), help="physics thread counts")
    parser.add_argument("--device", default="cpu", help="torch device of the MDP tensors (physics is always CPU)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument("--worker", nargs=2, type=int, metavar=("NUM_ENVS", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    warmup, steps = STEPS[mode]
    if args.worker:
        print(json.dumps(worker(*args.worker, warmup, steps, args.device)))
        return

    rows = []
    print(
        f"{'N':>6} {'thr':>3} {'chunk':>5} {'env steps/s':>12} {'raw phys/s':>11} {'raw ctrl/s':>11} "
        f"{'ratio':>6} {'kB/env':>7} {'load':>5}"
    )
    for num_envs in args.envs:
        for threads in args.threads:
            cmd = [sys.executable, __file__, "--worker", str(num_envs), str(threads), "--device", args.device]
            cmd += ["--quick"] if args.quick else []
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(
                f"{row['num_envs']:>6} {row['threads']:>3} {row['chunk_size']:>5} {row['env_steps_per_s']:>12.0f} "
                f"{row['raw_physics_steps_per_s']:>11.0f} {row['raw_control_steps_per_s']:>11.0f} "
                f"{row['ratio']:>6.2f} {row['memory_per_env_kb']:>7.0f} {row['load_average_end']:>5.2f}",
                flush=True,
            )
    target = next((r for r in rows if r["num_envs"] == TARGET["num_envs"] and r["threads"] == TARGET["threads"]), None)
    met = None if target is None else target["ratio"] >= TARGET["ratio"]
    if target is not None:
        print(
            f"target: ratio >= {TARGET['ratio']:.0%} at N = {TARGET['num_envs']} on {TARGET['threads']} threads: "
            f"{target['ratio']:.0%} ({'met' if met else 'not met'})"
        )
    payload = {
        "benchmark": "env_throughput",
        "mode": mode,
        "spec": str(SPEC.relative_to(ROOT)),
        "device": args.device,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "target": {**TARGET, "measured_ratio": target["ratio"] if target else None, "met": met},
        "results": rows,
    }
    write_json(payload, args.output)


if __name__ == "__main__":
    main()
