"""Fixtures shared by the test modules.

Helpers called with arguments are plain functions in ``helpers`` (paths, the CLI, tiny plans), ``term_helpers``
and ``world_model_helpers``; tests import them by module name, since pytest puts tests/ on ``sys.path``.
"""

from __future__ import annotations

import pytest

from rwmspec.manager import Registry, build_registry


@pytest.fixture(scope="module")
def registry() -> Registry:
    """The registry of the installed plugins, built once per test module."""
    return build_registry()
