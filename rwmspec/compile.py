"""Spec -> Plan, then Plan -> backend Artifacts.

``compile_plan`` resolves everything a spec leaves implicit: each term's kind and typed params (defaults filled
in), observation widths and slices, world-model normalizer vectors from the robot's state blocks, one contact
threshold per contact group, control timing, the pipeline steps of the stage and the absolute paths of the
specs whose runs a stage starts from. It collects every problem as a ``Diagnostic`` (carrying the key path only;
the loading pipeline adds file, line and column) and returns no Plan when any of them is an error.

``compile_backend`` hands a Plan to the backend plugin's own compile function.
"""

from __future__ import annotations

import difflib
import importlib.util
import math
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from rwmspec.diagnostics import Diagnostic, SpecError, dotted
from rwmspec.manager import Registry, resolve
from rwmspec.plan import (
    STAGE_STEPS,
    ObservationGroupPlan,
    ObservationTermPlan,
    Plan,
    RobotPlan,
    RunRefPlan,
    SimPlan,
    TermPlan,
    WorldModelPlan,
)
from rwmspec.spec.model import SYSTEM_GROUPS, ObservationTermSpec, RunRefSpec, Spec
from rwmspec.types import Artifacts, RobotDef, TermKind

Path_ = tuple[Any, ...]

#: Contact force threshold (N) of a contact group no spec term sets (Isaac Lab's contact sensor default).
DEFAULT_CONTACT_THRESHOLD = 1.0
#: Observation kinds whose width is the plan's action width rather than a property of the robot.
ACTION_SIZED_OBSERVATIONS = frozenset({"last_action"})
#: World-model groups whose terms are binary contact flags (never normalised).
BINARY_GROUPS = ("system_contact", "system_termination")
#: Groups every world-model stage needs.
REQUIRED_SYSTEM_GROUPS = ("system_state", "system_action", "system_contact", "system_termination")
#: Kind of the terms of the binary groups.
CONTACT_OBSERVATION_KIND = "body_contact"
#: pip requirement that provides a module a backend needs, where the two names differ.
INSTALL_HINTS = {
    "isaaclab": "bash scripts/install_isaaclab_configs.sh",
    "isaaclab_tasks": "bash scripts/install_isaaclab_configs.sh",
    "isaaclab_rl": "bash scripts/install_isaaclab_configs.sh",
    "isaaclab_assets": "bash scripts/install_isaaclab_configs.sh",
    "warp": "bash scripts/install_isaaclab_configs.sh",
    "torch": "pip install torch==2.13.0",
    "rsl_rl": "pip install rsl-rl-lib==5.5.1",
    "mujoco": "pip install -e '.[runtime]'",
    "tensordict": "pip install -e '.[runtime]'",
}


# --------------------------------------------------------------------------------------------------------------------
# params structuring: strict scalar types, errors as (key path, message)
# --------------------------------------------------------------------------------------------------------------------
def _strict(kind: type, label: str, accept: tuple[type, ...]) -> Callable[[Any, Any], Any]:
    def hook(value: Any, _type: Any) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(f"expected {label}, got the boolean {value!r}")
        if not isinstance(value, accept):
            raise TypeError(f"expected {label}, got {type(value).__name__} {value!r}")
        return kind(value)

    return hook


def _params_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(float, _strict(float, "a number", (int, float)))
    conv.register_structure_hook(int, _strict(int, "an integer", (int,)))
    conv.register_structure_hook(str, _strict(str, "a string", (str,)))
    conv.register_structure_hook(bool, _strict(bool, "true or false", (bool,)))
    return conv


_CONVERTER = _params_converter()


def _structure_errors(exc: BaseException, path: Path_) -> Iterator[tuple[Path_, str]]:
    """Flatten a cattrs exception tree into ``(key path, message)`` pairs."""
    if isinstance(exc, ClassValidationError | IterableValidationError):
        with_notes, without_notes = exc.group_exceptions()
        for sub, note in with_notes:
            step = getattr(note, "name", None)
            if step is None:
                step = getattr(note, "index", None)
            yield from _structure_errors(sub, path if step is None else (*path, step))
        for sub in without_notes:
            yield from _structure_errors(sub, path)
    elif isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields):
            yield (*path, key), "unknown parameter"
    elif isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            yield from _structure_errors(sub, path)
    elif isinstance(exc, KeyError):
        yield path, "missing required parameter"
    else:
        yield path, str(exc)


