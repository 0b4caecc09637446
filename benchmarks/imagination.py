"""Imagination throughput: imagined env*steps/s of the full imagined step at RWM's sizes, and where the time goes.

One imagined step is what the ``imagine`` runner step does per step: the policy observation of the current states
(``ImaginationEnv.observe``), ``alg.act`` (actor MLP, critic MLP, sampling, log-prob), the world model (two GRU
bases 2 x 256 + K members' heads), the state view and the reward terms, episode bookkeeping, commands, and the
start of new episodes in done envs from the env's seed pool, plus the pool's refill (replay-buffer windows with the
M = 32-step context warm-up), which training does once per iteration and the timing spreads over its 24 steps. Sizes are those of
``specs/anymal_d_finetune.toml`` (48-d policy observation, actor/critic 3 x 128, state 45, action 12, 8 contacts,
1 termination flag); envs 4096 and 8192, ensembles 1 and 5.

The model is untrained; its termination head is biased off so that episodes end by time-out only, spread over the
episode like in training (``init_at_random_ep_len``): about N / max_episode_length (N / 256) new episodes per step,
the rate of a policy that walks. The replay buffer holds smooth random trajectories.

Per (envs, K) the script times, with a device sync around each measurement:

* **full** (``eager``): ``obs -> alg.act -> env.step`` (advance incl. new episodes, observation), S steps, with
  ``refill_seeds`` every 24 steps;
* **parts**, each alone on the same inputs: ``model`` (``env.predict``: bases + heads + member pick),
  ``policy`` (``alg.act``), ``rewards`` (``env.reward``: view, contacts, timers, reward terms), ``observe`` and
  ``refill`` (per step); the table shows each as a share of the full step, ``other`` is the rest (bookkeeping,
  commands, episode starts, state commit);
* ``--cuda-graphs``: ``observe -> act -> env.advance`` (``graph_safe_act``: the work of ``alg.act``) captured once in
  a ``torch.cuda.CUDAGraph`` (the env's step streams registered with it) and replayed; the refill's context warm-up
  (``env.seeds.warm_up``, the cuDNN GRU over the pool's windows) is replayed from a graph of its own (``GraphedWarmUp``),
  the rest of the refill runs eagerly after every 24 replays; first checks that replaying gives the eager numbers
  (rewards of 8 steps from the same start);
* ``--compile``: the step after its random draws (``env._advance``: model, rewards, bookkeeping, state commit) and
  ``graph_safe_act`` under ``torch.compile(mode=--compile-mode)`` (default ``default``), timed eagerly and, with
  ``--cuda-graphs``, inside the captured graph (checked against eager steps as above).

Floor. Every weight of a matrix product is used once per env and step (all K heads run, because the epistemic
uncertainty needs every member), so the matmul work per env*step is
``2 * (weights of both bases + all K members' heads + actor + critic)`` FLOPs, counted from the actual modules
(``flops_per_env_step``; about 4.1 MFLOP at K = 5, 3.0 MFLOP at K = 1): 34 GFLOP per step at 8192 envs and K = 5,
0.07 ms at an H100's dense TF32 peak (``--tf32``), about 0.17 ms at the rate its GEMMs reach at these shapes. The
memory traffic is about 90 kB per env and step (GRU gate pre-activations and hidden rows, K heads' activations),
0.22 ms at 3.35 TB/s. With ``--peak-tflops`` the table reports the achieved share of the FLOP floor. Above that,
the cost is the number of kernels (a few hundred small ones per eager step), which compiling the whole step and
replaying it as a graph remove.

Measured on one H100 (torch 2.11, 8192 envs, K = 5, TF32, env*steps/s): eager 1.2 M; CUDA graphs 5.0 M; compiled
step + CUDA graphs 11.0 M (0.74 ms per step, of which the replay is ~0.6 ms; docs/results.md has the full table).

Usage: ``python benchmarks/imagination.py [--device cpu|cuda] [--quick] [--cuda-graphs] [--compile] [--tf32]``.
Prints a table and writes ``benchmarks/results/imagination_<device>.json`` (``--json-out`` elsewhere).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import attrs  # noqa: E402
import torch  # noqa: E402
from results_file import RESULTS_DIR, write_json  # noqa: E402

from rwmspec_runtime.imagination.env import ImaginationEnv  # noqa: E402
from rwmspec_runtime.ppo import build_ppo  # noqa: E402
from rwmspec_runtime.training import compile_spec  # noqa: E402
from rwmspec_runtime.world_model.protocol import Memory  # noqa: E402
from rwmspec_runtime.world_model.replay_buffer import applied_action_pairs  # noqa: E402
from rwmspec_runtime.world_model.system import WorldModelSystem  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "anymal_d_finetune.toml"
TARGET = {"envs": 8192, "ensemble": 5, "env_steps_per_s": 10e6, "device": "H100"}
SIZES = {
    "full": dict(envs=(4096, 8192), warmup=10, steps=100, part_steps=50, buffer_envs=256, buffer_steps=200),
    "quick": dict(envs=(128, 256), warmup=2, steps=6, part_steps=4, buffer_envs=32, buffer_steps=60),
}
GRAPH_CHECK_STEPS = 8


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------------------------------------------------
def fill_buffer(system: WorldModelSystem, steps: int, seed: int = 0) -> None:
    """Smooth random trajectories (AR(1) normalized states), random contacts, no terminations."""
    buf, device = system.buffer, system.device
    g = torch.Generator(device=device).manual_seed(seed)
    dims = buf.dims
    state = torch.randn(buf.num_envs, dims["state"], generator=g, device=device)
    for _ in range(steps):
        contact = (torch.rand(buf.num_envs, dims["contact"], generator=g, device=device) > 0.5).float()
        buf.add(
            state,
            torch.randn(buf.num_envs, dims["action"], generator=g, device=device),
            contact,
            torch.zeros(buf.num_envs, dims["termination"], device=device),
        )
        state = 0.95 * state + 0.3 * torch.randn(state.shape, generator=g, device=device)


def build(base_plan, num_envs: int, ensemble: int, size: dict, device: torch.device, seed: int = 0):
    """(plan, env, ppo) ready to step: reset, episodes spread over their length, terminations off."""
    plan = attrs.evolve(
        base_plan,
        imagination=attrs.evolve(base_plan.imagination, num_envs=num_envs),
        world_model=attrs.evolve(base_plan.world_model, ensemble_size=ensemble),
    )
    torch.manual_seed(seed)
    system = WorldModelSystem(plan, size["buffer_envs"], device)
    fill_buffer(system, size["buffer_steps"], seed)
    with torch.no_grad():
        head = system.model.termination_head.output_layer
        head.weight.zero_()
        head.bias.fill_(-20.0)
    env = ImaginationEnv.from_plan(plan, system, seed=seed)
    alg = build_ppo(plan, env.get_observations(), num_envs, env.num_actions, str(device), num_steps=1)
    env.reset()
    g = torch.Generator(device=device).manual_seed(seed)
    env.episode_length_buf = torch.randint(env.max_episode_length, (num_envs,), generator=g, device=device)
    return plan, env, alg


def flops_per_env_step(env: ImaginationEnv, alg) -> float:
    """2 FLOPs per weight of every matrix product one env's step runs (GRU input/hidden weights, all K members'
    head layers, actor, critic); biases, activations and element-wise work are not counted."""
    total = 0
    for module in (env.model, alg.actor, alg.critic):
        for name, p in module.named_parameters():
            if name.endswith("weight") or "weight_ih" in name or "weight_hh" in name:
                total += p.numel()
    return 2.0 * total


# ---------------------------------------------------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------------------------------------------------
def timed(fn: Callable[[], object], steps: int, warmup: int, device: torch.device) -> float:
    """Seconds per call of ``fn`` (after ``warmup`` calls), device-synchronized around the timed loop."""
    for _ in range(warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return (time.perf_counter() - start) / steps


def timed_runs(fn: Callable[[], object], steps: int, warmup: int, device: torch.device, runs: int) -> list[float]:
    """``timed`` over ``runs`` consecutive windows (the warm-up only before the first): a replayed step varies a few
    percent between windows and about ten between machines of the same kind."""
    return [timed(fn, steps, warmup if i == 0 else 0, device) for i in range(runs)]


def per_iteration_refill(fn: Callable[[], object], env: ImaginationEnv) -> Callable[[], None]:
    """``fn`` plus, every ``steps_per_iteration`` calls, the seed-pool refill the ``imagine`` step does once per
    iteration (after the world model's update), so that its cost is spread over the steps as in training."""
    calls = [0]

    def run() -> None:
        fn()
        calls[0] += 1
        if calls[0] % env.num_steps_per_env == 0:
            env.refill_seeds()

    return run


def eager_step(env: ImaginationEnv, alg, counter: list[torch.Tensor]) -> Callable[[], None]:
    def step() -> None:
        actions = alg.act(env.get_observations())
        _, _, dones, _ = env.step(actions)
        counter.append(dones.sum())

    return per_iteration_refill(step, env)


def graph_safe_act(alg, obs) -> torch.Tensor:
    """``alg.act``'s work (actor mean, Gaussian sample, its log-prob, critic value) in capturable form: rsl-rl
    samples with ``torch.normal(mean, std)``, which checks ``std >= 0`` on the host and so cannot be captured; here
    the sample is ``mean + std * randn``."""
    actor = alg.actor
    mean = actor(obs)
    actor.distribution.update(mean)
    actions = mean + actor.output_std * torch.randn_like(mean)
    actor.get_output_log_prob(actions)
    alg.critic(obs)
    return actions


def core(
    env: ImaginationEnv, alg, deterministic: bool = False, act: Callable = graph_safe_act
) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    """observe -> act -> advance: the part of a step with fixed shapes and no host sync."""

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        obs = env.observe()
        actions = alg.actor(obs) if deterministic else act(alg, obs)
        rewards, dones, _ = env.advance(actions)
        return rewards, dones

    return run


def capture(
    fn: Callable[[], tuple[torch.Tensor, torch.Tensor]], env: ImaginationEnv
) -> tuple[torch.cuda.CUDAGraph, tuple[torch.Tensor, torch.Tensor]]:
    """Warm ``fn`` up on a side stream, then capture it once."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    for generator in env.step_generators:
        graph.register_generator_state(generator)
    with torch.cuda.graph(graph):
        outputs = fn()
    return graph, outputs


class GraphedWarmUp:
    """``env.seeds.warm_up`` replayed from a CUDA graph for the seed pool's window shape (other shapes run eagerly).

    A refill warms the pool up through the cuDNN GRU, which launches a few kernels per layer and window step: about
    2 ms of host time per base at M = 32. The refill starts with a host read (how many seeds were used), so the GPU
    waits for those launches; replayed, they cost one graph launch."""

    def __init__(self, env: ImaginationEnv) -> None:
        self.eager = env.seeds.warm_up
        windows = env.seeds.buffer.sample_windows(env.seed_pool_size, env.history_horizon)
        state, action = applied_action_pairs(windows.state.float(), windows.action.float())
        self.state, self.action = state.clone(), action.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            self.eager(self.state, self.action)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.memory = self.eager(self.state, self.action)

    def __call__(self, state: torch.Tensor, action: torch.Tensor) -> Memory:
        if state.shape != self.state.shape:
            return self.eager(state, action)
        self.state.copy_(state)
        self.action.copy_(action)
        self.graph.replay()
        return self.memory  # overwritten by the next replay: the refill copies it into the pool at once


def profile(fn: Callable[[], object], device: torch.device, title: str, steps: int = 5) -> None:
    """Print the ops that take the most device (CUDA) or host (CPU) time over ``steps`` calls of ``fn``."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    fn()
    sync(device)
    with torch_profile(activities=activities) as prof:
        for _ in range(steps):
            fn()
        sync(device)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(f"--- profile: {title}, {steps} steps, by {sort}")
    print(prof.key_averages().table(sort_by=sort, row_limit=25, max_name_column_width=60))
    if device.type == "cuda":
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8, max_name_column_width=60))


