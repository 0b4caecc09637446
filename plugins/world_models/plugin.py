"""Plugin ``world_models``: the built-in world model, ``SystemDynamicsEnsemble``, on ``gru``, ``lstm`` or ``mlp`` bases.

The records are data; the factories live in ``rwmspec_plugins.world_models.ensemble`` and are imported only when a
model is built, so listing architectures never imports torch. A third-party plugin adds an architecture the same way
(see docs/world_model.md, "Adding an architecture"): a factory ``build(plan, *, quirks) -> WorldModel`` and an
``ArchitectureDef`` naming it.
"""

from __future__ import annotations

from rwmspec import hookimpl
from rwmspec.types import ArchitectureDef

_ENSEMBLE = "rwmspec_plugins.world_models.ensemble"


@hookimpl
def rwmspec_world_model_architectures():
    yield ArchitectureDef(
        name="gru",
        description="ensemble on a GRU base over the (state, action) sequence, one layer per base_hidden entry "
        "(equal sizes); stateful hidden state (upstream RWM default)",
        factory=f"{_ENSEMBLE}:build_gru",
        recurrent=True,
    )
    yield ArchitectureDef(
        name="lstm",
        description="ensemble on an LSTM base over the (state, action) sequence, one layer per base_hidden entry "
        "(equal sizes)",
        factory=f"{_ENSEMBLE}:build_lstm",
        recurrent=True,
    )
    yield ArchitectureDef(
        name="mlp",
        description="ensemble on a ReLU MLP base over the flattened window of the last history_horizon "
        "(state, action) pairs",
        factory=f"{_ENSEMBLE}:build_mlp",
        recurrent=False,
    )
