"""The SQL functions of the KPI kit that differ between engines, one implementation per dialect.

:func:`crmmetrics.kpi.sql.epoch_seconds` and :func:`crmmetrics.kpi.sql.epoch_day` build these
elements; this module (and SQLAlchemy with it) is imported when the first one is built. The
default implementation is standard SQL, which PostgreSQL and DuckDB run.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


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
