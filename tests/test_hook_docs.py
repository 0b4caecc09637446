"""Every plugin hook has its own section in docs/plugins.md, and every hook section there names a hook that exists.

A hook is only usable by plugin authors once it is documented; the test makes adding one without docs fail.
"""

from __future__ import annotations

import inspect
import re

from rwmspec import hookspecs

from helpers import ROOT

PLUGINS_DOC = ROOT / "docs" / "plugins.md"
FENCED_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
#: a heading naming a hook as a call, e.g. "### `rwmspec_robots()`"
HOOK_HEADING = re.compile(r"^#+ .*?\b(rwmspec_\w+)\(", re.MULTILINE)


def hook_names() -> set[str]:
    # pluggy marks each hookspec function with "<project>_spec"
    return {name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "rwmspec_spec")}


def documented_hooks() -> set[str]:
    # code blocks hold example plugins, whose comments may look like headings
    text = FENCED_BLOCK.sub("", PLUGINS_DOC.read_text())
    return set(HOOK_HEADING.findall(text))


def test_hookspecs_are_found():
    assert {"rwmspec_robots", "rwmspec_term_kinds", "rwmspec_backends"} <= hook_names()


def test_every_hook_has_a_section_in_the_plugin_docs():
    missing = sorted(hook_names() - documented_hooks())
    assert not missing, f"hooks without a '### `name()`' section in {PLUGINS_DOC.relative_to(ROOT)}: {missing}"


def test_every_hook_section_names_an_existing_hook():
    stale = sorted(documented_hooks() - hook_names())
    assert not stale, f"{PLUGINS_DOC.relative_to(ROOT)} documents hooks that rwmspec/hookspecs.py lacks: {stale}"
