"""The one strict cattrs converter of rwmspec, and the walker that turns its errors into diagnostics.

cattrs' default hooks convert silently (``int("5")``, ``str(5)``, iterating a string as a list), so strict hooks
replace them for primitives, ``Literal``, unions, tuples, lists and dicts: a TOML value either has the declared type
or it is a problem. Every structuring in rwmspec (the spec model, term params, plugin options) goes through
``converter()``; plugins that structure their own options import it from here rather than building another one.

``iter_errors`` flattens the exception groups cattrs raises (and ours) into ``(path, exception, owner)`` triples;
``errors_to_problems`` turns them into path-only diagnostics whose messages rwmspec writes itself.
"""

from __future__ import annotations

import datetime
import json
import types
import typing
from collections.abc import Iterator
from functools import cache
from typing import Any, Literal

import attrs
import cattrs
from cattrs.errors import AttributeValidationNote, ClassValidationError, ForbiddenExtraKeysError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn

from rwmspec.diagnostics import Diagnostic, SpecError, did_you_mean, dotted, list_choices, suggest

Path = tuple[str | int, ...]


# ----------------------------------------------------------------------------------------------------------------------
# problems raised by the strict hooks
# ----------------------------------------------------------------------------------------------------------------------
class Problem(Exception):
    """A structuring problem with rwmspec's own code, message and hint."""

    def __init__(self, code: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint


class _Group(Exception):
    """Several problems below one value (list elements, dict entries), each with its sub-path."""

    def __init__(self, items: list[tuple[Path, BaseException]]):
        super().__init__(f"{len(items)} problems")
        self.items = items


def describe_value(v: Any) -> str:
    if isinstance(v, bool):
        return f"the boolean {str(v).lower()}"
    if isinstance(v, int):
        return f"the integer {v}"
    if isinstance(v, float):
        return f"the number {v!r}"
    if isinstance(v, str):
        return f"the string {json.dumps(v)}"
    if isinstance(v, list | tuple):
        return f"an array of {len(v)} value{'s' if len(v) != 1 else ''}"
    if isinstance(v, dict):
        return "a table"
    if isinstance(v, datetime.date | datetime.time):
        return f"the date/time {v.isoformat()}"
    return f"a {type(v).__name__}"


_NAMES = {
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
    str: ("a string", "strings"),
    bool: ("a boolean", "booleans"),
}


def describe_type(t: Any, plural: bool = False) -> str:
    if t in _NAMES:
        return _NAMES[t][plural]
    if t is Any:
        return "values" if plural else "any value"
    origin = typing.get_origin(t)
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(a) for a in typing.get_args(t))
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(t) if a is not type(None)]
        return " or ".join(describe_type(m, plural) for m in members)
    if origin in (list, tuple):
        args = typing.get_args(t)
        if origin is tuple and args and args[-1] is not Ellipsis:
            inner = describe_type(args[0], plural=len(args) != 1) if len(set(args)) == 1 else "values"
            return f"arrays of {len(args)} {inner}" if plural else f"an array of {len(args)} {inner}"
        inner = describe_type(args[0], plural=True) if args else "values"
        return f"arrays of {inner}" if plural else f"an array of {inner}"
    if origin is dict or attrs.has(t) or t is dict:
        return "tables" if plural else "a table"
    return getattr(t, "__name__", str(t))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _mismatch(expected: Any, value: Any) -> Problem:
    hint = None
    if isinstance(value, str) and expected in (int, float):
        if _is_number(value):
            hint = "remove the quotes around the number"
    elif isinstance(value, str) and expected is bool and value.lower() in ("true", "false"):
        hint = f"write {value.lower()} without quotes"
    elif expected is int and isinstance(value, float) and value.is_integer():
        hint = f"write {int(value)} without a decimal point"
    elif expected is str and isinstance(value, int | float | bool):
        hint = "put the value in quotes"
    return Problem("RWM103", f"expected {describe_type(expected)}, got {describe_value(value)}", hint)


