"""The stored history of metrics: one snapshot per metric and reporting period.

A snapshot is what ``/metrics`` would have served for one metric just after one of its
periods ended: the observations (current and previous period) of the newest successful run
whose current period it is, backfilled or live (of the live runs of a to-date or trailing
period, whose periods end at each run's time, only the latest). ``crmmetrics history export`` writes them in
the exporter's own families (crmmetrics.readers.exporter.value_families and the scorecard's per-KPI
families, judged by the standards in force at the period's end), each sample stamped with the
period's end. The scorecard roll-ups (``crmmetrics_scorecard_*``) combine metrics whose
periods differ, so they are not part of the history.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from datetime import datetime
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.samples import Sample
from sqlalchemy import func, select, union_all

from crmmetrics.core.vocabulary import PeriodLabel
from crmmetrics.store.standards import resolve, _all_changes
from crmmetrics.store.store import (
    HistoryPeriod, LatestObservation, MetricRunTotals, MissingValue, Observation, Store, dimensions_key,
)
from .exporter import info_families, timestamp, value_families
from .scorecard import evaluate
from .scorecard_families import scorecard_families


@dataclass(frozen=True)
class Snapshot:
    metric_key: str
    run_id: int
    period_start: datetime  # the current period
    period_end: datetime
    observations: list[LatestObservation]

    def current(self, **dimensions: str) -> float | None:
        return self.current_values.get(dimensions_key(dimensions))

    @cached_property
    def current_values(self) -> dict[str, float | None]:
        """Dimensions key (crmmetrics.store.store.dimensions_key) -> the current period's value."""
        values: dict[str, float | None] = {}
        for observation in self.observations:
            if observation.period_label == PeriodLabel.CURRENT:
                values.setdefault(observation.dimensions_key, observation.value)
        return values


def history_snapshots(
    store: Store, start: datetime | None = None, end: datetime | None = None, keys: Iterable[str] | None = None
) -> list[Snapshot]:
    """Per metric and current period (ending within ``[start, end]``), the newest successful run's values; oldest first.

    The runs are chosen from one row per metric and period, not one per run: the newest run that
    stays in the history (``history_periods``: a live run of a calendar period or a backfilled
    run) and each metric's latest successful live run (a to-date or trailing period counts only
    then), the newer of the two where both have the period."""
    obs = Observation.__table__.c
    kept, totals = HistoryPeriod.__table__.c, MetricRunTotals.__table__.c
    stays = select(kept.metric_key, kept.period_start, kept.period_end, kept.run_id)
    latest = (
        select(obs.metric_key, obs.period_start, obs.period_end, obs.run_id)
        .join(MetricRunTotals.__table__, totals.last_success_run_id == obs.run_id)
        .where(obs.period_label == PeriodLabel.CURRENT)
    )
    if keys is not None:
        keys = list(keys)
        stays, latest = stays.where(kept.metric_key.in_(keys)), latest.where(totals.metric_key.in_(keys))
    if start is not None:
        stays, latest = stays.where(kept.period_end >= start), latest.where(obs.period_end >= start)
    if end is not None:
        stays, latest = stays.where(kept.period_end <= end), latest.where(obs.period_end <= end)
    both = union_all(stays, latest).subquery()
    newest = (
        select(both.c.metric_key, both.c.period_start, both.c.period_end, func.max(both.c.run_id).label("run_id"))
        .group_by(both.c.metric_key, both.c.period_start, both.c.period_end)
        .subquery()
    )
    missing = MissingValue.__table__.c
    statement = (
        select(
            newest.c.run_id, obs.metric_key, obs.dimensions, obs.period_label, obs.period_start, obs.period_end,
            obs.value, obs.computed_at, missing.reason,
        )
        .join(newest, obs.run_id == newest.c.run_id)
        .outerjoin(
            MissingValue.__table__,
            (missing.run_id == obs.run_id) & (missing.period_label == obs.period_label) & obs.value.is_(None),
        )
        # newest's run id, not the observations' (the same value): so the planner starts from
        # the few chosen runs, not from every observation in run order
        .order_by(newest.c.run_id, obs.period_label, obs.dimensions)
    )
    with store.engine.connect() as connection:
        rows = connection.execute(statement).all()
    by_run: dict[int, list[LatestObservation]] = defaultdict(list)
    decoded: dict[str, dict[str, str]] = {}  # each distinct dimensions text decoded once
    for run_id, key, dimensions, label, first, last, value, computed_at, reason in rows:
        if dimensions not in decoded:
            decoded[dimensions] = json.loads(dimensions)
        by_run[run_id].append(LatestObservation(key, decoded[dimensions], label, first, last, value, computed_at, reason, dimensions))
    snapshots = []
    for run_id, observations in by_run.items():
        current = next((o for o in observations if o.period_label == PeriodLabel.CURRENT), observations[0])
        snapshots.append(Snapshot(current.metric_key, run_id, current.period_start, current.period_end, observations))
    snapshots.sort(key=lambda s: (s.period_end, s.metric_key))
    return snapshots


