"""The visualize stage: each real env next to an imagined twin that starts from its state and gets its actions.

One pass (the stage runs one iteration): the policy (``runner.policy_from``, deterministic) drives the real envs for
``history_horizon + visualize.num_steps`` steps. The first M steps are the twin's context: the world model
(``runner.world_model_from``, fingerprint-checked) is warmed up on that real window, then predicts each next state
from its own previous prediction and the action the policy took in the *real* env. When a real env's episode ends,
its twin is re-synchronised to the real state after the reset (memory rows cleared).

Outputs in ``RUN/visualize/``: ``<block>.png`` per system_state block (env 0, real solid, imagined dashed),
``error.png`` (relative L1 error per step, all envs) and ``visualize.mp4`` (real robot left, twin right, drawn by
the backend's ``TwinRenderer``; the embedded one integrates the twin's position and yaw from its predicted base
velocities and takes its height from the real robot). Metrics ``Visualize/autoregressive_error[/<block>]`` go to the run's writers.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rwmspec.plan import Plan
from rwmspec_runtime import checkpoints
from rwmspec_runtime.errors import runtime_error
from rwmspec_runtime.rendering import make_renderer, mp4_writer
from rwmspec_runtime.steps import IterationContext, Step
from rwmspec_runtime.world_model.evaluation import relative_error, state_block_slices
from rwmspec_runtime.world_model.system import WorldModelSystem

if TYPE_CHECKING:
    from rwmspec_runtime.runner import Runner

OUTPUT_DIR = "visualize"
VIDEO_FILE = "visualize.mp4"


class Visualize(Step):
    """Real envs and their imagined twins, side by side (see the module docstring)."""

    name = "visualize"
    timing = "collection"

    def __init__(self, runner: Runner) -> None:
        super().__init__(runner)
        plan = runner.plan
        source = runner.references.get("runner.world_model_from")
        if source is None:
            raise runtime_error(
                "RWM503",
                "the visualize stage needs a world model: set runner.world_model_from",
                file=plan.spec_file,
                hint='e.g. world_model_from = { spec = "anymal_d_finetune.toml" }',
            )
        self.system = WorldModelSystem(plan, runner.env.num_envs, runner.device, registry=runner.registry)
        self.system.load_state_dict(
            checkpoints.load_checkpoint(source, map_location=runner.device), optimizer=False, path=source
        )
        self.blocks = state_block_slices(plan.observations["system_state"])

    @classmethod
    def renders(cls, plan: Plan) -> bool:
        return bool(plan.visualize.video)

    def run(self, ctx: IterationContext) -> None:
        if ctx.iteration > 0:
            return  # one pass is the whole stage
        runner, plan, env = self.runner, self.runner.plan, self.runner.env
        vis = plan.visualize
        out_dir = runner.run_dir.path / OUTPUT_DIR
        out_dir.mkdir(parents=True, exist_ok=True)
        commands = getattr(env, "commands", None)
        if commands is not None and hasattr(commands, "resampling_time_range_s"):
            commands.resampling_time_range_s = (vis.command_resample_s, vis.command_resample_s)
        env.episode_length_buf = torch.zeros_like(env.episode_length_buf)  # no time-out inside the pass
        if vis.video:
            camera = make_renderer(env, 480, 360, twin=True)
            try:
                with mp4_writer(out_dir / VIDEO_FILE, plan.sim.control_dt) as append:
                    real, twin = self._roll(env, camera, append)
            finally:
                camera.close()
            runner.log(f"video: {out_dir / VIDEO_FILE}")
        else:
            real, twin = self._roll(env)
        M = plan.world_model.history_horizon
        error = relative_error(twin, real, M)  # [steps], mean over envs
        ctx.metrics["Visualize/autoregressive_error"] = float(error.mean())
        for name, dims in self.blocks.items():
            ctx.metrics[f"Visualize/autoregressive_error/{name}"] = float(relative_error(twin, real, M, dims).mean())
        self._plots(real[:, M:], twin[:, M:], error, out_dir)
        runner.log(f"plots: {out_dir}")
        ctx.scratch["skip_policy_update"] = True

    # -- the pass ----------------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def _roll(self, env: Any, camera: Any = None, append_frame: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Real and twin normalized states ``[N, M + steps, S]`` (twin entries t < M copy the real context); with a
        camera, each side-by-side frame goes to ``append_frame`` as it is rendered."""
        runner, system = self.runner, self.system
        model, normalizer = system.model.eval(), system.normalizer
        M, steps, dt = (
            runner.plan.world_model.history_horizon,
            runner.plan.visualize.num_steps,
            runner.plan.sim.control_dt,
        )
        actor = runner.alg.actor
        obs = runner.obs
        groups = system.groups
        n = env.num_envs
        real_states, actions, twin_states = [], [], []
        state = normalizer.entry(obs.select(*groups)).state
        twin_next = None
        memory = None
        for k in range(M + steps):
            action = actor(obs)
            real_states.append(state)
            actions.append(normalizer.normalize_action(action.float()))
            if k < M:
                twin_states.append(state)
            else:
                twin_states.append(twin_next)
            if k == M - 1:  # warm the twin up on the real context, then predict from its last pair
                context_states, context_actions = torch.stack(real_states, 1), torch.stack(actions, 1)
                memory = (
                    model.warm_up(context_states[:, :-1], context_actions[:, :-1]) if M > 1 else model.initial_memory(n)
                )
                prediction, memory = model.step(state, actions[-1], memory)
                twin_next = prediction.next_state
                if camera is not None:
                    camera.start()
            elif k >= M:
                prediction, memory = model.step(twin_states[-1], actions[-1], memory)
                twin_next = prediction.next_state
            obs, _, dones, extras = env.step(action.to(env.device))
            obs = obs.to(runner.device)
            dones = dones.to(runner.device).bool()
            state = normalizer.entry(obs.select(*groups)).state
            if k >= M - 1 and bool(dones.any()):
                # the real env restarted: its twin restarts from the new real state with an empty memory
                ids = dones.nonzero().squeeze(-1)
                memory = model.write_memory_rows(memory, ids, model.initial_memory(ids.numel()))
                twin_next = twin_next.clone()
                twin_next[ids] = state[ids]
            if camera is not None and k >= M - 1 and k < M + steps - 1:
                twin_row = normalizer.denormalize_state(twin_next[:1])[0].cpu().numpy()
                append_frame(camera.side_by_side(twin_row, dt, reset=bool(dones[0])))
        runner.obs = obs
        return torch.stack(real_states, 1), torch.stack(twin_states, 1)

    # -- outputs -----------------------------------------------------------------------------------------------------
    def _plots(self, real: torch.Tensor, twin: torch.Tensor, error: torch.Tensor, out_dir: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        normalizer = self.system.normalizer
        real_d = normalizer.denormalize_state(real[0]).cpu().numpy()
        twin_d = normalizer.denormalize_state(twin[0]).cpu().numpy()
        t = np.arange(real_d.shape[0]) * self.runner.plan.sim.control_dt
        terms = {term.name: term for term in self.runner.plan.observations["system_state"].terms}
        for name, dims in self.blocks.items():
            width = dims.stop - dims.start
            cols = min(width, 3)
            rows = math.ceil(width / cols)
            fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.2 * rows), squeeze=False, sharex=True)
            labels = terms[name].labels or tuple(f"{name}[{i}]" for i in range(width))
            for i in range(width):
                ax = axes[i // cols][i % cols]
                ax.plot(t, real_d[:, dims.start + i], color="black", lw=1.2, label="real")
                ax.plot(t, twin_d[:, dims.start + i], color="tab:orange", lw=1.2, ls="--", label="imagined")
                ax.set_title(labels[i] if i < len(labels) else f"{name}[{i}]", fontsize=8)
            for j in range(width, rows * cols):
                axes[j // cols][j % cols].axis("off")
            axes[0][0].legend(fontsize=7)
            fig.suptitle(f"{name}: real (env 0) vs imagined twin", fontsize=10)
            fig.tight_layout()
            fig.savefig(out_dir / f"{name}.png", dpi=90)
            plt.close(fig)
        fig, ax = plt.subplots(figsize=(6, 3))
        mean = error.cpu().numpy()
        ax.plot(np.arange(1, len(mean) + 1), mean)
        ax.set_xlabel("steps after the context")
        ax.set_ylabel("relative L1 error")
        ax.set_title("twin error, mean over envs")
        fig.tight_layout()
        fig.savefig(out_dir / "error.png", dpi=90)
        plt.close(fig)
