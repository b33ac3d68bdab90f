"""The KPI kit: one way to define a KPI, in a few declarative lines.

A KPI is declared with :func:`define` and either a *value* built from these blocks, or a
``compute`` function for the KPIs that fit no common shape (RFM, CLV, the whale curve):

- :class:`Measure`: an aggregate (``sum``, ``count``, ``customers``, ``mean``, ``max``, ``min``)
  of a column of a canonical table over the reporting period, with :class:`Filter`\\ s;
  :func:`customers` is the count of distinct customers;
- :class:`Ratio`: one measure (or value) over another, scaled (``scale=100`` for a percent);
- :class:`Share`: each group's part of the whole, in percent (a revenue split);
- :class:`Derived`: a formula over other values (measures, ratios, other derived values);
- :class:`Over`: a value over another window than the period (:func:`trailing` days before its end).

``by=`` breaks a KPI down by one or more dimensions (``"segment"``, ``"channel_category"``,
``"channel"``, or a column of the measured table such as ``"objective"``); the breakdown and
the total come from the same grouped queries. The kit applies the rules every built-in KPI
follows, so that a definition does not repeat them:

- **The period.** A measure counts the rows of its table that belong to the reporting period
  (``crmmetrics.core.inputs.PERIOD_RULES``: the event time; ``cost_entries`` pro rata to their
  overlap with the period; ``time=`` names another time column, ``time=None`` reads all rows).
- **One customer, one record.** Rows with a ``customer_id`` belong to the master record of
  that customer (:func:`crmmetrics.kpi.sql.customer_masters`): ``customers`` counts masters, and
  ``customer.<column>`` and the ``segment`` dimension read the master record. Measures of the
  ``customers`` table count master records only (``masters_only=False`` counts every record).
- **Rows without a value of a dimension** (an anonymous order's segment, an interaction
  without a channel, a campaign without an objective) are reported under ``unassigned``
  (:data:`UNASSIGNED`), never dropped: the breakdown adds up to the total.
- **No data is no data.** :func:`define` derives the metric's ``dimensions`` from ``by`` and its
  ``needs`` from the measures (their tables, nullable measured or time columns as
  ``table.column``), so an empty source is reported missing instead of 0.

Every block is a frozen dataclass of plain values (table, column and aggregate names, filters
as ``(column, op, value)``), so a KPI can be built from data as well as from Python
(:func:`from_dict`); Python plugins may also pass SQLAlchemy callables where data does not
reach (a filter or a column as ``function(table, ctx) -> SQL expression``).

Helpers for ``compute`` functions: :func:`breakdown` (grouped rows -> total and breakdown under
the same unassigned rule), and the SQL helpers of :mod:`crmmetrics.kpi.sql` and
:mod:`crmmetrics.kpi.customer_value`, re-exported here (``in_period``, ``ratio``, ``percent``,
``customer_masters``, ``prorated_cost``, ``epoch_seconds``, ``epoch_day``, ``margin``,
``MARGIN_SHARE``, ``customer_orders``, ``customer_activity``, ``segment_names``, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from crmmetrics.core import sa
from crmmetrics.core.canonical import DATA_MODEL
from crmmetrics.core.definitions import ComputeContext, MetricDefinition, Result
from crmmetrics.core.inputs import period_filter
from crmmetrics.core.periods import Period
from .sql import (
    MARGIN_SHARE,
    count_active_customers,
    customer_masters,
    epoch_day,
    epoch_seconds,
    gross_margin,
    in_period,
    master_customers,
    percent,
    prorated_cost,
    ratio,
)

__all__ = [
    "AGGREGATES",
    "TABLES",
    "OPERATORS",
    "UNASSIGNED",
    "Derived",
    "Filter",
    "Measure",
    "Over",
    "Param",
    "Ratio",
    "Share",
    "answers",
    "breakdown",
    "customers",
    "define",
    "evaluate",
    "from_dict",
    "label",
    "net_promoter_score",
    "on_scale",
    "statements",
    "trailing",
    "with_segment",
    # SQL helpers for compute functions (crmmetrics.kpi.sql, crmmetrics.kpi.customer_value), and
    # SQLAlchemy itself, imported on first use (crmmetrics.core.sa)
    "sa",
    "MARGIN_SHARE",
    "count_active_customers",
    "customer_activity",
    "customer_masters",
    "customer_orders",
    "customer_values",
    "epoch_day",
    "epoch_seconds",
    "gross_margin",
    "in_period",
    "margin",
    "master_customers",
    "percent",
    "period_discount_rate",
    "preceding",
    "prorated_cost",
    "ratio",
    "segment_names",
]

#: The label of the rows that have no value of a dimension (customers without a segment,
#: anonymous orders, interactions without a channel): one rule in every process.
UNASSIGNED = "unassigned"

# Re-exported from crmmetrics.kpi.customer_value on first use: it imports numpy and scipy, which a
# plugin module that only declares measures should not pay for at import (``crmmetrics --help``).
_CUSTOMER_VALUE = ("customer_activity", "customer_orders", "customer_values", "margin", "period_discount_rate", "preceding", "segment_names")


def __getattr__(name: str) -> Any:
    if name == "TABLES":
        # The canonical CRM tables as SQLAlchemy Tables by name: the same as ``ctx.tables``, for a
        # plugin's checks that run before any computation (e.g. a parameter naming a column).
        # Built on first use (crmmetrics.core.schema): defining a KPI checks names against the
        # light declaration (crmmetrics.core.canonical), so that listing imports no SQLAlchemy.
        from crmmetrics.core.schema import TABLES

        return TABLES
    if name in _CUSTOMER_VALUE:
        from . import customer_value

        return getattr(customer_value, name)
    raise AttributeError(f"module 'crmmetrics.kpi' has no attribute {name!r}")


#: Aggregates of a measure. ``customers``: distinct (master) customers with a row.
AGGREGATES = ("sum", "count", "customers", "mean", "max", "min")
#: Aggregates whose total is the sum of its groups' (the others are computed ungrouped).
_ADDITIVE = ("sum", "count")
#: Operators of a :class:`Filter`; ``in period``: the column's time falls in the reporting period.
OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "in", "not in", "is null", "is not null", "in period")
#: Dimensions the kit joins for itself; any other dimension is a column of the measured table.
JOINED_DIMENSIONS = {"segment": ("segment", "name"), "channel_category": ("channel", "category"), "channel": ("channel", "name")}
_TABLE_RULE = "table"  # Measure.time default: the table's own period rule


# --------------------------------------------------------------------------------------------
# Filters and measures
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A filter value read from the metric's parameter ``name`` at run time (``{"param": name}``
    in data): ``Filter("description", "=", Param("cost_description"))``."""

    name: str


