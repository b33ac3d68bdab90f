"""The hooks are a public contract: each has a test of its own and is documented by its exact signature.

Adding a hook to crmmetrics/core/hookspecs.py without a test_hook_<name> in tests/test_hooks.py, or
without a section headed by its signature in docs/plugins.md, fails here.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from crmmetrics.compute.plugins import get_plugin_manager
from crmmetrics.core import hookspecs

ROOT = Path(__file__).resolve().parent.parent
HOOKS = sorted(
    (name, function)
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(function, "crmmetrics_spec")  # set by the @hookspec marker
)
HOOK_NAMES = [name for name, _ in HOOKS]


def test_the_hooks_are_the_plugin_managers():
    pm = get_plugin_manager()
    assert HOOK_NAMES == sorted(name for name, caller in vars(pm.hook).items() if caller.has_spec())
    assert "crmmetrics_metrics" in HOOK_NAMES


def _test_names() -> set[str]:
    tree = ast.parse((ROOT / "tests" / "test_hooks.py").read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_plugin_hook_has_a_test(hook):
    assert f"test_hook_{hook}" in _test_names(), f"tests/test_hooks.py has no test_hook_{hook}"


def _doc_headings() -> set[str]:
    lines = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8").splitlines()
    return {line.lstrip("#").strip().strip("`") for line in lines if line.startswith("#")}


@pytest.mark.parametrize("hook, function", HOOKS, ids=HOOK_NAMES)
def test_plugin_hook_is_documented_with_its_exact_signature(hook, function):
    signature = f"{hook}{inspect.signature(function)}"
    assert signature in _doc_headings(), f"docs/plugins.md has no section headed `{signature}`"


def test_docs_say_hook_signatures_only_grow():
    assert "Hook signatures only grow" in (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")


# --- The public names for plugin authors: crmmetrics and the KPI kit -------------------------


def _plugins_doc() -> str:
    return (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")


def _public_names():
    import crmmetrics
    from crmmetrics import kpi

    return [("crmmetrics", name) for name in crmmetrics.__all__] + [("crmmetrics.kpi", name) for name in kpi.__all__]


@pytest.mark.parametrize("module, name", _public_names(), ids=[f"{m}.{n}" for m, n in _public_names()])
def test_public_name_is_importable_and_documented(module, name):
    import importlib

    assert getattr(importlib.import_module(module), name) is not None
    # Named in backticks, alone or as the start of a call or signature: `Measure(table, ...)`.
    assert f"`{name}`" in _plugins_doc() or f"`{name}(" in _plugins_doc(), f"docs/plugins.md does not document {module}.{name}"


def test_the_kit_section_example_builds_a_definition():
    """The first example of "Defining a KPI with the KPI kit" runs and declares what it says."""
    section = _plugins_doc().split("## Defining a KPI with the KPI kit", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "docs/plugins.md", "exec"), namespace)
    (definition,) = namespace["crmmetrics_metrics"]()
    assert (definition.key, definition.dimensions, definition.needs) == ("shop_revenue_per_customer", ("segment",), ("orders",))