def compile_step(env: ImaginationEnv, compile_mode: str) -> Callable:
    """``torch.compile`` the env's step after its random draws (``env.compile_step``: model, rewards, bookkeeping and
    the state commit in one graph); returns the compiled ``graph_safe_act``."""
    env.compile_step(compile_mode)
    return torch.compile(graph_safe_act, mode=compile_mode, dynamic=False)


def graph_matches_eager(
    base_plan, size: dict, device: torch.device, num_envs: int, ensemble: int, compile_mode: str | None = None
) -> float:
    """Max |reward difference| over GRAPH_CHECK_STEPS steps: eager steps vs graph replays (of the compiled step with
    ``compile_mode``) from the same start (deterministic actions, so only the env's own registered streams draw
    random numbers)."""
    rewards = {}
    for mode in ("eager", "graph"):
        _, env, alg = build(base_plan, num_envs, ensemble, size, device, seed=1)
        if mode == "graph" and compile_mode is not None:
            compile_step(env, compile_mode)
        fn = core(env, alg, deterministic=True)
        out = []
        with torch.inference_mode():
            if mode == "eager":
                for _ in range(GRAPH_CHECK_STEPS):
                    r, _ = fn()
                    out.append(r.clone())
            else:
                graph, (r_static, _) = capture(fn, env)
                for _ in range(GRAPH_CHECK_STEPS):
                    graph.replay()
                    out.append(r_static.clone())
        rewards[mode] = out
    # eager step i corresponds to replay i - 3 (the capture warm-up took the first 3 eager-equivalent steps)
    eager, graph = rewards["eager"][3:], rewards["graph"][: GRAPH_CHECK_STEPS - 3]
    return max(float((a - b).abs().max()) for a, b in zip(eager, graph, strict=True))


