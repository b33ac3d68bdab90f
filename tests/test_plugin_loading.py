"""Which plugins load, and how loading fails: environment variables, tracing, the plugins directory,
misspelled hooks and clashing metric keys. Errors must be one line with exit code 2."""

from __future__ import annotations

import json

import pytest

from crmmetrics.core.errors import PluginError
from support.plugin_files import ORDERS_METRIC, write_plugin_file

BUILT_INS = ["information_management", "multichannel_integration", "performance_assessment", "strategy_development", "value_creation"]


def names(loaded) -> list[str]:
    return sorted(name for name, plugin in loaded.pm.list_name_plugin() if plugin is not None)


def test_all_built_ins_load_by_default(loaded_plugins, monkeypatch):
    for variable in ("CRMMETRICS_LOAD_PLUGINS", "CRMMETRICS_BLOCK_PLUGINS", "CRMMETRICS_TRACE_PLUGINS"):
        monkeypatch.delenv(variable, raising=False)
    loaded = loaded_plugins()
    assert set(BUILT_INS) <= set(names(loaded))
    assert {loaded.registry.plugin_of[key] for key in ("vc_nps", "sd_active_customers")} == {"value_creation", "strategy_development"}


def test_load_env_restricts_the_plugins(loaded_plugins, monkeypatch, tmp_path):
    plugins_dir = tmp_path / "plugins"
    write_plugin_file(plugins_dir, "orders", ORDERS_METRIC)
    monkeypatch.setenv("CRMMETRICS_LOAD_PLUGINS", "value_creation, file:orders")
    loaded = loaded_plugins(plugins_dir)
    assert names(loaded) == ["file:orders", "value_creation"]
    assert {loaded.registry.plugin_of[d.key] for d in loaded.registry} == {"file:orders", "value_creation"}

    monkeypatch.setenv("CRMMETRICS_LOAD_PLUGINS", "")  # set but empty: nothing loads
    assert len(loaded_plugins(plugins_dir).registry) == 0


def test_block_env_blocks_built_ins_and_files(loaded_plugins, monkeypatch, tmp_path):
    plugins_dir = tmp_path / "plugins"
    write_plugin_file(plugins_dir, "orders", ORDERS_METRIC)
    # A blocked plugin is never imported: a file that would fail to load is no obstacle.
    write_plugin_file(plugins_dir, "broken", "raise ImportError('needs a missing package')\n")
    monkeypatch.delenv("CRMMETRICS_LOAD_PLUGINS", raising=False)
    monkeypatch.setenv("CRMMETRICS_BLOCK_PLUGINS", "value_creation,file:broken")
    loaded = loaded_plugins(plugins_dir)
    assert "value_creation" not in names(loaded) and "file:broken" not in names(loaded)
    assert "strategy_development" in names(loaded) and "file:orders" in names(loaded)
    assert "vc_nps" not in loaded.registry
    # Blocking wins over loading.
    monkeypatch.setenv("CRMMETRICS_LOAD_PLUGINS", "value_creation,file:orders")
    assert names(loaded_plugins(plugins_dir)) == ["file:orders"]


def test_block_and_load_through_the_cli(crmmetrics_cli):
    result = crmmetrics_cli("plugins", "--json", env={"CRMMETRICS_LOAD_PLUGINS": "value_creation,strategy_development",
                                                      "CRMMETRICS_BLOCK_PLUGINS": "strategy_development"})
    assert result.returncode == 0, result.stderr
    [plugin] = json.loads(result.stdout)
    assert (plugin["name"], plugin["package"], plugin["hooks"][0]) == ("value_creation", "crmmetrics", "crmmetrics_metrics")
    assert "vc_nps" in plugin["metrics"]


def test_trace_env_prints_every_hook_call_to_stderr(crmmetrics_cli):
    env = {"CRMMETRICS_LOAD_PLUGINS": "value_creation"}
    quiet = crmmetrics_cli("plugins", "--json", env=env)
    assert quiet.stderr == ""
    traced = crmmetrics_cli("plugins", "--json", env={**env, "CRMMETRICS_TRACE_PLUGINS": "1"})
    assert traced.returncode == 0
    assert json.loads(traced.stdout) == json.loads(quiet.stdout)  # stdout stays clean
    lines = [line.strip() for line in traced.stderr.splitlines()]
    assert "crmmetrics_metrics [hook]" in lines
    # the CLI asks for plugin commands only to list them or to find a command it does not have
    helped = crmmetrics_cli("--help", env={**env, "CRMMETRICS_TRACE_PLUGINS": "1"})
    assert "crmmetrics_cli_commands [hook]" in [line.strip() for line in helped.stderr.splitlines()]
    finished = [line for line in lines if line.startswith("finish crmmetrics_metrics -->")]
    assert finished and "MetricDefinition(key='vc_nps'" in finished[0]


