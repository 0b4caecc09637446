"""Tiny world models and their data, shared by the world-model and imagination tests."""

from __future__ import annotations

import torch

from rwmspec.plan import WorldModelPlan
from rwmspec.spec.model import LossWeightsSpec, WorldModelTrainSpec
from rwmspec_plugins.world_models.ensemble import SystemDynamicsEnsemble
from rwmspec_runtime.world_model.replay_buffer import Windows
from rwmspec_runtime.world_model.system import WorldModelSystem

#: the tiny world model's default sizes: state, action, contact, termination; history and forecast horizons
TINY_STATE, TINY_ACTION, TINY_CONTACT, TINY_TERMINATION, TINY_HISTORY, TINY_FORECAST = 6, 2, 2, 1, 4, 3


def tiny_world_model_plan(**overrides) -> WorldModelPlan:
    """A world-model plan of 16-unit layers (a GRU ensemble of 3 by default) at the ``TINY_*`` sizes."""
    fields = dict(
        architecture="gru",
        base_hidden=(16, 16),
        state_mean_hidden=(16,),
        state_logstd_hidden=(16,),
        auxiliary_hidden=(16,),
        ensemble_size=3,
        history_horizon=TINY_HISTORY,
        forecast_horizon=TINY_FORECAST,
        separate_auxiliary_base=True,
        residual=True,
        logstd_bounds_init=(-5.0, -4.0),
        state_dim=TINY_STATE,
        action_dim=TINY_ACTION,
        contact_dim=TINY_CONTACT,
        termination_dim=TINY_TERMINATION,
        extension_dim=0,
        loss_weights=LossWeightsSpec(),
        train=WorldModelTrainSpec(mini_batch_size=16, num_mini_batches=2),
    )
    fields.update(overrides)
    return WorldModelPlan(**fields)


def tiny_world_model(seed: int = 0, **overrides) -> SystemDynamicsEnsemble:
    """The ensemble of ``tiny_world_model_plan(**overrides)``, initialised from ``seed``."""
    torch.manual_seed(seed)
    return SystemDynamicsEnsemble(tiny_world_model_plan(**overrides))


def random_windows(batch: int, length: int, seed: int = 1, termination: float = 0.1, extension_dim: int = 0) -> Windows:
    """Random windows at the ``TINY_*`` sizes; each termination target is positive with probability ``termination``."""
    g = torch.Generator().manual_seed(seed)
    return Windows(
        state=torch.randn(batch, length, TINY_STATE, generator=g),
        action=torch.randn(batch, length, TINY_ACTION, generator=g),
        contact=(torch.rand(batch, length, TINY_CONTACT, generator=g) > 0.5).float(),
        termination=(torch.rand(batch, length, TINY_TERMINATION, generator=g) < termination).float(),
        extension=torch.randn(batch, length, extension_dim, generator=g),
        env_ids=torch.zeros(batch, dtype=torch.long),
        slots=torch.zeros(batch, length, dtype=torch.long),
    )


def system_with_smooth_data(
    plan, *, buffer_envs: int = 3, steps: int = 12, seed: int = 0, device: str = "cpu"
) -> WorldModelSystem:
    """A WorldModelSystem whose replay buffer holds smooth random trajectories (no termination)."""
    torch.manual_seed(seed)
    system = WorldModelSystem(plan, buffer_envs, device)
    wm = plan.world_model
    g = torch.Generator(device=device).manual_seed(seed)
    state = torch.randn(buffer_envs, wm.state_dim, generator=g, device=device)
    for _ in range(steps):
        contact = (torch.rand(buffer_envs, wm.contact_dim, generator=g, device=device) > 0.5).float()
        system.buffer.add(
            state,
            torch.randn(buffer_envs, wm.action_dim, generator=g, device=device),
            contact,
            torch.zeros(buffer_envs, wm.termination_dim, device=device),
        )
        state = 0.9 * state + 0.2 * torch.randn(state.shape, generator=g, device=device)
    return system