def measure(base_plan, num_envs: int, ensemble: int, size: dict, device: torch.device, args) -> Iterator[dict]:
    """The rows of one (envs, K): eager first, then the graph and compile variants asked for."""
    plan, env, alg = build(base_plan, num_envs, ensemble, size, device)
    flops = flops_per_env_step(env, alg)
    with torch.inference_mode():
        counter: list[torch.Tensor] = []
        full = timed(eager_step(env, alg, counter), size["steps"], size["warmup"], device)
        resets = float(torch.stack(counter).float().mean())
        obs = env.get_observations()
        actions = alg.act(obs)
        prediction, _ = env.predict(actions)
        parts = {
            "model": timed(lambda: env.predict(actions), size["part_steps"], 2, device),
            "policy": timed(lambda: alg.act(obs), size["part_steps"], 2, device),
            "rewards": timed(
                lambda: env.reward(env.s, actions, prediction, env.max_episode_length), size["part_steps"], 2, device
            ),
            "observe": timed(env.observe, size["part_steps"], 2, device),
            # once per iteration, spread over its steps
            "refill": timed(env.refill_seeds, 3, 1, device) / env.num_steps_per_env,
        }
        if args.profile:
            profile(eager_step(env, alg, []), device, f"eager {num_envs} envs K={ensemble}")
            profile(env.refill_seeds, device, f"refill_seeds {num_envs} envs K={ensemble} (once per iteration)", 2)
    shares = {k: v / full for k, v in parts.items()}
    shares["other"] = max(0.0, 1.0 - sum(shares.values()))
    yield _row(
        "eager",
        num_envs,
        ensemble,
        full,
        flops,
        resets,
        args,
        shares=shares,
        parts_ms={k: 1e3 * v for k, v in parts.items()},
    )

    if args.cuda_graphs:
        if device.type != "cuda":
            raise SystemExit("--cuda-graphs needs --device cuda")
        check = graph_matches_eager(base_plan, size, device, num_envs, ensemble)
        _, env, alg = build(base_plan, num_envs, ensemble, size, device)
        with torch.inference_mode():
            env.seeds.warm_up = GraphedWarmUp(env)
            graph, _ = capture(core(env, alg), env)
            replay = per_iteration_refill(graph.replay, env)
            seconds = timed_runs(replay, size["steps"], size["warmup"], device, args.runs)
            if args.profile:
                profile(replay, device, f"cuda_graphs {num_envs} envs K={ensemble}")
            replay_only = timed(graph.replay, size["part_steps"], 2, device)
        yield _row(
            "cuda_graphs",
            num_envs,
            ensemble,
            seconds,
            flops,
            resets,
            args,
            graph_max_reward_diff=check,
            replay_ms=1e3 * replay_only,
        )

    if args.compile:
        _, env, alg = build(base_plan, num_envs, ensemble, size, device)
        act = compile_step(env, args.compile_mode)
        mode = f"compile:{args.compile_mode}"
        try:
            with torch.inference_mode():
                counter = []
                seconds = timed(eager_step(env, alg, counter), size["steps"], max(size["warmup"], 3), device)
                yield _row(mode, num_envs, ensemble, seconds, flops, resets, args)
                if args.cuda_graphs:
                    env.seeds.warm_up = GraphedWarmUp(env)
                    graph, _ = capture(core(env, alg, act=act), env)
                    replay = per_iteration_refill(graph.replay, env)
                    seconds = timed_runs(replay, size["steps"], size["warmup"], device, args.runs)
                    if args.profile:
                        profile(replay, device, f"{mode}+cuda_graphs {num_envs} envs K={ensemble}")
                    replay_only = timed(graph.replay, size["part_steps"], 2, device)
            if args.cuda_graphs:
                check = graph_matches_eager(base_plan, size, device, num_envs, ensemble, args.compile_mode)
                yield _row(
                    f"{mode}+cuda_graphs",
                    num_envs,
                    ensemble,
                    seconds,
                    flops,
                    resets,
                    args,
                    replay_ms=1e3 * replay_only,
                    graph_max_reward_diff=check,
                )
        except Exception as exc:  # report and go on: compile support varies by torch version and device
            traceback.print_exc()
            yield {"mode": mode, "envs": num_envs, "ensemble": ensemble, "error": f"{type(exc).__name__}: {exc}"[:500]}


