"""Imagination: the world model rolled out as a batched env (``ImaginationEnv``) and the runner step ``imagine``
that fills PPO's rollout storage from it (rwm_method §4)."""
