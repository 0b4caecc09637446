"""Stage rules, read from the stage's ``StageDef`` record (never from its name): required observation groups and
tables, run references, the single pass, and the world-model section the stage uses.
"""

from __future__ import annotations

from typing import Any

import attrs

from rwmspec.compile.context import Compilation, plain
from rwmspec.plan import (
    ObservationGroupPlan,
    RunRefPlan,
    WorldModelPlan,
)
from rwmspec.spec.model import RunRefSpec
from rwmspec.types import StageDef

#: Groups every world-model stage needs.
REQUIRED_SYSTEM_GROUPS = ("system_state", "system_action", "system_contact", "system_termination")


def runner_settings(c: Compilation) -> Any:
    """The runner section; a single-pass stage (``visualize``) runs, and saves, exactly one iteration."""
    runner = c.spec.runner
    if c.stage is not None and c.stage.single_pass:
        return attrs.evolve(runner, max_iterations=1, save_interval=1)
    return runner


def stage_requirements(c: Compilation, stage: StageDef) -> None:
    """What the stage's record says its spec must provide: observation groups, tables and run references."""
    spec = c.spec
    wanted = {"policy"} | set(spec.policy.actor_observations) | set(spec.policy.critic_observations)
    for group in sorted(wanted):
        if group not in spec.observations:
            c.error(
                "RWM207",
                f"observation group '{group}' is missing (the policy reads it)",
                ("observations", group),
                hint=f"add [observations.{group}] with its terms",
            )
    if stage.world_model:
        for group in REQUIRED_SYSTEM_GROUPS:
            if group not in spec.observations:
                c.error(
                    "RWM207",
                    f"stage '{stage.name}' uses a world model and needs observation group '{group}'",
                    ("observations", group),
                    hint=f"add [observations.{group}] with its terms",
                )
        if spec.world_model is None:
            c.error("RWM211", f"stage '{stage.name}' needs a [world_model] table", ("world_model",))
    if c.imagines and (spec.imagination is None or spec.imagination.num_envs <= 0):
        c.error(
            "RWM211",
            f"stage '{stage.name}' learns in imagination and needs imagination.num_envs > 0",
            ("imagination", "num_envs"),
            hint="add [imagination] with num_envs = 8192 (upstream)",
        )
    for key in stage.references:
        if getattr(spec.runner, key, None) is None:
            c.error(
                "RWM211",
                f"stage '{stage.name}' starts from an earlier stage's run: set runner.{key}",
                ("runner", key),
                hint=f'{key} = {{ spec = "<spec of the earlier stage>.toml" }}',
            )


def compile_world_model(c: Compilation, groups: dict[str, ObservationGroupPlan]) -> WorldModelPlan | None:
    wm = c.spec.world_model
    if wm is None or not c.stage.world_model:
        return None
    arch = c.registry.architectures.get(wm.architecture)  # unknown: RWM206 is the checks' to report
    if arch is not None and arch.recurrent and len(set(wm.base_hidden)) > 1:
        c.error(
            "RWM210",
            f"recurrent base '{arch.name}' needs one size for every layer (got {wm.base_hidden})",
            ("world_model", "base_hidden"),
            hint=f"e.g. base_hidden = [{max(wm.base_hidden)}, {max(wm.base_hidden)}]",
        )
    if not wm.base_hidden:
        c.error("RWM210", "base_hidden needs at least one layer", ("world_model", "base_hidden"))
    train = wm.train
    if train.eval_trajectory_length <= wm.history_horizon:
        c.error(
            "RWM210",
            f"eval_trajectory_length ({train.eval_trajectory_length}) must exceed the history "
            f"horizon ({wm.history_horizon}) so that something is predicted",
            ("world_model", "train", "eval_trajectory_length"),
        )
    if train.replay_buffer_size < wm.history_horizon + wm.forecast_horizon:
        c.error(
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
        options=plain(wm.options),
        state_dim=width("system_state"),
        action_dim=width("system_action"),
        contact_dim=width("system_contact"),
        termination_dim=width("system_termination"),
        extension_dim=width("system_extension"),
        loss_weights=wm.loss_weights,
        train=train,
    )


def run_ref(c: Compilation, ref: RunRefSpec | None, key: str) -> RunRefPlan | None:
    if ref is None:
        return None
    target = (c.spec_file.parent / ref.spec).resolve()
    if not target.is_file():
        c.error(
            "RWM209",
            f"runner.{key} names spec file '{ref.spec}', which does not exist (looked for {target})",
            ("runner", key, "spec"),
            hint="the path is relative to this spec file",
        )
        return None
    return RunRefPlan(spec=str(target), run=ref.run, checkpoint=ref.checkpoint)
