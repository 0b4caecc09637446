"""Paths and helpers shared by the test modules; imports nothing heavy (no torch), so light tests stay light.

Test modules import it as ``helpers``: pytest's default (prepend) import mode puts tests/ on ``sys.path``.
Helpers that need torch live in ``term_helpers`` and ``world_model_helpers``; fixtures in conftest.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rwmspec import api
from rwmspec.plan import Plan

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
TINY = SPECS / "overlays" / "tiny.toml"


def rwmspec(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the ``rwmspec`` CLI in a fresh interpreter at the repository root.

    A subprocess because some commands must choose process-wide settings (the OpenGL backend) before mujoco is
    imported, which other tests already did. One intra-op thread: the tiny networks gain nothing from more, and the
    CPU is shared.
    """
    full_env = dict(os.environ, OMP_NUM_THREADS="1", GIT_PYTHON_REFRESH="quiet", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "rwmspec", *map(str, args)],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def compile_tiny(spec_name: str, *sets: str) -> Plan:
    """The plan of ``specs/<spec_name>`` with the tiny overlay, as ``rwmspec validate`` compiles it."""
    result = api.load_and_compile(SPECS / spec_name, overlays=[TINY], sets=list(sets))
    assert result.ok, result.diagnostics
    return result.plan
