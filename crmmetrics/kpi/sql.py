"""Small helpers that the KPI plugins share for SQL pushed down into the source.

Everything here builds SQLAlchemy Core expressions that run on every engine the source is
tested on (SQLite, PostgreSQL, DuckDB) and compile for Trino; only aggregates come back to
Python. The date arithmetic that differs between engines is here, one implementation per
dialect: :class:`epoch_seconds` and :class:`epoch_day` (the default one is standard SQL, which
PostgreSQL and DuckDB run).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Integer, and_, case, func, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from crmmetrics.core.definitions import Parameter
from crmmetrics.core.periods import Period


def in_period(column: Any, period: Period) -> Any:
    """``period.start <= column < period.end`` (periods are half-open)."""
    return and_(column >= period.start, column < period.end)


def ratio(numerator: Any, denominator: Any, scale: float = 1.0) -> float | None:
    """``scale * numerator / denominator``, or None (missing) when there is nothing to divide by."""
    if numerator is None or denominator is None or float(denominator) == 0:
        return None
    return scale * float(numerator) / float(denominator)


def percent(numerator: Any, denominator: Any) -> float | None:
    """A share in percent (0-100), the unit of every ``percent`` metric."""
    return ratio(numerator, denominator, 100.0)


def master_customers(customers: Any) -> Any:
    """Customer records that are not duplicates (a record pointing at itself is a master too)."""
    return or_(customers.c.master_customer_id.is_(None), customers.c.master_customer_id == customers.c.customer_id)


def customer_masters(tables: Any) -> Any:
    """A subquery ``customer_id -> master_id``: a duplicate record maps to its master, others to themselves.

    Join orders or interactions to it to count a customer once however many records they have.
    """
    customers = tables["customers"]
    return select(
        customers.c.customer_id,
        func.coalesce(customers.c.master_customer_id, customers.c.customer_id).label("master_id"),
    ).subquery("masters")


def active_customer_ids(tables: Any, period: Period) -> Any:
    """A subquery of identified customers (master ids, column ``customer_id``) with an order in the period."""
    orders = tables["orders"]
    masters = customer_masters(tables)
    return (
        select(masters.c.master_id.label("customer_id"))
        .select_from(orders.join(masters, masters.c.customer_id == orders.c.customer_id))
        .where(in_period(orders.c.ordered_at, period))
        .group_by(masters.c.master_id)
        .subquery("active")
    )


def count_active_customers(ctx: Any, period: Period | None = None) -> int:
    active = active_customer_ids(ctx.tables, period or ctx.period)
    return ctx.scalar(select(func.count()).select_from(active)) or 0


_EPOCH = datetime(1970, 1, 1)  # periods are naive UTC, like the canonical tables


class epoch_seconds(FunctionElement):
    """Seconds since 1970-01-01 of a naive UTC timestamp column, for portable date arithmetic.

    SQLite and PostgreSQL subtract timestamps differently; ``epoch_seconds(b) - epoch_seconds(a)``
    is the number of seconds between them on both.
    """

    type = Float()
    name = "epoch_seconds"
    inherit_cache = True


@compiles(epoch_seconds)
def _epoch_seconds(element: Any, compiler: Any, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS DOUBLE PRECISION)"


@compiles(epoch_seconds, "sqlite")
def _epoch_seconds_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


@compiles(epoch_seconds, "trino")
def _epoch_seconds_trino(element: Any, compiler: Any, **kw: Any) -> str:
    # Trino has no EXTRACT(EPOCH); to_unixtime would read a naive timestamp in the session's zone.
    return (f"(CAST(date_diff('millisecond', TIMESTAMP '1970-01-01 00:00:00', "
            f"{compiler.process(element.clauses, **kw)}) AS DOUBLE) / 1000.0)")


class epoch_day(FunctionElement):
    """Whole UTC days since 1970-01-01 of a naive UTC timestamp (the day a purchase falls on)."""

    type = Integer()
    name = "epoch_day"
    inherit_cache = True


@compiles(epoch_day)
def _epoch_day(element: Any, compiler: Any, **kw: Any) -> str:
    return f"(CAST({compiler.process(element.clauses, **kw)} AS DATE) - DATE '1970-01-01')"


@compiles(epoch_day, "trino")
def _epoch_day_trino(element: Any, compiler: Any, **kw: Any) -> str:
    return f"date_diff('day', DATE '1970-01-01', CAST({compiler.process(element.clauses, **kw)} AS DATE))"


@compiles(epoch_day, "sqlite")
def _epoch_day_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    # julianday of a date is an exact x.5 double, so the difference is an exact integer.
    return f"CAST(julianday(date({compiler.process(element.clauses, **kw)})) - 2440587.5 AS INTEGER)"


def prorated_cost(cost_entries: Any, period: Period) -> tuple[Any, Any]:
    """``(amount, overlaps)``: the part of each cost entry that falls into the period, and the filter.

    A cost entry covers ``[period_start, period_end)``; it counts in proportion to its overlap
    with the reporting period (a yearly licence adds a twelfth to each month). An entry whose
    end is not after its start is a one-off cost on ``period_start``.
    """
    start, end = epoch_seconds(cost_entries.c.period_start), epoch_seconds(cost_entries.c.period_end)
    period_start = literal((period.start - _EPOCH).total_seconds(), Float)
    period_end = literal((period.end - _EPOCH).total_seconds(), Float)
    overlap = case((end < period_end, end), else_=period_end) - case((start > period_start, start), else_=period_start)
    amount = cost_entries.c.amount * case((end > start, overlap / (end - start)), else_=1.0)
    overlaps = and_(
        cost_entries.c.period_start < period.end,
        or_(
            cost_entries.c.period_end > period.start,
            and_(cost_entries.c.period_end <= cost_entries.c.period_start, cost_entries.c.period_start >= period.start),
        ),
    )
    return amount, overlaps


#: The parameter of every metric that computes a gross margin with :func:`gross_margin`.
MARGIN_SHARE = Parameter(
    "margin_share", float, 0.3, "gross margin as a share of net revenue, for orders without cogs", minimum=0, maximum=1
)


def gross_margin(net_revenue: Any, cogs: Any, margin_share: float) -> Any:
    """``net_revenue - cogs`` per row; where cogs is NULL, ``margin_share * net_revenue``."""
    return case((cogs.is_(None), net_revenue * margin_share), else_=net_revenue - cogs)
