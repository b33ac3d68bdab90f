"""One test per hook, named test_hook_<hook name> (tests/test_api_honest.py checks that each has one).

Each test loads a real plugin (a file in a plugins directory, or an installed distribution with
an entry point) and watches crmmetrics call the hook.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from crmmetrics.core.config import load_config, parse_config
from crmmetrics.core.errors import PluginError
from crmmetrics.serve.app import App
from support.plugin_files import ORDERS_METRIC, install_distribution, write_plugin_file

AS_OF = datetime(2026, 3, 10)  # current period: February 2026; previous: January 2026


@pytest.fixture
def orders_source(crm_db):
    """Three orders in February 2026 (one anonymous) and one in January."""
    crm_db.insert("customers", [{"customer_id": 1}])
    crm_db.insert(
        "orders",
        [
            {"customer_id": 1, "ordered_at": datetime(2026, 2, 1), "net_revenue": 10.0},
            {"customer_id": 1, "ordered_at": datetime(2026, 2, 28, 23, 59), "net_revenue": 20.0},
            {"customer_id": None, "ordered_at": datetime(2026, 2, 14), "net_revenue": 5.0},
            {"customer_id": 1, "ordered_at": datetime(2026, 1, 31), "net_revenue": 40.0},
        ],
    )
    return crm_db


def test_hook_crmmetrics_metrics(orders_source, compute, loaded_plugins, tmp_path):
    plugins_dir = tmp_path / "plugins"
    write_plugin_file(plugins_dir, "orders", ORDERS_METRIC)
    result = compute("t_orders", orders_source.url, as_of=AS_OF, plugins_dir=plugins_dir)
    assert (result.current(), result.previous()) == (3.0, 1.0)
    registry = loaded_plugins(plugins_dir).registry
    assert registry.plugin_of["t_orders"] == "file:orders"
    assert registry.plugin_of["vc_nps"] == "value_creation"  # the built-ins answer the same hook

    write_plugin_file(plugins_dir, "wrong", "from crmmetrics import hookimpl\n\n@hookimpl\ndef crmmetrics_metrics():\n    return ['t_text']\n")
    with pytest.raises(PluginError) as error:
        loaded_plugins(plugins_dir)
    assert str(error.value) == "plugin file:wrong returned 't_text' from crmmetrics_metrics, not a MetricDefinition"


def test_hook_crmmetrics_standards(loaded_plugins, tmp_path):
    plugins_dir = tmp_path / "plugins"
    standards = """
from crmmetrics.core.standard import StandardDefault


@hookimpl
def crmmetrics_standards():
    return [StandardDefault(metric="t_orders", target=TARGET, red=RED, green=GREEN, owner="Sales")]
