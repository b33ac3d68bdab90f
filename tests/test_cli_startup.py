"""The CLI starts without the heavy parts: `crmmetrics --help` imports no command module, no
built-in plugin, and none of SQLAlchemy, SQLModel, numpy or scipy (checked with
``python -X importtime``, not with a clock; benchmarks/bench_cli.py prints the time)."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

HEAVY = ("scipy", "numpy", "sqlalchemy", "sqlmodel", "pandas", "crmmetrics_plugins", "crmmetrics.cli.core")


# sys.modules at exit, as well as the importtime log: importlib.import_module (how commands and
# entry points are loaded) bypasses the importtime log, sys.modules sees everything.
RUN = """
import atexit, json, runpy, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv[0] = "crmmetrics"
runpy.run_module("crmmetrics", run_name="__main__", alter_sys=True)
"""


def imported_modules(tmp_path, *args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    out = tmp_path / "modules.json"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", RUN, str(out), *args], capture_output=True, text=True, timeout=120
    )
    modules = {
        line.split("|")[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    modules.discard("imported package")  # the header line
    return result, modules | set(json.loads(out.read_text()))


@pytest.mark.parametrize("args", [("--help",), ("--version",)])
def test_help_and_version_import_nothing_heavy(tmp_path, args):
    result, modules = imported_modules(tmp_path, *args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "click" in modules and "crmmetrics.cli" in modules  # the measurement sees imports at all
    heavy = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == []


def test_help_lists_every_builtin_command_with_its_help(tmp_path):
    result, _ = imported_modules(tmp_path, "--help")
    lines = [line.split() for line in result.stdout.splitlines()]
    from crmmetrics.cli import COMMANDS

    for name in COMMANDS:
        assert any(words[:1] == [name] and len(words) > 1 for words in lines), name


def test_command_table_matches_the_modules():
    """COMMANDS names every top-level command, its first help paragraph, and exactly the modules
    that must be imported for it and its subcommands."""
    from crmmetrics.cli import COMMANDS, cli, import_command_modules

    import_command_modules()
    assert sorted(COMMANDS) == sorted(name for name in cli.commands if not name.startswith("_"))
    for name, command in cli.commands.items():
        assert command.help.split("\n\n")[0].strip() == COMMANDS[name].help, name
        commands = [command, *(command.commands.values() if isinstance(command, click.Group) else [])]
        modules = {c.callback.__module__.rsplit(".", 1)[1] for c in commands if c.callback is not None}
        assert modules == set(COMMANDS[name].modules), name


def test_a_named_command_imports_its_module_only_then(tmp_path):
    result, modules = imported_modules(tmp_path, "plugins", "new", "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "crmmetrics.cli.plugins" in modules and "crmmetrics.cli.dashboards" not in modules
    assert "Usage: crmmetrics plugins new" in result.stdout
