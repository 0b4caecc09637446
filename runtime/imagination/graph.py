"""The imagined step on a GPU: compiled with ``torch.compile`` and replayed as a CUDA graph.

Eagerly, one imagined step launches a few hundred small kernels, and at RWM's sizes (8192 envs) launching them
takes longer than running them. ``ImaginationEnv`` is written so that its step after the random draws
(``_advance``) traces whole and writes its state into the same tensors every time; ``GraphedStep`` compiles it,
captures ``advance`` + ``observe`` once and then replays the capture (docs/results.md: about ten times the eager
rate on an H100).

What a replay relies on, and how ``GraphedStep`` keeps it true:

* inputs and outputs live at fixed addresses: actions are copied into a static buffer, and the returned rewards,
  dones and extras are the capture's own tensors, overwritten by the next replay (the ``imagine`` step consumes them
  before it steps again); the observations are returned as a copy, because rsl-rl's PPO stores the observations it
  acted on only at the next ``process_env_step``, after the next replay;
* the env's state tensors stay where they were at capture: only a refill that grows the seed pool allocates new
  ones (``env.state_layout`` counts such changes), so a step captures again when the layout changed;
* the world model's weights are updated in place by its optimizer, which a replay sees;
* the env's random streams are registered with the graph, so every replay draws fresh numbers from them.

Capturing needs a few eager steps first (they also compile); the env's state and random streams are restored after
them, so the first replay is the step that was asked for.
"""

from __future__ import annotations

from typing import Any

import torch
from tensordict import TensorDict

from rwmspec_runtime.imagination.env import ImaginationEnv

#: eager steps before a capture (compilation and cuBLAS/cuDNN workspaces happen there, not in the graph)
_WARMUP_STEPS = 3


class GraphedStep:
    """``env.rollout_step`` replayed from a CUDA graph of the compiled step (see the module docstring).

    :param env: an imagination env on a CUDA device; ``reset`` before the first call.
    """

    def __init__(self, env: ImaginationEnv) -> None:
        if env.device.type != "cuda":
            raise ValueError(f"GraphedStep needs the imagination env on a CUDA device, not {env.device}")
        self.env = env
        env.compile_step()
        self.captures = 0
        self._graph: torch.cuda.CUDAGraph | None = None
        self._layout = -1
        self._actions: torch.Tensor | None = None
        self._outputs: tuple[TensorDict, torch.Tensor, torch.Tensor, dict[str, Any]] | None = None

    def __call__(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Observations, rewards, dones and extras after ``actions``, as ``env.rollout_step`` returns them."""
        if self._graph is None or self.env.state_layout != self._layout:
            self._capture(actions)
        assert self._graph is not None and self._actions is not None and self._outputs is not None
        self._actions.copy_(actions)
        self._graph.replay()  # also refreshes env.get_observations(): the capture made its output the env's
        obs, rewards, dones, extras = self._outputs
        # a copy: PPO keeps the observations it acted on until the storage step after this one, past the next replay
        return obs.clone(), rewards, dones, extras

    def _capture(self, actions: torch.Tensor) -> None:
        env = self.env
        self._graph = None  # the previous capture's memory goes back to the allocator first
        self._actions = actions.detach().clone()
        saved = {name: t.clone() for name, t in env.state_tensors().items()}
        streams = [g.get_state() for g in env.step_generators]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(_WARMUP_STEPS):
                env.rollout_step(self._actions)
        torch.cuda.current_stream().wait_stream(side)
        # the warm-up steps were not asked for: back to the state before them
        current = env.state_tensors()
        torch._foreach_copy_([current[name] for name in saved], list(saved.values()))
        for generator, state in zip(env.step_generators, streams, strict=True):
            generator.set_state(state)
        graph = torch.cuda.CUDAGraph()
        for generator in env.step_generators:
            graph.register_generator_state(generator)
        with torch.cuda.graph(graph):
            self._outputs = env.rollout_step(self._actions)
        self._graph = graph
        self._layout = self.env.state_layout
        self.captures += 1
