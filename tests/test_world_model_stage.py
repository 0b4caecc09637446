"""The pretrain stage end to end on the embedded backend: buffer filling, world-model updates, checkpoints, and the
fingerprint check that keeps a later stage from loading a model trained for another plan."""

from __future__ import annotations

import attrs
import pytest
import torch
from tensordict import TensorDict

from rwmspec.diagnostics import SpecError
from rwmspec.manager import get_registry
from rwmspec_runtime.runner import Runner
from rwmspec_runtime.seeding import seed_everything
from rwmspec_runtime.training import compile_spec, make_env
from rwmspec_runtime.world_model.system import MODEL_KEY, OPTIMIZER_KEY, WorldModelSystem
from rwmspec_runtime.world_model.system_data import observed_system_groups

from helpers import SPECS, TINY


def _plan(*sets: str):
    plan, _ = compile_spec(SPECS / "anymal_d_pretrain.toml", [TINY], sets)
    return plan


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A 2-iteration tiny pretrain run (the runner, its plan and its last checkpoint)."""
    plan = _plan("runner.max_iterations=2", "world_model.train.eval_interval=2")
    seed_everything(plan.experiment.seed)
    env = make_env(plan, get_registry(), device="cpu")
    runner = Runner(plan, env, tmp_path_factory.mktemp("pretrain"), device="cpu", log=lambda _: None)
    runner.learn()
    env.close()
    return runner


def test_pretrain_fills_the_buffer_trains_the_model_and_saves_it(pretrained):
    plan = pretrained.plan
    system = pretrained.shared["world_model"]
    steps = 2 * plan.ppo.num_steps_per_env
    assert system.buffer.num_steps == min(steps, plan.world_model.train.replay_buffer_size)
    last = pretrained.metrics.history[-1]
    for key in (
        "state_loss",
        "bound_loss",
        "contact_loss",
        "termination_loss",
        "total_loss",
        "autoregressive_error",
        "autoregressive_error_noised_0.8",
        "autoregressive_error/joint_pos",
        "contact_precision",
    ):
        assert f"System Dynamics/{key}" in last, key
    assert torch.isfinite(torch.tensor(last["System Dynamics/total_loss"]))
    checkpoint = torch.load(pretrained.last_checkpoint, weights_only=False)
    assert {MODEL_KEY, OPTIMIZER_KEY, "actor_state_dict", "critic_state_dict"} <= set(checkpoint)
    assert checkpoint["rwmspec"]["fingerprint"] == plan.fingerprint()
    assert checkpoint[OPTIMIZER_KEY]["optimizer"]["state"], "the world model's optimizer has taken steps"


def test_checkpoint_round_trip_gives_identical_predictions(pretrained):
    plan = pretrained.plan
    trained = pretrained.shared["world_model"].model.eval()
    loaded = WorldModelSystem.from_checkpoint(plan, pretrained.last_checkpoint).model.eval()
    gen = torch.Generator().manual_seed(0)
    state = torch.randn(3, plan.world_model.history_horizon, plan.world_model.state_dim, generator=gen)
    action = torch.randn(3, plan.world_model.history_horizon, plan.world_model.action_dim, generator=gen)
    members = torch.arange(3) % plan.world_model.ensemble_size
    with torch.no_grad():
        a, b = (
            model.step(state[:, -1], action[:, -1], model.warm_up(state[:, :-1], action[:, :-1]), members)[0]
            for model in (trained, loaded)
        )
    for field in ("next_state", "aleatoric", "epistemic", "contact_prob", "termination_prob"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field


def test_a_mismatched_plan_refuses_the_checkpoint_with_the_fingerprints(pretrained):
    other = _plan("world_model.base_hidden=[8, 8]")
    with pytest.raises(SpecError) as err:
        WorldModelSystem.from_checkpoint(other, pretrained.last_checkpoint)
    diag = err.value.diagnostics[0]
    assert diag.code == "RWM504"
    assert pretrained.plan.fingerprint() in diag.message and other.fingerprint() in diag.message
    assert str(pretrained.last_checkpoint) in diag.message


def test_a_policy_only_checkpoint_is_refused_as_holding_no_world_model(pretrained, tmp_path):
    checkpoint = torch.load(pretrained.last_checkpoint, weights_only=False)
    del checkpoint[MODEL_KEY]
    path = tmp_path / "model_2.pt"
    torch.save(checkpoint, path)
    with pytest.raises(SpecError) as err:
        WorldModelSystem.from_checkpoint(pretrained.plan, path)
    assert err.value.diagnostics[0].code == "RWM504" and "holds no world model" in err.value.diagnostics[0].message


def test_training_settings_do_not_change_the_fingerprint():
    base = _plan()
    assert (
        _plan("world_model.train.learning_rate=0.5", "world_model.loss_weights.state=2.0").fingerprint()
        == base.fingerprint()
    )
    assert _plan("world_model.history_horizon=5").fingerprint() != base.fingerprint()


def test_done_envs_store_their_terminal_observation():
    groups = ("system_state", "system_action")
    now = TensorDict({"system_state": torch.zeros(3, 2), "system_action": torch.zeros(3, 1)}, batch_size=[3])
    terminal = TensorDict({"system_state": torch.ones(3, 2), "system_action": torch.ones(3, 1)}, batch_size=[3])
    dones = torch.tensor([False, True, False])
    out = observed_system_groups(now, dones, {"terminal_observations": terminal}, groups)
    assert out["system_state"][:, 0].tolist() == [0.0, 1.0, 0.0]
    assert out["system_action"][:, 0].tolist() == [0.0, 1.0, 0.0]
    assert observed_system_groups(now, torch.zeros(3, dtype=torch.bool), {}, groups) is not None


def test_normalizer_uses_the_plan_statistics():
    plan = _plan()
    system = WorldModelSystem(plan, num_envs=2)
    group = plan.observations["system_state"]
    raw = torch.tensor([group.mean, group.mean], dtype=torch.float32) + torch.tensor(group.std)
    normalized = system.normalizer.normalize_state(raw)
    assert torch.allclose(normalized, torch.ones_like(normalized), atol=1e-5)
    assert torch.allclose(system.normalizer.denormalize_state(normalized), raw, atol=1e-5)


def test_world_model_needs_its_table():
    plan, _ = compile_spec(SPECS / "anymal_d_init.toml", [TINY])
    with pytest.raises(ValueError, match=r"\[world_model\]"):
        WorldModelSystem(attrs.evolve(plan), num_envs=1)