@dataclass(frozen=True)
class Filter:
    """A condition on the rows a measure reads: ``Filter("kind", "=", "complaint")``.

    ``column`` is a column of the measured table, ``customer.<column>`` of the customer's master
    record, or ``channel.<column>`` of the row's channel; ``op`` one of :data:`OPERATORS`.
    """

    column: str
    op: str = "="
    value: Any = None

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(f"filter on {self.column!r}: unknown operator {self.op!r} (one of {', '.join(OPERATORS)})")
        if isinstance(self.value, Mapping) and set(self.value) == {"param"}:
            object.__setattr__(self, "value", Param(self.value["param"]))
        if self.op in ("in", "not in") and not isinstance(self.value, Param):
            if isinstance(self.value, str) or not isinstance(self.value, Iterable):
                raise ValueError(f"filter on {self.column!r}: {self.op!r} takes a list of values")
            object.__setattr__(self, "value", tuple(self.value))

    @classmethod
    def of(cls, spec: Any) -> Filter | Callable[..., Any]:
        """A Filter from a Filter, a ``(column, op[, value])`` sequence, a ``{column, op, value}``
        mapping, or a callable ``(table, ctx) -> SQL condition`` (kept as it is)."""
        if isinstance(spec, Filter) or callable(spec):
            return spec
        if isinstance(spec, Mapping):
            return cls(**spec)
        if isinstance(spec, Sequence) and not isinstance(spec, str) and 1 <= len(spec) <= 3:
            return cls(*spec)
        raise ValueError(f"a filter is (column, op, value), a mapping or a function, not {spec!r}")

    def condition(self, column: Any, ctx: ComputeContext) -> Any:
        op, value = self.op, self.value
        if isinstance(value, Param):
            value = ctx.params[value.name]
        if op == "is null":
            return column.is_(None)
        if op == "is not null":
            return column.is_not(None)
        if op == "in period":
            return in_period(column, ctx.period)
        if op == "in":
            return column.in_(value)
        if op == "not in":
            return column.not_in(value)
        return {"=": column.__eq__, "!=": column.__ne__, "<": column.__lt__, "<=": column.__le__, ">": column.__gt__, ">=": column.__ge__}[op](value)

    def __str__(self) -> str:
        return f"{self.column} {self.op}" + ("" if self.op in ("is null", "is not null", "in period") else f" {self.value!r}")


