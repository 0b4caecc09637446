"""rsl-rl-lib 5.x PPO built from a Plan: the train_cfg dict, the algorithm, and a stand-alone actor.

The runtime drives rsl-rl-lib's building blocks (``PPO``, ``MLPModel``, ``GaussianDistribution``,
``RolloutStorage``) from its own loop; it never subclasses them. ``train_cfg`` is the dict an rsl-rl-lib
``OnPolicyRunner`` would take for the same plan, so rsl-rl-lib can load rwmspec checkpoints directly.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # rsl_rl's logger imports GitPython, which needs git otherwise

import torch  # noqa: E402
from rsl_rl.algorithms import PPO  # noqa: E402
from rsl_rl.models import MLPModel  # noqa: E402
from rsl_rl.storage import RolloutStorage  # noqa: E402
from tensordict import TensorDict  # noqa: E402

from rwmspec.plan import Plan  # noqa: E402


def _model_cfg(hidden_dims: list[int], activation: str, obs_normalization: bool) -> dict[str, Any]:
    return {
        "class_name": "MLPModel",
        "hidden_dims": list(hidden_dims),
        "activation": activation,
        "obs_normalization": obs_normalization,
    }


def actor_cfg(plan: Plan) -> dict[str, Any]:
    """rsl-rl-lib ``actor`` config: an MLPModel with a state-independent Gaussian head."""
    p = plan.policy
    cfg = _model_cfg(p.actor_hidden_dims, p.activation, p.actor_obs_normalization)
    cfg["distribution_cfg"] = {
        "class_name": "GaussianDistribution",
        "init_std": p.init_noise_std,
        "std_type": p.noise_std_type,
    }
    return cfg


def critic_cfg(plan: Plan) -> dict[str, Any]:
    p = plan.policy
    return _model_cfg(p.critic_hidden_dims, p.activation, p.critic_obs_normalization)


def algorithm_cfg(plan: Plan) -> dict[str, Any]:
    o = plan.ppo
    return {
        "class_name": "PPO",
        "num_learning_epochs": o.num_learning_epochs,
        "num_mini_batches": o.num_mini_batches,
        "clip_param": o.clip_param,
        "gamma": o.gamma,
        "lam": o.lam,
        "value_loss_coef": o.value_loss_coef,
        "entropy_coef": o.entropy_coef,
        "learning_rate": o.learning_rate,
        "max_grad_norm": o.max_grad_norm,
        "use_clipped_value_loss": o.use_clipped_value_loss,
        "schedule": o.schedule,
        "desired_kl": o.desired_kl,
        "normalize_advantage_per_mini_batch": o.normalize_advantage_per_mini_batch,
    }


def obs_groups(plan: Plan) -> dict[str, list[str]]:
    return {"actor": list(plan.policy.actor_observations), "critic": list(plan.policy.critic_observations)}


def train_cfg(plan: Plan) -> dict[str, Any]:
    """The rsl-rl-lib 5.x ``train_cfg`` dict of this plan (what ``OnPolicyRunner(env, train_cfg)`` takes)."""
    return {
        "num_steps_per_env": plan.ppo.num_steps_per_env,
        "save_interval": plan.runner.save_interval,
        "obs_groups": obs_groups(plan),
        "actor": actor_cfg(plan),
        "critic": critic_cfg(plan),
        "algorithm": algorithm_cfg(plan),
        "check_for_nan": plan.runner.check_for_nan,
        "logger": "tensorboard",
    }


def _without_class_name(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if k != "class_name"}


def build_ppo(
    plan: Plan, obs: TensorDict, num_envs: int, num_actions: int, device: str, *, num_steps: int | None = None
) -> PPO:
    """PPO with actor, critic and rollout storage sized for ``num_envs`` envs of ``obs``'s groups.

    :param obs: one observation TensorDict of the env (batch ``[num_envs]``), used for group widths.
    """
    if num_actions != plan.action_dim:
        raise ValueError(f"the env has {num_actions} action dims but the plan's action terms need {plan.action_dim}")
    groups = obs_groups(plan)
    for model, names in groups.items():
        missing = [g for g in names if g not in obs]
        if missing:
            raise ValueError(
                f"the {model} reads observation group(s) {missing} that the env does not provide "
                f"(env groups: {sorted(obs.keys())})"
            )
    actor = MLPModel(obs, groups, "actor", num_actions, **_without_class_name(actor_cfg(plan)))
    critic = MLPModel(obs, groups, "critic", 1, **_without_class_name(critic_cfg(plan)))
    storage = RolloutStorage("rl", num_envs, num_steps or plan.ppo.num_steps_per_env, obs, [num_actions], device)
    return PPO(actor, critic, storage, device=device, **_without_class_name(algorithm_cfg(plan)))


def zero_observations(plan: Plan, batch: int = 1, device: str = "cpu") -> TensorDict:
    """A TensorDict of zeros with every observation group of the plan, ``[batch, group.dim]`` each."""
    return TensorDict(
        {name: torch.zeros(batch, g.dim, device=device) for name, g in plan.observations.items()},
        batch_size=[batch],
        device=device,
    )


def build_actor(plan: Plan, actor_state_dict: dict[str, torch.Tensor], device: str = "cpu") -> MLPModel:
    """The trained actor alone (no env, no critic), in eval mode; ``actor(obs)`` gives deterministic actions."""
    groups = {"actor": list(plan.policy.actor_observations)}
    actor = MLPModel(
        zero_observations(plan, device=device), groups, "actor", plan.action_dim, **_without_class_name(actor_cfg(plan))
    )
    actor.load_state_dict(actor_state_dict)
    return actor.to(device).eval()
