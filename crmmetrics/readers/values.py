"""Every latest value of every metric, judged or not, with the period it covers.

The scorecard shows the metrics that have a standard; this is the plain list under it (average
order value, CLV, customer equity... have no standard but are values people read). One row per
metric and combination of dimensions: the current value, the previous one, both periods, and
the reason a value is missing when the runner stated one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crmmetrics.core.periods import Period
from crmmetrics.core.vocabulary import PeriodLabel
from crmmetrics.store.store import LatestObservation, MetricRecord, dimensions_key


@dataclass(frozen=True)
class MetricValue:
    """The latest current (and previous) value of one metric for one combination of dimensions."""

    metric: str
    name: str
    unit: str
    process: str
    perspective: str
    dimensions: Mapping[str, str]
    value: float | None
    current: Period | None
    previous_value: float | None
    previous: Period | None
    computed_at: datetime | None
    missing_reason: str | None = None
    status: str | None = None  # the KPI status when a standard judges this value
    standard: str | None = None  # the key of that standard
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "name": self.name,
            "unit": self.unit,
            "process": self.process,
            "perspective": self.perspective,
            "dimensions": dict(self.dimensions),
            "value": self.value,
            "period": self.current.to_json() if self.current else None,
            "previous_value": self.previous_value,
            "previous_period": self.previous.to_json() if self.previous else None,
            "missing_reason": self.missing_reason,
            "status": self.status if self.status else ("no data" if self.value is None else None),
            "standard": self.standard,
            "judged": self.standard is not None,
            "computed_at": self.computed_at.isoformat() + "Z" if self.computed_at else None,
        }


def metric_values(records: Mapping[str, MetricRecord], observations: Iterable[LatestObservation]) -> list[MetricValue]:
    """One MetricValue per metric and dimensions, totals first, in metric key order."""
    grouped: dict[tuple[str, str], dict[str, LatestObservation]] = defaultdict(dict)
    for observation in observations:
        grouped[(observation.metric_key, dimensions_key(observation.dimensions))][observation.period_label] = observation
    rows = []
    for (metric, dims), periods in sorted(grouped.items(), key=lambda item: (item[0][0], item[0][1] != "{}", item[0][1])):
        record = records.get(metric)
        current, previous = periods.get(PeriodLabel.CURRENT), periods.get(PeriodLabel.PREVIOUS)
        any_one = current or previous
        rows.append(
            MetricValue(
                metric=metric,
                name=record.name if record else metric,
                unit=record.unit if record else "",
                process=record.process if record else "",
                perspective=record.perspective if record else "",
                dimensions=any_one.dimensions,
                value=current.value if current else None,
                current=Period(PeriodLabel.CURRENT, current.period_start, current.period_end) if current else None,
                previous_value=previous.value if previous else None,
                previous=Period(PeriodLabel.PREVIOUS, previous.period_start, previous.period_end) if previous else None,
                computed_at=any_one.computed_at,
                missing_reason=current.reason if current else None,
            )
        )
    return rows
