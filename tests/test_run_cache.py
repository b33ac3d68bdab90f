"""Within one run, metrics that need the same per-customer work share one computation through
the compute context (``ctx.shared``): the RFM shares, the CLV fit and the CLV forecast checks one
purchase summary per period end, the two forecast KPIs one holdout fit; each metric's values are
those it gets when computed alone."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import event

from crmmetrics.core.config import parse_config
from crmmetrics.data.demo import generate_demo
from crmmetrics.serve.app import App

AS_OF = date(2026, 11, 1)
RFM = ["sd_rfm_champion_share", "sd_rfm_at_risk_share"]
FORECAST = ["im_clv_forecast_correlation", "im_clv_forecast_error"]
CLV = ["vc_ltv_cac_ratio"]
SEGMENTS_SQL = "SELECT customers.customer_id, customers.segment_id, customers.category_wallet \nFROM customers ORDER BY customers.customer_id"


@pytest.fixture(scope="module")
def crm(tmp_path_factory):
    path = tmp_path_factory.mktemp("crm") / "crm.sqlite"
    generate_demo(f"sqlite:///{path}", customers=1500, seed=11, as_of=AS_OF)
    return path


def app_on(crm, tmp_path, monkeypatch) -> tuple[App, list[str]]:
    monkeypatch.setenv("CRMMETRICS_LOAD_PLUGINS", "strategy_development,information_management,value_creation")
    config = parse_config(
        {
            "source": {"url": f"sqlite:///{crm}"},
            "store": {"url": f"sqlite:///{tmp_path / f'store-{len(list(tmp_path.iterdir()))}.sqlite'}"},
            "service": {"as_of": datetime(AS_OF.year, AS_OF.month, AS_OF.day)},
        },
        None,
    )
    app = App.from_config(config)
    statements: list[str] = []
    event.listen(app.runner.source, "before_cursor_execute", lambda c, cur, statement, *rest: statements.append(statement))
    return app, statements


def values(app: App) -> dict[str, dict]:
    """The stored values of the latest run of each metric."""
    latest: dict[str, dict] = {}
    for o in app.store.latest_observations():
        latest.setdefault(o.metric_key, {})[(o.period_label, tuple(sorted(o.dimensions.items())))] = o.value
    return latest


def values_alone(crm, tmp_path, monkeypatch, keys: list[str]) -> dict[str, dict]:
    """Each metric's stored values when it runs alone, in a run of its own."""
    alone = {}
    for key in keys:
        app_alone, _ = app_on(crm, tmp_path, monkeypatch)
        app_alone.runner.run_all([key])
        alone.update(values(app_alone))
    return alone


def test_one_purchase_summary_per_period_end_in_a_run(crm, tmp_path, monkeypatch):
    """The RFM shares, the CLV fit and the forecast checks read one purchase summary per period
    end: the month KPIs' ends (RFM and LTV/CAC share them) and the quarter's calibration ends."""
    app, statements = app_on(crm, tmp_path, monkeypatch)
    runs = app.runner.run_all(RFM + FORECAST + CLV)
    assert {run.metric_key for run in runs} >= set(RFM + FORECAST + CLV)  # and what LTV/CAC depends on
    assert all(run.status == "success" for run in runs), [run.error for run in runs]
    # month: ends 2026-11-01 and 2026-10-01; quarter: calibration ends (its starts) 07-01, 04-01
    assert sum("ranked_days" in s for s in statements) == 4
    assert sum(SEGMENTS_SQL in s for s in statements) == 1  # the customers' segments, once per run
    shared = values(app)
    # each forecast KPI keeps the fit it used with its own run, current and previous period
    fits = [fit.metric_key for fit in app.store.latest_model_fits()]
    assert sorted(fits) == sorted(FORECAST * 2 + CLV * 4)  # LTV/CAC: BG/NBD and Gamma-Gamma per period

    assert shared == values_alone(crm, tmp_path, monkeypatch, RFM + FORECAST + CLV)
    assert any(v is not None for v in shared["im_clv_forecast_error"].values())
    assert shared["sd_rfm_champion_share"][("current", ())] > 0


# The RFM counts as the KPIs computed them in SQL before they shared the purchase summary: the
# numpy scores must give the same counts, segment by segment.
RFM_SQL = """
WITH inputs AS (
    SELECT coalesce(c.master_customer_id, c.customer_id) AS customer_id, m.segment_id AS segment_id,
           max(date(o.ordered_at)) AS last_day, count(DISTINCT date(o.ordered_at)) AS frequency,
           sum(o.net_revenue) AS monetary
    FROM orders o JOIN customers c ON c.customer_id = o.customer_id
    LEFT JOIN customers m ON m.customer_id = coalesce(c.master_customer_id, c.customer_id)
    WHERE o.ordered_at < :end GROUP BY 1, 2
), scored AS (
    SELECT segment_id,
           1 + (5 * (rank() OVER (ORDER BY last_day) - 1)) / count(*) OVER () AS r,
           1 + (5 * (rank() OVER (ORDER BY frequency) - 1)) / count(*) OVER () AS f,
           1 + (5 * (rank() OVER (ORDER BY monetary) - 1)) / count(*) OVER () AS m
    FROM inputs
)
SELECT segment_id, count(*), sum(r >= 4 AND f >= 4 AND m >= 4), sum(r <= 2 AND f >= 4)
FROM scored GROUP BY segment_id ORDER BY segment_id
"""


