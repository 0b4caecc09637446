"""JSON Schema of the spec language, generated from the attrs model and the installed plugins.

The schema is draft-07 by its ``$schema`` line but uses only Draft-4 keywords (``type``, ``properties``,
``additionalProperties``, ``items``, ``enum``, ``anyOf``, ``$ref``/``definitions``, ``minItems``/``maxItems``,
``default``, ``description``), which is what taplo (the TOML language server) understands. Descriptions come from
each field's ``metadata["doc"]``. Term tables get one definition per registered term kind (its params documented
beside the common keys); a table whose key is a kind name is checked against that kind.

Nothing is ``required``: overlays and base files are partial specs and must validate in an editor too. Required
keys are offered as ``x-taplo.initKeys`` instead (inserted when a table is completed), and `rwmspec validate`
stays the authority on what a runnable spec must contain.
"""

from __future__ import annotations

import json
import types
import typing
from typing import TYPE_CHECKING, Any, Literal

import attrs

from rwmspec.spec.model import ObservationGroupSpec, ObservationTermSpec, Spec
from rwmspec.spec.structure import TERM_TABLES

if TYPE_CHECKING:
    from rwmspec.manager import Registry

DRAFT = "http://json-schema.org/draft-07/schema#"
#: what `rwmspec schema --check` compares against (the built-in plugins only, so third-party installs do not
#: change the committed file)
BUILTIN_DISTRIBUTION = "rwmspec"


class _Builder:
    def __init__(self) -> None:
        self.definitions: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------------------------------------ types
    def type_schema(self, t: Any) -> dict[str, Any]:
        if t is Any:
            return {}
        if t is bool:
            return {"type": "boolean"}
        if t is int:
            return {"type": "integer"}
        if t is float:
            return {"type": "number"}
        if t is str:
            return {"type": "string"}
        origin = typing.get_origin(t)
        args = typing.get_args(t)
        if origin is Literal:
            kinds = {type(a) for a in args}
            out: dict[str, Any] = {"enum": list(args)}
            if kinds == {str}:
                out = {"type": "string", **out}
            return out
        if origin in (typing.Union, types.UnionType):
            members = [a for a in args if a is not type(None)]
            if len(members) == 1:
                return self.type_schema(members[0])
            return {"anyOf": [self.type_schema(m) for m in members]}
        if origin is tuple and args and args[-1] is not Ellipsis:
            return {
                "type": "array",
                "items": [self.type_schema(a) for a in args],
                "minItems": len(args),
                "maxItems": len(args),
                "additionalItems": False,
            }
        if origin in (list, tuple) or t in (list, tuple):
            return {"type": "array", "items": self.type_schema(args[0])} if args else {"type": "array"}
        if origin is dict or t is dict:
            if len(args) == 2 and args[1] is not Any:
                return {"type": "object", "additionalProperties": self.type_schema(args[1])}
            return {"type": "object"}
        if attrs.has(t):
            return {"$ref": f"#/definitions/{self.attrs_class(t)}"}
        return {}

    def field_schema(self, f: attrs.Attribute) -> dict[str, Any]:
        out = self.type_schema(f.type)
        doc = f.metadata.get("doc")
        if doc:
            out = {**out, "description": doc} if "$ref" not in out else {"allOf": [out], "description": doc}
        default = _json_default(f)
        if default is not None:
            out["default"] = default
        return out

    def object_schema(
        self, fields: list[attrs.Attribute], description: str | None, *, additional: bool | dict = False
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "object"}
        if description:
            out["description"] = description
        out["properties"] = {f.name: self.field_schema(f) for f in fields}
        out["additionalProperties"] = additional
        required = [f.name for f in fields if f.default is attrs.NOTHING]
        if required:
            out["x-taplo"] = {"initKeys": required}
        return out

    def attrs_class(self, cl: type, name: str | None = None, description: str | None = None) -> str:
        name = name or _definition_name(cl)
        if name not in self.definitions:
            self.definitions[name] = {}  # placeholder against recursion
            attrs.resolve_types(cl)
            self.definitions[name] = self.object_schema(list(attrs.fields(cl)), description or _class_doc(cl))
        return name

    # ------------------------------------------------------------------------------------------------ terms
    def term_definitions(self, category: str, term_cls: type, kinds: dict[str, Any]) -> dict[str, Any]:
        """Schema of one term table (e.g. ``rewards``): per-kind definitions and a generic fallback."""
        attrs.resolve_types(term_cls)
        common = [f for f in attrs.fields(term_cls) if f.name != "params"]
        generic = self.object_schema(common, _class_doc(term_cls), additional=True)
        kind_field = next(f for f in common if f.name == "kind")
        if kinds:  # listed, not enforced: a third-party plugin may add kinds the committed schema does not know
            kind_schema = self.field_schema(kind_field)
            kind_schema["description"] += f" Kinds of the built-in plugins: {', '.join(sorted(kinds))}."
            generic["properties"]["kind"] = kind_schema
        generic_name = f"{_definition_name(term_cls)}"
        self.definitions[generic_name] = generic
        properties = {}
        for kind_name, kind in sorted(kinds.items()):
            params = []
            if kind.params_type is not None and attrs.has(kind.params_type):
                attrs.resolve_types(kind.params_type)
                params = list(attrs.fields(kind.params_type))
            definition = self.object_schema(common + params, f"{category} kind `{kind_name}`: {kind.description}")
            definition["properties"]["kind"] = {**self.field_schema(kind_field), "enum": [kind_name]}
            def_name = f"{category}.{kind_name}"
            self.definitions[def_name] = definition
            properties[kind_name] = {"$ref": f"#/definitions/{def_name}"}
        return {
            "type": "object",
            "properties": properties,
            "additionalProperties": {"$ref": f"#/definitions/{generic_name}"},
        }

    def options(self, records: dict[str, Any], label: str) -> dict[str, Any]:
        branches = []
        for name, record in sorted(records.items()):
            if record.options_type is not None and attrs.has(record.options_type):
                def_name = self.attrs_class(
                    record.options_type, f"{label}.{name}.options", f"Options of {label} `{name}`."
                )
                branches.append({"$ref": f"#/definitions/{def_name}"})
        if not branches:
            return {"type": "object"}
        return {"anyOf": branches} if len(branches) > 1 else branches[0]