def _row(
    mode: str, num_envs: int, ensemble: int, seconds: float | list[float], flops: float, resets: float, args, **extra
) -> dict:
    """One table row; ``seconds`` per step, or a list of windows' (the row reports their median)."""
    runs = seconds if isinstance(seconds, list) else [seconds]
    seconds = statistics.median(runs)
    rate = num_envs / seconds
    row = {
        "mode": mode,
        "envs": num_envs,
        "ensemble": ensemble,
        "env_steps_per_s": rate,
        "ms_per_step": 1e3 * seconds,
        "flops_per_env_step": flops,
        "achieved_tflops": rate * flops / 1e12,
        "new_episodes_per_step": resets,
        **extra,
    }
    if len(runs) > 1:
        row["ms_per_step_runs"] = [1e3 * r for r in runs]
    if args.peak_tflops:
        row["share_of_peak"] = row["achieved_tflops"] / args.peak_tflops
    return row


# ---------------------------------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="small env counts and few steps (seconds on a CPU)")
    parser.add_argument("--envs", type=int, nargs="+", default=None, help="imagined env counts")
    parser.add_argument("--ensembles", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--cuda-graphs", action="store_true", help="also time the step replayed as a CUDA graph")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile of the step")
    parser.add_argument(
        "--runs", type=int, default=3, help="timing windows of the graph rows (the row reports their median)"
    )
    parser.add_argument("--compile-mode", default="default", help="torch.compile mode of the step (with --compile)")
    parser.add_argument("--tf32", action="store_true", help="allow TF32 in float32 matmuls")
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="the device's peak TFLOP/s for the floor column (e.g. 67 for H100 SXM FP32)",
    )
    parser.add_argument("--profile", action="store_true", help="print the top ops of a few steps per measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json-out", type=Path, default=None, help="JSON path (default benchmarks/results/...)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tf32:
        torch.set_float32_matmul_precision("high")
    size = dict(SIZES["quick" if args.quick else "full"])
    if args.envs:
        size["envs"] = tuple(args.envs)
    base_plan, _ = compile_spec(SPEC)

    rows = []
    for num_envs in size["envs"]:
        for ensemble in args.ensembles:
            for row in measure(base_plan, num_envs, ensemble, size, device, args):
                rows.append(row)
                if "error" in row:
                    print(f"{row['mode']:>24} {num_envs:>5} envs K={ensemble}: failed: {row['error']}", flush=True)
                else:
                    print(
                        f"{row['mode']:>24} {num_envs:>5} envs K={ensemble}: {row['env_steps_per_s']:>12.0f} "
                        f"env*steps/s ({row['ms_per_step']:.2f} ms per step)",
                        flush=True,
                    )

    print()
    header = (
        f"{'mode':>24} {'envs':>6} {'K':>2} {'env*steps/s':>13} {'ms/step':>8} {'TFLOP/s':>8} "
        f"{'model':>6} {'policy':>6} {'reward':>6} {'obs':>6} {'refill':>6} {'other':>6}"
    )
    print(header)
    for r in rows:
        if "error" in r:
            continue
        s = r.get("shares")
        cells = (
            [f"{100 * s[k]:>5.0f}%" for k in ("model", "policy", "rewards", "observe", "refill", "other")]
            if s
            else [f"{'-':>6}"] * 6
        )
        print(
            f"{r['mode']:>24} {r['envs']:>6} {r['ensemble']:>2} {r['env_steps_per_s']:>13.0f} "
            f"{r['ms_per_step']:>8.2f} {r['achieved_tflops']:>8.2f} " + " ".join(cells)
        )
    best = [
        r
        for r in rows
        if r.get("envs") == TARGET["envs"] and r.get("ensemble") == TARGET["ensemble"] and "env_steps_per_s" in r
    ]
    if best and device.type == "cuda":
        top = max(best, key=lambda r: r["env_steps_per_s"])
        print(
            f"target {TARGET['env_steps_per_s'] / 1e6:.0f} M steps/s at {TARGET['envs']} envs, K = "
            f"{TARGET['ensemble']} ({TARGET['device']}): best {top['env_steps_per_s'] / 1e6:.2f} M ({top['mode']})"
        )
    for r in rows:
        if "graph_max_reward_diff" in r:
            print(
                f"{r['mode']} vs eager, {r['envs']} envs K={r['ensemble']}: max reward difference "
                f"{r['graph_max_reward_diff']:.2e}"
            )

    record = {
        "device": args.device,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
        "quick": args.quick,
        "tf32": args.tf32,
        "peak_tflops": args.peak_tflops,
        "sizes": size,
        "target": TARGET,
        "spec": str(SPEC.relative_to(ROOT)),
        "rows": rows,
    }
    write_json(record, args.json_out or RESULTS_DIR / f"imagination_{args.device}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