@pytest.mark.parametrize("end", [datetime(2026, 11, 1), datetime(2026, 10, 1), datetime(2025, 3, 1)])
def test_rfm_scores_from_the_shared_summary_count_as_the_sql_did(crm, end):
    import sqlite3

    from plugins.strategy_development import _rfm_counts
    from crmmetrics.core import schema
    from crmmetrics.core.definitions import ComputeContext, RunCache
    from crmmetrics.core.periods import Period
    from sqlalchemy import create_engine

    with sqlite3.connect(crm) as raw:
        expected = [tuple(row) for row in raw.execute(RFM_SQL, {"end": end.isoformat(sep=" ")})]
    engine = create_engine(f"sqlite:///{crm}")
    with engine.connect() as connection:
        ctx = ComputeContext(connection=connection, tables=schema.TABLES, params={}, period=Period("current", datetime(2000, 1, 1), end),
                             as_of=end, metric=None, run_cache=RunCache())
        counts = _rfm_counts(ctx)
    assert counts == expected
    assert sum(row[2] for row in counts) > 10 and sum(row[3] for row in counts) > 10  # champions and customers at risk


ACTIVITY_SQL = "FROM (SELECT customer_orders.customer_id AS customer_id"  # a period's customers, read as arrays
RETURNING = ["vc_active_retention_rate", "vc_active_churn_rate", "vc_net_revenue_retention", "vc_clv_simple"]


def test_one_returning_customers_query_per_period_in_a_run(crm, tmp_path, monkeypatch):
    """Retention and churn (a quarter) share the customers active in the preceding and this
    period; so do net revenue retention and the simple CLV (trailing 365 days). Each window's
    customers are read once: the previous period's window is the current one's preceding one."""
    app, statements = app_on(crm, tmp_path, monkeypatch)
    runs = app.runner.run_all(RETURNING)
    assert [run.status for run in runs] == ["success"] * 4, [run.error for run in runs]
    # two period kinds, three windows each (current, previous, the one before): six reads
    assert sum(ACTIVITY_SQL in s for s in statements) == 6
    shared = values(app)
    alone = {}
    for key in RETURNING:
        app_alone, alone_statements = app_on(crm, tmp_path, monkeypatch)
        app_alone.runner.run_all([key])
        assert sum(ACTIVITY_SQL in s for s in alone_statements) == 3
        alone.update(values(app_alone))
    assert shared == alone
    assert all(any(v is not None for v in shared[key].values()) for key in RETURNING)


TRAILING = ["vc_repeat_purchase_rate", "vc_purchase_frequency", "sd_revenue_concentration_top20", "sd_target_segment_penetration",
            "vc_net_revenue_retention", "vc_share_of_wallet"]


def test_the_trailing_year_kpis_read_each_windows_customers_once(crm, tmp_path, monkeypatch):
    """Six KPIs of the trailing 365 days count from one read of each window's customers."""
    app, statements = app_on(crm, tmp_path, monkeypatch)
    runs = app.runner.run_all(TRAILING)
    assert [run.status for run in runs] == ["success"] * 6, [run.error for run in runs]
    # the current and previous windows, and the one before (net revenue retention's previous)
    assert sum(ACTIVITY_SQL in s for s in statements) == 3
    shared = values(app)
    assert shared == values_alone(crm, tmp_path, monkeypatch, TRAILING)
    assert all(shared[key][("current", ())] is not None for key in TRAILING)


ACTIVE = ["vc_complaint_rate", "sd_active_customers"]
ACTIVE_SQL = "count(distinct(masters.master_id))"  # the kit's distinct customers of a table


