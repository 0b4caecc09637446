"""Episode starts of imagined envs: windows of the replay buffer, warmed up through the world model.

A new episode starts from one replay-buffer window of ``history_horizon`` M entries (entry k = (s_k, a_{k-1})): the
first M - 1 entries' (state, applied action) pairs warm the model's memory up, the last entry becomes the current
state, its ``system_action`` the last action and its contact labels the current contacts; so the first imagined
prediction has seen M (state, action) pairs, as in training. Quirk ``skip_imagination_context_warmup`` (upstream
Gen-2): the same last entry with an empty memory.

``SeedPool`` keeps P such starts *pre-warmed*, so that envs ending inside a step take them without the step waiting
for the host or changing shape: the k-th env to end since the last refill takes seed k (``exclusive_count``), so each
new episode still starts from its own uniformly drawn window. The ``imagine`` step refills the pool once per
iteration, after the world model's update (the warm-up memory depends on the weights); should more envs end before a
refill than the pool holds, seeds are used again (``refill`` reports how many were used and grows the pool).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from rwmspec_runtime.imagination.state import copy_into, flatten
from rwmspec_runtime.imagination.state_mapping import StateMapping
from rwmspec_runtime.world_model.protocol import Memory, WorldModel
from rwmspec_runtime.world_model.replay_buffer import ReplayBuffer, applied_action_pairs
from rwmspec_runtime.world_model.system_data import SystemNormalizer

#: probability above which a predicted or stored contact flag counts as set
CONTACT_THRESHOLD = 0.5
#: smallest seed pool
MIN_POOL = 64


@dataclass
class Seeds:
    """Episode starts, one row each: current normalized state, last raw action, contact flags, model memory."""

    state: torch.Tensor
    last_action: torch.Tensor
    contacts: dict[str, torch.Tensor]
    memory: Memory

    def tree(self) -> dict[str, Any]:
        return {"state": self.state, "last_action": self.last_action, "contacts": self.contacts, "memory": self.memory}


@torch.library.custom_op("rwmspec::exclusive_count", mutates_args=())
def exclusive_count(flags: torch.Tensor) -> torch.Tensor:
    """``[N]`` long: how many of ``flags[:i]`` are set, for each i (an exclusive prefix sum).

    A custom op so that ``torch.compile`` keeps it a kernel of its own: inductor fuses a scan with the gathers that
    consume it into one kernel whose grid the scan limits to a single block (a quarter of a millisecond per
    imagined step at 8192 envs on an H100, against microseconds for the scan alone).
    """
    taken = flags.to(torch.long)
    return torch.cumsum(taken, dim=0) - taken


@exclusive_count.register_fake
def _(flags: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(flags, dtype=torch.long)


class SeedPool:
    """Pre-warmed episode starts (see the module docstring).

    :param model: the world model (warm-up, memory rows).
    :param normalizer: the run's ``SystemNormalizer`` (raw last actions from the buffer's normalized ones).
    :param buffer: the replay buffer windows are drawn from.
    :param mapping: turns stored contact flags into contact groups.
    :param contact_widths: contact group -> number of bodies (the groups the imagined envs track).
    :param generator: the window-drawing random stream.
    :param warm_up_context: False for quirk ``skip_imagination_context_warmup``.
    :param size: the pool's size P.

    ``warm_up`` is the function that turns windows into memory (the model's ``warm_up``); a caller may put an
    equivalent in its place, e.g. a CUDA-graph replay of it for the pool's window shape (``benchmarks/imagination.py``).
    """

    def __init__(
        self,
        model: WorldModel,
        normalizer: SystemNormalizer,
        buffer: ReplayBuffer,
        mapping: StateMapping,
        contact_widths: dict[str, int],
        *,
        device: torch.device,
        generator: torch.Generator,
        warm_up_context: bool = True,
        size: int = MIN_POOL,
    ) -> None:
        self.model = model
        self.normalizer = normalizer
        self.buffer = buffer
        self.mapping = mapping
        self.contact_widths = dict(contact_widths)
        self.device = device
        self.generator = generator
        self.warm_up_context = warm_up_context
        self.warm_up = model.warm_up
        self.history_horizon = model.history_horizon
        self.generation = -1
        self.allocate(max(MIN_POOL, size))

    def allocate(self, size: int) -> None:
        """An empty pool of ``size`` seeds (zeros until ``refill``), as normal tensors."""
        self.size = size
        #: counts allocations: the pool's tensors are new ones after each (a CUDA graph of a step must be recaptured)
        self.generation += 1
        f32 = {"device": self.device, "dtype": torch.float32}
        with torch.inference_mode(False):
            self.seeds = Seeds(
                state=torch.zeros(size, self.model.state_dim, **f32),
                last_action=torch.zeros(size, self.model.action_dim, **f32),
                contacts={
                    g: torch.zeros(size, w, dtype=torch.bool, device=self.device)
                    for g, w in self.contact_widths.items()
                },
                memory=self.model.initial_memory(size),
            )

    def draw(self, count: int) -> Seeds:
        """``count`` seeds from windows drawn uniformly from the replay buffer."""
        M = self.history_horizon
        windows = self.buffer.sample_windows(count, M, self.generator)
        state = windows.state.to(self.device, torch.float32)
        action = windows.action.to(self.device, torch.float32)
        if self.warm_up_context and M > 1:
            memory = self.warm_up(*applied_action_pairs(state, action))
        else:
            memory = self.model.initial_memory(count)
        contacts = self.mapping.contacts(
            windows.contact[:, -1].to(self.device) > CONTACT_THRESHOLD,
            windows.termination[:, -1].to(self.device) > CONTACT_THRESHOLD,
        )
        return Seeds(
            state=state[:, -1],
            last_action=self.normalizer.denormalize_action(action[:, -1]),
            contacts={g: contacts[g] for g in self.contact_widths},
            memory=memory,
        )

    def refill(self, used: int) -> None:
        """Draw a fresh pool with the model's current weights, in place; a pool that ``used`` outran is doubled past
        that count first."""
        if used > self.size:
            self.allocate(2 * used)
        old, new = flatten(self.seeds.tree()), flatten(self.draw(self.size).tree())
        copy_into([old[k] for k in old], [new[k] for k in old])

    def take(self, index: torch.Tensor) -> Seeds:
        """The seeds at ``index`` (``[N]`` long positions in the pool)."""
        pool = self.seeds
        return Seeds(
            state=pool.state.index_select(0, index),
            last_action=pool.last_action.index_select(0, index),
            contacts={g: c.index_select(0, index) for g, c in pool.contacts.items()},
            memory=self.model.select_memory(pool.memory, index),
        )

    def tensors(self) -> dict[str, torch.Tensor]:
        """The pool's tensors by path (``"pool/state"``, ...)."""
        return flatten(self.seeds.tree(), "pool")
