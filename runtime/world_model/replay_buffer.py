"""The world model's replay buffer: per-env ring buffers of normalized system_* observations (rwm_method §3.4).

Every real env step appends one entry per env (all envs at once, so one write pointer serves all rings). Entry k of
an env holds what the env observed at step k: ``state`` s_k, ``action`` = the ``system_action`` group, which is the
*previous* action a_{k-1} (the ``last_action`` term), and the contact/termination/extension labels of s_k. The model
pairs s_k with the action applied in it, a_k, which is the *next* entry's ``action``:
``applied_action_pairs`` does that shift in one place.

Episode boundaries are explicit: ``done[k]`` says s_k is the last state of its episode (the caller passes the
*pre-reset* terminal observation there; the next entry starts the new episode) and ``time_out[k]`` says the end was
a time-out. A training window of length L must not have a boundary inside its first L - 1 entries (its last entry
may be a terminal state: that is how the termination head sees terminations) and must not straddle the write
pointer, where the oldest and the newest data meet.

Quirk ``replay_windows_cross_episodes`` (upstream): only terminations (``done and not time_out``) break windows, and
windows are cut from the raw ring slots 0..filled-1, so they may straddle the write pointer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Windows:
    """Sampled windows, each ``[B, L, ·]`` in buffer layout (``action[:, k]`` is a_{k-1})."""

    state: torch.Tensor
    action: torch.Tensor
    contact: torch.Tensor
    termination: torch.Tensor
    extension: torch.Tensor
    env_ids: torch.Tensor  #: [B] the env each window came from
    slots: torch.Tensor  #: [B, L] ring slots of its entries

    @property
    def length(self) -> int:
        return self.state.shape[1]

    def __len__(self) -> int:
        return self.state.shape[0]


def applied_action_pairs(state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Model inputs from buffer-layout windows: ``(state[:, :-1], action[:, 1:])``, i.e. pairs (s_t, a_t).

    Alignment: buffer entry k holds (s_k, a_{k-1}) because ``system_action`` is the last action. The action applied
    in s_k is therefore entry k+1's, and the pair (s_t, a_t) predicts ``state[:, t + 1]``. A window of length L
    gives L - 1 pairs.
    """
    return state[:, :-1], action[:, 1:]


def _sample_device(generator: torch.Generator | None, fallback: torch.device) -> torch.device:
    return generator.device if generator is not None else fallback


