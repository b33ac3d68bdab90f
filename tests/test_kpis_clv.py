"""The model-based CLV KPIs: the SQL summary (x, t_x, T, mbar) by hand, and every KPI against
crmmetrics.kpi.clv applied directly to the hand-built summary, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pytest
from sqlalchemy import create_engine, select
from support.small_shop import insert

from crmmetrics.core import schema
from crmmetrics.core.definitions import ComputeContext, RunCache
from crmmetrics.core.periods import Period
from crmmetrics.kpi.clv import clv_bgnbd_gg, conditional_expected_purchases, conditional_expected_spend, fit_bgnbd, fit_gamma_gamma, p_alive, rfm_summary
from crmmetrics.kpi.customer_value import customer_summary, customer_values

AS_OF = datetime(2026, 3, 10)  # current month February 2026 (fit at 2026-03-01), previous January
SEGMENT = {"Retail": [1, 2, 3, 4, 5, 12, 13], "Business": [6, 7, 8, 9, 10, 11, 14]}

# Orders by master customer (date, net revenue); every first purchase is on a Monday.
ORDERS = {
    1: [(date(2025, 3, 3), 50), (date(2025, 3, 3), 10), (date(2025, 5, 5), 40), (date(2025, 9, 1), 80)],
    2: [(date(2025, 3, 10), 30), (date(2025, 3, 17), 30), (date(2025, 3, 24), 30), (date(2025, 6, 16), 60)],
    3: [(date(2025, 4, 7), 100), (date(2026, 2, 2), 120)],
    4: [(date(2025, 4, 14), 20), (date(2026, 3, 5), 999)],  # the second after the period: ignored
    5: [(date(2025, 5, 12), 45), (date(2025, 8, 11), 55), (date(2025, 11, 10), 65)],
    6: [(date(2025, 6, 2), 15), (date(2025, 6, 9), 25)],  # + 2025-10-13 45 on its duplicate 16
    7: [(date(2025, 6, 30), 70), (date(2025, 12, 29), 90), (date(2026, 2, 23), 110)],
    8: [(date(2025, 7, 7), 200)],  # the only order with cogs: 100
    9: [(date(2025, 8, 4), 35), (date(2025, 9, 1), 35), (date(2025, 9, 29), 35), (date(2025, 10, 27), 35), (date(2025, 11, 24), 35)],
    10: [(date(2025, 9, 8), 80), (date(2026, 1, 5), 40)],
    11: [(date(2025, 10, 6), 60), (date(2026, 2, 16), 30)],
    12: [(date(2025, 11, 3), 25), (date(2025, 12, 1), 75)],
    13: [(date(2026, 1, 12), 40), (date(2026, 2, 9), 20)],
    14: [(date(2026, 2, 2), 90)],
}

# The summary at 2026-03-01 (last day 2026-02-28), in weeks, by hand:
#   x = purchase days after the first; t_x = first to last purchase day; T = first day to 02-28;
#   mbar = mean day total of the repeat days.
#  1: days 03-03 (50 + 10 = one day), 05-05, 09-01: x 2, t_x 182 d, T 362 d, mbar (40 + 80) / 2
#  2: 03-10, 03-17, 03-24, 06-16: x 3, t_x 98, T 355, mbar (30 + 30 + 60) / 3
#  3: 2025-04-07, 2026-02-02: x 1, t_x 301, T 327, mbar 120
#  4: 04-14 (the 03-05 order is after the period): x 0, T 320
#  5: 05-12, 08-11, 11-10: x 2, t_x 182, T 292, mbar (55 + 65) / 2
#  6: 06-02, 06-09 and 10-13 through its duplicate: x 2, t_x 133, T 271, mbar (25 + 45) / 2
#  7: 06-30, 12-29, 02-23: x 2, t_x 238, T 243, mbar (90 + 110) / 2
#  8: 07-07: x 0, T 236
#  9: five Mondays four weeks apart from 08-04: x 4, t_x 112, T 208, mbar 35
# 10: 09-08, 01-05: x 1, t_x 119, T 173, mbar 40
# 11: 10-06, 02-16: x 1, t_x 133, T 145, mbar 30
# 12: 11-03, 12-01: x 1, t_x 28, T 117, mbar 75
# 13: 01-12, 02-09: x 1, t_x 28, T 47, mbar 20
# 14: 02-02: x 0, T 26
# Customer 15 (acquired 2026-02-20) has no order; anonymous orders are no customer's.
IDS = np.arange(1, 15)
X = np.array([2, 3, 1, 0, 2, 2, 2, 0, 4, 1, 1, 1, 1, 0], dtype=float)
T_X = np.array([182, 98, 301, 0, 182, 133, 238, 0, 112, 119, 133, 28, 28, 0]) / 7
T = np.array([362, 355, 327, 320, 292, 271, 243, 236, 208, 173, 145, 117, 47, 26]) / 7
MBAR = np.array([60, 40, 120, 0, 60, 35, 100, 0, 35, 40, 30, 75, 20, 0], dtype=float)

# At 2026-02-01 (last day 01-31) the February purchases are not there yet: 3, 11 and 13 have no
# repeat, 7 one; 14 has not bought. T is 28 days shorter for everyone.
PREVIOUS_X = np.array([2, 3, 0, 0, 2, 2, 1, 0, 4, 1, 0, 1, 0], dtype=float)
PREVIOUS_T_X = np.array([182, 98, 0, 0, 182, 133, 182, 0, 112, 119, 0, 28, 0]) / 7
PREVIOUS_T = (np.array([362, 355, 327, 320, 292, 271, 243, 236, 208, 173, 145, 117, 47]) - 28) / 7
PREVIOUS_MBAR = np.array([60, 40, 0, 0, 60, 35, 90, 0, 35, 40, 0, 75, 0], dtype=float)

# Margin share: identified revenue before 2026-03-01 is 1925; cogs are NULL (margin share 0.3)
# except customer 8's order (200, cogs 100): (0.3 * 1725 + 100) / 1925.
MARGIN_SHARE = (0.3 * 1725 + 100) / 1925
MONTH_WEEKS = 365.25 / 12 / 7
MONTHLY_DISCOUNT = 1.1 ** (1 / 12) - 1  # 10 % a year
HORIZON = 36


def build(database) -> None:
    insert(database, "segments", [{"segment_id": 1, "name": "Retail", "is_target": True}, {"segment_id": 2, "name": "Business", "is_target": False}])
    segment_of = {customer: 1 + (name == "Business") for name, customers in SEGMENT.items() for customer in customers}
    customers = [
        {"customer_id": customer, "segment_id": segment_of[customer], "acquired_at": datetime.combine(orders[0][0], datetime.min.time())}
        for customer, orders in ORDERS.items()
    ]
    customers.append({"customer_id": 15, "segment_id": 2, "acquired_at": datetime(2026, 2, 20)})
    insert(database, "customers", customers)
    # A duplicate of 6, filed in the wrong segment and "acquired" in February: it is customer 6.
    insert(database, "customers", [{"customer_id": 16, "segment_id": 1, "acquired_at": datetime(2026, 2, 10), "master_customer_id": 6}])
    rows = [
        {"customer_id": customer, "ordered_at": datetime.combine(day, datetime.min.time()).replace(hour=9 + i), "net_revenue": float(value),
         "cogs": 100.0 if customer == 8 else None}
        for customer, orders in ORDERS.items()
        for i, (day, value) in enumerate(orders)
    ]
    rows.append({"customer_id": 16, "ordered_at": datetime(2025, 10, 13, 11), "net_revenue": 45.0, "cogs": None})
    rows.append({"customer_id": None, "ordered_at": datetime(2025, 7, 1, 12), "net_revenue": 500.0, "cogs": None})
    insert(database, "orders", [{"order_id": n, **row} for n, row in enumerate(rows, start=1)])
    # Acquisition cost of February: 1000 for the two new customers 14 and 15 -> CAC 500.
    insert(database, "cost_entries", [{"cost_id": 1, "period_start": datetime(2026, 2, 1), "period_end": datetime(2026, 3, 1), "cost_type": "marketing", "purpose": "acquisition", "amount": 1000.0}])


@pytest.fixture
def base(source_backend):
    database = source_backend()
    build(database)
    return database


def context(connection, end: datetime, params=None, run_cache: RunCache | None = None) -> ComputeContext:
    period = Period("current", datetime(end.year, end.month - 1, 1), end)
    params = params or {"margin_share": 0.3, "horizon_months": HORIZON, "annual_discount_rate": 0.10}
    return ComputeContext(connection=connection, tables=schema.TABLES, params=params, period=period, as_of=AS_OF, metric=None,
                          run_cache=run_cache or RunCache())


@pytest.fixture(scope="module")
def expected():
    """The models and per-customer outputs computed directly from the hand-built summary."""
    bg = fit_bgnbd(X, T_X, T)
    gg = fit_gamma_gamma(X, MBAR)
    horizon_weeks = HORIZON * MONTH_WEEKS
    clv = clv_bgnbd_gg(bg, gg, X, T_X, T, MBAR, horizon_periods=HORIZON, period_length=MONTH_WEEKS, discount_rate=MONTHLY_DISCOUNT, margin_share=MARGIN_SHARE)
    zero = np.zeros(1)
    newcomer = clv_bgnbd_gg(bg, gg, zero, zero, zero, zero, horizon_periods=HORIZON, period_length=MONTH_WEEKS, discount_rate=MONTHLY_DISCOUNT, margin_share=MARGIN_SHARE)[0]
    return {
        "p_alive": p_alive(bg, X, T_X, T),
        "expected_purchases": conditional_expected_purchases(bg, horizon_weeks, X, T_X, T),
        "expected_spend": conditional_expected_spend(gg, X, MBAR),
        "clv": clv,
        "newcomer": newcomer,
    }


def by_segment(values, reduce):
    return {name: pytest.approx(float(reduce(values[np.isin(IDS, customers)])), rel=1e-6) for name, customers in SEGMENT.items()}


def segments(result):
    return {dict(dims)["segment"]: value for dims, value in result.dimension_values().items() if dims}


def test_summary_by_hand(base):
    engine = create_engine(base.url)
    with engine.connect() as connection:
        ids, x, t_x, T, mbar = customer_summary(context(connection, datetime(2026, 3, 1)), datetime(2026, 3, 1))
        np.testing.assert_array_equal(ids, IDS)
        np.testing.assert_allclose(np.column_stack([x, t_x, T, mbar]), np.column_stack([X, T_X, T, MBAR]), rtol=1e-12)
        ids, x, t_x, T, mbar = customer_summary(context(connection, datetime(2026, 2, 1)), datetime(2026, 2, 1))
        np.testing.assert_array_equal(ids, np.arange(1, 14))
        np.testing.assert_allclose(
            np.column_stack([x, t_x, T, mbar]), np.column_stack([PREVIOUS_X, PREVIOUS_T_X, PREVIOUS_T, PREVIOUS_MBAR]), rtol=1e-12
        )
    engine.dispose()


def test_summary_matches_rfm_summary_on_the_demo(demo_db):
    """On a few hundred generated customers, the SQL summary equals crmmetrics.kpi.clv.rfm_summary of
    the raw orders (duplicates mapped to their masters, anonymous orders left out)."""
    end = datetime(2026, 6, 1)
    engine = create_engine(demo_db.url)
    orders, customers = schema.orders, schema.customers
    with engine.connect() as connection:
        masters = dict(connection.execute(select(customers.c.customer_id, customers.c.master_customer_id)).all())
        raw = connection.execute(
            select(orders.c.customer_id, orders.c.ordered_at, orders.c.net_revenue).where(orders.c.customer_id.is_not(None), orders.c.ordered_at < end)
        ).all()
        ids, x, t_x, T, mbar = customer_summary(context(connection, end), end)
    engine.dispose()
    owners = np.array([masters[customer] or customer for customer, _, _ in raw])
    reference = rfm_summary(owners, np.array([at for _, at, _ in raw], dtype="datetime64[us]"), np.array([value for _, _, value in raw]), calibration_end="2026-05-31")
    np.testing.assert_array_equal(ids, reference.ids)
    for ours, theirs in ((x, reference.x), (t_x, reference.t_x), (T, reference.T), (mbar, reference.mbar)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9)
    assert np.count_nonzero(x) > 100


def test_clv_bgnbd_gg(base, compute, expected):
    result = compute("vc_clv_bgnbd_gg", base.url, as_of=AS_OF)
    assert result.current() == pytest.approx(float(expected["clv"].mean()), rel=1e-6)
    # January's base has 8 repeat customers (1, 2, 5, 6, 7, 9, 10, 12): too few for a fit, so the
    # previous value is missing while the current one stands.
    assert result.previous() is None
    stored = {row["customer_id"]: row for row in result.customer_values}
    assert sorted(stored) == IDS.tolist()
    for field in ("p_alive", "expected_purchases", "expected_spend", "clv"):
        np.testing.assert_allclose([stored[i][field] for i in IDS.tolist()], expected[field], rtol=1e-6)


def test_expected_alive_customers(base, compute, expected):
    result = compute("vc_expected_alive_customers", base.url, as_of=AS_OF)
    assert result.current() == pytest.approx(float(expected["p_alive"].sum()), rel=1e-6)
    assert segments(result) == by_segment(expected["p_alive"], np.sum)
    # Customers 4, 8 and 14 never came back: BG/NBD counts them alive for sure.
    np.testing.assert_array_equal(expected["p_alive"][X == 0], 1.0)


def test_customer_equity_and_segment_clv(base, compute, expected):
    equity = compute("vc_customer_equity", base.url, as_of=AS_OF)
    assert equity.current() == pytest.approx(float(expected["clv"].sum()), rel=1e-6)
    assert segments(equity) == by_segment(expected["clv"], np.sum)
    segment_clv = compute("vc_segment_clv", base.url, as_of=AS_OF)
    assert segments(segment_clv) == by_segment(expected["clv"], np.mean)
    assert list(segment_clv.dimension_values()) != [()]  # per segment only, no total


def test_ltv_cac_ratio(base, compute, expected):
    # Acquired in February: 14 (one purchase on 02-02) and 15 (no purchase yet: the CLV of a
    # customer without history); the duplicate 16 is customer 6. CAC = 1000 / 2.
    result = compute("vc_ltv_cac_ratio", base.url, as_of=AS_OF)
    ltv = (expected["clv"][IDS == 14][0] + expected["newcomer"]) / 2
    assert result.current() == pytest.approx(ltv / 500, rel=1e-6)
    # January: 13 was acquired but nothing was spent on acquisition -> no CAC, no ratio.
    assert result.previous() is None


def test_the_fit_is_shared_within_a_run_and_refitted_by_the_next(base):
    engine = create_engine(base.url)
    end = datetime(2026, 3, 1)
    run = RunCache()
    with engine.connect() as connection:
        first = customer_values(context(connection, end, run_cache=run))
        assert customer_values(context(connection, end, run_cache=run)) is first
        assert first.margin_share == pytest.approx(MARGIN_SHARE)
        # Other parameters: another fit.
        other = customer_values(context(connection, end, {"margin_share": 0.3, "horizon_months": 12, "annual_discount_rate": 0.10}, run_cache=run))
        assert other is not first and other.clv.sum() < first.clv.sum()
    # A new order before the period end: the next run fits again and sees it.
    insert(base, "orders", [{"order_id": 1000, "customer_id": 4, "ordered_at": datetime(2026, 2, 27, 10), "net_revenue": 10.0, "cogs": None}])
    with engine.connect() as connection:
        assert customer_values(context(connection, end, run_cache=run)) is first  # the run's own fit
        refitted = customer_values(context(connection, end, run_cache=RunCache()))
    engine.dispose()
    assert refitted is not first
    assert refitted.x[refitted.ids == 4][0] == 1


PARALLEL = ("SET parallel_setup_cost = 0", "SET parallel_tuple_cost = 0", "SET min_parallel_table_scan_size = 0",
            "SET max_parallel_workers_per_gather = 2", "SET parallel_leader_participation = off")


def test_the_fit_is_shared_and_deterministic_on_postgresql_with_parallel_aggregation(fresh_pg_db):
    """Two computations in one run, on fresh connections with every sum aggregated in parallel
    workers, share one fit (the run is the cache's scope: no aggregate of the data in its key);
    a second run fits again on the same data and gets the same parameters and values."""
    from sqlalchemy import text

    from crmmetrics.data.demo import generate_demo

    generate_demo(fresh_pg_db, customers=3000, seed=5, as_of=date(2026, 3, 10))
    engine = create_engine(fresh_pg_db)
    end = datetime(2026, 3, 1)
    runs = [RunCache(), RunCache()]
    fits = []
    for run in (runs[0], runs[0], runs[1]):
        with engine.connect() as connection:
            for setting in PARALLEL:
                connection.execute(text(setting))
            plan = "\n".join(connection.execute(text(
                "EXPLAIN SELECT count(*), sum(net_revenue) FROM orders WHERE ordered_at < '2026-03-01'")).scalars())
            assert "Parallel Seq Scan" in plan and "Partial Aggregate" in plan  # parallelism is really on
            fits.append(customer_values(context(connection, end, run_cache=run)))
    engine.dispose()
    assert fits[1] is fits[0]  # the second KPI of the run shares the first one's fit
    assert fits[2] is not fits[0]  # the next run fits again
    assert fits[0].ids.size > 1000 and np.isfinite(fits[0].clv).all()
    np.testing.assert_array_equal(fits[2].ids, fits[0].ids)
    np.testing.assert_allclose([fits[2].bgnbd.r, fits[2].bgnbd.alpha, fits[2].bgnbd.a, fits[2].bgnbd.b],
                               [fits[0].bgnbd.r, fits[0].bgnbd.alpha, fits[0].bgnbd.a, fits[0].bgnbd.b], rtol=1e-9)
    np.testing.assert_allclose(fits[2].clv, fits[0].clv, rtol=1e-9)


@pytest.mark.parametrize("block", [1, 3, 10, 65_536])
def test_fetch_array_reads_in_blocks_the_rows_fetchall_gives(monkeypatch, block):
    from sqlalchemy import text

    from crmmetrics.kpi import customer_value

    monkeypatch.setattr(customer_value, "FETCH_ROWS", block)
    engine = create_engine("sqlite://")
    with engine.connect() as connection:
        query = text(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) "
            "SELECT i, i * 1.5, CASE WHEN i % 3 = 0 THEN NULL ELSE i END FROM n ORDER BY i"
        )
        table = customer_value.fetch_array(connection, query, columns=3)
        empty = customer_value.fetch_array(connection, text("SELECT 1, 2, 3 WHERE 0"), columns=3)
    assert table.shape == (10, 3) and empty.shape == (0, 3)
    assert table[:, 0].tolist() == [float(i) for i in range(1, 11)]
    assert table[:, 1].tolist() == [i * 1.5 for i in range(1, 11)]
    assert [None if np.isnan(v) else v for v in table[:, 2]] == [None if i % 3 == 0 else float(i) for i in range(1, 11)]


def test_fetch_array_refuses_rows_of_another_width():
    """The rows are read flat: a statement of more columns than declared is an error, not a shift."""
    from sqlalchemy import text

    from crmmetrics.kpi import customer_value

    with create_engine("sqlite://").connect() as connection:
        with pytest.raises(ValueError, match="returns 4 columns, not 3"):
            customer_value.fetch_array(connection, text("SELECT 1, 2, 3, 4"), columns=3)


def test_fetch_array_reads_duckdbs_columns_as_the_rows_would_be():
    """DuckDB hands out columns as arrays (fetchnumpy): NULL is NaN, decimals and booleans numbers."""
    from sqlalchemy import text

    from crmmetrics.kpi import customer_value

    query = text(
        "SELECT i, i * 1.5, CASE WHEN i % 3 = 0 THEN NULL ELSE i END, CAST(i AS DECIMAL(12, 2)) / 4, i % 2 = 0 "
        "FROM range(1, 11) AS t(i) ORDER BY i"
    )
    with create_engine("duckdb:///:memory:").connect() as connection:
        table = customer_value.fetch_array(connection, query, columns=5)
        empty = customer_value.fetch_array(connection, text("SELECT 1, 2, 3 WHERE false"), columns=3)
        with pytest.raises(ValueError, match="returns 4 columns, not 3"):
            customer_value.fetch_array(connection, text("SELECT 1, 2, 3, 4"), columns=3)
    assert table.shape == (10, 5) and empty.shape == (0, 3)
    assert table[:, 0].tolist() == [float(i) for i in range(1, 11)]
    assert table[:, 1].tolist() == [i * 1.5 for i in range(1, 11)]
    assert [None if np.isnan(v) else v for v in table[:, 2]] == [None if i % 3 == 0 else float(i) for i in range(1, 11)]
    assert table[:, 3].tolist() == [i / 4 for i in range(1, 11)]
    assert table[:, 4].tolist() == [float(i % 2 == 0) for i in range(1, 11)]
