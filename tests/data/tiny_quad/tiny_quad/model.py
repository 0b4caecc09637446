"""A whole world model in 80 lines: one deterministic MLP, no memory, no ensemble (``WorldModel`` protocol)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from rwmspec_runtime.world_model.protocol import LossSettings, Prediction
from rwmspec_runtime.world_model.replay_buffer import applied_action_pairs


@dataclass
class TinyLosses:
    state: torch.Tensor
    contact: torch.Tensor
    termination: torch.Tensor

    def total(self, weights) -> torch.Tensor:
        return weights.state * self.state + weights.contact * self.contact + weights.termination * self.termination

    def member_means(self) -> dict[str, torch.Tensor]:
        return {"state": self.state, "contact": self.contact, "termination": self.termination}


class TinyWorldModel(nn.Module):
    ensemble_size = 1

    def __init__(self, plan, quirks=None) -> None:
        super().__init__()
        self.state_dim, self.action_dim = plan.state_dim, plan.action_dim
        self.contact_dim, self.termination_dim, self.extension_dim = (
            plan.contact_dim,
            plan.termination_dim,
            plan.extension_dim,
        )
        self.history_horizon = plan.history_horizon
        width = plan.base_hidden[0]
        outputs = self.state_dim + self.contact_dim + self.termination_dim + self.extension_dim
        self.net = nn.Sequential(
            nn.Linear(self.state_dim + self.action_dim, width), nn.ELU(), nn.Linear(width, outputs)
        )

    def _heads(self, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.net(torch.cat([state, action], dim=-1))
        sizes = (self.state_dim, self.contact_dim, self.termination_dim, self.extension_dim)
        delta, contact, termination, extension = out.split(sizes, dim=-1)
        return state + delta, contact, termination, extension

    # the model remembers nothing: a zero-width tensor keeps the memory a tensor with one row per env
    def initial_memory(self, batch_size: int) -> torch.Tensor:
        return self.net[0].weight.new_zeros(batch_size, 0)

    def warm_up(self, state, action, memory=None) -> torch.Tensor:
        return self.initial_memory(state.shape[0])

    def step(self, state, action, memory, members=None):
        next_state, contact, termination, extension = self._heads(state, action)
        zeros = next_state.new_zeros(next_state.shape[0])
        prediction = Prediction(
            next_state=next_state,
            aleatoric=zeros,
            epistemic=zeros,
            contact_prob=torch.sigmoid(contact),
            termination_prob=torch.sigmoid(termination),
            extension=extension,
        )
        return prediction, memory

    def select_memory(self, memory, index):
        return memory.index_select(0, index)

    def write_memory_rows(self, memory, index, rows):
        return memory.index_copy(0, index, rows)

    def where_memory(self, mask, new, old):
        return torch.where(mask.unsqueeze(-1), new, old)

    def losses(self, windows, settings: LossSettings, generator=None) -> TinyLosses:
        # one-step, teacher-forced: the L - 1 (state, applied action) pairs predict buffer entries 1 .. L - 1
        states, actions = applied_action_pairs(windows.state, windows.action)
        next_state, contact, termination, _ = self._heads(states, actions)
        return TinyLosses(
            state=F.mse_loss(next_state, windows.state[:, 1:]),
            contact=F.binary_cross_entropy_with_logits(contact, windows.contact[:, 1:].float()),
            termination=F.binary_cross_entropy_with_logits(termination, windows.termination[:, 1:].float()),
        )


def build(plan, *, quirks=None) -> TinyWorldModel:
    return TinyWorldModel(plan, quirks)
