"""Semantic checks of a structured spec: value ranges, plugin names, and the checks plugins register.

Each check yields ``Diagnostic`` objects carrying only their key path; the loader's location index adds file, line
and column. Checks never raise for bad input. Cross-table rules that need the compiled sizes (observation widths,
normalizer lengths, contact thresholds, stage requirements, run references) live in ``rwmspec.compile``; the
checks here need nothing but the spec and the registry, so they also run on a partial spec whose structural errors
were removed (see ``rwmspec.spec.structure``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import attrs

from rwmspec.diagnostics import Diagnostic, did_you_mean, failed_plugins, list_choices, root_cause
from rwmspec.spec.model import Spec

if TYPE_CHECKING:
    from rwmspec.manager import Registry

KeyPath = tuple[str | int, ...]


# ----------------------------------------------------------------------------------------------------------------------
# ranges
# ----------------------------------------------------------------------------------------------------------------------
@attrs.frozen
class Bound:
    """A one-sided or two-sided numeric range, phrased like attrs validators: "must be > 0 (got -1)"."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def ok(self, v: float) -> bool:
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        return not (self.high is not None and (v >= self.high if self.high_open else v > self.high))

    def text(self) -> str:
        if self.low is not None and self.high is not None:
            lb, hb = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"in {lb}{_num(self.low)}, {_num(self.high)}{hb}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {_num(self.low)}"
        return f"{'<' if self.high_open else '<='} {_num(self.high)}"


def _num(v: float) -> str:
    """Bounds print as written in the table above; values as TOML would write them (1.0 stays 1.0)."""
    return repr(v)


POSITIVE = Bound(low=0, low_open=True)
NON_NEGATIVE = Bound(low=0)
AT_LEAST_ONE = Bound(low=1)
PROBABILITY = Bound(low=0, high=1)

#: key path -> allowed range; a list value is checked element by element
RANGES: dict[KeyPath, Bound] = {
    ("experiment", "seed"): NON_NEGATIVE,
    ("backend", "num_envs"): AT_LEAST_ONE,
    ("backend", "max_num_envs"): AT_LEAST_ONE,
    ("backend", "physics_dt"): POSITIVE,
    ("backend", "decimation"): AT_LEAST_ONE,
    ("backend", "episode_length_s"): POSITIVE,
    ("world_model", "base_hidden"): AT_LEAST_ONE,
    ("world_model", "state_mean_hidden"): AT_LEAST_ONE,
    ("world_model", "state_logstd_hidden"): AT_LEAST_ONE,
    ("world_model", "auxiliary_hidden"): AT_LEAST_ONE,
    ("world_model", "ensemble_size"): AT_LEAST_ONE,
    ("world_model", "history_horizon"): AT_LEAST_ONE,
    ("world_model", "forecast_horizon"): AT_LEAST_ONE,
    **{
        ("world_model", "loss_weights", k): NON_NEGATIVE
        for k in ("state", "sequence", "bound", "kl", "extension", "contact", "termination")
    },
    ("world_model", "train", "learning_rate"): POSITIVE,
    ("world_model", "train", "weight_decay"): NON_NEGATIVE,
    ("world_model", "train", "num_mini_batches"): AT_LEAST_ONE,
    ("world_model", "train", "mini_batch_size"): AT_LEAST_ONE,
    ("world_model", "train", "replay_buffer_size"): AT_LEAST_ONE,
    ("world_model", "train", "max_grad_norm"): POSITIVE,
    ("world_model", "train", "termination_pos_weight"): POSITIVE,
    ("world_model", "train", "contact_pos_weight"): POSITIVE,
    ("world_model", "train", "eval_interval"): AT_LEAST_ONE,
    ("world_model", "train", "num_eval_trajectories"): AT_LEAST_ONE,
    ("world_model", "train", "eval_trajectory_length"): AT_LEAST_ONE,
    ("imagination", "num_envs"): NON_NEGATIVE,
    ("imagination", "steps_per_iteration"): AT_LEAST_ONE,
    ("imagination", "max_episode_length"): AT_LEAST_ONE,
    ("imagination", "command_resample_interval_range"): AT_LEAST_ONE,
    ("imagination", "uncertainty_penalty_weight"): NON_NEGATIVE,
    ("imagination", "warmup_iterations"): NON_NEGATIVE,
    ("imagination", "real_data_share"): Bound(low=0, high=1, high_open=True),
    ("imagination", "push_interval_range"): AT_LEAST_ONE,
    ("imagination", "push_velocity"): NON_NEGATIVE,
    ("ppo", "num_steps_per_env"): AT_LEAST_ONE,
    ("ppo", "num_learning_epochs"): AT_LEAST_ONE,
    ("ppo", "num_mini_batches"): AT_LEAST_ONE,
    ("ppo", "clip_param"): POSITIVE,
    ("ppo", "gamma"): Bound(low=0, high=1, low_open=True),
    ("ppo", "lam"): PROBABILITY,
    ("ppo", "value_loss_coef"): NON_NEGATIVE,
    ("ppo", "entropy_coef"): NON_NEGATIVE,
    ("ppo", "learning_rate"): POSITIVE,
    ("ppo", "max_grad_norm"): POSITIVE,
    ("ppo", "desired_kl"): POSITIVE,
    ("policy", "actor_hidden_dims"): AT_LEAST_ONE,
    ("policy", "critic_hidden_dims"): AT_LEAST_ONE,
    ("policy", "init_noise_std"): POSITIVE,
    ("runner", "max_iterations"): AT_LEAST_ONE,
    ("runner", "save_interval"): AT_LEAST_ONE,
    ("visualize", "num_steps"): AT_LEAST_ONE,
    ("visualize", "command_resample_s"): POSITIVE,
}

