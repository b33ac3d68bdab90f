"""Small helpers that the KPI plugins share for SQL pushed down into the source.

Everything here builds SQLAlchemy Core expressions that run on SQLite and PostgreSQL alike; only
aggregates come back to Python.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, select

from .periods import Period


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
    """Customer records that are not duplicates: counts of customers use these only."""
    return customers.c.master_customer_id.is_(None)


def active_customer_ids(tables: Any, period: Period) -> Any:
    """A subquery of identified customers with at least one order in the period."""
    orders = tables["orders"]
    return (
        select(orders.c.customer_id.label("customer_id"))
        .where(orders.c.customer_id.is_not(None), in_period(orders.c.ordered_at, period))
        .group_by(orders.c.customer_id)
        .subquery("active")
    )


def count_active_customers(ctx: Any, period: Period | None = None) -> int:
    active = active_customer_ids(ctx.tables, period or ctx.period)
    return ctx.scalar(select(func.count()).select_from(active)) or 0
