"""What a stage that imagines needs from its plan, checked before anything runs so that the imagination env raises
nothing a spec causes: a ``system_state`` that turns back into view fields and contact groups of one width
(RWM215), rewards and PPO observations that read only what imagination provides (RWM216), the penalty term's name
(RWM217) and the step counts that real data shares with imagination (RWM210).
"""

from __future__ import annotations

from rwmspec.compile.context import Compilation, Path_
from rwmspec.compile.observations import BINARY_GROUPS
from rwmspec.diagnostics import dotted
from rwmspec.plan import (
    ObservationGroupPlan,
    TermPlan,
)
from rwmspec.spec.model import UNCERTAINTY_PENALTY_TERM, ImaginationSpec

#: The view field imagined pushes change (``imagination.push_velocity`` adds to its x/y components).
PUSH_FIELD = "base_lin_vel"
#: The event kind of imagined pushes: the real envs' push term, run on the imagined state (``imagined_events``).
PUSH_KIND = "push_by_setting_velocity"


def imagined_events(imagination: ImaginationSpec, control_dt: float) -> tuple[TermPlan, ...]:
    """The events of imagined envs, as plan terms the runtime's ``EventManager`` runs: the push of
    ``imagination.push_interval_range`` (steps) and ``push_velocity`` (m/s on x and y) as a ``push_by_setting_velocity``
    interval event, its interval in seconds (a timer drawn from U(low, high) steps fires after its ceiling)."""
    if imagination.push_interval_range is None:
        return ()
    low, high = imagination.push_interval_range
    v = imagination.push_velocity
    return (
        TermPlan(
            name="imagined_push",
            kind=PUSH_KIND,
            mode="interval",
            interval_range_s=(low * control_dt, high * control_dt),
            params={"velocity_range": {"x": (-v, v), "y": (-v, v)}},
        ),
    )


def view_field_width(c: Compilation, field: str, action_dim: int) -> int | None:
    record = c.registry.view_fields.get(field)
    if record is None:
        return None  # a field no plugin declares has no width to compare with
    if record.width == "joints":
        return len(c.robot.joint_names)
    if record.width == "actions":
        return action_dim
    return int(record.width)


def imagination_rules(
    c: Compilation, groups: dict[str, ObservationGroupPlan], rewards: tuple[TermPlan, ...], action_dim: int
) -> None:
    """What an imagining stage needs from the plan, checked here so that the imagination env raises nothing a
    spec causes: ``system_state`` that turns back into view fields (RWM215), contact groups of one width
    (RWM215), rewards and PPO observations that read only what imagination provides (RWM216), the name of the
    penalty term (RWM217) and the step counts that real data shares with imagination (RWM210)."""
    imagination = c.spec.imagination
    if imagination is None:
        return  # RWM211
    state = groups.get("system_state")
    provided = imagined_state_fields(c, state, action_dim)
    predicted = predicted_contact_groups(c, groups)
    kinds = c.registry.kinds("observation")
    # what only the world model can supply: the view fields plugins declare (``ViewField``; the rest of the view,
    # such as the action, the command, dt and the episode length, imagination always has) and the fields of kinds
    # that reproduce one
    state_fields = set(c.registry.view_fields) | {k.state_field for k in kinds.values() if k.state_field}
    # without system_state (RWM207) every state field would be missing: one diagnostic says it all
    missing = state_fields - set(provided) if state is not None else set()
    for reward in rewards:
        if reward.weight != 0.0:
            check_imagined_reads(c, "reward", ("rewards", reward.name), missing, predicted)
    ppo_groups = dict.fromkeys([*c.spec.policy.actor_observations, *c.spec.policy.critic_observations])
    for gname in ppo_groups:
        for term in groups[gname].terms if gname in groups else ():
            path = ("observations", gname, "terms", term.name)
            check_imagined_reads(c, "observation", path, missing, predicted)
    push_kind = c.registry.term_kinds.get(("event", PUSH_KIND))
    if imagination.push_interval_range is not None and (push_kind is None or push_kind.function is None):
        c.error(
            "RWM216",
            f"imagined pushes run the event kind '{PUSH_KIND}' on the predicted state, but no installed plugin "
            f"registers it with a backend-neutral term (TermKind.function)",
            ("imagination", "push_interval_range"),
            hint="install the plugin that provides it (`rwmspec list terms`), or remove push_interval_range",
        )
    if imagination.push_interval_range is not None and state is not None and PUSH_FIELD not in provided:
        kinds_of_field = sorted(k.name for k in kinds.values() if k.state_field == PUSH_FIELD)
        c.error(
            "RWM216",
            f"imagined pushes change the predicted '{PUSH_FIELD}', but no observations.system_state term predicts it",
            ("imagination", "push_interval_range"),
            hint=f"add a system_state term of kind {' or '.join(kinds_of_field) or PUSH_FIELD}, or remove "
            f"push_interval_range",
        )
    if imagination.uncertainty_penalty_weight > 0.0:
        for reward in rewards:
            if reward.name == UNCERTAINTY_PENALTY_TERM:
                c.error(
                    "RWM217",
                    f"imagination logs its uncertainty penalty as '{UNCERTAINTY_PENALTY_TERM}'; a reward term "
                    f"of that name would be mixed up with it",
                    ("rewards", reward.name),
                    hint="rename the reward table",
                )
    if imagination.real_data_share > 0.0 and imagination.steps_per_iteration != c.spec.ppo.num_steps_per_env:
        c.error(
            "RWM210",
            f"real_data_share = {imagination.real_data_share} puts the real rollout into PPO's storage step by "
            f"step, so imagination.steps_per_iteration ({imagination.steps_per_iteration}) must equal "
            f"ppo.num_steps_per_env ({c.spec.ppo.num_steps_per_env})",
            ("imagination", "real_data_share"),
            hint="give both the same number of steps, or set real_data_share = 0",
        )