#: key paths of ``[low, high]`` pairs that must be ordered (strictly when True)
ORDERED_PAIRS: dict[KeyPath, bool] = {
    ("world_model", "logstd_bounds_init"): True,
    ("imagination", "command_resample_interval_range"): True,
    ("imagination", "push_interval_range"): False,
}


def _get(obj: Any, path: KeyPath) -> Any:
    for part in path:
        if obj is None:
            return None
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part, None)
    return obj


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def check_ranges(spec: Spec) -> Iterator[Diagnostic]:
    for path, bound in RANGES.items():
        value = _get(spec, path)
        items = list(enumerate(value)) if isinstance(value, list | tuple) else [(None, value)]
        for i, v in items:
            if not _is_number(v):
                continue
            p = path if i is None else (*path, i)
            if isinstance(v, float) and math.isnan(v):
                yield Diagnostic("RWM201", "must be a number (got nan)", p)
            elif not bound.ok(v):
                yield Diagnostic("RWM201", f"must be {bound.text()} (got {_num(v)})", p)
    for path, strict in ORDERED_PAIRS.items():
        value = _get(spec, path)
        if isinstance(value, list | tuple) and len(value) == 2 and all(map(_is_number, value)):
            low, high = value
            if low > high or (strict and low == high):
                yield Diagnostic(
                    "RWM201",
                    f"must be [low, high] with low {'<' if strict else '<='} high (got [{_num(low)}, {_num(high)}])",
                    path,
                )
    yield from _check_terms(spec)


def _check_terms(spec: Spec) -> Iterator[Diagnostic]:
    for name, reward in spec.rewards.items():
        if isinstance(reward.weight, float) and not math.isfinite(reward.weight):
            yield Diagnostic("RWM201", f"must be a finite number (got {reward.weight})", ("rewards", name, "weight"))
    for group, g in spec.observations.items():
        for name, term in g.terms.items():
            path = ("observations", group, "terms", name)
            if term.noise is not None and not term.noise >= 0:
                yield Diagnostic("RWM201", f"must be >= 0 (got {_num(term.noise)})", (*path, "noise"))
            if term.clip is not None and not term.clip[0] < term.clip[1]:
                yield Diagnostic(
                    "RWM201",
                    f"must be [low, high] with low < high (got [{_num(term.clip[0])}, {_num(term.clip[1])}])",
                    (*path, "clip"),
                )
    for key in ("actor_observations", "critic_observations"):
        if not getattr(spec.policy, key):
            yield Diagnostic(
                "RWM207", "must name at least one observation group", ("policy", key), hint='e.g. ["policy"]'
            )


# ----------------------------------------------------------------------------------------------------------------------
# plugin names
# ----------------------------------------------------------------------------------------------------------------------
def check_plugin_names(spec: Spec, registry: Registry) -> Iterator[Diagnostic]:
    """Names that select a plugin record: the one owner of RWM202, RWM205, RWM206 and RWM214 (the compiler skips
    what depends on an unknown record without reporting it again)."""
    # (code, label, key path, records, what `rwmspec list` calls them; None where it does not list them)
    tables: list[tuple[str, str, KeyPath, dict, str | None]] = [
        ("RWM214", "stage", ("experiment", "stage"), registry.stages, None),
        ("RWM202", "robot", ("robot", "name"), registry.robots, "robots"),
        ("RWM205", "backend", ("backend", "name"), registry.backends, "backends"),
    ]
    if spec.world_model is not None:
        tables.append(
            (
                "RWM206",
                "world-model architecture",
                ("world_model", "architecture"),
                registry.architectures,
                "architectures",
            )
        )
    for code, label, path, records, listing in tables:
        name = _get(spec, path)
        if name in records:
            continue
        names = sorted(records)
        plural = listing or f"{label}s"
        command = f" (`rwmspec list {listing}`)" if listing else ""
        yield Diagnostic(
            code,
            f"unknown {label} '{name}'{did_you_mean(name, names)}",
            path,
            hint=f"installed {plural}: {list_choices(names)}{failed_plugins(registry)}{command}",
        )


# ----------------------------------------------------------------------------------------------------------------------
# plugin checks
# ----------------------------------------------------------------------------------------------------------------------
def run_plugin_checks(spec: Spec, registry: Registry) -> Iterator[Diagnostic]:
    for name, check in sorted(registry.checks.items()):
        provider = registry.providers.get(("checks", name), name)
        try:
            found = list(check.function(spec, registry) or ())
        except Exception as exc:  # a plugin's bug must not hide the other checks' results
            if os.environ.get("RWMSPEC_FULL_ERROR") == "1":
                raise
            root = root_cause(exc)
            yield Diagnostic(
                "RWM303",
                f"check '{name}' of plugin {provider} raised {type(root).__name__}: {root}",
                hint="report this to the plugin's author; RWMSPEC_FULL_ERROR=1 shows the traceback",
            )
            continue
        for d in found:
            if isinstance(d, Diagnostic):
                yield d
            else:
                yield Diagnostic(
                    "RWM304",
                    f"check '{name}' of plugin {provider} yielded {type(d).__name__}, "
                    f"expected rwmspec.diagnostics.Diagnostic",
                )


CHECKS: tuple[Callable[[Spec, Any], Iterator[Diagnostic]], ...] = (
    lambda spec, registry: check_ranges(spec),
    check_plugin_names,
    run_plugin_checks,
)


def run_checks(spec: Spec, registry: Registry) -> list[Diagnostic]:
    """Every built-in check, then the plugins' checks. Diagnostics carry key paths only."""
    return [d for check in CHECKS for d in check(spec, registry)]