@dataclass(frozen=True)
class Measure:
    """An aggregate of a column of a canonical table over the reporting period.

    ``Measure("orders", "net_revenue")`` is the period's net revenue; ``Measure("interactions",
    agg="count", filters=[("kind", "=", "complaint")])`` its complaints. ``column`` may be None
    for ``count`` and ``customers``; a Python plugin may pass ``function(table, ctx)`` for a
    computed column. ``time``: the time column that puts a row into the period (default: the
    table's rule, ``crmmetrics.core.inputs.PERIOD_RULES``; None: every row).
    """

    table: str
    column: str | Callable[..., Any] | None = None
    agg: str = "sum"
    filters: tuple[Any, ...] = ()
    time: str | None = _TABLE_RULE
    masters_only: bool = True  # customers table: master records only

    def __post_init__(self) -> None:
        if self.table not in DATA_MODEL:
            raise ValueError(f"measure: no canonical table {self.table!r} (tables: {', '.join(DATA_MODEL)})")
        if self.agg not in AGGREGATES:
            raise ValueError(f"measure of {self.table}: unknown aggregate {self.agg!r} (one of {', '.join(AGGREGATES)})")
        if self.column is None and self.agg not in ("count", "customers"):
            raise ValueError(f"measure of {self.table}: {self.agg} needs a column")
        if isinstance(self.column, str):
            _check_column(self.table, self.column)
        if self.agg == "customers" and "customer_id" not in DATA_MODEL[self.table].columns:
            raise ValueError(f"measure of {self.table}: the table has no customer_id to count customers by")
        if self.time not in (None, _TABLE_RULE):
            _check_column(self.table, self.time)
        filters = tuple(Filter.of(f) for f in self.filters)
        for f in filters:
            if isinstance(f, Filter):
                _check_column(self.table, f.column)
        object.__setattr__(self, "filters", filters)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Measure:
        """``{"table": ..., "column": ..., "agg": ..., "filters": [[column, op, value], ...], "time": ...}``."""
        data = dict(data)
        data.pop("kind", None)
        unknown = set(data) - {"table", "column", "agg", "filters", "time", "masters_only"}
        if unknown:
            raise ValueError(f"measure: unknown keys {', '.join(sorted(unknown))}")
        return cls(**data)

    def measures(self) -> tuple[Measure, ...]:
        return (self,)

    def evaluate(self, ctx: ComputeContext, by: tuple[str, ...], values: Mapping[Measure, Any]) -> _Evaluated:
        return values[self]

    @property
    def empty(self) -> Any:
        """The value of a group without rows: 0 for counts and sums, None otherwise."""
        return 0 if self.agg in ("sum", "count", "customers") else None

    def __str__(self) -> str:
        column = self.column if isinstance(self.column, str) else ("*" if self.column is None else "<expression>")
        target = f"distinct customers of {self.table}" if self.agg == "customers" else f"{self.agg}({self.table}.{column})"
        wheres = [str(f) if isinstance(f, Filter) else "<condition>" for f in self.filters]
        return target + (f" where {' and '.join(wheres)}" if wheres else "")


def customers(table: str = "orders", *filters: Any, time: str | None = _TABLE_RULE) -> Measure:
    """The number of distinct customers (master records) with a row of ``table`` in the period."""
    return Measure(table, agg="customers", filters=filters, time=time)


def _check_column(table: str, reference: str) -> None:
    prefix, _, name = reference.rpartition(".")
    target = {"": table, "customer": "customers", "channel": "channels"}.get(prefix)
    if target is None:
        raise ValueError(f"measure of {table}: column {reference!r}: prefix must be customer. or channel.")
    if prefix == "customer" and "customer_id" not in DATA_MODEL[table].columns and table != "customers":
        raise ValueError(f"measure of {table}: {reference!r}: the table has no customer_id")
    if prefix == "channel" and not _channel_key(table):
        raise ValueError(f"measure of {table}: {reference!r}: the table has no channel")
    if name not in DATA_MODEL[target].columns:
        raise ValueError(f"measure of {table}: table {target} has no column {name!r}")


def _channel_key(table: str) -> str | None:
    columns = DATA_MODEL[table].columns
    return "acquisition_channel_id" if table == "customers" else ("channel_id" if "channel_id" in columns else None)


# --------------------------------------------------------------------------------------------
# Values built from measures
# --------------------------------------------------------------------------------------------

# (total, {group: value}); the group is a tuple of dimension labels, () without ``by``.
_Evaluated = tuple[Any, dict[tuple[str, ...], Any]]


