"""World-model ablation (issue 4): autoregressive GRU vs teacher-forced GRU vs autoregressive MLP.

The command line of ``rwmspec_runtime.world_model.ablation`` (see there for what it measures and its flags), with the
pretrain spec as the default ``--spec``.

Usage::

    python scripts/world_model_ablation.py --policy-run runs/anymal_d_flat/<init run> --device cuda \\
        --json-out ablation.json
    python scripts/world_model_ablation.py --quick --random-policy --overlay specs/overlays/tiny.toml
"""

from __future__ import annotations

from pathlib import Path

from rwmspec_runtime.world_model.ablation import main

DEFAULT_SPEC = Path(__file__).resolve().parents[1] / "specs" / "anymal_d_pretrain.toml"

if __name__ == "__main__":
    raise SystemExit(main(default_spec=DEFAULT_SPEC))
