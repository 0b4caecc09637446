"""Between the world model's ``system_*`` vectors and the ``StateView`` that term functions read.

The real backend builds the ``system_state`` observation from a ``StateView`` with the observation term functions;
imagination has to go the other way: the model predicts a ``system_state`` vector, and rewards need a view. Each
``system_state`` term is an observation *kind*, and the kind's plugin declares the inverse (``TermKind.state_field``
and ``TermKind.inverse``): which view field the term's columns fill and how (locomotion's ``joint_pos_rel`` ->
``joint_pos = x + default_joint_pos``). The forward direction is not re-implemented: ``StateMapping.observe`` runs the
runtime's ``ObservationManager`` on the group, so ``observe(view_of(x)) == x`` is the same function the real backend
uses.

Binary heads work the same way: every ``system_contact`` / ``system_termination`` term has a kind whose
``contact_group_param`` names a robot contact group, so its columns become ``view.contacts[group]`` (bool).

`rwmspec validate` checks everything this module relies on (kinds with inverses, one term per field, widths, contact
params), so it raises nothing a spec could cause.

Shapes: N envs, S state width (the ``system_state`` group), J joints, C / R contact / termination widths.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from rwmspec.manager import Registry, get_registry, resolve
from rwmspec.plan import ObservationGroupPlan, ObservationTermPlan, Plan
from rwmspec.types import RobotDef
from rwmspec_runtime.mdp.observations import ObservationManager
from rwmspec_runtime.mdp.state import ContactTimers, StateView

#: (columns of the term [N, d], default joint positions [J]) -> value of the view field [N, d]
Inverse = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


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


def _contact_blocks(group: ObservationGroupPlan | None, registry: Registry) -> list[_ContactBlock]:
    if group is None:
        return []
    blocks = []
    for term in group.terms:
        param = registry.term_kinds[("observation", term.kind)].contact_group_param
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
        plan: Plan,
        device: torch.device | str = "cpu",
        *,
        soft_joint_pos_limits: torch.Tensor | None = None,
        registry: Registry | None = None,
    ) -> None:
        groups = plan.observations
        self.device = torch.device(device)
        self.spec_file = plan.spec_file
        self.registry = registry if registry is not None else get_registry()
        self.state_group: ObservationGroupPlan = groups["system_state"]
        self.default_joint_pos = torch.tensor(plan.robot.default_joint_pos, dtype=torch.float32, device=self.device)
        self.num_joints = len(plan.robot.default_joint_pos)
        self.soft_joint_pos_limits = soft_joint_pos_limits
        self.blocks = [self._state_block(term) for term in self.state_group.terms]
        provided = {block.field for block in self.blocks}
        #: width of every declared view field (``ViewField`` records of the installed plugins) for this plan
        sizes = {"joints": self.num_joints, "actions": plan.action_dim}
        self.field_widths = {
            name: sizes[f.width] if isinstance(f.width, str) else int(f.width)
            for name, f in self.registry.view_fields.items()
        }
        #: declared view fields no system_state term provides (zeros; validate refuses terms that read them)
        self.missing_fields = tuple(f for f in self.field_widths if f not in provided)
        self.contact_blocks = _contact_blocks(groups.get("system_contact"), self.registry)
        self.termination_blocks = _contact_blocks(groups.get("system_termination"), self.registry)
        #: contact groups the predicted heads provide, in order of first appearance
        self.contact_groups = tuple(dict.fromkeys(b.group for b in self.contact_blocks + self.termination_blocks))
        self._assembler: ObservationManager | None = None

    def _state_block(self, term: ObservationTermPlan) -> _StateBlock:
        kind = self.registry.term_kinds[("observation", term.kind)]
        inverse = resolve(kind.inverse)
        return _StateBlock(term.name, term.kind, slice(term.start, term.stop), kind.state_field, inverse, term.scale)

    # -- view -> state vector (the real backend's path) ----------------------------------------------------------
    def observe(self, view: StateView) -> torch.Tensor:
        """The ``system_state`` observation of ``view``, ``[N, S]``: the ``ObservationManager`` on the plan's group
        (term functions, clip, scale; the world-model groups are never corrupted)."""
        if self._assembler is None:
            generator = torch.Generator(device=self.device).manual_seed(0)
            self._assembler = ObservationManager(
                {"system_state": self.state_group}, self.registry, self.device, generator
            )
        return self._assembler.compute(view)["system_state"]

    # -- state vector -> view ------------------------------------------------------------------------------------
    def columns(self, field: str) -> slice:
        """Columns of ``system_state`` holding view field ``field``."""
        for block in self.blocks:
            if block.field == field:
                return block.columns
        raise KeyError(f"{self.spec_file}: no observations.system_state term provides {field!r}")

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
            out[name] = state.new_zeros(state.shape[0], self.field_widths[name])
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
            **f,
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


def soft_joint_pos_limits(robot: RobotDef, device: torch.device | str = "cpu") -> torch.Tensor | None:
    """``[J, 2]`` soft joint limits of a ``RobotDef`` (``RobotDef.soft_joint_pos_limits``); None without limits."""
    limits = robot.soft_joint_pos_limits
    return torch.tensor(limits, dtype=torch.float32, device=device) if limits else None
