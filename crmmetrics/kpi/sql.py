"""Small helpers that the KPI plugins share for SQL pushed down into the source.

Everything here builds SQLAlchemy Core expressions that run on every engine the source is
tested on (SQLite, PostgreSQL, DuckDB) and compile for Trino; only aggregates come back to
Python. The date arithmetic that differs between engines is here, one implementation per
dialect: :func:`epoch_seconds` and :func:`epoch_day` (:mod:`crmmetrics.kpi.sql_functions`; the
default one is standard SQL, which PostgreSQL and DuckDB run). SQLAlchemy is imported when the
first expression is built (:mod:`crmmetrics.core.sa`), not when a plugin imports these helpers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crmmetrics.core import sa
from crmmetrics.core.definitions import Parameter
from crmmetrics.core.periods import Period


def in_period(column: Any, period: Period) -> Any:
    """``period.start <= column < period.end`` (periods are half-open)."""
    return sa.and_(column >= period.start, column < period.end)


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
    return sa.or_(customers.c.master_customer_id.is_(None), customers.c.master_customer_id == customers.c.customer_id)


def customer_masters(tables: Any) -> Any:
    """A subquery ``customer_id -> master_id``: a duplicate record maps to its master, others to themselves.

    Join orders or interactions to it to count a customer once however many records they have.
    """
    customers = tables["customers"]
    return sa.select(
        customers.c.customer_id,
        sa.func.coalesce(customers.c.master_customer_id, customers.c.customer_id).label("master_id"),
    ).subquery("masters")


def active_customer_ids(tables: Any, period: Period) -> Any:
    """A subquery of identified customers (master ids, column ``customer_id``) with an order in the period."""
    orders = tables["orders"]
    masters = customer_masters(tables)
    return (
        sa.select(masters.c.master_id.label("customer_id"))
        .select_from(orders.join(masters, masters.c.customer_id == orders.c.customer_id))
        .where(in_period(orders.c.ordered_at, period))
        .group_by(masters.c.master_id)
        .subquery("active")
    )


def count_active_customers(ctx: Any, period: Period | None = None) -> int:
    active = active_customer_ids(ctx.tables, period or ctx.period)
    return ctx.scalar(sa.select(sa.func.count()).select_from(active)) or 0


_EPOCH = datetime(1970, 1, 1)  # periods are naive UTC, like the canonical tables


def epoch_seconds(*clauses: Any) -> Any:
    """Seconds since 1970-01-01 of a naive UTC timestamp column, for portable date arithmetic.

    SQLite and PostgreSQL subtract timestamps differently; ``epoch_seconds(b) - epoch_seconds(a)``
    is the number of seconds between them on both (the SQL element, with its implementation per
    dialect, is :class:`crmmetrics.kpi.sql_functions.epoch_seconds`).
    """
    from .sql_functions import epoch_seconds as element

    return element(*clauses)


def epoch_day(*clauses: Any) -> Any:
    """Whole UTC days since 1970-01-01 of a naive UTC timestamp (the day a purchase falls on)."""
    from .sql_functions import epoch_day as element

    return element(*clauses)


def prorated_cost(cost_entries: Any, period: Period) -> tuple[Any, Any]:
    """``(amount, overlaps)``: the part of each cost entry that falls into the period, and the filter.

    A cost entry covers ``[period_start, period_end)``; it counts in proportion to its overlap
    with the reporting period (a yearly licence adds a twelfth to each month). An entry whose
    end is not after its start is a one-off cost on ``period_start``.
    """
    start, end = epoch_seconds(cost_entries.c.period_start), epoch_seconds(cost_entries.c.period_end)
    period_start = sa.literal((period.start - _EPOCH).total_seconds(), sa.Float)
    period_end = sa.literal((period.end - _EPOCH).total_seconds(), sa.Float)
    overlap = sa.case((end < period_end, end), else_=period_end) - sa.case((start > period_start, start), else_=period_start)
    amount = cost_entries.c.amount * sa.case((end > start, overlap / (end - start)), else_=1.0)
    overlaps = sa.and_(
        cost_entries.c.period_start < period.end,
        sa.or_(
            cost_entries.c.period_end > period.start,
            sa.and_(cost_entries.c.period_end <= cost_entries.c.period_start, cost_entries.c.period_start >= period.start),
        ),
    )
    return amount, overlaps


#: The parameter of every metric that computes a gross margin with :func:`gross_margin`.
MARGIN_SHARE = Parameter(
    "margin_share", float, 0.3, "gross margin as a share of net revenue, for orders without cogs", minimum=0, maximum=1
)


def gross_margin(net_revenue: Any, cogs: Any, margin_share: float) -> Any:
    """``net_revenue - cogs`` per row; where cogs is NULL, ``margin_share * net_revenue``."""
    return sa.case((cogs.is_(None), net_revenue * margin_share), else_=net_revenue - cogs)