def _definition_name(cl: type) -> str:
    return cl.__name__.removesuffix("Spec") or cl.__name__


def _class_doc(cl: type) -> str | None:
    doc = (cl.__doc__ or "").strip()
    if not doc or doc.startswith(f"{cl.__name__}("):  # attrs' generated signature is not documentation
        return None
    return " ".join(doc.split("\n\n")[0].split())


def _json_default(f: attrs.Attribute) -> Any:
    default = f.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        if default.takes_self:
            return None
        value = default.factory()
    elif default is attrs.NOTHING:
        return None
    else:
        value = default
    if value is None or attrs.has(type(value)) or value == {}:
        return None
    if isinstance(value, tuple):
        value = list(value)
    try:
        json.dumps(value)
    except TypeError:
        return None
    return value


def _builtin(registry: Registry, attr: str) -> dict[Any, Any]:
    builtin_providers = {p.provider for p in registry.plugins if p.distribution == BUILTIN_DISTRIBUTION}
    table = getattr(registry, attr)
    return {k: v for k, v in table.items() if registry.providers.get((attr, k)) in builtin_providers}


def build_schema(registry: Registry, *, builtin_only: bool = False) -> dict[str, Any]:
    """The JSON Schema of a spec for the plugins of ``registry`` (only the built-in ones with ``builtin_only``)."""

    def records(attr: str) -> dict[Any, Any]:
        return _builtin(registry, attr) if builtin_only else dict(getattr(registry, attr))

    b = _Builder()
    root = b.attrs_class(Spec)
    schema = b.definitions.pop(root)
    term_kinds = records("term_kinds")
    props = schema["properties"]
    for table, (category, term_cls) in TERM_TABLES.items():
        kinds = {name: k for (cat, name), k in term_kinds.items() if cat == category}
        props[table] = {
            **b.term_definitions(category, term_cls, kinds),
            "description": props[table].get("description", ""),
        }
    obs_kinds = {name: k for (cat, name), k in term_kinds.items() if cat == "observation"}
    terms = b.term_definitions("observation", ObservationTermSpec, obs_kinds)
    group = b.definitions[b.attrs_class(ObservationGroupSpec)]
    group["properties"]["terms"] = {**terms, "description": group["properties"]["terms"].get("description", "")}
    for table, field, attr, label in (
        ("robot", "options", "robots", "robot"),
        ("backend", "options", "backends", "backend"),
        ("world_model", "options", "architectures", "architecture"),
    ):
        definition = b.definitions[_definition_name(_spec_class(table))]
        doc = definition["properties"][field].get("description", "")
        definition["properties"][field] = {**b.options(records(attr), label), "description": doc}
    for table, key, attr in (
        ("experiment", "stage", "stages"),
        ("robot", "name", "robots"),
        ("backend", "name", "backends"),
        ("world_model", "architecture", "architectures"),
    ):
        definition = b.definitions[_definition_name(_spec_class(table))]
        names = sorted(records(attr))
        if names:  # listed, not enforced (see term kinds above)
            definition["properties"][key]["description"] += f" Installed: {', '.join(f'`{n}`' for n in names)}."
    return {
        "$schema": DRAFT,
        "title": "rwmspec experiment spec",
        "description": "An rwmspec experiment spec (TOML). Generated by `rwmspec schema`; see docs/spec.md.",
        **schema,
        "definitions": dict(sorted(b.definitions.items())),
    }


