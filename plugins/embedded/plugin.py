"""Backend plugin ``embedded``: MuJoCo's C engine on CPU threads, N envs stepped in one batch per control step.

Only light imports here: the compile step and the env live in ``compile.py`` and ``env.py`` and are referenced by
``"module:attr"`` strings, so `rwmspec validate` never imports mujoco or torch.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from rwmspec import hookimpl
from rwmspec.spec.model import doc
from rwmspec.types import BackendDef, Requirement, TermBinding


@attrs.define(kw_only=True)
class EmbeddedOptions:
    """``[backend.options]`` of the embedded backend."""

    num_threads: int = doc(
        "Physics worker threads of the `mujoco.rollout` pool; 0 uses every CPU core this process may run on.", 0
    )
    chunk_size: int = doc(
        "Envs per thread-pool task; 0 picks `ceil(num_envs / (4 * num_threads))` (large chunks "
        "keep the pool's scheduling cost low, 4 per thread balance uneven contact loads).",
        0,
    )
    solver_iterations: int | None = doc(
        "Override of the MJCF's `<option iterations>` (constraint solver iterations); unset keeps the model's value.",
        None,
    )
    ls_iterations: int | None = doc(
        "Override of the MJCF's `<option ls_iterations>` (line-search iterations); unset keeps the model's value.", None
    )
    contact_history: int = doc(
        "Physics substeps over which a body's contact force maximum is taken before the "
        "threshold test (Isaac Lab's contact sensor `history_length`); at most the "
        "decimation.",
        3,
    )
    model_variants: int = doc(
        "Distinct randomised MjModels when start-up events change the model: 0 gives every env "
        "its own (Isaac Lab semantics, about 170 kB each); K > 0 makes K variants shared "
        "round-robin, to save memory with many envs.",
        0,
    )

    def check(self) -> Iterator[tuple[str, str]]:
        """Yields ``(field, problem)`` for well-typed but invalid values."""
        if self.num_threads < 0:
            yield "num_threads", f"must be >= 0 (0 = all cores), got {self.num_threads}"
        if self.chunk_size < 0:
            yield "chunk_size", f"must be >= 0 (0 = automatic), got {self.chunk_size}"
        for name in ("solver_iterations", "ls_iterations"):
            value = getattr(self, name)
            if value is not None and value < 1:
                yield name, f"must be >= 1 when set, got {value}"
        if self.model_variants < 0:
            yield "model_variants", f"must be >= 0 (0 = one model per env), got {self.model_variants}"
        if self.contact_history < 1:
            yield "contact_history", f"must be >= 1, got {self.contact_history}"


EMBEDDED = BackendDef(
    name="embedded",
    description="MuJoCo (C engine) on CPU threads via mujoco.rollout; MDP logic vectorised in torch. Runs anywhere.",
    compile="rwmspec_plugins.embedded.compile:compile_embedded",
    make_env="rwmspec_plugins.embedded.factory:make_embedded_env",
    options_type=EmbeddedOptions,
    requires=(
        Requirement(module="mujoco", install="pip install -e '.[runtime]'"),
        Requirement(module="torch", install="pip install torch==2.13.0"),
    ),
)


#: the backend's own event terms (``events.py``) by kind: the class and the mode it runs in. The push is the locomotion
#: plugin's backend-neutral term (``compile.NEUTRAL_EVENT_MODES``).
EVENT_TERMS = {
    "randomize_rigid_body_material": ("RandomizeRigidBodyMaterial", "startup"),
    "randomize_rigid_body_mass": ("RandomizeRigidBodyMass", "startup"),
    "randomize_rigid_body_com": ("RandomizeRigidBodyCom", "startup"),
    "reset_root_state_uniform": ("ResetRootStateUniform", "reset"),
    "reset_joints_by_scale": ("ResetJointsByScale", "reset"),
    "apply_external_force_torque": ("ApplyExternalForceTorque", "reset"),
}


@hookimpl
def rwmspec_term_bindings():
    for kind, (cls, _mode) in EVENT_TERMS.items():
        yield TermBinding(backend="embedded", category="event", kind=kind, ref=f"rwmspec_plugins.embedded.events:{cls}")


@hookimpl
def rwmspec_backends():
    yield EMBEDDED