@dataclass(frozen=True)
class Derived:
    """A value computed from other values, per group and for the total:
    ``Derived(lambda promoters, detractors, answers: ratio(promoters - detractors, answers, 100),
    promoters=..., detractors=..., answers=...)``. The formula receives the inputs' values
    (None where an input has none) and returns the KPI's value or None."""

    formula: Callable[..., Any]
    inputs: Mapping[str, Any] = field(default_factory=dict)

    def __init__(self, formula: Callable[..., Any], **inputs: Any) -> None:
        object.__setattr__(self, "formula", formula)
        object.__setattr__(self, "inputs", dict(inputs))

    def __hash__(self) -> int:
        return id(self)

    def measures(self) -> tuple[Measure, ...]:
        return tuple(m for value in self.inputs.values() for m in value.measures())

    def evaluate(self, ctx: ComputeContext, by: tuple[str, ...], values: Mapping[Measure, Any]) -> _Evaluated:
        evaluated = {name: value.evaluate(ctx, by, values) for name, value in self.inputs.items()}
        groups = sorted({group for _, per_group in evaluated.values() for group in per_group})
        total = self.formula(**{name: t for name, (t, _) in evaluated.items()})
        per_group = {
            group: self.formula(
                **{name: per.get(group, getattr(self.inputs[name], "empty", None)) for name, (_, per) in evaluated.items()}
            )
            for group in groups
        }
        return total, per_group


@dataclass(frozen=True)
class Ratio:
    """``scale * numerator / denominator`` (None when the denominator is 0 or missing), in total
    and per group; the numerator and denominator are measures or other values."""

    numerator: Any
    denominator: Any
    scale: float = 1.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ratio:
        """``{"numerator": {measure}, "denominator": {measure}, "scale": 100}``."""
        unknown = set(data) - {"kind", "numerator", "denominator", "scale"}
        if unknown:
            raise ValueError(f"ratio: unknown keys {', '.join(sorted(unknown))}")
        return cls(from_dict(data["numerator"]), from_dict(data["denominator"]), float(data.get("scale", 1.0)))

    def measures(self) -> tuple[Measure, ...]:
        return (*self.numerator.measures(), *self.denominator.measures())

    def evaluate(self, ctx: ComputeContext, by: tuple[str, ...], values: Mapping[Measure, Any]) -> _Evaluated:
        scale = self.scale
        return Derived(lambda n, d: ratio(n, d, scale), n=self.numerator, d=self.denominator).evaluate(ctx, by, values)

    def __str__(self) -> str:
        scaled = "" if self.scale == 1 else f"{self.scale:g} * "
        return f"{scaled}{self.numerator} / {self.denominator}"


@dataclass(frozen=True)
class Share:
    """Each group's part of the measure's total, in percent: a split such as revenue by segment.
    Only the groups are reported (the total would always be 100); no total, no value."""

    measure: Measure

    def measures(self) -> tuple[Measure, ...]:
        return (self.measure,)

    def evaluate(self, ctx: ComputeContext, by: tuple[str, ...], values: Mapping[Measure, Any]) -> _Evaluated:
        total, per_group = self.measure.evaluate(ctx, by, values)
        if not total:
            return None, {}
        return None, {group: percent(value or 0, total) for group, value in per_group.items()}

    def __str__(self) -> str:
        return f"100 * {self.measure} per group / {self.measure}"


@dataclass(frozen=True)
class Over:
    """A value measured over another window than the reporting period: ``window(ctx)`` returns
    that :class:`~crmmetrics.core.periods.Period` (see :func:`trailing`), e.g. the customers active
    in the year before the period's end as the base of a monthly rate."""

    value: Any
    window: Callable[[ComputeContext], Period]

    def measures(self) -> tuple[Measure, ...]:
        return self.value.measures()

    def evaluate(self, ctx: ComputeContext, by: tuple[str, ...], values: Mapping[Measure, Any]) -> _Evaluated:
        return evaluate(self.value, replace(ctx, period=self.window(ctx)), by)

    def __str__(self) -> str:
        return f"{self.value} over {getattr(self.window, '__doc__', None) or 'another window'}"


def trailing(days: int | str) -> Callable[[ComputeContext], Period]:
    """A window for :class:`Over`: the ``days`` days before the period's end (``days`` may name
    an int parameter of the metric)."""

    def window(ctx: ComputeContext) -> Period:
        length = ctx.params[days] if isinstance(days, str) else days
        return Period(ctx.period.label, ctx.period.end - timedelta(days=length), ctx.period.end)

    window.__doc__ = f"the {days} days before the period end"
    return window