def test_kpis_that_share_a_measure_read_it_once_per_run(crm, tmp_path, monkeypatch):
    """The complaint rate's denominator (the customers active in the year before the period end)
    is the active customer base of the year to date: one query for both in a run."""
    app, statements = app_on(crm, tmp_path, monkeypatch)
    runs = app.runner.run_all(ACTIVE)
    assert [run.status for run in runs] == ["success"] * 2, [run.error for run in runs]
    shared = values(app)
    sent = {}
    alone = {}
    for key in ACTIVE:
        app_alone, alone_statements = app_on(crm, tmp_path, monkeypatch)
        app_alone.runner.run_all([key])
        sent[key] = sum(ACTIVE_SQL in s for s in alone_statements)
        alone.update(values(app_alone))
    assert shared == alone
    assert shared["sd_active_customers"][("current", ())] > 100
    # each alone reads it for its current and previous period; together, the year to date once
    assert sent == {"vc_complaint_rate": 2, "sd_active_customers": 2}
    assert sum(ACTIVE_SQL in s for s in statements) == 3


CLV = ["vc_clv_bgnbd_gg", "vc_expected_alive_customers", "vc_customer_equity", "vc_segment_clv", "vc_ltv_cac_ratio"]


@pytest.fixture
def fits(monkeypatch):
    """The period ends the shared BG/NBD + Gamma-Gamma fit was computed at, one entry per fit."""
    from crmmetrics.kpi import customer_value

    ends: list[datetime] = []
    fit = customer_value._fit

    def counted(ctx, end, *params):
        ends.append(end)
        return fit(ctx, end, *params)

    monkeypatch.setattr(customer_value, "_fit", counted)
    return ends


def test_one_clv_fit_per_period_in_a_run_of_all_clv_kpis(crm, tmp_path, monkeypatch, fits):
    app, _ = app_on(crm, tmp_path, monkeypatch)
    runs = app.runner.run_all(CLV)
    assert [run.status for run in runs] == ["success"] * len(CLV), [run.error for run in runs]
    # five KPIs, two periods: one fit for November's start (current) and one for October's
    assert sorted(fits) == [datetime(2026, 10, 1), datetime(2026, 11, 1)]
    shared = values(app)
    assert shared["vc_customer_equity"][("current", ())] > 0

    # Nothing survives the run: the next run fits again (it may see changed data), for the
    # current period; the closed previous one keeps its stored values while its inputs are the
    # same (tests/test_closed_periods.py), and --recompute fits it again too.
    fits.clear()
    app.runner.run_all(CLV[:1])
    assert fits == [datetime(2026, 11, 1)]
    fits.clear()
    app.runner.run_all(CLV[:1], recompute=True)
    assert sorted(fits) == [datetime(2026, 10, 1), datetime(2026, 11, 1)]

    # The same values as each KPI computed alone (each then fits for itself).
    alone = {}
    for key in CLV:
        app_alone, _ = app_on(crm, tmp_path, monkeypatch)
        app_alone.runner.run_all([key])
        alone.update(values(app_alone))
    assert {key: shared[key] for key in CLV} == {key: alone[key] for key in CLV}


def test_a_backfill_fits_each_period_once(crm, tmp_path, monkeypatch, fits):
    from crmmetrics.compute.backfill import plan_backfill, run_backfill

    app, _ = app_on(crm, tmp_path, monkeypatch)
    # Three monthly steps (September, October, November 1) of two CLV KPIs and an RFM share.
    keys = CLV[:2] + RFM[:1]
    plan = plan_backfill(app.runner, keys, datetime(2026, 8, 1), datetime(2026, 11, 1))
    months = sorted({as_of for as_of, key in plan.todo if key == CLV[0]})
    assert len(months) == 3, plan.todo
    runs = run_backfill(app.runner, plan)
    assert all(run.status == "success" for run in runs), [run.error for run in runs]
    # Each step's previous period is the step before's current one: four period ends, one fit each.
    assert sorted(fits) == [datetime(2026, 8, 1), datetime(2026, 9, 1), datetime(2026, 10, 1), datetime(2026, 11, 1)]


def test_scheduled_clv_kpis_due_together_share_one_fit_per_period(crm, tmp_path, monkeypatch, fits):
    """Under ``serve`` each metric is its own job; the CLV KPIs due at the same time share."""
    from crmmetrics.compute.health import ServiceHealth
    from crmmetrics.compute.scheduler import RunWindow, scheduled_run

    app, _ = app_on(crm, tmp_path, monkeypatch)
    window, health = RunWindow(), ServiceHealth()
    runs = [scheduled_run(app.runner, key, health, window) for key in CLV]
    assert [run.status for run in runs] == ["success"] * len(CLV)
    assert sorted(fits) == [datetime(2026, 10, 1), datetime(2026, 11, 1)]


def test_scheduled_runs_starting_within_a_minute_share_one_cache():
    from crmmetrics.compute.scheduler import RunWindow

    now = [100.0]
    window = RunWindow(seconds=60, clock=lambda: now[0])
    first = window.cache()
    now[0] = 159.0
    assert window.cache() is first  # due at the same time (a worker frees up within the minute)
    now[0] = 160.0
    later = window.cache()
    assert later is not first  # the next schedule tick: a new run, computed afresh
    assert window.cache() is later
