"""``ObservationManager``: the plan's observation groups from the shared term functions of a ``StateView``.

Used by every consumer of observations: the embedded backend (all groups), the imagination env (the policy's groups
of imagined states) and the imagination's state mapping (``system_state`` of a view), so an observation is computed
one way everywhere.

Per group: the terms are concatenated in plan order (``compute_observation_group``), then, as Isaac Lab's
observation manager does per term, uniform noise ``U(-noise, noise)`` is added (only when the group's
``corruption`` is on), the result is clipped and finally scaled. Noise, clip bounds and scales are expanded once
into per-column vectors, so a group costs one random draw and three element-wise ops per step.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from tensordict import TensorDict

from rwmspec.manager import Registry
from rwmspec.plan import ObservationGroupPlan
from rwmspec_runtime.mdp.state import StateView
from rwmspec_runtime.mdp.terms import bind_term_functions, compute_observation_group


class _GroupAssembler:
    def __init__(self, group: ObservationGroupPlan, registry: Registry, device: torch.device) -> None:
        self.group = group
        self.functions = bind_term_functions(group.terms, registry, "observation")
        noise = torch.zeros(group.dim)
        low = torch.full((group.dim,), -torch.inf)
        high = torch.full((group.dim,), torch.inf)
        scale = torch.ones(group.dim)
        for term in group.terms:
            cols = slice(term.start, term.stop)
            if term.noise:
                noise[cols] = term.noise
            if term.clip is not None:
                low[cols], high[cols] = term.clip
            if term.scale is not None:
                scale[cols] = term.scale
        self.noise = noise.to(device) if group.corruption and bool(noise.any()) else None
        self.clip = (
            (low.to(device), high.to(device)) if bool(torch.isfinite(low).any() | torch.isfinite(high).any()) else None
        )
        self.scale = scale.to(device) if bool((scale != 1.0).any()) else None

    def __call__(self, view: StateView, generator: torch.Generator) -> torch.Tensor:
        obs = compute_observation_group(view, self.group, self.functions)
        if self.noise is not None:
            u = torch.rand(obs.shape, generator=generator, device=obs.device)
            obs = obs + (2.0 * u - 1.0) * self.noise
        if self.clip is not None:
            obs = torch.clamp(obs, self.clip[0], self.clip[1])
        if self.scale is not None:
            obs = obs * self.scale
        return obs


class ObservationManager:
    """Builds the ``TensorDict`` of all observation groups (``[N, dim]`` float32 each) from a ``StateView``."""

    def __init__(
        self,
        groups: dict[str, ObservationGroupPlan],
        registry: Registry,
        device: torch.device,
        generator: torch.Generator,
    ) -> None:
        self.groups = {name: _GroupAssembler(group, registry, device) for name, group in groups.items()}
        self.generator = generator
        self.device = device

    def compute(self, view: StateView, names: Iterable[str] | None = None) -> TensorDict:
        """Groups ``names`` (default: all, in plan order) of ``view``."""
        selected = list(self.groups) if names is None else list(names)
        data = {name: self.groups[name](view, self.generator) for name in selected}
        return TensorDict(data, batch_size=[view.num_envs], device=self.device)
