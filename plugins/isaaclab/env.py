"""``make_env`` of the isaaclab backend: a kit-less Isaac Lab env behind rsl-rl-lib's VecEnv interface.

The env is Isaac Lab's own ``ManagerBasedRLEnv`` built from the compiled config (the ``env_cfg`` of the artifacts
``compile_plan_to_isaaclab`` produced, so the env is exactly what `rwmspec compile` shows), inside Isaac Lab's
``launch_simulation`` (Newton physics needs no Isaac Sim), wrapped by Isaac Lab's ``RslRlVecEnvWrapper``. rwmspec
adds ``extras["terminal_observations"]`` for the world-model stages and keeps the simulation launch open until
``close()``.

The test suite does not build this env: that needs the robot's USD and actuator network from the Isaac Sim asset
server (or a local mirror through ``ISAACSIM_ASSET_ROOT``), which the offline test machines do not have.
docs/isaaclab.md says what is verified and what is not.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from typing import Any

from rwmspec.manager import Registry
from rwmspec.plan import Plan
from rwmspec.types import Artifacts


def make_isaaclab_env(
    plan: Plan,
    artifacts: Artifacts,
    registry: Registry,
    *,
    device: str,
    num_envs: int | None = None,
    render: bool = False,
) -> Any:
    """Build the plan's Isaac Lab env from its compiled ``artifacts`` (``env_cfg``), headless and kit-less on the
    physics preset of ``[backend.options]``.

    :param device: torch/warp device of the simulation and of every returned tensor (``"cpu"``, ``"cuda:0"``).
    :param num_envs: overrides ``backend.num_envs`` (e.g. the few real envs of the finetune stage).
    :param render: not supported yet (RWM507): the env implements no ``make_renderer``.
    :return: a VecEnv: ``get_observations()`` gives a TensorDict of every observation group ``[num_envs, dim]``;
        ``step(actions [num_envs, num_actions])`` gives ``(obs, rewards [num_envs], dones [num_envs], extras)`` with
        ``extras["time_outs"]``, ``extras["log"]`` and, when the plan has ``system_*`` groups,
        ``extras["terminal_observations"]``.
    """
    try:
        from isaaclab.app import launch_simulation
        from isaaclab.envs import ManagerBasedRLEnv
        from isaaclab_tasks.utils.hydra import resolve_presets
    except ImportError as exc:
        # the config-only install (scripts/install_isaaclab_configs.sh) compiles but cannot simulate
        raise ImportError(
            f"the isaaclab backend cannot build an env here: {exc}. Running needs Isaac Lab 3.0's "
            "simulator packages (newton, mujoco-warp, usd-core): `pip install isaaclab==3.0.0` on "
            "Python 3.12, see docs/isaaclab.md"
        ) from exc

    from rwmspec_plugins.isaaclab.compile import backend_options

    options = backend_options(plan)
    # a copy: the artifacts stay what `rwmspec compile` shows, while the env's config gets device and env count
    env_cfg = copy.deepcopy(artifacts.objects["env_cfg"])
    # the compiled physics is already concrete; an articulation from a robot plugin may still hold presets
    env_cfg = resolve_presets(env_cfg, (options.physics,))
    env_cfg.sim.device = device
    if num_envs is not None:
        env_cfg.scene.num_envs = num_envs
    system_groups = tuple(name for name in plan.observations if name.startswith("system_"))
    # Isaac Lab resets finished envs inside step(); the world model needs their last observation before the reset
    env_cfg.compute_final_obs = bool(system_groups)

    launch = contextlib.ExitStack()
    launch.enter_context(launch_simulation(env_cfg, {"device": device, "physics": options.physics, "headless": True}))
    try:
        env = ManagerBasedRLEnv(cfg=env_cfg)
        return _vec_env_class()(env, launch, system_groups)
    except BaseException:
        launch.close()
        raise


@functools.cache
def _vec_env_class() -> type:
    """``RslRlVecEnvWrapper`` with rwmspec's extras; built on first use so that importing this module stays light."""
    from isaaclab_rl.rsl_rl import RslRlVecEnvWrapper
    from tensordict import TensorDict

    class IsaacLabVecEnv(RslRlVecEnvWrapper):
        """Isaac Lab's rsl-rl wrapper that also owns the simulation launch and reports terminal observations."""

        def __init__(self, env: Any, launch: contextlib.ExitStack, system_groups: tuple[str, ...]):
            super().__init__(env, clip_actions=None)
            self._launch = launch
            self._system_groups = system_groups

        def step(self, actions: Any) -> tuple[Any, Any, Any, dict]:
            obs, rewards, dones, extras = super().step(actions)
            # Isaac Lab writes final_obs (every group, all envs, computed before the resets of this step) only
            # on steps where some env reset; popping it keeps a stale one from surviving into the next step
            final = extras.pop("final_obs", None)
            if final is not None and self._system_groups:
                # [num_envs, dim] per system_* group; rows of envs that did not reset equal their returned obs
                extras["terminal_observations"] = TensorDict(
                    {name: final[name] for name in self._system_groups}, batch_size=[self.num_envs]
                )
            return obs, rewards, dones, extras

        def close(self) -> None:
            try:
                super().close()
            finally:
                self._launch.close()

    return IsaacLabVecEnv