def _spec_class(table: str) -> type:
    attrs.resolve_types(Spec)
    t = attrs.fields_dict(Spec)[table].type
    members = [a for a in typing.get_args(t) if a is not type(None)] if typing.get_args(t) else [t]
    return members[0]


def schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


# ----------------------------------------------------------------------------------------------------------------------
# the key reference of docs/spec.md
# ----------------------------------------------------------------------------------------------------------------------
def _type_text(t: Any) -> str:
    names = {int: "integer", float: "number", str: "string", bool: "boolean"}
    if t in names:
        return names[t]
    if t is Any:
        return "any"
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        return " or ".join(_type_text(m) for m in members)
    if origin is tuple and args and args[-1] is not Ellipsis:
        return "[" + ", ".join(_type_text(a) for a in args) + "]"
    if origin in (list, tuple):
        return f"array of {_type_text(args[0])}" if args else "array"
    if origin is dict:
        return "table"
    if attrs.has(t):
        return "table"
    return str(t)


def _default_text(f: attrs.Attribute) -> str:
    if f.default is attrs.NOTHING:
        return "**required**"
    value = f.default.factory() if isinstance(f.default, attrs.Factory) else f.default  # type: ignore[arg-type]
    if value is None:
        return "unset"
    if attrs.has(type(value)):
        return "(table)"
    from rwmspec.api import toml_value

    return f"`{toml_value(list(value) if isinstance(value, tuple) else value)}`"


def reference_markdown() -> str:
    """One table per spec table: key, type, default and description, from the model's field docs."""
    out: list[str] = []
    seen: dict[type, str] = {}

    def section(header: str, cl: type) -> None:
        attrs.resolve_types(cl)
        if cl in seen:
            out.extend([f"### `{header}`", "", f"Same keys as `{seen[cl]}`.", ""])
            return
        seen[cl] = header
        out.extend([f"### `{header}`", ""])
        doc = _class_doc(cl)
        if doc:
            out.extend([doc, ""])
        out.extend(["| key | type | default | description |", "|---|---|---|---|"])
        nested: list[tuple[str, type]] = []
        for f in attrs.fields(cl):
            t = f.type
            members = (
                [a for a in typing.get_args(t) if a is not type(None)]
                if typing.get_origin(t) in (typing.Union, types.UnionType)
                else [t]
            )
            inner = members[0] if len(members) == 1 else None
            if inner is not None and attrs.has(inner):
                nested.append((f"{header}.{f.name}" if header != "(top level)" else f.name, inner))
                continue
            if typing.get_origin(inner) is dict and attrs.has(typing.get_args(inner)[1]):
                nested.append((f"{f.name}.<name>", typing.get_args(inner)[1]))
                continue
            doc_text = (f.metadata.get("doc") or "").replace("|", "\\|").replace("\n", " ")
            out.append(f"| `{f.name}` | {_type_text(t)} | {_default_text(f)} | {doc_text} |")
        out.append("")
        for sub_header, sub_cl in nested:
            prefix = "" if header == "(top level)" else f"{header}."
            section(sub_header if sub_header.startswith(prefix) or not prefix else prefix + sub_header, sub_cl)

    section("(top level)", Spec)
    return "\n".join(out)
