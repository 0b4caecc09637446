"""The ANYmal D MJCF (plugins/anymal_d/anymal_d.xml): structure, RobotDef agreement, stance physics and sensors."""

from __future__ import annotations

import importlib.resources
import pathlib
import time

import mujoco
import numpy as np
import pytest

from rwmspec_plugins.anymal_d.assets import mjcf_path
from rwmspec_plugins.anymal_d.plugin import ANYMAL_D, LEGS

#: trunk + 4 x (hip + thigh + shank) composite masses of the URDF figures (payload excluded), kg
COMPOSITE_MASS = 26.57885 + 4 * (0.36586 + 5.13220 + 0.79598)
GRAVITY = 9.81
#: Kp the stance tests use: Isaac Lab's Kp 40 cannot hold the default pose statically (see test_native_pd_sags)
STANCE_KP = 80.0


@pytest.fixture(scope="module")
def model():
    return mujoco.MjModel.from_xml_path(str(mjcf_path()))


def _actuated(model, attr: str) -> np.ndarray:
    """Per actuator (Isaac Lab order), the qpos/dof address of its joint; shape [12]."""
    return np.array([getattr(model, attr)[model.actuator_trnid[i, 0]] for i in range(model.nu)])


def _stand(kp: float, seconds: float):
    """Drop from the ``home`` keyframe with ctrl = default pose and the PD gain ``kp``; return the data."""
    m = mujoco.MjModel.from_xml_path(str(mjcf_path()))  # a fresh copy: the gains are changed in place
    m.actuator_gainprm[:, 0] = kp
    m.actuator_biasprm[:, 1] = -kp
    data = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, data, m.key("home").id)
    for _ in range(round(seconds / m.opt.timestep)):
        mujoco.mj_step(m, data)
    return m, data


def _contact(model, data, body: str) -> np.ndarray:
    """[number of contacts, net force xyz] of the contact sensor of ``body``."""
    return data.sensor(f"contact_{body}").data


def test_dimensions_and_mass(model):
    assert (model.nq, model.nv, model.nu) == (19, 18, 12)
    assert mujoco.mj_getTotalmass(model) == pytest.approx(COMPOSITE_MASS, rel=0.01)
    assert model.opt.timestep == pytest.approx(0.005)
    # the feet are massless welded bodies: the segment masses are the URDF composites
    for leg in LEGS:
        assert model.body(f"{leg}_FOOT").mass[0] == 0.0
        assert model.body(f"{leg}_THIGH").mass[0] == pytest.approx(5.13220)


def test_names_and_order_match_robot_def(model):
    joints = ANYMAL_D.joint_names
    assert tuple(model.actuator(i).name for i in range(model.nu)) == joints
    assert tuple(model.joint(model.actuator_trnid[i, 0]).name for i in range(model.nu)) == joints
    assert model.joint(0).name == "base" and model.jnt_type[0] == mujoco.mjtJoint.mjJNT_FREE
    assert model.body(model.jnt_bodyid[0]).name == ANYMAL_D.base_body
    for leg in LEGS:
        for part in ("HIP", "THIGH", "SHANK", "FOOT"):
            model.body(f"{leg}_{part}")  # raises KeyError when missing
    for group in ANYMAL_D.contact_groups:
        for body in group.bodies:
            assert model.sensor(f"contact_{body}").dim[0] == 4
    # HAA limits from the RobotDef; HFE/KFE unlimited
    for i, (lo, hi) in enumerate(ANYMAL_D.joint_pos_limits):
        jid = model.actuator_trnid[i, 0]
        if ANYMAL_D.joint_names[i].endswith("HAA"):
            assert model.jnt_limited[jid] and tuple(model.jnt_range[jid]) == pytest.approx((lo, hi))
        else:
            assert not model.jnt_limited[jid]


def test_embedded_asset_resolves_to_the_packaged_file():
    from rwmspec.manager import get_registry

    package, name = get_registry().asset("anymal_d", "embedded").ref.split(":")
    assert pathlib.Path(str(importlib.resources.files(package).joinpath(name))) == mjcf_path()


def test_home_keyframe_is_the_default_pose(model):
    key = model.key("home")
    assert key.qpos[2] == pytest.approx(ANYMAL_D.init_base_height)
    np.testing.assert_allclose(key.qpos[_actuated(model, "jnt_qposadr")], ANYMAL_D.default_joint_pos)
    np.testing.assert_allclose(key.ctrl, ANYMAL_D.default_joint_pos)


def test_joint_signs_give_the_x_stance(model):
    """Isaac Lab's default pose puts the front knees behind the front hips and the hind knees ahead of theirs."""
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    mujoco.mj_forward(model, data)
    for leg in LEGS:
        hip_x = data.body(f"{leg}_THIGH").xpos[0]
        knee_x = data.body(f"{leg}_SHANK").xpos[0]
        sign = 1.0 if leg[1] == "F" else -1.0
        assert sign * (knee_x - hip_x) < -0.05  # knees point inwards
        foot = data.body(f"{leg}_FOOT").xpos
        assert foot[2] - data.qpos[2] == pytest.approx(-0.5571, abs=2e-3)  # foot sphere centre below the base
        assert np.sign(foot[1]) == (1.0 if leg[0] == "L" else -1.0)
    # positive HAA on a left leg swings its foot outwards (+y)
    lf = model.joint("LF_HAA").qposadr[0]
    y0 = data.body("LF_FOOT").xpos[1]
    data.qpos[lf] = 0.2
    mujoco.mj_forward(model, data)
    assert data.body("LF_FOOT").xpos[1] > y0


