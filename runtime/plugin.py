"""The runtime's own plugin: the pipeline stages, the runner steps they run and the CLI commands that run them.

Registered through the ``rwmspec`` entry-point group like every other plugin, so a third party adds a stage, a step
or a command with the same hooks. Light module: records only; the steps and commands are imported by reference when
a plan runs them, so ``rwmspec validate`` (which reads the stages) never imports torch.
"""

from __future__ import annotations

from rwmspec import hookimpl
from rwmspec.types import CommandDef, StageDef, StepDef

STEPS = (
    StepDef(
        name="collect",
        description="Real rollout with the current policy; feeds PPO unless the stage imagines.",
        step="rwmspec_runtime.steps:CollectRollout",
    ),
    StepDef(
        name="update_policy",
        description="PPO update on the rollout storage.",
        step="rwmspec_runtime.steps:UpdatePolicy",
    ),
    StepDef(
        name="store_transitions",
        description="Append the real transitions to the world model's replay buffer.",
        step="rwmspec_runtime.world_model.steps:StoreTransitions",
    ),
    StepDef(
        name="update_world_model",
        description="World-model training on replay-buffer windows.",
        step="rwmspec_runtime.world_model.steps:UpdateWorldModel",
    ),
    StepDef(
        name="imagine",
        description="PPO's rollout from imagined envs of the world model (MBPO-PPO).",
        step="rwmspec_runtime.imagination.step:Imagine",
    ),
    StepDef(
        name="visualize",
        description="The real robot next to its imagined twin (video, plots).",
        step="rwmspec_runtime.visualize:Visualize",
    ),
)

STAGES = (
    StageDef(name="init", description="Plain PPO on the real (simulated) robot.", steps=("collect", "update_policy")),
    StageDef(
        name="pretrain",
        description="PPO on the real robot while the world model learns from its transitions.",
        steps=("collect", "store_transitions", "update_world_model", "update_policy"),
        world_model=True,
    ),
    StageDef(
        name="finetune",
        description="MBPO-PPO: the policy learns in imagination; the model keeps learning from a few real envs.",
        steps=("collect", "store_transitions", "update_world_model", "imagine", "update_policy"),
        world_model=True,
        imagination=True,
        references=("world_model_from",),
    ),
    StageDef(
        name="visualize",
        description="The real robot next to its imagined twin, one pass.",
        steps=("visualize",),
        world_model=True,
        references=("policy_from", "world_model_from"),
        single_pass=True,
    ),
)

_CLI = "rwmspec_runtime.cli"

COMMANDS = (
    CommandDef(
        name="run",
        help="train a spec (or continue a run)",
        configure=f"{_CLI}:configure_run",
        handler=f"{_CLI}:run",
        epilog="examples:\n"
        "  rwmspec run specs/anymal_d_init.toml --overlay specs/overlays/cpu.toml\n"
        "  rwmspec run specs/anymal_d_init.toml --resume                  # continue the newest run\n"
        "  rwmspec run specs/anymal_d_finetune.toml --with-deps           # train init and pretrain first if needed\n",
    ),
    CommandDef(
        name="eval",
        help="evaluate a run's policy in the real backend",
        configure=f"{_CLI}:configure_eval",
        handler=f"{_CLI}:evaluate",
    ),
    CommandDef(
        name="play",
        help="render a run's policy to an MP4 video (headless)",
        configure=f"{_CLI}:configure_play",
        handler=f"{_CLI}:play",
    ),
    CommandDef(
        name="export",
        help="export a run's policy to TorchScript or ONNX",
        configure=f"{_CLI}:configure_export",
        handler=f"{_CLI}:export",
    ),
    CommandDef(
        name="eval-model",
        help="evaluate a run's world model against the real backend (errors over horizons, plots)",
        configure="rwmspec_runtime.world_model.cli:configure",
        handler="rwmspec_runtime.world_model.cli:eval_model",
    ),
)


@hookimpl
def rwmspec_runner_steps():
    yield from STEPS


@hookimpl
def rwmspec_stages():
    yield from STAGES


@hookimpl
def rwmspec_commands():
    yield from COMMANDS
