"""rsl-rl-lib 5.x PPO built from a Plan: the algorithm with its rollout storage, and a stand-alone actor.

The runtime drives rsl-rl-lib's building blocks (``PPO``, ``MLPModel``, ``GaussianDistribution``,
``RolloutStorage``) from its own loop; it never subclasses them. Their settings come from ``rwmspec.ppo_config``,
the one translation of the plan into rsl-rl-lib's config that the isaaclab backend's runner config uses too.
"""

from __future__ import annotations

import os

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # rsl_rl's logger imports GitPython, which needs git otherwise

import torch  # noqa: E402
from rsl_rl.algorithms import PPO  # noqa: E402
from rsl_rl.models import MLPModel  # noqa: E402
from rsl_rl.storage import RolloutStorage  # noqa: E402
from tensordict import TensorDict  # noqa: E402

from rwmspec.plan import Plan  # noqa: E402
from rwmspec.ppo_config import (  # noqa: E402
    actor_cfg,
    algorithm_cfg,
    critic_cfg,
    obs_groups,
    train_cfg,
    without_class_name,
)

#: ``train_cfg`` stays importable here: callers that build an rsl-rl-lib ``OnPolicyRunner`` next to the runtime's PPO
#: take both from one module.
__all__ = ["build_actor", "build_ppo", "train_cfg", "zero_observations"]


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
    actor = MLPModel(obs, groups, "actor", num_actions, **without_class_name(actor_cfg(plan)))
    critic = MLPModel(obs, groups, "critic", 1, **without_class_name(critic_cfg(plan)))
    storage = RolloutStorage("rl", num_envs, num_steps or plan.ppo.num_steps_per_env, obs, [num_actions], device)
    return PPO(actor, critic, storage, device=device, **without_class_name(algorithm_cfg(plan)))


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
        zero_observations(plan, device=device), groups, "actor", plan.action_dim, **without_class_name(actor_cfg(plan))
    )
    actor.load_state_dict(actor_state_dict)
    return actor.to(device).eval()
