"""Diagnostics: one record per problem, and the renderers that print them.

Every problem rwmspec finds in a spec (or a plugin) is a ``Diagnostic``. Nothing is raised for bad input: the
loader, the checks and the compiler all return lists, so that one run reports every problem at once. Code that
must stop (the runtime) raises ``SpecError`` carrying the list.

Formats (``render(diags, fmt, sources)``):

* ``concise``: one line per diagnostic, ``file:line:col: error[RWM103] dotted.path: message (help: hint)``.
* ``full``: a ruff/rustc-style block with the source line, a caret under the value, ``= help:`` and ``= note:``.
* ``json``: a list of records.
* ``github``: GitHub Actions workflow commands (``::error file=..,line=..,col=..,title=rwmspec (RWM103)::msg``).

The wording helpers every part of rwmspec shares live here too, so that a message reads the same wherever it comes
from: ``did_you_mean`` / ``suggest`` / ``list_choices`` for misspelt names, ``root_cause`` for the exception a
failure message should name.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import attrs

if TYPE_CHECKING:
    from rwmspec.manager import Registry

Severity = Literal["error", "warning"]
FORMATS = ("full", "concise", "json", "github")

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


@attrs.frozen(kw_only=False)
class Diagnostic:
    """One problem. ``path`` is the TOML key path (strings for keys, ints for array indices)."""

    code: str
    message: str
    path: tuple[str | int, ...] = attrs.field(default=(), converter=tuple)
    file: str | None = None
    line: int | None = None
    col: int | None = None
    hint: str | None = None
    severity: Severity = "error"
    #: where the offending value came from when that is not the file being checked
    #: (``extends specs/base/x.toml``, ``overlay ...``, ``--set a.b=1``, ``default``)
    origin: str | None = None

    @property
    def dotted_path(self) -> str:
        return dotted(self.path)

    @property
    def location(self) -> str:
        """``file:line:col`` as far as known; the origin (e.g. a ``--set`` argument) when there is no file."""
        if self.file is None:
            return self.origin or "rwmspec"
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.col is not None:
                parts.append(str(self.col))
        return ":".join(parts)

    def with_severity(self, severity: Severity) -> Diagnostic:
        return attrs.evolve(self, severity=severity)


class SpecError(Exception):
    """Bad input, carrying every diagnostic found. ``str()`` is the concise rendering."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__(render(self.diagnostics, "concise") or "invalid spec")


def dotted(path: Sequence[str | int]) -> str:
    """TOML dotted-key spelling of a path: ``rewards.feet_air_time.weight``, ``policy.actor_hidden_dims[1]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        key = part if _BARE_KEY.match(part) else json.dumps(part)
        out = f"{out}.{key}" if out else key
    return out


def has_errors(diags: Iterable[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diags)


def sort_key(d: Diagnostic) -> tuple:
    return (
        d.file or "",
        d.line if d.line is not None else 0,
        d.col if d.col is not None else 0,
        d.code,
        d.dotted_path,
        d.message,
    )


def suggest(name: str, choices: Iterable[str]) -> str | None:
    """The closest choice to a misspelt name, if any is close (the one did-you-mean rule of rwmspec)."""
    found = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` when a choice is close to ``name``, else ``""``: appended to a message."""
    close = suggest(name, choices)
    return f"; did you mean '{close}'?" if close else ""


def list_choices(choices: Iterable[str], limit: int = 16) -> str:
    """Choices for a hint, shortened after ``limit`` names so that a large registry keeps the line readable."""
    names = [str(c) for c in choices]
    if not names:
        return "(none)"
    if len(names) > limit:
        return ", ".join(names[:limit]) + f", ... ({len(names) - limit} more)"
    return ", ".join(names)


def failed_plugins(registry: Registry) -> str:
    """A note for hints about missing names: the plugins that failed to load may be the ones that provide them."""
    failed = [p.name for p in getattr(registry, "plugins", ()) if p.error]
    return f"; plugin(s) {', '.join(map(repr, failed))} failed to load (see `rwmspec plugins`)" if failed else ""


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception of a chain: what a plugin's failure message should name, not its wrapper."""
    while exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return exc


# ----------------------------------------------------------------------------------------------------------------------
# renderers
# ----------------------------------------------------------------------------------------------------------------------
def render(
    diags: Iterable[Diagnostic], fmt: str = "concise", sources: Mapping[str, str] | None = None, *, color: bool = False
) -> str:
    """Render diagnostics in ``fmt`` (one of ``FORMATS``). ``sources`` maps file names to their text (full format)."""
    diags = list(diags)
    if fmt == "concise":
        return "".join(render_concise(d) + "\n" for d in diags)
    if fmt == "full":
        return "".join(render_full(d, sources or {}, color=color) + "\n" for d in diags)
    if fmt == "json":
        return json.dumps([to_json(d) for d in diags], indent=2) + "\n"
    if fmt == "github":
        return "".join(render_github(d) + "\n" for d in diags)
    raise ValueError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _head(d: Diagnostic) -> str:
    return f"{d.dotted_path}: {d.message}" if d.path else d.message


