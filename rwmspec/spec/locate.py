"""Where each key of a TOML document is written: a key path -> (line, column) index.

TOML parsers (tomli included) return plain dicts without positions, so diagnostics could not point at the offending
line. This module scans the source once more, after tomli has accepted it, and records for every key path the
position of the key and of its value: table headers, ``[[array]]`` headers (with their element index), dotted keys,
inline tables and array elements. Lookups of paths that are not written (a missing key, a value that came from a
default) fall back to the nearest enclosing table.

The scanner trusts the document to be valid TOML (it is only run after tomli parsed it) and is lenient otherwise.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

import attrs
import tomli

Path = tuple[str | int, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_WS = " \t"


@attrs.frozen
class Span:
    """A 1-based position; ``end_col`` is the exclusive end column when the token ends on the same line."""

    line: int
    col: int
    end_col: int | None = None


@attrs.frozen
class KeyLocation:
    """Position of a key (or table header key) and of its value (None for tables opened by a header)."""

    key: Span
    value: Span | None = None


@attrs.frozen
class Location:
    line: int
    col: int
    #: True when the path itself is written in the file; False for a fallback to an enclosing table
    exact: bool


class _Scanner:
    def __init__(self, text: str):
        self.text = text
        self.n = len(text)
        self.pos = 0
        self.line_starts = [0] + [m.end() for m in re.finditer(r"\n", text)]
        self.index: dict[Path, KeyLocation] = {}
        #: array-of-tables path (indices resolved) -> index of its last element
        self.aot: dict[Path, int] = {}

    # -------------------------------------------------------------------------------------------- positions
    def span(self, start: int, end: int | None = None) -> Span:
        line0 = bisect.bisect_right(self.line_starts, start) - 1
        col = start - self.line_starts[line0] + 1
        end_col = None
        if end is not None and bisect.bisect_right(self.line_starts, max(start, end - 1)) - 1 == line0:
            end_col = end - self.line_starts[line0] + 1
        return Span(line0 + 1, col, end_col)

    def peek(self, s: str) -> bool:
        return self.text.startswith(s, self.pos)

    def skip_ws(self) -> None:
        while self.pos < self.n and self.text[self.pos] in _WS:
            self.pos += 1

    def skip_ws_nl_comments(self) -> None:
        while self.pos < self.n:
            ch = self.text[self.pos]
            if ch in " \t\r\n":
                self.pos += 1
            elif ch == "#":
                nl = self.text.find("\n", self.pos)
                self.pos = self.n if nl < 0 else nl
            else:
                return

    def skip_to_line_end(self) -> None:
        nl = self.text.find("\n", self.pos)
        self.pos = self.n if nl < 0 else nl + 1

    # -------------------------------------------------------------------------------------------- keys
    def parse_key(self) -> list[tuple[str, Span]]:
        """A dotted key: ``a.b."c d"``; returns the parts with their spans."""
        parts = []
        while True:
            self.skip_ws()
            start = self.pos
            ch = self.text[self.pos] if self.pos < self.n else ""
            if ch == '"':
                end = self._basic_string_end(self.pos)
                raw = self.text[start:end]
                name = tomli.loads(f"k = {raw}")["k"]
                self.pos = end
            elif ch == "'":
                end = self.text.index("'", self.pos + 1) + 1
                name = self.text[start + 1 : end - 1]
                self.pos = end
            else:
                m = _BARE.match(self.text, self.pos)
                if not m:
                    raise ValueError(f"no key at offset {self.pos}")
                name = m.group(0)
                self.pos = m.end()
            parts.append((name, self.span(start, self.pos)))
            self.skip_ws()
            if self.peek("."):
                self.pos += 1
                continue
            return parts

    def _basic_string_end(self, start: int) -> int:
        i = start + 1
        while i < self.n:
            ch = self.text[i]
            if ch == "\\":
                i += 2
                continue
            if ch == '"':
                return i + 1
            i += 1
        return self.n

    def resolve(self, parts: Sequence[str]) -> Path:
        """A header's key path with the current element index inserted after each array-of-tables prefix."""
        out: Path = ()
        for name in parts:
            out = (*out, name)
            if out in self.aot:
                out = (*out, self.aot[out])
        return out

    def record(self, path: Path, key: Span, value: Span | None, *, overwrite: bool = True) -> None:
        if overwrite or path not in self.index:
            self.index[path] = KeyLocation(key, value)

    # -------------------------------------------------------------------------------------------- document
    def document(self) -> dict[Path, KeyLocation]:
        table: Path = ()
        while True:
            self.skip_ws_nl_comments()
            if self.pos >= self.n:
                return self.index
            if self.peek("[["):
                self.pos += 2
                parts = self.parse_key()
                self.pos = self.text.index("]]", self.pos) + 2
                names = [p for p, _ in parts]
                parent = self.resolve(names[:-1])
                array_path = (*parent, names[-1])
                idx = self.aot.get(array_path, -1) + 1
                self.aot[array_path] = idx
                self.record(array_path, parts[-1][1], None, overwrite=False)
                table = (*array_path, idx)
                self.record(table, parts[-1][1], None)
                self._record_parents(parent, parts[:-1])
                self.skip_to_line_end()
            elif self.peek("["):
                self.pos += 1
                parts = self.parse_key()
                self.pos = self.text.index("]", self.pos) + 1
                table = self.resolve([p for p, _ in parts])
                self.record(table, parts[-1][1], None)
                self._record_parents(table[:-1], parts[:-1])
                self.skip_to_line_end()
            else:
                self.keyval(table)
                self.skip_to_line_end()

    def _record_parents(self, path: Path, parts: Sequence[tuple[str, Span]]) -> None:
        """Tables named only as prefixes of a header (``a`` in ``[a.b]``) point at their first mention."""
        named = [p for p in path if isinstance(p, str)]
        for i in range(len(parts)):
            prefix = self.resolve(named[: i + 1])
            self.record(prefix, parts[i][1], None, overwrite=False)

    def keyval(self, table: Path) -> None:
        parts = self.parse_key()
        self.skip_ws()
        self.pos += 1  # '='
        self.skip_ws()
        path = table
        for name, span in parts[:-1]:
            path = (*path, name)
            self.record(path, span, None, overwrite=False)
        path = (*path, parts[-1][0])
        start = self.pos
        self.value(path)
        self.record(path, parts[-1][1], self.span(start, self.pos))

    # -------------------------------------------------------------------------------------------- values
    def value(self, path: Path) -> None:
        t = self.text
        if t.startswith('"""', self.pos):
            end = self.pos + 3
            while True:
                end = t.index('"""', end)
                backslashes = 0
                while t[end - 1 - backslashes] == "\\":
                    backslashes += 1
                if backslashes % 2 == 0:
                    break
                end += 1
            while t.startswith('"', end + 3):  # up to two quotes may close the content
                end += 1
            self.pos = end + 3
        elif t.startswith("'''", self.pos):
            end = t.index("'''", self.pos + 3)
            while t.startswith("'", end + 3):
                end += 1
            self.pos = end + 3
        elif self.peek('"'):
            self.pos = self._basic_string_end(self.pos)
        elif self.peek("'"):
            self.pos = t.index("'", self.pos + 1) + 1
        elif self.peek("{"):
            self.inline_table(path)
        elif self.peek("["):
            self.array(path)
        else:
            start = self.pos
            while self.pos < self.n and t[self.pos] not in ",]}#\r\n":
                self.pos += 1
            # a local date-time may contain one space; trailing spaces are not part of the value
            while self.pos > start and t[self.pos - 1] in _WS:
                self.pos -= 1

    def inline_table(self, path: Path) -> None:
        self.pos += 1  # '{'
        while True:
            self.skip_ws_nl_comments()
            if self.peek("}"):
                self.pos += 1
                return
            if self.peek(","):
                self.pos += 1
                continue
            self.keyval(path)

    def array(self, path: Path) -> None:
        self.pos += 1  # '['
        i = 0
        while True:
            self.skip_ws_nl_comments()
            if self.peek("]"):
                self.pos += 1
                return
            if self.peek(","):
                self.pos += 1
                continue
            start = self.pos
            element = (*path, i)
            self.value(element)
            span = self.span(start, self.pos)
            self.record(element, span, span)
            i += 1


def index_toml(text: str) -> dict[Path, KeyLocation]:
    """Key path -> positions of every key, table and array element in a valid TOML document."""
    return _Scanner(text).document()


def locate(index: dict[Path, KeyLocation], path: Sequence[str | int], *, key: bool = False) -> Location:
    """Best position for ``path``: its value (or, with ``key=True``, its key); else the nearest enclosing table.

    The root of the document is line 1, column 1.
    """
    p = tuple(path)
    exact = True
    while p:
        loc = index.get(p)
        if loc is not None:
            span = loc.key if (key or not exact or loc.value is None) else loc.value
            return Location(span.line, span.col, exact)
        p = p[:-1]
        exact = False
    return Location(1, 1, not path)
