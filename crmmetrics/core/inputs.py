"""What a metric needs from the source, and whether the source has it for a period.

A metric declares its inputs in ``MetricDefinition.needs``: canonical table names
(``"interactions"``) or columns (``"interactions.handle_seconds"``). Before the runner calls a
compute function for a period it checks each input here; when one has no rows (a column: no
non-NULL value) for the period, the value is missing with that reason, and the compute function
is not called. This is the one place where "no data is no data" is decided: an empty table
never turns into a 0 or a 100 by way of a ``count(*) = 0`` or a ``sum() = NULL``.

"For the period" depends on the table (``PERIOD_RULES``): event tables count the rows whose
event time falls into the period; ``cost_entries`` and ``campaigns`` the rows whose span
overlaps it; ``order_lines`` the lines of the period's orders. Reference and state tables
(customers, segments, channels, employees) have no event time: any row counts.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from . import sa
from .canonical import DATA_MODEL
from .periods import Period

#: How the rows of a table that belong to a period are found: the event-time column, a
#: ``(start, end)`` span that must overlap the period, or None (any row counts).
PERIOD_RULES: dict[str, str | tuple[str, str] | None] = {
    "segments": None,
    "channels": None,
    "campaigns": ("starts_at", "ends_at"),
    "customers": None,
    "orders": "ordered_at",
    "order_lines": "orders.ordered_at",
    "employees": None,
    "interactions": "started_at",
    "survey_responses": "responded_at",
    "employee_survey_responses": "responded_at",
    "cost_entries": ("period_start", "period_end"),
    "data_quality_facts": "checked_at",
}


@dataclass(frozen=True)
class Need:
    """One input of a metric: a table, or one column of it that must have values."""

    table: str
    column: str | None = None

    @classmethod
    def parse(cls, text: str) -> Need:
        """``"table"`` or ``"table.column"`` of the canonical schema, or ValueError."""
        table, _, column = text.partition(".")
        if table not in DATA_MODEL:
            raise ValueError(f"needs {text!r}: no canonical table {table!r} (tables: {', '.join(DATA_MODEL)})")
        if column and column not in DATA_MODEL[table].columns:
            raise ValueError(f"needs {text!r}: table {table} has no column {column!r}")
        return cls(table, column or None)

    def __str__(self) -> str:
        return f"{self.table}.{self.column}" if self.column else self.table


def _canonical_tables() -> Any:
    from .schema import TABLES  # SQLAlchemy: only when a query is built, not when a need is parsed

    return TABLES


def period_filter(table_name: str, period: Period | None, tables: Any = None) -> Any:
    """The WHERE clause selecting the rows of ``table_name`` that belong to ``period`` (None: all)."""
    tables = tables or _canonical_tables()
    table = tables[table_name]
    rule = PERIOD_RULES.get(table_name)
    if period is None or rule is None:
        return None
    if isinstance(rule, tuple):
        start, end = table.c[rule[0]], table.c[rule[1]]
        # A span without an end (a running campaign) or not after its start (a one-off cost) is
        # a point at its start, or still running.
        if table_name == "campaigns":
            return sa.and_(start < period.end, sa.or_(end.is_(None), end > period.start))
        return sa.and_(start < period.end, sa.or_(end > period.start, sa.and_(end <= start, start >= period.start)))
    if "." in rule:  # order lines: the lines of the period's orders
        parent_name, column = rule.split(".")
        parent = tables[parent_name]
        return sa.exists(
            sa.select(1).where(
                parent.c.order_id == table.c.order_id, parent.c[column] >= period.start, parent.c[column] < period.end
            )
        )
    column = table.c[rule]
    return sa.and_(column >= period.start, column < period.end)


def has_rows(connection: Any, need: Need, period: Period | None, tables: Any = None) -> bool:
    """Whether the source has at least one row (with a value in ``need.column``) for the period."""
    tables = tables or _canonical_tables()
    table = tables[need.table]
    conditions = [c for c in (period_filter(need.table, period, tables),) if c is not None]
    if need.column:
        conditions.append(table.c[need.column].is_not(None))
    statement = sa.select(1).select_from(table).where(*conditions).limit(1)
    return connection.execute(statement).first() is not None


def missing_reason(connection: Any, needs: Iterable[Need], period: Period, tables: Any = None) -> str | None:
    """Why a metric with these inputs has no value for the period, or None when every input has rows."""
    for need in needs:
        if has_rows(connection, need, period, tables):
            continue
        scope = "" if PERIOD_RULES.get(need.table) is None else f" for {period.describe()}"
        if need.column:
            return f"no values of {need}{scope}"
        return f"no rows in {need.table}{scope}"
    return None


#: Integer columns of reference tables whose in-place changes move values of past periods (a
#: customer re-segmented, a duplicate linked to its master): summed into the fingerprint.
_LINK_COLUMNS: dict[str, tuple[str, ...]] = {"customers": ("segment_id", "master_customer_id")}


_PRIME = 1_000_003


def _up_to(table_name: str, end: Any, tables: Any) -> Any:
    """The rows of ``table_name`` that a period ending at ``end`` can see (None: all rows)."""
    table = tables[table_name]
    rule = PERIOD_RULES.get(table_name)
    if rule is None:
        return None
    if isinstance(rule, tuple):
        return table.c[rule[0]] < end
    if "." in rule:
        parent_name, column = rule.split(".")
        parent = tables[parent_name]
        return sa.exists(sa.select(1).where(parent.c.order_id == table.c.order_id, parent.c[column] < end))
    return table.c[rule] < end


def source_fingerprint(
    connection: Any, needs: Iterable[Need], period: Period, tables: Any = None,
    share: Callable[[Hashable, Callable[[], list[Any]]], list[Any]] | None = None,
) -> list[Any]:
    """A cheap summary of what the inputs hold up to the end of ``period``: the
    :func:`table_fingerprint` of each input table, in the order of their names.

    ``share(key, build)`` (the run cache's ``get``) lets the metrics of a run that read the same
    table up to the same end share one summary of it.
    """
    summary: list[Any] = []
    for name in sorted({need.table for need in needs}):
        build = lambda name=name: table_fingerprint(connection, name, period.end, tables)  # noqa: E731
        summary += share(("table_fingerprint", name, period.end), build) if share else build()
    return summary


def table_fingerprint(connection: Any, name: str, end: Any, tables: Any = None) -> list[Any]:
    """A cheap summary, in one scan, of what table ``name`` holds for a period ending at ``end``.

    The number of rows up to the period end, the latest event time among them, the sum of the
    integer primary key (and of the link columns of ``customers``) and the sum of every amount in
    whole cents (each modulo a prime, so that no sum overflows). A row inserted or deleted before
    the end (a late correction, a reload), a re-dated row or an amount corrected in place
    changes it. Integers and times only, so that it is the same on every engine and under
    parallel aggregation (a float sum changes in its last digits). What it does not see (a text
    or flag changed in place, a change below a cent) is what ``crmmetrics run --recompute`` is for.
    """
    tables = tables or _canonical_tables()
    table = tables[name]
    aggregates = [sa.func.count()]
    rule = PERIOD_RULES.get(name)
    if isinstance(rule, str) and "." not in rule:
        aggregates.append(sa.func.max(table.c[rule]))
    elif isinstance(rule, tuple):
        aggregates.append(sa.func.max(table.c[rule[0]]))
    # Summed modulo a prime: ids may be large (hashed keys), and a plain sum would overflow.
    keys = list(table.primary_key.columns)
    for column in [*keys, *(table.c[c] for c in _LINK_COLUMNS.get(name, ()))]:
        if column.type.python_type is int:
            aggregates.append(sa.func.sum(column % _PRIME))
    for column in table.c:
        if column.type.python_type in (float, Decimal):  # amounts, in whole cents
            aggregates.append(sa.func.sum(sa.cast(sa.func.round(column * 100), sa.BigInteger) % _PRIME))
    # One SELECT of every aggregate: one scan (a scalar subquery per aggregate scanned the
    # table once each, and was most of a million-customer catalogue's first run).
    statement = sa.select(*aggregates).select_from(table)
    where = _up_to(name, end, tables)
    if where is not None:
        statement = statement.where(where)
    row = connection.execute(statement).one()
    return [None if v is None else v.isoformat() if hasattr(v, "isoformat") else str(v) if not isinstance(v, int) else v for v in row]
