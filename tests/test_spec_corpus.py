"""The spec corpus: every file in tests/specs/valid passes; every tests/specs/invalid/<name>.toml gives exactly the
concise diagnostics in <name>.expected (paths relative to tests/specs/invalid, the repository root as $ROOT).

After an intended change of wording, regenerate the expected files with ``python tests/test_spec_corpus.py`` and
review the diff.
"""

from __future__ import annotations

import os
import sys

import pytest

from rwmspec.api import load_and_compile
from rwmspec.diagnostics import render
from rwmspec.manager import get_registry

from helpers import ROOT

VALID = sorted((ROOT / "tests/specs/valid").glob("*.toml"))
INVALID_DIR = ROOT / "tests/specs/invalid"
INVALID = sorted(INVALID_DIR.glob("*.toml"))


def concise(name: str) -> str:
    """Concise diagnostics of one invalid spec, run from its folder as a user would."""
    cwd = os.getcwd()
    os.chdir(INVALID_DIR)
    try:
        result = load_and_compile(name, registry=get_registry())
    finally:
        os.chdir(cwd)
    return render(result.diagnostics, "concise").replace(str(ROOT), "$ROOT")


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_spec_has_no_diagnostics(path):
    result = load_and_compile(path, registry=get_registry())
    assert render(result.diagnostics, "concise") == ""
    assert result.plan is not None and result.spec is not None


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_spec_diagnostics(path):
    expected = path.with_suffix(".expected").read_text(encoding="utf-8")
    assert concise(path.name) == expected


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_each_rule_is_reported_once(path):
    """Each rule has one owner (structure, checks or compiler) and nothing merges their findings afterwards: a code
    at a key path appears once (the corpus has no two distinct problems of one code at one key)."""
    result = load_and_compile(path, registry=get_registry())
    keys = [(d.code, d.file, d.dotted_path) for d in result.diagnostics if d.path]
    assert len(keys) == len(set(keys)), render(result.diagnostics, "concise")


def test_corpus_covers_every_case_named_in_the_issue():
    names = {p.stem for p in INVALID}
    assert {
        "unknown_key",
        "wrong_type",
        "bad_reward_param",
        "unknown_term_kind",
        "missing_table",
        "cyclic_extends",
        "broken_toml",
        "out_of_range",
        "bad_run_reference",
        "imagination_needs",
    } <= names
    assert all(p.with_suffix(".expected").is_file() for p in INVALID)


def test_every_invalid_spec_fails():
    for path in INVALID:
        assert "error[" in path.with_suffix(".expected").read_text(encoding="utf-8"), path.name


if __name__ == "__main__":  # regenerate the expected files
    for path in INVALID:
        path.with_suffix(".expected").write_text(concise(path.name), encoding="utf-8")
        print(f"wrote {path.with_suffix('.expected').relative_to(ROOT)}", file=sys.stderr)
