"""The imagination env on the tiny finetune plan: real and imagined rewards agree, state mapping, context warm-up,
per-env resets, time-outs, command intervals, pushes, members, the uncertainty penalty and seeding."""

from __future__ import annotations

import os

import attrs
import pytest
import torch

from rwmspec.manager import get_registry
from rwmspec_runtime.imagination.env import LOG_PREFIX, PENALTY_TERM, ImaginationEnv, exclusive_count
from rwmspec_runtime.imagination.state_mapping import StateMapping
from rwmspec_runtime.mdp.terms import bind_term_functions, call_reward_terms
from rwmspec_runtime.training import compile_spec, make_env
from rwmspec_runtime.world_model.replay_buffer import applied_action_pairs
from rwmspec_runtime.world_model.system_data import SystemNormalizer

from helpers import SPECS, TINY
from world_model_helpers import system_with_smooth_data

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
torch.set_num_threads(1)

N = 6  # imagined envs


@pytest.fixture(scope="module")
def base_plan():
    plan, _ = compile_spec(SPECS / "anymal_d_finetune.toml", [TINY])
    return plan


def _plan(base, **imagination):
    quirks = imagination.pop("quirks", {})
    ensemble = imagination.pop("ensemble_size", None)
    plan = attrs.evolve(
        base,
        imagination=attrs.evolve(base.imagination, num_envs=N, **imagination),
        quirks=attrs.evolve(base.quirks, **quirks),
    )
    if ensemble is not None:
        plan = attrs.evolve(plan, world_model=attrs.evolve(plan.world_model, ensemble_size=ensemble))
    return plan


def _fixed_command(plan, value: float = 0.5):
    """Every env commanded (value, value, value), never standing."""
    command = plan.commands[0]
    params = {
        **command.params,
        "lin_vel_x": (value, value),
        "lin_vel_y": (value, value),
        "ang_vel_z": (value, value),
        "rel_standing_envs": 0.0,
    }
    return attrs.evolve(plan, commands=(attrs.evolve(command, params=params),))


def _no_standing(plan):
    command = plan.commands[0]
    return attrs.evolve(plan, commands=(attrs.evolve(command, params={**command.params, "rel_standing_envs": 0.0}),))


def _fixed_head(head, logit: float) -> None:
    with torch.no_grad():
        head.output_layer.weight.zero_()
        head.output_layer.bias.fill_(logit)


def _identity_dynamics(system) -> None:
    """The model predicts its input state (residual mean, zero head), never a termination, no contacts."""
    model = system.model
    _fixed_head(model.state_mean_head, 0.0)
    _fixed_head(model.termination_head, -10.0)
    _fixed_head(model.contact_head, -10.0)


