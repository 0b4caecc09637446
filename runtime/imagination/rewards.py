"""The imagined reward and termination of one step, from the world model's prediction.

The predicted state becomes a ``StateView`` (``StateMapping``): contacts are ``prob > 0.5``, contact timers advance
with them (``contact_timers.advance``), ``prev_joint_vel`` is the joint velocity of s_t. Rewards come from the plan's
reward terms through the same ``call_reward_terms`` / ``total_reward`` as the real backend, so the same state gives
the same reward. The uncertainty penalty is one more term::

    r = sum_i w_i * term_i * dt  -  lambda * u * dt          (logged as ``uncertainty_penalty`` when lambda > 0)

with lambda = ``imagination.uncertainty_penalty_weight`` (>= 0; upstream writes the same with a negative weight) and u
the prediction's epistemic uncertainty. An episode terminates when any predicted termination probability exceeds 0.5.

Quirks (``plan.quirks``, defaults corrected): ``dof_acc_uses_joint_pos`` puts the previous state's joint positions
(relative to the default pose) where the previous joint velocities belong; ``feet_air_time_lagged_first_contact``
gives the reward terms the contact timers from *before* this step's update.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rwmspec.manager import Registry
from rwmspec.plan import TermPlan

# the uncertainty penalty's name among the reward terms (episode sums, logs); the compiler refuses a reward of that
# name (RWM217)
from rwmspec.spec.model import UNCERTAINTY_PENALTY_TERM as PENALTY_TERM
from rwmspec_runtime.imagination.seeds import CONTACT_THRESHOLD
from rwmspec_runtime.imagination.state import ImaginedState
from rwmspec_runtime.imagination.state_mapping import StateMapping
from rwmspec_runtime.mdp import ContactTimers, bind_term_functions, call_reward_terms, contact_timers, total_reward
from rwmspec_runtime.world_model.protocol import Prediction
from rwmspec_runtime.world_model.system_data import SystemNormalizer


@dataclass
class RewardOutcome:
    """What ``ImaginedReward`` computes from one prediction, each ``[N, ·]``."""

    weighted: dict[str, torch.Tensor]  #: term name -> weighted reward ``[N]`` (``* dt``; penalty included)
    per_term: torch.Tensor  #: ``[N, T]`` the same, one column per name of ``ImaginedReward.terms``
    rewards: torch.Tensor  #: ``[N]`` their sum
    state_obs: torch.Tensor  #: ``[N, S]`` the predicted state in system_state units
    fields: dict[str, torch.Tensor]  #: its view fields
    contacts: dict[str, torch.Tensor]  #: predicted contact groups ``[N, B]`` bool
    timers: dict[str, ContactTimers]  #: contact timers advanced with them
    episode_length: torch.Tensor  #: ``[N]`` episode lengths counting this step


def predicted_termination(prediction: Prediction) -> torch.Tensor:
    """``[N]`` bool: any predicted termination probability over the threshold (False without termination heads)."""
    probs = prediction.termination_prob
    if probs.shape[1] == 0:
        return torch.zeros(probs.shape[0], dtype=torch.bool, device=probs.device)
    return (probs > CONTACT_THRESHOLD).any(dim=-1)


class ImaginedReward:
    """The plan's reward terms on predicted states (see the module docstring).

    :param rewards: the plan's reward terms.
    :param mapping: predicted ``system_state`` columns -> view fields and contacts.
    :param normalizer: the run's ``SystemNormalizer``.
    :param dt: control period (s).
    :param penalty_weight: lambda of the uncertainty penalty.
    """

    def __init__(
        self,
        rewards: tuple[TermPlan, ...],
        registry: Registry,
        mapping: StateMapping,
        normalizer: SystemNormalizer,
        *,
        dt: float,
        penalty_weight: float = 0.0,
        dof_acc_uses_joint_pos: bool = False,
        lagged_first_contact: bool = False,
    ) -> None:
        self.rewards = rewards
        self.functions = bind_term_functions(rewards, registry, "reward")
        self.mapping = mapping
        self.normalizer = normalizer
        self.dt = dt
        self.penalty_weight = float(penalty_weight)
        self.dof_acc_uses_joint_pos = dof_acc_uses_joint_pos
        self.lagged_first_contact = lagged_first_contact
        #: the logged reward terms, in column order of ``RewardOutcome.per_term``
        self.terms = tuple(t.name for t in rewards if t.weight != 0.0) + (
            (PENALTY_TERM,) if self.penalty_weight > 0.0 else ()
        )

    def __call__(
        self, current: ImaginedState, action: torch.Tensor, prediction: Prediction, max_episode_length: int
    ) -> RewardOutcome:
        """The view of the predicted state, its contacts and timers, and the rewards of taking ``action`` (raw,
        ``[N, A]``) in ``current``. Changes nothing."""
        dt = self.dt
        next_obs = self.normalizer.denormalize_state(prediction.next_state)
        fields = self.mapping.fields(next_obs)
        contacts = self.mapping.contacts(
            prediction.contact_prob > CONTACT_THRESHOLD, prediction.termination_prob > CONTACT_THRESHOLD
        )
        timers = {g: contact_timers.advance(t, contacts[g], dt) for g, t in current.timers.items()}
        previous = (
            current.fields["joint_pos"] - self.mapping.default_joint_pos
            if self.dof_acc_uses_joint_pos
            else current.fields["joint_vel"]
        )
        length = current.episode_length + 1
        view = self.mapping.view(
            next_obs,
            fields=fields,
            prev_joint_vel=previous,
            contacts=contacts,
            command=current.command,
            action=action,
            prev_action=current.last_action,
            dt=dt,
            contact_timers=current.timers if self.lagged_first_contact else timers,
            episode_length=length,
            max_episode_length=max_episode_length,
        )
        weighted = call_reward_terms(view, self.rewards, self.functions)
        if self.penalty_weight > 0.0:
            weighted[PENALTY_TERM] = prediction.epistemic * (-self.penalty_weight * dt)
        columns = [weighted[name] for name in self.terms]
        per_term = torch.stack(columns, dim=-1) if columns else next_obs.new_zeros(next_obs.shape[0], 0)
        return RewardOutcome(
            weighted=weighted,
            per_term=per_term,
            rewards=total_reward(weighted, view),
            state_obs=next_obs,
            fields=fields,
            contacts=contacts,
            timers=timers,
            episode_length=length,
        )
