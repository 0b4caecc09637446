"""Bases of the built-in ensemble: the sequence encoders in front of its heads.

Every base follows one contract (``WorldModelBase``) so that the ensemble and its losses treat recurrent and
windowed bases alike:

* input ``x`` is ``[B, T, in]``: T steps of ``concat(state_t, action_t)`` pairs, oldest first;
* ``forward(x, memory) -> (features [B, out], memory)``: the features after consuming ``x`` (the last step's),
  starting from ``memory`` (what the base remembers of earlier steps; ``initial_memory`` gives the empty one);
* ``forward_sequence(x, memory) -> (features [B, T, out], memory)``: the features after each step of ``x``;
* memory is a tensor or a tuple of tensors whose batch dimension is ``memory_batch_dim``; the helpers
  ``select_memory`` / ``write_memory_rows`` / ``where_memory`` gather, scatter and blend rows.

The memory of a recurrent base is its hidden state (``[layers, B, H]``, and the cell state for an LSTM). The memory
of ``MlpBase`` is its input window (``[B, H, in]``, H the history horizon): feeding one step slides the window, so the
autoregressive training loop and single-step inference read the same for both kinds.

A third-party base plugs into the ensemble with a factory ``(input_dim, plan) -> WorldModelBase`` passed as
``SystemDynamicsEnsemble(plan, base_factory=...)`` (see docs/world_model.md); ``BASE_FACTORIES`` holds the built-in
ones by architecture name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import torch
from torch import nn

from rwmspec.plan import WorldModelPlan

Memory = torch.Tensor | tuple[torch.Tensor, ...]


class WorldModelBase(nn.Module, ABC):
    """Base-class contract (see the module docstring). Subclasses set ``input_dim``, ``output_dim``,
    ``recurrent`` and ``memory_batch_dim`` and implement ``initial_memory`` and ``forward``."""

    input_dim: int
    output_dim: int
    recurrent: bool
    memory_batch_dim: int

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

    def select_memory(self, memory: Memory, index: torch.Tensor) -> Memory:
        """Rows ``index`` ([R] long) of ``memory`` (a copy; rows may repeat, e.g. bootstrap resampling)."""
        return self._map(lambda m: m.index_select(self.memory_batch_dim, index), memory)

    def write_memory_rows(self, memory: Memory, index: torch.Tensor, rows: Memory) -> Memory:
        """``memory`` with rows ``index`` replaced by ``rows`` (out of place)."""
        return self._map(lambda m, r: m.index_copy(self.memory_batch_dim, index, r.to(m.dtype)), memory, rows)

    def where_memory(self, mask: torch.Tensor, new: Memory, old: Memory) -> Memory:
        """Row-wise ``new if mask else old`` (``mask`` ``[B]`` bool); no host read, so it traces into a graph."""

        def pick(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            view = [1] * b.dim()
            view[self.memory_batch_dim] = -1
            return torch.where(mask.view(view), a.to(b.dtype), b)

        return self._map(pick, new, old)


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
# the built-in bases by architecture name: (input_dim, plan) -> WorldModelBase
# ---------------------------------------------------------------------------------------------------------------------
def gru_base(input_dim: int, plan: WorldModelPlan) -> RecurrentBase:
    """A GRU base with ``plan.base_hidden`` layers (equal sizes)."""
    return RecurrentBase(input_dim, plan.base_hidden, cell="gru")


def lstm_base(input_dim: int, plan: WorldModelPlan) -> RecurrentBase:
    """An LSTM base with ``plan.base_hidden`` layers (equal sizes)."""
    return RecurrentBase(input_dim, plan.base_hidden, cell="lstm")


def mlp_base(input_dim: int, plan: WorldModelPlan) -> MlpBase:
    """An MLP base over the last ``plan.history_horizon`` steps with ``plan.base_hidden`` layer sizes."""
    return MlpBase(input_dim, plan.base_hidden, window=plan.history_horizon)


BaseFactory = Callable[[int, WorldModelPlan], WorldModelBase]
BASE_FACTORIES: dict[str, BaseFactory] = {"gru": gru_base, "lstm": lstm_base, "mlp": mlp_base}
