"""The plan's PPO, actor-critic and runner settings as rsl-rl-lib 5.x config dicts (plain data, no torch).

One translation for every consumer: the runtime builds rsl-rl-lib's ``PPO`` and ``MLPModel`` from these dicts, and the
isaaclab backend fills Isaac Lab's ``RslRlOnPolicyRunnerCfg`` from them, so the two cannot drift apart.
``train_cfg(plan)`` is the dict an rsl-rl-lib ``OnPolicyRunner(env, train_cfg)`` takes for the same plan, which is
why rsl-rl-lib can load rwmspec checkpoints directly. Each model and algorithm dict carries rsl-rl-lib's
``class_name``, which rsl-rl-lib's runner reads and its constructors do not take.
"""

from __future__ import annotations

from typing import Any

from rwmspec.plan import Plan


def _model_cfg(hidden_dims: list[int], activation: str, obs_normalization: bool) -> dict[str, Any]:
    return {
        "class_name": "MLPModel",
        "hidden_dims": list(hidden_dims),
        "activation": activation,
        "obs_normalization": obs_normalization,
    }


def actor_cfg(plan: Plan) -> dict[str, Any]:
    """rsl-rl-lib ``actor`` config: an MLPModel with a state-independent Gaussian head."""
    policy = plan.policy
    cfg = _model_cfg(policy.actor_hidden_dims, policy.activation, policy.actor_obs_normalization)
    cfg["distribution_cfg"] = {
        "class_name": "GaussianDistribution",
        "init_std": policy.init_noise_std,
        "std_type": policy.noise_std_type,
    }
    return cfg


def critic_cfg(plan: Plan) -> dict[str, Any]:
    """rsl-rl-lib ``critic`` config: an MLPModel without a distribution head."""
    policy = plan.policy
    return _model_cfg(policy.critic_hidden_dims, policy.activation, policy.critic_obs_normalization)


def algorithm_cfg(plan: Plan) -> dict[str, Any]:
    """rsl-rl-lib ``algorithm`` config: every PPO setting of the plan."""
    ppo = plan.ppo
    return {
        "class_name": "PPO",
        "num_learning_epochs": ppo.num_learning_epochs,
        "num_mini_batches": ppo.num_mini_batches,
        "clip_param": ppo.clip_param,
        "gamma": ppo.gamma,
        "lam": ppo.lam,
        "value_loss_coef": ppo.value_loss_coef,
        "entropy_coef": ppo.entropy_coef,
        "learning_rate": ppo.learning_rate,
        "max_grad_norm": ppo.max_grad_norm,
        "use_clipped_value_loss": ppo.use_clipped_value_loss,
        "schedule": ppo.schedule,
        "desired_kl": ppo.desired_kl,
        "normalize_advantage_per_mini_batch": ppo.normalize_advantage_per_mini_batch,
    }


def obs_groups(plan: Plan) -> dict[str, list[str]]:
    """Observation groups each model reads (rsl-rl-lib's ``obs_groups``)."""
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


def without_class_name(cfg: dict[str, Any]) -> dict[str, Any]:
    """A model or algorithm dict as keyword arguments of its class (rsl-rl-lib's runner pops ``class_name``)."""
    return {key: value for key, value in cfg.items() if key != "class_name"}
