"""What a source holds, and which KPIs it can feed: the report of ``crmmetrics source check``.

Read-only (the source is opened as the runner opens it). For each canonical table: whether it
exists, its rows, the date range of its event time (:data:`crmmetrics.core.inputs.PERIOD_RULES`)
and the fill rate (share of non-NULL values) of each column that may be NULL, naming the
metrics that declare the column in ``needs``. Then, for each enabled metric, whether its inputs
have rows for its current period as of the check: the same test the runner applies
(:func:`crmmetrics.core.inputs.missing_reason`), so "cannot be computed" here is "no data" there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Engine

from crmmetrics.core import schema
from crmmetrics.core.inputs import PERIOD_RULES, missing_reason
from crmmetrics.core.periods import reporting_periods


@dataclass
class TableReport:
    name: str
    exists: bool
    rows: int = 0
    date_column: str | None = None
    first: datetime | None = None
    last: datetime | None = None
    fill_rates: dict[str, float | None] = field(default_factory=dict)  # nullable column -> share filled
    needed_by: dict[str, list[str]] = field(default_factory=dict)  # column ("" = the table) -> metric keys

    def to_json(self) -> dict[str, Any]:
        return {
            "exists": self.exists,
            "rows": self.rows,
            "date_column": self.date_column,
            "first": self.first.isoformat() + "Z" if self.first else None,
            "last": self.last.isoformat() + "Z" if self.last else None,
            "columns": {
                name: {"fill_rate": rate, "needed_by": self.needed_by.get(name, [])} for name, rate in self.fill_rates.items()
            },
            "needed_by": self.needed_by.get("", []),
        }


@dataclass
class MetricReport:
    key: str
    name: str
    period: str  # the current period checked, for people
    reason: str | None  # None: computable

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.key, "name": self.name, "period": self.period, "computable": self.reason is None, "reason": self.reason}


@dataclass
class SourceReport:
    as_of: datetime
    tables: list[TableReport]
    metrics: list[MetricReport]

    @property
    def computable(self) -> list[MetricReport]:
        return [m for m in self.metrics if m.reason is None]

    @property
    def not_computable(self) -> list[MetricReport]:
        return [m for m in self.metrics if m.reason is not None]

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat() + "Z",
            "tables": {t.name: t.to_json() for t in self.tables},
            "metrics": {
                "computable": len(self.computable),
                "not_computable": len(self.not_computable),
                "total": len(self.metrics),
                "details": [m.to_json() for m in self.metrics],
            },
        }


def _date_column(name: str) -> str | None:
    rule = PERIOD_RULES.get(name)
    if rule is None or (isinstance(rule, str) and "." in rule):
        return None
    return rule[0] if isinstance(rule, tuple) else rule


def check_source(engine: Engine, registry: Any, config: Any, as_of: datetime) -> SourceReport:
    """The report for the source behind ``engine`` and the enabled metrics of ``registry``."""
    needed: dict[tuple[str, str], list[str]] = {}
    enabled = [d for d in registry if config.metric_settings(d).enabled]
    for definition in enabled:
        for need in definition.inputs(config.metric_settings(definition).params):
            needed.setdefault((need.table, need.column or ""), []).append(definition.key)
    tables: list[TableReport] = []
    with engine.connect() as connection:
        present = set(inspect(connection).get_table_names())
        for name, table in schema.TABLES.items():
            report = TableReport(name, exists=name in present)
            report.needed_by = {column: sorted(keys) for (t, column), keys in needed.items() if t == name}
            tables.append(report)
            if not report.exists:
                continue
            nullable = [c for c in table.c if c.nullable]
            row = connection.execute(select(func.count(), *(func.count(c) for c in nullable)).select_from(table)).one()
            report.rows = row[0]
            report.fill_rates = {c.name: (row[i + 1] / row[0] if row[0] else None) for i, c in enumerate(nullable)}
            report.date_column = _date_column(name)
            if report.date_column and report.rows:
                column = table.c[report.date_column]
                report.first, report.last = connection.execute(select(func.min(column), func.max(column))).one()
        metrics = []
        missing_tables = {t.name for t in tables if not t.exists}
        empty_tables = {t.name for t in tables if t.exists and t.rows == 0}
        for definition in sorted(enabled, key=lambda d: d.key):
            settings = config.metric_settings(definition)
            current, _previous = reporting_periods(settings.period, as_of)
            inputs = definition.inputs(settings.params)
            absent = next((n.table for n in inputs if n.table in missing_tables), None)
            empty = next((n.table for n in inputs if n.table in empty_tables), None)
            if absent is not None:
                reason = f"no table {absent} in the source"
            elif empty is not None:
                reason = f"no rows in {empty} (the table is empty)"
            else:
                reason = missing_reason(connection, inputs, current) if inputs else None
            metrics.append(MetricReport(definition.key, definition.name, current.describe(), reason))
    return SourceReport(as_of=as_of, tables=tables, metrics=metrics)
