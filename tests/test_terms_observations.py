"""Observation term functions: values, shapes, and that they read nothing but the declared view fields."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from rwmspec.plan import ObservationGroupPlan, ObservationTermPlan
from rwmspec_plugins.locomotion import observations as obs
from rwmspec_runtime.mdp.terms import compute_observation_group

from term_helpers import RecordingView, random_state_view

N, J = 5, 12


OBS_CALLS = [
    (obs.base_lin_vel, {}, 3, "base_lin_vel"),
    (obs.base_ang_vel, {}, 3, "base_ang_vel"),
    (obs.projected_gravity, {}, 3, "projected_gravity"),
    (obs.generated_commands, {"command_name": "base_velocity"}, 3, "command"),
    (obs.joint_vel_rel, {}, J, "joint_vel"),
    (obs.joint_effort, {}, J, "joint_torque"),
    (obs.last_action, {}, J, "action"),
]


@pytest.mark.parametrize("fn,kwargs,dim,field", OBS_CALLS, ids=[c[0].__name__ for c in OBS_CALLS])
def test_direct_terms_return_their_field(fn, kwargs, dim, field):
    v = random_state_view(N, J, 1)
    out = fn(v, **kwargs)
    assert out.shape == (N, dim) and out.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy(), getattr(v, field).numpy())


def test_last_action_is_this_steps_action_not_the_previous_one():
    v = random_state_view(N, J, 2)
    assert torch.equal(obs.last_action(v), v.action) and not torch.equal(obs.last_action(v), v.prev_action)


def test_joint_pos_rel_subtracts_default_pose():
    v = random_state_view(N, J, 3)
    expected = v.joint_pos.numpy().astype(np.float64) - v.default_joint_pos.numpy()[None, :]
    np.testing.assert_allclose(obs.joint_pos_rel(v).numpy(), expected, rtol=1e-6, atol=1e-6)
    per_env_default = v.replace(default_joint_pos=v.default_joint_pos.expand(N, J).clone())
    torch.testing.assert_close(obs.joint_pos_rel(per_env_default), obs.joint_pos_rel(v))


def test_body_contact_is_float_flags_of_the_group():
    v = random_state_view(N, J, 4)
    out = obs.body_contact(v, bodies="thighs", threshold=1.0)
    assert out.shape == (N, 4) and out.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy(), v.contacts["thighs"].numpy().astype(np.float32))
    assert set(np.unique(obs.body_contact(v, bodies="feet").numpy())) <= {0.0, 1.0}
    with pytest.raises(KeyError, match="contact group 'knees' .*'feet', 'thighs'"):
        obs.body_contact(v, bodies="knees")


ALL_CALLS = [(fn, kw) for fn, kw, _, _ in OBS_CALLS] + [
    (obs.joint_pos_rel, {}),
    (obs.body_contact, {"bodies": "feet", "threshold": 1.0}),
]
EXPECTED_READS = {
    "base_lin_vel": {"base_lin_vel"},
    "base_ang_vel": {"base_ang_vel"},
    "projected_gravity": {"projected_gravity"},
    "generated_commands": {"command"},
    "joint_pos_rel": {"joint_pos", "default_joint_pos"},
    "joint_vel_rel": {"joint_vel"},
    "joint_effort": {"joint_torque"},
    "last_action": {"action"},
    "body_contact": {"contacts"},
}


@pytest.mark.parametrize("fn,kwargs", ALL_CALLS, ids=[fn.__name__ for fn, _ in ALL_CALLS])
def test_observations_read_only_declared_fields_and_no_hidden_state(fn, kwargs):
    v = random_state_view(N, J, 5)
    values = v.as_dict()
    rec = RecordingView(**values)
    fn(rec, **kwargs)
    reads = rec.__dict__["_reads"] - {"_reads"}
    assert reads <= set(v.as_dict())
    assert reads == EXPECTED_READS[fn.__name__]
    torch.testing.assert_close(fn(types.SimpleNamespace(**values), **kwargs), fn(v, **kwargs))


def test_compute_observation_group_concatenates_in_plan_order_and_checks_widths():
    v = random_state_view(N, J, 6)
    terms = (
        ObservationTermPlan(name="lin", kind="base_lin_vel", dim=3, start=0),
        ObservationTermPlan(name="q", kind="joint_pos_rel", dim=J, start=3),
        ObservationTermPlan(
            name="feet", kind="body_contact", params={"bodies": "feet", "threshold": 1.0}, dim=4, start=3 + J
        ),
    )
    group = ObservationGroupPlan(name="g", terms=terms, dim=3 + J + 4)
    fns = {"lin": obs.base_lin_vel, "q": obs.joint_pos_rel, "feet": obs.body_contact}
    out = compute_observation_group(v, group, fns)
    assert out.shape == (N, group.dim)
    torch.testing.assert_close(out[:, group.slice("q")], obs.joint_pos_rel(v))
    torch.testing.assert_close(out[:, group.slice("feet")], v.contacts["feet"].float())
    wrong = ObservationGroupPlan(
        name="g", terms=(ObservationTermPlan(name="lin", kind="base_lin_vel", dim=4, start=0),), dim=4
    )
    with pytest.raises(ValueError, match="term 'lin' .* returned shape \\(5, 3\\), but the plan gives it 4"):
        compute_observation_group(v, wrong, fns)
