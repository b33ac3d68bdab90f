"""Every PromQL expression of the committed dashboards returns data from a real Prometheus.

Demo data -> ``crmmetrics serve`` (the built-in plugins only, as the dashboards are built) -> a
real Prometheus scraping it every second; then each panel's queries and each query variable run
as instant queries, with Grafana's variables replaced by what Grafana would send.

A query about one metric may come back empty only when the store has nothing for it to show: no
current value at all (e.g. no campaign ran last month), or, for a change on the previous
period, no previous value (the demo's employee pulse surveys are half-yearly, so a monthly eNPS
has no previous month). Every other query must return at least one series.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from crmmetrics.plugins import LOAD_ENV
from crmmetrics.store import Store

pytestmark = pytest.mark.prometheus

DASHBOARDS = Path(__file__).resolve().parent.parent / "dashboards"
BUILT_IN = "strategy_development,value_creation,multichannel_integration,information_management,performance_assessment"
# What Grafana puts in place of its variables: intervals of a 1 s scrape, the "All" value.
SUBSTITUTIONS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$plugin": ".*"}
_LABEL_VALUES = re.compile(r"^label_values\((?P<metric>[a-z_]+), (?P<label>[a-z_]+)\)$")
_METRIC = re.compile(r'metric="([a-z0-9_]+)"')


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
        [sys.executable, "-m", "crmmetrics", "demo", "--dir", str(directory), "--customers", "300", "--seed", "3", "--once"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, LOAD_ENV: BUILT_IN},
    )
    assert done.returncode == 0, done.stderr
    return directory


def test_substitution_replaces_grafana_variables():
    assert substitute('increase(x{plugin=~"$plugin"}[$__rate_interval])') == 'increase(x{plugin=~".*"}[1m])'
    assert substitute("sum(increase(x[${__range}]))") == "sum(increase(x[1h]))"


def stored_periods(directory: Path) -> dict[str, set[str]]:
    """For each metric, the periods ("current", "previous") for which the store holds a value."""
    store = Store(f"sqlite:///{directory / 'store.sqlite'}")
    try:
        periods: dict[str, set[str]] = {}
        for observation in store.latest_observations():
            if observation.value is not None:
                periods.setdefault(observation.metric_key, set()).add(observation.period_label)
        return periods
    finally:
        store.engine.dispose()


def nothing_to_show(expr: str, periods: dict[str, set[str]]) -> bool:
    """Is an empty answer right: a query about one metric whose store lacks the values it reads?"""
    metrics = set(_METRIC.findall(expr))
    if len(metrics) != 1:
        return False
    needed = {"current", "previous"} if 'period="previous"' in expr else {"current"}
    return not needed <= periods.get(metrics.pop(), set())


def test_an_empty_answer_is_excused_only_by_missing_values():
    periods = {"a": {"current"}, "b": {"current", "previous"}}
    change = 'x{metric="a", period="current"} - ignoring(period) x{metric="a", period="previous"}'
    assert nothing_to_show(change, periods)
    assert not nothing_to_show('x{metric="a", period="current"}', periods)
    assert not nothing_to_show(change.replace('"a"', '"b"'), periods)
    assert nothing_to_show('x{metric="c", period="current"}', periods)
    assert not nothing_to_show("crmmetrics_scorecard_index", periods)


def test_every_dashboard_query_returns_data(demo_dir, prometheus, crmmetrics_service):
    queries = dashboard_queries()
    assert len(queries) > 100
    service = crmmetrics_service(demo_dir / "crmmetrics.toml", env={LOAD_ENV: BUILT_IN})
    prometheus.start(targets=[f"127.0.0.1:{service.port}"])
    prometheus.wait_for('up{job="crmmetrics"} == 1')
    # increase() over a window needs two scrapes in it.
    prometheus.wait_for("count_over_time(crmmetrics_runs_total[1m]) > 1")
    periods = stored_periods(demo_dir)
    empty, excused = [], []
    for where, expr in queries:
        result = prometheus.query(substitute(expr))  # a query Prometheus rejects fails here
        if not result:
            (excused if nothing_to_show(expr, periods) else empty).append(f"{where}: {expr}")
    assert empty == [], f"{len(empty)} of {len(queries)} queries returned no data:\n" + "\n".join(empty)
    # Most queries have data to show: the excuse stays the exception.
    assert len(excused) < len(queries) // 10, "\n".join(excused)
    print(f"{len(queries)} queries, {len(queries) - len(excused)} returned data, "
          f"{len(excused)} had nothing to show in the store")
