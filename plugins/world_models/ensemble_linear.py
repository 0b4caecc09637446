"""Linear layers and MLPs holding one set of weights per ensemble member, applied in one batched matmul.

Shapes: K members, ``*`` any batch dims, ``in``/``out`` feature widths. A member's weights are ``weight[k]``
([in, out]) and ``bias[k]`` ([out]). Inputs come in two forms:

* shared ``[*, in]``: every member reads the same features (inference on the shared base output). Computed as one
  GEMM against the members' weights laid side by side, ``[in, K*out]``.
* per member ``[G, *, in]``: member ``members[g]`` (or ``g``) reads its own rows (training: each member sees its own
  bootstrap resample and its own autoregressive samples). Computed with ``torch.baddbmm``.

Both return ``[G, *, out]`` (G = K, or ``len(members)``). No Python loop over members.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class EnsembleLinear(nn.Module):
    """K independent ``nn.Linear(in_features, out_features)`` layers, initialised like ``nn.Linear``."""

    def __init__(self, ensemble_size: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.ensemble_size = ensemble_size
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(ensemble_size, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Linear's default: kaiming_uniform(a=sqrt(5)) on the weight, which is U(-1/sqrt(in), 1/sqrt(in)),
        # and the same bound for the bias; per member, so every member starts from an independent draw
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(
        self, x: torch.Tensor, *, shared: bool = False, members: torch.Tensor | Sequence[int] | None = None
    ) -> torch.Tensor:
        """Apply the layers.

        :param x: ``[*, in]`` when ``shared`` else ``[G, *, in]``.
        :param shared: every member reads the same input ``x``.
        :param members: member ids ``[G]`` to apply (default: all K members, in order).
        :return: ``[G, *, out]``.
        """
        weight, bias = self.weight, self.bias
        if members is not None:
            index = torch.as_tensor(members, device=weight.device, dtype=torch.long)
            weight, bias = weight.index_select(0, index), bias.index_select(0, index)
        num = weight.shape[0]
        if shared:
            batch_shape = x.shape[:-1]
            flat = x.reshape(-1, self.in_features)
            # one GEMM: [B, in] @ [in, G*out] -> [B, G, out]
            stacked = weight.permute(1, 0, 2).reshape(self.in_features, num * self.out_features)
            out = torch.addmm(bias.reshape(1, -1), flat, stacked).view(-1, num, self.out_features)
            return out.permute(1, 0, 2).reshape(num, *batch_shape, self.out_features)
        if x.shape[0] != num:
            raise ValueError(f"EnsembleLinear: input has {x.shape[0]} member rows, expected {num}")
        batch_shape = x.shape[1:-1]
        flat = x.reshape(num, -1, self.in_features)
        out = torch.baddbmm(bias.unsqueeze(1), flat, weight)
        return out.view(num, *batch_shape, self.out_features)

    def extra_repr(self) -> str:
        return f"ensemble_size={self.ensemble_size}, in_features={self.in_features}, out_features={self.out_features}"


class EnsembleMLP(nn.Module):
    """Per-member MLP ``Linear -> ReLU -> ... -> Linear`` with the hidden sizes given (the last layer is linear)."""

    def __init__(self, ensemble_size: int, in_features: int, hidden: Sequence[int], out_features: int) -> None:
        super().__init__()
        sizes = [in_features, *hidden, out_features]
        self.layers = nn.ModuleList(
            EnsembleLinear(ensemble_size, a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.out_features = out_features

    @property
    def output_layer(self) -> EnsembleLinear:
        return self.layers[-1]

    def forward(
        self, x: torch.Tensor, *, shared: bool = False, members: torch.Tensor | Sequence[int] | None = None
    ) -> torch.Tensor:
        """``[*, in]`` (shared) or ``[G, *, in]`` -> ``[G, *, out]``."""
        for i, layer in enumerate(self.layers):
            x = layer(x, shared=shared and i == 0, members=members)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x
