"""The balanced scorecard: KPIs (metrics with a standard) with status, score and roll-ups.

The rules live here; how values read for people in crmmetrics.readers.display, and the
scorecard's Prometheus families in crmmetrics.readers.scorecard_families.

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crmmetrics.core.periods import Period
from crmmetrics.core.standard import Standard, better_or_equal, format_key
from crmmetrics.core.vocabulary import Direction, KpiStatus, PeriodLabel, Perspective, Process
from crmmetrics.store.standards import standards_in_force
from crmmetrics.store.store import LatestObservation, MetricRecord, Store, dimensions_key
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
    stored_dimensions: str | None = field(default=None, compare=False, repr=False)  # canonical JSON, as stored

    @property
    def dimensions_key(self) -> str:
        """The dimensions as canonical JSON (crmmetrics.store.store.dimensions_key), without encoding them again."""
        return self.stored_dimensions if self.stored_dimensions is not None else dimensions_key(self.dimensions)

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


def _judged(standards: list[Standard], observed: list[tuple[str, dict[str, str]]]) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """Which observations ((dimensions key, dimensions) pairs) each standard of one metric
    judges (see module docs)."""
    has_total = any(not dims for _, dims in observed)
    judged: dict[str, list[tuple[str, dict[str, str]]]] = {s.key: [] for s in standards}
    for key, dims in observed:
        candidates = [
            s
            for s in standards
            if all(dims.get(k) == v for k, v in s.dimensions.items()) and (s.dimensions or not dims or not has_total)
        ]
        if candidates:
            best = min(candidates, key=lambda s: (-len(s.dimensions), s.key))
            judged[best.key].append((key, dims))
    return judged


_PROCESS_ORDER = {str(p): i for i, p in enumerate(Process)}
_PERSPECTIVE_ORDER = {str(q): i for i, q in enumerate(Perspective)}


def _metric_kpis(
    metric: str, record: MetricRecord, metric_standards: list[Standard], observed: Mapping[str, Mapping[str, LatestObservation]]
) -> list[Kpi]:
    """The KPIs of one metric: each standard applied to the observations it judges."""
    direction = Direction(record.direction)
    kpis: list[Kpi] = []
    judged = _judged(metric_standards, [(key, next(iter(p.values())).dimensions) for key, p in observed.items()])
    for standard in metric_standards:
        # nothing observed: one "no data" row
        rows = judged[standard.key] or [(dimensions_key(standard.dimensions), standard.dimensions)]
        periods = [observed.get(key, {}) for key, _ in rows]
        with_value = sum(1 for p in periods if p.get(PeriodLabel.CURRENT) and p[PeriodLabel.CURRENT].value is not None)
        share = 1.0 / (with_value or len(rows))
        for (canonical, dims), period in zip(rows, periods):
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
                    stored_dimensions=canonical,
                )
            )
    return kpis


def _same_inputs(old: tuple[Any, list[Standard], list[LatestObservation]], new: tuple[Any, list[Standard], list[LatestObservation]]) -> bool:
    """A metric's definition and standards equal, and its observations the very same (the store
    keeps a run's observations, so an unchanged run gives the same objects)."""
    return (
        old[0] == new[0]
        and old[1] == new[1]
        and len(old[2]) == len(new[2])
        and all(a is b for a, b in zip(old[2], new[2]))
    )


def evaluate(
    standards: Iterable[Standard],
    records: Mapping[str, MetricRecord],
    observations: Iterable[LatestObservation],
    memo: dict[str, Any] | None = None,
) -> Scorecard:
    """The scorecard for these standards, metric definitions and latest observations.

    ``memo``: a dict a reader keeps between evaluations (the exporter, after every change): a
    metric whose definition, standards and observations did not change keeps its KPIs."""
    observations = list(observations)
    values: dict[str, dict[str, dict[str, LatestObservation]]] = defaultdict(lambda: defaultdict(dict))
    of_metric: dict[str, list[LatestObservation]] = defaultdict(list)
    for observation in observations:
        values[observation.metric_key][observation.dimensions_key][observation.period_label] = observation
        of_metric[observation.metric_key].append(observation)
    by_metric: dict[str, list[Standard]] = defaultdict(list)
    for standard in standards:
        if standard.metric in records:  # a standard for a metric no plugin defines is not on the scorecard
            by_metric[standard.metric].append(standard)

    ordered: list[tuple[tuple[Any, ...], Kpi]] = []
    kept: dict[str, Any] = {}
    for metric, metric_standards in sorted(by_metric.items()):
        record = records[metric]
        inputs = ((record.name, record.process, record.perspective, record.unit, record.direction), metric_standards,
                  of_metric.get(metric, []))
        known = memo.get(metric) if memo is not None else None
        if known is not None and _same_inputs(known[0], inputs):
            metric_kpis = known[1]
        else:
            metric_kpis = [
                ((_PROCESS_ORDER[k.process], _PERSPECTIVE_ORDER[k.perspective], k.name, k.key), k)
                for k in _metric_kpis(metric, record, metric_standards, values.get(metric, {}))
            ]
        kept[metric] = (inputs, metric_kpis)
        ordered.extend(metric_kpis)
    if memo is not None:
        memo.clear()
        memo.update(kept)  # only the metrics asked for now: the memory stays bounded
    ordered.sort(key=lambda item: item[0])
    kpis = [kpi for _, kpi in ordered]

    # each roll-up's KPIs, grouped in one pass
    by_cell: dict[tuple[str, str], list[Kpi]] = {(str(p), str(q)): [] for p in Process for q in Perspective}
    by_process: dict[str, list[Kpi]] = {str(p): [] for p in Process}
    by_perspective: dict[str, list[Kpi]] = {str(q): [] for q in Perspective}
    for kpi in kpis:
        by_cell[(kpi.process, kpi.perspective)].append(kpi)
        by_process[kpi.process].append(kpi)
        by_perspective[kpi.perspective].append(kpi)

    def score(group: list[Kpi]) -> float | None:
        return weighted_mean((k.score, k.weight) for k in group)

    perspectives = {q: score(group) for q, group in by_perspective.items()}
    scored = [s for s in perspectives.values() if s is not None]
    judged = [k.attained for k in kpis if k.attained is not None]
    times = [k.computed_at for k in kpis if k.computed_at is not None]
    return Scorecard(
        kpis=kpis,
        cells={cell: score(group) for cell, group in by_cell.items()},
        processes={p: score(group) for p, group in by_process.items()},
        perspectives=perspectives,
        index=sum(scored) / len(scored) if scored else None,
        attainment=sum(judged) / len(judged) if judged else None,
        computed_at=max(times) if times else None,
        cell_coverage={cell: Coverage.of(group) for cell, group in by_cell.items()},
        process_coverage={p: Coverage.of(group) for p, group in by_process.items()},
        perspective_coverage={q: Coverage.of(group) for q, group in by_perspective.items()},
        coverage=Coverage.of(kpis),
        value_source=(records, observations),
    )


def build_scorecard(store: Store, at: datetime | None = None) -> Scorecard:
    """The scorecard from the store: standards in force now (or at ``at``), latest observations."""
    return evaluate(standards_in_force(store, at), store.metric_records(), store.latest_observations())
