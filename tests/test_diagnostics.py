"""Diagnostic records, the four renderers (snapshots), the code table and docs/diagnostics.md."""

from __future__ import annotations

import json
import re

import pytest

from rwmspec.codes import CODES, RANGES, explain, render_markdown
from rwmspec.diagnostics import (
    Diagnostic,
    SpecError,
    did_you_mean,
    dotted,
    failed_plugins,
    list_choices,
    render,
    root_cause,
    summary,
)
from rwmspec.manager import PluginInfo, Registry

from helpers import ROOT

SOURCE = 'schema_version = 1\n\n[rewards.feet_air_time]\nweight = "0.5"\n'
WRONG = Diagnostic(
    "RWM103",
    'expected a number, got the string "0.5"',
    ("rewards", "feet_air_time", "weight"),
    file="spec.toml",
    line=4,
    col=10,
    hint="remove the quotes around the number",
    origin="extends base.toml",
)
FROM_SET = Diagnostic("RWM201", "must be >= 1 (got 0)", ("backend", "num_envs"), origin="--set backend.num_envs=0")
PLUGIN = Diagnostic(
    "RWM301",
    "plugin entry point 'go2 = go2.plugin' (go2 0.3) failed to import: ModuleNotFoundError: No module named 'isaaclab'",
    severity="warning",
)


def test_dotted_paths_quote_keys_and_index_arrays():
    assert dotted(("policy", "actor_hidden_dims", 1)) == "policy.actor_hidden_dims[1]"
    assert dotted(("rewards", "a.b", "weight")) == 'rewards."a.b".weight'
    assert dotted(()) == ""


def test_concise():
    assert render([WRONG, FROM_SET, PLUGIN], "concise") == (
        'spec.toml:4:10: error[RWM103] rewards.feet_air_time.weight: expected a number, got the string "0.5" '
        "(help: remove the quotes around the number)\n"
        "--set backend.num_envs=0: error[RWM201] backend.num_envs: must be >= 1 (got 0)\n"
        "rwmspec: warning[RWM301] plugin entry point 'go2 = go2.plugin' (go2 0.3) failed to import: "
        "ModuleNotFoundError: No module named 'isaaclab'\n"
    )


def test_full_shows_the_source_line_with_a_caret():
    assert render([WRONG], "full", {"spec.toml": SOURCE}) == (
        'error[RWM103]: rewards.feet_air_time.weight: expected a number, got the string "0.5"\n'
        " --> spec.toml:4:10\n"
        "  |\n"
        '4 | weight = "0.5"\n'
        "  |          ^^^^^\n"
        "  |\n"
        "  = help: remove the quotes around the number\n"
        "  = note: value from extends base.toml\n"
        "\n"
    )


def test_full_without_source_or_file():
    text = render([FROM_SET], "full", {})
    assert text == ("error[RWM201]: backend.num_envs: must be >= 1 (got 0)\n --> --set backend.num_envs=0\n\n")


def test_full_colors_only_on_request():
    assert "\x1b[" not in render([WRONG], "full", {"spec.toml": SOURCE})
    assert "\x1b[1;31merror[RWM103]" in render([WRONG], "full", {"spec.toml": SOURCE}, color=True)


def test_json():
    (record,) = json.loads(render([WRONG], "json"))
    assert record == {
        "code": "RWM103",
        "severity": "error",
        "message": 'expected a number, got the string "0.5"',
        "path": "rewards.feet_air_time.weight",
        "path_parts": ["rewards", "feet_air_time", "weight"],
        "file": "spec.toml",
        "line": 4,
        "col": 10,
        "hint": "remove the quotes around the number",
        "origin": "extends base.toml",
    }
    assert json.loads(render([], "json")) == []