# --------------------------------------------------------------------------------------------
# Survey answers: customer (survey_responses) and employee (employee_survey_responses) alike
# --------------------------------------------------------------------------------------------


def answers(instrument: str, *conditions: Any, table: str = "survey_responses") -> Measure:
    """The period's answers of ``instrument`` (meeting ``conditions``), counted."""
    return Measure(table, agg="count", filters=(Filter("instrument", "=", instrument), *conditions))


def on_scale(low: float, high: float) -> Callable[..., Any]:
    """A filter: answers on the ``low``-``high`` scale (an answer without a stated scale is on it)."""

    def condition(answers: Any, ctx: ComputeContext) -> Any:
        return sa.and_(sa.func.coalesce(answers.c.scale_min, low) == low, sa.func.coalesce(answers.c.scale_max, high) == high)

    return condition


def _net_promoters(promoters: Any, detractors: Any, answers: Any) -> float | None:
    return ratio(promoters - detractors, answers, 100.0)


def net_promoter_score(instrument: str, table: str = "survey_responses") -> Derived:
    """Promoters (9-10) minus detractors (0-6) in points of the answers on the 0-10 scale
    (Reichheld 2003): the customer NPS and the employee eNPS."""
    zero_to_ten = on_scale(0, 10)
    return Derived(
        _net_promoters,
        promoters=answers(instrument, zero_to_ten, Filter("score", ">=", 9), table=table),
        detractors=answers(instrument, zero_to_ten, Filter("score", "<=", 6), table=table),
        answers=answers(instrument, zero_to_ten, table=table),
    )


