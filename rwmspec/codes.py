"""Every diagnostic code, grouped by range, with the text `rwmspec explain CODE` prints.

Ranges: RWM0xx reading files, RWM1xx structure and types, RWM2xx meaning (cross-field and plugin references),
RWM3xx plugins, RWM4xx backends, RWM5xx runs and checkpoints. Warnings use the same codes with severity
``warning``. docs/diagnostics.md is generated from this table (``rwmspec explain --all``); a test keeps it current.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Code:
    title: str
    what: str
    why: str
    example: str
    fix: str


RANGES = (
    ("RWM0", "Reading files"),
    ("RWM1", "Structure and types"),
    ("RWM2", "Meaning: ranges, references, stage rules"),
    ("RWM3", "Plugins"),
    ("RWM4", "Backends"),
    ("RWM5", "Runs and checkpoints"),
)

CODES: dict[str, Code] = {
    # ---------------------------------------------------------------------------------------------------- RWM0xx
    "RWM001": Code(
        "TOML syntax error",
        "The file is not valid TOML; the position is where the parser stopped.",
        "Nothing else in the file can be checked until it parses.",
        "[backend]\nnum_envs = 4096,   # trailing comma is not TOML",
        "Fix the syntax at the reported line and column (quotes, brackets, commas, duplicate keys).",
    ),
    "RWM002": Code(
        "File not found or unreadable",
        "A spec, an overlay or an `extends` target could not be read.",
        "Paths in `extends` are relative to the file that contains them, not to the working directory.",
        '[experiment]\nextends = "base/anymal_d_flt.toml"   # typo in the file name',
        "Check the path relative to the spec file; `ls` the folder the message names.",
    ),
    "RWM003": Code(
        "Cyclic extends",
        "Following `experiment.extends` from file to file comes back to a file already in the chain.",
        "A cycle has no base layer, so the precedence of values is undefined.",
        '# a.toml\n[experiment]\nextends = "b.toml"\n# b.toml\n[experiment]\nextends = "a.toml"',
        "Remove `extends` from the file meant to be the base of the chain.",
    ),
    "RWM004": Code(
        "Bad --set expression",
        "A `--set` argument is not `dotted.key=value` with a valid TOML key.",
        "The key names the spec value to override; without `=` or with an invalid key nothing can be applied.",
        "rwmspec validate spec.toml --set backend.num_envs",
        'Write `--set backend.num_envs=64`. Values are TOML (`[1, 2]`, `true`, `"text"`); anything that is not '
        "valid TOML is taken as a string.",
    ),
    "RWM005": Code(
        "Unsupported schema_version",
        "`schema_version` names a version of the spec language this rwmspec does not read.",
        "Keys and meanings can change between versions; reading a spec under the wrong version would misread it.",
        "schema_version = 2",
        "Use `schema_version = 1` or install the rwmspec version the spec was written for.",
    ),
    # ---------------------------------------------------------------------------------------------------- RWM1xx
    "RWM101": Code(
        "Unknown key",
        "A key that the table does not have.",
        "A misspelt key would otherwise be ignored silently and the default would be used instead.",
        "[ppo]\ngama = 0.99",
        "Use the suggested spelling, or look the table up in docs/spec.md (`rwmspec schema` lists every key).",
    ),
    "RWM102": Code(
        "Missing required key",
        "A key without a default is absent.",
        "Some values (experiment name and stage, robot, reward weights) have no sensible default.",
        '[experiment]\nname = "anymal_d_flat"   # stage is missing',
        "Add the key; the help line shows its documentation.",
    ),
    "RWM103": Code(
        "Wrong type",
        "A value has the wrong TOML type (a string where a number is expected, a table where an array is, ...).",
        'rwmspec never converts types silently: "0.5" is a string, not a number.',
        '[rewards.track_lin_vel_xy_exp]\nweight = "1.0"',
        "Write the value with the expected type, e.g. remove the quotes around numbers.",
    ),
    "RWM104": Code(
        "Value not one of the allowed choices",
        "A value must be one of a fixed set of strings.",
        "Choices select behaviour; an unknown one has no meaning.",
        '[policy]\nactivation = "eluu"',
        "Use one of the listed choices.",
    ),
    # ---------------------------------------------------------------------------------------------------- RWM2xx
    "RWM201": Code(
        "Value out of range",
        "A number lies outside the range its key allows (negative counts, a discount above 1, an empty range).",
        "Such values would only fail later, inside the simulator or in the middle of training.",
        "[ppo]\ngamma = 1.5",
        "Use a value inside the range the message states.",
    ),
    "RWM202": Code(
        "Unknown robot",
        "`robot.name` is not provided by any installed plugin.",
        "The robot plugin supplies joints, state blocks and contact groups; nothing can be compiled without it.",
        '[robot]\nname = "anymal-d"',
        "Use a name from `rwmspec list robots`, or install the plugin that provides the robot.",
    ),
    "RWM203": Code(
        "Unknown term kind",
        "A term table's `kind` (or its table key, when `kind` is not given) is not a registered kind of that category.",
        "The kind selects the term's function and its parameters.",
        "[rewards.feet_airtime]\nweight = 0.125",
        'Use a kind from `rwmspec list terms`; set `kind = "..."` when the table key is a custom name.',
    ),
    "RWM204": Code(
        "Invalid term params",
        "A term's parameters (the keys of its table besides the common ones) do not match the kind's params: an "
        "unknown parameter, a missing required one, or a wrong type.",
        "Isaac Lab would report this only after the simulator starts; rwmspec checks it before anything runs.",
        "[rewards.feet_air_time]\nweight = 0.125\nthreshhold = 0.5",
        "Use the parameter names listed in the message (`rwmspec list terms` shows every kind's params).",
    ),
    "RWM205": Code(
        "Unknown backend",
        "`backend.name` is not provided by any installed plugin.",
        "The backend turns the plan into a simulation.",
        '[backend]\nname = "isaac"',
        "Use a name from `rwmspec list backends`.",
    ),
    "RWM206": Code(
        "Unknown world-model architecture",
        "`world_model.architecture` is not provided by any installed plugin.",
        "The architecture builds the world model's base network.",
        '[world_model]\narchitecture = "transformer"',
        "Use a name from `rwmspec list architectures`, or install the plugin that provides it.",
    ),
    "RWM207": Code(
        "Observation group missing or unknown for this stage",
        "A group the stage needs is absent or has no terms, a policy/critic input names a group that does not "
        "exist, a `system_*` group has an unknown name, or a term of `system_contact`/`system_termination` is not "
        "a contact kind naming a contact group of the robot.",
        "World-model stages read `system_state` and `system_action`; actor and critic read the groups they name.",
        '[policy]\nactor_observations = ["polcy"]',
        "Add the group under `[observations.<group>.terms.<term>]` or fix the group name.",
    ),
    "RWM208": Code(
        "State block unknown or normalizer override of the wrong size",
        "A `system_state` term names no state block of the robot, or a normalizer override has a length other than "
        "the block's dimension.",
        "The world model's state vector is built from the robot's named state blocks and their statistics.",
        "[observations.system_state.terms.joint_pos.normalizer]\nstd = [0.1, 0.1]   # joint_pos has 12 dims",
        "Use a block from the robot (`rwmspec list robots` shows them) and give one value or one per dimension.",
    ),
    "RWM209": Code(
        "Run reference spec file not found",
        "`runner.policy_from.spec` or `runner.world_model_from.spec` names a spec file that does not exist.",
        "Stages find their starting weights through the spec that trained them; a wrong path finds no runs.",
        '[runner.policy_from]\nspec = "anymal_d_int.toml"',
        "Give the path of the earlier stage's spec, relative to this spec file.",
    ),
    "RWM210": Code(
        "Inconsistent sizes or horizons",
        "Sizes or horizons that must agree do not (recurrent layers of different widths, a replay buffer shorter "
        "than one training window, an evaluation shorter than the history, imagined and real steps per iteration "
        "that differ while `imagination.real_data_share > 0`).",
        "Such combinations fail with shape errors or empty batches during training.",
        '[world_model]\narchitecture = "gru"\nbase_hidden = [256, 128]',
        "Make the sizes agree as the message says.",
    ),
    "RWM211": Code(
        "Stage requirements not met",
        "The stage needs tables or references the spec does not have (e.g. `finetune` without `[world_model]` or "
        "`[imagination]`), or a table is ignored in this stage (warning).",
        "Each stage runs a fixed list of steps; each step reads its own tables.",
        '[experiment]\nstage = "finetune"\n# no [imagination] table',
        "Add the tables the message names, or pick the stage that matches the spec.",
    ),
    "RWM212": Code(
        "Unknown contact group or disagreeing contact thresholds",
        "A contact term names a contact group the robot does not have, or two terms give the same group different "
        "force thresholds.",
        "Contacts are reported per robot contact group with one threshold per group.",
        '[rewards.undesired_contacts]\nweight = -1.0\nbodies = "knees"',
        "Use a group the robot lists (`rwmspec list robots`) and one threshold per group.",
    ),
    "RWM213": Code(
        "Invalid robot/backend/architecture options",
        "`[robot.options]`, `[backend.options]` or `[world_model.options]` do not match the plugin's options class.",
        "Options are typed by the plugin that reads them.",
        "[backend.options]\nnum_thread = 4",
        "Use the option names and types the message lists.",
    ),
    "RWM214": Code(
        "Unknown stage",
        "`experiment.stage` is not a stage any installed plugin registers (the runtime registers `init`, "
        "`pretrain`, `finetune` and `visualize`).",
        "The stage's record lists the runner steps of each iteration and what the spec must provide for them.",
        '[experiment]\nstage = "pre-train"',
        "Use one of the installed stages the message lists, or install the plugin that provides the stage.",
    ),
    "RWM215": Code(
        "Imagination cannot turn the world model's groups back into state",
        "In a stage that learns in imagination, a `system_state` term has a kind that reproduces no view field "
        "(or cannot be inverted), two `system_state` terms describe the same view field, a term's width differs "
        "from its view field's, or one contact group appears with different widths in `system_contact` and "
        "`system_termination`.",
        "Imagination rebuilds the state the rewards and observations read from the predicted columns of each term; "
        "each view field must come from exactly one term of matching width, each contact group from one width.",
        '[experiment]\nstage = "finetune"\n\n[observations.system_state.terms.base_lin_vel]\n'
        'kind = "generated_commands"   # 3 columns, but a command, not a state',
        "Keep in `system_state` only terms whose kind reproduces one view field (`rwmspec list terms`), one per "
        "field, and observe each contact group with one set of bodies.",
    ),
    "RWM216": Code(
        "Imagined term reads state the world model does not predict",
        "In a stage that learns in imagination, a reward with a non-zero weight or a term of an actor/critic "
        "observation group reads a view field that no `system_state` term predicts, or a contact group that "
        "neither `system_contact` nor `system_termination` predicts, or has a kind without a torch implementation; "
        "or `imagination.push_interval_range` is set without a `system_state` term for the base velocity it pushes.",
        "Imagination computes rewards and observations from the world model's predictions only; what is not "
        "predicted has no value there.",
        "[rewards.joint_torques_l2]\nweight = -2.5e-5   # system_state has no joint_effort term",
        "Add the missing term to `[observations.system_state]` (or `system_contact`), set the reward's weight to "
        "0, or remove `push_interval_range`.",
    ),
    "RWM217": Code(
        "Name reserved by imagination",
        "A reward table is named `uncertainty_penalty` while `imagination.uncertainty_penalty_weight > 0`.",
        "Imagination logs its uncertainty penalty as a reward term of that name; a reward of the same name would "
        "be mixed up with it in the logs and the episode sums.",
        '[rewards.uncertainty_penalty]\nkind = "action_rate_l2"\nweight = -0.01\n\n'
        "[imagination]\nuncertainty_penalty_weight = 1.0",
        "Rename the reward table.",
    ),
    # ---------------------------------------------------------------------------------------------------- RWM3xx
    "RWM301": Code(
        "Plugin failed to import",
        "An entry point of the `rwmspec` group raised while importing; the message shows the root exception.",
        "The plugin's robots, terms or backends are missing; other plugins keep working.",
        "ModuleNotFoundError: No module named 'isaaclab' (imported at the top of a plugin module)",
        "Install what the plugin needs, move heavy imports into functions, or disable it with "
        "RWMSPEC_DISABLE_PLUGINS=<entry point name>.",
    ),
    "RWM302": Code(
        "Plugin invalid",
        "pluggy rejected the plugin module (e.g. a hook implementation with arguments the hook does not have).",
        "A hook called with the wrong signature would fail at an unpredictable point.",
        "@hookimpl\ndef rwmspec_robots(config): ...",
        "Match the signatures in docs/plugins.md.",
    ),
    "RWM303": Code(
        "Plugin raised in a hook",
        "A plugin's hook (or one of its registered checks) raised an exception.",
        "Hooks must return records; an exception is a bug in the plugin.",
        "RuntimeError raised inside rwmspec_robots()",
        "Report it to the plugin's author; RWMSPEC_FULL_ERROR=1 shows the traceback.",
    ),
    "RWM304": Code(
        "Plugin returned a wrong record type",
        "A registration hook yielded something other than its record type (RobotDef, TermKind, ...).",
        "The registry stores typed records only.",
        "rwmspec_robots() yielding a dict instead of a RobotDef",
        "Return the records from `rwmspec.types`.",
    ),
    "RWM305": Code(
        "Conflicting plugins",
        "Two plugins provide the same name (robot, term kind, backend, architecture, check).",
        "A name must mean one thing; the first provider is kept and the other is reported.",
        "robot 'anymal_d' provided by rwmspec 0.1.0 and my-robots 1.2.0",
        "Uninstall one of them or disable it with RWMSPEC_DISABLE_PLUGINS=<entry point name>.",
    ),
    # ---------------------------------------------------------------------------------------------------- RWM4xx
    "RWM401": Code(
        "Backend unavailable",
        "The backend needs Python modules that are not installed.",
        "Validation works without them, but compiling for or running on that backend does not.",
        '[backend]\nname = "isaaclab"   # isaaclab not installed',
        "Install the modules the message lists (docs/isaaclab.md), or use the `embedded` backend.",
    ),
    "RWM402": Code(
        "Backend cannot compile a term kind",
        "The chosen backend has no implementation for a term kind the spec uses.",
        "Each backend binds every term to its own function; a missing binding cannot run.",
        "a plugin term kind with only an embedded implementation, compiled for isaaclab",
        "Use a kind the backend supports, or add the implementation to the kind's plugin.",
    ),
    # ---------------------------------------------------------------------------------------------------- RWM5xx
    "RWM501": Code(
        "Run directory problem",
        "A run directory is missing, not writable, or does not look like an rwmspec run.",
        "Runs are found by experiment name and run name under the runs directory.",
        "rwmspec play runs/anymal_d_flat/does_not_exist",
        "Check the path with `ls`; runs live under `<runs-dir>/<experiment>/<timestamp>_<run_name>/`.",
    ),
    "RWM502": Code(
        "Checkpoint missing or corrupt",
        "A checkpoint file is absent, unreadable, or lacks the entries rwmspec writes.",
        "Resuming or loading from a broken checkpoint would start from wrong weights.",
        '[runner.policy_from]\nspec = "anymal_d_init.toml"\ncheckpoint = "model_9999.pt"',
        "Pick an existing checkpoint (`latest` picks the newest one).",
    ),
    "RWM503": Code(
        "Dependency run missing",
        "A stage refers to another spec's runs (`runner.policy_from`, `runner.world_model_from`) and none exists.",
        "Pretrain, finetune and visualize start from weights an earlier stage trained.",
        "rwmspec run specs/anymal_d_finetune.toml   # before any pretrain run",
        "Run the earlier stage first, or name an existing run.",
    ),
    "RWM504": Code(
        "World-model fingerprint mismatch",
        "A world model was trained for a different robot, observation layout, sizes or control period than this "
        "spec compiles to.",
        "Loading it would silently feed it inputs in the wrong order or scale.",
        "finetune spec adds a term to system_state after pretraining",
        "Use the same system_* groups, world-model sizes and timing as the run that trained the model.",
    ),
    "RWM505": Code(
        "Run cannot be resumed",
        "A resume was asked for, but the run was trained from a different plan, or no run of the spec exists, or "
        "the run was named twice.",
        "Continuing a run with other settings would mix two experiments in one set of checkpoints and curves.",
        "rwmspec run specs/anymal_d_init.toml --resume latest   # after editing the spec's rewards",
        "Start a new run (drop `--resume`), or resume with the spec and overlays the run started with.",
    ),
    "RWM506": Code(
        "Training produced NaN or infinite values",
        "An observation, reward or loss became NaN or infinite during training (`runner.check_for_nan`).",
        "Once a NaN reaches the weights every later update is NaN; stopping early keeps the last good checkpoint.",
        "[ppo]\nlearning_rate = 10.0",
        "Lower the learning rates, check observation scales and normalizers, or resume from an earlier checkpoint.",
    ),
    "RWM507": Code(
        "Backend cannot do what the command needs",
        "The chosen backend lacks a capability the command uses (e.g. headless video rendering, per-step reward "
        "terms).",
        "Backends differ in what they can render or report.",
        "rwmspec play RUN --video   # on a backend without offscreen rendering",
        "Use a backend that supports the command (the message names it), or drop the option that needs it.",
    ),
    "RWM508": Code(
        "Plan runs a step the runtime does not provide",
        "The compiled plan lists a runner step this runtime has no implementation for.",
        "Each runner iteration runs the plan's steps by name; an unknown step cannot run.",
        "a plan compiled by a newer rwmspec whose stage adds a step",
        "Use the rwmspec release that compiled the plan, or recompile the spec with this one.",
    ),
    "RWM509": Code(
        "Not enough data to evaluate a world model",
        "eval-model found no held-out trajectory of the asked length without an episode boundary, or the length "
        "leaves nothing to predict after the history window.",
        "A window that crosses a fall or a reset mixes two episodes, so the model's error on it means nothing.",
        "rwmspec eval-model RUN --length 400   # the run's policy falls after 2 s",
        "Evaluate a checkpoint whose policy walks, or pass a shorter --length (longer than history_horizon).",
    ),
}


def group_of(code: str) -> str:
    return next((title for prefix, title in RANGES if code.startswith(prefix)), "Other")


def explain(code: str) -> str:
    """Plain-text explanation of one code (What / Why / Example / Fix)."""
    c = CODES[code]
    example = "\n".join(f"    {line}" for line in c.example.splitlines())
    return (
        f"{code}: {c.title}  ({group_of(code)})\n\n"
        f"What\n    {c.what}\n\nWhy\n    {c.why}\n\nExample\n{example}\n\nFix\n    {c.fix}\n"
    )


def render_markdown() -> str:
    """docs/diagnostics.md: the code table and one section per code."""
    out = [
        "# Diagnostic codes",
        "",
        "<!-- Generated from rwmspec/codes.py by `rwmspec explain --all > docs/diagnostics.md`; "
        "tests/test_diagnostics.py keeps it current. -->",
        "",
        "Every problem rwmspec reports has a code. `rwmspec explain CODE` prints the entry below. Warnings use the "
        "same codes with severity `warning`; `rwmspec validate --strict` turns them into errors.",
        "",
        "Diagnostics print as `file:line:col: error[RWMnnn] dotted.path: message (help: hint)` "
        "(`--output-format concise`); see docs/cli.md for the other formats.",
        "",
    ]
    for prefix, title in RANGES:
        out += [f"## {prefix}xx: {title}", "", "| code | title |", "|---|---|"]
        out += [f"| [{code}](#{code.lower()}) | {c.title} |" for code, c in CODES.items() if code.startswith(prefix)]
        out.append("")
    out += ["## Reference", ""]
    for code, c in CODES.items():
        out += [
            f"### {code}",
            "",
            f"**{c.title}**",
            "",
            f"*What.* {c.what}",
            "",
            f"*Why.* {c.why}",
            "",
            "*Example.*",
            "",
            "```",
            c.example,
            "```",
            "",
            f"*Fix.* {c.fix}",
            "",
        ]
    return "\n".join(out)