def _actions(seed: int, steps: int, n: int = N) -> torch.Tensor:
    return torch.randn(steps, n, 12, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------------------------------
# real path == imagined path
# ---------------------------------------------------------------------------------------------------------------------
def test_real_and_imagined_rewards_agree_on_the_same_state(monkeypatch):
    from rwmspec_plugins.embedded import env as embedded

    plan, _ = compile_spec(SPECS / "anymal_d_pretrain.toml", [TINY])
    plan = attrs.evolve(plan, sim=attrs.evolve(plan.sim, options={**plan.sim.options, "num_threads": 1}))
    registry = get_registry()
    captured = []

    def recording(view, terms, fns):
        weighted = call_reward_terms(view, terms, fns)
        captured.append((view, weighted))
        return weighted

    monkeypatch.setattr(embedded, "call_reward_terms", recording)
    env = make_env(plan, registry, device="cpu")
    gen = torch.Generator().manual_seed(3)
    for _ in range(6):  # a few steps so that actions, timers and contacts are not all zero
        obs, _, dones, _ = env.step(0.5 * torch.randn(env.num_envs, env.num_actions, generator=gen))
    env.close()
    real_view, real_terms = captured[-1]
    assert not dones.any(), "the states compared are the post-step states of envs that did not reset"

    # imagination's path: the system_* observations of that state, normalized as the model sees them, mapped back
    normalizer = SystemNormalizer(plan)
    mapping = StateMapping(plan, registry=registry)
    state = normalizer.denormalize_state(normalizer.normalize_state(obs["system_state"]))
    contacts = mapping.contacts(obs["system_contact"], obs["system_termination"])
    view = mapping.view(
        state,
        prev_joint_vel=real_view.prev_joint_vel,
        contacts=contacts,
        command=real_view.command,
        action=real_view.action,
        prev_action=real_view.prev_action,
        dt=real_view.dt,
        contact_timers=real_view.contact_timers,
    )
    for group, flags in real_view.contacts.items():
        assert torch.equal(contacts[group], flags), group
    imagined_terms = call_reward_terms(view, plan.rewards, bind_term_functions(plan.rewards, registry, "reward"))
    assert imagined_terms.keys() == real_terms.keys()
    assert any(bool(v.abs().gt(0).all()) for v in real_terms.values())
    for name, value in real_terms.items():
        torch.testing.assert_close(imagined_terms[name], value, rtol=1e-5, atol=1e-7, msg=name)
    # and the forward direction is the real backend's own group
    torch.testing.assert_close(mapping.observe(view), obs["system_state"], rtol=1e-5, atol=1e-6)


def test_state_mapping_inverts_every_supported_kind(base_plan):
    mapping = StateMapping(base_plan)
    invertible = {name for (category, name), kind in get_registry().term_kinds.items() if kind.state_field}
    assert {b.kind for b in mapping.blocks} == invertible
    x = torch.randn(5, base_plan.world_model.state_dim, generator=torch.Generator().manual_seed(1))
    zeros = torch.zeros(5, 12)
    view = mapping.view(
        x, prev_joint_vel=zeros, contacts={}, command=torch.zeros(5, 3), action=zeros, prev_action=zeros, dt=0.02
    )
    torch.testing.assert_close(mapping.observe(view), x)
    torch.testing.assert_close(view.joint_pos, x[:, mapping.columns("joint_pos")] + mapping.default_joint_pos)
    assert mapping.contact_groups == ("thighs", "feet", "base")


# ---------------------------------------------------------------------------------------------------------------------
# starts and resets
# ---------------------------------------------------------------------------------------------------------------------
def test_observations_before_the_first_reset_are_zeros_of_the_ppo_groups(base_plan):
    env = ImaginationEnv.from_plan(_plan(base_plan), system_with_smooth_data(base_plan))
    obs = env.get_observations()
    assert list(obs.keys()) == ["policy"] and obs["policy"].shape == (N, 48) and not obs["policy"].any()
    assert (env.num_envs, env.num_actions, env.num_steps_per_env, env.max_episode_length) == (N, 12, 4, 256)
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(torch.zeros(N, 12))


def _single_window_system(plan):
    """A buffer holding exactly one M-entry window, so every env is seeded from it."""
    return system_with_smooth_data(plan, buffer_envs=1, steps=plan.world_model.history_horizon)


@pytest.mark.parametrize("skip_warmup", [False, True])
def test_context_warmup_runs_the_model_over_the_whole_window(base_plan, skip_warmup):
    plan = _plan(base_plan, max_episode_length=2, quirks={"skip_imagination_context_warmup": skip_warmup})
    system = _single_window_system(plan)
    _fixed_head(system.model.termination_head, -10.0)  # no env re-seeds after the first step
    env = ImaginationEnv.from_plan(plan, system)
    env.reset()
    window = system.buffer.sample_windows(1, plan.world_model.history_horizon)
    context_state, context_action = applied_action_pairs(window.state, window.action)
    model = system.model
    with torch.no_grad():
        expected = model.initial_memory(1) if skip_warmup else model(context_state, context_action).memory
    for got, want in ((env.memory.state, expected.state), (env.memory.auxiliary, expected.auxiliary)):
        torch.testing.assert_close(got, want.expand_as(got))
    torch.testing.assert_close(env.state, window.state[:, -1].expand(N, -1))
    # the first prediction continues that memory with (last state, policy action)
    action = _actions(0, 1)[0]
    env.step(action)
    with torch.no_grad():
        first = model(
            window.state[:, -1:].expand(N, -1, -1),
            system.normalizer.normalize_action(action).unsqueeze(1),
            type(expected)(
                expected.state.expand(-1, N, -1).contiguous(), expected.auxiliary.expand(-1, N, -1).contiguous()
            ),
        )
    torch.testing.assert_close(env.memory.state, first.memory.state)
    # episodes that end inside step start from pooled seeds, warmed up the same way
    _, _, dones, _ = env.step(action)
    assert bool(dones.all())
    for got, want in ((env.memory.state, expected.state), (env.memory.auxiliary, expected.auxiliary)):
        torch.testing.assert_close(got, want.expand_as(got))
    torch.testing.assert_close(env.state, window.state[:, -1].expand(N, -1))


def test_ended_episodes_take_pool_seeds_in_order_and_an_outrun_pool_grows(base_plan):
    plan = _plan(base_plan, max_episode_length=1)  # every env starts a new episode in every step
    env = ImaginationEnv.from_plan(plan, system_with_smooth_data(plan))
    env.reset()
    pool = env.state_tensors()["pool/state"].clone()
    size = env.seed_pool_size
    assert pool.shape[0] == size and size < 11 * N
    for step, a in enumerate(_actions(9, 11)):
        env.step(a)
        taken = (torch.arange(N) + step * N) % size
        torch.testing.assert_close(env.state, pool[taken])
    assert env.seeds_used == 11 * N
    layout = env.state_layout
    assert env.refill_seeds() == 11 * N and env.seed_pool_size == 22 * N and env.seeds_used == 0
    assert env.state_layout != layout, "a grown pool has new tensors: a captured step must be captured again"
    assert not torch.equal(env.state_tensors()["pool/state"][:size], pool), "a refill draws new windows"


def test_per_env_reset_reseeds_only_those_envs(base_plan):
    plan = _plan(base_plan, ensemble_size=3)
    system = system_with_smooth_data(plan)
    env = ImaginationEnv.from_plan(plan, system)
    env.reset()
    for a in _actions(1, 3):
        env.step(a)
    live = {
        "state": env.state,
        "memory": env.memory.state,
        "aux": env.memory.auxiliary,
        "members": env.members,
        "length": env.episode_length_buf,
        "command": env.command,
    }
    before = {k: v.clone() for k, v in live.items()}  # the env updates its tensors in place
    ids = torch.tensor([1, 4])
    env.reset(ids)
    keep = torch.tensor([0, 2, 3, 5])
    assert torch.equal(env.episode_length_buf[ids], torch.zeros(2, dtype=torch.long))
    assert torch.equal(env.episode_length_buf[keep], before["length"][keep])
    for key, now in (("state", env.state), ("members", env.members), ("command", env.command)):
        assert torch.equal(now[keep], before[key][keep]), key
    for key, now in (("memory", env.memory.state), ("aux", env.memory.auxiliary)):
        assert torch.equal(now[:, keep], before[key][:, keep]), key
        assert not torch.equal(now[:, ids], before[key][:, ids]), key
    assert not torch.equal(env.state[ids], before["state"][ids])
    assert env.members.min() >= 0 and env.members.max() < 3


def test_steps_and_resets_keep_the_state_in_the_same_tensors(base_plan):
    """The precondition of capturing ``advance`` in a CUDA graph, checked on the CPU."""
    plan = _plan(base_plan, ensemble_size=2, push_interval_range=(1, 2), max_episode_length=2)
    system = system_with_smooth_data(plan)
    with torch.inference_mode():  # built and seeded in inference mode (as in a runner) ...
        env = ImaginationEnv.from_plan(plan, system)
        env.reset()
    tensors = env.state_tensors()
    assert not any(t.is_inference() for t in tensors.values()), "... the state stays updatable outside it"
    pointers = {k: v.data_ptr() for k, v in tensors.items()}
    assert {"state", "memory/state", "memory/auxiliary", "command", "timers/feet/last_air_time", "episode_sums"} <= set(
        tensors
    )
    state = env.state.clone()
    layout = env.state_layout
    for a in _actions(8, 3):  # time-outs every second step: advance and re-seeding both run
        env.step(a)
    env.reset(torch.tensor([0, 1]))
    env.refill_seeds()  # the pool was not outrun: it is refilled in place
    assert {k: v.data_ptr() for k, v in env.state_tensors().items()} == pointers
    assert env.state_layout == layout, "what a CUDA graph checks instead of every address"
    assert not torch.equal(env.state, state), "the tensors' contents changed in place"


# ---------------------------------------------------------------------------------------------------------------------
# episode timing, commands, pushes, members, penalty, seeding
# ---------------------------------------------------------------------------------------------------------------------
def test_time_outs_end_every_episode_at_max_episode_length(base_plan):
    plan = _plan(base_plan, max_episode_length=3)
    system = system_with_smooth_data(plan)
    _identity_dynamics(system)
    env = ImaginationEnv.from_plan(plan, system)
    env.reset()
    for step, a in enumerate(_actions(2, 7), start=1):
        _, rewards, dones, extras = env.step(a)
        expect_done = step % 3 == 0
        assert torch.equal(dones, torch.full((N,), expect_done))
        assert torch.equal(extras["time_outs"], dones)
        if expect_done:
            assert set(extras["log"]) == {f"{LOG_PREFIX}{t}" for t in env.reward_terms}
            assert float(extras["finished"]["count"]) == N and float(extras["finished"]["length"]) == 3 * N
            assert torch.equal(env.episode_length_buf, torch.zeros(N, dtype=torch.long))
        else:
            assert extras["log"] == {}


def test_commands_are_redrawn_every_low_to_high_steps(base_plan):
    plan = _no_standing(_plan(base_plan, command_resample_interval_range=(3, 5), max_episode_length=1000))
    system = system_with_smooth_data(plan)
    _identity_dynamics(system)
    env = ImaginationEnv.from_plan(plan, system)
    env.reset()
    commands = [env.command.clone()]
    for a in _actions(3, 24):
        env.step(a)
        commands.append(env.command.clone())
    changed = torch.stack([(b != a).any(dim=-1) for a, b in zip(commands[:-1], commands[1:], strict=True)])
    gaps = set()
    for e in range(N):
        steps = (changed[:, e].nonzero().squeeze(-1) + 1).tolist()
        gaps |= {b - a for a, b in zip([0, *steps[:-1]], steps, strict=True)}
        assert steps, "every env redraws within 24 steps"
    assert gaps <= {3, 4} and gaps, gaps


def test_pushes_add_bounded_base_velocity_when_their_timer_runs_out(base_plan):
    plan = _plan(base_plan, push_interval_range=(2, 2), push_velocity=0.5)
    system = system_with_smooth_data(plan)
    _identity_dynamics(system)
    env = ImaginationEnv.from_plan(plan, system)
    env.reset()
    lin = env.mapping.columns("base_lin_vel")
    velocities = [env.state_obs[:, lin].clone()]
    for a in _actions(4, 4):
        env.step(a)
        velocities.append(env.state_obs[:, lin].clone())
    deltas = [b - a for a, b in zip(velocities[:-1], velocities[1:], strict=True)]
    for step, delta in enumerate(deltas, start=1):
        assert torch.allclose(delta[:, 2], torch.zeros(N), atol=1e-5)
        if step % 2:
            assert torch.allclose(delta, torch.zeros_like(delta), atol=1e-5)
        else:
            assert delta[:, :2].abs().max() <= 0.5 + 1e-5 and delta[:, :2].abs().max() > 0


def test_uncertainty_penalty_is_lambda_times_epistemic_times_dt(base_plan):
    plan = _plan(base_plan, ensemble_size=2, uncertainty_penalty_weight=2.0, member_sampling="mean")
    env = ImaginationEnv.from_plan(plan, system_with_smooth_data(plan))
    assert env.members is None and env.reward_terms[-1] == PENALTY_TERM
    env.reset()
    _, rewards, _, extras = env.step(_actions(5, 1)[0])
    u = extras["epistemic_uncertainty"]
    assert bool((u > 0).all())
    torch.testing.assert_close(extras["reward_terms"][PENALTY_TERM], -2.0 * u * plan.sim.control_dt)
    torch.testing.assert_close(rewards, sum(extras["reward_terms"].values()))


def test_lagged_first_contact_pays_feet_air_time_one_step_late(base_plan):
    """Feet land in step 3 of identity dynamics whose foot contacts switch on; the lagged quirk pays a step later."""
    paid = {}
    for lagged in (False, True):
        plan = _fixed_command(_plan(base_plan, quirks={"feet_air_time_lagged_first_contact": lagged}))
        system = system_with_smooth_data(plan)
        _identity_dynamics(system)
        env = ImaginationEnv.from_plan(plan, system)
        env.reset()
        head = system.model.contact_head.output_layer
        per_step = []
        for step, a in enumerate(_actions(6, 4), start=1):
            with torch.no_grad():
                head.bias.fill_(10.0 if step >= 3 else -10.0)
            _, _, _, extras = env.step(a)
            per_step.append(float(extras["reward_terms"]["feet_air_time"][0]))
        paid[lagged] = [i + 1 for i, v in enumerate(per_step) if v != 0.0]
    assert paid == {False: [3], True: [4]}


def test_same_seed_same_numbers_and_another_seed_differs(base_plan):
    plan = _plan(base_plan, ensemble_size=2, push_interval_range=(1, 3))

    def run(seed):
        torch.manual_seed(0)
        env = ImaginationEnv.from_plan(plan, system_with_smooth_data(plan), seed=seed)
        out = [env.reset()["policy"]]
        for a in _actions(7, 5):
            obs, rewards, _, _ = env.step(a)
            out += [obs["policy"], rewards, env.command.clone()]
        return out

    a, b, c = run(1), run(1), run(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))


