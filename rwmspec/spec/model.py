"""The experiment spec model: one attrs class per TOML table, every field documented.

The docs in ``metadata["doc"]`` are the single source for `rwmspec schema` (JSON Schema descriptions) and for
docs/spec.md. Classes stay plain (attrs validators are not used): every check that can fail lives in
``rwmspec.spec.checks`` so that all problems are reported in one pass, each with its file, line and column.

Term tables (``[rewards.<name>]``, ``[events.<name>]``, ...) keep their kind-specific parameters *flat*
beside the common keys (``weight``, ``mode``, ...); the loader moves them into ``params`` and checks them
against the params class that the term kind's plugin registered.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs


def doc(text: str, default: Any = attrs.NOTHING, factory: Any = None) -> Any:
    """An attrs field carrying its user-facing documentation."""
    if factory is not None:
        return attrs.field(factory=factory, metadata={"doc": text})
    return attrs.field(default=default, metadata={"doc": text})


# --------------------------------------------------------------------------------------------------------------------
# experiment, robot, backend
# --------------------------------------------------------------------------------------------------------------------
@attrs.define(kw_only=True)
class ExperimentSpec:
    name: str = doc("Experiment name. Runs are written to `<runs-dir>/<name>/<timestamp>_<run_name>/`.")
    stage: str = doc(
        "Pipeline stage, a name registered by a plugin (the runtime registers `init` (PPO), `pretrain` (PPO + "
        "world model), `finetune` (MBPO-PPO in imagination) and `visualize` (real robot next to its imagined twin))."
    )
    seed: int = doc("Seed of every random generator (torch, numpy, physics randomisation).", 42)
    extends: str | None = doc(
        "Path of a base spec, relative to this file. Its values apply first; this file's values override them.", None
    )
    run_name: str | None = doc("Suffix of the run directory name. Defaults to the stage.", None)
    description: str = doc("Free text shown by `rwmspec show`.", "")


@attrs.define(kw_only=True)
class RobotSpec:
    name: str = doc("Robot plugin name, as listed by `rwmspec list robots`.")
    options: dict[str, Any] = doc("Robot options, checked against the robot plugin's options class.", factory=dict)


@attrs.define(kw_only=True)
class BackendSpec:
    name: str = doc(
        "Backend plugin: `embedded` (MuJoCo on the CPU, runs anywhere) or `isaaclab` (Isaac Lab 3.0).", "embedded"
    )
    num_envs: int = doc("Number of parallel real environments.", 4096)
    max_num_envs: int | None = doc(
        "Cap on `num_envs` for a small machine. An overlay sets the cap rather than "
        "`num_envs`, so each stage keeps a smaller count of its own (finetune's 10 "
        "real envs stay 10).",
        None,
    )
    device: str = doc(
        "Torch device for learning (`cpu`, `cuda`, `cuda:1`). Physics of the embedded backend always "
        "runs on CPU threads.",
        "cpu",
    )
    physics_dt: float = doc("Physics time step in seconds.", 0.005)
    decimation: int = doc("Physics steps per policy step; the control period is `physics_dt * decimation`.", 4)
    episode_length_s: float = doc("Episode length in seconds before a time-out.", 20.0)
    options: dict[str, Any] = doc(
        "Backend options, checked against the backend plugin's options class (e.g. `num_threads` for `embedded`).",
        factory=dict,
    )


# --------------------------------------------------------------------------------------------------------------------
# MDP terms. `kind` defaults to the table key; the remaining keys of the table are the kind's params.
# --------------------------------------------------------------------------------------------------------------------
@attrs.define(kw_only=True)
class CommandTermSpec:
    kind: str | None = doc("Command kind (defaults to the table key).", None)
    resampling_time_range_s: tuple[float, float] = doc(
        "Each env draws a new command after a time drawn uniformly from this range (seconds).", (10.0, 10.0)
    )
    params: dict[str, Any] = doc("Kind-specific parameters (written flat in the table).", factory=dict)


@attrs.define(kw_only=True)
class ActionTermSpec:
    kind: str | None = doc("Action kind (defaults to the table key).", None)
    params: dict[str, Any] = doc("Kind-specific parameters (written flat in the table).", factory=dict)


@attrs.define(kw_only=True)
class EventTermSpec:
    kind: str | None = doc("Event kind (defaults to the table key).", None)
    mode: Literal["startup", "reset", "interval"] = doc(
        "When the event fires: once at start-up, at every reset, or at random intervals."
    )
    interval_range_s: tuple[float, float] | None = doc(
        "For `interval` events: time between firings, drawn uniformly per env (seconds).", None
    )
    enabled: bool = doc("Set to false to switch the event off (e.g. in an overlay).", True)
    params: dict[str, Any] = doc("Kind-specific parameters (written flat in the table).", factory=dict)


@attrs.define(kw_only=True)
class TerminationTermSpec:
    kind: str | None = doc("Termination kind (defaults to the table key).", None)
    time_out: bool = doc("True for truncations (the value function is bootstrapped), false for failures.", False)
    enabled: bool = doc("Set to false to switch the termination off.", True)
    params: dict[str, Any] = doc("Kind-specific parameters (written flat in the table).", factory=dict)


@attrs.define(kw_only=True)
class RewardTermSpec:
    kind: str | None = doc("Reward kind (defaults to the table key). The table key is the log key.", None)
    weight: float = doc(
        "Weight per second: the env reward is `sum(weight * term * dt)` (Isaac Lab semantics). "
        "Zero keeps the term in the config but skips it."
    )
    enabled: bool = doc("Set to false to remove the term entirely.", True)
    params: dict[str, Any] = doc("Kind-specific parameters (written flat in the table).", factory=dict)


@attrs.define(kw_only=True)
class NormalizerSpec:
    mean: float | list[float] | None = doc(
        "Override of the block's normalizer mean: one value for every dimension, or one per dimension.", None
    )
    std: float | list[float] | None = doc("Override of the block's normalizer standard deviation.", None)


@attrs.define(kw_only=True)
class ObservationTermSpec:
    kind: str | None = doc(
        "Observation kind (defaults to the table key). In `system_state` the term's table key "
        "names a state block of the robot (its normalizer statistics and plot labels) and the "
        "kind computes it, e.g. `[observations.system_state.terms.joint_pos]` with "
        '`kind = "joint_pos_rel"`.',
        None,
    )
    noise: float | None = doc("Half-width of uniform noise U(-noise, noise) added when the group is corrupted.", None)
    clip: tuple[float, float] | None = doc("Clip range applied after noise.", None)
    scale: float | None = doc("Multiplier applied after clipping.", None)
    normalizer: NormalizerSpec | None = doc(
        "Override of the normalizer statistics the robot plugin gives this block (world-model groups only).", None
    )
    enabled: bool = doc("Set to false to remove the term.", True)
    params: dict[str, Any] = doc("Kind-specific parameters (written flat in the table).", factory=dict)


@attrs.define(kw_only=True)
class ObservationGroupSpec:
    corruption: bool = doc("Whether term noise is applied in this group.", False)
    terms: dict[str, ObservationTermSpec] = doc("Ordered terms; the table key is the term name.", factory=dict)


# --------------------------------------------------------------------------------------------------------------------
# world model and imagination
# --------------------------------------------------------------------------------------------------------------------
@attrs.define(kw_only=True)
class LossWeightsSpec:
    state: float = doc("Autoregressive state prediction loss.", 1.0)
    sequence: float = doc("Sequence loss (architectures with a sequence objective only).", 1.0)
    bound: float = doc("Loss on the learnable log-std bounds (shrinks the band).", 1.0)
    kl: float = doc("KL loss (latent architectures only).", 0.1)
    extension: float = doc("Extension head regression loss.", 1.0)
    contact: float = doc("Contact head BCE loss.", 1.0)
    termination: float = doc("Termination head BCE loss.", 1.0)


@attrs.define(kw_only=True)
class WorldModelTrainSpec:
    learning_rate: float = doc("Adam learning rate of the world model (separate optimizer).", 1.0e-3)
    weight_decay: float = doc("Adam weight decay.", 0.0)
    num_mini_batches: int = doc("Mini-batches drawn per iteration.", 20)
    mini_batch_size: int = doc("Sequences per mini-batch.", 5000)
    replay_buffer_size: int = doc("Replay buffer length in steps, per real env.", 1000)
    max_grad_norm: float = doc("Gradient-norm clip.", 1.0)
    bootstrap: bool = doc("Resample each mini-batch with replacement per ensemble member.", True)
    state_loss: Literal["sampled_mse", "nll"] = doc(
        "`sampled_mse`: squared error of the reparameterised sample "
        "(upstream); `nll`: Gaussian negative log-likelihood.",
        "sampled_mse",
    )
    termination_pos_weight: float | None = doc(
        "`pos_weight` of the termination BCE. Upstream uses none and its head learns 'never terminate'.", None
    )
    contact_pos_weight: float | None = doc("`pos_weight` of the contact BCE.", None)
    freeze_auxiliary: bool = doc("Freeze the auxiliary base and heads (contact, termination, extension).", False)
    eval_interval: int = doc("Iterations between autoregressive evaluations on held-out buffer trajectories.", 50)
    num_eval_trajectories: int = doc("Trajectories per evaluation.", 100)
    eval_trajectory_length: int = doc("Length of an evaluation trajectory in steps.", 400)


@attrs.define(kw_only=True)
class WorldModelSpec:
    architecture: str = doc(
        "Base architecture, from `rwmspec list architectures` (`gru`, `lstm`, `mlp`, or a plugin's).", "gru"
    )
    base_hidden: list[int] = doc(
        "Base layer sizes. Recurrent bases need equal sizes (one per layer).", factory=lambda: [256, 256]
    )
    state_mean_hidden: list[int] = doc("Hidden sizes of each member's state-mean head.", factory=lambda: [128])
    state_logstd_hidden: list[int] = doc("Hidden sizes of each member's log-std head.", factory=lambda: [128])
    auxiliary_hidden: list[int] = doc(
        "Hidden sizes of the extension, contact and termination heads.", factory=lambda: [128]
    )
    ensemble_size: int = doc("Number of ensemble members (heads over the shared bases).", 1)
    history_horizon: int = doc("M: steps of real context fed before predicting.", 32)
    forecast_horizon: int = doc("N: autoregressive steps in the training loss (1 = teacher forcing).", 8)
    separate_auxiliary_base: bool = doc("Give the auxiliary heads their own base (upstream: true).", True)
    residual: bool = doc("Predict the state mean as a residual on the last input state.", True)
    logstd_bounds_init: tuple[float, float] = doc("Initial soft bounds of the learnable log-std.", (-5.0, -4.0))
    options: dict[str, Any] = doc(
        "Architecture options, checked against the architecture plugin's options class.", factory=dict
    )
    loss_weights: LossWeightsSpec = doc("Weights of the world-model loss terms.", factory=LossWeightsSpec)
    train: WorldModelTrainSpec = doc("World-model optimisation settings.", factory=WorldModelTrainSpec)


#: The reward log key under which imagination reports its uncertainty penalty; no reward table may use it while
#: ``imagination.uncertainty_penalty_weight > 0`` (RWM217).
UNCERTAINTY_PENALTY_TERM = "uncertainty_penalty"


@attrs.define(kw_only=True)
class ImaginationSpec:
    num_envs: int = doc("Imagined environments rolled out by the world model (0 disables imagination).", 0)
    steps_per_iteration: int = doc("Imagined steps per env and iteration.", 24)
    max_episode_length: int = doc("Imagined episode length in steps before a time-out.", 256)
    command_resample_interval_range: tuple[int, int] = doc(
        "Per-env command resampling interval, in steps, drawn uniformly from [low, high).", (100, 120)
    )
    uncertainty_penalty_weight: float = doc(
        "lambda: the imagined reward is `r - lambda * u`, u the epistemic uncertainty (RWM-U uses 1.0), logged as the "
        "reward term `uncertainty_penalty`.",
        0.0,
    )
    warmup_iterations: int = doc("Iterations that train only the world model before the policy learns.", 0)
    real_data_share: float = doc("Share of real transitions in each PPO mini-batch, in [0, 1).", 0.0)
    observation_noise: bool = doc("Add the policy group's observation noise to imagined observations.", True)
    member_sampling: Literal["per_env_random", "mean"] = doc(
        "Which ensemble member steps each imagined env.", "per_env_random"
    )
    push_interval_range: tuple[int, int] | None = doc("Imagined pushes: steps between pushes per env.", None)
    push_velocity: float = doc("Imagined pushes add U(-v, v) m/s to the predicted base x/y velocity.", 0.5)
    cuda_graph: bool = doc(
        "On a CUDA device, compile the imagined env step and replay it as a CUDA graph: about "
        "twice the imagined steps/s at 8192 envs, after a one-time compile of ~20 s.",
        False,
    )


# --------------------------------------------------------------------------------------------------------------------
# policy learning, runner, logging
# --------------------------------------------------------------------------------------------------------------------
@attrs.define(kw_only=True)
class PpoSpec:
    num_steps_per_env: int = doc("Real steps per env and iteration.", 24)
    num_learning_epochs: int = doc("PPO epochs per iteration.", 5)
    num_mini_batches: int = doc("PPO mini-batches per epoch.", 4)
    clip_param: float = doc("PPO ratio clip.", 0.2)
    gamma: float = doc("Discount.", 0.99)
    lam: float = doc("GAE lambda.", 0.95)
    value_loss_coef: float = doc("Value loss coefficient.", 1.0)
    entropy_coef: float = doc("Entropy bonus coefficient.", 0.005)
    learning_rate: float = doc("Initial Adam learning rate.", 1.0e-3)
    max_grad_norm: float = doc("Gradient-norm clip.", 1.0)
    use_clipped_value_loss: bool = doc("Clip the value loss like the ratio.", True)
    schedule: Literal["adaptive", "fixed"] = doc("`adaptive` tunes the learning rate to `desired_kl`.", "adaptive")
    desired_kl: float = doc("KL target of the adaptive schedule.", 0.01)
    normalize_advantage_per_mini_batch: bool = doc("Normalise advantages per mini-batch instead of per rollout.", False)


@attrs.define(kw_only=True)
class PolicySpec:
    actor_hidden_dims: list[int] = doc("Actor MLP sizes.", factory=lambda: [128, 128, 128])
    critic_hidden_dims: list[int] = doc("Critic MLP sizes.", factory=lambda: [128, 128, 128])
    activation: Literal["elu", "relu", "tanh", "selu", "lrelu", "sigmoid"] = doc("Hidden activation.", "elu")
    init_noise_std: float = doc("Initial action noise standard deviation.", 1.0)
    noise_std_type: Literal["scalar", "log"] = doc("Parameterisation of the state-independent std.", "scalar")
    actor_obs_normalization: bool = doc("Empirical normalisation of actor inputs.", False)
    critic_obs_normalization: bool = doc("Empirical normalisation of critic inputs.", False)
    actor_observations: list[str] = doc("Observation groups fed to the actor.", factory=lambda: ["policy"])
    critic_observations: list[str] = doc("Observation groups fed to the critic.", factory=lambda: ["policy"])


@attrs.define(kw_only=True)
class RunRefSpec:
    spec: str = doc("Spec file whose runs are meant, relative to this spec file.")
    run: str = doc("`latest`, or the name of a run directory under that spec's experiment.", "latest")
    checkpoint: str = doc("`latest`, or a checkpoint file name such as `model_300.pt`.", "latest")


@attrs.define(kw_only=True)
class RunnerSpec:
    max_iterations: int = doc("Learning iterations of this stage.", 300)
    save_interval: int = doc("Iterations between checkpoints.", 50)
    policy_from: RunRefSpec | None = doc("Where the starting policy comes from (another spec's run).", None)
    world_model_from: RunRefSpec | None = doc("Where the starting world model comes from.", None)
    init_at_random_ep_len: bool = doc("Start episodes at random lengths to decorrelate resets.", True)
    check_for_nan: bool = doc("Stop with a clear message when an observation or loss becomes NaN.", True)


@attrs.define(kw_only=True)
class LoggingSpec:
    writers: list[Literal["tensorboard", "jsonl"]] = doc("Metric writers.", factory=lambda: ["tensorboard"])
    console: Literal["auto", "full", "compact"] = doc(
        "Per-iteration console block: `full` (rsl_rl style), `compact` (one line), `auto` (full on a terminal).", "auto"
    )
    learning_curve: bool = doc("Write `learning_curve.png` into the run directory.", True)


@attrs.define(kw_only=True)
class VisualizeSpec:
    num_steps: int = doc("Steps to roll out side by side.", 500)
    command_resample_s: float = doc("Command resampling period of the visualisation, seconds.", 2.0)
    video: bool = doc("Render a side-by-side MP4.", True)


@attrs.define(kw_only=True)
class UpstreamQuirksSpec:
    """Upstream RWM behaviours kept for reproduction. Every default is the corrected behaviour."""

    dof_acc_uses_joint_pos: bool = doc(
        "Imagined dof_acc reads joint positions instead of the previous joint "
        "velocities (upstream slice bug, rwm_method §4.3).",
        False,
    )
    shared_hidden_state_across_members: bool = doc(
        "Ensemble members continue each other's hidden state in training (upstream, §3.3).", False
    )
    skip_imagination_context_warmup: bool = doc(
        "Start imagined envs from one state and a zero hidden state "
        "instead of the full history window (upstream Gen-2, §4.4).",
        False,
    )
    replay_windows_cross_episodes: bool = doc(
        "Replay windows may straddle time-outs and the write pointer (upstream, §3.4).", False
    )
    feet_air_time_lagged_first_contact: bool = doc(
        "Imagined first-contact uses the timers before the update (one-step lag, §4.3).", False
    )
    epistemic_summed_std: bool = doc(
        "Epistemic uncertainty as the std over members summed over dims (upstream "
        "code) instead of the variance of member means averaged over dims "
        "(RWM-U paper).",
        False,
    )


# --------------------------------------------------------------------------------------------------------------------
# the whole spec
# --------------------------------------------------------------------------------------------------------------------
@attrs.define(kw_only=True)
class Spec:
    schema_version: int = doc("Version of the spec language. Currently 1.", 1)
    experiment: ExperimentSpec = doc("Experiment name, stage and seed.")
    robot: RobotSpec = doc("The robot plugin and its options.")
    backend: BackendSpec = doc("Simulator backend, env count and timing.", factory=BackendSpec)
    commands: dict[str, CommandTermSpec] = doc("Command generators, one table per command.", factory=dict)
    actions: dict[str, ActionTermSpec] = doc("Action terms, one table per term.", factory=dict)
    events: dict[str, EventTermSpec] = doc("Randomisation and reset events, one table per event.", factory=dict)
    terminations: dict[str, TerminationTermSpec] = doc("Termination terms, one table per term.", factory=dict)
    observations: dict[str, ObservationGroupSpec] = doc(
        "Observation groups: `policy`, `critic` and the world model's `system_*` groups.", factory=dict
    )
    rewards: dict[str, RewardTermSpec] = doc("Reward terms; the table key is the log key.", factory=dict)
    world_model: WorldModelSpec | None = doc("The learned dynamics model (pretrain, finetune, visualize).", None)
    imagination: ImaginationSpec | None = doc("Imagination rollouts (finetune).", None)
    ppo: PpoSpec = doc("PPO hyper-parameters.", factory=PpoSpec)
    policy: PolicySpec = doc("Actor-critic networks.", factory=PolicySpec)
    runner: RunnerSpec = doc("Iterations, checkpoints and where starting weights come from.", factory=RunnerSpec)
    logging: LoggingSpec = doc("Metric writers and console output.", factory=LoggingSpec)
    visualize: VisualizeSpec = doc("Settings of the visualize stage.", factory=VisualizeSpec)
    upstream_quirks: UpstreamQuirksSpec = doc(
        "Flags that restore upstream RWM behaviours; all off by default.", factory=UpstreamQuirksSpec
    )


#: Names of the world-model observation groups, in the order the model reads them.
SYSTEM_GROUPS = ("system_state", "system_action", "system_contact", "system_termination", "system_extension")
