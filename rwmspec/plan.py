"""The compiled Plan: a backend-neutral, fully resolved description of one experiment.

Everything derived from a spec lives here and nowhere else: sizes, the slices of named state blocks inside each
observation group, normalizer vectors, reward weights, control timing and the pipeline steps of the stage. The
runtime and the backends read a Plan; they never re-derive anything from the spec.

A Plan is plain data (attrs, no torch) and round-trips through ``plan_to_dict`` / ``plan_from_dict`` so that run
directories and checkpoints can store it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import attrs
import cattrs

from rwmspec.spec.model import (
    ExperimentSpec,
    ImaginationSpec,
    LoggingSpec,
    LossWeightsSpec,
    PolicySpec,
    PpoSpec,
    RunnerSpec,
    UpstreamQuirksSpec,
    VisualizeSpec,
    WorldModelTrainSpec,
)
from rwmspec.types import ActuatorDef


@attrs.frozen(kw_only=True)
class TermPlan:
    """One resolved MDP term (command, action, event, termination or reward)."""

    name: str
    kind: str
    params: dict[str, Any] = attrs.field(factory=dict)
    #: rewards: weight per second (the env multiplies by the control dt)
    weight: float = 0.0
    #: events: "startup" | "reset" | "interval"; terminations: "time_out" | "failure"; else ""
    mode: str = ""
    #: events with mode "interval", commands: resampling range in seconds
    interval_range_s: tuple[float, float] | None = None
    #: actions: number of action dims this term consumes
    dim: int = 0


@attrs.frozen(kw_only=True)
class ObservationTermPlan:
    name: str
    kind: str
    params: dict[str, Any] = attrs.field(factory=dict)
    dim: int
    start: int
    noise: float | None = None
    clip: tuple[float, float] | None = None
    scale: float | None = None
    #: world-model groups: per-dimension normalizer statistics (robot plugin values with spec overrides)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    labels: tuple[str, ...] = ()

    @property
    def stop(self) -> int:
        return self.start + self.dim


@attrs.frozen(kw_only=True)
class ObservationGroupPlan:
    name: str
    terms: tuple[ObservationTermPlan, ...]
    dim: int
    corruption: bool = False

    def term(self, name: str) -> ObservationTermPlan:
        for t in self.terms:
            if t.name == name:
                return t
        raise KeyError(f"observation group {self.name!r} has no term {name!r}")

    def slice(self, name: str) -> slice:
        t = self.term(name)
        return slice(t.start, t.stop)

    @property
    def mean(self) -> tuple[float, ...]:
        """Concatenated normalizer means (zeros for terms without statistics)."""
        return tuple(v for t in self.terms for v in (t.mean if t.mean is not None else (0.0,) * t.dim))

    @property
    def std(self) -> tuple[float, ...]:
        """Concatenated normalizer stds (ones for terms without statistics)."""
        return tuple(v for t in self.terms for v in (t.std if t.std is not None else (1.0,) * t.dim))


@attrs.frozen(kw_only=True)
class RobotPlan:
    name: str
    options: dict[str, Any] = attrs.field(factory=dict)
    joint_names: tuple[str, ...]
    default_joint_pos: tuple[float, ...]
    #: contact group name -> body names
    contact_bodies: dict[str, tuple[str, ...]] = attrs.field(factory=dict)
    #: contact group name -> force threshold (N) above which a body counts as in contact; one value per group,
    #: taken from the spec's contact terms (the compiler rejects disagreeing thresholds)
    contact_thresholds: dict[str, float] = attrs.field(factory=dict)
    base_body: str
    #: the robot's actuator with its ``[robot.options]`` applied by the robot plugin (``RobotDef.apply_options``)
    actuator: ActuatorDef | None = None


@attrs.frozen(kw_only=True)
class SimPlan:
    backend: str
    num_envs: int
    device: str
    physics_dt: float
    decimation: int
    episode_length_s: float
    options: dict[str, Any] = attrs.field(factory=dict)

    @property
    def control_dt(self) -> float:
        return self.physics_dt * self.decimation

    @property
    def max_episode_length(self) -> int:
        return int(round(self.episode_length_s / self.control_dt))


@attrs.frozen(kw_only=True)
class WorldModelPlan:
    architecture: str
    base_hidden: tuple[int, ...]
    state_mean_hidden: tuple[int, ...]
    state_logstd_hidden: tuple[int, ...]
    auxiliary_hidden: tuple[int, ...]
    ensemble_size: int
    history_horizon: int
    forecast_horizon: int
    separate_auxiliary_base: bool
    residual: bool
    logstd_bounds_init: tuple[float, float]
    options: dict[str, Any] = attrs.field(factory=dict)
    #: widths of the system_* groups (0 when a group is absent)
    state_dim: int
    action_dim: int
    contact_dim: int
    termination_dim: int
    extension_dim: int
    loss_weights: LossWeightsSpec
    train: WorldModelTrainSpec


@attrs.frozen(kw_only=True)
class RunRefPlan:
    """A reference to another spec's run, resolved to an absolute spec path; the run itself is found at run time."""

    spec: str
    run: str = "latest"
    checkpoint: str = "latest"


@attrs.frozen(kw_only=True)
class Plan:
    schema_version: int
    spec_file: str
    experiment: ExperimentSpec
    run_name: str
    robot: RobotPlan
    sim: SimPlan
    commands: tuple[TermPlan, ...]
    actions: tuple[TermPlan, ...]
    events: tuple[TermPlan, ...]
    terminations: tuple[TermPlan, ...]
    rewards: tuple[TermPlan, ...]
    observations: dict[str, ObservationGroupPlan]
    world_model: WorldModelPlan | None
    imagination: ImaginationSpec | None
    ppo: PpoSpec
    policy: PolicySpec
    runner: RunnerSpec
    policy_from: RunRefPlan | None = None
    world_model_from: RunRefPlan | None = None
    logging: LoggingSpec
    visualize: VisualizeSpec
    quirks: UpstreamQuirksSpec
    steps: tuple[str, ...]

    @property
    def action_dim(self) -> int:
        return sum(a.dim for a in self.actions)

    def fingerprint(self) -> str:
        """Hash of everything a trained world model depends on (robot, system_* groups, normalizers, sizes).

        A later stage refuses a world model whose fingerprint differs from its own plan's.
        """
        groups = {k: plan_to_dict(v) for k, v in sorted(self.observations.items()) if k.startswith("system_")}
        wm = plan_to_dict(self.world_model) if self.world_model else None
        if wm:
            # training settings may change between stages without invalidating the weights
            wm.pop("train", None)
            wm.pop("loss_weights", None)
        payload = {
            "robot": self.robot.name,
            "robot_options": self.robot.options,
            "joints": self.robot.joint_names,
            "groups": groups,
            "world_model": wm,
            "control_dt": self.sim.control_dt,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


_converter = cattrs.Converter()


def plan_to_dict(obj: Any) -> Any:
    """Plain JSON-compatible data of a Plan (or any part of it)."""
    return _converter.unstructure(obj)


def plan_from_dict(data: dict[str, Any]) -> Plan:
    return _converter.structure(data, Plan)
