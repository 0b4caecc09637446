"""`[robot.options]` of anymal_d: validated at validate time, applied to the embedded actuators, part of the
world-model fingerprint (a model trained on one set of gains does not describe another)."""

from __future__ import annotations

from rwmspec.api import load_and_compile

from helpers import SPECS, TINY


def _compile(*sets: str):
    return load_and_compile(SPECS / "anymal_d_pretrain.toml", overlays=[TINY], sets=list(sets))


def test_a_non_positive_gain_is_a_diagnostic_naming_the_option():
    result = _compile("robot.options.actuator_stiffness=0")
    (diag,) = [d for d in result.diagnostics if d.severity == "error"]
    assert diag.code == "RWM213" and "actuator_stiffness must be > 0" in diag.message


def test_the_specs_use_the_stiff_gains_and_the_plugin_default_is_isaac_labs():
    from rwmspec_plugins.anymal_d.plugin import ANYMAL_D, AnymalDOptions

    assert _compile().plan.robot.options == {"actuator_stiffness": 80.0, "actuator_damping": 5.0}
    assert ANYMAL_D.actuator.stiffness == AnymalDOptions().actuator_stiffness == 40.0


def test_gains_reach_the_embedded_actuators():
    from rwmspec.manager import get_registry
    from rwmspec_plugins.embedded.compile import compile_embedded
    from rwmspec_plugins.embedded.model import build_model

    plan = _compile("robot.options.actuator_stiffness=55", "robot.options.actuator_damping=3").plan
    # the robot plugin applied its options at compile time: the plan carries the actuator the backend builds
    assert (plan.robot.actuator.stiffness, plan.robot.actuator.damping) == (55.0, 3.0)
    model, index = build_model(plan, compile_embedded(plan, get_registry()).objects["config"].mjcf)
    # the DC-motor actuator's PD lives in its gain/bias parameters: the stiffness and damping appear there
    params = model.actuator_gainprm[index.actuator]
    assert any(abs(v - 55.0) < 1e-9 for v in params[0]) and any(abs(v - 3.0) < 1e-9 for v in params[0])


def test_gains_are_part_of_the_world_model_fingerprint():
    assert _compile("robot.options.actuator_stiffness=60").plan.fingerprint() != _compile().plan.fingerprint()
