"""World-model bases: the sequence encoders in front of the ensemble heads.

Every base follows one contract (``WorldModelBase``) so that the ensemble, the trainer and the evaluation treat
recurrent and windowed bases alike:

* input ``x`` is ``[B, T, in]``: T steps of ``concat(state_t, action_t)`` pairs, oldest first;
* ``forward(x, memory) -> (features [B, out], memory)``: the features after consuming ``x`` (the last step's),
  starting from ``memory`` (what the base remembers of earlier steps; ``initial_memory`` gives the empty one);
* ``forward_sequence(x, memory) -> (features [B, T, out], memory)``: the features after each step of ``x``;
* memory is a tensor or a tuple of tensors whose batch dimension is ``memory_batch_dim``; the helpers
  ``select_memory`` / ``zero_memory_rows`` / ``write_memory_rows`` gather, reset and scatter env rows.

The memory of a recurrent base is its hidden state (``[layers, B, H]``, and the cell state for an LSTM). The memory
of ``MlpBase`` is its input window (``[B, H, in]``, H the history horizon): feeding one step slides the window, so the
autoregressive training loop and single-step inference read the same for both kinds.

For inference a base also keeps its own memory (``step(x, env_ids)``, ``reset(env_ids)``); training uses the
functional form only. Factories ``build_gru`` / ``build_lstm`` / ``build_mlp`` are what the ``world_models`` plugin
registers (``ArchitectureDef.factory``): ``build(input_dim, plan) -> WorldModelBase`` with ``plan`` a
``rwmspec.plan.WorldModelPlan``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

Memory = torch.Tensor | tuple[torch.Tensor, ...]


class WorldModelBase(nn.Module, ABC):
    """Base-class contract (see the module docstring). Subclasses set ``input_dim``, ``output_dim``,
    ``recurrent`` and ``memory_batch_dim`` and implement ``initial_memory`` and ``forward``."""

    input_dim: int
    output_dim: int
    recurrent: bool
    memory_batch_dim: int

    def __init__(self) -> None:
        super().__init__()
        self._memory: Memory | None = None

    # -- the functional contract -------------------------------------------------------------------------------
    @abstractmethod
    def initial_memory(
        self, batch_size: int, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Memory:
        """The empty memory of ``batch_size`` rows."""

    @abstractmethod
    def forward(self, x: torch.Tensor, memory: Memory) -> tuple[torch.Tensor, Memory]:
        """Consume ``x`` ``[B, T, in]`` after ``memory``: the last step's features ``[B, out]`` and the new memory."""

    def forward_sequence(self, x: torch.Tensor, memory: Memory) -> tuple[torch.Tensor, Memory]:
        """Features after every step of ``x`` ``[B, T, in]`` -> ``[B, T, out]``. Generic: one call per step."""
        features = []
        for t in range(x.shape[1]):
            f, memory = self(x[:, t : t + 1], memory)
            features.append(f)
        return torch.stack(features, dim=1), memory

    # -- memory rows -------------------------------------------------------------------------------------------
    def _map(self, fn: Callable[..., torch.Tensor], *memories: Memory) -> Memory:
        if isinstance(memories[0], tuple):
            return tuple(fn(*parts) for parts in zip(*memories, strict=True))
        return fn(*memories)

    def memory_batch_size(self, memory: Memory) -> int:
        first = memory[0] if isinstance(memory, tuple) else memory
        return first.shape[self.memory_batch_dim]

    def select_memory(self, memory: Memory, index: torch.Tensor) -> Memory:
        """Rows ``index`` ([R] long) of ``memory`` (a copy; rows may repeat, e.g. bootstrap resampling)."""
        return self._map(lambda m: m.index_select(self.memory_batch_dim, index), memory)

    def zero_memory_rows(self, memory: Memory, index: torch.Tensor) -> Memory:
        """``memory`` with rows ``index`` set to the empty memory (out of place)."""
        return self._map(lambda m: m.index_fill(self.memory_batch_dim, index, 0.0), memory)

    def write_memory_rows(self, memory: Memory, index: torch.Tensor, rows: Memory) -> Memory:
        """``memory`` with rows ``index`` replaced by ``rows`` (out of place)."""
        return self._map(lambda m, r: m.index_copy(self.memory_batch_dim, index, r.to(m.dtype)), memory, rows)

    # -- stateful inference ------------------------------------------------------------------------------------
    @property
    def memory(self) -> Memory | None:
        """The memory kept for stateful inference (None until the first ``step`` or ``init_memory``)."""
        return self._memory

    @memory.setter
    def memory(self, value: Memory | None) -> None:
        self._memory = value

    def init_memory(self, num_envs: int) -> None:
        """Start stateful inference for ``num_envs`` envs with an empty memory."""
        p = next(self.parameters())
        self._memory = self.initial_memory(num_envs, device=p.device, dtype=p.dtype)

    def reset(self, env_ids: torch.Tensor | Sequence[int] | None = None) -> None:
        """Forget the kept memory: of all envs (``env_ids`` None), or of the rows ``env_ids`` only."""
        if env_ids is None:
            self._memory = None
            return
        if self._memory is None:  # nothing kept: every row is empty already
            return
        index = _as_index(env_ids, self._memory)
        self._memory = self.zero_memory_rows(self._memory, index)

    def step(self, x: torch.Tensor, env_ids: torch.Tensor | Sequence[int] | None = None) -> torch.Tensor:
        """Stateful forward: consume ``x`` ``[B, T, in]`` after the kept memory and keep the new one.

        With ``env_ids`` ([B] rows of the kept memory) only those rows advance; the others are untouched.
        Without, ``x`` covers all envs; a batch size different from the kept memory's starts a new empty memory.
        """
        if env_ids is None:
            if self._memory is None or self.memory_batch_size(self._memory) != x.shape[0]:
                self._memory = self.initial_memory(x.shape[0], device=x.device, dtype=x.dtype)
            features, memory = self(x, self._memory)
            self._memory = self._map(torch.Tensor.detach, memory)
            return features
        if self._memory is None:
            raise RuntimeError(
                "step(env_ids=...) needs a kept memory: call init_memory(num_envs) or step() on all envs first"
            )
        index = _as_index(env_ids, self._memory)
        features, rows = self(x, self.select_memory(self._memory, index))
        self._memory = self.write_memory_rows(self._memory, index, self._map(torch.Tensor.detach, rows))
        return features