def test_plugins_dir_file_plugin_is_listed_and_computed(crm_db, crmmetrics_cli, tmp_path):
    write_plugin_file(tmp_path / "my-plugins", "orders", ORDERS_METRIC)
    config = tmp_path / "crmmetrics.toml"
    # plugins_dir is relative to the config file, wherever the command runs.
    config.write_text(f'[source]\nurl = "{crm_db.url}"\n[store]\nurl = "sqlite:///store.sqlite"\n[service]\nplugins_dir = "my-plugins"\n')
    listed = {p["name"]: p for p in json.loads(crmmetrics_cli("plugins", "--json", "--config", str(config)).stdout)}
    assert listed["file:orders"]["metrics"] == ["t_orders"]
    assert listed["file:orders"]["file"] == str(tmp_path / "my-plugins" / "orders.py")
    assert listed["file:orders"]["package"] is None
    metrics = json.loads(crmmetrics_cli("metrics", "list", "--json", "--config", str(config)).stdout)
    assert [m["plugin"] for m in metrics if m["key"] == "t_orders"] == ["file:orders"]
    ran = crmmetrics_cli("run", "--config", str(config), "--metric", "t_orders", "--json")
    assert ran.returncode == 0, ran.stderr
    assert [(r["metric"], r["plugin"], r["status"]) for r in json.loads(ran.stdout)] == [("t_orders", "file:orders", "success")]


def test_misspelled_hook_is_an_error(loaded_plugins, crmmetrics_cli, tmp_path):
    plugins_dir = tmp_path / "plugins"
    write_plugin_file(plugins_dir, "typo", "from crmmetrics import hookimpl\n\n@hookimpl\ndef crmmetrics_metric():\n    return []\n")
    with pytest.raises(PluginError) as error:
        loaded_plugins(plugins_dir)
    assert str(error.value) == (
        "unknown hook 'crmmetrics_metric' in plugin file:typo (the hooks are: crmmetrics_cli_commands, "
        "crmmetrics_metrics, crmmetrics_run_finished, crmmetrics_standards, crmmetrics_validate_config)"
    )
    config = tmp_path / "crmmetrics.toml"
    config.write_text(f'[source]\nurl = "sqlite:///crm.sqlite"\n[store]\nurl = "sqlite:///store.sqlite"\n[service]\nplugins_dir = "{plugins_dir}"\n')
    result = crmmetrics_cli("metrics", "list", "--config", str(config))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"Error: {error.value}\n"


def test_an_argument_the_hook_lacks_is_an_error(loaded_plugins, tmp_path):
    plugins_dir = tmp_path / "plugins"
    write_plugin_file(plugins_dir, "extra", "from crmmetrics import hookimpl\n\n@hookimpl\ndef crmmetrics_run_finished(run, result):\n    pass\n")
    with pytest.raises(PluginError) as error:
        loaded_plugins(plugins_dir)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("Plugin 'file:extra' for hook 'crmmetrics_run_finished'")
    assert "Argument(s) {'result'} are declared in the hookimpl but can not be found in the hookspec" in message


def test_two_plugins_defining_one_key_is_an_error_naming_both(loaded_plugins, crmmetrics_cli, tmp_path):
    plugins_dir = tmp_path / "plugins"
    write_plugin_file(plugins_dir, "first", ORDERS_METRIC)
    write_plugin_file(plugins_dir, "second", ORDERS_METRIC)
    with pytest.raises(PluginError) as error:
        loaded_plugins(plugins_dir)
    # pluggy asks the last registered plugin first: file:second, then file:first.
    assert str(error.value) == "metric 't_orders' is defined by two plugins: file:second and file:first"
    # A built-in's key is no exception.
    write_plugin_file(plugins_dir, "second", ORDERS_METRIC.replace('key="t_orders"', 'key="vc_nps"'))
    config = tmp_path / "crmmetrics.toml"
    config.write_text(f'[source]\nurl = "sqlite:///crm.sqlite"\n[store]\nurl = "sqlite:///store.sqlite"\n[service]\nplugins_dir = "{plugins_dir}"\n')
    result = crmmetrics_cli("plugins", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr == "Error: metric 'vc_nps' is defined by two plugins: file:second and value_creation\n"


@pytest.mark.parametrize("dimension", ["period", "metric", "kpi", "process", "perspective", "job"])
def test_a_reserved_label_name_as_dimension_is_refused_at_load(loaded_plugins, crmmetrics_cli, tmp_path, dimension):
    plugins_dir = tmp_path / "plugins"
    write_plugin_file(plugins_dir, "clash", ORDERS_METRIC.replace("compute=orders_in_period,", f"compute=orders_in_period, dimensions=({dimension!r},),"))
    with pytest.raises(PluginError) as error:
        loaded_plugins(plugins_dir)
    message = str(error.value)
    assert message.startswith(f"plugin file:clash: metric 't_orders' declares dimension '{dimension}', a label name crmmetrics reserves (")
    assert message.endswith("): rename the dimension") and "\n" not in message
    config = tmp_path / "crmmetrics.toml"
    config.write_text(f'[source]\nurl = "sqlite:///crm.sqlite"\n[store]\nurl = "sqlite:///store.sqlite"\n[service]\nplugins_dir = "{plugins_dir}"\n')
    result = crmmetrics_cli("metrics", "list", "--config", str(config))
    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"Error: {message}\n")


def test_a_plugin_file_that_fails_to_import_is_named(loaded_plugins, tmp_path):
    plugins_dir = tmp_path / "plugins"
    path = write_plugin_file(plugins_dir, "broken", "import crmmetrics_no_such_module\n")
    with pytest.raises(PluginError) as error:
        loaded_plugins(plugins_dir)
    assert str(error.value) == f"{path}: plugin file failed to load: ModuleNotFoundError: No module named 'crmmetrics_no_such_module'"