# ----------------------------------------------------------------------------------------------------------------------
# strict hooks
# ----------------------------------------------------------------------------------------------------------------------
def _structure_int(v: Any, _: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    raise _mismatch(int, v)


def _structure_float(v: Any, _: Any) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    raise _mismatch(float, v)


def _structure_str(v: Any, _: Any) -> str:
    if isinstance(v, str):
        return v
    raise _mismatch(str, v)


def _structure_bool(v: Any, _: Any) -> bool:
    if isinstance(v, bool):
        return v
    raise _mismatch(bool, v)


def is_literal(t: Any) -> bool:
    return typing.get_origin(t) is Literal


def is_union(t: Any) -> bool:
    return typing.get_origin(t) in (typing.Union, types.UnionType)


def is_list(t: Any) -> bool:
    origin = typing.get_origin(t)
    return origin is list or (origin is tuple and typing.get_args(t)[-1:] == (Ellipsis,)) or t is list


def is_fixed_tuple(t: Any) -> bool:
    return typing.get_origin(t) is tuple and typing.get_args(t)[-1:] != (Ellipsis,)


def is_dict(t: Any) -> bool:
    return typing.get_origin(t) is dict or t is dict


def _accepts(t: Any, v: Any) -> bool:
    """Shallow check: could ``v`` be a value of type ``t``? Used to pick a union member."""
    if t is Any:
        return True
    if t is bool:
        return isinstance(v, bool)
    if t is int:
        return isinstance(v, int) and not isinstance(v, bool)
    if t is float:
        return isinstance(v, int | float) and not isinstance(v, bool)
    if t is str:
        return isinstance(v, str)
    if t is type(None):
        return v is None
    if is_literal(t):
        return any(v == a and type(v) is type(a) for a in typing.get_args(t))
    if is_list(t) or is_fixed_tuple(t):
        return isinstance(v, list | tuple)
    if is_dict(t) or attrs.has(t):
        return isinstance(v, dict)
    return isinstance(v, t) if isinstance(t, type) else False


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)

    def literal_factory(t: Any) -> Any:
        allowed = typing.get_args(t)

        def hook(v: Any, _: Any) -> Any:
            for a in allowed:
                if v == a and type(v) is type(a):
                    return a
            if not any(isinstance(v, type(a)) for a in allowed):
                raise Problem("RWM103", f"expected {describe_type(t)}, got {describe_value(v)}")
            hint = None
            s = suggest(str(v), [str(a) for a in allowed])
            if s:
                hint = f"did you mean {json.dumps(s)}?"
            raise Problem("RWM104", f"must be {describe_type(t)} (got {json.dumps(v)})", hint)

        return hook

    def union_factory(t: Any) -> Any:
        members = typing.get_args(t)

        def hook(v: Any, _: Any) -> Any:
            if v is None and type(None) in members:
                return None
            candidates = [m for m in members if m is not type(None)]
            for m in candidates:
                if _accepts(m, v):
                    return conv.structure(v, m)
            if len(candidates) == 1:  # X | None: report as X
                return conv.structure(v, candidates[0])
            raise Problem("RWM103", f"expected {describe_type(t)}, got {describe_value(v)}")

        return hook

    def fixed_tuple_factory(t: Any) -> Any:
        args = typing.get_args(t)

        def hook(v: Any, _: Any) -> Any:
            if not isinstance(v, list | tuple):
                raise Problem("RWM103", f"expected {describe_type(t)}, got {describe_value(v)}")
            if len(v) != len(args):
                raise Problem("RWM103", f"expected {describe_type(t)}, got {len(v)} value{'s' * (len(v) != 1)}")
            return tuple(_structure_items(conv, enumerate(v), lambda i: args[i]))

        return hook

    def list_factory(t: Any) -> Any:
        args = typing.get_args(t)
        item = args[0] if args else Any
        as_tuple = typing.get_origin(t) is tuple

        def hook(v: Any, _: Any) -> Any:
            if not isinstance(v, list | tuple):
                raise Problem("RWM103", f"expected {describe_type(t)}, got {describe_value(v)}")
            out = _structure_items(conv, enumerate(v), lambda i: item)
            return tuple(out) if as_tuple else out

        return hook

    def dict_factory(t: Any) -> Any:
        args = typing.get_args(t)
        item = args[1] if len(args) == 2 else Any

        def hook(v: Any, _: Any) -> Any:
            if not isinstance(v, dict):
                raise Problem("RWM103", f"expected a table, got {describe_value(v)}")
            values = _structure_items(conv, v.items(), lambda k: item)
            return dict(zip(v.keys(), values, strict=True))

        return hook

    def attrs_factory(cl: type) -> Any:
        attrs.resolve_types(cl)
        inner = make_dict_structure_fn(cl, conv)

        def hook(v: Any, _: Any) -> Any:
            if not isinstance(v, dict):
                raise Problem("RWM103", f"expected a table, got {describe_value(v)}")
            return inner(v, cl)

        return hook

    conv.register_structure_hook_factory(attrs.has, attrs_factory)
    conv.register_structure_hook_factory(is_dict, dict_factory)
    conv.register_structure_hook_factory(is_list, list_factory)
    conv.register_structure_hook_factory(is_fixed_tuple, fixed_tuple_factory)
    conv.register_structure_hook_factory(is_union, union_factory)
    conv.register_structure_hook_factory(is_literal, literal_factory)
    conv.register_structure_hook_func(lambda t: t is Any, lambda v, _: v)
    return conv