def from_dict(data: Mapping[str, Any]) -> Measure | Ratio | Share:
    """A value from plain data: a measure ``{"table", "column", "agg", "filters", "time"}``, a
    ratio ``{"numerator": ..., "denominator": ..., "scale": ...}`` or a share ``{"share": measure}``."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a KPI value is a mapping (measure, ratio or share), not {data!r}")
    if "numerator" in data or data.get("kind") == "ratio":
        return Ratio.from_dict(data)
    if "share" in data:
        return Share(Measure.from_dict(data["share"]))
    return Measure.from_dict(data)


# --------------------------------------------------------------------------------------------
# SQL: one grouped query per table and period rule
# --------------------------------------------------------------------------------------------


class _Source:
    """The measured table with the joins a batch of measures needs: the master record of the
    row's customer (and its segment), the row's channel. Joins are added only when used."""

    def __init__(self, ctx: ComputeContext, table_name: str) -> None:
        self.ctx, self.name = ctx, table_name
        self.table = ctx.tables[table_name]
        self._joins: dict[str, Any] = {}

    def _customer(self) -> tuple[Any, Any]:
        """(master id column, master record table)."""
        if self.name == "customers":
            return self.table.c.customer_id, self.table
        if "masters" not in self._joins:
            masters = customer_masters(self.ctx.tables)
            record = self.ctx.tables["customers"].alias("master_record")
            self._joins["masters"] = (masters, masters.c.customer_id == self.table.c.customer_id)
            self._joins["master_record"] = (record, record.c.customer_id == masters.c.master_id)
        return self._joins["masters"][0].c.master_id, self._joins["master_record"][0]

    def _segment(self) -> Any:
        if "segments" not in self._joins:
            segments = self.ctx.tables["segments"]
            owner = self.table if "customer_id" not in self.table.c else self._customer()[1]
            self._joins["segments"] = (segments, segments.c.segment_id == owner.c.segment_id)
        return self._joins["segments"][0]

    def _channel(self) -> Any:
        if "channels" not in self._joins:
            channels = self.ctx.tables["channels"].alias("row_channel")
            self._joins["channels"] = (channels, channels.c.channel_id == self.table.c[_channel_key(self.name)])
        return self._joins["channels"][0]

    def column(self, reference: str) -> Any:
        prefix, _, name = reference.rpartition(".")
        if prefix == "customer":
            return self._customer()[1].c[name]
        if prefix == "channel":
            return self._channel().c[name]
        return self.table.c[name]

    def master_id(self) -> Any:
        return self._customer()[0]

    def dimension(self, name: str) -> Any:
        joined = JOINED_DIMENSIONS.get(name)
        if joined is None:
            return self.table.c[name]
        owner, column = joined
        return (self._segment() if owner == "segment" else self._channel()).c[column]

    def from_clause(self) -> Any:
        joined = self.table
        for table, on in self._joins.values():
            joined = joined.outerjoin(table, on)
        return joined


def _check_dimension(table: str, name: str) -> None:
    if name == "segment":
        if "customer_id" not in DATA_MODEL[table].columns and "segment_id" not in DATA_MODEL[table].columns:
            raise ValueError(f"measure of {table}: no segment to break down by")
    elif name in JOINED_DIMENSIONS:
        if not _channel_key(table):
            raise ValueError(f"measure of {table}: no channel to break down by {name}")
    elif name not in DATA_MODEL[table].columns:
        raise ValueError(f"measure of {table}: cannot break down by {name!r} (not a column of {table})")


def _condition(spec: Any, source: _Source) -> Any:
    return spec(source.table, source.ctx) if callable(spec) else spec.condition(source.column(spec.column), source.ctx)


def _period(measure: Measure, source: _Source) -> tuple[Any, Any]:
    """(the period condition, the amount column for a pro-rated cost, or None)."""
    ctx = source.ctx
    if measure.time is None:
        return None, None
    if measure.time != _TABLE_RULE:
        return in_period(source.table.c[measure.time], ctx.period), None
    if measure.table == "cost_entries":
        amount, overlaps = prorated_cost(source.table, ctx.period)
        return overlaps, amount
    return period_filter(measure.table, ctx.period, ctx.tables), None


def _aggregate(measure: Measure, source: _Source, conditions: list[Any], prorated: Any) -> Any:
    if measure.agg == "customers":
        target = source.master_id()
    elif measure.column is None:
        target = None
    elif callable(measure.column):
        target = measure.column(source.table, source.ctx)
    elif measure.column == "amount" and prorated is not None:
        target = prorated  # a cost entry counts pro rata to its overlap with the period
    else:
        target = source.column(measure.column)
    condition = sa.and_(*conditions) if len(conditions) > 1 else (conditions[0] if conditions else None)
    if measure.agg == "count":
        if condition is None:
            return sa.func.count() if target is None else sa.func.count(target)
        hit = condition if target is None else sa.and_(condition, target.is_not(None))
        return sa.func.coalesce(sa.func.sum(sa.case((hit, 1), else_=0)), 0)  # a count is 0 without rows
    if condition is not None:
        # Conditional aggregation, so that several measures share one query; a sum over
        # rows none of which match is 0 (there were rows), not NULL.
        target = sa.case((condition, target), else_=0 if measure.agg == "sum" else None)
    if measure.agg == "customers":
        return sa.func.count(sa.func.distinct(target))
    return {"sum": sa.func.sum, "mean": sa.func.avg, "max": sa.func.max, "min": sa.func.min}[measure.agg](target)


def _batches(measures: Iterable[Measure]) -> dict[tuple[Any, ...], list[Measure]]:
    batches: dict[tuple[Any, ...], list[Measure]] = {}
    for measure in dict.fromkeys(measures):
        batches.setdefault((measure.table, measure.time, measure.masters_only), []).append(measure)
    return batches


def _batch_select(ctx: ComputeContext, measures: list[Measure], by: tuple[str, ...]) -> tuple[Any, Any]:
    """``(grouped select, ungrouped select)`` of the measures of one table and period rule: the
    filters they all share go into WHERE, the others into each aggregate."""
    source = _Source(ctx, measures[0].table)
    period, prorated = _period(measures[0], source)
    common = [f for f in measures[0].filters if all(f in m.filters for m in measures[1:])]
    where = [c for c in (period,) if c is not None] + [_condition(f, source) for f in common]
    if source.name == "customers" and measures[0].masters_only:
        where.append(master_customers(source.table))
    aggregates = [
        _aggregate(m, source, [_condition(f, source) for f in m.filters if f not in common], prorated) for m in measures
    ]
    dimensions = [sa.func.coalesce(source.dimension(name), sa.literal(UNASSIGNED)) for name in by]
    grouped = sa.select(*dimensions, *aggregates).select_from(source.from_clause()).where(*where)
    ungrouped = sa.select(*aggregates).select_from(source.from_clause()).where(*where)
    return (grouped.group_by(*dimensions) if by else grouped), ungrouped


def _shared_rows(ctx: ComputeContext, statement: Any) -> tuple[Any, ...]:
    """The rows of a kit statement, read once per run for every metric that sends the same SQL
    with the same parameters (KPIs often share a measure: the active customers of a period)."""
    compiled = statement.compile(dialect=ctx.connection.dialect)
    key = ("kit_rows", compiled.string, repr(sorted(compiled.params.items())))
    return ctx.shared(key, lambda: tuple(ctx.connection.execute(statement).all()))


def _run_batch(ctx: ComputeContext, measures: list[Measure], by: tuple[str, ...]) -> dict[Measure, _Evaluated]:
    statement, ungrouped_statement = _batch_select(ctx, measures, by)
    if not by:
        (row,) = _shared_rows(ctx, statement)
        return {m: (value, {(): value}) for m, value in zip(measures, row)}
    rows = _shared_rows(ctx, statement)
    evaluated: dict[Measure, _Evaluated] = {}
    ungrouped = None
    for index, measure in enumerate(measures):
        per_group = {tuple(row[: len(by)]): row[len(by) + index] for row in rows}
        if measure.agg in _ADDITIVE or (measure.agg == "customers" and by == ("segment",)):
            # A group total adds up (a customer has one segment); NULL sums count as 0 beside others.
            total = sum((value or 0 for value in per_group.values()), 0) if rows else (0 if measure.agg == "count" else None)
        else:
            if ungrouped is None:
                (ungrouped,) = _shared_rows(ctx, ungrouped_statement)
            total = ungrouped[index]
        evaluated[measure] = (total, per_group)
    return evaluated


def statements(value: Any, ctx: ComputeContext, by: str | tuple[str, ...] = ()) -> list[Any]:
    """The SELECT statements a kit value runs for the context's period, one per table and period
    rule (and per :class:`Over` window), not executed: to show or compile them
    (``str(statement.compile(dialect=..., compile_kwargs={"literal_binds": True}))``)."""
    by = (by,) if isinstance(by, str) else tuple(by)
    selects = [_batch_select(ctx, batch, by)[0] for batch in _batches(_direct_measures(value)).values()]
    for over in _overs(value):
        selects += statements(over.value, replace(ctx, period=over.window(ctx)), by)
    return selects


def _overs(value: Any) -> Iterable[Over]:
    if isinstance(value, Over):
        yield value
    elif isinstance(value, Ratio):
        yield from _overs(value.numerator)
        yield from _overs(value.denominator)
    elif isinstance(value, Derived):
        for inner in value.inputs.values():
            yield from _overs(inner)


def _direct_measures(value: Any) -> Iterable[Measure]:
    """The measures of a value computed over the context's own period (not under :class:`Over`)."""
    if isinstance(value, Measure):
        yield value
    elif isinstance(value, Ratio):
        yield from _direct_measures(value.numerator)
        yield from _direct_measures(value.denominator)
    elif isinstance(value, Share):
        yield value.measure
    elif isinstance(value, Derived):
        for inner in value.inputs.values():
            yield from _direct_measures(inner)