def test_pd_actuator_law(model):
    """actuator force = clip(40 (ctrl - q) - 5 qdot, -80, 80)."""
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    qadr, dadr = _actuated(model, "jnt_qposadr"), _actuated(model, "jnt_dofadr")
    rng = np.random.default_rng(0)
    data.ctrl[:] = data.qpos[qadr] + rng.uniform(-3.0, 3.0, 12)
    data.qvel[dadr] = rng.uniform(-3.0, 3.0, 12)
    mujoco.mj_forward(model, data)
    expected = np.clip(40.0 * (data.ctrl - data.qpos[qadr]) - 5.0 * data.qvel[dadr], -80.0, 80.0)
    np.testing.assert_allclose(data.actuator_force, expected, atol=1e-9)
    assert np.abs(expected).max() == 80.0  # the clip was exercised


def test_stands_on_four_feet_with_a_stiffer_pd(model):
    m, data = _stand(STANCE_KP, 5.0)
    g = data.sensor("projected_gravity").data
    assert g[2] < -0.95
    assert 0.45 < data.qpos[2] < 0.65
    for leg in LEGS:
        assert _contact(m, data, f"{leg}_FOOT")[0] >= 1
        assert _contact(m, data, f"{leg}_THIGH")[0] == 0
    assert _contact(m, data, "base")[0] == 0
    # the feet carry the weight (contact force reported as the force the foot exerts: z negative)
    total_z = sum(_contact(m, data, f"{leg}_FOOT")[3] for leg in LEGS)
    assert total_z == pytest.approx(-mujoco.mj_getTotalmass(m) * GRAVITY, rel=0.05)
    tau = np.array([data.sensor(f"tau_{j}").data[0] for j in ANYMAL_D.joint_names])
    # sign pattern of the upstream RWM torque normalizer means (HAA -,-,+,+; HFE -,+,-,+; KFE +,-,+,-)
    upstream = np.array(ANYMAL_D.state_block("joint_torque").mean)
    assert np.array_equal(np.sign(tau), np.sign(upstream)), tau
    print(f"\nstance at Kp {STANCE_KP}: base z {data.qpos[2]:.4f} m, torques {np.round(tau, 2)}")
    for leg in LEGS:
        print(f"  {leg}_FOOT at {np.round(data.body(f'{leg}_FOOT').xpos, 4)}")


def test_native_pd_sags_but_stays_upright(model):
    """Isaac Lab's Kp 40 cannot hold the default pose (the knees need ~30 N m): the robot sinks but does not fall.

    "Falling" is what ends an episode: a base contact. After 5 s at the default pose the trunk is still off the
    ground and upright, and the feet still carry it.
    """
    m, data = _stand(40.0, 2.0)
    assert 0.40 < data.qpos[2] < 0.52
    print(f"\nKp 40 after 2 s: base z {data.qpos[2]:.4f} m")
    m, data = _stand(40.0, 5.0)
    assert data.sensor("projected_gravity").data[2] < -0.95
    assert data.qpos[2] > 0.3
    assert all(_contact(m, data, f"{leg}_FOOT")[0] >= 1 for leg in LEGS)
    assert _contact(m, data, "base")[0] == 0
    print(f"Kp 40 after 5 s: base z {data.qpos[2]:.4f} m")


def test_sensors_match_data(model):
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    rng = np.random.default_rng(1)
    data.qpos[3:7] = rng.normal(size=4)
    data.qpos[3:7] /= np.linalg.norm(data.qpos[3:7])
    data.qvel[:] = rng.normal(size=model.nv)
    data.ctrl[:] += rng.normal(scale=0.3, size=12)
    mujoco.mj_forward(model, data)
    rot = data.xmat[model.body("base").id].reshape(3, 3)  # base -> world
    np.testing.assert_allclose(data.sensor("base_lin_vel").data, rot.T @ data.qvel[0:3], atol=1e-10)
    np.testing.assert_allclose(data.sensor("base_ang_vel").data, data.qvel[3:6], atol=1e-10)
    np.testing.assert_allclose(data.sensor("projected_gravity").data, rot.T @ np.array([0.0, 0.0, -1.0]), atol=1e-10)
    torques = np.array([data.sensor(f"tau_{j}").data[0] for j in ANYMAL_D.joint_names])
    np.testing.assert_allclose(torques, data.actuator_force, atol=1e-10)
    # the 12 torques are one contiguous block in Isaac Lab order
    adr = model.sensor("tau_LF_HAA").adr[0]
    np.testing.assert_allclose(data.sensordata[adr : adr + 12], data.actuator_force, atol=1e-10)


def test_rollout_matches_mj_step_and_reports_step_rate(model):
    """Batched ``mujoco.rollout`` gives the same sensordata as a Python mj_step loop; prints the raw step rate."""
    from mujoco import rollout

    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state0 = np.zeros(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, data, state0, spec)
    n_env, n_step = 256, 100
    rng = np.random.default_rng(2)
    ctrl = np.asarray(ANYMAL_D.default_joint_pos) + 0.3 * rng.standard_normal((n_env, n_step, model.nu))
    with rollout.Rollout(nthread=0) as runner:
        start = time.perf_counter()
        state, sensordata = runner.rollout(model, data, np.tile(state0, (n_env, 1)), ctrl)
        elapsed = time.perf_counter() - start
    assert state.shape == (n_env, n_step, state0.size) and sensordata.shape == (n_env, n_step, model.nsensordata)
    assert np.isfinite(state).all()
    print(f"\nrollout, 1 thread: {n_env}x{n_step} steps in {elapsed:.3f} s = {n_env * n_step / elapsed:,.0f} steps/s")
    check = mujoco.MjData(model)
    mujoco.mj_setState(model, check, state0, spec)
    for t in range(n_step):
        check.ctrl[:] = ctrl[3, t]
        mujoco.mj_step(model, check)
    np.testing.assert_allclose(sensordata[3, -1], check.sensordata, atol=1e-8)
