"""No data is no data: on an orders-only source every KPI that needs an empty table is missing
with its reason, no missing KPI is scored, and every roll-up states its coverage.

The source is the demo with every table but orders, customers, segments and channels emptied
(what a transaction-log import gives), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine, text

from crmmetrics.core.config import parse_config
from crmmetrics.core.periods import reporting_periods
from crmmetrics.data.demo import generate_demo
from crmmetrics.readers.scorecard import build_scorecard
from crmmetrics.serve.app import App

AS_OF = dt.datetime(2026, 6, 15)
EMPTIED = (
    "survey_responses", "employee_survey_responses", "interactions", "cost_entries",
    "order_lines", "employees", "data_quality_facts", "campaigns",
)


def orders_only(url: str) -> None:
    generate_demo(url, customers=300, seed=5, as_of=AS_OF.date())
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE orders SET campaign_id = NULL"))
        connection.execute(text("UPDATE customers SET acquisition_campaign_id = NULL"))
        for table in EMPTIED:
            connection.execute(text(f"DELETE FROM {table}"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def orders_only_app(request, tmp_path):
    if request.param == "sqlite":
        source = f"sqlite:///{tmp_path / 'crm.sqlite'}"
    else:
        source = request.getfixturevalue("pg_databases").create()
    orders_only(source)
    config = parse_config(
        {
            "source": {"url": source},
            "store": {"url": f"sqlite:///{tmp_path / 'store.sqlite'}"},
            "service": {"as_of": AS_OF},
        },
        None,
    )
    app = App.from_config(config)
    yield app
    app.source.dispose()


def test_orders_only_source_is_no_data_where_tables_are_empty(orders_only_app):
    app = orders_only_app
    runs = app.runner.run_all()
    assert all(run.status == "success" for run in runs), [(r.metric_key, r.error) for r in runs if r.status != "success"]
    latest = {
        (o.metric_key, o.period_label): o for o in app.store.latest_observations() if not o.dimensions
    }
    needing_empty = {
        d.key: next(n.table for n in d.inputs(app.config.metric_settings(d).params) if n.table in EMPTIED)
        for d in app.registry
        if any(n.table in EMPTIED for n in d.inputs(app.config.metric_settings(d).params))
    }
    # The KPIs the issue found green on empty tables are among them.
    assert {"vc_complaint_rate", "pa_unprofitable_customer_share", "pa_whale_curve_peak", "pa_cost_to_serve",
            "pa_crm_cost_per_active_customer", "vc_nps", "mci_romi", "pa_employee_turnover"} <= set(needing_empty)
    for key, table in needing_empty.items():
        definition = app.registry.get(key)
        current, _previous = reporting_periods(app.config.metric_settings(definition).period, AS_OF)
        observation = latest[(key, "current")]
        assert observation.value is None, key
        scope = "" if table in ("employees",) else f" for {current.describe()}"
        # The first empty input in the metric's declared order is the one named.
        first = next(n for n in definition.inputs() if n.table in EMPTIED)
        assert observation.reason == f"no {'values of ' + str(first) if first.column else 'rows in ' + first.table}{scope}", key
        # Only the total is stored: no breakdown of nothing.
        assert [o for o in app.store.latest_observations() if o.metric_key == key and o.dimensions] == []
    assert latest[("vc_complaint_rate", "current")].reason == "no rows in interactions for 2026-05"
    assert latest[("pa_enps", "current")].reason == "no rows in employee_survey_responses for 2026-Q1"
    assert latest[("pa_employee_turnover", "current")].reason == "no rows in employees"
    # Metrics that rest on orders alone still have values.
    for key in ("vc_aov", "sd_active_customers", "vc_active_retention_rate", "im_identified_revenue_share"):
        assert latest[(key, "current")].value is not None, key

    card = build_scorecard(app.store)
    for kpi in card.kpis:
        if kpi.metric in needing_empty:
            assert (kpi.value, kpi.status, kpi.score) == (None, None, None), kpi.key
            assert kpi.missing_reason and kpi.missing_reason.startswith("no "), kpi.key
    with_data = [k for k in card.kpis if k.score is not None]
    assert card.coverage.with_data == len(with_data) < card.coverage.total == len(card.kpis)
    # Every roll-up: coverage counts its KPIs, and a roll-up without data has no score.
    for perspective, coverage in card.perspective_coverage.items():
        members = [k for k in card.kpis if k.perspective == perspective]
        assert (coverage.with_data, coverage.total) == (sum(k.score is not None for k in members), len(members))
        assert (card.perspectives[perspective] is None) == (coverage.with_data == 0)
    for process, coverage in card.process_coverage.items():
        members = [k for k in card.kpis if k.process == process]
        assert (coverage.with_data, coverage.total) == (sum(k.score is not None for k in members), len(members))
        assert (card.processes[process] is None) == (coverage.with_data == 0)
    for cell, coverage in card.cell_coverage.items():
        assert (card.cells[cell] is None) == (coverage.with_data == 0)
    # Employee value has nothing measured: "no data", not a score.
    learning = card.cell_coverage[("performance_assessment", "learning_growth")]
    assert learning.with_data == 0 and learning.total >= 3
    assert card.cells[("performance_assessment", "learning_growth")] is None
    # The index is the mean over perspectives that have data.
    scored = [s for s in card.perspectives.values() if s is not None]
    assert card.index == pytest.approx(sum(scored) / len(scored))

    body = card.to_json()
    assert body["coverage"]["kpis_with_data"] == card.coverage.with_data
    complaint = next(k for k in body["kpis"] if k["key"] == "vc_complaint_rate")
    assert complaint["period"] == {"start": "2026-05-01T00:00:00Z", "end": "2026-06-01T00:00:00Z", "label": "2026-05"}
    assert complaint["missing_reason"] == "no rows in interactions for 2026-05"