def _did_you_mean(name: str, choices: Any) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _params_doc(params_type: type, name: str) -> str:
    field = next((f for f in attrs.fields(params_type) if f.name == name), None)
    return field.metadata.get("doc", "") if field is not None else ""


def _fmt(path: Path_) -> str:
    return dotted(path)


def _explain(params_type: type, path: Path_, problem: str) -> str:
    """cattrs' wording, rephrased for the two cases users meet most: choices and [low, high] pairs."""
    hint = typing.get_type_hints(params_type).get(path[0]) if len(path) == 1 else None
    if typing.get_origin(hint) is typing.Literal:
        return f"must be one of {', '.join(repr(c) for c in typing.get_args(hint))}"
    if problem.startswith(("Too many values", "Not enough values")):
        return "expected a pair [low, high] of numbers"
    return problem


@attrs.frozen
class ResolvedTerm:
    """A term whose kind was found and whose params structured cleanly."""

    kind: TermKind
    params: Any  #: instance of ``kind.params_type`` or None
    params_dict: dict[str, Any]
    path: Path_


# --------------------------------------------------------------------------------------------------------------------
# the compiler
# --------------------------------------------------------------------------------------------------------------------
class _PlanCompiler:
    def __init__(self, spec: Spec, registry: Registry, spec_file: Path):
        self.spec = spec
        self.registry = registry
        self.spec_file = Path(spec_file)
        self.diagnostics: list[Diagnostic] = []
        self.robot: RobotDef | None = None
        #: contact group -> (threshold, term path) of the first term that set it
        self.thresholds: dict[str, tuple[float, Path_]] = {}

    # ---------------------------------------------------------------- reporting
    def error(self, code: str, message: str, path: Path_, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, path=tuple(path), hint=hint))

    @property
    def failed(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)

    # ---------------------------------------------------------------- terms
    def resolve_term(self, category: str, name: str, term: Any, path: Path_) -> ResolvedTerm | None:
        kind_name = term.kind or name
        kind = self.registry.term_kinds.get((category, kind_name))
        if kind is None:
            choices = sorted(self.registry.kinds(category))
            self.error(
                "RWM203",
                f"unknown {category} term kind '{kind_name}'{_did_you_mean(kind_name, choices)} "
                f"(kinds: {', '.join(choices) or 'none registered'})",
                (*path, "kind") if term.kind else path,
                hint='set kind = "<one of the kinds>" in the table, or run `rwmspec list terms`',
            )
            return None
        params, params_dict = self.structure_params(kind, term.params, path)
        if params is None and kind.params_type is not None:
            return None
        if params is not None and not self.check_contact_groups(params, path):
            return None
        return ResolvedTerm(kind=kind, params=params, params_dict=params_dict, path=path)

    def structure_params(self, kind: TermKind, raw: Any, path: Path_) -> tuple[Any, dict[str, Any]]:
        ptype = kind.params_type
        if ptype is None:
            given = sorted(_CONVERTER.unstructure(raw) if attrs.has(type(raw)) else (raw or {}))
            if given:
                self.error(
                    "RWM204",
                    f"{kind.category} kind '{kind.name}' takes no parameters (got {', '.join(given)})",
                    (*path, given[0]),
                    hint="remove these keys",
                )
            return None, {}
        if isinstance(raw, ptype):
            params = raw
        else:
            try:
                params = _CONVERTER.structure(dict(raw or {}), ptype)
            except Exception as exc:  # cattrs raises an exception group; each leaf becomes one diagnostic
                known = [f.name for f in attrs.fields(ptype)]
                for sub_path, problem in _structure_errors(exc, ()):
                    key = str(sub_path[0]) if sub_path else ""
                    if problem == "unknown parameter":
                        message = (
                            f"unknown parameter '{key}' of {kind.category} kind '{kind.name}'"
                            f"{_did_you_mean(key, known)} (parameters: {', '.join(known)})"
                        )
                    elif problem == "missing required parameter":
                        message = (
                            f"{kind.category} kind '{kind.name}' needs parameter '{key}': {_params_doc(ptype, key)}"
                        )
                    else:
                        message = (
                            f"parameter '{dotted(sub_path)}' of {kind.category} kind '{kind.name}': "
                            f"{_explain(ptype, sub_path, problem)}"
                        )
                    self.error("RWM204", message, (*path, *sub_path))
                return None, {}
        ok = True
        check = getattr(params, "check", None)
        for field, problem in check() if check else ():
            where = (field,) if isinstance(field, str) else tuple(field)
            self.error(
                "RWM204",
                f"parameter '{dotted(where)}' of {kind.category} kind '{kind.name}': {problem}",
                (*path, *where),
            )
            ok = False
        if not ok:
            return None, {}
        return params, _CONVERTER.unstructure(params)

    def check_contact_groups(self, params: Any, path: Path_) -> bool:
        groups = getattr(params, "contact_groups", None)
        if groups is None or self.robot is None:
            return True
        ok = True
        for group, threshold in groups().items():
            if self.robot.contact_group(group) is None:
                names = [g.name for g in self.robot.contact_groups]
                self.error(
                    "RWM212",
                    f"robot '{self.robot.name}' has no contact group '{group}'"
                    f"{_did_you_mean(group, names)} (groups: {', '.join(names)})",
                    (*path, "bodies"),
                )
                ok = False
            elif threshold is not None:
                first = self.thresholds.get(group)
                if first is None:
                    self.thresholds[group] = (threshold, path)
                elif not math.isclose(first[0], threshold):
                    self.error(
                        "RWM212",
                        f"contact group '{group}' gets threshold {threshold} N here but "
                        f"{first[0]} N at {_fmt(first[1])}; a group has one contact threshold",
                        (*path, "threshold"),
                        hint=f"use the same threshold for every term on '{group}'",
                    )
                    ok = False
        return ok

    def term_dim(self, resolved: ResolvedTerm) -> int | None:
        dim = resolved.kind.dim
        if dim is None or isinstance(dim, int):
            return dim
        try:
            return int(dim(resolved.params, self.robot))
        except Exception as exc:  # a plugin's dim function rejects these params for this robot
            self.error(
                "RWM204",
                f"{resolved.kind.category} kind '{resolved.kind.name}' cannot size itself for "
                f"robot '{self.robot.name}': {type(exc).__name__}: {exc}",
                resolved.path,
            )
            return None

    # ---------------------------------------------------------------- sections
    def simple_terms(self, category: str, section: str, table: dict[str, Any]) -> list[tuple[str, Any, ResolvedTerm]]:
        out = []
        for name, term in table.items():
            if not getattr(term, "enabled", True):
                continue
            resolved = self.resolve_term(category, name, term, (section, name))
            if resolved is not None:
                out.append((name, term, resolved))
        return out

    def actions(self) -> tuple[TermPlan, ...]:
        plans = []
        if not self.spec.actions:
            self.error(
                "RWM204",
                "the spec defines no action term",
                ("actions",),
                hint='add e.g. [actions.joint_pos] with kind = "joint_position"',
            )
        for name, _term, r in self.simple_terms("action", "actions", self.spec.actions):
            dim = self.term_dim(r)
            if dim == 0:
                self.error(
                    "RWM204",
                    f"action '{name}' selects no joint of robot '{self.robot.name}' "
                    f"(joints: {', '.join(self.robot.joint_names)})",
                    (*r.path, "joint_names"),
                )
            plans.append(TermPlan(name=name, kind=r.kind.name, params=r.params_dict, dim=dim or 0))
        return tuple(plans)

    def commands(self) -> tuple[TermPlan, ...]:
        plans = []
        for name, term, r in self.simple_terms("command", "commands", self.spec.commands):
            low, high = term.resampling_time_range_s
            if not 0 < low <= high:
                self.error(
                    "RWM201",
                    f"resampling_time_range_s must be [low, high] with 0 < low <= high (got [{low}, {high}])",
                    (*r.path, "resampling_time_range_s"),
                )
            plans.append(
                TermPlan(
                    name=name,
                    kind=r.kind.name,
                    params=r.params_dict,
                    interval_range_s=(float(low), float(high)),
                    dim=r.kind.dim if isinstance(r.kind.dim, int) else 0,
                )
            )
        return tuple(plans)

    def events(self) -> tuple[TermPlan, ...]:
        plans = []
        for name, term, r in self.simple_terms("event", "events", self.spec.events):
            interval = term.interval_range_s
            if term.mode == "interval":
                if interval is None:
                    self.error("RWM204", f"interval event '{name}' needs interval_range_s = [low, high] (s)", r.path)
                elif not 0 < interval[0] <= interval[1]:
                    self.error(
                        "RWM201",
                        f"interval_range_s must be [low, high] with 0 < low <= high (got {list(interval)})",
                        (*r.path, "interval_range_s"),
                    )
            elif interval is not None:
                self.error(
                    "RWM204",
                    f'interval_range_s applies to mode = "interval" only (event \'{name}\' has mode "{term.mode}")',
                    (*r.path, "interval_range_s"),
                )
            plans.append(
                TermPlan(
                    name=name,
                    kind=r.kind.name,
                    params=r.params_dict,
                    mode=term.mode,
                    interval_range_s=tuple(map(float, interval)) if interval else None,
                )
            )
        return tuple(plans)

    def terminations(self) -> tuple[TermPlan, ...]:
        return tuple(
            TermPlan(name=name, kind=r.kind.name, params=r.params_dict, mode="time_out" if term.time_out else "failure")
            for name, term, r in self.simple_terms("termination", "terminations", self.spec.terminations)
        )

    def rewards(self) -> tuple[TermPlan, ...]:
        return tuple(
            TermPlan(name=name, kind=r.kind.name, params=r.params_dict, weight=float(term.weight))
            for name, term, r in self.simple_terms("reward", "rewards", self.spec.rewards)
        )

    # ---------------------------------------------------------------- observations
    def observations(self, action_dim: int) -> dict[str, ObservationGroupPlan]:
        groups: dict[str, ObservationGroupPlan] = {}
        for gname, group in self.spec.observations.items():
            gpath = ("observations", gname)
            if gname.startswith("system_") and gname not in SYSTEM_GROUPS:
                self.error(
                    "RWM207",
                    f"unknown world-model observation group '{gname}'"
                    f"{_did_you_mean(gname, SYSTEM_GROUPS)} (groups: {', '.join(SYSTEM_GROUPS)})",
                    gpath,
                )
                continue
            terms: list[ObservationTermPlan] = []
            start = 0
            for tname, term in group.terms.items():
                if not term.enabled:
                    continue
                tpath = (*gpath, "terms", tname)
                r = self.resolve_term("observation", tname, term, tpath)
                if r is None:
                    continue
                dim = action_dim if r.kind.name in ACTION_SIZED_OBSERVATIONS else self.term_dim(r)
                if dim is None:
                    if r.kind.dim is None:
                        self.error("RWM204", f"observation kind '{r.kind.name}' does not declare its width", tpath)
                    continue
                stats = self.statistics(gname, tname, term, r, dim, tpath)
                if stats is None:
                    continue
                mean, std, labels = stats
                terms.append(
                    ObservationTermPlan(
                        name=tname,
                        kind=r.kind.name,
                        params=r.params_dict,
                        dim=dim,
                        start=start,
                        noise=term.noise,
                        clip=tuple(term.clip) if term.clip is not None else None,
                        scale=term.scale,
                        mean=mean,
                        std=std,
                        labels=labels,
                    )
                )
                start += dim
            groups[gname] = ObservationGroupPlan(name=gname, terms=tuple(terms), dim=start, corruption=group.corruption)
        return groups

    def statistics(
        self, group: str, name: str, term: ObservationTermSpec, r: ResolvedTerm, dim: int, path: Path_
    ) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None, tuple[str, ...]] | None:
        """Per-dimension normalizer statistics and plot labels of a term; None after reporting a problem."""
        if group in BINARY_GROUPS:
            if r.kind.name != CONTACT_OBSERVATION_KIND:
                self.error(
                    "RWM207",
                    f"group '{group}' holds binary contact flags; term '{name}' has kind '{r.kind.name}'",
                    (*path, "kind"),
                    hint=f'use kind = "{CONTACT_OBSERVATION_KIND}" with bodies = "<contact group>"',
                )
                return None
            if term.normalizer is not None:
                self.error(
                    "RWM208",
                    f"term '{name}' of '{group}' is a binary flag and is never normalised",
                    (*path, "normalizer"),
                    hint="remove the normalizer table",
                )
                return None
            contact = self.robot.contact_group(r.params.bodies)
            return None, None, contact.bodies if contact else ()
        if not group.startswith("system_"):
            if term.normalizer is not None:
                self.error(
                    "RWM208",
                    f"normalizer overrides apply to world-model groups only (term '{name}' is in group '{group}')",
                    (*path, "normalizer"),
                    hint="remove the normalizer table",
                )
                return None
            return None, None, ()
        block = self.robot.state_block(name)
        if group == "system_state":
            if block is None:
                blocks = [b.name for b in self.robot.state_blocks]
                self.error(
                    "RWM208",
                    f"'{name}' is not a state block of robot '{self.robot.name}'"
                    f"{_did_you_mean(name, blocks)} (blocks: {', '.join(blocks)})",
                    path,
                    hint="the term name in system_state names the block; set kind for the observation",
                )
                return None
            if block.dim != dim:
                self.error(
                    "RWM208",
                    f"state block '{name}' has {block.dim} dims but kind '{r.kind.name}' gives {dim}",
                    (*path, "kind"),
                )
                return None
        if block is not None and block.dim == dim:
            mean, std, labels = tuple(block.mean), tuple(block.std), tuple(block.labels)
        else:
            mean, std, labels = (0.0,) * dim, (1.0,) * dim, ()
        if term.normalizer is not None:
            npath = (*path, "normalizer")
            mean = self.override(term.normalizer.mean, mean, dim, (*npath, "mean"), positive=False)
            std = self.override(term.normalizer.std, std, dim, (*npath, "std"), positive=True)
            if mean is None or std is None:
                return None
        return mean, std, labels

    def override(
        self, value: Any, default: tuple[float, ...], dim: int, path: Path_, positive: bool
    ) -> tuple[float, ...] | None:
        if value is None:
            return default
        values = [value] * dim if isinstance(value, int | float) else list(value)
        if len(values) != dim:
            self.error(
                "RWM208",
                f"normalizer override has {len(values)} values but the term has {dim} dims",
                path,
                hint=f"give one value for every dimension or {dim} values",
            )
            return None
        if positive and any(not v > 0 for v in values):
            self.error("RWM208", f"normalizer std must be > 0 (got {values})", path)
            return None
        return tuple(float(v) for v in values)

    # ---------------------------------------------------------------- stage, world model, references
    def runner_settings(self) -> Any:
        """The runner section; the visualize stage is one pass, so it runs (and saves) exactly one iteration."""
        runner = self.spec.runner
        if self.spec.experiment.stage == "visualize":
            return attrs.evolve(runner, max_iterations=1, save_interval=1)
        return runner

    def stage_requirements(self, groups: dict[str, ObservationGroupPlan]) -> None:
        spec, stage = self.spec, self.spec.experiment.stage
        wanted = {"policy"} | set(spec.policy.actor_observations) | set(spec.policy.critic_observations)
        for group in sorted(wanted):
            if group not in spec.observations:
                self.error(
                    "RWM207",
                    f"observation group '{group}' is missing (the policy reads it)",
                    ("observations", group),
                    hint=f"add [observations.{group}] with its terms",
                )
        if stage == "init":
            return
        for group in REQUIRED_SYSTEM_GROUPS:
            if group not in spec.observations:
                self.error(
                    "RWM207",
                    f"stage '{stage}' trains a world model and needs observation group '{group}'",
                    ("observations", group),
                    hint=f"add [observations.{group}] with its terms",
                )
        if spec.world_model is None:
            self.error("RWM211", f"stage '{stage}' needs a [world_model] table", ("world_model",))
        if stage == "finetune":
            if spec.imagination is None or spec.imagination.num_envs <= 0:
                self.error(
                    "RWM211",
                    "stage 'finetune' learns in imagination and needs imagination.num_envs > 0",
                    ("imagination", "num_envs"),
                    hint="add [imagination] with num_envs = 8192 (upstream)",
                )
            if spec.runner.world_model_from is None:
                self.error(
                    "RWM211",
                    "stage 'finetune' starts from a pretrained world model: set runner.world_model_from",
                    ("runner", "world_model_from"),
                    hint='world_model_from = { spec = "anymal_d_pretrain.toml" }',
                )
        if stage == "visualize":
            for key in ("policy_from", "world_model_from"):
                if getattr(spec.runner, key) is None:
                    self.error(
                        "RWM211",
                        f"stage 'visualize' shows a trained policy and world model: set runner.{key}",
                        ("runner", key),
                        hint=f'{key} = {{ spec = "anymal_d_finetune.toml" }}',
                    )

    def world_model(self, groups: dict[str, ObservationGroupPlan]) -> WorldModelPlan | None:
        wm = self.spec.world_model
        if wm is None or self.spec.experiment.stage == "init":
            return None
        arch = self.registry.architectures.get(wm.architecture)
        if arch is None:
            names = sorted(self.registry.architectures)
            self.error(
                "RWM206",
                f"unknown world-model architecture '{wm.architecture}'"
                f"{_did_you_mean(wm.architecture, names)} (architectures: "
                f"{', '.join(names) or 'none registered'})",
                ("world_model", "architecture"),
                hint="run `rwmspec list architectures`",
            )
        elif arch.recurrent and len(set(wm.base_hidden)) > 1:
            self.error(
                "RWM210",
                f"recurrent base '{arch.name}' needs one size for every layer (got {wm.base_hidden})",
                ("world_model", "base_hidden"),
                hint=f"e.g. base_hidden = [{max(wm.base_hidden)}, {max(wm.base_hidden)}]",
            )
        if not wm.base_hidden:
            self.error("RWM210", "base_hidden needs at least one layer", ("world_model", "base_hidden"))
        train = wm.train
        if train.eval_trajectory_length <= wm.history_horizon:
            self.error(
                "RWM210",
                f"eval_trajectory_length ({train.eval_trajectory_length}) must exceed the history "
                f"horizon ({wm.history_horizon}) so that something is predicted",
                ("world_model", "train", "eval_trajectory_length"),
            )
        if train.replay_buffer_size < wm.history_horizon + wm.forecast_horizon:
            self.error(
                "RWM210",
                f"replay_buffer_size ({train.replay_buffer_size}) must hold one training window "
                f"of history_horizon + forecast_horizon = {wm.history_horizon + wm.forecast_horizon}"
                f" steps",
                ("world_model", "train", "replay_buffer_size"),
            )

        def width(name: str) -> int:
            return groups[name].dim if name in groups else 0

        return WorldModelPlan(
            architecture=wm.architecture,
            base_hidden=tuple(wm.base_hidden),
            state_mean_hidden=tuple(wm.state_mean_hidden),
            state_logstd_hidden=tuple(wm.state_logstd_hidden),
            auxiliary_hidden=tuple(wm.auxiliary_hidden),
            ensemble_size=wm.ensemble_size,
            history_horizon=wm.history_horizon,
            forecast_horizon=wm.forecast_horizon,
            separate_auxiliary_base=wm.separate_auxiliary_base,
            residual=wm.residual,
            logstd_bounds_init=tuple(wm.logstd_bounds_init),
            options=_plain(wm.options),
            state_dim=width("system_state"),
            action_dim=width("system_action"),
            contact_dim=width("system_contact"),
            termination_dim=width("system_termination"),
            extension_dim=width("system_extension"),
            loss_weights=wm.loss_weights,
            train=train,
        )

    def run_ref(self, ref: RunRefSpec | None, key: str) -> RunRefPlan | None:
        if ref is None:
            return None
        target = (self.spec_file.parent / ref.spec).resolve()
        if not target.is_file():
            self.error(
                "RWM209",
                f"runner.{key} names spec file '{ref.spec}', which does not exist (looked for {target})",
                ("runner", key, "spec"),
                hint="the path is relative to this spec file",
            )
            return None
        return RunRefPlan(spec=str(target), run=ref.run, checkpoint=ref.checkpoint)

    # ---------------------------------------------------------------- everything
    def compile(self) -> Plan | None:
        spec = self.spec
        self.robot = self.registry.robots.get(spec.robot.name)
        if self.robot is None:
            names = sorted(self.registry.robots)
            self.error(
                "RWM202",
                f"unknown robot '{spec.robot.name}'{_did_you_mean(spec.robot.name, names)} "
                f"(robots: {', '.join(names) or 'none registered'})",
                ("robot", "name"),
                hint="run `rwmspec list robots`",
            )
            return None
        if spec.backend.name not in self.registry.backends:
            names = sorted(self.registry.backends)
            self.error(
                "RWM205",
                f"unknown backend '{spec.backend.name}'{_did_you_mean(spec.backend.name, names)} "
                f"(backends: {', '.join(names) or 'none registered'})",
                ("backend", "name"),
                hint="run `rwmspec list backends`",
            )
        actions = self.actions()
        action_dim = sum(a.dim for a in actions)
        commands = self.commands()
        events = self.events()
        terminations = self.terminations()
        rewards = self.rewards()
        groups = self.observations(action_dim)
        self.stage_requirements(groups)
        world_model = self.world_model(groups)
        policy_from = self.run_ref(spec.runner.policy_from, "policy_from")
        world_model_from = self.run_ref(spec.runner.world_model_from, "world_model_from")
        if self.failed:
            return None
        robot = self.robot
        thresholds = {
            g.name: self.thresholds.get(g.name, (DEFAULT_CONTACT_THRESHOLD, ()))[0] for g in robot.contact_groups
        }
        b = spec.backend
        return Plan(
            schema_version=spec.schema_version,
            spec_file=str(self.spec_file.resolve()),
            experiment=spec.experiment,
            run_name=spec.experiment.run_name or spec.experiment.stage,
            robot=RobotPlan(
                name=robot.name,
                options=_plain(spec.robot.options),
                joint_names=robot.joint_names,
                default_joint_pos=robot.default_joint_pos,
                contact_bodies={g.name: g.bodies for g in robot.contact_groups},
                contact_thresholds=thresholds,
                base_body=robot.base_body,
            ),
            sim=SimPlan(
                backend=b.name,
                num_envs=min(b.num_envs, b.max_num_envs or b.num_envs),
                device=b.device,
                physics_dt=b.physics_dt,
                decimation=b.decimation,
                episode_length_s=b.episode_length_s,
                options=_plain(b.options),
            ),
            commands=commands,
            actions=actions,
            events=events,
            terminations=terminations,
            rewards=rewards,
            observations=groups,
            world_model=world_model,
            imagination=spec.imagination if "imagine" in STAGE_STEPS[spec.experiment.stage] else None,
            ppo=spec.ppo,
            policy=spec.policy,
            runner=self.runner_settings(),
            policy_from=policy_from,
            world_model_from=world_model_from,
            logging=spec.logging,
            visualize=spec.visualize,
            quirks=spec.upstream_quirks,
            steps=STAGE_STEPS[spec.experiment.stage],
        )


