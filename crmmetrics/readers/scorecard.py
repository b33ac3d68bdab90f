"""The balanced scorecard: KPIs (metrics with a standard) with status, score and roll-ups.

Rules (the issue, made precise):

- **Score** of a KPI: ``clamp(100 * (value - red) / (green - red), 0, 100)``; it works for
  lower-is-better KPIs too, where red > green.
- **Status**: green when the value is at or beyond green (score 100), red when at or beyond red
  (score 0), amber in between. A value exactly on the red threshold is red.
- **Missing values**: a KPI without a current value (never computed, or computed as missing)
  has no status and no score, is left out of every roll-up and of target attainment, and is
  shown as "no data" (with the reason when the runner stated one, e.g. an empty source table).
- **Coverage**: every roll-up (cell, process, perspective, index) states how many of its KPIs
  have a value ("n of m KPIs with data"); its score is computed over those only, and a roll-up
  none of whose KPIs has data has no score ("no data"), never 0 or 100.
- **Which observation a standard judges**: a standard narrowed to dimension values judges the
  observations with those values; a standard for the whole metric judges the metric's total
  (the observation without dimensions) when the metric reports one, and otherwise every
  dimension value that has no standard of its own ("the same high standard in every channel").
  When several standards could judge one observation, the most specific wins (most dimensions;
  then the first key in sort order).
- **Weight**: a standard counts once in the roll-ups with its weight: when it judges n
  dimension values that have a value, each gets weight/n (its ``share`` is 1/n).
- **Roll-ups**: a cell (process x perspective), a process and a perspective score are the
  weighted means of the scores of their KPIs (no score when they have none, or only weight 0);
  the **index** is the mean of the four perspective scores (of those that have one).
- **Target attainment**: the share of KPIs whose value is at or beyond the target in force
  (direction-aware); each KPI on the grid counts once (a dimension value judged by a standard
  for the whole metric is a KPI of its own). KPIs without a value or without a target (a
  target derived from a missing previous value) are left out.
- **Change**: ``(current - previous) / |previous|``; none when the previous value is missing or 0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.samples import Sample

from crmmetrics.core.definitions import EXPORT_UNITS, UNITS
from crmmetrics.core.periods import Period
from crmmetrics.core.standard import Standard, better_or_equal, format_key
from crmmetrics.core.vocabulary import Direction, KpiStatus, PeriodLabel, Perspective, Process
from crmmetrics.store.standards import standards_in_force
from crmmetrics.store.store import LatestObservation, MetricRecord, Store, dimensions_key
from .families import change_family, score_family, status_family, target_family, threshold_family, weight_family
from .values import metric_values

STATUS_VALUES = {KpiStatus.RED: 0, KpiStatus.AMBER: 1, KpiStatus.GREEN: 2}


def kpi_score(value: float, red: float, green: float) -> float:
    """``clamp(100 * (value - red) / (green - red), 0, 100)``."""
    return min(100.0, max(0.0, 100.0 * (value - red) / (green - red)))


def kpi_status(value: float, red: float, green: float) -> KpiStatus:
    """``green`` at or beyond green, ``red`` at or beyond red, ``amber`` in between."""
    position = (value - red) / (green - red)
    if position >= 1:
        return KpiStatus.GREEN
    if position <= 0:
        return KpiStatus.RED
    return KpiStatus.AMBER


def change_ratio(current: float | None, previous: float | None) -> float | None:
    """``(current - previous) / |previous|``, or None without a comparable previous value."""
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / abs(previous)


def weighted_mean(pairs: Iterable[tuple[float | None, float]]) -> float | None:
    """Weighted mean of (score, weight) pairs, ignoring missing scores; None if no weight is left."""
    total = weight_sum = 0.0
    for value, weight in pairs:
        if value is not None:
            total += value * weight
            weight_sum += weight
    return total / weight_sum if weight_sum > 0 else None


@dataclass(frozen=True)
class Kpi:
    """One KPI on the scorecard: a standard applied to one observation of its metric."""

    standard: Standard
    metric: str
    name: str
    process: str
    perspective: str
    unit: str
    direction: str
    dimensions: Mapping[str, str]
    share: float
    value: float | None
    previous: float | None
    target: float | None
    status: str | None
    score: float | None
    change: float | None
    attained: bool | None
    computed_at: datetime | None
    period_start: datetime | None = None  # the current period the value covers, [start, end)
    period_end: datetime | None = None
    missing_reason: str | None = None  # why there is no value, when the runner knows

    @property
    def key(self) -> str:
        return format_key(self.metric, self.dimensions)

    @property
    def weight(self) -> float:
        """The weight this KPI has in the roll-ups (its standard's weight times its share)."""
        return self.standard.spec.weight * self.share

    def to_json(self) -> dict[str, Any]:
        spec = self.standard.spec
        return {
            "key": self.key,
            "metric": self.metric,
            "name": self.name,
            "process": self.process,
            "perspective": self.perspective,
            "dimensions": dict(self.dimensions),
            "unit": self.unit,
            "direction": self.direction,
            "value": self.value,
            "previous": self.previous,
            "change_ratio": self.change,
            "target": self.target,
            "red": spec.red,
            "green": spec.green,
            "weight": self.weight,
            "status": self.status,
            "score": self.score,
            "attained": self.attained,
            "owner": spec.owner,
            "standard": self.standard.key,
            "standard_origin": self.standard.origin,
            "computed_at": self.computed_at.isoformat() + "Z" if self.computed_at else None,
            "period": _period_json(self.period_start, self.period_end),
            "missing_reason": self.missing_reason,
        }


def _period_json(start: datetime | None, end: datetime | None) -> dict[str, str] | None:
    if start is None or end is None:
        return None
    return Period(PeriodLabel.CURRENT, start, end).to_json()


@dataclass(frozen=True)
class Coverage:
    """How many of a roll-up's KPIs have a value: its score is over those ``with_data`` only."""

    with_data: int
    total: int

    @classmethod
    def of(cls, kpis: Iterable[Kpi]) -> Coverage:
        kpis = list(kpis)
        return cls(sum(1 for k in kpis if k.score is not None), len(kpis))

    @property
    def ratio(self) -> float | None:
        return self.with_data / self.total if self.total else None

    def describe(self) -> str:
        return f"{self.with_data} of {self.total} KPIs with data"

    def to_json(self) -> dict[str, Any]:
        return {"kpis_with_data": self.with_data, "kpis": self.total, "ratio": self.ratio}


def _rollup_json(score: float | None, coverage: Coverage) -> dict[str, Any]:
    return {"score": score, "status": None if score is not None else "no data", "coverage": coverage.to_json()}


@dataclass(frozen=True)
class Scorecard:
    """The KPIs and their roll-ups: cells, processes, perspectives, index and attainment."""

    kpis: list[Kpi]
    cells: dict[tuple[str, str], float | None] = field(default_factory=dict)
    processes: dict[str, float | None] = field(default_factory=dict)
    perspectives: dict[str, float | None] = field(default_factory=dict)
    index: float | None = None
    attainment: float | None = None
    computed_at: datetime | None = None
    # Coverage of each roll-up and of the index (all KPIs); see the module docs.
    cell_coverage: dict[tuple[str, str], Coverage] = field(default_factory=dict)
    process_coverage: dict[str, Coverage] = field(default_factory=dict)
    perspective_coverage: dict[str, Coverage] = field(default_factory=dict)
    coverage: Coverage = Coverage(0, 0)
    # What the values of metrics without a standard are read from (records, observations):
    # kept, not evaluated, so that the exposition, which never shows them, pays nothing.
    value_source: tuple[Any, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def unjudged(self) -> list[Any]:
        """Every latest value of the metrics with values but no standard (crmmetrics.readers.values.MetricValue)."""
        if self.value_source is None:
            return []
        records, observations = self.value_source
        judged = {k.metric for k in self.kpis}
        return [v for v in metric_values(records, observations) if v.metric not in judged]

    def period_of(self, kpi: Kpi) -> Period | None:
        if kpi.period_start is None or kpi.period_end is None:
            return None
        return Period(PeriodLabel.CURRENT, kpi.period_start, kpi.period_end)

    @property
    def periods(self) -> list[tuple[Period, int]]:
        """The distinct current periods the KPIs' values cover (as people read them: trailing
        windows of runs a few seconds apart are one period), with their number of KPIs."""
        groups: dict[str, list[Period]] = defaultdict(list)
        for kpi in self.kpis:
            period = self.period_of(kpi)
            if period is not None:
                groups[period.describe()].append(period)
        found = [(max(periods, key=lambda p: p.end), len(periods)) for periods in groups.values()]
        return sorted(found, key=lambda item: (item[0].end, item[0].start))

    @property
    def reporting_date(self) -> datetime | None:
        """The end (exclusive) of the latest period a KPI value covers: "data up to"."""
        periods = self.periods
        return max(p.end for p, _count in periods) if periods else None

    def cell(self, process: str, perspective: str) -> list[Kpi]:
        return [k for k in self.kpis if k.process == process and k.perspective == perspective]

    def status_counts(self) -> dict[str, int]:
        counts = {KpiStatus.GREEN: 0, KpiStatus.AMBER: 0, KpiStatus.RED: 0, "no data": 0}
        for kpi in self.kpis:
            counts[kpi.status or "no data"] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        reporting_date = self.reporting_date
        return {
            "index": self.index,
            "coverage": self.coverage.to_json(),
            "target_attainment_ratio": self.attainment,
            "computed_at": self.computed_at.isoformat() + "Z" if self.computed_at else None,
            "reporting_date": reporting_date.isoformat() + "Z" if reporting_date else None,
            "periods": [{**period.to_json(), "kpis": count} for period, count in self.periods],
            "statuses": self.status_counts(),
            "perspectives": {str(p): self.perspectives.get(str(p)) for p in Perspective},
            "processes": {str(p): self.processes.get(str(p)) for p in Process},
            "perspective_rollups": {
                str(p): _rollup_json(self.perspectives.get(str(p)), self.perspective_coverage.get(str(p), Coverage(0, 0)))
                for p in Perspective
            },
            "process_rollups": {
                str(p): _rollup_json(self.processes.get(str(p)), self.process_coverage.get(str(p), Coverage(0, 0)))
                for p in Process
            },
            "cells": [
                {
                    "process": str(p),
                    "perspective": str(q),
                    "score": self.cells.get((str(p), str(q))),
                    "coverage": self.cell_coverage.get((str(p), str(q)), Coverage(0, 0)).to_json(),
                }
                for p in Process
                for q in Perspective
            ],
            "kpis": [kpi.to_json() for kpi in self.kpis],
            "unjudged_metrics": [value.to_json() for value in self.unjudged],
        }


def _judged(standards: list[Standard], observed: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """Which observations (by dimensions) each standard of one metric judges (see module docs)."""
    has_total = any(not dims for dims in observed)
    judged: dict[str, list[dict[str, str]]] = {s.key: [] for s in standards}
    for dims in observed:
        candidates = [
            s
            for s in standards
            if all(dims.get(k) == v for k, v in s.dimensions.items()) and (s.dimensions or not dims or not has_total)
        ]
        if candidates:
            best = min(candidates, key=lambda s: (-len(s.dimensions), s.key))
            judged[best.key].append(dims)
    return judged


def evaluate(
    standards: Iterable[Standard],
    records: Mapping[str, MetricRecord],
    observations: Iterable[LatestObservation],
) -> Scorecard:
    """The scorecard for these standards, metric definitions and latest observations."""
    observations = list(observations)
    values: dict[str, dict[str, dict[str, LatestObservation]]] = defaultdict(lambda: defaultdict(dict))
    for observation in observations:
        values[observation.metric_key][dimensions_key(observation.dimensions)][observation.period_label] = observation
    by_metric: dict[str, list[Standard]] = defaultdict(list)
    for standard in standards:
        if standard.metric in records:  # a standard for a metric no plugin defines is not on the scorecard
            by_metric[standard.metric].append(standard)

    kpis: list[Kpi] = []
    for metric, metric_standards in sorted(by_metric.items()):
        record = records[metric]
        direction = Direction(record.direction)
        observed = values.get(metric, {})
        judged = _judged(metric_standards, [next(iter(p.values())).dimensions for p in observed.values()])
        for standard in metric_standards:
            rows = judged[standard.key] or [standard.dimensions]  # nothing observed: one "no data" row
            periods = [observed.get(dimensions_key(dims), {}) for dims in rows]
            with_value = sum(1 for p in periods if p.get(PeriodLabel.CURRENT) and p[PeriodLabel.CURRENT].value is not None)
            share = 1.0 / (with_value or len(rows))
            for dims, period in zip(rows, periods):
                current, previous = period.get(PeriodLabel.CURRENT), period.get(PeriodLabel.PREVIOUS)
                value = current.value if current else None
                before = previous.value if previous else None
                spec = standard.spec
                target = spec.target_for(before)
                kpis.append(
                    Kpi(
                        standard=standard,
                        metric=metric,
                        name=record.name,
                        process=record.process,
                        perspective=record.perspective,
                        unit=record.unit,
                        direction=record.direction,
                        dimensions=dims,
                        share=share,
                        value=value,
                        previous=before,
                        target=target,
                        status=kpi_status(value, spec.red, spec.green) if value is not None else None,
                        score=kpi_score(value, spec.red, spec.green) if value is not None else None,
                        change=change_ratio(value, before),
                        attained=better_or_equal(value, target, direction) if value is not None and target is not None else None,
                        computed_at=current.computed_at if current else None,
                        period_start=current.period_start if current else None,
                        period_end=current.period_end if current else None,
                        missing_reason=current.reason if current else None,
                    )
                )
    kpis.sort(key=lambda k: (list(Process).index(Process(k.process)), list(Perspective).index(Perspective(k.perspective)), k.name, k.key))

    cells = {
        (str(p), str(q)): weighted_mean((k.score, k.weight) for k in kpis if k.process == p and k.perspective == q)
        for p in Process
        for q in Perspective
    }
    processes = {str(p): weighted_mean((k.score, k.weight) for k in kpis if k.process == p) for p in Process}
    perspectives = {str(q): weighted_mean((k.score, k.weight) for k in kpis if k.perspective == q) for q in Perspective}
    scored = [s for s in perspectives.values() if s is not None]
    judged = [k.attained for k in kpis if k.attained is not None]
    times = [k.computed_at for k in kpis if k.computed_at is not None]
    return Scorecard(
        kpis=kpis,
        cells=cells,
        processes=processes,
        perspectives=perspectives,
        index=sum(scored) / len(scored) if scored else None,
        attainment=sum(judged) / len(judged) if judged else None,
        computed_at=max(times) if times else None,
        cell_coverage={
            (str(p), str(q)): Coverage.of(k for k in kpis if k.process == p and k.perspective == q)
            for p in Process
            for q in Perspective
        },
        process_coverage={str(p): Coverage.of(k for k in kpis if k.process == p) for p in Process},
        perspective_coverage={str(q): Coverage.of(k for k in kpis if k.perspective == q) for q in Perspective},
        coverage=Coverage.of(kpis),
        value_source=(records, observations),
    )


def build_scorecard(store: Store, at: datetime | None = None) -> Scorecard:
    """The scorecard from the store: standards in force now (or at ``at``), latest observations."""
    return evaluate(standards_in_force(store, at), store.metric_records(), store.latest_observations())


# --- presentation helpers shared by the CLI and the page ---------------------------------------


def format_number(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:,.1f}"
    return f"{value:.2f}"


def format_value(value: float | None, unit: str) -> str:
    """A value with its unit for people: ``42.1%``, ``1,234 customers``, ``0.85``; "no data" if None."""
    if value is None:
        return "no data"
    whole = unit in ("count", "customers") and float(value).is_integer()
    number = f"{value:,.0f}" if whole else format_number(value)
    if UNITS.get(unit) == "%":
        return f"{number}%"
    suffix = UNITS.get(unit, "")
    if unit in ("ratio", "currency", "count", "score") or not suffix:
        return number
    return f"{number} {suffix}"


def format_change(change: float | None) -> str:
    """``+3.2%`` / ``-0.5%`` of the previous period, or an empty string."""
    if change is None:
        return ""
    text = f"{change * 100:+.1f}%"
    return "0.0%" if text in ("+0.0%", "-0.0%") else text  # a change too small to show has no sign


def change_is_good(kpi: Kpi) -> bool | None:
    """Whether the change against the previous period went the good way for this KPI."""
    if kpi.change is None or kpi.change == 0:
        return None
    return (kpi.change > 0) == (kpi.direction == Direction.HIGHER_IS_BETTER)


# --- Prometheus families ------------------------------------------------------------------------


class GaugeFamilies:
    """Gauge families created on first use, so that each dimension set and unit gets its own
    (the scorecard's and the outlook's)."""

    def __init__(self) -> None:
        self.families: dict[str, Metric] = {}

    def add(self, name: str, documentation: str, labels: Mapping[str, str], value: float) -> None:
        if name not in self.families:
            self.families[name] = Metric(name, documentation, "gauge")
        self.families[name].samples.append(Sample(name, dict(labels), value))

    def __iter__(self) -> Iterator[Metric]:
        return iter(self.families[name] for name in sorted(self.families))


STATUS_LABELS = tuple(KpiStatus)


def scorecard_families(scorecard: Scorecard) -> Iterator[Metric]:
    """The scorecard's Prometheus families (the model: crmmetrics.readers.families, docs/operations.md).

    Per KPI, families by dimension set like the values: a target and thresholds in the base
    unit of the KPI's metric, a status, a score, a change and a weight. Then the roll-ups and
    the number of KPIs by status per roll-up (``no_data``: KPIs without a current value).
    """
    kpi_families = GaugeFamilies()
    for kpi in scorecard.kpis:
        dims = list(kpi.dimensions)
        labels = {"metric": kpi.metric, "process": kpi.process, "perspective": kpi.perspective, **kpi.dimensions}
        base = EXPORT_UNITS[kpi.unit]
        spec = kpi.standard.spec
        suffix = base.suffix
        if kpi.target is not None:
            kpi_families.add(target_family(kpi.unit, dims), f"Target in force for a KPI, in {suffix}", labels, base.to_base(kpi.target))
        for threshold, value in (("red", spec.red), ("green", spec.green)):
            kpi_families.add(
                threshold_family(threshold, kpi.unit, dims), f"The {threshold} threshold of a KPI, in {suffix}", labels, base.to_base(value)
            )
        if kpi.status is not None:
            kpi_families.add(status_family(dims), "Status of a KPI: 0 red, 1 amber, 2 green (absent without a value)", labels,
                             STATUS_VALUES[kpi.status])
            kpi_families.add(score_family(dims), "Score of a KPI, 0-100, from its red and green thresholds", labels, kpi.score)
        if kpi.change is not None:
            kpi_families.add(change_family(dims), "Change of a KPI against the previous period: (current - previous) / |previous|",
                             labels, kpi.change)
        kpi_families.add(weight_family(dims), "Weight of a KPI in the scorecard roll-ups", labels, kpi.weight)
    yield from kpi_families

    cell = Metric("crmmetrics_scorecard_cell_score", "Weighted mean score of the KPIs of one process in one perspective, 0-100", "gauge")
    for (process, perspective), value in scorecard.cells.items():
        if value is not None:
            cell.samples.append(Sample(cell.name, {"process": process, "perspective": perspective}, value))
    process_score = Metric("crmmetrics_scorecard_process_score", "Weighted mean score of the KPIs of one CRM process, 0-100", "gauge")
    for process, value in scorecard.processes.items():
        if value is not None:
            process_score.samples.append(Sample(process_score.name, {"process": process}, value))
    perspective_score = Metric(
        "crmmetrics_scorecard_perspective_score", "Weighted mean score of the KPIs of one scorecard perspective, 0-100", "gauge"
    )
    for perspective, value in scorecard.perspectives.items():
        if value is not None:
            perspective_score.samples.append(Sample(perspective_score.name, {"perspective": perspective}, value))
    index = Metric("crmmetrics_scorecard_index", "Balanced scorecard index: mean of the perspective scores, 0-100", "gauge")
    if scorecard.index is not None:
        index.samples.append(Sample(index.name, {}, scorecard.index))
    attainment = Metric("crmmetrics_scorecard_target_attainment_ratio", "Share (0-1) of KPIs at or beyond their target", "gauge")
    if scorecard.attainment is not None:
        attainment.samples.append(Sample(attainment.name, {}, scorecard.attainment))
    yield from (cell, process_score, perspective_score, index, attainment)
    yield from _coverage(scorecard)
    yield from _kpi_counts(scorecard)


def _coverage(scorecard: Scorecard) -> Iterator[Metric]:
    """Coverage of each roll-up: the share (0-1) of its KPIs with a current value, which are the
    ones its score is computed over. A roll-up without KPIs has no coverage (no sample)."""
    levels = (
        ("crmmetrics_scorecard_coverage_ratio", "on the scorecard", {(): scorecard.coverage}),
        ("crmmetrics_scorecard_cell_coverage_ratio", "of one process in one perspective",
         {(("process", p), ("perspective", q)): c for (p, q), c in scorecard.cell_coverage.items()}),
        ("crmmetrics_scorecard_process_coverage_ratio", "of one CRM process",
         {(("process", p),): c for p, c in scorecard.process_coverage.items()}),
        ("crmmetrics_scorecard_perspective_coverage_ratio", "of one scorecard perspective",
         {(("perspective", q),): c for q, c in scorecard.perspective_coverage.items()}),
    )
    for name, what, coverages in levels:
        family = Metric(name, f"Share (0-1) of the KPIs {what} that have a current value (the ones scored)", "gauge")
        for labels, coverage in sorted(coverages.items()):
            if coverage.ratio is not None:
                family.samples.append(Sample(name, dict(labels), coverage.ratio))
        yield family


def _kpi_counts(scorecard: Scorecard) -> Iterator[Metric]:
    """KPIs by status (``no_data`` included), for the whole scorecard and per roll-up: summing a
    family over ``status`` gives the KPIs of the roll-up, so coverage is n (with data) of m."""
    levels = (
        ("crmmetrics_scorecard_kpis", "on the scorecard", ()),
        ("crmmetrics_scorecard_cell_kpis", "of one process in one perspective", ("process", "perspective")),
        ("crmmetrics_scorecard_process_kpis", "of one CRM process", ("process",)),
        ("crmmetrics_scorecard_perspective_kpis", "of one scorecard perspective", ("perspective",)),
    )
    for name, what, keys in levels:
        counts: dict[tuple[str, ...], dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATUS_LABELS, 0))
        for kpi in scorecard.kpis:
            counts[tuple(getattr(kpi, key) for key in keys)][kpi.status or KpiStatus.NO_DATA] += 1
        family = Metric(name, f"KPIs {what} by status (no_data: no current value)", "gauge")
        for group, by_status in sorted(counts.items()):
            for status, count in by_status.items():
                family.samples.append(Sample(name, {**dict(zip(keys, group)), "status": status}, count))
        yield family