def evaluate(value: Any, ctx: ComputeContext, by: str | tuple[str, ...] = ()) -> _Evaluated:
    """``(total, {group: value})`` of a kit value for the context's period, ``group`` a tuple
    of dimension labels (``()`` without ``by``): for a compute function that builds on a kit
    value (a KPI derived from another KPI's total)."""
    by = (by,) if isinstance(by, str) else tuple(by)
    values: dict[Measure, _Evaluated] = {}
    for batch in _batches(_direct_measures(value)).values():
        values.update(_run_batch(ctx, batch, by))
    return value.evaluate(ctx, by, values)


# --------------------------------------------------------------------------------------------
# Results and definitions
# --------------------------------------------------------------------------------------------


def _results(total: Any, per_group: Mapping[tuple[str, ...], Any], by: tuple[str, ...], with_total: bool = True) -> Any:
    if not by:
        return total
    results = [Result(total)] if with_total else []
    results += [Result(value, dict(zip(by, group))) for group, value in per_group.items()]
    return results or None


def label(key: Any, labels: Mapping[Any, str] | None = None, dimension: str = "segment") -> str:
    """What a group key is shown as: ``labels[key]`` (a segment id's name; ``"segment 7"`` for an
    id without one), the key itself, or :data:`UNASSIGNED` for a row without a value."""
    if labels is not None and key is not None:
        key = labels.get(key, f"{dimension} {key}")
    return UNASSIGNED if key is None else str(key)


