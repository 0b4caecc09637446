"""Reward term functions against their formulas (rwm_method §2.3), computed independently with numpy."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from rwmspec.plan import TermPlan
from rwmspec_plugins.locomotion import rewards
from rwmspec_runtime.mdp import contact_timers
from rwmspec_runtime.mdp.state import ContactTimers
from rwmspec_runtime.mdp.terms import call_reward_terms, total_reward

from term_helpers import RecordingView, random_state_view

N, J, DT = 6, 12, 0.02


def np_(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().astype(np.float64)


def check(actual: torch.Tensor, expected: np.ndarray) -> None:
    assert actual.shape == (N,)
    assert actual.dtype == torch.float32
    np.testing.assert_allclose(actual.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_velocity_tracking_terms():
    v = random_state_view(N, J, 1)
    c, lin, ang = np_(v.command), np_(v.base_lin_vel), np_(v.base_ang_vel)
    check(
        rewards.track_lin_vel_xy_exp(v, std=0.5),
        np.exp(-((c[:, 0] - lin[:, 0]) ** 2 + (c[:, 1] - lin[:, 1]) ** 2) / 0.25),
    )
    check(rewards.track_lin_vel_xy_exp(v, std=2.0), np.exp(-((c[:, :2] - lin[:, :2]) ** 2).sum(1) / 4.0))
    check(rewards.track_ang_vel_z_exp(v, std=0.5), np.exp(-((c[:, 2] - ang[:, 2]) ** 2) / 0.25))


def test_exact_tracking_gives_one():
    v = random_state_view(N, J, 2)
    v = v.replace(
        base_lin_vel=torch.cat([v.command[:, :2], v.base_lin_vel[:, 2:]], dim=1),
        base_ang_vel=torch.cat([v.base_ang_vel[:, :2], v.command[:, 2:]], dim=1),
    )
    check(rewards.track_lin_vel_xy_exp(v), np.ones(N))
    check(rewards.track_ang_vel_z_exp(v), np.ones(N))


def test_l2_penalties():
    v = random_state_view(N, J, 3)
    check(rewards.lin_vel_z_l2(v), np_(v.base_lin_vel)[:, 2] ** 2)
    check(rewards.ang_vel_xy_l2(v), (np_(v.base_ang_vel)[:, :2] ** 2).sum(1))
    check(rewards.joint_torques_l2(v), (np_(v.joint_torque) ** 2).sum(1))
    check(rewards.joint_acc_l2(v), (((np_(v.joint_vel) - np_(v.prev_joint_vel)) / DT) ** 2).sum(1))
    check(rewards.action_rate_l2(v), ((np_(v.action) - np_(v.prev_action)) ** 2).sum(1))
    check(rewards.flat_orientation_l2(v), (np_(v.projected_gravity)[:, :2] ** 2).sum(1))


def test_hand_computed_values():
    """One env with numbers small enough to check by hand."""
    z = torch.zeros
    v = random_state_view(
        N,
        J,
        0,
        base_lin_vel=torch.tensor([[0.5, 0.0, 0.2]] * N),
        command=torch.tensor([[1.0, 0.0, 0.3]] * N),
        base_ang_vel=torch.tensor([[0.1, -0.2, 0.3]] * N),
        projected_gravity=torch.tensor([[0.6, 0.0, -0.8]] * N),
        action=torch.ones(N, J),
        prev_action=z(N, J),
        joint_vel=torch.full((N, J), 0.02),
        prev_joint_vel=z(N, J),
    )
    check(rewards.track_lin_vel_xy_exp(v), np.full(N, np.exp(-1.0)))  # 0.25 / 0.25
    check(rewards.track_ang_vel_z_exp(v), np.ones(N))
    check(rewards.lin_vel_z_l2(v), np.full(N, 0.04))
    check(rewards.ang_vel_xy_l2(v), np.full(N, 0.05))
    check(rewards.flat_orientation_l2(v), np.full(N, 0.36))
    check(rewards.action_rate_l2(v), np.full(N, 12.0))
    check(rewards.joint_acc_l2(v), np.full(N, 12.0))  # (0.02 / 0.02)^2 per joint


def test_joint_pos_limits_sums_violations():
    q = torch.zeros(N, J)
    q[0, 0] = 0.5  # 0.1 above the upper soft limit 0.4
    q[0, 3] = -0.7  # 0.3 below the lower one
    q[1, 5] = 0.4  # exactly on the limit: no penalty
    v = random_state_view(N, J, 4, joint_pos=q)
    expected = np.zeros(N)
    expected[0] = 0.4
    check(rewards.joint_pos_limits(v), expected)
    per_env = v.soft_joint_pos_limits.expand(N, J, 2)
    check(rewards.joint_pos_limits(v.replace(soft_joint_pos_limits=per_env)), expected)
    check(rewards.joint_pos_limits(v.replace(soft_joint_pos_limits=None)), np.zeros(N))


def test_undesired_contacts_counts_bodies():
    v = random_state_view(N, J, 5)
    check(rewards.undesired_contacts(v, bodies="thighs"), np_(v.contacts["thighs"]).sum(1))
    check(rewards.undesired_contacts(v, bodies="base", threshold=1.0), np_(v.contacts["base"]).sum(1))
    with pytest.raises(KeyError, match="contact group 'hands'"):
        rewards.undesired_contacts(v, bodies="hands")


def test_stand_still_gated_by_full_command_norm():
    command = torch.tensor(
        [[0.0, 0.0, 0.0], [0.03, 0.0, 0.0], [0.03, 0.03, 0.03], [0.0, 0.0, 0.2], [1.0, 0.0, 0.0], [0.0, 0.0, 0.049]]
    )
    v = random_state_view(N, J, 6, command=command)
    deviation = np.abs(np_(v.joint_pos) - np_(v.default_joint_pos)).sum(1)
    gate = np.array([1, 1, 0, 0, 0, 1], dtype=float)  # norm 0.052 of row 2 is above 0.05
    check(rewards.stand_still(v, threshold=0.05), deviation * gate)
    check(rewards.stand_still(v, threshold=10.0), deviation)


def test_feet_air_time_over_a_touchdown_sequence():
    """One foot flies for 3 steps, lands, stays down; reward is paid exactly once, on the landing step."""
    contact_seq = [True, False, False, False, True, True, False, True]
    timers = contact_timers.zeros(1, 1)
    command = torch.tensor([[1.0, 0.0, 0.0]])
    paid = []
    for flag in contact_seq:
        timers = contact_timers.advance(timers, torch.tensor([[flag]]), DT)
        v = random_state_view(N, J, 0, contact_timers={"feet": timers}, command=command, base_lin_vel=torch.zeros(1, 3))
        paid.append(float(rewards.feet_air_time(v, bodies="feet", threshold=0.5)[0]))
    # step 0: contact from rest counts as first contact (Isaac Lab), last_air_time still 0 -> -0.5
    # step 4: landed after 3 airborne steps + the landing step -> last_air_time 4 * dt
    # step 7: landed after 1 airborne step + landing -> 2 * dt
    expected = [-0.5, 0, 0, 0, 4 * DT - 0.5, 0, 0, 2 * DT - 0.5]
    np.testing.assert_allclose(paid, expected, atol=1e-6)


def test_feet_air_time_sums_feet_and_gates_on_planar_command():
    last_air = torch.tensor([[0.7, 0.2, 0.9, 0.4]]).repeat(N, 1)
    contact_time = torch.tensor([[DT, DT, 2 * DT, 0.0]]).repeat(N, 1)  # feet 0, 1 just landed
    timers = ContactTimers(
        current_air_time=torch.zeros(N, 4),
        current_contact_time=contact_time,
        last_air_time=last_air,
        last_contact_time=torch.zeros(N, 4),
    )
    command = torch.tensor(
        [[1.0, 0.0, 0.0], [0.0, 0.09, 0.0], [0.0, 0.11, 0.0], [0.0, 0.0, 1.0], [-0.5, 0.5, 0.0], [0.05, 0.05, 0.0]]
    )
    v = random_state_view(N, J, 7, contact_timers={"feet": timers}, command=command)
    per_env = (0.7 - 0.5) + (0.2 - 0.5)
    gate = np.array([1, 0, 1, 0, 1, 0], dtype=float)  # ||c_xy|| > 0.1; w_z does not count
    check(rewards.feet_air_time(v, bodies="feet", threshold=0.5, command_threshold=0.1), per_env * gate)
    strictly_moving = np.array([1, 1, 1, 0, 1, 1], dtype=float)  # ||c_xy|| > 0 is strict: env 3 only turns
    check(rewards.feet_air_time(v, threshold=0.1, command_threshold=0.0), (0.6 + 0.1) * strictly_moving)
    with pytest.raises(KeyError, match="no contact timers for group 'hind'"):
        rewards.feet_air_time(v, bodies="hind")


def test_terms_work_on_any_object_with_the_fields():
    """A plain namespace with the same fields gives the same numbers: no hidden state beyond the view."""
    v = random_state_view(N, J, 8)
    plain = types.SimpleNamespace(**v.as_dict())
    for fn, kwargs in REWARD_CALLS:
        torch.testing.assert_close(fn(plain, **kwargs), fn(v, **kwargs))


REWARD_CALLS = [
    (rewards.track_lin_vel_xy_exp, {"std": 0.5}),
    (rewards.track_ang_vel_z_exp, {"std": 0.5}),
    (rewards.lin_vel_z_l2, {}),
    (rewards.ang_vel_xy_l2, {}),
    (rewards.joint_torques_l2, {}),
    (rewards.joint_acc_l2, {}),
    (rewards.action_rate_l2, {}),
    (rewards.flat_orientation_l2, {}),
    (rewards.joint_pos_limits, {}),
    (rewards.feet_air_time, {"bodies": "feet", "threshold": 0.5}),
    (rewards.undesired_contacts, {"bodies": "thighs", "threshold": 1.0}),
    (rewards.stand_still, {"threshold": 0.05}),
]

#: the StateView fields each reward may read: what a view builder (e.g. imagination) has to fill in
EXPECTED_READS = {
    "track_lin_vel_xy_exp": {"command", "base_lin_vel"},
    "track_ang_vel_z_exp": {"command", "base_ang_vel"},
    "lin_vel_z_l2": {"base_lin_vel"},
    "ang_vel_xy_l2": {"base_ang_vel"},
    "joint_torques_l2": {"joint_torque"},
    "joint_acc_l2": {"joint_vel", "prev_joint_vel", "dt"},
    "action_rate_l2": {"action", "prev_action"},
    "flat_orientation_l2": {"projected_gravity"},
    "joint_pos_limits": {"soft_joint_pos_limits", "joint_pos"},
    "feet_air_time": {"contact_timers", "dt", "command"},
    "undesired_contacts": {"contacts"},
    "stand_still": {"joint_pos", "default_joint_pos", "command"},
}


@pytest.mark.parametrize("fn,kwargs", REWARD_CALLS, ids=[fn.__name__ for fn, _ in REWARD_CALLS])
def test_rewards_read_only_declared_view_fields(fn, kwargs):
    v = random_state_view(N, J, 9)
    rec = RecordingView(**v.as_dict())
    rec.__dict__.pop("_reads", None)
    fn(rec, **kwargs)
    reads = rec.__dict__["_reads"] - {"_reads"}
    assert reads <= set(v.as_dict())
    assert reads == EXPECTED_READS[fn.__name__]


def test_call_reward_terms_weights_dt_and_skips_zero_weights():
    v = random_state_view(N, J, 10)
    plans = [
        TermPlan(name="track", kind="track_lin_vel_xy_exp", params={"std": 0.5}, weight=1.0),
        TermPlan(name="torques", kind="joint_torques_l2", weight=-2.5e-5),
        TermPlan(name="air", kind="feet_air_time", params={"bodies": "feet", "threshold": 0.5}, weight=0.5),
        TermPlan(name="off", kind="joint_pos_limits", weight=0.0),
    ]
    called = []

    def never(view, **_):
        called.append(True)
        return torch.zeros(N)

    fns = {
        "track": rewards.track_lin_vel_xy_exp,
        "torques": rewards.joint_torques_l2,
        "air": rewards.feet_air_time,
        "off": never,
    }
    out = call_reward_terms(v, plans, fns)
    assert set(out) == {"track", "torques", "air"} and not called
    torch.testing.assert_close(out["track"], rewards.track_lin_vel_xy_exp(v, std=0.5) * 1.0 * DT)
    torch.testing.assert_close(out["torques"], rewards.joint_torques_l2(v) * -2.5e-5 * DT)
    torch.testing.assert_close(out["air"], rewards.feet_air_time(v, bodies="feet", threshold=0.5) * 0.5 * DT)
    torch.testing.assert_close(total_reward(out, v), out["track"] + out["torques"] + out["air"])
    assert total_reward({}, v).shape == (N,)


def test_call_reward_terms_rejects_bad_shapes_and_params():
    v = random_state_view(N, J, 11)
    with pytest.raises(ValueError, match="returned shape"):
        call_reward_terms(v, [TermPlan(name="bad", kind="x", weight=1.0)], {"bad": lambda view: torch.zeros(N, 2)})
    with pytest.raises(TypeError, match="term 'track' .* params \\['sigma'\\]"):
        call_reward_terms(
            v,
            [TermPlan(name="track", kind="track_lin_vel_xy_exp", params={"sigma": 1.0}, weight=1.0)],
            {"track": rewards.track_lin_vel_xy_exp},
        )


def test_bind_term_functions_resolves_kinds_with_clear_errors():
    from rwmspec.manager import Registry
    from rwmspec.types import TermKind
    from rwmspec_runtime.mdp.terms import bind_term_functions, resolve_term_function

    kinds = {
        ("reward", "stand_still"): TermKind(
            name="stand_still",
            category="reward",
            description="d",
            function="rwmspec_plugins.locomotion.rewards:stand_still",
        ),
        ("reward", "no_fn"): TermKind(name="no_fn", category="reward", description="d"),
        ("reward", "typo"): TermKind(
            name="typo", category="reward", description="d", function="rwmspec_plugins.locomotion.rewards:stand_stil"
        ),
    }
    registry = Registry(term_kinds=kinds)
    fns = bind_term_functions([TermPlan(name="still", kind="stand_still", weight=-1.0)], registry, "reward")
    assert fns == {"still": rewards.stand_still}
    with pytest.raises(KeyError, match="kind 'nope', which no installed plugin registers.*'stand_still'"):
        bind_term_functions([TermPlan(name="x", kind="nope")], registry, "reward")
    with pytest.raises(ValueError, match="'no_fn' has no torch implementation"):
        resolve_term_function(kinds[("reward", "no_fn")])
    with pytest.raises(ImportError, match="'typo': cannot import its function"):
        resolve_term_function(kinds[("reward", "typo")])