# ---------------------------------------------------------------------------------------------------------------------
# compiled step (the GPU fast path of benchmarks/imagination.py)
# ---------------------------------------------------------------------------------------------------------------------
def test_exclusive_count_counts_the_flags_before_each_position():
    flags = torch.tensor([False, True, True, False, True])
    assert exclusive_count(flags).tolist() == [0, 0, 1, 2, 2]


def test_the_step_compiles_whole_and_matches_eager(base_plan):
    """``_advance`` traces without a graph break (``fullgraph``): no generator call, no host read; and the compiled
    step gives the eager numbers, time-outs, new episodes from the pool and pushes included."""
    plan = _plan(base_plan, ensemble_size=2, push_interval_range=(1, 3), max_episode_length=3)
    runs = {}
    for mode in ("eager", "compiled"):
        env = ImaginationEnv.from_plan(plan, system_with_smooth_data(plan), seed=5)
        env.reset()
        if mode == "compiled":
            env.compile_step(fullgraph=True)
        out = []
        for a in _actions(4, 11):
            rewards, dones, _ = env.advance(a)
            out.append((rewards.clone(), dones.clone(), env.state.clone(), env.members.clone()))
        runs[mode] = out
    torch._dynamo.reset()
    for eager, compiled in zip(runs["eager"], runs["compiled"], strict=True):
        for e, c in zip(eager, compiled, strict=True):
            torch.testing.assert_close(c, e, rtol=1e-5, atol=1e-6)
