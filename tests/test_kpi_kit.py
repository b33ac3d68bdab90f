"""The KPI kit (crmmetrics.kpi) on a small hand-made source: each block's value worked out by
hand, the unassigned rule, the derived dimensions and needs, and definitions built from data."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import create_engine

from crmmetrics import Perspective, Process, ValueLens
from crmmetrics.core import schema
from crmmetrics.core.definitions import ComputeContext
from crmmetrics.core.periods import Period
from crmmetrics.kpi import (
    UNASSIGNED,
    Derived,
    Filter,
    Measure,
    Over,
    Param,
    Ratio,
    Share,
    breakdown,
    customers,
    define,
    evaluate,
    from_dict,
    statements,
    trailing,
)

MARCH = Period("current", datetime(2026, 3, 1), datetime(2026, 4, 1))
FIELDS = dict(
    name="A KPI", description="What it is.", process=Process.VALUE_CREATION, perspective=Perspective.CUSTOMER,
    value_lens=ValueLens.CUSTOMER_VALUE, unit="count", direction="higher_is_better",
)


@pytest.fixture
def source(source_backend):
    """Segments Gold (1) and Silver (2); customers 1 (Gold), 2 (Silver), 3 (no segment) and 4, a
    duplicate of 1 (its own segment Silver does not count: its master's does). Channels: web
    (e_commerce), store (outlets).

    March orders: 1 100 (web), 4 50 (store: customer 1's), 2 30 (web), 3 20 (no channel),
    anonymous 40 (store); February: 2 70 (web). Costs: 122 over March and April (loyalty), 12
    in March for the web shop. On SQLite and PostgreSQL."""
    crm_db = source_backend()
    crm_db.insert("segments", [{"segment_id": 1, "name": "Gold"}, {"segment_id": 2, "name": "Silver"}])
    crm_db.insert("channels", [{"channel_id": 1, "name": "web", "category": "e_commerce"}, {"channel_id": 2, "name": "store", "category": "outlets"}])
    crm_db.insert(
        "customers",
        [
            {"customer_id": 1, "segment_id": 1, "acquired_at": datetime(2026, 3, 5)},
            {"customer_id": 2, "segment_id": 2, "acquired_at": datetime(2025, 6, 1)},
            {"customer_id": 3, "segment_id": None, "acquired_at": None},
            {"customer_id": 4, "segment_id": 2, "master_customer_id": 1, "acquired_at": datetime(2026, 3, 9)},
        ],
    )
    crm_db.insert(
        "orders",
        [
            {"customer_id": 1, "ordered_at": datetime(2026, 3, 2), "net_revenue": 100.0, "channel_id": 1},
            {"customer_id": 4, "ordered_at": datetime(2026, 3, 10), "net_revenue": 50.0, "channel_id": 2},
            {"customer_id": 2, "ordered_at": datetime(2026, 3, 31, 23, 59), "net_revenue": 30.0, "channel_id": 1},
            {"customer_id": 3, "ordered_at": datetime(2026, 3, 15), "net_revenue": 20.0, "channel_id": None},
            {"customer_id": None, "ordered_at": datetime(2026, 3, 20), "net_revenue": 40.0, "channel_id": 2},
            {"customer_id": 2, "ordered_at": datetime(2026, 2, 27), "net_revenue": 70.0, "channel_id": 1},
            {"customer_id": 2, "ordered_at": datetime(2026, 4, 1), "net_revenue": 999.0, "channel_id": 1},  # April: not March
        ],
    )
    crm_db.insert(
        "cost_entries",
        [
            {"period_start": datetime(2026, 3, 1), "period_end": datetime(2026, 5, 1), "cost_type": "marketing", "amount": 122.0, "description": "loyalty"},
            {"period_start": datetime(2026, 3, 1), "period_end": datetime(2026, 4, 1), "cost_type": "service", "amount": 12.0, "channel_id": 1, "description": "other"},
        ],
    )
    return crm_db


@pytest.fixture
def ctx(source):
    engine = create_engine(source.url)
    with engine.connect() as connection:
        yield lambda params=None, period=MARCH: ComputeContext(
            connection=connection, tables=schema.TABLES, params=params or {}, period=period, as_of=datetime(2026, 4, 2),
            metric=None,
        )
    engine.dispose()


def test_a_measure_applies_the_period_and_breaks_down_with_unassigned(ctx):
    revenue = Measure("orders", "net_revenue")
    # March only (the order on 1 April is outside the half-open period): 100 + 50 + 30 + 20 + 40.
    assert evaluate(revenue, ctx())[0] == pytest.approx(240.0)
    total, by_segment = evaluate(revenue, ctx(), "segment")
    # Record 4 is customer 1's (Gold, not its own Silver); customer 3 and the anonymous order: unassigned.
    assert total == pytest.approx(240.0)
    assert by_segment == pytest.approx({("Gold",): 150.0, ("Silver",): 30.0, (UNASSIGNED,): 60.0})
    _, by_channel = evaluate(revenue, ctx(), ("channel_category", "channel"))
    assert by_channel == pytest.approx({("e_commerce", "web"): 130.0, ("outlets", "store"): 90.0, (UNASSIGNED, UNASSIGNED): 20.0})


def test_customers_are_counted_once_and_only_when_identified(ctx):
    total, by_segment = evaluate(customers("orders"), ctx(), "segment")
    assert total == 3  # 1 (with its duplicate 4), 2, 3; the anonymous order is nobody
    assert by_segment == {("Gold",): 1, ("Silver",): 1, (UNASSIGNED,): 1}
    # By channel a customer can be in two groups: the total is counted, not summed.
    total, by_channel = evaluate(customers("orders"), ctx(), "channel_category")
    assert total == 3
    assert by_channel == {("e_commerce",): 2, ("outlets",): 1, (UNASSIGNED,): 1}


def test_a_ratio_a_share_and_a_derived_value(ctx):
    aov = Ratio(Measure("orders", "net_revenue"), Measure("orders", agg="count"))
    assert evaluate(aov, ctx(), "segment") == (pytest.approx(48.0), pytest.approx({("Gold",): 75.0, ("Silver",): 30.0, (UNASSIGNED,): 30.0}))
    total, shares = evaluate(Share(Measure("orders", "net_revenue")), ctx(), "segment")
    assert total is None and shares == pytest.approx({("Gold",): 62.5, ("Silver",): 12.5, (UNASSIGNED,): 25.0})
    # Revenue of customers acquired in the period (customer 1's master record: 5 March) over all.
    new = Ratio(Measure("orders", "net_revenue", filters=[("customer.acquired_at", "in period")]), Measure("orders", "net_revenue"), 100)
    assert evaluate(new, ctx())[0] == pytest.approx(100 * 150 / 240)
    spread = Derived(lambda high, low: None if high is None or low is None else high - low,
                     high=Measure("orders", "net_revenue", agg="max"), low=Measure("orders", "net_revenue", agg="min"))
    assert evaluate(spread, ctx())[0] == pytest.approx(80.0)


def test_filters_params_costs_and_other_windows(ctx):
    # A cost entry counts pro rata: 122 over 61 days, 31 of them in March -> 62; plus the 12.
    assert evaluate(Measure("cost_entries", "amount"), ctx())[0] == pytest.approx(62.0 + 12.0)
    loyalty = Measure("cost_entries", "amount", filters=[Filter("description", "=", Param("cost_description"))])
    assert evaluate(loyalty, ctx({"cost_description": "loyalty"}))[0] == pytest.approx(62.0)
    assert evaluate(loyalty, ctx({"cost_description": "nothing"}))[0] is None  # nothing booked: no value
    _, by_channel = evaluate(Measure("cost_entries", "amount"), ctx(), "channel_category")
    assert by_channel == pytest.approx({("e_commerce",): 12.0, (UNASSIGNED,): 62.0})
    # The 60 days before the end of March hold February's order as well.
    two_months = Over(Measure("orders", "net_revenue"), trailing(60))
    assert evaluate(Ratio(two_months, Measure("orders", "net_revenue")), ctx())[0] == pytest.approx(310 / 240)
    # Conditional counts are 0, not NULL, when rows exist but none match.
    nothing = Measure("orders", agg="count", filters=[Filter("net_revenue", ">", 10_000)])
    assert evaluate(nothing, ctx())[0] == 0


def test_new_customers_are_master_records(ctx):
    new = Measure("customers", agg="count", time="acquired_at")
    assert evaluate(new, ctx())[0] == 1  # customer 1; record 4 (acquired 9 March) is a duplicate
    assert evaluate(Measure("customers", agg="count", time="acquired_at", masters_only=False), ctx())[0] == 2


def test_define_derives_dimensions_and_needs_and_computes(ctx):
    definition = define(key="kit_aov", by="segment", value=Ratio(Measure("orders", "net_revenue"), customers("orders")), **FIELDS)
    assert definition.dimensions == ("segment",)
    assert definition.needs == ("orders",)
    results = {tuple(r.dimensions.items()): r.value for r in definition.compute(ctx())}
    assert results == pytest.approx({(): 80.0, (("segment", "Gold"),): 150.0, (("segment", "Silver"),): 30.0, (("segment", UNASSIGNED),): 60.0})
    # A nullable measured or time column is a need of its own: no values of it, no data.
    handle = define(key="kit_aht", value=Measure("interactions", "handle_seconds", agg="mean"), **FIELDS)
    assert handle.needs == ("interactions.handle_seconds",)
    acquired = define(key="kit_new", value=Measure("customers", agg="count", time="acquired_at"), **FIELDS)
    assert acquired.needs == ("customers.acquired_at",)
    both = define(key="kit_cac", value=Ratio(Measure("cost_entries", "amount"), Measure("customers", agg="count", time="acquired_at")), **FIELDS)
    assert both.needs == ("cost_entries", "customers.acquired_at")


def test_definition_errors_are_clear():
    with pytest.raises(TypeError, match="exactly one of value= .* or compute="):
        define(key="kit_x", **FIELDS)
    with pytest.raises(TypeError, match="give the dimensions as by="):
        define(key="kit_x", value=customers(), dimensions=("segment",), **FIELDS)
    with pytest.raises(ValueError, match="cannot break down by 'objective'"):
        define(key="kit_x", value=customers(), by="objective", **FIELDS)
    with pytest.raises(ValueError, match="no canonical table 'order'"):
        Measure("order", "net_revenue")
    with pytest.raises(ValueError, match="table orders has no column 'revenue'"):
        Measure("orders", "revenue")
    with pytest.raises(ValueError, match="unknown aggregate 'median'"):
        Measure("orders", "net_revenue", agg="median")
    with pytest.raises(ValueError, match="sum needs a column"):
        Measure("orders")
    with pytest.raises(ValueError, match="unknown operator 'like'"):
        Measure("orders", "net_revenue", filters=[("channel_id", "like", "x")])
    with pytest.raises(ValueError, match="table customers has no column 'acquired'"):
        Measure("orders", "net_revenue", filters=[("customer.acquired", "in period")])
    with pytest.raises(ValueError, match="no customer_id to count customers by"):
        customers("campaigns")


def test_values_from_plain_data(ctx):
    """The form a configuration file gives: tables, columns, aggregates and filters as strings."""
    ratio = from_dict(
        {
            "numerator": {"table": "orders", "column": "net_revenue", "filters": [["customer_id", "is not null"]]},
            "denominator": {"table": "orders", "column": "net_revenue"},
            "scale": 100,
        }
    )
    assert ratio == Ratio(
        Measure("orders", "net_revenue", filters=[Filter("customer_id", "is not null")]), Measure("orders", "net_revenue"), 100.0
    )
    assert evaluate(ratio, ctx())[0] == pytest.approx(100 * 200 / 240)
    costs = from_dict({"table": "cost_entries", "column": "amount", "filters": [{"column": "description", "op": "=", "value": {"param": "d"}}]})
    assert evaluate(costs, ctx({"d": "loyalty"}))[0] == pytest.approx(62.0)
    assert isinstance(from_dict({"share": {"table": "orders", "column": "net_revenue"}}), Share)
    assert str(ratio) == "100 * sum(orders.net_revenue) where customer_id is not null / sum(orders.net_revenue)"
    with pytest.raises(ValueError, match="measure: unknown keys colum"):
        from_dict({"table": "orders", "colum": "net_revenue"})


def test_statements_are_the_queries_a_value_runs(ctx, source):
    """One SELECT per table and period rule (measures of one table share it), one per Over window."""
    from sqlalchemy import create_engine

    value = Ratio(Measure("orders", "net_revenue"), Over(customers("orders"), trailing(60)))
    selects = statements(value, ctx(), "segment")
    assert len(selects) == 2
    dialect = create_engine(source.url).dialect
    text = [str(s.compile(dialect=dialect, compile_kwargs={"literal_binds": True})) for s in selects]
    assert all("FROM orders" in t and "GROUP BY" in t for t in text)
    assert "2026-03-01" in text[0] and "2026-01-31" in text[1]  # the period, and the 60 days before its end
    assert len(statements(Ratio(Measure("orders", "net_revenue"), Measure("orders", agg="count")), ctx())) == 1


def test_breakdown_reports_rows_without_a_value_as_unassigned():
    rows = [(1, 2, 4), (None, 1, 1), (7, 0, 2)]
    results = breakdown(rows, lambda hits, n: 100 * hits / n, labels={None: UNASSIGNED, 1: "Gold"})
    assert {tuple(r.dimensions.values()): r.value for r in results} == {(): 3 / 7 * 100, ("Gold",): 50.0, (UNASSIGNED,): 100.0, ("segment 7",): 0.0}
    assert breakdown([], lambda n: n) is None  # no rows: no value
    two = breakdown([("outlets", None, 3)], lambda n: n, ("channel_category", "channel"))
    assert [r.dimensions for r in two] == [{}, {"channel_category": "outlets", "channel": UNASSIGNED}]
