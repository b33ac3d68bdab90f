"""The package layout is enforced: import-linter's contracts in pyproject.toml ([tool.importlinter])
hold for the code, and a deliberate violation in a copy of the package is reported."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]


def lint_imports(where: Path) -> subprocess.CompletedProcess:
    """`lint-imports` with the python running the tests, on the package found first from `where`."""
    env = {**os.environ, "PYTHONPATH": str(where)}
    return subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
         "--no-logo", "--no-cache", "pyproject.toml"],
        cwd=where, env=env, capture_output=True, text=True, timeout=300,
    )


def test_the_contracts_are_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    contracts = [c["name"] for c in CONFIG["contracts"]]
    for name in contracts:
        assert f"{name} KEPT" in result.stdout
    assert f"Contracts: {len(contracts)} kept, 0 broken." in result.stdout


def test_every_subpackage_is_a_layer():
    (layers,) = [c["layers"] for c in CONFIG["contracts"] if c["type"] == "layers"]
    packages = {p.name for p in (ROOT / "crmmetrics").iterdir() if (p / "__init__.py").is_file()}
    assert sorted(packages) == sorted(layer.removeprefix("crmmetrics.") for layer in layers)


def test_a_violation_is_reported(tmp_path):
    shutil.copytree(ROOT / "crmmetrics", tmp_path / "crmmetrics", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    periods = tmp_path / "crmmetrics" / "core" / "periods.py"
    periods.write_text(periods.read_text(encoding="utf-8") + "\nfrom crmmetrics.store.store import Store\n", encoding="utf-8")
    page = tmp_path / "crmmetrics" / "readers" / "page.py"
    page.write_text(page.read_text(encoding="utf-8") + "\nfrom sqlmodel import select\n", encoding="utf-8")

    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Contracts: 0 kept, 2 broken." in result.stdout
    assert "crmmetrics.core is not allowed to import crmmetrics.store" in result.stdout
    assert "crmmetrics.core.periods -> crmmetrics.store.store" in result.stdout
    assert "crmmetrics.readers.page -> sqlmodel" in result.stdout


#: What a plugin may import from crmmetrics (docs/plugins.md, "Package layout: what a plugin imports").
PUBLIC = ("crmmetrics", "crmmetrics.kpi", "crmmetrics.kpi.sql", "crmmetrics.kpi.customer_value", "crmmetrics.kpi.clv",
          "crmmetrics.testing")


def crmmetrics_imports(source: str, template: bool = False) -> set[str]:
    """The crmmetrics modules a file imports; a scaffold template (placeholders, so not Python
    yet) by its import lines."""
    import ast
    import re

    if template:
        lines = re.findall(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", source, re.MULTILINE)
        return {name for pair in lines for name in pair if name == "crmmetrics" or name.startswith("crmmetrics.")}
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "crmmetrics" or name.startswith("crmmetrics.")}


def test_the_plugins_the_example_and_the_scaffold_use_only_the_public_api():
    files = [*(ROOT / "plugins").glob("*.py"), *(ROOT / "examples").rglob("*.py"),
             *(ROOT / "crmmetrics" / "cli" / "scaffold_template").rglob("*.py.tmpl")]
    assert len(files) >= 8
    private = {
        str(path.relative_to(ROOT)): sorted(crmmetrics_imports(path.read_text(encoding="utf-8"), path.suffix == ".tmpl") - set(PUBLIC))
        for path in files
    }
    assert {path: names for path, names in private.items() if names} == {}
    assert crmmetrics_imports("from crmmetrics.store.store import Store\nimport crmmetrics.kpi") == {
        "crmmetrics.store.store", "crmmetrics.kpi"}
    assert crmmetrics_imports("from crmmetrics import hookimpl\nfrom crmmetrics.core.schema import x\n", True) == {
        "crmmetrics", "crmmetrics.core.schema"}