def _plain(options: Any) -> dict[str, Any]:
    """Options may arrive as a dict or as the plugin's structured options object."""
    if attrs.has(type(options)):
        return _CONVERTER.unstructure(options)
    return dict(options or {})


def compile_plan(spec: Spec, registry: Registry, *, spec_file: Path) -> tuple[Plan | None, list[Diagnostic]]:
    """Resolve a structured spec into a Plan.

    :param spec: the spec, structured by the loader (term params may be raw dicts or params objects).
    :param registry: the installed plugins' records.
    :param spec_file: the spec's file; run references resolve relative to its folder.
    :return: the Plan (None when any error was found) and every diagnostic, each with its key path.
    """
    compiler = _PlanCompiler(spec, registry, spec_file)
    plan = compiler.compile()
    return plan, compiler.diagnostics


def missing_requirements(registry: Registry, backend: str) -> list[Diagnostic]:
    """RWM401 diagnostics for the modules a backend needs that are not installed (nothing is imported)."""
    found = []
    for module in registry.backends[backend].requires:
        # only the top-level package: find_spec of a dotted name would import its parents (isaaclab is heavy)
        top = module.split(".")[0]
        if importlib.util.find_spec(top) is None:
            install = INSTALL_HINTS.get(top, f"pip install {top}")
            found.append(
                Diagnostic(
                    "RWM401",
                    f"backend '{backend}' needs the Python module '{module}', which is not installed",
                    path=("backend", "name"),
                    hint=f"install it: {install}",
                )
            )
    return found


def compile_backend(plan: Plan, registry: Registry, backend: str | None = None) -> Artifacts:
    """Compile a Plan with a backend plugin (the plan's own backend unless ``backend`` names another).

    :raises SpecError: the backend is unknown (RWM205) or needs modules that are not installed (RWM401).
    """
    name = backend or plan.sim.backend
    if name not in registry.backends:
        names = sorted(registry.backends)
        raise SpecError(
            [
                Diagnostic(
                    "RWM205",
                    f"unknown backend '{name}'{_did_you_mean(name, names)} (backends: "
                    f"{', '.join(names) or 'none registered'})",
                    path=("backend", "name"),
                    hint="run `rwmspec list backends`",
                )
            ]
        )
    missing = missing_requirements(registry, name)
    if missing:
        raise SpecError(missing)
    compile_fn = resolve(registry.backends[name].compile)
    return compile_fn(plan, registry)
