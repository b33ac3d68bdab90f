"""Alerting rules from the standards: promtool accepts them, and promtool's rule tests show a red
KPI firing (under the standard that judges it) while a green one stays quiet."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from crmmetrics.core.definitions import Schedule
from crmmetrics.readers.alerts import alert_rules, dump_rules, schedule_interval, to_yaml
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
    done = scenario.cli("alerts", "export", "--output", str(directory / "rules.yml"), "--grafana-url", "https://grafana.example")
    assert done.returncode == 0, done.stderr
    # 7 standards red, off track, bad surprise; crmmetrics down, absent, a metric failing; 6 metrics stale
    assert done.stderr.strip().endswith("rules.yml: 30 rules written")
    return directory / "rules.yml"


def promtool(*args, cwd=None):
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=cwd)


def test_promtool_checks_the_rules(rules):
    checked = promtool("check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 30 rules found" in checked.stdout
    text = rules.read_text()
    # The value of the KPI (so that $value is it), where the status of the standard's KPIs is red,
    # less the dimension value that has a standard of its own.
    assert (
        'expr: "(crmmetrics_metric_ratio{metric=\\"sc_fcr_by_channel\\",period=\\"current\\"} '
        'or crmmetrics_metric_by_channel_category_ratio{metric=\\"sc_fcr_by_channel\\",period=\\"current\\"}) '
        'and ignoring(period) ((crmmetrics_kpi_status{metric=\\"sc_fcr_by_channel\\"} '
        'or crmmetrics_kpi_by_channel_category_status{metric=\\"sc_fcr_by_channel\\"}) == 0) '
        'unless ignoring(period) crmmetrics_kpi_by_channel_category_status{metric=\\"sc_fcr_by_channel\\",channel_category=\\"outlets\\"}"'
    ) in text
    # Metrics run daily at 00:15 by default (a monthly period): stale after two missed runs and
    # the misfire grace time, 48 h + 10 min.
    assert 'expr: "time() - crmmetrics_run_last_success_timestamp_seconds{metric=\\"sc_nps\\"} > 173400"' in text
    assert text.count('severity: "ticket"') == 21 and text.count('severity: "warning"') == 9


def value(family, metric, process, perspective, values, **dimensions):
    labels = {"metric": metric, "process": process, "perspective": perspective, **dimensions}
    return {"series": family + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}", "values": values}


def status(metric, process, perspective, values, **dimensions):
    family = "crmmetrics_kpi_by_channel_category_status" if dimensions else "crmmetrics_kpi_status"
    return value(family, metric, process, perspective, values, **dimensions)


def current(family, metric, process, perspective, values, **dimensions):
    return value(family, metric, process, perspective, values, period="current", **dimensions)


FCR = ("sc_fcr_by_channel", "multichannel_integration", "internal_process")
KPI_SERIES = [
    status("sc_new_customers", "strategy_development", "customer", "0x40"),  # red
    current("crmmetrics_metric_items", "sc_new_customers", "strategy_development", "customer", "8x40"),
    status("sc_complaints", "value_creation", "customer", "0x40"),  # red, has an owner
    current("crmmetrics_metric_ratio", "sc_complaints", "value_creation", "customer", "0.16x40"),
    status("sc_nps", "strategy_development", "financial", "2x40"),  # green
    current("crmmetrics_metric_points", "sc_nps", "strategy_development", "financial", "30x40"),
    status("sc_engagement", "performance_assessment", "learning_growth", "1x40"),  # amber
    current("crmmetrics_metric_ratio", "sc_engagement", "performance_assessment", "learning_growth", "0.55x40"),
    status(*FCR, "0x40", channel_category="outlets"),  # red: its own standard
    current("crmmetrics_metric_by_channel_category_ratio", *FCR, "0.35x40", channel_category="outlets"),
    status(*FCR, "0x40", channel_category="telephony"),  # red: the whole-metric standard
    current("crmmetrics_metric_by_channel_category_ratio", *FCR, "0.45x40", channel_category="telephony"),
    status(*FCR, "2x40", channel_category="e_commerce"),  # green
    current("crmmetrics_metric_by_channel_category_ratio", *FCR, "0.8x40", channel_category="e_commerce"),
]


def red_alert(metric, process, perspective, standard, summary, description, owner=None, **dimensions):
    labels = {
        "metric": metric, "process": process, "perspective": perspective, "period": "current",
        "severity": "ticket", "standard": standard, **dimensions,
    }
    if owner:
        labels["owner"] = owner
    return {
        "exp_labels": labels,
        "exp_annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": "docs/operations.md#crmmetricskpired",
            "dashboard_url": f"https://grafana.example/d/crmmetrics-{process}",
        },
    }


HEALTH_LINKS = {"dashboard_url": "https://grafana.example/d/crmmetrics-service-health"}


def test_promtool_fires_for_red_kpis_and_crmmetrics_health(rules):
    tests = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": KPI_SERIES,
                "alert_rule_test": [
                    {"eval_time": "10m", "alertname": "CrmmetricsKpiRed", "exp_alerts": []},  # pending: for 15m
                    {
                        "eval_time": "20m",
                        "alertname": "CrmmetricsKpiRed",
                        "exp_alerts": [
                            red_alert(
                                "sc_new_customers", "strategy_development", "customer", "sc_new_customers",
                                "KPI New customers is red: 8",
                                "New customers (sc_new_customers) is 8 for the current period, at or below its red threshold "
                                "10 (green 30, target 40). Owner: no owner set; standard sc_new_customers.",
                            ),
                            red_alert(
                                "sc_complaints", "value_creation", "customer", "sc_complaints",
                                "KPI Complaint rate is red: 16%",
                                "Complaint rate (sc_complaints) is 16% for the current period, at or above its red threshold "
                                "20.0% (green 12.0%, target 10.0%). Owner: Service; standard sc_complaints.",
                                owner="Service",
                            ),
                            red_alert(
                                *FCR, "sc_fcr_by_channel{channel_category=outlets}",
                                "KPI First-contact resolution is red: 35%",
                                "First-contact resolution (sc_fcr_by_channel channel_category=outlets) is 35% for the current "
                                "period, at or below its red threshold 40.0% (green 60.0%, target 60.0%). Owner: no owner set; "
                                "standard sc_fcr_by_channel{channel_category=outlets}.",
                                channel_category="outlets",
                            ),
                            red_alert(
                                *FCR, "sc_fcr_by_channel",
                                "KPI First-contact resolution is red: 45%",
                                "First-contact resolution (sc_fcr_by_channel channel_category=telephony) is 45% for the current "
                                "period, at or below its red threshold 50.0% (green 80.0%, target 80.0%). Owner: no owner set; "
                                "standard sc_fcr_by_channel.",
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
                    {"series": 'crmmetrics_run_last_success_timestamp_seconds{metric="sc_nps",plugin="file:kpis"}', "values": "0x3000"},
                    {"series": 'crmmetrics_run_last_success_timestamp_seconds{metric="sc_complaints",plugin="file:kpis"}', "values": "0+60x3000"},
                    {"series": 'crmmetrics_run_up{metric="sc_engagement",plugin="file:kpis"}', "values": "0x3000"},
                    {"series": 'crmmetrics_run_up{metric="sc_nps",plugin="file:kpis"}', "values": "1x3000"},
                    {"series": 'up{job="crmmetrics",instance="127.0.0.1:9632"}', "values": "1x10 0x3000"},
                ],
                "alert_rule_test": [
                    {"eval_time": "48h", "alertname": "CrmmetricsMetricStale", "exp_alerts": []},  # 172800 s is not > 173400 s
                    {
                        "eval_time": "49h",
                        "alertname": "CrmmetricsMetricStale",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "metric": "sc_nps", "plugin": "file:kpis", "severity": "warning",
                                    "process": "strategy_development", "perspective": "financial",
                                },
                                "exp_annotations": {
                                    "summary": "Net Promoter Score (sc_nps) is stale: last computed 2d 1h 0m 0s ago",
                                    "description": "Net Promoter Score (sc_nps, plugin file:kpis) was last computed successfully "
                                    "2d 1h 0m 0s ago; it runs cron 15 0 * * *, so it is expected within 173400 s (two runs and "
                                    "the misfire grace time). Owner: the crmmetrics operators; 'crmmetrics run --metric sc_nps' "
                                    "computes it now.",
                                    "runbook_url": "docs/operations.md#crmmetricsmetricstale",
                                    **HEALTH_LINKS,
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
                                    "description": "The last run of sc_engagement (plugin file:kpis) failed (run_up = 0, expected 1); "
                                    "its exported value is the last one computed. Owner: the crmmetrics operators; "
                                    "'crmmetrics run --metric sc_engagement' shows why.",
                                    "runbook_url": "docs/operations.md#crmmetricsmetricfailing",
                                    **HEALTH_LINKS,
                                },
                            }
                        ],
                    },
                    {"eval_time": "14m", "alertname": "CrmmetricsDown", "exp_alerts": []},  # down since 11m: pending for 5m
                    {
                        "eval_time": "20m",
                        "alertname": "CrmmetricsDown",
                        "exp_alerts": [
                            {
                                "exp_labels": {"job": "crmmetrics", "instance": "127.0.0.1:9632", "severity": "warning"},
                                "exp_annotations": {
                                    "summary": "crmmetrics on 127.0.0.1:9632 is down",
                                    "description": "Prometheus cannot scrape crmmetrics on 127.0.0.1:9632 (job crmmetrics, up = 0, "
                                    "expected 1): KPI values, statuses and their alerts are not updated. Owner: the crmmetrics "
                                    "operators.",
                                    "runbook_url": "docs/operations.md#crmmetricsdown",
                                    **HEALTH_LINKS,
                                },
                            }
                        ],
                    },
                    {"eval_time": "20m", "alertname": "CrmmetricsAbsent", "exp_alerts": []},  # the target is there
                ],
            },
            {
                "interval": "1m",
                "input_series": [{"series": 'up{job="other"}', "values": "1x40"}],  # no crmmetrics target at all
                "alert_rule_test": [
                    {
                        "eval_time": "20m",
                        "alertname": "CrmmetricsAbsent",
                        "exp_alerts": [
                            {
                                "exp_labels": {"job": "crmmetrics", "severity": "warning"},
                                "exp_annotations": {
                                    "summary": "No crmmetrics target in Prometheus (job crmmetrics)",
                                    "description": "Prometheus has no target of job 'crmmetrics' (absent = 1, expected one target "
                                    "or more): crmmetrics is not scraped at all, so no KPI alert can fire. Owner: the crmmetrics "
                                    "operators.",
                                    "runbook_url": "docs/operations.md#crmmetricsabsent",
                                    **HEALTH_LINKS,
                                },
                            }
                        ],
                    },
                    {"eval_time": "20m", "alertname": "CrmmetricsKpiRed", "exp_alerts": []},
                ],
            },
        ],
    }
    test_file = rules.parent / "rules_test.yml"
    test_file.write_text(json.dumps(tests, indent=1))  # JSON is YAML
    tested = promtool("test", "rules", test_file.name, cwd=rules.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


@pytest.mark.parametrize(
    ("metric", "status_value", "process", "perspective", "family", "owner"),
    [
        ("sc_nps", "2x40", "strategy_development", "financial", "crmmetrics_metric_points", "Marketing"),  # green
        ("sc_engagement", "1x40", "performance_assessment", "learning_growth", "crmmetrics_metric_ratio", None),  # amber
    ],
)
def test_promtool_test_fails_when_a_green_or_amber_kpi_is_expected_to_fire(rules, metric, status_value, process, perspective,
                                                                          family, owner):
    """The check above has teeth: expecting an alert for a green or amber KPI fails the rule test."""
    labels = {"metric": metric, "process": process, "perspective": perspective, "period": "current", "severity": "ticket",
              "standard": metric}
    if owner:
        labels["owner"] = owner
    tests = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [status(metric, process, perspective, status_value), current(family, metric, process, perspective, "0.5x40")],
                "alert_rule_test": [{"eval_time": "20m", "alertname": "CrmmetricsKpiRed", "exp_alerts": [{"exp_labels": labels}]}],
            }
        ],
    }
    test_file = rules.parent / f"rules_{metric}_test.yml"
    test_file.write_text(json.dumps(tests))
    tested = promtool("test", "rules", test_file.name, cwd=rules.parent)
    report = tested.stdout + tested.stderr
    assert tested.returncode == 1 and "got:[]" in report.replace(" ", ""), report


AMTOOL = shutil.which("amtool")
ALERTMANAGER_CONFIG = Path(__file__).resolve().parent.parent / "config" / "alertmanager.yml"


def amtool(*args):
    assert AMTOOL, "amtool is not installed: run scripts/install-test-deps.sh (Debian package prometheus-alertmanager)"
    return subprocess.run([AMTOOL, *args], capture_output=True, text=True)


def test_amtool_checks_the_alertmanager_example():
    checked = amtool("check-config", str(ALERTMANAGER_CONFIG))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout and "2 receivers" in checked.stdout


@pytest.fixture(scope="module")
def generated(rules, tmp_path_factory):
    """The rule groups as ``alert_rules`` returns them for the scenario (what rules.yml holds)."""
    from crmmetrics.core.config import load_config
    from crmmetrics.readers.alerts import Links
    from crmmetrics.serve.app import App
    from crmmetrics.store.standards import standards_in_force
    from support.scorecard_scenario import ENV

    patch = pytest.MonkeyPatch()
    for name, value in ENV.items():
        patch.setenv(name, value)
    try:
        app = App.from_config(load_config(rules.parent / "crmmetrics.toml"))
        groups = alert_rules(standards_in_force(app.store), app.registry, app.config, links=Links("https://grafana.example"))
    finally:
        patch.undo()
    assert dump_rules(groups).splitlines()[2:] == rules.read_text().splitlines()[2:]  # the same rules as exported
    return groups


def rule_labels(groups, alert, standard=None):
    """The labels of a generated rule, with its alert name, as Alertmanager gets them."""
    rule = next(
        r for group in groups["groups"] for r in group["rules"]
        if r["alert"] == alert and (standard is None or r["labels"].get("standard") == standard)
    )
    return {"alertname": alert, **rule["labels"]}


def route(labels, expected):
    pairs = [f"{name}={value}" for name, value in labels.items()]
    return amtool("config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", f"--verify.receivers={expected}", *pairs)


def test_a_red_kpi_and_crmmetrics_down_go_to_different_receivers(generated):
    kpi = {**rule_labels(generated, "CrmmetricsKpiRed", "sc_complaints"), "metric": "sc_complaints", "period": "current"}
    assert kpi["severity"] == "ticket" and kpi["owner"] == "Service"
    down = {**rule_labels(generated, "CrmmetricsDown"), "job": "crmmetrics", "instance": "127.0.0.1:9632"}
    assert route(kpi, "kpi-owners").returncode == 0
    assert route(down, "crmmetrics-operators").returncode == 0
    # And the test has teeth: a KPI alert is not the operators', nor crmmetrics down the owners'.
    assert route(kpi, "crmmetrics-operators").returncode == 1
    assert route(down, "kpi-owners").returncode == 1
    for alert in ("CrmmetricsMetricFailing", "CrmmetricsMetricStale", "CrmmetricsAbsent"):
        assert route(rule_labels(generated, alert), "crmmetrics-operators").returncode == 0, alert


# --- pacing and anomalies ---------------------------------------------------------------------

COMPLAINTS = ("sc_complaints", "value_creation", "customer")


def outlook_alert(alert, summary, description):
    return {
        "exp_labels": {
            "metric": "sc_complaints", "process": "value_creation", "perspective": "customer",
            "severity": "ticket", "standard": "sc_complaints", "owner": "Service",
        },
        "exp_annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"docs/operations.md#{alert.lower()}",
            "dashboard_url": "https://grafana.example/d/crmmetrics-value_creation",
        },
    }


def test_promtool_fires_off_track_early_in_the_period_and_bad_surprises(rules):
    """The complaint rate (lower is better) is forecast at 25% for a period from 0 to 2 h, off
    track: the alert fires after its 15 minutes, and no longer once the period is half gone (1 h).
    An on-track KPI never fires. A bad surprise fires; a good one does not."""
    series = [
        value("crmmetrics_kpi_forecast_ratio", *COMPLAINTS, "0.25x200"),
        value("crmmetrics_kpi_pacing_status", *COMPLAINTS, "0x200"),  # off track
        {"series": 'crmmetrics_kpi_forecast_period_start_timestamp_seconds{metric="sc_complaints"}', "values": "0x200"},
        {"series": 'crmmetrics_kpi_forecast_period_end_timestamp_seconds{metric="sc_complaints"}', "values": "7200x200"},
        value("crmmetrics_kpi_forecast_points", "sc_nps", "strategy_development", "financial", "40x200"),
        value("crmmetrics_kpi_pacing_status", "sc_nps", "strategy_development", "financial", "2x200"),  # on track
        {"series": 'crmmetrics_kpi_forecast_period_start_timestamp_seconds{metric="sc_nps"}', "values": "0x200"},
        {"series": 'crmmetrics_kpi_forecast_period_end_timestamp_seconds{metric="sc_nps"}', "values": "7200x200"},
        value("crmmetrics_kpi_anomaly_score", *COMPLAINTS, "6.5x200"),
        value("crmmetrics_kpi_anomaly_surprise", *COMPLAINTS, "-1x200"),  # bad: complaints up
        value("crmmetrics_kpi_anomaly_score", "sc_nps", "strategy_development", "financial", "7x200"),
        value("crmmetrics_kpi_anomaly_surprise", "sc_nps", "strategy_development", "financial", "1x200"),  # good
    ]
    off_track = outlook_alert(
        "CrmmetricsKpiOffTrack",
        "KPI Complaint rate is off track: forecast 25%",
        "Complaint rate (sc_complaints) is forecast at 25% for the period now running, which is in its first half: ending red "
        "(at or above 20.0%; green 12.0%) is at least as likely as not. Owner: Service; standard sc_complaints.",
    )
    surprise = outlook_alert(
        "CrmmetricsKpiBadSurprise",
        "KPI Complaint rate moved unusually the bad way (score 6.5)",
        "The latest period of Complaint rate (sc_complaints) lies 6.5 robust standard deviations from what its own history "
        "and season lead to expect, the bad way for a KPI where lower is better. Owner: Service; standard sc_complaints.",
    )
    tests = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "10m", "alertname": "CrmmetricsKpiOffTrack", "exp_alerts": []},  # pending: for 15m
                    {"eval_time": "20m", "alertname": "CrmmetricsKpiOffTrack", "exp_alerts": [off_track]},
                    {"eval_time": "59m", "alertname": "CrmmetricsKpiOffTrack", "exp_alerts": [off_track]},
                    {"eval_time": "61m", "alertname": "CrmmetricsKpiOffTrack", "exp_alerts": []},  # late in the period
                    {"eval_time": "20m", "alertname": "CrmmetricsKpiBadSurprise", "exp_alerts": [surprise]},
                ],
            },
        ],
    }
    test_file = rules.parent / "outlook_test.yml"
    test_file.write_text(json.dumps(tests, indent=1))
    tested = promtool("test", "rules", test_file.name, cwd=rules.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # and the test has teeth: expecting the on-track KPI to fire fails
    tests["tests"][0]["alert_rule_test"] = [
        {"eval_time": "20m", "alertname": "CrmmetricsKpiOffTrack", "exp_alerts": [off_track, {**off_track, "exp_labels": {
            **off_track["exp_labels"], "metric": "sc_nps", "standard": "sc_nps"}}]},
    ]
    test_file.write_text(json.dumps(tests, indent=1))
    assert promtool("test", "rules", test_file.name, cwd=rules.parent).returncode == 1


def test_off_track_and_bad_surprise_alerts_go_to_the_kpi_owner(generated):
    for alert in ("CrmmetricsKpiOffTrack", "CrmmetricsKpiBadSurprise"):
        labels = {**rule_labels(generated, alert, "sc_complaints"), "metric": "sc_complaints"}
        assert labels["severity"] == "ticket" and labels["owner"] == "Service"
        assert route(labels, "kpi-owners").returncode == 0, alert
        assert route(labels, "crmmetrics-operators").returncode == 1, alert
