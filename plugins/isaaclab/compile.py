"""Plan -> Isaac Lab 3.0 config objects: a ``ManagerBasedRLEnvCfg`` and an rsl-rl ``RslRlOnPolicyRunnerCfg``.

Every MDP term of the plan is bound through the isaaclab ``TermBinding`` of its kind (a term function, a class-based
term, or a command/action config class; ``registry.binding``) and its params are translated to Isaac Lab's names:

* ``bodies = "<contact group>"`` becomes ``sensor_cfg = SceneEntityCfg("contact_forces", body_names=<regex>)``,
  the regex matching exactly the robot's bodies of that group;
* ``body_names = "<regex>"`` (events) becomes ``asset_cfg = SceneEntityCfg("robot", body_names=<regex>)``;
* lists become tuples (Isaac Lab writes ranges as tuples).

Isaac Lab pieces with no plan counterpart are taken from Isaac Lab's velocity task itself (terrain and its
material, the physics presets, the contact sensor layout) so that a plan written like ``AnymalDFlatEnvCfg``
compiles to the same config. The robot is the articulation of its isaaclab ``RobotAsset`` (``registry.asset``),
placed at this backend's prim path. The runner config takes rsl-rl-lib's settings from ``rwmspec.ppo_config``, the
translation the runtime's own PPO uses. Isaac Lab is imported inside the functions only.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable, Iterable
from typing import Any

from rwmspec.diagnostics import Diagnostic, SpecError
from rwmspec.manager import Registry, resolve
from rwmspec.plan import ObservationGroupPlan, Plan, TermPlan
from rwmspec.ppo_config import train_cfg, without_class_name
from rwmspec.spec.convert import structure
from rwmspec.types import Artifacts, TermBinding

#: Scene entity names: the term params refer to these.
ROBOT = "robot"
#: Prim path of the robot in every env, whatever prim path its articulation asset comes with: the contact sensor's
#: prim path is derived from it.
ROBOT_PRIM_PATH = "{ENV_REGEX_NS}/Robot"
CONTACT_SENSOR = "contact_forces"
#: Contact sensor on every direct child prim of the robot, i.e. every rigid body (Isaac Lab's velocity task).
CONTACT_SENSOR_PRIM_SUFFIX = "/[^/]*"
#: Params that Isaac Lab's function hard-codes: (category, kind, param) -> the only value it implements.
FIXED_IN_ISAACLAB: dict[tuple[str, str, str], Any] = {
    # isaaclab_tasks' feet_air_time gates on a planar command norm > 0.1 without a parameter for it
    ("reward", "feet_air_time", "command_threshold"): 0.1,
}
#: Flat-ground contact budget of the MuJoCo-Warp solver in Isaac Lab's flat velocity tasks (AnymalDFlatEnvCfg).
FLAT_MJWARP_SOLVER = {"njmax": 60, "nconmax": 25, "cone": "elliptic", "impratio": 100.0}
#: Arguments of term functions that the managers pass themselves.
MANAGER_ARGUMENTS = ("self", "env", "env_ids")
BACKEND = "isaaclab"
SECTIONS = {
    "observation": "observations",
    "reward": "rewards",
    "termination": "terminations",
    "event": "events",
    "command": "commands",
    "action": "actions",
}


def compile_plan_to_isaaclab(plan: Plan, registry: Registry) -> Artifacts:
    """Compile ``plan`` into Isaac Lab 3.0 objects.

    :return: ``Artifacts`` with ``objects = {"env_cfg": ManagerBasedRLEnvCfg, "runner_cfg": RslRlOnPolicyRunnerCfg}``
        and ``dumps = {"env.yaml", "agent.yaml"}`` written the way Isaac Lab's train script writes ``params/``.
    :raises SpecError: a term cannot be expressed in Isaac Lab (RWM402), every problem at once.
    """
    compiler = _IsaacLabCompiler(plan, registry)
    env_cfg = compiler.env_cfg()
    runner_cfg = runner_cfg_from_plan(plan)
    if compiler.problems:
        raise SpecError(compiler.problems)
    return Artifacts(
        backend=BACKEND,
        objects={"env_cfg": env_cfg, "runner_cfg": runner_cfg},
        dumps={"env.yaml": yaml_dump(env_cfg), "agent.yaml": yaml_dump(runner_cfg)},
    )


def backend_options(plan: Plan) -> Any:
    """The plan's ``[backend.options]`` as ``IsaacLabOptions`` (defaults filled in).

    A plan written for another backend (compiled here with ``compile_backend(plan, registry, "isaaclab")``) carries
    that backend's options; they mean nothing here, so the isaaclab defaults apply.
    """
    from rwmspec_plugins.isaaclab.plugin import IsaacLabOptions

    if plan.sim.backend != "isaaclab":
        return IsaacLabOptions()
    options = plan.sim.options
    if isinstance(options, IsaacLabOptions):
        return options
    # validated by `rwmspec validate` (RWM213); only a plan built by hand fails here, with the same diagnostics
    return structure(dict(options or {}), IsaacLabOptions, path=("backend", "options"), code="RWM213")


def yaml_dump(cfg: Any) -> str:
    """A config as Isaac Lab's ``dump_yaml`` writes it (``to_dict``, keys in field order), as text."""
    import yaml
    from isaaclab.utils import to_dict

    return yaml.dump(to_dict(cfg), default_flow_style=False, sort_keys=False)


