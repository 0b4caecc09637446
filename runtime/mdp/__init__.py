"""The runtime's MDP layer, shared by real backends and the imagination env.

Term functions read a ``StateView``; ``bind_term_functions`` / ``call_reward_terms`` / ``total_reward`` bind and
weigh them; ``ObservationManager`` assembles observation groups (noise, clip, scale); ``make_command`` builds a
command term object (``CommandTerm``) from the registry; ``EventManager`` runs the event terms (``EventTerm``) by mode
and keeps their interval timers; ``contact_timers`` advances per-body air and contact times.
Backend and task plugins import these names from here (the runtime's public MDP API).
"""

from rwmspec_runtime.mdp import contact_timers
from rwmspec_runtime.mdp.commands import CommandTerm, make_command
from rwmspec_runtime.mdp.events import EventManager, EventTerm, RandomSource, Uniforms, as_tensor, make_event_term
from rwmspec_runtime.mdp.observations import ObservationManager
from rwmspec_runtime.mdp.state import ContactTimers, StateView
from rwmspec_runtime.mdp.terms import (
    TermFunction,
    bind_term_functions,
    call_reward_terms,
    compute_observation_group,
    resolve_term_function,
    total_reward,
)

__all__ = [
    "CommandTerm",
    "ContactTimers",
    "EventManager",
    "EventTerm",
    "ObservationManager",
    "RandomSource",
    "StateView",
    "TermFunction",
    "Uniforms",
    "as_tensor",
    "bind_term_functions",
    "call_reward_terms",
    "compute_observation_group",
    "contact_timers",
    "make_command",
    "make_event_term",
    "resolve_term_function",
    "total_reward",
]
