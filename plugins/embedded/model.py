"""The robot's MuJoCo model as the embedded backend uses it, and where each quantity sits in MuJoCo's arrays.

``build_model`` loads the robot plugin's MJCF and makes three changes through ``mujoco.MjSpec`` so that the plan,
not the XML, decides the physics that matter for fidelity:

* the time step is the plan's ``physics_dt`` (solver iterations optionally overridden by backend options);
* every actuator of a plan joint becomes the robot's actuator model: with a saturation effort and a velocity limit
  (Isaac Lab ``DCMotorCfg``) MuJoCo's ``dcmotor`` actuator with an on-board PD controller, otherwise an affine-bias
  PD (Isaac Lab ``IdealPDActuatorCfg``); see ``actuator_parameters``;
* the XML's sensors are replaced by exactly the ones the backend reads: the applied joint torque of each plan
  joint and the net contact force of each contact-group body. Base and joint states come from the state vector.

``ModelIndex`` holds the addresses of those quantities in the rollout state vector and in ``sensordata``, so the
per-step read-out is plain NumPy fancy indexing over all envs.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import mujoco
import numpy as np

from rwmspec.plan import Plan
from rwmspec.types import ActuatorDef

#: Full physics state as ``mujoco.rollout`` reads and writes it: time, qpos, qvel, act, ...
STATE_SPEC = mujoco.mjtState.mjSTATE_FULLPHYSICS.value
#: Prefix of the sensors the backend adds (it deletes the XML's own).
SENSOR_PREFIX = "rwmspec_"


@attrs.frozen(kw_only=True)
class ActuatorParameters:
    """MuJoCo parameters reproducing an ``ActuatorDef``; ``dc_motor`` False means an affine-bias PD."""

    dc_motor: bool
    stiffness: float
    damping: float
    effort_limit: float
    #: dcmotor only: motor constant K (N m / A and V s / rad), terminal resistance R (Ohm) and driver voltage
    #: limit V (V). With K = 1: stall torque K V / R = saturation effort, no-load speed V / K = velocity limit.
    motor_constant: float = 1.0
    resistance: float = 0.0
    voltage_limit: float = 0.0


def plan_actuator(plan: Plan) -> ActuatorDef:
    """The plan's actuator: the robot's, with its ``[robot.options]`` applied by the robot plugin at compile time."""
    if plan.robot.actuator is None:
        raise ValueError(f"{plan.spec_file}: the plan has no resolved actuator (compiled by an older rwmspec?)")
    return plan.robot.actuator


def actuator_parameters(actuator: ActuatorDef) -> ActuatorParameters:
    """The MuJoCo actuator that reproduces Isaac Lab's actuator model ``actuator``.

    Isaac Lab's DC motor clips the PD torque to ``[S (-1 - w / w_max), S (1 - w / w_max)]`` and then to the effort
    limit. MuJoCo's ``dcmotor`` with a PD controller drives the terminal voltage ``v = (R / K) tau + K w`` clamped
    to ``+-V``, so the delivered torque ``K (v - K w) / R`` is the PD torque inside exactly that torque-speed band
    when ``K V / R = S`` and ``V / K = w_max``; ``saturation`` then clips to the effort limit. The two differ only
    beyond the no-load speed (``|w| > w_max``), where Isaac Lab outputs zero and the motor model brakes.
    """
    if actuator.saturation_effort is None or actuator.velocity_limit is None:
        return ActuatorParameters(
            dc_motor=False, stiffness=actuator.stiffness, damping=actuator.damping, effort_limit=actuator.effort_limit
        )
    k = 1.0
    voltage = actuator.velocity_limit * k
    return ActuatorParameters(
        dc_motor=True,
        stiffness=actuator.stiffness,
        damping=actuator.damping,
        effort_limit=actuator.effort_limit,
        motor_constant=k,
        resistance=k * voltage / actuator.saturation_effort,
        voltage_limit=voltage,
    )


def _set_actuator(act: mujoco.MjsActuator, params: ActuatorParameters) -> None:
    if params.dc_motor:
        k = params.motor_constant
        act.set_to_dcmotor(
            motorconst=[k, k],
            resistance=params.resistance,
            saturation=[params.effort_limit, 0.0, 0.0],
            controller=[params.stiffness, 0.0, params.damping, 0.0, 0.0, params.voltage_limit],
            ctrlspec=int(mujoco.mjtCtrlInput.mjINPUT_POS),
        )
    else:
        act.set_to_position(kp=params.stiffness, kv=params.damping)
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-params.effort_limit, params.effort_limit]
    act.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE
    act.gear = [1.0, 0, 0, 0, 0, 0]


@attrs.frozen(kw_only=True)
class ModelIndex:
    """Addresses in the rollout state vector ``[time, qpos, qvel, ...]`` and in ``sensordata``.

    Shapes: J plan joints, B_g bodies of contact group g. Joint arrays follow the plan's joint order.
    """

    nstate: int
    nsensordata: int
    nu: int
    #: state columns of the base position (3) and orientation quaternion w, x, y, z (4)
    base_pos: np.ndarray
    base_quat: np.ndarray
    #: state columns of the base linear velocity (world frame, 3) and angular velocity (base frame, 3)
    base_lin_vel: np.ndarray
    base_ang_vel: np.ndarray
    joint_pos: np.ndarray  #: [J] state columns of the joint positions
    joint_vel: np.ndarray  #: [J] state columns of the joint velocities
    actuator: np.ndarray  #: [J] control index of each joint's actuator
    joint_torque: np.ndarray  #: [J] sensordata columns of the applied joint torques
    contact_force: dict[str, np.ndarray]  #: group -> [B_g, 3] sensordata columns of each body's net contact force
    base_body: int  #: body id of the base


def _body_names(model: mujoco.MjModel) -> list[str]:
    return [model.body(i).name for i in range(model.nbody)]


def _require(name: str, names: list[str], what: str, path: Path) -> None:
    if name not in names:
        raise ValueError(
            f"{path}: the robot plan names {what} {name!r}, which the MJCF does not have "
            f"({what}s: {', '.join(n for n in names if n) or 'none'}); fix the robot plugin"
        )


def build_model(
    plan: Plan, mjcf: str | Path, *, solver_iterations: int | None = None, ls_iterations: int | None = None
) -> tuple[mujoco.MjModel, ModelIndex]:
    """Compile the robot's MJCF file for this plan and index it. Raises ``ValueError`` naming the file on
    mismatches."""
    path = Path(mjcf)
    spec = mujoco.MjSpec.from_file(str(path))
    spec.option.timestep = plan.sim.physics_dt
    if solver_iterations is not None:
        spec.option.iterations = solver_iterations
    if ls_iterations is not None:
        spec.option.ls_iterations = ls_iterations

    joints = [j.name for j in spec.joints]
    for name in plan.robot.joint_names:
        _require(name, joints, "joint", path)
    bodies = [b.name for b in spec.bodies]
    _require(plan.robot.base_body, bodies, "body", path)
    for group, names in plan.robot.contact_bodies.items():
        for name in names:
            _require(name, bodies, f"body (contact group {group!r})", path)

    # one actuator per plan joint, with the robot's actuator model
    params = actuator_parameters(plan_actuator(plan))
    by_joint: dict[str, mujoco.MjsActuator] = {}
    for act in spec.actuators:
        if act.trntype == mujoco.mjtTrn.mjTRN_JOINT and act.target in plan.robot.joint_names:
            if act.target in by_joint:
                raise ValueError(
                    f"{path}: joint {act.target!r} has two actuators; the embedded backend drives each "
                    "plan joint with exactly one"
                )
            by_joint[act.target] = act
    missing = [j for j in plan.robot.joint_names if j not in by_joint]
    if missing:
        raise ValueError(f"{path}: joints {missing} have no actuator; add one <general joint=...> per joint")
    for act in by_joint.values():
        _set_actuator(act, params)

    # the sensors the backend reads, nothing else (every sensor costs time in every substep)
    for sensor in list(spec.sensors):
        spec.delete(sensor)
    for name in plan.robot.joint_names:
        spec.add_sensor(
            name=f"{SENSOR_PREFIX}tau_{name}",
            type=mujoco.mjtSensor.mjSENS_JOINTACTFRC,
            objtype=mujoco.mjtObj.mjOBJ_JOINT,
            objname=name,
        )
    contact_sensors: dict[str, list[str]] = {}
    for group, names in plan.robot.contact_bodies.items():
        contact_sensors[group] = [f"{SENSOR_PREFIX}contact_{name}" for name in names]
    for name in dict.fromkeys(n for names in plan.robot.contact_bodies.values() for n in names):
        sensor = spec.add_sensor(
            name=f"{SENSOR_PREFIX}contact_{name}",
            type=mujoco.mjtSensor.mjSENS_CONTACT,
            objtype=mujoco.mjtObj.mjOBJ_BODY,
            objname=name,
        )
        # intprm = (data bits: force = 2, reduce: net force = 3, slots: 1) -> 3 values, the body's net contact force
        sensor.intprm = [2, 3, 1]

    model = spec.compile()
    return model, _index(model, plan, path, contact_sensors)


def _index(model: mujoco.MjModel, plan: Plan, path: Path, contact_sensors: dict[str, list[str]]) -> ModelIndex:
    qpos0 = 1  # the time occupies column 0 of the state vector
    qvel0 = qpos0 + model.nq
    base = model.body(plan.robot.base_body)
    free = [
        j
        for j in range(model.njnt)
        if model.jnt_bodyid[j] == base.id and model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE
    ]
    if not free:
        raise ValueError(
            f"{path}: base body {plan.robot.base_body!r} has no free joint; a floating-base robot needs "
            "<freejoint/> in its base body"
        )
    qadr, dadr = model.jnt_qposadr[free[0]], model.jnt_dofadr[free[0]]
    joint_ids = [model.joint(n).id for n in plan.robot.joint_names]
    actuator_of = {
        int(model.actuator_trnid[a, 0]): a
        for a in range(model.nu)
        if model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT
    }

    def sensor_cols(name: str, width: int) -> np.ndarray:
        adr = model.sensor_adr[model.sensor(name).id]
        return np.arange(adr, adr + width)

    return ModelIndex(
        nstate=mujoco.mj_stateSize(model, STATE_SPEC),
        nsensordata=model.nsensordata,
        nu=model.nu,
        base_pos=qpos0 + qadr + np.arange(3),
        base_quat=qpos0 + qadr + 3 + np.arange(4),
        base_lin_vel=qvel0 + dadr + np.arange(3),
        base_ang_vel=qvel0 + dadr + 3 + np.arange(3),
        joint_pos=qpos0 + model.jnt_qposadr[joint_ids],
        joint_vel=qvel0 + model.jnt_dofadr[joint_ids],
        actuator=np.array([actuator_of[j] for j in joint_ids]),
        joint_torque=np.concatenate([sensor_cols(f"{SENSOR_PREFIX}tau_{n}", 1) for n in plan.robot.joint_names]),
        contact_force={g: np.stack([sensor_cols(s, 3) for s in names]) for g, names in contact_sensors.items()},
        base_body=base.id,
    )


def geoms_of_bodies(model: mujoco.MjModel, pattern: str) -> np.ndarray:
    """Collision geoms (contype or conaffinity set) of the bodies whose name fully matches ``pattern``."""
    bodies = bodies_matching(model, pattern)
    return np.array(
        [
            g
            for g in range(model.ngeom)
            if model.geom_bodyid[g] in set(bodies.tolist()) and (model.geom_contype[g] or model.geom_conaffinity[g])
        ],
        dtype=int,
    )


def bodies_matching(model: mujoco.MjModel, pattern: str) -> np.ndarray:
    """Ids of the bodies (never the world) whose name fully matches the regular expression ``pattern``."""
    regex = re.compile(pattern)
    ids = [i for i, name in enumerate(_body_names(model)) if i > 0 and name and regex.fullmatch(name)]
    if not ids:
        raise ValueError(
            f"body_names {pattern!r} matches no body of the model (bodies: "
            f"{', '.join(n for n in _body_names(model)[1:] if n)})"
        )
    return np.array(ids, dtype=int)