# --------------------------------------------------------------------------------------------------------------------
# runner
# --------------------------------------------------------------------------------------------------------------------
def runner_cfg_from_plan(plan: Plan) -> Any:
    """rsl-rl-lib 5.x runner config of the plan's PPO, actor-critic and runner settings.

    The rsl-rl-lib settings are ``rwmspec.ppo_config.train_cfg(plan)`` in Isaac Lab's config classes; the fields
    only Isaac Lab's train script reads (seed, device, iterations, names) come from the plan directly. Deprecated
    rsl-rl fields are settled with Isaac Lab's ``handle_deprecated_rsl_rl_cfg`` for the installed rsl-rl-lib, as
    Isaac Lab's train script does, so ``to_dict(cfg)`` is a valid ``OnPolicyRunner`` train_cfg.
    """
    from importlib.metadata import version

    from isaaclab_rl.rsl_rl import (
        RslRlMLPModelCfg,
        RslRlOnPolicyRunnerCfg,
        RslRlPpoAlgorithmCfg,
        handle_deprecated_rsl_rl_cfg,
    )

    train = train_cfg(plan)
    actor = without_class_name(train["actor"])
    distribution = without_class_name(actor.pop("distribution_cfg"))
    actor_cfg = RslRlMLPModelCfg(**actor, distribution_cfg=RslRlMLPModelCfg.GaussianDistributionCfg(**distribution))
    critic_cfg = RslRlMLPModelCfg(**without_class_name(train["critic"]), distribution_cfg=None)
    cfg = RslRlOnPolicyRunnerCfg(
        seed=plan.experiment.seed,
        device=plan.sim.device,
        num_steps_per_env=train["num_steps_per_env"],
        max_iterations=plan.runner.max_iterations,
        save_interval=train["save_interval"],
        experiment_name=plan.experiment.name,
        run_name=plan.run_name,
        obs_groups=train["obs_groups"],
        init_at_random_ep_len=plan.runner.init_at_random_ep_len,
        check_for_nan=train["check_for_nan"],
        logger=train["logger"],
        actor=actor_cfg,
        critic=critic_cfg,
        algorithm=RslRlPpoAlgorithmCfg(**train["algorithm"]),
    )
    return handle_deprecated_rsl_rl_cfg(cfg, version("rsl-rl-lib"))


# --------------------------------------------------------------------------------------------------------------------
# environment
# --------------------------------------------------------------------------------------------------------------------
def _binding_key(binding: TermBinding) -> tuple[str, tuple[str, str, str]]:
    """The binding's key in ``Registry.providers``."""
    return ("bindings", (binding.backend, binding.category, binding.kind))


def make_configclass(name: str, base: type, members: dict[str, Any]) -> type:
    """A new Isaac Lab configclass ``name(base)`` whose fields are ``members`` (in order), e.g. a rewards section."""
    from isaaclab.utils import configclass

    return configclass(type(name, (base,), {"__module__": __name__, "__qualname__": name, **members}))


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _tupled(value: Any) -> Any:
    """Lists become tuples at every depth (ranges in Isaac Lab configs are tuples); dicts keep their keys."""
    if isinstance(value, list | tuple):
        return tuple(_tupled(v) for v in value)
    if isinstance(value, dict):
        return {k: _tupled(v) for k, v in value.items()}
    return value