"""
    write_plugin_file(plugins_dir, "orders", ORDERS_METRIC + standards.replace("TARGET", "10").replace("RED", "2").replace("GREEN", "5"))
    spec, plugin = loaded_plugins(plugins_dir).standards["t_orders"]
    assert (spec.target, spec.red, spec.green, spec.owner, plugin) == (10.0, 2.0, 5.0, "Sales", "file:orders")

    # Thresholds that say lower is better, for a metric that is higher is better.
    write_plugin_file(plugins_dir, "orders", ORDERS_METRIC + standards.replace("TARGET", "1").replace("RED", "5").replace("GREEN", "2"))
    with pytest.raises(PluginError) as error:
        loaded_plugins(plugins_dir)
    assert str(error.value).startswith("plugin file:orders: default standard for t_orders: red 5 must be below green 2")


def write_config(directory, source_url, plugins_dir, metrics=""):
    path = directory / "crmmetrics.toml"
    path.write_text(
        f'[source]\nurl = "{source_url}"\n[store]\nurl = "sqlite:///store.sqlite"\n'
        f'[service]\nplugins_dir = "{plugins_dir}"\n{metrics}',
        encoding="utf-8",
    )
    return path


def test_hook_crmmetrics_validate_config(orders_source, crmmetrics_cli, tmp_path):
    plugins_dir = tmp_path / "plugins"
    write_plugin_file(plugins_dir, "orders", ORDERS_METRIC + '''
from crmmetrics.core.errors import ConfigError


@hookimpl
def crmmetrics_validate_config(config, registry):
    if config.metric_settings(registry.get("t_orders")).period == "year":
        raise ConfigError(f"{config.path}: metrics.t_orders.period: a year of orders is not a KPI; use month or quarter")
''')
    # An implementation may take any subset of the hook's arguments.
    write_plugin_file(plugins_dir, "counter", '''
from crmmetrics import hookimpl

SEEN = []


@hookimpl
def crmmetrics_validate_config(registry):
    try:
        registry.plugin_of["t_orders"] = "counter"
    except TypeError:
        frozen = True
    else:
        frozen = False
    SEEN.append((type(registry).__name__, len(registry), registry.plugin_of["t_orders"], frozen))
''')
    good = write_config(tmp_path, orders_source.url, plugins_dir)
    app = App.from_config(load_config(good))
    metrics = len(app.registry)
    # Plain frozen data, not the registry itself: the plugin cannot change what is loaded.
    assert app.pm.get_plugin("file:counter").SEEN == [("LoadedMetrics", metrics, "file:orders", True)]
    assert app.registry.plugin_of["t_orders"] == "file:orders"
    result = crmmetrics_cli("config", "check", str(good))
    assert (result.returncode, result.stdout) == (0, f"{good}: OK ({metrics} metrics, {metrics} enabled)\n")

    bad = write_config(tmp_path, orders_source.url, plugins_dir, '[metrics.t_orders]\nperiod = "year"\n')
    result = crmmetrics_cli("config", "check", str(bad))
    assert (result.returncode, result.stderr) == (
        2,
        f"Error: {bad}: metrics.t_orders.period: a year of orders is not a KPI; use month or quarter\n",
    )


def test_hook_crmmetrics_cli_commands(crmmetrics_cli, tmp_path):
    site = install_distribution(tmp_path / "site", "crmmetrics-greeting", "crmmetrics_greeting", '''
import click

from crmmetrics import hookimpl


@hookimpl
def crmmetrics_cli_commands(cli):
    @cli.command()
    @click.argument("name")
    def greet(name):
        """Greet NAME."""
        click.echo(f"Hello, {name}")
''', entry_point="greeting")
    env = {"PYTHONPATH": str(site)}
    assert crmmetrics_cli("greet", "Ada", env=env).stdout == "Hello, Ada\n"
    assert ["greet", "Greet", "NAME."] in [line.split() for line in crmmetrics_cli("--help", env=env).stdout.splitlines()]
    plugins = {p["name"]: p for p in json.loads(crmmetrics_cli("plugins", "--json", env=env).stdout)}
    assert plugins["greeting"]["package"] == "crmmetrics-greeting"
    assert plugins["greeting"]["hooks"] == ["crmmetrics_cli_commands"]
    blocked = crmmetrics_cli("greet", "Ada", env={**env, "CRMMETRICS_BLOCK_PLUGINS": "greeting"})
    assert blocked.returncode == 2 and "No such command 'greet'" in blocked.stderr


def test_hook_crmmetrics_run_finished(orders_source, tmp_path):
    plugins_dir = tmp_path / "plugins"
    write_plugin_file(plugins_dir, "orders", ORDERS_METRIC)
    write_plugin_file(plugins_dir, "observer", '''
import dataclasses

from crmmetrics import RunStatus, hookimpl

FINISHED = []


@hookimpl
def crmmetrics_run_finished(run, observations):
    try:
        run.status = "failed"
    except dataclasses.FrozenInstanceError:
        frozen = True
    else:
        frozen = False
    FINISHED.append((
        type(run).__name__, {type(o).__name__ for o in observations}, frozen, run.status is RunStatus.SUCCESS,
        run.id, run.metric_key, run.status, sorted((o.period_label, dict(o.dimensions), o.value) for o in observations),
    ))
''')
    write_plugin_file(plugins_dir, "broken_observer", '''
from crmmetrics import hookimpl


@hookimpl
def crmmetrics_run_finished(run):
    raise RuntimeError("the notification service is down")
''')
    config = parse_config(
        {
            "source": {"url": orders_source.url},
            "store": {"url": f"sqlite:///{tmp_path / 'store.sqlite'}"},
            "service": {"plugins_dir": str(plugins_dir), "as_of": AS_OF},
        },
        None,
    )
    app = App.from_config(config)
    run = app.runner.run_metric("t_orders")
    # The observer saw the run after it was stored (it has an id); the broken one changed nothing.
    # Frozen copies of what was stored, with the dimensions as a mapping (the total: none).
    assert app.pm.get_plugin("file:observer").FINISHED == [
        ("FinishedRun", {"ObservedValue"}, True, True, run.id, "t_orders", "success", [("current", {}, 3.0), ("previous", {}, 1.0)])
    ]
    assert [(r.id, r.status) for r in app.store.runs("t_orders")] == [(run.id, "success")]
