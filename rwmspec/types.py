"""Typed records that plugins return from the registration hooks (see ``rwmspec.hookspecs``).

Records are data. Anything heavy (a simulator, torch) is referenced by a ``"module:attr"`` string that only the
backend or the runtime resolves, so listing plugins and validating specs never imports it.

No record names a backend: what is backend-specific (a robot's model file, a term's binding to a simulator's own
term function) is a record of its own keyed by the backend's name (``RobotAsset``, ``TermBinding``), supplied by
whichever plugin knows it: the robot's plugin, the backend's plugin, or a third party that bridges the two.
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
    #: attrs class of ``[robot.options]``; None accepts no options.
    options_type: type | None = None
    #: ``apply_options(robot, options) -> RobotDef``: the robot with its ``[robot.options]`` (an ``options_type``
    #: instance) applied, e.g. other actuator gains. Light and pure: the compiler calls it, and every backend then
    #: reads the plan's resolved robot, never the option names. None: options change nothing here.
    apply_options: Callable[[RobotDef, Any], RobotDef] | None = None

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
class RobotAsset:
    """What one backend needs to simulate one robot, e.g. an MJCF file or an Isaac Lab articulation factory."""

    robot: str = attrs.field(converter=_name)
    backend: str = attrs.field(converter=_name)
    #: backend-defined reference: ``"package:relative/file.xml"`` for a file shipped in a package, or
    #: ``"module:attr"`` for an object factory; only the backend resolves it.
    ref: str
    description: str = ""


@attrs.frozen(kw_only=True)
class ViewField:
    """One named quantity of the state view that term functions read (``rwmspec_runtime.mdp.StateView``).

    Tasks and robots declare the fields their terms read; a backend fills every declared field it can, and the
    imagination env fills those the world model predicts (``TermKind.state_field``).
    """

    name: str = attrs.field(converter=_name)
    #: columns per env: a number, ``"joints"`` (one per robot joint) or ``"actions"`` (one per action dim)
    width: int | Literal["joints", "actions"]
    description: str = ""


@attrs.frozen(kw_only=True)
class TermKind:
    """A kind of MDP term (observation, reward, ...) with a typed params class and its implementations."""

    name: str = attrs.field(converter=_name)
    category: TermCategory
    description: str
    #: attrs class the flat table keys are structured into; None means the kind takes no params.
    params_type: type | None = None
    #: ``"module:attr"`` of the torch implementation (the embedded backend and imagination call it with a
    #: ``StateView``); backends that bind terms of their own find them as ``TermBinding`` records.
    function: str | None = None
    #: observation width: an int, or a callable ``(params, robot: RobotDef) -> int``.
    dim: int | Callable[[Any, RobotDef], int] | None = None
    #: view fields the function reads; `rwmspec validate` checks that imagination provides them.
    reads: tuple[str, ...] = ()
    #: observations that reproduce one view field exactly (``system_state`` terms): the field, so that imagination
    #: can turn predicted columns back into it with ``inverse``.
    state_field: str | None = None
    #: ``"module:attr"`` of ``inverse(columns [N, d], defaults) -> field value [N, d]``, undoing ``function``.
    inverse: str | None = None
    #: binary observations of a robot contact group (``system_contact`` / ``system_termination`` terms): the
    #: param that names the group, so imagination can turn predicted flags back into contacts.
    contact_group_param: str | None = None


@attrs.frozen(kw_only=True)
class TermBinding:
    """How one backend implements a term kind with a term of its own (e.g. an Isaac Lab ``mdp`` function)."""

    backend: str = attrs.field(converter=_name)
    category: TermCategory
    kind: str = attrs.field(converter=_name)
    #: ``"module:attr"`` of the backend's term function, class or config class.
    ref: str


@attrs.frozen(kw_only=True)
class Requirement:
    """A Python module a backend needs, and how to install it."""

    module: str
    install: str


@attrs.frozen(kw_only=True)
class BackendDef:
    """A simulator backend: compiles a Plan into its own config objects and makes environments from them."""

    name: str = attrs.field(converter=_name)
    description: str
    #: ``"module:attr"`` of ``compile(plan, registry) -> Artifacts``.
    compile: str
    #: ``"module:attr"`` of ``make_env(plan, artifacts, registry, *, device, num_envs=None) -> VecEnv``: the env built
    #: from what ``compile`` produced (None: the backend only compiles).
    make_env: str | None = None
    #: attrs class of ``[backend.options]``.
    options_type: type | None = None
    #: Python modules the backend needs; `rwmspec list backends` and `rwmspec run` (RWM401) report missing ones
    #: with their install command.
    requires: tuple[Requirement, ...] = ()


@attrs.frozen(kw_only=True)
class ArchitectureDef:
    """A world-model architecture: a whole dynamics model behind ``rwmspec_runtime.world_model.WorldModel``."""

    name: str = attrs.field(converter=_name)
    description: str
    #: ``"module:attr"`` of ``build(plan: WorldModelPlan, *, quirks) -> WorldModel`` (a ``torch.nn.Module``).
    factory: str
    #: recurrent architectures need one size for every ``base_hidden`` layer (RWM210)
    recurrent: bool = False
    options_type: type | None = None


@attrs.frozen(kw_only=True)
class StepDef:
    """A runner step: what one training iteration does at one point (collect, imagine, update_policy, ...)."""

    name: str = attrs.field(converter=_name)
    description: str
    #: ``"module:Class"`` of a ``rwmspec_runtime.steps.Step`` subclass (imported when a plan runs it).
    step: str


@attrs.frozen(kw_only=True)
class StageDef:
    """A pipeline stage: the runner steps it runs each iteration and what its spec must provide."""

    name: str = attrs.field(converter=_name)
    description: str
    #: runner step names (``StepDef``), in the order one iteration runs them
    steps: tuple[str, ...]
    #: the stage trains or uses a world model: ``[world_model]`` and the ``system_*`` groups are required
    world_model: bool = False
    #: the policy learns in imagination: ``[imagination]`` is required, and the compiler checks that imagination
    #: can rebuild everything the policy and the rewards read from the world model's predictions
    imagination: bool = False
    #: run references the spec must set (``"policy_from"``, ``"world_model_from"``)
    references: tuple[str, ...] = ()
    #: the stage runs a single pass (one iteration, saved): e.g. ``visualize``
    single_pass: bool = False


@attrs.frozen(kw_only=True)
class CommandDef:
    """A ``rwmspec`` subcommand the runtime (or any plugin) adds to the CLI; imported only when it runs."""

    name: str = attrs.field(converter=_name)
    help: str
    #: ``"module:attr"`` of ``configure(parser: argparse.ArgumentParser) -> None``
    configure: str
    #: ``"module:attr"`` of ``handler(args: argparse.Namespace) -> int`` (the exit code)
    handler: str
    epilog: str = ""


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