def _accepted_parameters(target: Callable[..., Any]) -> tuple[set[str], bool]:
    """Keyword params a term function (or a class-based term's ``__call__``) takes, and whether it takes ``**kw``."""
    fn = target.__call__ if isinstance(target, type) else target
    params = inspect.signature(fn).parameters
    names = {
        n
        for n, p in params.items()
        if n not in MANAGER_ARGUMENTS and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    return names, any(p.kind is p.VAR_KEYWORD for p in params.values())


class _IsaacLabCompiler:
    def __init__(self, plan: Plan, registry: Registry):
        self.plan = plan
        self.registry = registry
        self.options = backend_options(plan)
        self.problems: list[Diagnostic] = []

    # ---------------------------------------------------------------- reporting
    def problem(self, message: str, path: tuple[str, ...], hint: str | None = None) -> None:
        self.problems.append(Diagnostic("RWM402", message, path=path, hint=hint, file=self.plan.spec_file))

    # ---------------------------------------------------------------- binding
    def target(self, category: str, term: Any, path: tuple[str, ...]) -> Any | None:
        """The Isaac Lab object ``term``'s kind binds to (function, term class or config class)."""
        binding = self.registry.binding(BACKEND, category, term.kind)
        if binding is None:
            self.problem(
                f"{category} kind '{term.kind}' has no Isaac Lab binding",
                path,
                hint=f"register TermBinding(backend='{BACKEND}', category='{category}', kind='{term.kind}', "
                "ref='package.module:attr') from a plugin's rwmspec_term_bindings() hook (docs/plugins.md)",
            )
            return None
        try:
            return resolve(binding.ref)
        except (ImportError, AttributeError) as exc:
            self.problem(
                f"{category} kind '{term.kind}': cannot import its Isaac Lab binding '{binding.ref}': "
                f"{type(exc).__name__}: {exc}",
                path,
                hint=f"fix the TermBinding's `ref` (provided by {self.registry.providers.get(_binding_key(binding), '?')}; "
                "Isaac Lab 3.0 module paths, docs/isaaclab.md)",
            )
            return None

    def contact_entity(self, group: str, path: tuple[str, ...]) -> Any:
        """``SceneEntityCfg`` of the contact sensor restricted to the bodies of contact group ``group``."""
        from isaaclab.managers import SceneEntityCfg

        bodies = self.plan.robot.contact_bodies.get(group)
        if not bodies:
            self.problem(
                f"robot '{self.plan.robot.name}' has no contact group '{group}' (groups: "
                f"{', '.join(self.plan.robot.contact_bodies)})",
                (*path, "bodies"),
            )
            bodies = ()
        # one alternation matched with re.fullmatch against each body name, as Isaac Lab resolves body_names
        return SceneEntityCfg(CONTACT_SENSOR, body_names="|".join(re.escape(b) for b in bodies))

    def term_params(
        self, category: str, term: Any, target: Callable[..., Any], path: tuple[str, ...]
    ) -> dict[str, Any]:
        """Plan params -> the keyword params of Isaac Lab's term function ``target``."""
        from isaaclab.managers import SceneEntityCfg

        accepted, any_keyword = _accepted_parameters(target)
        out: dict[str, Any] = {}
        for key, value in dict(term.params).items():
            if key == "bodies":
                out["sensor_cfg"] = self.contact_entity(value, path)
                continue
            if key == "body_names":
                out["asset_cfg"] = SceneEntityCfg(ROBOT, body_names=value)
                continue
            if key in accepted or any_keyword:
                out[key] = _tupled(value)
                continue
            fixed_key = (category, term.kind, key)
            if fixed_key in FIXED_IN_ISAACLAB:
                fixed = FIXED_IN_ISAACLAB[fixed_key]
                if value != fixed:
                    self.problem(
                        f"{category} '{term.name}': Isaac Lab's {term.kind} implements only {key} = {fixed} "
                        f"(the spec sets {value})",
                        (*path, key),
                        hint=f"use {key} = {fixed} with the isaaclab backend",
                    )
                continue
            self.problem(
                f"{category} '{term.name}': Isaac Lab's {term.kind} takes no parameter '{key}' (it takes "
                f"{', '.join(sorted(accepted)) or 'none'})",
                (*path, key),
            )
        for needed in ("sensor_cfg", "asset_cfg"):
            if needed in out and needed not in accepted and not any_keyword:
                self.problem(
                    f"{category} '{term.name}': Isaac Lab's {term.kind} takes no '{needed}', so its "
                    f"{'bodies' if needed == 'sensor_cfg' else 'body_names'} cannot be passed",
                    path,
                )
        return out

    # ---------------------------------------------------------------- sections
    def section(self, category: str, terms: Iterable[TermPlan], make: Callable[..., Any]) -> Any:
        """A configclass instance with one field per term, in plan order; ``make(term, target, path)`` builds one."""
        members = {}
        for term in terms:
            path = (SECTIONS[category], term.name)
            target = self.target(category, term, path)
            if target is not None:
                members[term.name] = make(term, target, path)
        return make_configclass(f"{_camel(SECTIONS[category])}Cfg", object, members)()

    def rewards(self) -> Any:
        from isaaclab.managers import RewardTermCfg

        return self.section(
            "reward",
            self.plan.rewards,
            lambda t, f, path: RewardTermCfg(func=f, weight=t.weight, params=self.term_params("reward", t, f, path)),
        )

    def terminations(self) -> Any:
        from isaaclab.managers import TerminationTermCfg

        return self.section(
            "termination",
            self.plan.terminations,
            lambda t, f, path: TerminationTermCfg(
                func=f, params=self.term_params("termination", t, f, path), time_out=t.mode == "time_out"
            ),
        )

    def events(self) -> Any:
        from isaaclab.managers import EventTermCfg

        return self.section(
            "event",
            self.plan.events,
            lambda t, f, path: EventTermCfg(
                func=f, mode=t.mode, interval_range_s=t.interval_range_s, params=self.term_params("event", t, f, path)
            ),
        )

    def config_class_term(self, term: TermPlan, cfg_class: type, path: tuple[str, ...], **fixed: Any) -> Any:
        """A command or action: plan params become fields of Isaac Lab's config class (nested ``Ranges`` too)."""
        fields = {f.name for f in dataclasses.fields(cfg_class)}
        ranges_class = getattr(cfg_class, "Ranges", None)
        range_fields = {f.name for f in dataclasses.fields(ranges_class)} if ranges_class else set()
        values: dict[str, Any] = {}
        ranges: dict[str, Any] = {}
        for key, value in dict(term.params).items():
            if key in range_fields:
                ranges[key] = _tupled(value)
            elif key == "joint_names" and isinstance(value, str):
                values[key] = [value]
            elif key in fields:
                values[key] = _tupled(value)
            else:
                self.problem(
                    f"{path[0]} '{term.name}': Isaac Lab's {cfg_class.__name__} has no field '{key}'", (*path, key)
                )
        if ranges_class is not None:
            values["ranges"] = ranges_class(**ranges)
        return cfg_class(**fixed, **values)

    def commands(self) -> Any:
        # debug_vis off: its markers are USD files on the Isaac Sim asset server and nothing renders headless
        return self.section(
            "command",
            self.plan.commands,
            lambda t, cls, path: self.config_class_term(
                t, cls, path, asset_name=ROBOT, resampling_time_range=t.interval_range_s, debug_vis=False
            ),
        )

    def actions(self) -> Any:
        return self.section(
            "action", self.plan.actions, lambda t, cls, path: self.config_class_term(t, cls, path, asset_name=ROBOT)
        )

    def observation_group(self, group: ObservationGroupPlan) -> Any:
        from isaaclab.managers import ObservationGroupCfg, ObservationTermCfg
        from isaaclab.utils.noise import UniformNoiseCfg

        members = {}
        for term in group.terms:
            path = ("observations", group.name, "terms", term.name)
            target = self.target("observation", term, path)
            if target is None:
                continue
            noise = UniformNoiseCfg(n_min=-term.noise, n_max=term.noise) if term.noise else None
            members[term.name] = ObservationTermCfg(
                func=target,
                params=self.term_params("observation", term, target, path),
                noise=noise,
                clip=_tupled(term.clip),
                scale=term.scale,
            )
        cls = make_configclass(f"{_camel(group.name)}Cfg", ObservationGroupCfg, members)
        # every group is one flat vector per env: the runtime slices it by the plan's term offsets
        return cls(concatenate_terms=True, enable_corruption=group.corruption)

    def observations(self) -> Any:
        groups = {name: self.observation_group(group) for name, group in self.plan.observations.items()}
        return make_configclass("ObservationsCfg", object, groups)()

    # ---------------------------------------------------------------- scene and simulation
    def robot(self) -> Any:
        """The robot's articulation (its isaaclab ``RobotAsset``), placed at ``ROBOT_PRIM_PATH``."""
        from isaaclab.utils import replace

        name = self.plan.robot.name
        asset = self.registry.asset(name, BACKEND)
        if asset is None:
            self.problem(
                f"robot '{name}' has no Isaac Lab articulation",
                ("robot", "name"),
                hint=f"register RobotAsset(robot='{name}', backend='{BACKEND}', ref='package.module:function') "
                "from a plugin's rwmspec_robot_assets() hook; the function returns an Isaac Lab ArticulationCfg",
            )
            return None
        return replace(resolve(asset.ref)(), prim_path=ROBOT_PRIM_PATH)

    def terrain(self) -> Any:
        """Isaac Lab's velocity-task terrain (ground material included) as a plane or a random-rough field."""
        from isaaclab.terrains.config.rough import ROUGH_TERRAINS_CFG
        from isaaclab.utils import replace
        from isaaclab_tasks.core.velocity.velocity_env_cfg import MySceneCfg

        terrain = MySceneCfg(num_envs=1, env_spacing=1.0).terrain
        if self.options.terrain == "plane":
            return replace(terrain, terrain_type="plane", terrain_generator=None)
        random_rough = replace(ROUGH_TERRAINS_CFG.sub_terrains["random_rough"], proportion=1.0)
        generator = replace(
            ROUGH_TERRAINS_CFG,
            sub_terrains={"random_rough": random_rough},
            difficulty_range=(0.0, 0.0),
            curriculum=False,
        )
        return replace(terrain, terrain_type="generator", terrain_generator=generator)

    def scene(self, robot: Any) -> Any:
        from isaaclab.scene import InteractiveSceneCfg
        from isaaclab.sensors import ContactSensorCfg

        contact = ContactSensorCfg(
            prim_path=f"{robot.prim_path}{CONTACT_SENSOR_PRIM_SUFFIX}",
            history_length=self.options.contact_history,
            track_air_time=True,
            update_period=self.plan.sim.physics_dt,
        )
        # order matters: InteractiveScene spawns entities in field order (terrain, robot, then sensors)
        members = {"terrain": self.terrain(), ROBOT: robot, CONTACT_SENSOR: contact}
        cls = make_configclass("SceneCfg", InteractiveSceneCfg, members)
        return cls(num_envs=self.plan.sim.num_envs, env_spacing=self.options.env_spacing)

    def physics(self) -> Any:
        """The chosen preset of Isaac Lab's velocity-task physics, as a concrete config (no preset left)."""
        from isaaclab_tasks.core.velocity.velocity_env_cfg import RoughPhysicsCfg

        physics = getattr(RoughPhysicsCfg(), self.options.physics)
        if self.options.physics == "newton_mjwarp" and self.options.terrain == "plane":
            for key, value in FLAT_MJWARP_SOLVER.items():
                setattr(physics.solver_cfg, key, value)
        return physics

    def env_cfg(self) -> Any:
        from isaaclab.envs import ManagerBasedRLEnvCfg
        from isaaclab.sim import SimulationCfg

        sim = self.plan.sim
        robot = self.robot()
        if robot is None:
            raise SpecError(self.problems)
        scene = self.scene(robot)
        sim_cfg = SimulationCfg(
            dt=sim.physics_dt,
            render_interval=sim.decimation,
            device=sim.device,
            physics=self.physics(),
            physics_material=scene.terrain.physics_material,
        )
        return ManagerBasedRLEnvCfg(
            seed=self.plan.experiment.seed,
            sim=sim_cfg,
            scene=scene,
            decimation=sim.decimation,
            episode_length_s=sim.episode_length_s,
            observations=self.observations(),
            actions=self.actions(),
            commands=self.commands(),
            rewards=self.rewards(),
            terminations=self.terminations(),
            events=self.events(),
        )
