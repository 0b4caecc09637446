#!/usr/bin/env bash
# Install Isaac Lab 3.0's config classes (no simulator) into the current Python, for the isaaclab backend tests.
#
# Isaac Lab 3.0.0 declares Python >=3.12 and hard-pins torch 2.11, newton, usd-exchange, ... . Building configs needs
# none of the simulator packages, so the wheel goes in with --no-deps and only the modules that config import touches
# are added (see docs/isaaclab.md). torch and rsl-rl-lib must already be installed; nothing here may replace torch.
#
# Real users on Python 3.12 run `pip install isaaclab==3.0.0` instead (kit-less Newton stack, see docs/isaaclab.md).
#
# Idempotent: when every module already imports at the expected versions, it only prints what is there.
set -euo pipefail

PYTHON="${PYTHON:-python}"

check() {
    "$PYTHON" - <<'PY'
import importlib.metadata as md
import sys

want = {"isaaclab": "3.0.0", "warp-lang": "1.17.0"}
for dist, version in want.items():
    try:
        found = md.version(dist)
    except md.PackageNotFoundError:
        sys.exit(1)
    if found != version:
        sys.exit(1)
try:
    import gymnasium, hydra, lazy_loader, prettytable, yaml  # noqa: F401
except ImportError:
    sys.exit(1)
PY
}

if check; then
    echo "isaaclab config classes already installed"
else
    "$PYTHON" -c "import torch, rsl_rl" 2>/dev/null || {
        echo "error: torch and rsl-rl-lib must be installed first (pip install torch==2.13.0 rsl-rl-lib==5.5.1)" >&2
        exit 1
    }
    torch_before="$("$PYTHON" -c 'import torch; print(torch.__version__)')"
    # The Isaac Lab wheel itself: every requirement dropped (it pins torch==2.11 and the whole simulator stack).
    "$PYTHON" -m pip install -q --no-deps --ignore-requires-python isaaclab==3.0.0
    # What importing isaaclab.utils / isaaclab.envs / isaaclab_tasks / isaaclab_rl needs. None of these pins torch;
    # hydra-core brings omegaconf and antlr4-python3-runtime 4.9.x (an sdist, built locally by pip).
    "$PYTHON" -m pip install -q warp-lang==1.17.0 lazy_loader prettytable "gymnasium>=1.2" pyyaml hydra-core
    torch_after="$("$PYTHON" -c 'import torch; print(torch.__version__)')"
    if [ "$torch_before" != "$torch_after" ]; then
        echo "error: torch changed from $torch_before to $torch_after during the install" >&2
        exit 1
    fi
fi

# Warp would otherwise claim every visible GPU even when configs only run on the CPU.
CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES-}" GIT_PYTHON_REFRESH=quiet "$PYTHON" -c "
from isaaclab_tasks.core.velocity.config.anymal_d.flat_env_cfg import AnymalDFlatEnvCfg
from isaaclab_tasks.core.velocity.config.anymal_d.agents.rsl_rl_ppo_cfg import AnymalDFlatPPORunnerCfg
from isaaclab_rl.rsl_rl import RslRlOnPolicyRunnerCfg, RslRlVecEnvWrapper
AnymalDFlatEnvCfg(); AnymalDFlatPPORunnerCfg()
print('isaaclab config classes import and instantiate')
"
