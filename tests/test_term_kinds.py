"""The locomotion plugin's term kinds: complete, documented, typed, sized, and in step with their implementations."""

from __future__ import annotations

import inspect
import re
import typing

import attrs
import pytest

from rwmspec.manager import resolve
from rwmspec_plugins.anymal_d.plugin import ANYMAL_D
from rwmspec_plugins.locomotion import params as P
from rwmspec_plugins.locomotion.plugin import ALL_KINDS

from helpers import ROOT

CATEGORIES = {"observation", "reward", "termination", "event", "command", "action"}


def kinds_table() -> dict[str, set[str]]:
    """category -> kinds, read from the term-kind table of docs/terms.md."""
    text = (ROOT / "docs" / "terms.md").read_text()
    table = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] in CATEGORIES:
            table[cells[0]] = set(re.findall(r"`([a-z0-9_]+)`", cells[1]))
    return table


def test_every_documented_kind_is_registered_by_locomotion(registry):
    table = kinds_table()
    assert set(table) == CATEGORIES
    for category, kinds in table.items():
        ours = {k.name for k in ALL_KINDS if k.category == category}
        assert ours == kinds, category
        for name in kinds:
            assert registry.providers[("term_kinds", (category, name))].startswith("locomotion ")


def test_docs_terms_lists_every_kind_and_param(registry):
    text = (ROOT / "docs" / "terms.md").read_text()
    for kind in ALL_KINDS:
        assert f"`{kind.name}`" in text, kind.name
        binding = registry.binding("isaaclab", kind.category, kind.name)
        if binding is not None:
            assert binding.ref in text, binding.ref
        for field in attrs.fields(kind.params_type) if kind.params_type else ():
            assert f"`{field.name}`" in text, (kind.name, field.name)


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: f"{k.category}:{k.name}")
def test_params_are_documented_and_typed(kind):
    assert kind.description
    if kind.params_type is None:
        return
    hints = typing.get_type_hints(kind.params_type)
    for field in attrs.fields(kind.params_type):
        assert field.metadata.get("doc"), f"{kind.name}.{field.name} has no doc"
        assert field.name in hints and hints[field.name] is not typing.Any
        if field.name.endswith("_range") or field.name in ("lin_vel_x", "lin_vel_y", "ang_vel_z"):
            assert hints[field.name] in (P.Range, dict[str, P.Range]), field.name


def test_bindings(registry):
    module = {"observation": "observations", "reward": "rewards", "termination": "terminations"}
    for kind in ALL_KINDS:
        binding = registry.binding("isaaclab", kind.category, kind.name)
        assert binding is not None and re.fullmatch(r"[a-z0-9_.]+:[A-Za-z0-9_]+", binding.ref), kind.name
        if kind.category in module:
            assert kind.function.endswith(f".{module[kind.category]}:{kind.name}"), kind.function
        elif kind.name == "push_by_setting_velocity":
            # the push is written once, against the env's add_root_velocity: real and imagined envs run it
            assert kind.function == "rwmspec_plugins.locomotion.events:PushBySettingVelocity"
        elif kind.category in ("event", "action"):
            assert kind.function is None  # they change the simulation itself: each backend implements them
    for kind in ALL_KINDS:
        if kind.category == "event" and kind.function is None:
            assert registry.binding("embedded", "event", kind.name) is not None, kind.name

    def ref(category: str, name: str) -> str:
        return registry.binding("isaaclab", category, name).ref

    assert ref("reward", "feet_air_time") == "isaaclab_tasks.core.velocity.mdp:feet_air_time"
    assert ref("reward", "stand_still") == "rwmspec_plugins.isaaclab.mdp:stand_still"
    assert ref("observation", "body_contact") == "rwmspec_plugins.isaaclab.mdp:body_contact"
    assert ref("reward", "joint_torques_l2") == "isaaclab.envs.mdp:joint_torques_l2"


def test_imagination_metadata():
    """What imagination reads from the kinds: an inverse for every state field, a contact group param that exists."""
    by_field = {}
    for kind in ALL_KINDS:
        if kind.state_field is not None:
            assert kind.category == "observation" and kind.state_field in kind.reads, kind.name
            assert kind.inverse is not None and callable(resolve(kind.inverse)), kind.name
            assert by_field.setdefault(kind.state_field, kind.name) == kind.name, "one kind per view field"
        if kind.contact_group_param is not None:
            assert kind.contact_group_param in attrs.fields_dict(kind.params_type), kind.name
    assert set(by_field) == {
        "base_lin_vel",
        "base_ang_vel",
        "projected_gravity",
        "joint_pos",
        "joint_vel",
        "joint_torque",
    }


@pytest.mark.parametrize("category", ["observation", "reward", "termination"])
def test_params_match_the_torch_functions(category):
    """The params' field names and defaults are the keyword arguments of the torch term functions."""
    for kind in (k for k in ALL_KINDS if k.category == category):
        fn = resolve(kind.function)
        keywords = {n: p for n, p in inspect.signature(fn).parameters.items() if p.kind is p.KEYWORD_ONLY}
        fields = {f.name: f for f in attrs.fields(kind.params_type)} if kind.params_type else {}
        assert set(keywords) == set(fields), kind.name
        for name, field in fields.items():
            if field.default is not attrs.NOTHING:
                assert keywords[name].default == field.default, (kind.name, name)


