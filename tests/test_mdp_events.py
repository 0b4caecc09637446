"""The runtime's event manager: bindings per backend, modes, interval timers, random streams, and the push term that
the real and the imagined envs share."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
import torch

from rwmspec.compile import imagined_events
from rwmspec.manager import get_registry
from rwmspec.plan import TermPlan
from rwmspec.spec.model import ImaginationSpec
from rwmspec.types import TermBinding
from rwmspec_plugins.locomotion.events import PushBySettingVelocity
from rwmspec_runtime.mdp import EventManager, Uniforms, make_event_term

N = 6


def _push(name="push", interval=(0.1, 0.3), **ranges):
    return TermPlan(
        name=name,
        kind="push_by_setting_velocity",
        mode="interval",
        interval_range_s=interval,
        params={"velocity_range": ranges or {"x": (-1.0, 1.0), "y": (-1.0, 1.0)}},
    )


class Pushable:
    """An env that records what the push term asks of it."""

    num_envs = N

    def __init__(self) -> None:
        self.linear = torch.zeros(N, 3, dtype=torch.float64)
        self.angular = torch.zeros(N, 3, dtype=torch.float64)

    def add_root_velocity(self, mask, linear, angular):
        self.linear = self.linear + linear * mask.unsqueeze(-1)
        self.angular = self.angular + angular * mask.unsqueeze(-1)


class Recorder:
    """A backend's own event term: records its calls."""

    uniform_draws = 0
    calls: list = []

    def __init__(self, **params):
        self.params = params

    def __call__(self, env, mask, rng):
        Recorder.calls.append((self.params["tag"], None if mask is None else mask.tolist()))


def test_a_backend_binding_wins_over_the_kinds_neutral_term_and_a_kind_without_either_is_named():
    registry = get_registry()
    push = _push()
    assert isinstance(make_event_term(push, registry, "embedded"), PushBySettingVelocity)
    own = TermBinding(backend="embedded", category="event", kind=push.kind, ref=f"{__name__}:Recorder")
    bound = attrs.evolve(registry, bindings={**registry.bindings, ("embedded", "event", push.kind): own})
    assert isinstance(make_event_term(attrs.evolve(push, params={"tag": 1}), bound, "embedded"), Recorder)
    reset = TermPlan(name="reset_base", kind="reset_root_state_uniform", mode="reset", params={})
    with pytest.raises(ValueError, match="reset_base.*reset_root_state_uniform.*imagination backend"):
        make_event_term(reset, registry, "imagination")


def test_modes_run_in_plan_order_and_reset_events_see_the_mask():
    registry = attrs.evolve(get_registry())
    registry.bindings = {
        **registry.bindings,
        **{
            ("test", "event", kind): TermBinding(
                backend="test", category="event", kind=kind, ref=f"{__name__}:Recorder"
            )
            for kind in ("reset_root_state_uniform", "randomize_rigid_body_mass")
        },
    }
    events = (
        TermPlan(name="b", kind="reset_root_state_uniform", mode="reset", params={"tag": "reset-1"}),
        TermPlan(name="a", kind="randomize_rigid_body_mass", mode="startup", params={"tag": "startup"}),
        TermPlan(name="c", kind="reset_root_state_uniform", mode="reset", params={"tag": "reset-2"}),
    )
    manager = EventManager(events, registry, "test")
    Recorder.calls = []
    manager.startup(object(), np.random.default_rng(0))
    manager.reset(object(), torch.tensor([True, False]), np.random.default_rng(0))
    assert Recorder.calls == [("startup", None), ("reset-1", [True, False]), ("reset-2", [True, False])]
    assert manager.interval_count == 0 and manager.interval_draws == 0


