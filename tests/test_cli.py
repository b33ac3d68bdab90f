"""The CLI as an admin uses it: metrics and config commands, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

DEMO_CUSTOMERS = "150"


def crmmetrics(*args, cwd=None, env=None):
    import os

    return subprocess.run(
        [sys.executable, "-m", "crmmetrics", *args], capture_output=True, text=True, cwd=cwd, env={**os.environ, **(env or {})}
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cli-demo")
    done = crmmetrics("demo", "--dir", str(directory), "--customers", DEMO_CUSTOMERS, "--once", "--history-months", "0")
    assert done.returncode == 0, done.stderr
    return directory


def test_metrics_admin_commands_edit_the_config_keeping_comments(demo):
    config = demo / "crmmetrics.toml"
    assert crmmetrics("metrics", "disable", "vc_aov", "--config", str(config)).returncode == 0
    done = crmmetrics("metrics", "schedule", "vc_nps", "--cron", "0 6 * * 1", "--config", str(config))
    assert done.returncode == 0 and done.stdout.strip() == "vc_nps: cron 0 6 * * 1"
    assert crmmetrics("metrics", "schedule", "vc_aov", "--every", "6h", "--config", str(config)).returncode == 0
    text = config.read_text()
    assert "# crmmetrics configuration." in text and "# where /metrics and the scorecard page listen" in text
    listed = {row["key"]: row for row in json.loads(crmmetrics("metrics", "list", "--json", "--config", str(config)).stdout)}
    assert listed["vc_aov"]["enabled"] is False and listed["vc_aov"]["schedule"] == "every 6h"
    assert listed["vc_nps"]["schedule"] == "cron 0 6 * * 1"
    assert listed["vc_nps"]["process"] == "value_creation" and listed["vc_nps"]["unit"] == "points"
    assert crmmetrics("metrics", "enable", "vc_aov", "--config", str(config)).returncode == 0
    shown = json.loads(crmmetrics("config", "show", "--config", str(config)).stdout)
    assert shown["metrics"]["vc_aov"]["enabled"] is True
    assert shown["metrics"]["vc_aov"]["schedule"] == {"every": "6h"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("metrics", "disable", "vc_nope"), "metrics.vc_nope: unknown metric 'vc_nope'"),
        (("metrics", "schedule", "vc_nps", "--every", "often"), "--every: invalid duration 'often'"),
        (("metrics", "schedule", "vc_nps", "--cron", "99 * * * *"), "metrics.vc_nps.schedule: invalid cron expression"),
        (("metrics", "schedule", "vc_nps"), "give exactly one of --every or --cron"),
        (("metrics", "set", "vc_nps", "colour=red"), "metrics.vc_nps.params.colour: metric vc_nps has no parameter 'colour'"),
        (("run", "--metric", "vc_nope"), "--metric: unknown metric 'vc_nope'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(demo, args, message):
    config = demo / "crmmetrics.toml"
    before = config.read_text()
    done = crmmetrics(*args, "--config", str(config))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("Error: ") and message in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert config.read_text() == before


def test_config_check(tmp_path, demo):
    assert crmmetrics("config", "check", str(demo / "crmmetrics.toml")).stdout.startswith(f"{demo / 'crmmetrics.toml'}: OK")
    bad = tmp_path / "bad.toml"
    bad.write_text('[source]\nurl = "sqlite:///crm.sqlite"\n[store]\nurl = "sqlite:///s.sqlite"\n[service]\nport = "ninety"\n')
    done = crmmetrics("config", "check", str(bad))
    assert done.returncode == 2
    assert done.stderr == f"Error: {bad}: service.port: expected an integer, got 'ninety'\n"
    missing = crmmetrics("config", "check", str(tmp_path / "none.toml"))
    assert missing.returncode == 2 and missing.stderr == f"Error: {tmp_path / 'none.toml'}: config file not found\n"


def test_config_from_environment_variable_and_secrets_redacted(demo, monkeypatch):
    done = crmmetrics("config", "show", env={"CRMMETRICS_CONFIG": str(demo / "crmmetrics.toml")})
    assert done.returncode == 0
    assert json.loads(done.stdout)["source"]["url"].endswith("crm.sqlite")


def test_run_prints_one_line_per_metric_and_logs_json(demo, tmp_path):
    config = demo / "crmmetrics.toml"
    text = config.read_text().replace('format = "text"', 'format = "json"')
    json_config = demo / "json.toml"
    json_config.write_text(text)
    done = crmmetrics("run", "--config", str(json_config), "--metric", "vc_aov", "--metric", "pa_enps")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["vc_aov", "pa_enps"] and all("success" in line for line in lines)
    events = [json.loads(line) for line in done.stderr.strip().splitlines()]
    assert [(e["metric"], e["status"]) for e in events] == [("vc_aov", "success"), ("pa_enps", "success")]
    assert all(e["rows"] == 2 and e["duration_seconds"] >= 0 for e in events)
    # No progress bar when stderr is not a terminal: only the JSON lines above.


def test_plugins_json_lists_the_five_builtin_plugins():
    done = crmmetrics("plugins", "--json")
    assert done.returncode == 0, done.stderr
    plugins = {entry["name"]: entry for entry in json.loads(done.stdout)}
    builtin = {"strategy_development", "value_creation", "multichannel_integration", "information_management", "performance_assessment"}
    assert builtin <= set(plugins)
    assert "crmmetrics_metrics" in plugins["value_creation"]["hooks"]
    assert "vc_nps" in plugins["value_creation"]["metrics"]


@pytest.mark.parametrize("customers", ["10", "19"])
def test_demo_refuses_fewer_customers_than_it_generates(tmp_path, customers):
    done = crmmetrics("demo", "--dir", str(tmp_path / "d"), "--customers", customers, "--once")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == f"Error: Invalid value for '--customers': {customers} is not in the range x>=20."
    assert not (tmp_path / "d").exists()  # nothing written
