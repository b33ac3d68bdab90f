"""The metric model on the demo's exposition (docs/operations.md, "The metric model").

``crmmetrics demo --once`` with the built-in plugins, then the real exporter's ``/metrics``,
parsed as Prometheus parses it, against ``crmmetrics metrics list --json``: every family has one
unit (named at the end of its name, the ``base_unit`` of each of its metrics) and one label set;
a metric's total and its breakdown are never in the same family; percentages are 0-1 ratios.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections import defaultdict

import pytest

from crmmetrics.compute.plugins import LOAD_ENV
from crmmetrics.core.definitions import EXPORT_UNITS
from crmmetrics.testing import render_exposition

BUILT_IN = "strategy_development,value_creation,multichannel_integration,information_management,performance_assessment"
OWN_LABELS = {"metric", "process", "perspective", "period"}
# Families with a metric's value (or a value in its unit): crmmetrics_metric[_by_...]_<unit>,
# crmmetrics_kpi[_by_...]_{target,red_threshold,green_threshold}_<unit>.
UNITS = sorted({unit.suffix for unit in EXPORT_UNITS.values()}, key=len, reverse=True)
VALUE_FAMILY = re.compile(rf"^crmmetrics_metric(?:_by_(?P<by>[a-z_]+?))?_(?P<unit>{'|'.join(UNITS)})$")
KPI_UNIT_FAMILY = re.compile(
    rf"^crmmetrics_kpi(?:_by_(?P<by>[a-z_]+?))?_(?:target|red_threshold|green_threshold)_(?P<unit>{'|'.join(UNITS)})$"
)
KPI_FAMILY = re.compile(r"^crmmetrics_kpi(?:_by_(?P<by>[a-z_]+?))?_(?:status|score|change_ratio|weight)$")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    directory = tmp_path_factory.mktemp("model-demo")
    env = {**os.environ, LOAD_ENV: BUILT_IN}
    done = subprocess.run(
        [sys.executable, "-m", "crmmetrics", "demo", "--dir", str(directory), "--customers", "300", "--seed", "3", "--once", "--history-months", "0"],
        capture_output=True, text=True, env=env,
    )
    assert done.returncode == 0, done.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "crmmetrics", "metrics", "list", "--json", "--config", str(directory / "crmmetrics.toml")],
        capture_output=True, text=True, env=env, check=True,
    )
    metrics = {row["key"]: row for row in json.loads(listed.stdout)}
    exposition = render_exposition(f"sqlite:///{directory / 'store.sqlite'}")
    return directory, exposition, metrics


def families(exposition):
    return {family.name: family for family in exposition.families}


def test_every_family_has_one_label_set(demo):
    _, exposition, _ = demo
    assert len(exposition.families) > 40
    for family in exposition.families:
        label_sets = {frozenset(sample.labels) for sample in family.samples}
        assert len(label_sets) <= 1, f"{family.name} has {len(label_sets)} label sets: {label_sets}"


def test_every_family_with_a_unit_holds_metrics_of_that_unit_only(demo):
    _, exposition, metrics = demo
    checked = 0
    for family in exposition.families:
        match = VALUE_FAMILY.match(family.name) or KPI_UNIT_FAMILY.match(family.name)
        if not match or family.name.endswith("_timestamp_seconds"):
            continue
        units = {metrics[sample.labels["metric"]]["base_unit"] for sample in family.samples}
        assert units == {match["unit"]}, f"{family.name} mixes {units}"
        checked += 1
    # Values in ratio, currency, customers, seconds, points, score, occasions, per_customer; and
    # the KPIs' targets and thresholds in the same units.
    assert checked >= 20
    # Every metric in metrics list has one base unit, and its values are in the family of that unit.
    for key, row in metrics.items():
        held = {name for name, family in families(exposition).items() if VALUE_FAMILY.match(name)
                for sample in family.samples if sample.labels["metric"] == key}
        assert held and all(name.endswith("_" + row["base_unit"]) for name in held), (key, held)


def test_no_total_beside_its_breakdown(demo):
    _, exposition, metrics = demo
    for family in exposition.families:
        match = VALUE_FAMILY.match(family.name) or KPI_UNIT_FAMILY.match(family.name) or KPI_FAMILY.match(family.name)
        if not match or family.name.endswith("_timestamp_seconds"):
            continue
        named = set(match["by"].split("_and_")) if match["by"] else set()
        for sample in family.samples:
            dimensions = set(sample.labels) - OWN_LABELS
            # A total (no dimension label) only in a family without _by_, a breakdown only in the
            # family named after exactly its dimensions.
            assert dimensions == named, f"{family.name}: {sample.labels}"
            assert dimensions <= set(metrics[sample.labels["metric"]]["dimensions"])


def test_summing_a_count_breakdown_gives_its_total(demo):
    """The point of separate families: sum() over a breakdown adds customers to customers once."""
    _, exposition, _ = demo
    total = exposition.value("crmmetrics_metric_customers", metric="vc_new_customers", period="current")
    by_channel = exposition.samples("crmmetrics_metric_by_channel_category_customers", metric="vc_new_customers", period="current")
    assert total > 0 and len(by_channel) > 1
    assert sum(sample.value for sample in by_channel) == pytest.approx(total)


def test_percent_values_are_ratios_between_0_and_1(demo):
    directory, exposition, metrics = demo
    shares = {key for key, row in metrics.items() if row["unit"] == "percent"}
    values = [
        (sample.labels["metric"], sample.value)
        for name, family in families(exposition).items() if VALUE_FAMILY.match(name)
        for sample in family.samples if sample.labels["metric"] in shares
    ]
    assert len({key for key, _ in values}) == len(shares) > 20
    # 1e-12: a share that a plugin's floating-point sum puts a hair above 100%.
    outside = [(key, value) for key, value in values if not -1e-12 <= value <= 1 + 1e-12]
    assert outside == []
    # The stored value is the percentage; the exported one that divided by 100, for unbounded
    # percentages too (a margin below 0).
    with sqlite3.connect(directory / "store.sqlite") as db:
        stored = dict(db.execute(
            "SELECT metric_key, value FROM observations WHERE period_label = 'current' AND dimensions = '{}' "
            "AND metric_key IN ('vc_csat', 'mci_romi') ORDER BY id"
        ).fetchall())
    assert exposition.metric_value("vc_csat") == pytest.approx(stored["vc_csat"] / 100)
    assert exposition.metric_value("mci_romi") == pytest.approx(stored["mci_romi"] / 100)


def test_durations_are_in_seconds(demo):
    directory, exposition, metrics = demo
    assert metrics["vc_cac_payback_months"]["base_unit"] == "seconds"
    with sqlite3.connect(directory / "store.sqlite") as db:
        months = db.execute(
            "SELECT value FROM observations WHERE metric_key = 'vc_cac_payback_months' AND period_label = 'current' ORDER BY id DESC"
        ).fetchone()[0]
    assert exposition.value("crmmetrics_metric_seconds", metric="vc_cac_payback_months", period="current") == pytest.approx(
        months * 365.25 / 12 * 86400
    )


def test_values_say_their_period(demo):
    _, exposition, metrics = demo
    start = {(s.labels["metric"], s.labels["period"]): s.value for s in exposition.samples("crmmetrics_metric_period_start_timestamp_seconds")}
    end = {(s.labels["metric"], s.labels["period"]): s.value for s in exposition.samples("crmmetrics_metric_period_end_timestamp_seconds")}
    exported = {(s.labels["metric"], s.labels["period"]) for name, family in families(exposition).items() if VALUE_FAMILY.match(name)
                for s in family.samples}
    assert exported <= set(start) == set(end)
    for key in start:
        assert start[key] < end[key]
    # A calendar month: the previous period ends where the current one starts, 28-31 days each.
    current, previous = ("vc_aov", "current"), ("vc_aov", "previous")
    assert metrics["vc_aov"]["period"] == "month"
    assert end[previous] == start[current]
    assert 28 * 86400 <= end[current] - start[current] <= 31 * 86400


def test_kpis_by_status_cover_every_kpi(demo):
    _, exposition, _ = demo
    counts = {s.labels["status"]: s.value for s in exposition.samples("crmmetrics_scorecard_kpis")}
    assert set(counts) == {"green", "amber", "red", "no_data"}
    statuses = [s for name, family in families(exposition).items() if KPI_FAMILY.match(name) and name.endswith("_status")
                for s in family.samples]
    assert counts["green"] + counts["amber"] + counts["red"] == len(statuses) > 0
    per_process = defaultdict(float)
    for sample in exposition.samples("crmmetrics_scorecard_process_kpis"):
        per_process[sample.labels["status"]] += sample.value
    assert dict(per_process) == counts


def test_coverage_is_the_share_of_kpis_with_data_per_roll_up(demo):
    _, exposition, _ = demo
    counts = {s.labels["status"]: s.value for s in exposition.samples("crmmetrics_scorecard_kpis")}
    assert exposition.value("crmmetrics_scorecard_coverage_ratio") == pytest.approx(1 - counts["no_data"] / sum(counts.values()))
    by_process = defaultdict(dict)
    for sample in exposition.samples("crmmetrics_scorecard_process_kpis"):
        by_process[sample.labels["process"]][sample.labels["status"]] = sample.value
    coverage = {s.labels["process"]: s.value for s in exposition.samples("crmmetrics_scorecard_process_coverage_ratio")}
    assert coverage == {p: pytest.approx(1 - c["no_data"] / sum(c.values())) for p, c in by_process.items()}


def test_promtool_check_metrics_is_clean(demo):
    _, exposition, _ = demo
    checked = subprocess.run(["promtool", "check", "metrics"], input=exposition.text, capture_output=True, text=True)
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")
