"""Contract between the locomotion plugin's term kinds and the torch term functions.

``call_reward_terms`` calls ``fn(view, **params)`` with the unstructured params class, so the keyword-only
parameters of every function must be exactly the fields of its kind's params class.
"""

from __future__ import annotations

import inspect

import attrs
import pytest
import torch

from rwmspec.manager import Registry, get_registry
from rwmspec.plan import TermPlan
from rwmspec_plugins.locomotion import plugin as locomotion
from rwmspec_plugins.locomotion.commands import VelocityCommand
from rwmspec_runtime.mdp import CommandTerm, make_command
from rwmspec_runtime.mdp.terms import bind_term_functions, call_reward_terms, resolve_term_function

from term_helpers import random_state_view

N, J = 4, 12
KINDS = {(k.category, k.name): k for k in locomotion.rwmspec_term_kinds()}
TORCH_KINDS = sorted(key for key, k in KINDS.items() if k.category in ("observation", "reward"))
#: params a params class cannot default (the contact group)
REQUIRED = {"bodies": "feet"}


def default_params(params_type) -> dict:
    if params_type is None:
        return {}
    required = {f.name: REQUIRED[f.name] for f in attrs.fields(params_type) if f.default is attrs.NOTHING}
    return attrs.asdict(params_type(**required))


@pytest.mark.parametrize("key", TORCH_KINDS, ids=[f"{c}-{n}" for c, n in TORCH_KINDS])
def test_function_keywords_equal_params_fields(key):
    kind = KINDS[key]
    fn = resolve_term_function(kind)
    keywords = {p.name for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY}
    fields = {f.name for f in attrs.fields(kind.params_type)} if kind.params_type else set()
    assert keywords == fields
    out = fn(random_state_view(N, J), **default_params(kind.params_type))
    assert out.shape[0] == N and out.dtype == torch.float32


def test_all_locomotion_rewards_through_call_reward_terms():
    rewards = [k for (c, _), k in KINDS.items() if c == "reward"]
    plans = [
        TermPlan(name=f"r_{k.name}", kind=k.name, params=default_params(k.params_type), weight=-1.0) for k in rewards
    ]
    fns = bind_term_functions(plans, Registry(term_kinds=KINDS), "reward")
    out = call_reward_terms(random_state_view(N, J), plans, fns)
    assert set(out) == {p.name for p in plans}
    assert all(v.shape == (N,) and torch.isfinite(v).all() for v in out.values())


def test_uniform_velocity_params_build_a_command_generator():
    kind = KINDS[("command", "uniform_velocity")]
    params = attrs.asdict(
        kind.params_type(lin_vel_x=(-1.0, 1.0), lin_vel_y=(-1.0, 1.0), ang_vel_z=(-1.0, 1.0), heading=(-3.14, 3.14))
    )
    term = TermPlan(name="base_velocity", kind="uniform_velocity", params=params, interval_range_s=(10.0, 10.0))
    cmd = make_command(term, get_registry(), N, generator=torch.Generator().manual_seed(0))
    assert isinstance(cmd, VelocityCommand) and isinstance(cmd, CommandTerm)
    assert cmd.heading_command == params["heading_command"]
    assert cmd.step(0.02, {"heading": torch.zeros(N)}).shape == (N, 3)
    assert cmd.from_uniform(torch.rand(N, cmd.uniform_draws)).shape == (N, cmd.dim)
    no_heading = dict(params, heading=None, heading_command=False)
    cmd = VelocityCommand.from_params(N, no_heading, generator=torch.Generator().manual_seed(0))
    assert not cmd.is_heading_env.any()
