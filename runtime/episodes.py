"""Episode bookkeeping of the real envs: returns and lengths of finished episodes, and the env's log values.

Mirrors what rsl-rl-lib's logger reports (``Train/mean_reward`` over the last 100 finished episodes, env
``extras["log"]`` values averaged over the iteration) without tying the runtime to that logger.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import torch


class EpisodeStats:
    """Running per-env return and length; a window of finished episodes; this iteration's env log values."""

    def __init__(self, num_envs: int, device: str | torch.device, window: int = 100) -> None:
        self.returns = torch.zeros(num_envs, device=device)
        self.lengths = torch.zeros(num_envs, device=device)
        self.finished_returns: deque[float] = deque(maxlen=window)
        self.finished_lengths: deque[float] = deque(maxlen=window)
        self._log: dict[str, list[torch.Tensor]] = {}

    def record(self, rewards: torch.Tensor, dones: torch.Tensor, extras: Mapping[str, Any]) -> None:
        """Add one env step. ``rewards``: [N], ``dones``: [N] (bool or 0/1)."""
        self.returns += rewards
        self.lengths += 1
        done = dones.bool()
        if done.any():
            self.finished_returns.extend(self.returns[done].tolist())
            self.finished_lengths.extend(self.lengths[done].tolist())
            self.returns[done] = 0.0
            self.lengths[done] = 0.0
        for key, value in (extras.get("episode") or extras.get("log") or {}).items():
            tensor = torch.as_tensor(value, dtype=torch.float32).detach().cpu().reshape(-1)
            self._log.setdefault(key, []).append(tensor)

    def summary(self) -> dict[str, float]:
        """Metrics of the iteration (TensorBoard tags) and a reset of the per-iteration log values.

        Env log keys containing a ``/`` keep their name (``Episode_Reward/<term>``); others get ``Episode/``.
        """
        out: dict[str, float] = {}
        if self.finished_returns:
            out["Train/mean_reward"] = sum(self.finished_returns) / len(self.finished_returns)
            out["Train/mean_episode_length"] = sum(self.finished_lengths) / len(self.finished_lengths)
        for key, values in self._log.items():
            out[key if "/" in key else f"Episode/{key}"] = torch.cat(values).mean().item()
        self._log.clear()
        return out