class ReplayBuffer:
    """Per-env ring buffers of ``capacity`` steps.

    :param windows_cross_episodes: the upstream quirk (see the module docstring).
    """

    def __init__(
        self,
        num_envs: int,
        capacity: int,
        state_dim: int,
        action_dim: int,
        contact_dim: int = 0,
        termination_dim: int = 0,
        extension_dim: int = 0,
        device: torch.device | str = "cpu",
        *,
        windows_cross_episodes: bool = False,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if num_envs < 1 or capacity < 2:
            raise ValueError(
                f"ReplayBuffer needs num_envs >= 1 and capacity >= 2 (world_model.train."
                f"replay_buffer_size), got {num_envs} and {capacity}"
            )
        self.num_envs = num_envs
        self.capacity = capacity
        self.device = torch.device(device)
        self.windows_cross_episodes = windows_cross_episodes
        dims = {
            "state": state_dim,
            "action": action_dim,
            "contact": contact_dim,
            "termination": termination_dim,
            "extension": extension_dim,
        }
        self.dims = dims
        self._data = {k: torch.zeros(num_envs, capacity, d, device=self.device, dtype=dtype) for k, d in dims.items()}
        self._done = torch.zeros(num_envs, capacity, dtype=torch.bool, device=self.device)
        self._time_out = torch.zeros(num_envs, capacity, dtype=torch.bool, device=self.device)
        self._ptr = 0  # next slot to write
        self._filled = 0  # slots holding data (<= capacity)
        self._version = 0  # bumps on every add; keys the cache of valid starts
        self._valid_cache: tuple[tuple[int, int], torch.Tensor] | None = None

    # -- writing ---------------------------------------------------------------------------------------------------
    def add(
        self,
        state: torch.Tensor,
        action: torch.Tensor,
        contact: torch.Tensor | None = None,
        termination: torch.Tensor | None = None,
        extension: torch.Tensor | None = None,
        done: torch.Tensor | None = None,
        time_out: torch.Tensor | None = None,
    ) -> None:
        """Append one step for all envs (each ``[num_envs, dim]``, normalized; ``done``/``time_out`` ``[num_envs]``).

        For envs with ``done`` pass the pre-reset terminal observation: the next ``add`` starts their new episode.
        ``time_out`` marks which of the done envs ended by time-out (it is ignored where ``done`` is false).
        """
        values = {
            "state": state,
            "action": action,
            "contact": contact,
            "termination": termination,
            "extension": extension,
        }
        for key, value in values.items():
            dim = self.dims[key]
            if value is None:
                if dim > 0:
                    raise ValueError(f"ReplayBuffer.add: {key} is missing but the buffer stores {dim} dims of it")
                continue
            if value.shape != (self.num_envs, dim):
                raise ValueError(
                    f"ReplayBuffer.add: {key} has shape {tuple(value.shape)}, expected ({self.num_envs}, {dim})"
                )
            self._data[key][:, self._ptr] = value.to(device=self.device, dtype=self._data[key].dtype)
        done_now = (
            torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
            if done is None
            else done.to(device=self.device, dtype=torch.bool).reshape(self.num_envs)
        )
        time_out_now = (
            torch.zeros_like(done_now)
            if time_out is None
            else time_out.to(device=self.device, dtype=torch.bool).reshape(self.num_envs)
        )
        self._done[:, self._ptr] = done_now
        self._time_out[:, self._ptr] = time_out_now & done_now
        self._ptr = (self._ptr + 1) % self.capacity
        self._filled = min(self._filled + 1, self.capacity)
        self._version += 1

    # -- sizes -----------------------------------------------------------------------------------------------------
    @property
    def num_steps(self) -> int:
        """Steps held per env (<= capacity)."""
        return self._filled

    @property
    def write_pointer(self) -> int:
        return self._ptr

    def _oldest_slot(self) -> int:
        return self._ptr if self._filled == self.capacity else 0

    def _valid_starts(self, length: int) -> torch.Tensor:
        """Flat ids ``env * num_starts + start`` of the valid windows (cached until the next add)."""
        if length < 1:
            raise ValueError(f"window length must be >= 1, got {length}")
        key = (length, self._version)
        if self._valid_cache is not None and self._valid_cache[0] == key:
            return self._valid_cache[1]
        num_starts = self._filled - length + 1
        if num_starts <= 0:
            flat = torch.zeros(0, dtype=torch.long, device=self.device)
        else:
            if self.windows_cross_episodes:
                # upstream: raw slot order, terminations only
                breaks = (self._done & ~self._time_out)[:, : self._filled]
            else:
                # chronological order from the oldest entry: a window never crosses the write pointer
                order = (self._oldest_slot() + torch.arange(self._filled, device=self.device)) % self.capacity
                breaks = self._done[:, order]
            # boundaries inside the first length - 1 entries of the window starting at each position
            cum = torch.nn.functional.pad(breaks.to(torch.int32).cumsum(dim=1), (1, 0))
            inside = cum[:, length - 1 : length - 1 + num_starts] - cum[:, :num_starts]
            flat = (inside == 0).reshape(-1).nonzero().squeeze(-1)
        self._valid_cache = (key, flat)
        return flat

    def num_valid(self, length: int) -> int:
        """Number of valid (env, start) windows of ``length`` entries."""
        return int(self._valid_starts(length).numel())

    # -- reading ---------------------------------------------------------------------------------------------------
    def _gather(self, flat: torch.Tensor, length: int) -> Windows:
        num_starts = self._filled - length + 1
        env = flat // num_starts
        start = flat % num_starts
        base = 0 if self.windows_cross_episodes else self._oldest_slot()
        slots = (base + start.unsqueeze(1) + torch.arange(length, device=self.device)) % self.capacity
        rows = env.unsqueeze(1)
        data = {k: v[rows, slots] for k, v in self._data.items()}
        return Windows(**data, env_ids=env, slots=slots)

    def _require(self, length: int) -> torch.Tensor:
        flat = self._valid_starts(length)
        if flat.numel() == 0:
            raise ValueError(
                f"the replay buffer has no window of {length} steps without an episode boundary "
                f"({self._filled} steps held per env): collect more steps before training or "
                f"evaluating, or shorten world_model.history_horizon + forecast_horizon / "
                f"world_model.train.eval_trajectory_length"
            )
        return flat

    def sample_windows(self, batch_size: int, length: int, generator: torch.Generator | None = None) -> Windows:
        """``batch_size`` windows of ``length`` entries, uniform over valid (env, start) pairs, with replacement."""
        flat = self._require(length)
        pick = torch.randint(
            flat.numel(), (batch_size,), generator=generator, device=_sample_device(generator, self.device)
        )
        return self._gather(flat[pick.to(self.device)], length)

    def trajectories(self, length: int, count: int, generator: torch.Generator | None = None) -> Windows:
        """Up to ``count`` distinct windows of ``length`` entries for evaluation, sampled without replacement."""
        flat = self._require(length)
        order = torch.randperm(flat.numel(), generator=generator, device=_sample_device(generator, self.device))
        return self._gather(flat[order[:count].to(self.device)], length)

    def termination_windows(self, length: int, count: int, generator: torch.Generator | None = None) -> Windows | None:
        """Up to ``count`` distinct valid windows of ``length`` entries whose last entry is a termination (done and
        not a time-out: a fall), for scoring the termination head; None when the buffer holds none."""
        flat = self._valid_starts(length)
        if flat.numel() == 0:
            return None
        num_starts = self._filled - length + 1
        env, start = flat // num_starts, flat % num_starts
        base = 0 if self.windows_cross_episodes else self._oldest_slot()
        last = (base + start + length - 1) % self.capacity
        falls = flat[self._done[env, last] & ~self._time_out[env, last]]
        if falls.numel() == 0:
            return None
        order = torch.randperm(falls.numel(), generator=generator, device=_sample_device(generator, self.device))
        return self._gather(falls[order[:count].to(self.device)], length)

    # -- checkpoints -----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in self._data.items()},
            "done": self._done,
            "time_out": self._time_out,
            "ptr": self._ptr,
            "filled": self._filled,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in self._data:
            if state[key].shape != self._data[key].shape:
                raise ValueError(
                    f"replay buffer checkpoint: {key} has shape {tuple(state[key].shape)}, this buffer "
                    f"{tuple(self._data[key].shape)} (num_envs, replay_buffer_size or dims changed)"
                )
            self._data[key].copy_(state[key])
        self._done.copy_(state["done"])
        self._time_out.copy_(state["time_out"])
        self._ptr = int(state["ptr"])
        self._filled = int(state["filled"])
        self._version += 1
