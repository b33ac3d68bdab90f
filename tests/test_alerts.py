"""Alerting rules from the standards: promtool accepts them, and promtool's rule tests show a red
KPI firing (under the standard that judges it) while a green one stays quiet."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import timedelta

import pytest

from crmmetrics.alerts import schedule_interval, to_yaml
from crmmetrics.definitions import Schedule
from crmmetrics.testing import CrmDatabase
from support.scorecard_scenario import build_scenario

PROMTOOL = shutil.which("promtool")


@pytest.mark.parametrize(
    ("schedule", "interval"),
    [
        (Schedule(every="1h"), timedelta(hours=1)),
        (Schedule(cron="*/15 * * * *"), timedelta(minutes=15)),
        (Schedule(cron="0 6 * * 1-5"), timedelta(days=3)),  # Friday 06:00 to Monday 06:00
        (Schedule(cron="0 6 1 * *"), timedelta(days=31)),  # the longest month
    ],
)
def test_schedule_interval(schedule, interval):
    assert schedule_interval(schedule) == interval


def test_yaml_of_nested_rules():
    text = to_yaml({"groups": [{"name": "g", "rules": [{"alert": "A", "labels": {"x": 'say "hi"'}}]}]})
    assert text == 'groups:\n  - name: "g"\n    rules:\n      - alert: "A"\n        labels:\n          x: "say \\"hi\\""'


@pytest.fixture(scope="module")
def rules(tmp_path_factory):
    assert PROMTOOL, "promtool is not installed: run scripts/install-test-deps.sh (Debian package prometheus)"
    directory = tmp_path_factory.mktemp("alerts")
    source = CrmDatabase(f"sqlite:///{directory / 'crm.sqlite'}")
    source.dispose()
    scenario = build_scenario(directory, source.url)
    done = scenario.cli("alerts", "export", "--output", str(directory / "rules.yml"))
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().endswith("rules.yml: 14 rules written")  # 7 standards red, 6 metrics stale, 1 failing
    return directory / "rules.yml"


def promtool(*args, cwd=None):
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=cwd)


def test_promtool_checks_the_rules(rules):
    checked = promtool("check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 14 rules found" in checked.stdout
    text = rules.read_text()
    assert 'expr: "crmmetrics_kpi_status{metric=\\"sc_fcr_by_channel\\"} == 0 unless crmmetrics_kpi_status{metric=\\"sc_fcr_by_channel\\",channel_category=\\"outlets\\"}"' in text
    # Hourly metrics are stale after two missed runs and the misfire grace time: 2 h + 10 min.
    assert 'expr: "time() - crmmetrics_run_last_success_timestamp_seconds{metric=\\"sc_nps\\"} > 7800"' in text


def status(metric, process, perspective, values, **dimensions):
    labels = {"metric": metric, "process": process, "perspective": perspective, **dimensions}
    return {"series": "crmmetrics_kpi_status{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}", "values": values}


def red_alert(metric, process, perspective, standard, description, owner=None, **dimensions):
    labels = {"metric": metric, "process": process, "perspective": perspective, "severity": "warning", "standard": standard, **dimensions}
    if owner:
        labels["owner"] = owner
    return {"exp_labels": labels, "exp_annotations": {"summary": description.split(" (")[0].join(["KPI ", " is red"]), "description": description}}


def test_promtool_fires_for_red_kpis_only(rules):
    fcr = ("sc_fcr_by_channel", "multichannel_integration", "internal_process")
    tests = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    status("sc_new_customers", "strategy_development", "customer", "0x40"),  # red
                    status("sc_complaints", "value_creation", "customer", "0x40"),  # red, has an owner
                    status("sc_nps", "strategy_development", "financial", "2x40"),  # green
                    status("sc_engagement", "performance_assessment", "learning_growth", "1x40"),  # amber
                    status(*fcr, "0x40", channel_category="outlets"),  # red: its own standard
                    status(*fcr, "0x40", channel_category="telephony"),  # red: the whole-metric standard
                    status(*fcr, "2x40", channel_category="e_commerce"),  # green
                ],
                "alert_rule_test": [
                    {"eval_time": "10m", "alertname": "CrmmetricsKpiRed", "exp_alerts": []},  # pending: for 15m
                    {
                        "eval_time": "20m",
                        "alertname": "CrmmetricsKpiRed",
                        "exp_alerts": [
                            red_alert(
                                "sc_new_customers", "strategy_development", "customer", "sc_new_customers",
                                "New customers (sc_new_customers) is at or below its red threshold 10 (green 30, target 40); "
                                "standard sc_new_customers.",
                            ),
                            red_alert(
                                "sc_complaints", "value_creation", "customer", "sc_complaints",
                                "Complaint rate (sc_complaints) is at or above its red threshold 20 (green 12, target 10); "
                                "standard sc_complaints.",
                                owner="Service",
                            ),
                            red_alert(
                                *fcr, "sc_fcr_by_channel{channel_category=outlets}",
                                "First-contact resolution (sc_fcr_by_channel channel_category=outlets) is at or below its red "
                                "threshold 40 (green 60, target 60); standard sc_fcr_by_channel{channel_category=outlets}.",
                                channel_category="outlets",
                            ),
                            red_alert(
                                *fcr, "sc_fcr_by_channel",
                                "First-contact resolution (sc_fcr_by_channel channel_category=telephony) is at or below its red "
                                "threshold 50 (green 80, target 80); standard sc_fcr_by_channel.",
                                channel_category="telephony",
                            ),
                        ],
                    },
                ],
            },
            {
                "interval": "1m",
                "input_series": [
                    # sc_nps last succeeded at time 0; sc_complaints keeps succeeding (its value is "now").
                    {"series": 'crmmetrics_run_last_success_timestamp_seconds{metric="sc_nps",plugin="file:kpis"}', "values": "0x200"},
                    {"series": 'crmmetrics_run_last_success_timestamp_seconds{metric="sc_complaints",plugin="file:kpis"}', "values": "0+60x200"},
                    {"series": 'crmmetrics_run_up{metric="sc_engagement",plugin="file:kpis"}', "values": "0x200"},
                    {"series": 'crmmetrics_run_up{metric="sc_nps",plugin="file:kpis"}', "values": "1x200"},
                ],
                "alert_rule_test": [
                    {"eval_time": "2h", "alertname": "CrmmetricsKpiStale", "exp_alerts": []},  # 7200 s is not yet > 7800 s
                    {
                        "eval_time": "3h",
                        "alertname": "CrmmetricsKpiStale",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "metric": "sc_nps", "plugin": "file:kpis", "severity": "warning",
                                    "process": "strategy_development", "perspective": "financial",
                                },
                                "exp_annotations": {
                                    "summary": "KPI Net Promoter Score is stale",
                                    "description": "Net Promoter Score (sc_nps) has not been computed successfully for more than "
                                    "7800 s (it runs every 1h).",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "20m",
                        "alertname": "CrmmetricsMetricFailing",
                        "exp_alerts": [
                            {
                                "exp_labels": {"metric": "sc_engagement", "plugin": "file:kpis", "severity": "warning"},
                                "exp_annotations": {
                                    "summary": "Metric sc_engagement fails to compute",
                                    "description": "The last run of sc_engagement (plugin file:kpis) failed; "
                                    "'crmmetrics run --metric sc_engagement' shows why.",
                                },
                            }
                        ],
                    },
                ],
            },
        ],
    }
    test_file = rules.parent / "rules_test.yml"
    test_file.write_text(json.dumps(tests, indent=1))  # JSON is YAML
    tested = promtool("test", "rules", test_file.name, cwd=rules.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_promtool_test_fails_when_a_green_kpi_is_expected_to_fire(rules):
    """The check above has teeth: expecting an alert for a green KPI fails the rule test."""
    tests = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [status("sc_nps", "strategy_development", "financial", "2x40")],
                "alert_rule_test": [
                    {
                        "eval_time": "20m",
                        "alertname": "CrmmetricsKpiRed",
                        "exp_alerts": [{"exp_labels": {"metric": "sc_nps", "process": "strategy_development", "perspective": "financial",
                                                       "severity": "warning", "standard": "sc_nps", "owner": "Marketing"}}],
                    }
                ],
            }
        ],
    }
    test_file = rules.parent / "rules_green_test.yml"
    test_file.write_text(json.dumps(tests))
    tested = promtool("test", "rules", test_file.name, cwd=rules.parent)
    report = tested.stdout + tested.stderr
    assert tested.returncode == 1 and "got:[]" in report.replace(" ", ""), report
