"""The one strict converter: no silent conversion, and a structuring helper that reports every problem at once."""

from __future__ import annotations

import attrs
import pytest

from rwmspec.diagnostics import SpecError
from rwmspec.spec.convert import converter, structure


@attrs.define(kw_only=True)
class Options:
    num_threads: int = 0
    mode: str = "fast"
    gains: tuple[float, float] = (1.0, 2.0)


def test_the_converter_is_shared_and_strict():
    assert converter() is converter()
    with pytest.raises(ExceptionGroup):  # cattrs groups every problem; "4" is never read as 4
        converter().structure({"num_threads": "4"}, Options)


def test_structure_returns_the_instance():
    assert structure({"num_threads": 4, "gains": [0.5, 1]}, Options) == Options(num_threads=4, gains=(0.5, 1.0))


def test_structure_reports_every_problem_with_its_path():
    with pytest.raises(SpecError) as err:
        structure(
            {"num_thread": 4, "mode": 1, "gains": [1.0]},
            Options,
            path=("backend", "options"),
            code="RWM213",
            what="option",
        )
    found = {(d.code, d.dotted_path): d.message for d in err.value.diagnostics}
    assert found == {
        ("RWM213", "backend.options.num_thread"): "unknown option 'num_thread'; did you mean 'num_threads'?",
        ("RWM213", "backend.options.mode"): "expected a string, got the integer 1",
        ("RWM213", "backend.options.gains"): "expected an array of 2 numbers, got 1 value",
    }
