"""Typed records that plugins return from the registration hooks (see ``rwmspec.hookspecs``).

Records are data. Anything heavy (a simulator, torch) is referenced by a ``"module:attr"`` string that only the
backend or the runtime resolves, so listing plugins and validating specs never imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import attrs

TermCategory = Literal["observation", "reward", "termination", "event", "command", "action"]


def _name(value: str) -> str:
    """Names are lower-case identifiers; plugins that break this are reported, not silently renamed."""
    if not isinstance(value, str) or not value or value != value.strip().lower() or " " in value:
        raise ValueError(f"invalid plugin record name {value!r}: use a non-empty lower-case name without spaces")
    return value


@attrs.frozen(kw_only=True)
class StateBlock:
    """A named block of the robot's state vector, with its normalizer statistics and plot labels."""

    name: str = attrs.field(converter=_name)
    dim: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    labels: tuple[str, ...] = ()
    description: str = ""

    def __attrs_post_init__(self) -> None:
        if len(self.mean) != self.dim or len(self.std) != self.dim:
            raise ValueError(f"state block {self.name!r}: mean/std need {self.dim} values")


@attrs.frozen(kw_only=True)
class ContactGroup:
    """A group of bodies whose contacts the backend reports as binary flags (force norm over a threshold)."""

    name: str = attrs.field(converter=_name)
    bodies: tuple[str, ...]
    description: str = ""


@attrs.frozen(kw_only=True)
class ActuatorDef:
    """Joint-space PD actuator with torque saturation (Isaac Lab's DCMotor / IdealPD semantics)."""

    stiffness: float
    damping: float
    effort_limit: float
    saturation_effort: float | None = None
    velocity_limit: float | None = None


@attrs.frozen(kw_only=True)
class RobotDef:
    """A robot: joints, default pose, actuation, state blocks and contact groups, plus backend assets."""

    name: str = attrs.field(converter=_name)
    description: str
    joint_names: tuple[str, ...]
    default_joint_pos: tuple[float, ...]
    actuator: ActuatorDef
    state_blocks: tuple[StateBlock, ...]
    contact_groups: tuple[ContactGroup, ...]
    base_body: str
    init_base_height: float
    soft_joint_pos_limit_factor: float = 0.95
    joint_pos_limits: tuple[tuple[float, float], ...] = ()
    #: ``"package:relative/path.xml"`` of an MJCF model for the embedded backend.
    mjcf: str | None = None
    #: ``"module:attr"`` returning an Isaac Lab ``ArticulationCfg`` (imported by the isaaclab backend only).
    isaaclab_articulation: str | None = None
    #: attrs class of ``[robot.options]``; None accepts no options.
    options_type: type | None = None

    def state_block(self, name: str) -> StateBlock | None:
        return next((b for b in self.state_blocks if b.name == name), None)

    def contact_group(self, name: str) -> ContactGroup | None:
        return next((g for g in self.contact_groups if g.name == name), None)

    @property
    def soft_joint_pos_limits(self) -> tuple[tuple[float, float], ...]:
        """Per-joint soft limits: the hard range shrunk about its middle by ``soft_joint_pos_limit_factor`` (Isaac
        Lab's definition, which ``dof_pos_limits`` penalises); empty without hard limits."""
        soft = []
        for low, high in self.joint_pos_limits:
            middle, half = 0.5 * (low + high), 0.5 * (high - low) * self.soft_joint_pos_limit_factor
            soft.append((middle - half, middle + half))
        return tuple(soft)


@attrs.frozen(kw_only=True)
class TermKind:
    """A kind of MDP term (observation, reward, ...) with a typed params class and its implementations."""

    name: str = attrs.field(converter=_name)
    category: TermCategory
    description: str
    #: attrs class the flat table keys are structured into; None means the kind takes no params.
    params_type: type | None = None
    #: ``"module:attr"`` of the torch implementation used by the embedded backend and imagination.
    function: str | None = None
    #: ``"module:attr"`` of the Isaac Lab term function (or class) the isaaclab backend binds.
    isaaclab: str | None = None
    #: observation width: an int, or a callable ``(params, robot: RobotDef) -> int``.
    dim: int | Callable[[Any, RobotDef], int] | None = None


@attrs.frozen(kw_only=True)
class BackendDef:
    """A simulator backend: compiles a Plan into its own config objects and makes environments from them."""

    name: str = attrs.field(converter=_name)
    description: str
    #: ``"module:attr"`` of ``compile(plan, registry) -> Artifacts``.
    compile: str
    #: ``"module:attr"`` of ``make_env(plan, registry, *, device, num_envs=None) -> VecEnv`` (None: compile only).
    make_env: str | None = None
    #: attrs class of ``[backend.options]``.
    options_type: type | None = None
    #: Python modules the backend needs; `rwmspec list backends` reports which are missing.
    requires: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class ArchitectureDef:
    """A world-model base architecture (the part before the ensemble heads)."""

    name: str = attrs.field(converter=_name)
    description: str
    #: ``"module:attr"`` of ``build(input_dim, plan_world_model) -> torch.nn.Module`` (a base, see runtime docs).
    factory: str
    recurrent: bool
    options_type: type | None = None


@attrs.frozen(kw_only=True)
class CheckDef:
    """An extra semantic check run by `rwmspec validate` after the built-in ones."""

    name: str = attrs.field(converter=_name)
    description: str
    #: ``check(spec, registry) -> Iterable[Diagnostic]``; light imports only.
    function: Callable[..., Iterable[Any]]


@attrs.frozen(kw_only=True)
class Artifacts:
    """What a backend's compile step produced: named objects, plus readable text dumps for `rwmspec compile`."""

    backend: str
    objects: dict[str, Any] = attrs.field(factory=dict)
    dumps: dict[str, str] = attrs.field(factory=dict)
