"""The state of one compilation: the spec, the registry, what is resolved so far and the diagnostics found.

Every rule module (``terms``, ``observations``, ``stages``, ``imagination``, ``robot``) is a set of functions of a
``Compilation``; ``rwmspec.compile.compile_plan`` runs them in order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from rwmspec.diagnostics import Diagnostic
from rwmspec.manager import Registry
from rwmspec.spec.convert import converter
from rwmspec.spec.model import Spec
from rwmspec.types import RobotDef, StageDef, TermKind

Path_ = tuple[Any, ...]


@attrs.frozen
class ResolvedTerm:
    """A term whose kind was found and whose params structured cleanly."""

    kind: TermKind
    params: Any  #: instance of ``kind.params_type`` or None
    params_dict: dict[str, Any]
    path: Path_


class Compilation:
    """One spec being compiled; rule functions read it, add what they resolve and report through ``error``."""

    def __init__(self, spec: Spec, registry: Registry, spec_file: Path):
        self.spec = spec
        self.registry = registry
        self.spec_file = Path(spec_file)
        self.diagnostics: list[Diagnostic] = []
        self.robot: RobotDef | None = None
        self.stage: StageDef | None = None
        #: term path -> its resolved kind and params, for the rules that read several tables
        self.resolved: dict[Path_, ResolvedTerm] = {}
        #: contact group -> (threshold, term path) of the first term that set it
        self.thresholds: dict[str, tuple[float, Path_]] = {}

    def error(self, code: str, message: str, path: Path_, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, path=tuple(path), hint=hint))

    @property
    def failed(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)

    @property
    def imagines(self) -> bool:
        """The stage learns in imagination (``StageDef.imagination``)."""
        return self.stage is not None and self.stage.imagination


def plain(options: Any) -> dict[str, Any]:
    """Options as a dict: they may arrive as one or as the plugin's structured options object."""
    if attrs.has(type(options)):
        return converter().unstructure(options)
    return dict(options or {})
