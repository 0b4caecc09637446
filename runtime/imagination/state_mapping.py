"""Between the world model's ``system_*`` vectors and the ``StateView`` that term functions read.

The real backend builds the ``system_state`` observation from a ``StateView`` with the observation term functions;
imagination has to go the other way: the model predicts a ``system_state`` vector, and rewards need a view. Each
``system_state`` term is an observation *kind*, so the inverse is a property of the kind, written here as data
(``STATE_KINDS``): which view field the term's columns fill and how (``joint_pos_rel`` -> ``joint_pos = x +
default_joint_pos``). The forward direction is not re-implemented: ``StateMapping.observe`` runs the real backend's
``ObservationAssembler`` on the group, so ``observe(view_of(x)) == x`` is the same function the embedded env uses.

Binary heads work the same way: every ``system_contact`` / ``system_termination`` term is a ``body_contact`` whose
``bodies`` parameter names a robot contact group, so its columns become ``view.contacts[group]`` (bool).

Shapes: N envs, S state width (the ``system_state`` group), J joints, C / R contact / termination widths.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from rwmspec.manager import Registry, get_registry
from rwmspec.plan import ObservationGroupPlan, ObservationTermPlan
from rwmspec_runtime.terms.state import ContactTimers, StateView

#: (columns of the term [N, d], default joint positions [J]) -> value of the view field [N, d]
Inverse = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _same(x: torch.Tensor, default_joint_pos: torch.Tensor) -> torch.Tensor:
    return x


def _plus_default_pose(x: torch.Tensor, default_joint_pos: torch.Tensor) -> torch.Tensor:
    return x + default_joint_pos


@dataclass(frozen=True)
class StateKind:
    """How the columns of one ``system_state`` term kind become a ``StateView`` field."""

    field: str  #: the StateView field the columns fill
    inverse: Inverse  #: observation value -> field value (undoes the kind's observation function)


#: observation kind -> its inverse. Each entry undoes the function of the same name in
#: ``rwmspec_runtime.terms.observations``; ``joint_vel_rel`` is the velocity itself (default joint velocity is 0).
STATE_KINDS: dict[str, StateKind] = {
    "base_lin_vel": StateKind("base_lin_vel", _same),
    "base_ang_vel": StateKind("base_ang_vel", _same),
    "projected_gravity": StateKind("projected_gravity", _same),
    "joint_pos_rel": StateKind("joint_pos", _plus_default_pose),
    "joint_vel_rel": StateKind("joint_vel", _same),
    "joint_effort": StateKind("joint_torque", _same),
}

#: binary-head observation kind -> the parameter naming its robot contact group
CONTACT_KINDS: dict[str, str] = {"body_contact": "bodies"}

#: StateView fields a predicted state can fill
VIEW_FIELDS = ("base_lin_vel", "base_ang_vel", "projected_gravity", "joint_pos", "joint_vel", "joint_torque")
_FIELD_WIDTH = {"base_lin_vel": 3, "base_ang_vel": 3, "projected_gravity": 3}


@dataclass(frozen=True)
class _StateBlock:
    term: str
    kind: str
    columns: slice
    field: str
    inverse: Inverse
    scale: float | None


@dataclass(frozen=True)
class _ContactBlock:
    term: str
    group: str
    columns: slice


def _contact_blocks(group: ObservationGroupPlan | None, spec_file: str) -> list[_ContactBlock]:
    if group is None:
        return []
    blocks = []
    for term in group.terms:
        param = CONTACT_KINDS.get(term.kind)
        if param is None:
            raise ValueError(
                f"{spec_file}: observations.{group.name}.terms.{term.name} has kind {term.kind!r}, which "
                f"imagination cannot turn into contact flags; supported kinds: {sorted(CONTACT_KINDS)}"
            )
        if param not in term.params:
            raise ValueError(
                f"{spec_file}: observations.{group.name}.terms.{term.name} needs a `{param}` parameter "
                f"naming a contact group of the robot"
            )
        blocks.append(_ContactBlock(term.name, str(term.params[param]), slice(term.start, term.stop)))
    return blocks


class StateMapping:
    """The plan's ``system_*`` layouts as StateView fields and contact groups.

    :param plan: the compiled plan (needs ``observations["system_state"]``).
    :param device: where the default pose and limits live.
    :param soft_joint_pos_limits: ``[J, 2]`` soft limits put into views (None: the robot has none).
    """

    def __init__(
        self,
        plan: Any,
        device: torch.device | str = "cpu",
        *,
        soft_joint_pos_limits: torch.Tensor | None = None,
        registry: Registry | None = None,
    ) -> None:
        groups = plan.observations
        if "system_state" not in groups:
            raise ValueError(
                f"{plan.spec_file}: imagination needs the observation group system_state; add "
                f"[observations.system_state] (see specs/base/anymal_d_flat_world_model.toml)"
            )
        self.device = torch.device(device)
        self.spec_file = plan.spec_file
        self.registry = registry
        self.state_group: ObservationGroupPlan = groups["system_state"]
        self.default_joint_pos = torch.tensor(plan.robot.default_joint_pos, dtype=torch.float32, device=self.device)
        self.num_joints = len(plan.robot.default_joint_pos)
        self.soft_joint_pos_limits = soft_joint_pos_limits
        self.blocks = [self._state_block(term) for term in self.state_group.terms]
        seen: dict[str, str] = {}
        for block in self.blocks:
            if block.field in seen:
                raise ValueError(
                    f"{self.spec_file}: observations.system_state terms {seen[block.field]!r} and "
                    f"{block.term!r} both describe the view field {block.field!r}; keep one of them"
                )
            seen[block.field] = block.term
        #: view fields no system_state term provides (filled with zeros; see ``ImaginationEnv`` for the check)
        self.missing_fields = tuple(f for f in VIEW_FIELDS if f not in seen)
        self.contact_blocks = _contact_blocks(groups.get("system_contact"), self.spec_file)
        self.termination_blocks = _contact_blocks(groups.get("system_termination"), self.spec_file)
        #: contact groups the predicted heads provide, in order of first appearance
        self.contact_groups = tuple(dict.fromkeys(b.group for b in self.contact_blocks + self.termination_blocks))
        self._assembler: Any = None

    def _state_block(self, term: ObservationTermPlan) -> _StateBlock:
        kind = STATE_KINDS.get(term.kind)
        if kind is None:
            raise ValueError(
                f"{self.spec_file}: observations.system_state.terms.{term.name} has kind {term.kind!r}, "
                f"which imagination cannot turn back into a state view; supported kinds: "
                f"{sorted(STATE_KINDS)}"
            )
        width = _FIELD_WIDTH.get(kind.field, self.num_joints)
        if term.dim != width:
            raise ValueError(
                f"{self.spec_file}: observations.system_state.terms.{term.name} ({term.kind}) has "
                f"{term.dim} columns but the view field {kind.field!r} has {width}"
            )
        return _StateBlock(term.name, term.kind, slice(term.start, term.stop), kind.field, kind.inverse, term.scale)

    # -- view -> state vector (the real backend's path) ----------------------------------------------------------
    def observe(self, view: StateView) -> torch.Tensor:
        """The ``system_state`` observation of ``view``, ``[N, S]``: the embedded backend's ``ObservationAssembler``
        on the plan's group (term functions, clip, scale; the world-model groups are never corrupted)."""
        if self._assembler is None:
            from rwmspec_plugins.embedded.observations import ObservationAssembler

            registry = self.registry if self.registry is not None else get_registry()
            generator = torch.Generator(device=self.device).manual_seed(0)
            self._assembler = ObservationAssembler({"system_state": self.state_group}, registry, self.device, generator)
        return self._assembler.compute(view)["system_state"]

    # -- state vector -> view ------------------------------------------------------------------------------------
    def columns(self, field: str) -> slice:
        """Columns of ``system_state`` holding view field ``field``."""
        for block in self.blocks:
            if block.field == field:
                return block.columns
        raise KeyError(
            f"{self.spec_file}: no observations.system_state term provides {field!r} (supported kinds: "
            f"{sorted(STATE_KINDS)})"
        )

    def scale_of(self, field: str) -> float:
        """The observation scale of the term providing ``field`` (1 without one)."""
        for block in self.blocks:
            if block.field == field:
                return 1.0 if block.scale is None else float(block.scale)
        raise KeyError(field)

    def fields(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        """View fields of denormalized ``system_state`` rows ``[N, S]``; missing fields are zeros."""
        out: dict[str, torch.Tensor] = {}
        for block in self.blocks:
            x = state[:, block.columns]
            if block.scale is not None:
                x = x / block.scale
            out[block.field] = block.inverse(x, self.default_joint_pos)
        for name in self.missing_fields:
            width = _FIELD_WIDTH.get(name, self.num_joints)
            out[name] = state.new_zeros(state.shape[0], width)
        return out

    def contacts(self, contact: torch.Tensor | None, termination: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Contact groups from binary head outputs (``[N, C]`` / ``[N, R]``, bool or 0/1): group -> ``[N, B]`` bool.

        A group named by several terms (in either head) is in contact where any of them says so.
        """
        out: dict[str, torch.Tensor] = {}
        for blocks, flags in ((self.contact_blocks, contact), (self.termination_blocks, termination)):
            for block in blocks:
                assert flags is not None, "a contact block exists only when its head has columns"
                value = flags[:, block.columns].to(torch.bool)
                out[block.group] = out[block.group] | value if block.group in out else value
        return out

    def view(
        self,
        state: torch.Tensor,
        *,
        prev_joint_vel: torch.Tensor,
        contacts: Mapping[str, torch.Tensor],
        command: torch.Tensor,
        action: torch.Tensor,
        prev_action: torch.Tensor,
        dt: float,
        contact_timers: Mapping[str, ContactTimers] | None = None,
        episode_length: torch.Tensor | None = None,
        max_episode_length: int | None = None,
        fields: Mapping[str, torch.Tensor] | None = None,
    ) -> StateView:
        """The StateView of denormalized ``system_state`` rows ``[N, S]`` (``fields``: precomputed ``fields(state)``)."""
        f = dict(fields) if fields is not None else self.fields(state)
        return StateView(
            **{name: f[name] for name in VIEW_FIELDS},
            prev_joint_vel=prev_joint_vel,
            default_joint_pos=self.default_joint_pos,
            contacts=dict(contacts),
            command=command,
            action=action,
            prev_action=prev_action,
            dt=dt,
            soft_joint_pos_limits=self.soft_joint_pos_limits,
            episode_length=episode_length,
            max_episode_length=max_episode_length,
            contact_timers=dict(contact_timers or {}),
        )


def soft_joint_pos_limits(robot: Any, device: torch.device | str = "cpu") -> torch.Tensor | None:
    """``[J, 2]`` soft joint limits of a ``RobotDef`` (``RobotDef.soft_joint_pos_limits``); None without limits."""
    limits = robot.soft_joint_pos_limits
    return torch.tensor(limits, dtype=torch.float32, device=device) if limits else None
