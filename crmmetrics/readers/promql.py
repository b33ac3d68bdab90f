"""PromQL for the generated dashboards: the queries that select a metric's exported values,
its change on the previous period, and its KPIs' statuses from the families the exporter and
the scorecard export (crmmetrics.readers.families names them).

A metric's total and its breakdown are families of their own, and so is each dimension set a
KPI is judged in, so most queries are the union (``or``) of a few selectors; the panels
(crmmetrics.readers.dashboards) place them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial

from crmmetrics.core.definitions import MetricDefinition
from .families import status_family, value_family
from .scorecard import STATUS_VALUES


def selector(name: str, definition: MetricDefinition, matchers: Iterable[str] = ()) -> str:
    return name + "{" + ", ".join([f'metric="{definition.key}"', *matchers]) + "}"


def union(selectors: Iterable[str]) -> str:
    """Several families as one vector (their label sets differ, so ``or`` keeps every series)."""
    selectors = list(selectors)
    return selectors[0] if len(selectors) == 1 else "(" + " or ".join(selectors) + ")"


def period_values(definition: MetricDefinition, period: str = "current", total: bool = False, matchers: Iterable[str] = ()) -> str:
    """The metric's exported values for a period: its total and its breakdown (the total and the
    breakdown are families of their own); with ``total``, only the total."""
    matchers = [f'period="{period}"', *matchers]
    names = [value_family(definition.unit)]
    if definition.dimensions and not total:
        names.append(value_family(definition.unit, definition.dimensions))
    return union(selector(name, definition, matchers) for name in names)


def breakdown(definition: MetricDefinition, period: str = "current") -> str:
    return selector(value_family(definition.unit, definition.dimensions), definition, [f'period="{period}"'])


def per_kpi(definition: MetricDefinition, family: Callable[[tuple[str, ...]], str], matchers: Iterable[str] = ()) -> str:
    """A scorecard family of the metric's KPIs: those judging its total, and its dimension values."""
    dimension_sets = [()] + ([tuple(definition.dimensions)] if definition.dimensions else [])
    return union(selector(family(dims), definition, matchers) for dims in dimension_sets)


def change(definition: MetricDefinition, total: bool = False) -> str:
    """Current minus previous period, in the metric's own unit (a stat panel has one unit)."""
    return f"({period_values(definition, total=total)} - ignoring(period) {period_values(definition, 'previous', total)})"


def kpi_status(definition: MetricDefinition) -> str:
    return per_kpi(definition, status_family)


def total_or_each(definition: MetricDefinition, build: Callable[[bool], str]) -> str:
    """``build(total)``'s total when the metric reports one, otherwise its every dimension value."""
    if not definition.dimensions:
        return build(False)
    total = build(True)
    return f"({total} or ({build(False)} unless on(metric) {total}))"


def shown(definition: MetricDefinition, build: Callable[[bool], str]) -> str:
    """What a KPI's stat panel shows: the values the scorecard judges (those with a status) or,
    when it judges none, the total (or every dimension value without a total)."""
    status = kpi_status(definition)
    return f"({build(False)} and ignoring(period) {status}) or ({total_or_each(definition, build)} unless on(metric) {status})"


def name_total(definition: MetricDefinition, expr: str) -> str:
    """Name the total "total" in the first dimension's label, so that legends read well."""
    if not definition.dimensions:
        return expr
    first = definition.dimensions[0]
    return f'label_replace({expr}, "{first}", "total", "{first}", "")'


def status_coloured_expr(definition: MetricDefinition) -> str:
    """A KPI's shown values with a ``status`` label: red, amber, green, or none.

    PromQL cannot turn the status sample's value into a label, so each judged value is selected
    once per status (``and`` on the matching status series: the scorecard labels a status like
    the observation it judges, dimensions included, without ``period``) and labelled by
    ``label_replace``; when no value has a status (none judged yet), the total or every
    dimension value is labelled ``none``. One expression that always returns data, so a stat
    panel can colour each value by the status at the end of its name.
    """
    values, status = period_values(definition), kpi_status(definition)
    branches = [
        f'label_replace({values} and ignoring(period) ({status} == {number}), "status", "{name}", "metric", ".*")'
        for name, number in sorted(STATUS_VALUES.items(), key=lambda item: -item[1])
    ]
    unjudged = f"{total_or_each(definition, partial(period_values, definition, 'current'))} unless on(metric) {status}"
    branches.append(f'label_replace({unjudged}, "status", "none", "metric", ".*")')
    return name_total(definition, "\n  or ".join(branches))


def change_expr(definition: MetricDefinition, kpi: bool) -> str:
    """The change on the previous period of the values a metric's stat panel shows."""
    build = partial(change, definition)
    return name_total(definition, shown(definition, build) if kpi else total_or_each(definition, build))


def value_expr(definition: MetricDefinition) -> str:
    """The total of a metric that is no KPI, or every dimension value when it reports no total."""
    return name_total(definition, total_or_each(definition, partial(period_values, definition, "current")))


def kpi_families(definitions: Iterable[MetricDefinition], family: Callable[[Iterable[str]], str], matchers: str = "") -> str:
    """The union of ``family`` over the dimension sets the KPIs are judged in (total, breakdowns)."""
    names = sorted({family(())} | {family(d.dimensions) for d in definitions if d.dimensions})
    return union(f"{name}{matchers}" for name in names)


def with_name(expr: str) -> str:
    """``expr`` with the metric's name from crmmetrics_metric_info (its value is 1)."""
    return f"{expr} * on(job, instance, metric) group_left(name) crmmetrics_metric_info"
