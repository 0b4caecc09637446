"""`import rwmspec` and `rwmspec validate` import no heavy module (torch, mujoco, Isaac Lab, rsl_rl, tensordict).

Each check runs in a fresh interpreter, since the test process itself may have imported torch already.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import ROOT

HEAVY = ("torch", "mujoco", "isaaclab", "isaaclab_tasks", "rsl_rl", "tensordict")

PROBE = """
import json, sys
{body}
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r})))
"""


def imported_heavy(body: str) -> list[str]:
    code = PROBE.format(body=body, heavy=HEAVY)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_rwmspec_is_light():
    assert imported_heavy("import rwmspec, rwmspec.cli, rwmspec.api, rwmspec.schema") == []


def test_validate_of_every_spec_is_light():
    specs = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "specs").glob("*.toml"))
    assert specs
    body = (
        "from rwmspec.cli import main\n"
        f"code = main(['validate', '--output-format', 'json', *{specs!r}])\n"
        "assert code == 0, code"
    )
    assert imported_heavy(body) == []


@pytest.mark.parametrize(
    "command", [["list", "backends"], ["plugins"], ["schema"], ["show", "specs/anymal_d_init.toml"]]
)
def test_other_spec_commands_are_light(command):
    body = f"from rwmspec.cli import main\nmain({command!r})"
    assert imported_heavy(body) == []