def imagined_state_fields(c: Compilation, state: ObservationGroupPlan | None, action_dim: int) -> dict[str, str]:
    """View field -> the ``system_state`` term that imagination turns back into it (RWM215 for the others)."""
    provided: dict[str, str] = {}
    if state is None:
        return provided  # RWM207
    kinds = c.registry.kinds("observation")
    for term in state.terms:
        path = ("observations", "system_state", "terms", term.name)
        kind = kinds[term.kind]
        if kind.state_field is None or kind.inverse is None:
            invertible = sorted(k.name for k in kinds.values() if k.state_field and k.inverse)
            c.error(
                "RWM215",
                f"imagination cannot turn kind '{kind.name}' back into state: in a stage that imagines, every "
                f"system_state term reproduces one view field (kinds: {', '.join(invertible) or 'none'})",
                (*path, "kind") if c.spec.observations["system_state"].terms[term.name].kind else path,
            )
            continue
        field = kind.state_field
        if field in provided:
            c.error(
                "RWM215",
                f"system_state terms '{provided[field]}' and '{term.name}' both describe the view field '{field}'",
                path,
                hint="keep one of them",
            )
            continue
        provided[field] = term.name
        width = view_field_width(c, field, action_dim)
        if width is not None and width != term.dim:
            c.error(
                "RWM215",
                f"term '{term.name}' ({kind.name}) has {term.dim} columns but the view field '{field}' has {width}",
                path,
            )
    return provided


def predicted_contact_groups(c: Compilation, groups: dict[str, ObservationGroupPlan]) -> set[str]:
    """The contact groups the binary heads predict; RWM215 for a group predicted with two widths."""
    widths: dict[str, tuple[int, Path_]] = {}
    kinds = c.registry.kinds("observation")
    for gname in BINARY_GROUPS:
        for term in groups[gname].terms if gname in groups else ():
            param = kinds[term.kind].contact_group_param
            contact_group = term.params.get(param) if param else None
            if not isinstance(contact_group, str):
                continue  # RWM207
            path = ("observations", gname, "terms", term.name)
            first = widths.setdefault(contact_group, (term.dim, path))
            if first[0] != term.dim:
                c.error(
                    "RWM215",
                    f"contact group '{contact_group}' has {term.dim} flags here but {first[0]} at "
                    f"{dotted(first[1])}; imagination keeps one contact tensor per group",
                    path,
                )
    return set(widths)


def check_imagined_reads(c: Compilation, category: str, path: Path_, missing: set[str], predicted: set[str]) -> None:
    """RWM216 when a term of an imagining stage reads a state field or a contact group imagination lacks."""
    resolved = c.resolved.get(path)
    if resolved is None:
        return
    if resolved.kind.function is None:
        c.error(
            "RWM216",
            f"{category} kind '{resolved.kind.name}' has no torch implementation (TermKind.function), which "
            f"imagination calls to compute it",
            path,
            hint="use a kind with a torch implementation" + (" or set the weight to 0" if category == "reward" else ""),
        )
        return
    for field in resolved.kind.reads:
        if field in missing:
            c.error(
                "RWM216",
                f"{category} kind '{resolved.kind.name}' reads '{field}', which no observations.system_state "
                f"term predicts, so imagination cannot compute it",
                path,
                hint=f"add a system_state term for '{field}'"
                + (" or set the weight to 0" if category == "reward" else ""),
            )
    contact_groups = getattr(resolved.params, "contact_groups", None)
    for group in contact_groups() if contact_groups else ():
        if group not in predicted:
            c.error(
                "RWM216",
                f"{category} kind '{resolved.kind.name}' reads contact group '{group}', which neither "
                f"system_contact nor system_termination predicts",
                path,
                hint=f'add a system_contact term for "{group}"'
                + (" or set the weight to 0" if category == "reward" else ""),
            )
