"""Fuzzing the front end: whatever a spec file contains, the outcome is diagnostics, never an exception.

Three generators: mutations of a valid spec's merged dict (wrong types, unknown keys, deleted tables, bad
references, out-of-range numbers), edits of a valid spec's text (broken TOML), and random ``extends`` graphs
(cycles, missing files). Every result is also rendered in all four formats.
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rwmspec.api import dumps_toml, load_and_compile
from rwmspec.codes import CODES
from rwmspec.diagnostics import FORMATS, Diagnostic, render
from rwmspec.manager import get_registry
from rwmspec.spec.load import load_spec

from helpers import ROOT

VALID = [ROOT / "tests/specs/valid/init_minimal.toml", ROOT / "tests/specs/valid/finetune_refs.toml"]
REGISTRY = get_registry()
BASE_RAWS = []
for _path in VALID:
    _raw = load_spec(_path, registry=REGISTRY).raw
    _raw.get("experiment", {}).pop("extends", None)
    for _ref in ("policy_from", "world_model_from"):  # the fuzzed copy lives elsewhere: make references absolute
        if _ref in _raw.get("runner", {}):
            _raw["runner"][_ref]["spec"] = (_path.parent / _raw["runner"][_ref]["spec"]).as_posix()
    BASE_RAWS.append(_raw)
TEXTS = [p.read_text() for p in VALID]

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["", "anymal_d", "feet", "base_velocity", "gru", "init"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6,
)
names = st.one_of(st.text(max_size=10), st.sampled_from(["weight", "kind", "params", "terms", "mode", "extends"]))


def paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, (*path, i))


def parent_and_key(raw, path):
    node = raw
    for part in path[:-1]:
        node = node[part]
    return node, path[-1]


@st.composite
def mutated_specs(draw):
    raw = copy.deepcopy(draw(st.sampled_from(BASE_RAWS)))
    for _ in range(draw(st.integers(1, 4))):
        candidates = [p for p in paths(raw) if p]
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent, key = parent_and_key(raw, path)
        op = draw(st.sampled_from(["replace", "delete", "unknown_key", "rename", "out_of_range", "reference"]))
        if op == "delete":
            if isinstance(parent, dict):
                del parent[key]
            else:
                parent.pop(key)
        elif op == "unknown_key" and isinstance(parent[key], dict):
            parent[key][draw(names)] = draw(values)
        elif op == "rename" and isinstance(parent, dict):
            parent[key + draw(st.sampled_from(["s", "_", "x"]))] = parent.pop(key)
        elif op == "out_of_range":
            parent[key] = draw(st.sampled_from([0, -1, -0.5, 1.5, 10**9, float("nan"), float("-inf")]))
        elif op == "reference":
            parent[key] = draw(st.sampled_from(["anymal-d", "feet_airtime", "knees", "nowhere.toml", "system_stat"]))
        else:
            parent[key] = draw(values)
    return raw


def check_outcome(path: Path) -> None:
    result = load_and_compile(path, registry=REGISTRY)
    for d in result.diagnostics:
        assert isinstance(d, Diagnostic)
        assert d.code in CODES, d
        assert d.severity in ("error", "warning")
    if result.plan is not None:
        assert result.ok
    for fmt in FORMATS:
        render(result.diagnostics, fmt, result.loaded.sources)


@FUZZ
@given(mutated_specs())
def test_mutated_dicts_give_diagnostics(raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.toml"
        path.write_text(dumps_toml(raw), encoding="utf-8")
        check_outcome(path)


@st.composite
def edited_texts(draw):
    text = draw(st.sampled_from(TEXTS))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 20)))
        insert = draw(st.text(alphabet="[]{}=\"'#.,\n 0-9aZ_\t\\", max_size=6))
        text = text[:i] + insert + text[j:]
    return text.replace('extends = "init_minimal.toml"', f'extends = "{VALID[0].as_posix()}"').replace(
        'extends = "pretrain_extends.toml"', f'extends = "{(VALID[0].parent / "pretrain_extends.toml").as_posix()}"'
    )


@FUZZ
@given(edited_texts())
def test_edited_texts_give_diagnostics(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.toml"
        path.write_text(text, encoding="utf-8")
        check_outcome(path)


@st.composite
def extends_graphs(draw):
    n = draw(st.integers(1, 4))
    targets = [draw(st.one_of(st.none(), st.integers(0, n - 1), st.just(-1))) for _ in range(n)]
    return targets


def has_cycle(targets):
    seen, i = set(), 0
    while i is not None and i >= 0:
        if i in seen:
            return True
        seen.add(i)
        i = targets[i]
    return False


@FUZZ
@given(extends_graphs())
def test_extends_graphs_give_diagnostics(targets):
    with tempfile.TemporaryDirectory() as tmp:
        for i, target in enumerate(targets):
            lines = ["[experiment]"]
            if target is None:
                lines.append(f'extends = "{VALID[0].as_posix()}"')
            elif target == -1:
                lines.append('extends = "missing.toml"')
            else:
                lines.append(f'extends = "{target}.toml"')
            lines.append(f'name = "graph_{i}"')
            Path(tmp, f"{i}.toml").write_text("\n".join(lines) + "\n")
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            result = load_and_compile("0.toml", registry=REGISTRY)
        finally:
            os.chdir(cwd)
        found = [d.code for d in result.diagnostics]
        assert ("RWM003" in found) == has_cycle(targets)
        if not found:
            assert result.plan is not None
