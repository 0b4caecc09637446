"""The ``WorldModel`` protocol is all the runtime needs: a tiny non-ensemble model from an inline plugin is built
through the registry, trained by ``WorldModelTrainer`` from a ``ReplayBuffer`` and rolled out by the evaluation."""

from __future__ import annotations

import math
import types
from dataclasses import dataclass

import torch
from torch import nn

from rwmspec import hookimpl
from rwmspec.manager import build_registry
from rwmspec.spec.model import WorldModelTrainSpec
from rwmspec.types import ArchitectureDef
from rwmspec_runtime.world_model.evaluation import evaluate_world_model
from rwmspec_runtime.world_model.protocol import LossSettings, Prediction, WorldModel
from rwmspec_runtime.world_model.replay_buffer import ReplayBuffer, Windows, applied_action_pairs
from rwmspec_runtime.world_model.system import build_world_model
from rwmspec_runtime.world_model.trainer import UPDATE_KEYS, WorldModelTrainer

from world_model_helpers import tiny_world_model_plan

S, A, C = 4, 2, 1


@dataclass
class _Terms:
    state: torch.Tensor
    contact: torch.Tensor

    def total(self, weights) -> torch.Tensor:
        return weights.state * self.state + weights.contact * self.contact

    def member_means(self) -> dict[str, torch.Tensor]:
        return {"state": self.state, "contact": self.contact}


class LastStepMLP(nn.Module):
    """One deterministic MLP on the last (state, action) pair. Memory: the steps each row has consumed ``[N]``."""

    ensemble_size = 1

    def __init__(self, plan, *, quirks) -> None:
        super().__init__()
        self.state_dim, self.action_dim, self.contact_dim = plan.state_dim, plan.action_dim, plan.contact_dim
        self.termination_dim, self.extension_dim = plan.termination_dim, plan.extension_dim
        self.history_horizon = plan.history_horizon
        outputs = self.state_dim + self.contact_dim + self.termination_dim + self.extension_dim
        self.net = nn.Sequential(nn.Linear(self.state_dim + self.action_dim, 32), nn.Tanh(), nn.Linear(32, outputs))

    def _heads(self, state: torch.Tensor, action: torch.Tensor) -> list[torch.Tensor]:
        out = self.net(torch.cat([state, action], dim=-1))
        delta, contact, termination, extension = out.split(
            [self.state_dim, self.contact_dim, self.termination_dim, self.extension_dim], dim=-1
        )
        return [state + delta, contact, termination, extension]

    def initial_memory(self, batch_size: int) -> torch.Tensor:
        return torch.zeros(batch_size, device=self.net[0].weight.device)

    def warm_up(self, state, action, memory=None):
        return (memory if memory is not None else self.initial_memory(state.shape[0])) + state.shape[1]

    def step(self, state, action, memory, members=None):
        next_state, contact, termination, extension = self._heads(state, action)
        zero = state.new_zeros(state.shape[0])
        return Prediction(next_state, zero, zero, contact.sigmoid(), termination.sigmoid(), extension), memory + 1

    def select_memory(self, memory, index):
        return memory.index_select(0, index)

    def write_memory_rows(self, memory, index, rows):
        return memory.index_copy(0, index, rows)

    def where_memory(self, mask, new, old):
        return torch.where(mask, new, old)

    def losses(self, windows: Windows, settings: LossSettings, generator=None) -> _Terms:
        # teacher-forced one-step errors of the N targets (pairs M - 1 .. M + N - 2 predict entries M .. M + N - 1)
        states, actions = applied_action_pairs(windows.state, windows.action)
        M = self.history_horizon
        next_state, contact, _, _ = self._heads(states[:, M - 1 :], actions[:, M - 1 :])
        state_loss = (next_state - windows.state[:, M:]).square().sum(dim=-1).mean()
        contact_loss = nn.functional.binary_cross_entropy_with_logits(contact, windows.contact[:, M:])
        return _Terms(state_loss, contact_loss)


def _registry():
    plugin = types.ModuleType("tiny_architecture_plugin")

    @hookimpl
    def rwmspec_world_model_architectures():
        yield ArchitectureDef(name="last_step_mlp", description="one MLP", factory=f"{__name__}:LastStepMLP")

    plugin.rwmspec_world_model_architectures = rwmspec_world_model_architectures
    return build_registry([("tiny", plugin)], load_entry_points=False)


def _linear_system_buffer(num_envs: int = 8, steps: int = 60) -> ReplayBuffer:
    """Buffer layout (s_k, a_{k-1}) of s' = 0.9 s + B a; the contact flag is whether s'[0] > 0."""
    g = torch.Generator().manual_seed(0)
    b_matrix = 0.5 * torch.randn(S, A, generator=g)
    buffer = ReplayBuffer(num_envs, steps, S, A, C, 1)
    state, last_action = torch.randn(num_envs, S, generator=g), torch.zeros(num_envs, A)
    for _ in range(steps):
        buffer.add(state, last_action, (state[:, :1] > 0).float(), torch.zeros(num_envs, 1))
        last_action = torch.randn(num_envs, A, generator=g)
        state = 0.9 * state + last_action @ b_matrix.T
    return buffer


def test_a_model_outside_the_ensemble_is_trained_and_evaluated_through_the_protocol():
    plan = tiny_world_model_plan(
        architecture="last_step_mlp",
        state_dim=S,
        action_dim=A,
        contact_dim=C,
        history_horizon=3,
        forecast_horizon=2,
        train=WorldModelTrainSpec(mini_batch_size=32, num_mini_batches=4, learning_rate=1e-2),
    )
    torch.manual_seed(0)
    model = build_world_model(plan, registry=_registry())
    assert isinstance(model, LastStepMLP) and isinstance(model, WorldModel)
    buffer = _linear_system_buffer()
    g = torch.Generator().manual_seed(1)
    trajectories = buffer.trajectories(12, 4, g)
    before = evaluate_world_model(model, trajectories, noise_sigmas=(0.1,), generator=g)

    trainer = WorldModelTrainer(model, plan, None, "cpu")
    history = [trainer.update(buffer, g) for _ in range(30)]
    assert tuple(history[0]) == ("state_loss", "contact_loss", *UPDATE_KEYS)
    assert history[-1]["state_loss"] < history[0]["state_loss"] / 5

    after = evaluate_world_model(model, trajectories, noise_sigmas=(0.1,), generator=g)
    assert after.error < before.error / 2
    assert after.error_per_step.shape == (12 - plan.history_horizon,)
    assert math.isfinite(after.noised[0.1]) and after.contact is not None and after.termination is not None
    assert torch.all(after.rollout.epistemic[:, plan.history_horizon :] == 0)
