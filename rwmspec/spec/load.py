"""Loading a spec: read TOML files, follow ``extends``, apply overlays and ``--set``, remember where values came from.

Precedence, highest first (documented in docs/spec.md):

1. ``--set dotted.key=value`` arguments, later ones winning;
2. ``--overlay FILE`` files, later ones winning (an overlay may itself ``extends`` a file, which applies first);
3. the spec file;
4. its ``extends`` chain, nearest first;
5. the defaults of the schema (rwmspec/spec/model.py).

Tables merge key by key; any other value (arrays included) is replaced as a whole. Every value keeps its
``Origin`` (file, line and column, or the ``--set`` argument, or "default"), which diagnostics and
``rwmspec show --origin`` report.

Paths inside a spec (``extends``, ``runner.*_from.spec``) are relative to the file that contains them.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs
import tomli

from rwmspec.diagnostics import Diagnostic
from rwmspec.spec.convert import RawProblem, converter
from rwmspec.spec.locate import KeyLocation, index_toml, locate
from rwmspec.spec.model import Spec
from rwmspec.spec.structure import TERM_TABLES, structure_spec

if TYPE_CHECKING:
    from rwmspec.manager import Registry

KeyPath = tuple[str | int, ...]
Source = Literal["spec", "extends", "overlay", "set", "default"]

#: versions of the spec language this loader reads
SCHEMA_VERSIONS = (1,)
#: values that are paths relative to the file they are written in
RELATIVE_PATHS: tuple[KeyPath, ...] = (("runner", "policy_from", "spec"), ("runner", "world_model_from", "spec"))
#: a file directly inside a folder with one of these names is a fragment: it is combined with others, never run
#: alone
FRAGMENT_FOLDERS = ("base", "overlays")


@attrs.frozen
class Origin:
    """Where one value of the merged spec came from."""

    source: Source
    file: str | None = None
    line: int | None = None
    col: int | None = None
    #: the ``--set`` argument, for source "set"
    text: str | None = None

    def __str__(self) -> str:
        if self.source == "set":
            return f"--set {self.text}"
        if self.source == "default" or self.file is None:
            return "default"
        where = self.file if self.line is None else f"{self.file}:{self.line}:{self.col}"
        return where if self.source == "spec" else f"{where} ({self.source})"


@attrs.define
class Layer:
    """One source of values: a file (spec, extends, overlay) or one ``--set`` argument."""

    source: Source
    raw: dict[str, Any]
    file: str | None = None
    text: str | None = None
    index: dict[KeyPath, KeyLocation] = attrs.field(factory=dict)

    @property
    def is_file(self) -> bool:
        return self.file is not None


@attrs.define
class LoadedSpec:
    """The result of loading: the structured spec (None on errors), the merged raw dict and every value's origin."""

    file: Path
    spec: Spec | None
    raw: dict[str, Any]
    origins: dict[KeyPath, Origin]
    diagnostics: list[Diagnostic]
    #: the spec with offending values replaced by defaults, so that semantic checks still run (None if impossible)
    partial: Spec | None = None
    #: key paths dropped to build ``partial``; later diagnostics below them are consequences, not new problems
    removed: list[KeyPath] = attrs.field(factory=list)
    #: display name -> text of every file read (for the full diagnostic format)
    sources: dict[str, str] = attrs.field(factory=dict)
    layers: list[Layer] = attrs.field(factory=list)
    #: key path -> index in ``layers`` of the layer that wrote it (tables: the highest-precedence file)
    where: dict[KeyPath, int] = attrs.field(factory=dict)
    #: the file is a fragment (under base/ or overlays/): only what it writes is checked
    fragment: bool = False
    #: display name of the spec file
    display: str = ""

    def locate(self, d: Diagnostic, *, key: bool = False) -> Diagnostic:
        """Fill file, line, column and origin of a diagnostic that carries only its key path."""
        if d.file is not None or d.origin is not None:
            return d
        p = tuple(d.path)
        while p and p not in self.where:
            p = p[:-1]
        if not p or self.layers[self.where[p]].source == "default":  # nothing written there: the spec file
            main = self.layers[self._main_layer()] if self.layers else None
            if main is None:
                return attrs.evolve(d, file=self.display or str(self.file))
            loc = locate(main.index, d.path, key=key)
            return attrs.evolve(d, file=main.file, line=loc.line, col=loc.col)
        layer = self.layers[self.where[p]]
        exact = p == tuple(d.path)
        origin = None
        if layer.source == "set":
            return attrs.evolve(d, origin=f"--set {layer.text}")
        if not exact and d.code not in ("RWM101", "RWM102") and self._has_default(tuple(d.path)):
            origin = "default"
        elif layer.source in ("extends", "overlay"):
            origin = f"{layer.source} {layer.file}"
        loc = locate(layer.index, d.path, key=key)
        return attrs.evolve(d, file=layer.file, line=loc.line, col=loc.col, origin=origin)

    def _main_layer(self) -> int:
        return next((i for i, layer in enumerate(self.layers) if layer.source == "spec"), 0)

    def _has_default(self, path: KeyPath) -> bool:
        spec = self.spec or self.partial
        if spec is None:
            return False
        node: Any = resolved_dict(spec)
        for part in path:
            in_table = isinstance(node, dict) and part in node
            in_array = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
            if not (in_table or in_array):
                return False
            node = node[part]
        return True

    def locate_all(self, diags: Iterable[Diagnostic]) -> list[Diagnostic]:
        return [self.locate(d, key=d.code == "RWM101") for d in diags]

    @property
    def files(self) -> list[str]:
        return [layer.file for layer in self.layers if layer.file is not None]


