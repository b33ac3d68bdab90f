"""Every PromQL expression of the committed dashboards returns data from a real Prometheus.

Demo data -> ``crmmetrics serve`` (the built-in plugins only, as the dashboards are built) -> a
real Prometheus scraping it every second; then each panel's queries and each query variable run
as instant queries, with Grafana's variables replaced by what Grafana would send.

Every query must return at least one series, with no exception: the demo data gives every
built-in metric a current and a previous value whatever the day it is generated on (a campaign
starts in every month, employee pulse surveys are monthly, survey samples keep a monthly
minimum; tests/test_demo.py checks that on its own), so an empty answer is a wrong query or a
gap in the demo, never "nothing to show".
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from crmmetrics.compute.plugins import LOAD_ENV

pytestmark = pytest.mark.prometheus

DASHBOARDS = Path(__file__).resolve().parent.parent / "dashboards"
BUILT_IN = "strategy_development,value_creation,multichannel_integration,information_management,performance_assessment"
# What Grafana puts in place of its variables: intervals of a 1 s scrape, the "All" value.
SUBSTITUTIONS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$plugin": ".*"}
_LABEL_VALUES = re.compile(r"^label_values\((?P<metric>[a-z_]+), (?P<label>[a-z_]+)\)$")


def substitute(expr: str) -> str:
    for variable, value in sorted(SUBSTITUTIONS.items(), key=lambda item: -len(item[0])):
        expr = expr.replace("${" + variable[1:] + "}", value).replace(variable, value)
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel query and query variable of every committed dashboard."""
    queries = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                match = _LABEL_VALUES.match(variable["query"])
                assert match, variable["query"]
                # label_values(m, l) lists the values of l on m: data there means choices in Grafana.
                queries.append((f"{path.name} variable {variable['name']}", f"count by ({match['label']}) ({match['metric']})"))
        panels = [p for panel in dashboard["panels"] for p in (panel, *panel.get("panels", []))]
        for panel in panels:
            for target in panel.get("targets", []):
                queries.append((f"{path.name} panel {panel['id']} {panel['title']!r} {target['refId']}", target["expr"]))
    return queries


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("dashboards-demo")
    done = subprocess.run(
        [sys.executable, "-m", "crmmetrics", "demo", "--dir", str(directory), "--customers", "300", "--seed", "3", "--once", "--history-months", "24"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, LOAD_ENV: BUILT_IN},
    )
    assert done.returncode == 0, done.stderr
    return directory


def test_substitution_replaces_grafana_variables():
    assert substitute('increase(x{plugin=~"$plugin"}[$__rate_interval])') == 'increase(x{plugin=~".*"}[1m])'
    assert substitute("sum(increase(x[${__range}]))") == "sum(increase(x[1h]))"


def test_every_dashboard_query_returns_data(demo_dir, prometheus, crmmetrics_service):
    queries = dashboard_queries()
    assert len(queries) > 100
    service = crmmetrics_service(demo_dir / "crmmetrics.toml", env={LOAD_ENV: BUILT_IN})
    prometheus.start(targets=[f"127.0.0.1:{service.port}"])
    prometheus.wait_for('up{job="crmmetrics"} == 1')
    # increase() over a window needs two scrapes in it.
    prometheus.wait_for("count_over_time(crmmetrics_runs_total[1m]) > 1")
    empty = []
    for where, expr in queries:
        if not prometheus.query(substitute(expr)):  # a query Prometheus rejects fails here
            empty.append(f"{where}: {expr}")
    assert empty == [], f"{len(empty)} of {len(queries)} queries returned no data:\n" + "\n".join(empty)
    print(f"{len(queries)} queries, all returned data")


def test_every_kpi_alert_selects_its_kpis_values(demo_dir, prometheus, crmmetrics_service):
    """Each red-KPI rule, with "is red" widened to "has a status", returns the values of the KPIs
    its standard judges, from the same real Prometheus: the rules read families that exist."""
    from crmmetrics.core.config import load_config
    from crmmetrics.readers.alerts import alert_rules
    from crmmetrics.serve.app import App
    from crmmetrics.store.standards import standards_in_force

    patch = pytest.MonkeyPatch()
    patch.setenv(LOAD_ENV, BUILT_IN)
    try:
        app = App.from_config(load_config(demo_dir / "crmmetrics.toml"))
        groups = alert_rules(standards_in_force(app.store), app.registry, app.config)
    finally:
        patch.undo()
    red = [rule for group in groups["groups"] for rule in group["rules"] if rule["alert"] == "CrmmetricsKpiRed"]
    assert len(red) > 30
    service = crmmetrics_service(demo_dir / "crmmetrics.toml", env={LOAD_ENV: BUILT_IN})
    prometheus.start(targets=[f"127.0.0.1:{service.port}"])
    prometheus.wait_for('up{job="crmmetrics"} == 1')
    prometheus.wait_for("crmmetrics_scorecard_index")
    empty = []
    for rule in red:
        widened = rule["expr"].replace(" == 0)", " >= 0)")
        assert widened.count(" >= 0)") == 1, rule["expr"]
        series = prometheus.query(widened)
        if not series or any(s["metric"].get("period") != "current" for s in series):
            empty.append(f"{rule['labels']['standard']}: {widened}")
    assert empty == [], "\n".join(empty)