def breakdown(
    rows: Iterable[Sequence[Any]],
    value: Callable[..., Any],
    dimension: str | tuple[str, ...] = "segment",
    labels: Mapping[Any, str] | None = None,
    *,
    total: bool = True,
) -> list[Result] | None:
    """The total and one Result per group, for a compute function's grouped rows
    ``(group, *aggregates)`` (``(group_1, ..., group_n, *aggregates)`` for several dimensions).

    ``value(*aggregates)`` turns a group's aggregates, and for the total their sums, into the
    KPI's value. ``labels`` maps raw group keys (a segment id) to what is shown; a group without
    a value is :data:`UNASSIGNED`. No rows: None (no value).
    """
    names = (dimension,) if isinstance(dimension, str) else tuple(dimension)
    rows = [tuple(row) for row in rows]
    if not rows:
        return None
    width = len(names)

    grouped: dict[tuple[str, ...], list[Any]] = {}
    for row in rows:
        key = tuple(label(k, labels, names[0]) for k in row[:width])
        if key in grouped:  # two raw keys with one label (NULL and an id without a name)
            grouped[key] = [(a or 0) + (b or 0) for a, b in zip(grouped[key], row[width:])]
        else:
            grouped[key] = list(row[width:])
    sums = [sum((row[i] or 0 for row in rows), 0) for i in range(width, len(rows[0]))]
    results = [Result(value(*sums))] if total else []
    return results + [Result(value(*aggregates), dict(zip(names, key))) for key, aggregates in grouped.items()]


def with_segment(ctx: ComputeContext, per_customer: Any, key: str = "master_id") -> tuple[Any, Any]:
    """``(from clause, segment name)`` of a per-customer subquery (``key``: its master customer id
    column) joined to the master record and its segment (NULL: :data:`UNASSIGNED` in
    :func:`breakdown`)."""
    customers, segments = ctx.tables["customers"], ctx.tables["segments"]
    record = customers.alias("master_record")
    joined = per_customer.join(record, record.c.customer_id == per_customer.c[key]).outerjoin(
        segments, segments.c.segment_id == record.c.segment_id
    )
    return joined, segments.c.name


class KitCompute:
    """The compute function of a KPI declared with a value: evaluates it for the period and
    returns the total and the breakdown. ``value`` and ``by`` are kept for readers (explain)."""

    def __init__(self, value: Any, by: tuple[str, ...]) -> None:
        self.value, self.by = value, by

    def __call__(self, ctx: ComputeContext) -> Any:
        total, per_group = evaluate(self.value, ctx, self.by)
        return _results(total, per_group, self.by, with_total=not isinstance(self.value, Share))

    def __repr__(self) -> str:
        return f"KitCompute({self.value}, by={self.by})"


def derive_needs(value: Any) -> tuple[str, ...]:
    """The source inputs of a kit value: each measure's table, or ``table.column`` where the
    measured column or the time column may be NULL (no values of it: no data)."""
    needs: dict[str, None] = {}
    for measure in value.measures():
        columns = DATA_MODEL[measure.table].columns
        for name in (measure.column if measure.agg in ("sum", "mean", "max", "min") else None, measure.time):
            if isinstance(name, str) and name != _TABLE_RULE and "." not in name and columns[name].nullable:
                needs[f"{measure.table}.{name}"] = None
        if not any(need.startswith(f"{measure.table}.") for need in needs):
            needs[measure.table] = None
    # A column need says the table has rows too.
    return tuple(need for need in needs if "." in need or not any(n.startswith(f"{need}.") for n in needs))


def define(
    *,
    key: str,
    value: Any = None,
    compute: Callable[[ComputeContext], Any] | None = None,
    by: str | tuple[str, ...] = (),
    needs: Any = None,
    **fields: Any,
) -> MetricDefinition:
    """A :class:`~crmmetrics.MetricDefinition` from a kit value (or a ``compute`` function).

    ``by`` gives the dimensions; ``needs`` is derived from the value's measures unless given
    (a compute function must give it). Every other field is MetricDefinition's (name,
    description, process, perspective, value_lens, unit, direction, formula, source, period,
    parameters, schedule, timeout_seconds).
    """
    dimensions = (by,) if isinstance(by, str) else tuple(by)
    if "dimensions" in fields:
        raise TypeError(f"metric {key}: give the dimensions as by=, not dimensions=")
    if (value is None) == (compute is None):
        raise TypeError(f"metric {key}: give exactly one of value= (a kit value) or compute= (a function)")
    if value is not None:
        if not hasattr(value, "measures"):
            raise TypeError(f"metric {key}: value must be a Measure, Ratio, Share or Derived, not {value!r}")
        for measure in value.measures():
            for name in dimensions:
                _check_dimension(measure.table, name)
        compute = KitCompute(value, dimensions)
        if needs is None:
            needs = derive_needs(value)
    return MetricDefinition(key=key, compute=compute, dimensions=dimensions, needs=needs or (), **fields)