def test_dims_for_anymal_d():
    by_name = {(k.category, k.name): k for k in ALL_KINDS}

    def dim(name, params=None, category="observation"):
        d = by_name[(category, name)].dim
        return d if isinstance(d, int) else d(params, ANYMAL_D)

    assert [dim(n) for n in ("base_lin_vel", "base_ang_vel", "projected_gravity")] == [3, 3, 3]
    assert dim("generated_commands", P.GeneratedCommandsParams()) == 3
    assert [dim(n) for n in ("joint_pos_rel", "joint_vel_rel", "joint_effort", "last_action")] == [12] * 4
    assert dim("body_contact", P.BodyContactParams(bodies="feet")) == 4
    assert dim("body_contact", P.BodyContactParams(bodies="base")) == 1
    assert dim("joint_position", P.JointPositionParams(), "action") == 12
    assert dim("joint_position", P.JointPositionParams(joint_names="L._.*"), "action") == 6
    with pytest.raises(ValueError, match="no contact group 'knees'"):
        dim("body_contact", P.BodyContactParams(bodies="knees"))


def test_contract_defaults():
    assert attrs.asdict(P.FeetAirTimeParams()) == {
        "bodies": "feet",
        "threshold": 0.5,
        "command_name": "base_velocity",
        "command_threshold": 0.1,
    }
    assert attrs.asdict(P.UndesiredContactsParams()) == {"bodies": "thighs", "threshold": 1.0}
    assert attrs.asdict(P.IllegalContactParams()) == {"bodies": "base", "threshold": 1.0}
    assert attrs.asdict(P.StandStillParams()) == {"threshold": 0.05, "command_name": "base_velocity"}
    assert attrs.asdict(P.TrackVelocityParams()) == {"std": 0.5, "command_name": "base_velocity"}
    assert attrs.asdict(P.JointPositionParams()) == {"joint_names": ".*", "scale": 0.5, "use_default_offset": True}
    v = P.UniformVelocityParams(lin_vel_x=(-1, 1), lin_vel_y=(-1, 1), ang_vel_z=(-1, 1), heading=(-3, 3))
    assert (v.heading_command, v.heading_control_stiffness, v.rel_standing_envs, v.rel_heading_envs) == (
        True,
        0.5,
        0.02,
        1.0,
    )
    assert P.RigidBodyMassParams(mass_distribution_params=(0, 1), operation="add").body_names == "base"
    assert (
        P.RigidBodyMaterialParams(
            static_friction_range=(0.8, 0.8), dynamic_friction_range=(0.6, 0.6), restitution_range=(0, 0)
        ).num_buckets
        == 64
    )


@pytest.mark.parametrize(
    "params, field",
    [
        (P.TrackVelocityParams(std=0.0), "std"),
        (P.BodyContactParams(bodies="feet", threshold=-1.0), "threshold"),
        (
            P.RigidBodyMaterialParams(
                static_friction_range=(0.9, 0.8), dynamic_friction_range=(0.6, 0.6), restitution_range=(0, 0)
            ),
            "static_friction_range",
        ),
        (
            P.RigidBodyMaterialParams(
                static_friction_range=(0.8, 0.8),
                dynamic_friction_range=(0.6, 0.6),
                restitution_range=(0, 0),
                num_buckets=0,
            ),
            "num_buckets",
        ),
        (
            P.RigidBodyMassParams(mass_distribution_params=(0.0, 1.25), operation="scale", distribution="log_uniform"),
            "mass_distribution_params",
        ),
        (
            P.RigidBodyMassParams(mass_distribution_params=(0.0, -1.0), operation="add", distribution="gaussian"),
            "mass_distribution_params",
        ),
        (P.RigidBodyComParams(com_range={"w": (0, 1)}), "com_range"),
        (P.RigidBodyComParams(com_range={"yaw": (0, 1)}), "com_range"),
        (P.ExternalForceTorqueParams(force_range=(1, 0), torque_range=(0, 0)), "force_range"),
        (P.ResetRootStateParams(pose_range={"yaw": (3, -3)}, velocity_range={}), "pose_range"),
        (P.ResetJointsByScaleParams(position_range=(0.5, float("nan")), velocity_range=(0, 0)), "position_range"),
        (P.PushByVelocityParams(velocity_range={"x": (0.5, -0.5)}), "velocity_range"),
        (
            P.UniformVelocityParams(lin_vel_x=(1, -1), lin_vel_y=(-1, 1), ang_vel_z=(-1, 1), heading=(-3, 3)),
            "lin_vel_x",
        ),
        (P.UniformVelocityParams(lin_vel_x=(-1, 1), lin_vel_y=(-1, 1), ang_vel_z=(-1, 1)), "heading"),
        (
            P.UniformVelocityParams(
                lin_vel_x=(-1, 1), lin_vel_y=(-1, 1), ang_vel_z=(-1, 1), heading=(-3, 3), rel_standing_envs=1.5
            ),
            "rel_standing_envs",
        ),
    ],
)
def test_checks_find_bad_values(params, field):
    assert field in [f if isinstance(f, str) else f[0] for f, _ in params.check()]


def test_checks_accept_the_isaaclab_values():
    good = [
        P.RigidBodyMassParams(mass_distribution_params=(0.8, 1.25), operation="scale", distribution="log_uniform"),
        P.RigidBodyComParams(com_range={"x": (-0.05, 0.05), "y": (-0.05, 0.05), "z": (-0.01, 0.01)}),
        P.ResetRootStateParams(
            pose_range={"x": (-0.5, 0.5), "yaw": (-3.14, 3.14)}, velocity_range={a: (-0.5, 0.5) for a in P.POSE_AXES}
        ),
        P.UniformVelocityParams(lin_vel_x=(-1, 1), lin_vel_y=(-1, 1), ang_vel_z=(-1, 1), heading_command=False),
    ]
    for params in good:
        assert list(params.check()) == []