def test_interval_events_fire_per_env_when_their_timer_runs_out_and_redraw_it():
    manager = EventManager((_push(interval=(0.1, 0.3)),), get_registry(), "embedded")
    rng = np.random.default_rng(3)
    time_left = manager.draw_timers(N, rng)
    assert time_left.shape == (1, N) and bool(((time_left >= 0.1) & (time_left <= 0.3)).all())
    env = Pushable()
    first_fire = torch.full((N,), -1)
    for step in range(1, 20):
        before = time_left.clone()
        time_left, fired = manager.interval(env, time_left, 0.02, rng)
        # an env fires exactly when its timer falls below one step, and only then draws a new interval
        torch.testing.assert_close(fired, (before[0] - 0.02) < 1e-6)
        assert bool((time_left[0][fired] >= 0.1 - 1e-9).all())
        first_fire = torch.where((first_fire < 0) & fired, step, first_fire)
    assert bool((first_fire >= 5).all()) and bool((first_fire <= 15).all()) and len(set(first_fire.tolist())) > 1
    pushed = env.linear[:, :2].abs()
    assert bool((pushed > 0).all()) and env.linear[:, 2].abs().max() == 0 and env.angular.abs().max() == 0


def test_resetting_envs_redraws_only_their_timers():
    manager = EventManager((_push(),), get_registry(), "embedded")
    time_left = torch.full((1, N), 5.0, dtype=torch.float64)
    mask = torch.tensor([True, False] * (N // 2))
    fresh = manager.reset_timers(time_left, mask, np.random.default_rng(0))
    assert bool((fresh[0, ~mask] == 5.0).all()) and bool((fresh[0, mask] <= 0.3).all())


def test_the_random_stream_does_not_depend_on_which_envs_fire():
    """Every term and timer draws for all envs: after the same calls, two managers whose envs fired differently
    have used exactly the same numbers."""
    manager = EventManager((_push(interval=(0.02, 0.02)), _push("second")), get_registry(), "embedded")
    states = []
    for timers in (torch.full((2, N), 0.01, dtype=torch.float64), torch.full((2, N), 9.0, dtype=torch.float64)):
        rng = np.random.default_rng(7)
        _, fired = manager.interval(Pushable(), timers, 0.02, rng)
        states.append(rng.random())
    assert states[0] == states[1]


def test_pre_drawn_uniforms_are_handed_out_in_order_and_never_overdrawn():
    u = torch.arange(12.0).reshape(2, 6) / 12
    source = Uniforms(u)
    torch.testing.assert_close(source.random(2), u[:, 0])
    torch.testing.assert_close(source.random((2, 3)), u[:, 1:4])
    with pytest.raises(ValueError, match="more than the 6"):
        source.random((2, 3))
    with pytest.raises(ValueError, match="cannot hand out"):
        Uniforms(u).random((3, 1))


def test_the_real_and_the_imagined_push_are_one_term_drawing_the_same_velocities():
    """The imagination's push is the real envs' push term: from the same uniforms it adds the same velocities,
    whether they come from NumPy (embedded) or from pre-drawn tensors (imagination)."""
    spec = ImaginationSpec(push_interval_range=(48, 96), push_velocity=0.5)
    (imagined,) = imagined_events(spec, control_dt=0.02)
    assert imagined.kind == "push_by_setting_velocity" and imagined.interval_range_s == pytest.approx((0.96, 1.92))
    manager = EventManager((imagined,), get_registry(), "imagination")
    term = manager.terms[imagined.name]
    assert isinstance(term, PushBySettingVelocity) and manager.interval_draws == 1 + term.uniform_draws
    u = np.random.default_rng(4).random((N, term.uniform_draws))
    real, dreamt = Pushable(), Pushable()
    everyone = torch.ones(N, dtype=torch.bool)
    term(real, everyone, np.random.default_rng(4))
    term(dreamt, everyone, Uniforms(torch.from_numpy(u)))
    torch.testing.assert_close(real.linear, dreamt.linear)
    expected = -0.5 + u[:, :2]  # U(-v, v) on x and y
    torch.testing.assert_close(real.linear[:, :2], torch.from_numpy(expected))