# ----------------------------------------------------------------------------------------------------------------------
# reading files
# ----------------------------------------------------------------------------------------------------------------------
def is_fragment(path: str | os.PathLike) -> bool:
    # the file's own folder only: a project that lives under a folder called base/ is not made of fragments
    return Path(path).parent.name in FRAGMENT_FOLDERS


def _read(
    display: str, sources: dict[str, str], diags: list[Diagnostic], *, at: Diagnostic | None = None
) -> Layer | None:
    """Read and parse one TOML file; problems go to ``diags`` (``at`` gives the location of the reference)."""
    try:
        text = Path(display).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if isinstance(exc, UnicodeDecodeError):
            reason = "not UTF-8 text"
        message = f"cannot read '{display}': {reason}"
        if at is not None:
            diags.append(
                attrs.evolve(
                    at,
                    code="RWM002",
                    message=message,
                    hint="paths in `extends` are relative to the file that contains them",
                )
            )
        else:
            diags.append(Diagnostic("RWM002", message, file=display))
        return None
    sources[display] = text
    try:
        raw = tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        msg = getattr(exc, "msg", str(exc))
        diags.append(
            Diagnostic(
                "RWM001",
                f"TOML syntax error: {msg}",
                file=display,
                line=getattr(exc, "lineno", None),
                col=getattr(exc, "colno", None),
            )
        )
        return None
    try:
        index = index_toml(text)
    except (ValueError, IndexError):  # positions are a convenience: diagnostics then point at line 1
        index = {}
    return Layer(source="spec", raw=raw, file=display, index=index)


def _chain(display: str, source: Source, sources: dict[str, str], diags: list[Diagnostic]) -> list[Layer]:
    """The file and its ``extends`` chain, base first. The file itself gets ``source``; its bases "extends"
    (or "overlay" for the bases of an overlay)."""
    layers: list[Layer] = []
    seen: list[str] = []
    current: str | None = display
    at: Diagnostic | None = None
    while current is not None:
        real = os.path.realpath(current)
        if real in seen:
            cycle = " -> ".join([*(layer.file for layer in layers), current])
            diags.append(
                attrs.evolve(
                    at,
                    code="RWM003",
                    message=f"cyclic extends: {cycle}",
                    hint="remove `extends` from the file meant to be the base",
                )
            )
            break
        seen.append(real)
        layer = _read(current, sources, diags, at=at)
        if layer is None:
            break
        layer.source = source if not layers else ("overlay" if source == "overlay" else "extends")
        layers.append(layer)
        experiment = layer.raw.get("experiment")
        target = experiment.get("extends") if isinstance(experiment, dict) else None
        if target is None:
            break
        loc = locate(layer.index, ("experiment", "extends"))
        at = Diagnostic("RWM002", "", ("experiment", "extends"), file=layer.file, line=loc.line, col=loc.col)
        if not isinstance(target, str):
            break  # structuring reports the wrong type
        current = os.path.normpath(os.path.join(os.path.dirname(current), target))
    return list(reversed(layers))