def test_github_annotations_escape_properties_and_data():
    assert render([WRONG, PLUGIN], "github").splitlines() == [
        "::error file=spec.toml,line=4,col=10,title=rwmspec (RWM103)::rewards.feet_air_time.weight: expected a "
        'number, got the string "0.5"%0Ahelp: remove the quotes around the number%0Anote: value from extends '
        "base.toml",
        "::warning title=rwmspec (RWM301)::plugin entry point 'go2 = go2.plugin' (go2 0.3) failed to import: "
        "ModuleNotFoundError: No module named 'isaaclab'",
    ]
    odd = Diagnostic("RWM101", "100% sure", file="a,b:c.toml", line=1, col=1)
    assert render([odd], "github") == "::error file=a%2Cb%3Ac.toml,line=1,col=1,title=rwmspec (RWM101)::100%25 sure\n"


def test_unknown_format_is_an_error():
    with pytest.raises(ValueError, match="concise"):
        render([WRONG], "xml")


def test_spec_error_carries_the_diagnostics():
    err = SpecError([WRONG, FROM_SET])
    assert err.diagnostics == [WRONG, FROM_SET]
    assert str(err).startswith("spec.toml:4:10: error[RWM103]")


def test_did_you_mean_and_choices():
    assert did_you_mean("pre-train", ["init", "pretrain", "finetune"]) == "; did you mean 'pretrain'?"
    assert did_you_mean("xyz", ["init", "pretrain"]) == ""
    assert list_choices([]) == "(none)"
    assert list_choices([f"k{i}" for i in range(20)], limit=2) == "k0, k1, ... (18 more)"


def test_failed_plugins_note():
    ok = PluginInfo("locomotion", "m", "rwmspec", "0.1")
    broken = PluginInfo("go2", "m", "rwmspec-go2", "1.0", error="ModuleNotFoundError: torch")
    assert failed_plugins(Registry(plugins=[ok])) == ""
    assert failed_plugins(Registry(plugins=[ok, broken])) == "; plugin(s) 'go2' failed to load (see `rwmspec plugins`)"


def test_root_cause_follows_the_chain_but_not_suppressed_context():
    def chained():
        try:
            raise KeyError("inner")
        except KeyError as exc:
            raise ValueError("outer") from exc

    with pytest.raises(ValueError) as info:
        chained()
    assert isinstance(root_cause(info.value), KeyError)
    try:
        try:
            raise KeyError("hidden")
        except KeyError:
            raise ValueError("shown") from None
    except ValueError as exc:
        assert root_cause(exc) is exc


def test_summary():
    assert summary([], 4) == "All checks passed (4 files)."
    assert summary([WRONG, PLUGIN], 1) == "Found 1 error and 1 warning in 1 file."


# ----------------------------------------------------------------------------------------------------------------------
# codes
# ----------------------------------------------------------------------------------------------------------------------
def test_codes_are_grouped_by_range_and_complete():
    assert all(re.fullmatch(r"RWM\d{3}", c) for c in CODES)
    assert all(any(c.startswith(prefix) for prefix, _ in RANGES) for c in CODES)
    assert list(CODES) == sorted(CODES)
    for code, entry in CODES.items():
        assert all([entry.title, entry.what, entry.why, entry.example, entry.fix]), code


def test_every_code_emitted_by_the_sources_is_documented():
    emitted = set()
    for folder in ("rwmspec", "plugins", "runtime"):
        for path in (ROOT / folder).rglob("*.py"):
            emitted |= set(re.findall(r'"(RWM\d{3})"', path.read_text(encoding="utf-8")))
    assert emitted - set(CODES) == set()


def test_explain_has_every_section():
    text = explain("RWM204")
    for section in ("What\n", "Why\n", "Example\n", "Fix\n"):
        assert section in text
    assert text.startswith("RWM204: Invalid term params")


def test_docs_diagnostics_md_is_generated_from_codes():
    current = (ROOT / "docs/diagnostics.md").read_text(encoding="utf-8")
    assert current == render_markdown(), "regenerate with: rwmspec explain --all > docs/diagnostics.md"
