"""Spec -> Plan, then Plan -> backend Artifacts.

``compile_plan`` resolves everything a spec leaves implicit: each term's kind and typed params (defaults filled
in), observation widths and slices, world-model normalizer vectors from the robot's state blocks, one contact
threshold per contact group, control timing, the robot with its options applied, the runner steps of the stage
(``StageDef`` records) and the absolute paths of the specs whose runs a stage starts from. It collects every problem
as a ``Diagnostic`` (carrying the key path only; the loading pipeline adds file, line and column) and returns no Plan
when any of them is an error.

One concept per module, each a set of functions of a ``Compilation`` (``context``): ``terms``, ``observations``,
``stages``, ``imagination``, ``robot``; ``backend`` hands a Plan to the backend plugin's own compile function.

Each rule has one owner. The compiler owns the rules that need compiled sizes or several tables at once; it does not
repeat those of ``rwmspec.spec.structure`` (unknown term kinds RWM203, the structure of params RWM204, options
RWM213) or of ``rwmspec.spec.checks`` (ranges RWM201, plugin names RWM202/205/206/214). It expects a spec that went
through them (``rwmspec.api`` runs all three) and silently skips what depends on a value they rejected.
"""

from __future__ import annotations

from pathlib import Path

from rwmspec.compile.backend import compile_backend, missing_requirements
from rwmspec.compile.context import Compilation, plain
from rwmspec.compile.imagination import PUSH_FIELD, imagination_rules, imagined_events
from rwmspec.compile.observations import ACTION_SIZED_OBSERVATIONS, BINARY_GROUPS, compile_observations
from rwmspec.compile.robot import apply_robot_options
from rwmspec.compile.stages import (
    REQUIRED_SYSTEM_GROUPS,
    compile_world_model,
    run_ref,
    runner_settings,
    stage_requirements,
)
from rwmspec.compile.terms import (
    DEFAULT_CONTACT_THRESHOLD,
    compile_actions,
    compile_commands,
    compile_events,
    compile_rewards,
    compile_terminations,
)
from rwmspec.diagnostics import Diagnostic
from rwmspec.manager import Registry
from rwmspec.plan import Plan, RobotPlan, SimPlan
from rwmspec.spec.model import Spec

__all__ = [
    "ACTION_SIZED_OBSERVATIONS",
    "BINARY_GROUPS",
    "DEFAULT_CONTACT_THRESHOLD",
    "PUSH_FIELD",
    "REQUIRED_SYSTEM_GROUPS",
    "compile_backend",
    "compile_plan",
    "imagined_events",
    "missing_requirements",
]


def compile_plan(spec: Spec, registry: Registry, *, spec_file: Path) -> tuple[Plan | None, list[Diagnostic]]:
    """Resolve a structured spec into a Plan.

    :param spec: the spec, structured by the loader (term params may be raw dicts or params objects) and checked by
        ``rwmspec.spec.checks``; ``rwmspec.api.check_spec`` runs every step on a spec built in Python.
    :param registry: the installed plugins' records.
    :param spec_file: the spec's file; run references resolve relative to its folder.
    :return: the Plan (None when any error was found, or when the robot or the stage is unknown) and the
        compiler's diagnostics, each with its key path.
    """
    c = Compilation(spec, registry, spec_file)
    plan = _compile(c)
    return plan, c.diagnostics


def _compile(c: Compilation) -> Plan | None:
    spec = c.spec
    robot = c.registry.robots.get(spec.robot.name)
    c.stage = c.registry.stages.get(spec.experiment.stage)
    if robot is None or c.stage is None:
        return None  # RWM202 / RWM214: nothing below can be resolved without them
    c.robot = robot = apply_robot_options(c, robot)
    actions = compile_actions(c)
    action_dim = sum(a.dim for a in actions)
    commands = compile_commands(c)
    events = compile_events(c)
    terminations = compile_terminations(c)
    rewards = compile_rewards(c)
    groups = compile_observations(c, action_dim)
    stage_requirements(c, c.stage)
    world_model = compile_world_model(c, groups)
    if c.imagines:
        imagination_rules(c, groups, rewards, action_dim)
    policy_from = run_ref(c, spec.runner.policy_from, "policy_from")
    world_model_from = run_ref(c, spec.runner.world_model_from, "world_model_from")
    if c.failed:
        return None
    thresholds = {g.name: c.thresholds.get(g.name, (DEFAULT_CONTACT_THRESHOLD, ()))[0] for g in robot.contact_groups}
    b = spec.backend
    return Plan(
        schema_version=spec.schema_version,
        spec_file=str(c.spec_file.resolve()),
        experiment=spec.experiment,
        run_name=spec.experiment.run_name or spec.experiment.stage,
        robot=RobotPlan(
            name=robot.name,
            options=plain(spec.robot.options),
            joint_names=robot.joint_names,
            default_joint_pos=robot.default_joint_pos,
            contact_bodies={g.name: g.bodies for g in robot.contact_groups},
            contact_thresholds=thresholds,
            base_body=robot.base_body,
            actuator=robot.actuator,
        ),
        sim=SimPlan(
            backend=b.name,
            num_envs=min(b.num_envs, b.max_num_envs or b.num_envs),
            device=b.device,
            physics_dt=b.physics_dt,
            decimation=b.decimation,
            episode_length_s=b.episode_length_s,
            options=plain(b.options),
        ),
        commands=commands,
        actions=actions,
        events=events,
        terminations=terminations,
        rewards=rewards,
        observations=groups,
        world_model=world_model,
        imagination=spec.imagination if c.imagines else None,
        ppo=spec.ppo,
        policy=spec.policy,
        runner=runner_settings(c),
        policy_from=policy_from,
        world_model_from=world_model_from,
        logging=spec.logging,
        visualize=spec.visualize,
        quirks=spec.upstream_quirks,
        steps=c.stage.steps,
    )