def _structure_items(conv: cattrs.Converter, items: Any, type_of: Any) -> list[Any]:
    out, problems = [], []
    for key, value in items:
        try:
            out.append(conv.structure(value, type_of(key)))
        except Exception as exc:  # collected: every element is checked
            problems.append(((key,), exc))
    if problems:
        raise _Group(problems)
    return out


@cache
def converter() -> cattrs.Converter:
    """The shared strict converter (built on first use)."""
    return _make_converter()


# ----------------------------------------------------------------------------------------------------------------------
# error walker
# ----------------------------------------------------------------------------------------------------------------------
def iter_errors(
    exc: BaseException, path: Path = (), owner: type | None = None
) -> Iterator[tuple[Path, BaseException, type | None]]:
    """Flatten cattrs' exception groups (and ours) into ``(path, exception, owning attrs class)``."""
    if isinstance(exc, _Group):
        for sub, e in exc.items:
            yield from iter_errors(e, path + sub, owner)
    elif isinstance(exc, BaseExceptionGroup):
        cl = exc.cl if isinstance(exc, ClassValidationError) else owner
        for e in exc.exceptions:
            sub = path
            for note in getattr(e, "__notes__", ()):
                if isinstance(note, AttributeValidationNote):
                    sub = (*path, note.name)
                elif isinstance(note, IterableValidationNote):
                    sub = (*path, note.index)
            yield from iter_errors(e, sub, cl)
    else:
        yield path, exc, owner


def _field_doc(cl: type | None, name: str) -> str | None:
    if cl is None or not attrs.has(cl):
        return None
    f = attrs.fields_dict(cl).get(name)
    return f.metadata.get("doc") if f is not None else None


def public_fields(cl: type) -> list[str]:
    return [f.name for f in attrs.fields(cl)] if attrs.has(cl) else []


@attrs.frozen
class RawProblem:
    """A diagnostic before it is located in a file; ``key`` says whether the key (not its value) is at fault."""

    diagnostic: Diagnostic
    key: bool = False


def errors_to_problems(
    exc: BaseException, base: Path = (), *, code_override: str | None = None, what: str = "key"
) -> list[RawProblem]:
    """Diagnostics (path only) for a structuring exception."""
    out = []
    for path, e, owner in iter_errors(exc, base):
        if isinstance(e, ForbiddenExtraKeysError):
            valid = public_fields(e.cl)
            for key in sorted(e.extra_fields):
                msg = f"unknown {what} '{key}'{did_you_mean(key, valid)}"
                out.append(
                    RawProblem(
                        Diagnostic(
                            code_override or "RWM101",
                            msg,
                            (*path, key),
                            hint=f"valid {what}s here: {list_choices(valid)}",
                        ),
                        key=True,
                    )
                )
        elif isinstance(e, KeyError):
            name = path[-1] if path else str(e)
            doc = _field_doc(owner, str(name))
            field_type = field_types(owner).get(name) if owner is not None and attrs.has(owner) else None
            what_to_add = f"a [{dotted(path)}] table" if attrs.has(strip_optional(field_type)) else f"`{name} = ...`"
            hint = f"add {what_to_add}" + (f": {doc}" if doc else "")
            out.append(
                RawProblem(Diagnostic(code_override or "RWM102", f"missing required {what} '{name}'", path, hint=hint))
            )
        elif isinstance(e, Problem):
            out.append(RawProblem(Diagnostic(code_override or e.code, e.message, path, hint=e.hint)))
        else:  # a validator of a plugin's params class, or anything else cattrs raised: keep its own words
            message = str(e) if isinstance(e, ValueError | TypeError) else f"{type(e).__name__}: {e}"
            out.append(RawProblem(Diagnostic(code_override or "RWM103", message, path)))
    return out


def structure(value: Any, cl: type, *, path: Path = (), code: str | None = None, what: str = "key") -> Any:
    """``value`` as a ``cl`` instance through the strict converter, for code outside the spec loader (a backend
    structuring its ``[backend.options]`` from a plan, say).

    :param path: key path of ``value`` in the spec, prefixed to every diagnostic.
    :param code: code of every diagnostic (e.g. ``"RWM213"`` for options); default: each problem's own.
    :raises SpecError: one path-only diagnostic per problem.
    """
    try:
        return converter().structure(value, cl)
    except Exception as exc:  # cattrs raises a group: every leaf becomes one diagnostic
        problems = errors_to_problems(exc, path, code_override=code, what=what)
        raise SpecError([rp.diagnostic for rp in problems]) from None


@cache
def field_types(cl: type) -> dict[str, Any]:
    attrs.resolve_types(cl)
    return {f.name: f.type for f in attrs.fields(cl)}


def strip_optional(t: Any) -> Any:
    if is_union(t):
        members = [a for a in typing.get_args(t) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return t
