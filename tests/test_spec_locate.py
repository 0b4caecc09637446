"""The key path -> (line, column) index built from TOML source (tomli keeps no positions)."""

from __future__ import annotations

import tomli
from hypothesis import given, settings
from hypothesis import strategies as st

from rwmspec.api import dumps_toml
from rwmspec.spec.locate import index_toml, locate

DOC = '''\
# comment [not.a.table]
title = "a # not a comment"
owner.name = 'x'   # dotted key
"quoted key" = 1

[backend]
num_envs = 4096
options = { num_threads = 2, nested = { deep = true } }

[rewards.feet_air_time]
weight = 0.5
ranges = [
  [1, 2],   # first
  "three",
]
doc = """
multi "line" [string]
"""
raw = \'\'\'x = 1\'\'\'

[[runs]]
name = "a"

[[runs]]
name = "b"

[runs.sub]
flag = false

[ "spaced" . 'lit.key' ]
v = 1979-05-27 07:32:00Z
'''


def idx():
    tomli.loads(DOC)  # the locator only runs on valid TOML
    return index_toml(DOC)


def value_at(path):
    loc = idx()[path].value
    return loc.line, loc.col


def key_at(path):
    loc = idx()[path].key
    return loc.line, loc.col


def test_top_level_and_dotted_keys():
    assert value_at(("title",)) == (2, 9)
    assert key_at(("owner", "name")) == (3, 7)
    assert key_at(("owner",)) == (3, 1)
    assert value_at(("quoted key",)) == (4, 16)


def test_table_headers_and_their_keys():
    assert key_at(("backend",)) == (6, 2)
    assert value_at(("backend", "num_envs")) == (7, 12)
    assert key_at(("rewards", "feet_air_time")) == (10, 10)
    assert key_at(("rewards",)) == (10, 2)


def test_inline_tables_nest():
    assert value_at(("backend", "options", "num_threads")) == (8, 27)
    assert value_at(("backend", "options", "nested", "deep")) == (8, 48)


def test_array_elements_and_multiline_arrays():
    assert value_at(("rewards", "feet_air_time", "ranges")) == (12, 10)
    assert value_at(("rewards", "feet_air_time", "ranges", 0)) == (13, 3)
    assert value_at(("rewards", "feet_air_time", "ranges", 0, 1)) == (13, 7)
    assert value_at(("rewards", "feet_air_time", "ranges", 1)) == (14, 3)


def test_strings_do_not_confuse_the_scanner():
    assert value_at(("rewards", "feet_air_time", "doc")) == (16, 7)
    assert value_at(("rewards", "feet_air_time", "raw")) == (19, 7)
    assert ("not",) not in idx()


def test_array_of_tables_get_element_indices():
    assert value_at(("runs", 0, "name")) == (22, 8)
    assert value_at(("runs", 1, "name")) == (25, 8)
    assert value_at(("runs", 1, "sub", "flag")) == (28, 8)


def test_quoted_and_literal_header_keys():
    assert value_at(("spaced", "lit.key", "v")) == (31, 5)
    assert idx()[("spaced", "lit.key", "v")].value.end_col == 25


def test_fallback_to_enclosing_table():
    index = idx()
    exact = locate(index, ("backend", "num_envs"))
    assert (exact.line, exact.col, exact.exact) == (7, 12, True)
    missing = locate(index, ("backend", "device"))
    assert (missing.line, missing.col, missing.exact) == (6, 2, False)
    nowhere = locate(index, ("world_model", "train"))
    assert (nowhere.line, nowhere.col, nowhere.exact) == (1, 1, False)


def test_key_position_on_request():
    loc = locate(idx(), ("backend", "num_envs"), key=True)
    assert (loc.line, loc.col) == (7, 1)


def test_every_parsed_leaf_is_indexed():
    index = idx()

    def leaves(node, path=()):
        if isinstance(node, dict):
            for k, v in node.items():
                yield from leaves(v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from leaves(v, (*path, i))
        else:
            yield path

    for path in leaves(tomli.loads(DOC)):
        assert path in index, path


# ----------------------------------------------------------------------------------------------------------------------
# property: whatever rwmspec's TOML writer produces, every leaf is located on a line that holds its value
# ----------------------------------------------------------------------------------------------------------------------
_keys = st.text(min_size=0, max_size=6)
_scalars = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.text(max_size=8))
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_keys, inner, max_size=3)),
    max_leaves=8,
)
_docs = st.dictionaries(_keys, _values, max_size=4)


def _leaf_paths(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaf_paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaf_paths(v, (*path, i))
    else:
        yield path


@settings(max_examples=80, deadline=None, derandomize=True)
@given(_docs)
def test_writer_round_trips_and_every_leaf_is_located(data):
    text = dumps_toml(data)
    assert tomli.loads(text) == data
    index = index_toml(text)
    lines = text.splitlines()
    for path in _leaf_paths(data):
        if not path:
            continue
        span = index[path].value
        assert span is not None and 1 <= span.line <= len(lines), path
