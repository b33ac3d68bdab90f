"""examples/crmmetrics-loyalty end to end: installed into a fresh virtual environment it passes its
own tests, and its metrics reach ``plugins --json``, ``metrics list --json``, ``/metrics``, the
dashboards and its own CLI command, computed on the demo database."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import create_engine, text

from crmmetrics.testing import render_exposition
from support.plugin_venv import PluginVenv, dashboard_panels_of, write_config

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "crmmetrics-loyalty"
FREQUENCY = "loyalty_purchase_frequency"
COST = "loyalty_programme_cost_per_active_customer"


def may_2026_orders_per_customer(url: str) -> float:
    """The total purchase frequency of May 2026 by plain SQL, independently of the plugin."""
    engine = create_engine(url)
    with engine.connect() as connection:
        orders, customers = connection.execute(
            text(
                "SELECT count(*), count(DISTINCT coalesce(c.master_customer_id, c.customer_id)) "
                "FROM orders o JOIN customers c ON c.customer_id = o.customer_id "
                "WHERE o.ordered_at >= '2026-05-01' AND o.ordered_at < '2026-06-01'"
            )
        ).one()
    engine.dispose()
    return orders / customers


def test_example_plugin_end_to_end(demo_db, tmp_path):
    package = tmp_path / "crmmetrics-loyalty"
    shutil.copytree(EXAMPLE, package)  # build outside the checkout: no build/ or egg-info left there
    venv = PluginVenv(tmp_path / "venv")
    venv.install(package)

    tests = venv.pytest(package)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "7 passed" in tests.stdout

    plugins = {plugin["name"]: plugin for plugin in venv.crmmetrics_json("plugins", cwd=tmp_path)}
    assert (plugins["loyalty"]["package"], plugins["loyalty"]["metrics"]) == ("crmmetrics-loyalty", [COST, FREQUENCY])
    metrics = {m["key"]: m for m in venv.crmmetrics_json("metrics", "list", cwd=tmp_path) if m["plugin"] == "loyalty"}
    assert {key: (m["process"], m["unit"], m["dimensions"]) for key, m in metrics.items()} == {
        FREQUENCY: ("value_creation", "ratio", ["segment"]),
        COST: ("performance_assessment", "currency", []),
    }

    service = tmp_path / "service"
    service.mkdir()
    config = write_config(service, demo_db.url, demo_db.as_of.isoformat())
    venv.crmmetrics("run", "--config", str(config), "--metric", FREQUENCY, "--metric", COST, cwd=tmp_path)
    exposition = render_exposition(f"sqlite:///{service / 'store.sqlite'}")
    total = exposition.value("crmmetrics_metric_ratio", metric=FREQUENCY, period="current")
    assert abs(total - may_2026_orders_per_customer(demo_db.url)) < 1e-9
    segments = {s.labels["segment"] for s in exposition.samples("crmmetrics_metric_by_segment_ratio", metric=FREQUENCY, period="current")}
    # The demo's six segments and the plugin's "unassigned" (demo customers without a segment), in
    # a family of their own (the total is not beside them).
    assert segments == {"Premium households", "Young professionals", "Families", "Value seekers", "Small businesses", "Occasional buyers", "unassigned"}
    assert exposition.value("crmmetrics_metric_currency", metric=COST, period="current") > 0  # the demo books loyalty programme costs
    assert exposition.value("crmmetrics_kpi_target_ratio", metric=FREQUENCY) == 1.5

    report = venv.crmmetrics("loyalty", "report", "--config", str(config), cwd=tmp_path).stdout.splitlines()
    assert report[1].startswith(f"{FREQUENCY}  current {total:.2f}  previous ")

    venv.crmmetrics("dashboards", "build", "--out", str(tmp_path / "dashboards"), cwd=tmp_path)
    assert dashboard_panels_of(tmp_path / "dashboards" / "process-value-creation.json", FREQUENCY)
    assert dashboard_panels_of(tmp_path / "dashboards" / "process-performance-assessment.json", COST)