class HistoryCache:
    """Each metric's snapshots (:func:`history_snapshots`), read again only when a run of that
    metric finished (:meth:`Store.metric_history_markers`): after a run of one metric, a reader
    of the whole history (the outlook, the page's sparklines) reads that metric's history only,
    however long the others' are."""

    def __init__(self) -> None:
        self._by_metric: dict[str, tuple[Any, list[Snapshot]]] = {}
        self._lock = threading.Lock()

    def snapshots(self, store: Store, keys: Iterable[str]) -> list[Snapshot]:
        keys = set(keys)
        markers = store.metric_history_markers()  # before the read: a run finishing meanwhile is read next time
        with self._lock:
            known = dict(self._by_metric)
        stale = sorted(k for k in keys if k not in known or known[k][0] != markers.get(k))
        if stale:
            read: dict[str, list[Snapshot]] = {k: [] for k in stale}
            for snapshot in history_snapshots(store, keys=stale):
                read[snapshot.metric_key].append(snapshot)
            with self._lock:
                for key in stale:
                    known[key] = self._by_metric[key] = (markers.get(key), read[key])
        found = [snapshot for key in keys for snapshot in known[key][1]]
        found.sort(key=lambda s: (s.period_end, s.metric_key))
        return found


def history_families(store: Store, snapshots: Iterable[Snapshot]) -> list[Metric]:
    """The families of every snapshot, each sample stamped with its period's end, in series order."""
    records = store.metric_records()
    changes = _all_changes(store)
    merged: dict[str, Metric] = {}
    seen: set[tuple[str, tuple, float]] = set()
    for snapshot in snapshots:
        at = snapshot.period_end
        moment = timestamp(at)
        standards = [s for s in resolve(changes, at) if s.metric == snapshot.metric_key]
        families = [
            *value_families(records, snapshot.observations),
            *(info_families([records[snapshot.metric_key]]) if snapshot.metric_key in records else ()),
            *(f for f in scorecard_families(evaluate(standards, records, snapshot.observations)) if not f.name.startswith("crmmetrics_scorecard_")),
        ]
        for family in families:
            target = merged.setdefault(family.name, Metric(family.name, family.documentation, family.type, family.unit))
            for sample in family.samples:
                identity = (sample.name, tuple(sorted(sample.labels.items())), moment)
                if identity in seen:  # the same series at the same moment from two runs: keep the first
                    continue
                seen.add(identity)
                target.samples.append(Sample(sample.name, sample.labels, sample.value, moment))
    for family in merged.values():
        # OpenMetrics wants each series' samples together and in time order.
        family.samples.sort(key=lambda s: (s.name, sorted(s.labels.items()), s.timestamp))
    return [merged[name] for name in sorted(merged)]


class _Families:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def export_openmetrics(store: Store, snapshots: Iterable[Snapshot]) -> str:
    """OpenMetrics text with timestamps, as ``promtool tsdb create-blocks-from openmetrics`` reads it."""
    families = [f for f in history_families(store, snapshots) if f.samples]
    return openmetrics_latest(_Families(families)).decode()


def _rows(snapshots: Iterable[Snapshot]) -> Iterator[dict]:
    for snapshot in snapshots:
        for o in snapshot.observations:
            if o.period_label != PeriodLabel.CURRENT:
                continue
            yield {
                "metric": o.metric_key,
                "dimensions": o.dimensions,
                "period_start": o.period_start.isoformat() + "Z",
                "period_end": o.period_end.isoformat() + "Z",
                "value": o.value,
                "missing_reason": o.reason,
                "computed_at": o.computed_at.isoformat() + "Z",
                "run_id": snapshot.run_id,
            }


def export_json(store: Store, snapshots: Iterable[Snapshot]) -> str:
    """One object per value of a current period, in the metric's own unit (null: no data, with the reason)."""
    units = {key: record.unit for key, record in store.metric_records().items()}
    return json.dumps([{**row, "unit": units.get(row["metric"], "")} for row in _rows(snapshots)], indent=2) + "\n"


def export_csv(store: Store, snapshots: Iterable[Snapshot]) -> str:
    """One row per value of a current period; dimensions as ``name=value`` pairs joined by ``;``; empty value: no data."""
    units = {key: record.unit for key, record in store.metric_records().items()}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["metric", "dimensions", "period_start", "period_end", "value", "unit", "missing_reason", "computed_at", "run_id"])
    for row in _rows(snapshots):
        writer.writerow([
            row["metric"], ";".join(f"{k}={v}" for k, v in sorted(row["dimensions"].items())), row["period_start"],
            row["period_end"], "" if row["value"] is None else repr(row["value"]), units.get(row["metric"], ""),
            row["missing_reason"] or "", row["computed_at"], row["run_id"],
        ])
    return out.getvalue()