def render_concise(d: Diagnostic) -> str:
    text = f"{d.location}: {d.severity}[{d.code}] {_head(d)}"
    if d.hint:
        text += f" (help: {d.hint})"
    return text


def to_json(d: Diagnostic) -> dict:
    return {
        "code": d.code,
        "severity": d.severity,
        "message": d.message,
        "path": d.dotted_path,
        "path_parts": list(d.path),
        "file": d.file,
        "line": d.line,
        "col": d.col,
        "hint": d.hint,
        "origin": d.origin,
    }


def _gh_escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_escape_property(text: str) -> str:
    return _gh_escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(d: Diagnostic) -> str:
    props = []
    if d.file:
        props.append(f"file={_gh_escape_property(d.file)}")
        if d.line is not None:
            props.append(f"line={d.line}")
            if d.col is not None:
                props.append(f"col={d.col}")
    props.append(f"title={_gh_escape_property(f'rwmspec ({d.code})')}")
    message = _head(d)
    if d.hint:
        message += f"\nhelp: {d.hint}"
    if d.origin:
        message += f"\nnote: value from {d.origin}"
    return f"::{d.severity} {','.join(props)}::{_gh_escape_data(message)}"


_VALUE_END = re.compile(r"[\s,\]\}#]")


def _span_width(line: str, col0: int) -> int:
    """Width of the TOML token starting at ``col0`` (a string, a bare value, or one bracket)."""
    if col0 >= len(line):
        return 1
    ch = line[col0]
    if ch in "\"'":
        triple = line.startswith(ch * 3, col0)
        quote = ch * 3 if triple else ch
        i = col0 + len(quote)
        while i < len(line):
            if ch == '"' and line[i] == "\\":
                i += 2
                continue
            if line.startswith(quote, i):
                return i + len(quote) - col0
            i += 1
        return len(line) - col0
    if ch in "[{":
        return 1
    m = _VALUE_END.search(line, col0)
    end = m.start() if m else len(line)
    return max(1, end - col0)


_STYLES = {"error": "\x1b[1;31m", "warning": "\x1b[1;33m", "bold": "\x1b[1m", "blue": "\x1b[1;34m", "reset": "\x1b[0m"}


def render_full(d: Diagnostic, sources: Mapping[str, str], *, color: bool = False) -> str:
    """A ruff/rustc-style block: header, ``-->`` location, the source line with a caret, help and note lines."""

    def style(text: str, name: str) -> str:
        return f"{_STYLES[name]}{text}{_STYLES['reset']}" if color else text

    lines = [style(f"{d.severity}[{d.code}]", d.severity) + style(f": {_head(d)}", "bold")]
    source = sources.get(d.file) if d.file else None
    src_lines = source.splitlines() if source is not None else []
    gutter_width = len(str(d.line)) if d.line is not None else 1
    pad = " " * gutter_width
    lines.append(f"{pad}{style('-->', 'blue')} {d.location}")
    if d.line is not None and 1 <= d.line <= len(src_lines):
        text = src_lines[d.line - 1].expandtabs(1)
        bar = style("|", "blue")
        lines.append(f"{pad} {bar}")
        lines.append(f"{style(str(d.line).rjust(gutter_width), 'blue')} {bar} {text}")
        if d.col is not None:
            col0 = d.col - 1
            caret = " " * col0 + "^" * _span_width(text, col0)
            lines.append(f"{pad} {bar} {style(caret, d.severity)}")
        lines.append(f"{pad} {bar}")
    if d.hint:
        lines.append(f"{pad} {style('=', 'blue')} {style('help', 'bold')}: {d.hint}")
    if d.origin and d.file is not None:  # without a file, the location line already names the origin
        lines.append(f"{pad} {style('=', 'blue')} {style('note', 'bold')}: value from {d.origin}")
    return "\n".join(lines) + "\n"


def summary(diags: Sequence[Diagnostic], files: int) -> str:
    """``Found 2 errors and 1 warning in 3 files.``"""
    errors = sum(d.severity == "error" for d in diags)
    warnings = len(diags) - errors

    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    if not diags:
        return f"All checks passed ({plural(files, 'file')})."
    return f"Found {plural(errors, 'error')} and {plural(warnings, 'warning')} in {plural(files, 'file')}."