def _as_index(env_ids: torch.Tensor | Sequence[int], memory: Memory) -> torch.Tensor:
    device = (memory[0] if isinstance(memory, tuple) else memory).device
    index = torch.as_tensor(env_ids, device=device)
    if index.dtype == torch.bool:
        index = index.nonzero().squeeze(-1)
    return index.long().reshape(-1)


class RecurrentBase(WorldModelBase):
    """GRU or LSTM over the (state, action) sequence (cuDNN-fused on CUDA); features are the last layer's output.

    Memory: the hidden state ``[layers, B, H]`` (GRU) or ``(h, c)`` (LSTM).

    ``single_step_cells``: one-step inputs (the autoregressive feedback steps of training, single-step inference)
    run through the fused ``torch.gru_cell``/``torch.lstm_cell`` kernels on the same weights instead of the cuDNN
    sequence kernel. The results are the same; the reason is speed: cuDNN's RNN backward pays a large per-call cost
    in its weight-gradient pass that is wasted on a sequence of length one (on an H100 it dominated the training step).
    """

    recurrent = True
    memory_batch_dim = 1

    def __init__(
        self,
        input_dim: int,
        hidden_sizes: Sequence[int],
        cell: str = "gru",
        *,
        single_step_cells: bool = True,
        sequence_cells: bool = False,
    ) -> None:
        super().__init__()
        hidden_sizes = tuple(hidden_sizes)
        if not hidden_sizes or len(set(hidden_sizes)) != 1:
            raise ValueError(
                f"world_model.base_hidden = {list(hidden_sizes)}: a recurrent base needs equal layer "
                f"sizes, one per layer (e.g. [256, 256])"
            )
        rnn_types = {"gru": nn.GRU, "lstm": nn.LSTM}
        if cell not in rnn_types:
            raise ValueError(f"recurrent cell {cell!r}: use one of {sorted(rnn_types)}")
        self.cell = cell
        self.input_dim = input_dim
        self.hidden_size = hidden_sizes[0]
        self.num_layers = len(hidden_sizes)
        self.output_dim = self.hidden_size
        self.rnn = rnn_types[cell](input_dim, self.hidden_size, num_layers=self.num_layers, batch_first=True)
        self.single_step_cells = single_step_cells
        self.sequence_cells = sequence_cells

    def initial_memory(self, batch_size: int, *, device=None, dtype=None) -> Memory:
        p = self.rnn.weight_hh_l0
        h = torch.zeros(
            self.num_layers, batch_size, self.hidden_size, device=device or p.device, dtype=dtype or p.dtype
        )
        return (h, torch.zeros_like(h)) if self.cell == "lstm" else h

    def _use_cells(self, steps: int) -> bool:
        return self.sequence_cells or (self.single_step_cells and steps == 1)

    def forward(self, x: torch.Tensor, memory: Memory) -> tuple[torch.Tensor, Memory]:
        if self._use_cells(x.shape[1]):
            out, memory = self._cells(x, memory)
        else:
            out, memory = self.rnn(x, memory)
        return out[:, -1], memory

    def _cells(self, x: torch.Tensor, memory: Memory) -> tuple[torch.Tensor, Memory]:
        """The layers step by step with the fused cell kernels: outputs ``[B, T, H]`` and the new memory."""
        lstm = self.cell == "lstm"
        h = memory[0] if lstm else memory
        c = memory[1] if lstm else None
        new_h, new_c = [], []
        for layer in range(self.num_layers):
            w = tuple(
                getattr(self.rnn, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            )
            h_t = h[layer].to(x.dtype)
            c_t = c[layer].to(x.dtype) if lstm else None
            outputs = []
            for t in range(x.shape[1]):
                if lstm:
                    h_t, c_t = torch.lstm_cell(x[:, t], (h_t, c_t), *w)
                elif torch.compiler.is_compiling() and not torch.is_grad_enabled():
                    h_t = gru_cell_inference(x[:, t], h_t, *w)
                else:
                    h_t = torch.gru_cell(x[:, t], h_t, *w)
                outputs.append(h_t)
            x = torch.stack(outputs, dim=1)
            new_h.append(h_t)
            new_c.append(c_t)
        return x, ((torch.stack(new_h), torch.stack(new_c)) if lstm else torch.stack(new_h))

    def forward_sequence(self, x: torch.Tensor, memory: Memory) -> tuple[torch.Tensor, Memory]:
        # one fused call instead of the generic per-step loop: the RNN's outputs are the per-step features
        if self._use_cells(x.shape[1]):
            return self._cells(x, memory)
        return self.rnn(x, memory)


def gru_cell_inference(
    x: torch.Tensor,
    h: torch.Tensor,
    w_ih: torch.Tensor,
    w_hh: torch.Tensor,
    b_ih: torch.Tensor | None,
    b_hh: torch.Tensor | None,
) -> torch.Tensor:
    """``torch.gru_cell`` written out, for compiled inference: inductor fuses it into one element-wise kernel after
    the two matrix products, while ATen's fused CUDA cell also writes the 5H-wide workspace its backward would read
    (more than half its memory traffic; a sixth of an imagined step at 8192 envs on an H100)."""
    r_x, z_x, n_x = nn.functional.linear(x, w_ih, b_ih).chunk(3, dim=-1)
    r_h, z_h, n_h = nn.functional.linear(h, w_hh, b_hh).chunk(3, dim=-1)
    r = torch.sigmoid(r_x + r_h)
    z = torch.sigmoid(z_x + z_h)
    n = torch.tanh(n_x + r * n_h)
    return n + z * (h - n)


class MlpBase(WorldModelBase):
    """ReLU MLP over the flattened window of the last ``window`` (state, action) pairs.

    Memory: the window itself ``[B, window, in]``, zeros before the first step (zero padding of short histories).
    """

    recurrent = False
    memory_batch_dim = 0

    def __init__(self, input_dim: int, hidden_sizes: Sequence[int], window: int) -> None:
        super().__init__()
        if not hidden_sizes:
            raise ValueError("world_model.base_hidden is empty: the mlp base needs at least one layer size")
        if window < 1:
            raise ValueError(f"world_model.history_horizon = {window}: the mlp window needs at least one step")
        self.input_dim = input_dim
        self.window = window
        self.output_dim = hidden_sizes[-1]
        layers: list[nn.Module] = []
        width = window * input_dim
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.mlp = nn.Sequential(*layers)

    def initial_memory(self, batch_size: int, *, device=None, dtype=None) -> Memory:
        p = self.mlp[0].weight
        return torch.zeros(batch_size, self.window, self.input_dim, device=device or p.device, dtype=dtype or p.dtype)

    def forward(self, x: torch.Tensor, memory: Memory) -> tuple[torch.Tensor, Memory]:
        window = torch.cat([memory.to(x.dtype), x], dim=1)[:, -self.window :]
        return self.mlp(window.flatten(1)), window

    def forward_sequence(self, x: torch.Tensor, memory: Memory) -> tuple[torch.Tensor, Memory]:
        full = torch.cat([memory.to(x.dtype), x], dim=1)  # [B, window + T, in]
        steps = x.shape[1]
        # the window ending at each new step: unfold -> [B, T + 1, in, window], keep the last T
        windows = full.unfold(1, self.window, 1)[:, -steps:].transpose(-1, -2)  # [B, T, window, in]
        features = self.mlp(windows.flatten(2))
        return features, full[:, -self.window :]


# ---------------------------------------------------------------------------------------------------------------------
# factories registered by the world_models plugin: build(input_dim, plan) -> WorldModelBase
# ---------------------------------------------------------------------------------------------------------------------
def _no_options(name: str, plan: Any) -> None:
    if getattr(plan, "options", None):
        raise ValueError(
            f"world_model.options = {dict(plan.options)}: architecture {name!r} takes no options; "
            f"remove the [world_model.options] table"
        )


def build_gru(input_dim: int, plan: Any) -> RecurrentBase:
    """A GRU base with ``plan.base_hidden`` layers (equal sizes)."""
    _no_options("gru", plan)
    return RecurrentBase(input_dim, plan.base_hidden, cell="gru")


def build_lstm(input_dim: int, plan: Any) -> RecurrentBase:
    """An LSTM base with ``plan.base_hidden`` layers (equal sizes)."""
    _no_options("lstm", plan)
    return RecurrentBase(input_dim, plan.base_hidden, cell="lstm")


def build_mlp(input_dim: int, plan: Any) -> MlpBase:
    """An MLP base over the last ``plan.history_horizon`` steps with ``plan.base_hidden`` layer sizes."""
    _no_options("mlp", plan)
    return MlpBase(input_dim, plan.base_hidden, window=plan.history_horizon)
