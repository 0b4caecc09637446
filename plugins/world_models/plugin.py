"""Plugin ``world_models``: the built-in world-model base architectures (``gru``, ``lstm``, ``mlp``).

The records are data; the factories live in ``rwmspec_runtime.world_model.bases`` and are imported only when a
model is built, so listing architectures never imports torch. A third-party plugin adds a base the same way (see
docs/world_model.md, "Adding an architecture"): a factory ``build(input_dim, plan) -> WorldModelBase`` and an
``ArchitectureDef`` naming it.
"""

from __future__ import annotations

from rwmspec import hookimpl
from rwmspec.types import ArchitectureDef

_BASES = "rwmspec_runtime.world_model.bases"


@hookimpl
def rwmspec_world_model_architectures():
    yield ArchitectureDef(
        name="gru",
        description="GRU over the (state, action) sequence, one layer per base_hidden entry (equal sizes); "
        "stateful hidden state (upstream RWM default)",
        factory=f"{_BASES}:build_gru",
        recurrent=True,
    )
    yield ArchitectureDef(
        name="lstm",
        description="LSTM over the (state, action) sequence, one layer per base_hidden entry (equal sizes)",
        factory=f"{_BASES}:build_lstm",
        recurrent=True,
    )
    yield ArchitectureDef(
        name="mlp",
        description="ReLU MLP over the flattened window of the last history_horizon (state, action) pairs",
        factory=f"{_BASES}:build_mlp",
        recurrent=False,
    )