# ----------------------------------------------------------------------------------------------------------------------
# --set
# ----------------------------------------------------------------------------------------------------------------------
def parse_set(expr: str) -> tuple[KeyPath, Any]:
    """``dotted.key=value`` -> (key path, value). The value is TOML if it parses as TOML, else a string.

    :raises ValueError: with a message for users when the expression is malformed.
    """
    key, sep, value = expr.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"expected dotted.key=value, got '{expr}'")
    try:
        doc = tomli.loads(f"{key} = 0")
    except tomli.TOMLDecodeError:
        raise ValueError(f"'{key}' is not a valid TOML key (quote keys with dots or spaces: a.\"b c\".d)") from None
    path: KeyPath = ()
    node: Any = doc
    while isinstance(node, dict):
        ((name, node),) = node.items()
        path = (*path, name)
    value = value.strip()
    try:
        parsed = tomli.loads(f"v = {value}")["v"]
    except tomli.TOMLDecodeError:
        parsed = value
    return path, parsed


def _nest(path: KeyPath, value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(path):
        out = {part: out}
    return out


# ----------------------------------------------------------------------------------------------------------------------
# merging with origins
# ----------------------------------------------------------------------------------------------------------------------
def _merge(
    merged: dict[str, Any],
    layer: Layer,
    layer_no: int,
    where: dict[KeyPath, int],
    layers: list[Layer],
    path: KeyPath = (),
    node: dict[str, Any] | None = None,
) -> None:
    node = layer.raw if node is None else node
    for key, value in node.items():
        p = (*path, key)
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            if layer.is_file or p not in where:
                where[p] = layer_no
            _merge(merged[key], layer, layer_no, where, layers, p, value)
            continue
        for old in [q for q in where if q[: len(p)] == p]:
            del where[old]
        merged[key] = copy.deepcopy(value)
        _claim(value, p, layer_no, where)


def _claim(value: Any, path: KeyPath, layer_no: int, where: dict[KeyPath, int]) -> None:
    where[path] = layer_no
    if isinstance(value, dict):
        for k, v in value.items():
            _claim(v, (*path, k), layer_no, where)


def _leaves(node: Any, path: KeyPath = ()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    else:
        yield path, node


def _rebase_paths(merged: dict[str, Any], layers: list[Layer], where: dict[KeyPath, int], main: str) -> None:
    """Relative paths written in other files are rewritten relative to the main spec's folder."""
    for path in RELATIVE_PATHS:
        layer_no = where.get(path)
        if layer_no is None or not layers[layer_no].is_file or layers[layer_no].file == main:
            continue
        node: Any = merged
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        value = node.get(path[-1]) if isinstance(node, dict) else None
        if isinstance(value, str) and not os.path.isabs(value):
            target = os.path.join(os.path.dirname(layers[layer_no].file), value)
            node[path[-1]] = os.path.relpath(target, os.path.dirname(main) or ".")


# ----------------------------------------------------------------------------------------------------------------------
# the loader
# ----------------------------------------------------------------------------------------------------------------------
def _fragment_base(registry: Registry) -> dict[str, Any]:
    """Placeholders for the required keys a fragment leaves to the files it is combined with."""
    robots = sorted(getattr(registry, "robots", {}) or {})
    return {"experiment": {"name": "fragment", "stage": "pretrain"}, "robot": {"name": robots[0] if robots else ""}}


def load_spec(
    path: str | os.PathLike,
    overlays: Sequence[str | os.PathLike] = (),
    sets: Sequence[str] = (),
    registry: Registry | None = None,
    *,
    fragment: bool | None = None,
) -> LoadedSpec:
    """Load, merge and structure a spec. Never raises for bad input: problems are in ``.diagnostics``.

    :param path: the spec file.
    :param overlays: overlay files, applied in order after the spec.
    :param sets: ``dotted.key=value`` overrides, applied last.
    :param registry: the plugin registry (default: the installed plugins).
    :param fragment: check the file as a fragment (only what it writes); default: when it lies under a folder
        named ``base`` or ``overlays``.
    """
    if registry is None:
        from rwmspec.manager import get_registry

        registry = get_registry()
    display = os.fspath(path)
    fragment = is_fragment(display) if fragment is None else fragment
    sources: dict[str, str] = {}
    diags: list[Diagnostic] = []
    layers = _chain(display, "spec", sources, diags)
    for overlay in overlays:
        layers += _chain(os.fspath(overlay), "overlay", sources, diags)
    for expr in sets:
        try:
            key, value = parse_set(expr)
        except ValueError as exc:
            diags.append(
                Diagnostic(
                    "RWM004",
                    str(exc),
                    origin=f"--set {expr}",
                    hint="write --set table.key=value, e.g. --set backend.num_envs=64",
                )
            )
            continue
        layers.append(Layer(source="set", raw=_nest(key, value), text=expr))
    if fragment:
        layers.insert(0, Layer(source="default", raw=_fragment_base(registry)))

    loaded = LoadedSpec(
        file=Path(display),
        spec=None,
        raw={},
        origins={},
        diagnostics=diags,
        sources=sources,
        layers=layers,
        fragment=fragment,
        display=display,
    )
    if any(d.code in ("RWM001", "RWM002", "RWM003") for d in diags):
        return loaded  # a file is missing from the chain: the merged spec would be misleading

    merged: dict[str, Any] = {}
    where: dict[KeyPath, int] = {}
    for i, layer in enumerate(layers):
        _merge(merged, layer, i, where, layers)
    _rebase_paths(merged, layers, where, display)
    loaded.raw, loaded.where = merged, where

    version = merged.get("schema_version", SCHEMA_VERSIONS[-1])
    if isinstance(version, int) and not isinstance(version, bool) and version not in SCHEMA_VERSIONS:
        loaded.diagnostics.append(
            loaded.locate(
                Diagnostic(
                    "RWM005",
                    f"schema_version {version} is not supported (this rwmspec reads "
                    f"{', '.join(map(str, SCHEMA_VERSIONS))})",
                    ("schema_version",),
                    hint="use schema_version = 1, or the rwmspec release the spec was written for",
                )
            )
        )
        return loaded

    result = structure_spec(merged, registry)
    loaded.spec, loaded.partial, loaded.removed = result.spec, result.partial, result.removed
    loaded.diagnostics += [_locate_problem(loaded, rp) for rp in result.problems]
    loaded.origins = _origins(loaded)
    return loaded


def _locate_problem(loaded: LoadedSpec, rp: RawProblem) -> Diagnostic:
    return loaded.locate(rp.diagnostic, key=rp.key)


def _origins(loaded: LoadedSpec) -> dict[KeyPath, Origin]:
    """Origin of every leaf of the resolved spec (written values and defaults)."""
    origins: dict[KeyPath, Origin] = {}
    for path, layer_no in loaded.where.items():
        layer = loaded.layers[layer_no]
        if layer.source == "set":
            origins[path] = Origin("set", text=layer.text)
        elif layer.source == "default" or layer.file is None:
            origins[path] = Origin("default")
        else:
            loc = locate(layer.index, path)
            origins[path] = Origin(layer.source, layer.file, loc.line, loc.col)
    spec = loaded.spec or loaded.partial
    if spec is not None:
        for path, _ in _leaves(resolved_dict(spec)):
            origins.setdefault(path, Origin("default"))
    return origins


def resolved_dict(spec: Spec) -> dict[str, Any]:
    """The spec as the TOML tables a user writes: term params flat in their tables, no ``extends``, no nulls."""
    data = converter().unstructure(spec)
    data["experiment"].pop("extends", None)
    term_tables = [data.get(table, {}) for table in TERM_TABLES]
    term_tables += [g.get("terms", {}) for g in data.get("observations", {}).values()]
    for terms in term_tables:
        for name, term in terms.items():
            params = term.pop("params", None) or {}
            terms[name] = {**term, **params}
    return _drop_none(data)


def _drop_none(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _drop_none(v) for k, v in node.items() if v is not None}
    if isinstance(node, list | tuple):
        return [_drop_none(v) for v in node]
    return node
