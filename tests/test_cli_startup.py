"""The CLI starts without the heavy parts: `crmmetrics --help` imports no command module, no
built-in plugin, and none of SQLAlchemy, SQLModel, numpy or scipy; the help of every command
imports none of them either, and the admin commands that compute nothing import only what
their work needs (checked with ``python -X importtime`` and ``sys.modules``, not with a clock;
benchmarks/bench_cli.py prints the times)."""

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


def _heavy(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in names))


def _command_paths() -> list[tuple[str, ...]]:
    """Every built-in command and subcommand, as its arguments."""
    from crmmetrics.cli import cli, import_command_modules

    import_command_modules()
    paths = []
    for name, command in sorted(cli.commands.items()):
        paths.append((name,))
        paths += [(name, sub) for sub in sorted(getattr(command, "commands", {}))]
    return paths


# What a help page needs is click and the command's own module: none of the service, the config
# model (pydantic), the store (SQLModel, Alembic), the exporter or the plugins.
HELP_HEAVY = (*(h for h in HEAVY if h != "crmmetrics.cli.core"), "pydantic", "alembic", "prometheus_client", "crmmetrics.compute", "crmmetrics.store", "crmmetrics.serve")
# What computing needs and listing does not: numpy, scipy, the CLV models and per-customer helpers.
COMPUTE_HEAVY = ("scipy", "numpy", "pandas", "crmmetrics.kpi.clv", "crmmetrics.kpi.customer_value")


@pytest.mark.parametrize("path", _command_paths(), ids=" ".join)
def test_the_help_of_every_command_imports_nothing_heavy(tmp_path, path):
    from crmmetrics.cli import COMMANDS

    result, modules = imported_modules(tmp_path, *path, "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"Usage: crmmetrics {' '.join(path)}" in result.stdout
    assert f"crmmetrics.cli.{COMMANDS[path[0]].modules[0]}" in modules  # the measurement sees the command's import
    # the defaults shown (Grafana's URL, the scrape job, the folder) come from readers.deployment,
    # not from the dashboard and alert generators
    assert _heavy(modules, (*HELP_HEAVY, "crmmetrics.readers.dashboards", "crmmetrics.readers.alerts")) == []


CONFIG = """\
[source]
url = "sqlite:///{source}"
[store]
url = "sqlite:///{store}"
[kpis.cfg_orders]
kind = "measure"
name = "Orders"
process = "value_creation"
perspective = "customer"
value_lens = "customer_value"
unit = "count"
direction = "higher_is_better"
measure = {{ table = "orders", agg = "count" }}
[kpis.cfg_orders.standard]
target = 100
red = 10
green = 50
[kpis.cfg_revenue]
name = "Revenue"
process = "value_creation"
perspective = "financial"
value_lens = "shareholder_value"
unit = "currency"
direction = "higher_is_better"
sql = "SELECT sum(net_revenue) AS value FROM orders WHERE ordered_at >= :start AND ordered_at < :end"
"""

# The admin commands that compute nothing, and what each must not import. Listing metrics and
# plugins builds the registry (the plugins' definitions, checked against the light declaration
# of the canonical tables; the config file's tables for a config) but builds no SQL, fits no
# model and opens no store; `config check` opens the source but no store (no SQLModel); the
# standards read the store's tables (SQLModel); the store's revision is read with SQLAlchemy
# alone (neither the tables nor Alembic), and the revisions it knows from their files.
# Building the registry imports neither the SQLAlchemy tables nor the kit's SQL functions, and
# SQLAlchemy not at all: the config model checks database URLs with SQLAlchemy's grammar, and a
# SQL KPI's query (its bound parameters, the tables it reads) without building its statement.
# Reading the config needs neither pydantic (crmmetrics.core.config_fields checks its tables)
# nor tomlkit (only the commands that edit the file use it).
LISTING_HEAVY = (*COMPUTE_HEAVY, "sqlalchemy", "sqlmodel", "alembic", "prometheus_client", "crmmetrics.store",
                 "crmmetrics.core.schema", "crmmetrics.kpi.sql_functions", "pydantic", "tomlkit")
# No config file: no config model, and none of SQLAlchemy executed. Its packages, not the name
# "sqlalchemy", are what is asserted: they are imported only when sqlalchemy/__init__ runs.
WITHOUT_CONFIG_HEAVY = (*LISTING_HEAVY, "crmmetrics.core.config", "sqlalchemy.sql", "sqlalchemy.engine")
ADMIN = [  # (arguments, what the output shows, modules it must not import)
    pytest.param(("metrics", "list"), "vc_aov ", WITHOUT_CONFIG_HEAVY, id="metrics list"),
    pytest.param(("metrics", "list", "--config", "{config}"), "cfg_orders ", LISTING_HEAVY, id="metrics list --config"),
    pytest.param(("plugins",), "value_creation 0.2.0", WITHOUT_CONFIG_HEAVY, id="plugins"),
    pytest.param(("plugins", "--config", "{config}"), "config ([kpis.*]): 2 metrics", LISTING_HEAVY, id="plugins --config"),
    pytest.param(("config", "check", "{config}"), ": OK (", (*COMPUTE_HEAVY, "prometheus_client", "sqlmodel", "alembic", "crmmetrics.store.store"), id="config check"),
    pytest.param(("standards", "list", "--config", "{config}"), "cfg_orders ", (*COMPUTE_HEAVY, "prometheus_client", "alembic"), id="standards list"),
    pytest.param(("store", "current", "--config", "{config}"), "(head)",
                 (*COMPUTE_HEAVY, "crmmetrics_plugins", "crmmetrics.compute", "sqlmodel", "pydantic", "alembic", "crmmetrics.store.store"), id="store current"),
    pytest.param(("store", "history"), "baseline", (*COMPUTE_HEAVY, "crmmetrics_plugins", "crmmetrics.compute", "sqlalchemy", "alembic"), id="store history"),
]


@pytest.fixture
def admin_config(tmp_path, crm_db):
    config = tmp_path / "crmmetrics.toml"
    config.write_text(CONFIG.format(source=tmp_path / "crm.sqlite", store=tmp_path / "store.sqlite"), encoding="utf-8")
    # a run creates the store and records the default standards (the source is empty: no data)
    ran = subprocess.run([sys.executable, "-m", "crmmetrics", "run", "--metric", "cfg_orders", "--config", str(config)],
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    return config


@pytest.mark.parametrize(("args", "shown", "heavy"), ADMIN)
def test_admin_commands_that_compute_nothing_import_only_what_they_need(tmp_path, admin_config, args, shown, heavy):
    result, modules = imported_modules(tmp_path, *(arg.format(config=admin_config) for arg in args))
    assert result.returncode == 0, result.stderr[-2000:]
    assert shown in result.stdout  # it did its work
    assert _heavy(modules, heavy) == []
