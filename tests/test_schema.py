"""The JSON Schema: committed and current, valid draft-07 built from Draft-4 keywords only, and it accepts every spec."""

from __future__ import annotations

import json

import jsonschema
import pytest
import tomli

from rwmspec.cli import main
from rwmspec.manager import build_registry, get_registry
from rwmspec.schema import build_schema

from helpers import ROOT

COMMITTED = ROOT / "specs/rwmspec.schema.json"
SPECS = sorted((ROOT / "specs").rglob("*.toml"))
#: what taplo understands (Draft 4), plus annotations
KEYWORDS = {
    "$schema",
    "$ref",
    "title",
    "description",
    "default",
    "type",
    "properties",
    "additionalProperties",
    "items",
    "additionalItems",
    "minItems",
    "maxItems",
    "enum",
    "anyOf",
    "allOf",
    "definitions",
    "x-taplo",
}


@pytest.fixture(scope="module")
def schema():
    return json.loads(COMMITTED.read_text(encoding="utf-8"))


def test_committed_schema_is_current(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(["schema", "--check"]) == 0, capsys.readouterr().out


def test_schema_is_valid_draft_07(schema):
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"


def test_schema_uses_only_draft_4_keywords(schema):
    def walk(node, in_properties=False):
        if isinstance(node, dict):
            for key, value in node.items():
                if not in_properties:
                    assert key in KEYWORDS, key
                if key in ("default", "enum", "x-taplo") and not in_properties:
                    continue  # data, not schema
                # the keys of `properties` and `definitions` are names, not keywords
                walk(value, in_properties=key in ("properties", "definitions") and not in_properties)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema)


@pytest.mark.parametrize(
    "path", SPECS + sorted((ROOT / "tests/specs/valid").glob("*.toml")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_schema_accepts_the_specs(schema, path):
    errors = [
        f"{'.'.join(map(str, e.path))}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(tomli.loads(path.read_text()))
    ]
    assert errors == []


def test_schema_rejects_unknown_keys_and_params(schema):
    bad = {
        "ppo": {"gama": 0.9},
        "rewards": {"feet_air_time": {"weight": 1.0, "threshhold": 0.5}},
        "backend": {"num_envs": "many"},
    }
    messages = sorted(e.message for e in jsonschema.Draft7Validator(schema).iter_errors(bad))
    assert len(messages) == 3
    assert any("'gama' was unexpected" in m for m in messages)
    assert any("'threshhold' was unexpected" in m for m in messages)


def test_descriptions_come_from_the_model_and_the_plugins(schema):
    backend = schema["definitions"]["Backend"]["properties"]
    assert backend["num_envs"]["description"] == "Number of parallel real environments."
    assert backend["num_envs"]["default"] == 4096
    air = schema["definitions"]["reward.feet_air_time"]["properties"]
    assert "weight" in air and air["threshold"]["description"]
    assert schema["properties"]["rewards"]["properties"]["feet_air_time"] == {
        "$ref": "#/definitions/reward.feet_air_time"
    }


def test_printed_schema_includes_other_plugins_and_the_committed_one_does_not():
    import attrs

    from rwmspec import hookimpl
    from rwmspec.types import TermKind

    @attrs.define
    class SlideParams:
        bodies: str = attrs.field(default="feet", metadata={"doc": "Contact group of the feet."})

    class Extra:
        @hookimpl
        def rwmspec_term_kinds(self):
            yield TermKind(
                name="feet_slide", category="reward", description="Foot speed in contact.", params_type=SlideParams
            )

    registry = build_registry([("extra", Extra())])
    full = build_schema(registry)
    assert (
        full["definitions"]["reward.feet_slide"]["properties"]["bodies"]["description"] == "Contact group of the feet."
    )
    assert "reward.feet_slide" not in build_schema(registry, builtin_only=True)["definitions"]
    assert build_schema(get_registry(), builtin_only=True) == json.loads(COMMITTED.read_text())


def test_every_spec_names_the_schema():
    for path in SPECS:
        depth = len(path.relative_to(ROOT / "specs").parts) - 1
        expected = f"#:schema {'./' if depth == 0 else '../' * depth}rwmspec.schema.json"
        assert path.read_text().splitlines()[0] == expected, path


def test_docs_spec_md_key_reference_is_current():
    from rwmspec.schema import reference_markdown

    text = (ROOT / "docs/spec.md").read_text(encoding="utf-8")
    begin = text.index("-->\n", text.index("<!-- BEGIN GENERATED")) + 4
    end = text.index("<!-- END GENERATED -->")
    assert text[begin:end] == reference_markdown(), "regenerate the Keys section with: rwmspec schema --markdown"
