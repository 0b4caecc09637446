"""The world model's data: the env's ``system_*`` observation groups as normalized model tensors, and back.

The plan fixes the normalizer statistics (robot plugin values, spec overrides; rwm_method §3.6), so they are not
learned and not saved: a later stage gets the same numbers from its own plan, and the plan fingerprint guarantees
they match the ones the model was trained with. Normalization is ``(x - mean) / (std + 1e-8)`` as upstream.

Group -> stream: ``system_state`` -> state, ``system_action`` -> action, ``system_contact`` -> contact,
``system_termination`` -> termination, ``system_extension`` -> extension. Contacts and terminations are binary
labels and are never normalized.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from tensordict import TensorDict

if TYPE_CHECKING:
    from rwmspec.plan import Plan

#: observation group of each model stream
STREAM_GROUPS = {
    "state": "system_state",
    "action": "system_action",
    "contact": "system_contact",
    "termination": "system_termination",
    "extension": "system_extension",
}
_EPS = 1e-8


@dataclass
class SystemEntry:
    """One step of all N envs in model space, each ``[N, d]`` (None for a stream the plan does not have)."""

    state: torch.Tensor
    action: torch.Tensor
    contact: torch.Tensor | None
    termination: torch.Tensor | None
    extension: torch.Tensor | None


class SystemNormalizer:
    """Fixed affine normalizers of the state, action and extension streams, from the plan's system groups."""

    def __init__(self, plan: Plan, device: torch.device | str = "cpu") -> None:
        groups = plan.observations
        missing = [g for g in ("system_state", "system_action") if g not in groups]
        if missing:
            raise ValueError(
                f"{plan.spec_file}: the world model needs the observation groups {missing}; add "
                f"[observations.{missing[0]}] (see specs/base/anymal_d_flat_world_model.toml)"
            )
        self.device = torch.device(device)
        self.streams = {stream: group for stream, group in STREAM_GROUPS.items() if group in groups}

        def stats(group: str) -> tuple[torch.Tensor, torch.Tensor]:
            g = groups[group]
            return (
                torch.tensor(g.mean, dtype=torch.float32, device=self.device),
                torch.tensor(g.std, dtype=torch.float32, device=self.device) + _EPS,
            )

        self.state_mean, self.state_std = stats("system_state")
        self.action_mean, self.action_std = stats("system_action")
        self.extension_mean, self.extension_std = (
            stats("system_extension") if "system_extension" in groups else (None, None)
        )

    def normalize_state(self, state: torch.Tensor) -> torch.Tensor:
        return (state - self.state_mean) / self.state_std

    def denormalize_state(self, state: torch.Tensor) -> torch.Tensor:
        return state * self.state_std + self.state_mean

    def normalize_action(self, action: torch.Tensor) -> torch.Tensor:
        return (action - self.action_mean) / self.action_std

    def denormalize_action(self, action: torch.Tensor) -> torch.Tensor:
        return action * self.action_std + self.action_mean

    def entry(self, obs: TensorDict) -> SystemEntry:
        """The model streams of one step of observation groups (``obs`` holds at least the plan's system groups)."""

        def group(stream: str) -> torch.Tensor | None:
            name = self.streams.get(stream)
            return None if name is None else obs[name].to(self.device, torch.float32)

        extension = group("extension")
        if extension is not None:
            extension = (extension - self.extension_mean) / self.extension_std
        return SystemEntry(
            state=self.normalize_state(group("state")),
            action=self.normalize_action(group("action")),
            contact=group("contact"),
            termination=group("termination"),
            extension=extension,
        )


def observed_system_groups(
    next_obs: TensorDict, dones: torch.Tensor, extras: dict[str, Any], groups: tuple[str, ...]
) -> TensorDict:
    """The system groups each env observed at the end of a step: the pre-reset terminal observation where the
    episode ended (backends put it in ``extras["terminal_observations"]``), the new observation elsewhere."""
    current = next_obs.select(*groups)
    terminal = extras.get("terminal_observations")
    if terminal is None or not bool(dones.any()):
        return current
    done = dones.to(torch.bool).reshape(-1)
    return TensorDict(
        {
            g: torch.where(done.unsqueeze(-1).to(current[g].device), terminal[g].to(current[g].device), current[g])
            for g in groups
        },
        batch_size=current.batch_size,
    )
