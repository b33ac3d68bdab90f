"""The exporter: the latest values in the store, as Prometheus metrics over HTTP.

A custom Collector reads the store (never the source: no KPI query runs during a scrape), so a
restart loses nothing and a metric that stops being produced disappears instead of lingering.
KPI values change only when a run completes, so the exposition is rendered once per change and
served as bytes: each scrape asks the store for a cheap change marker (the newest run id, which
also sees runs written by another process) and re-renders only when it moved.

Families (all gauges unless said otherwise):

- ``crmmetrics_metric_value{metric, process, perspective, period, <dimensions>}``: the value of a
  metric for the ``current`` and ``previous`` reporting period; missing values are not exported.
- ``crmmetrics_metric_computed_timestamp_seconds{metric}``: when the exported value was computed
  (a gauge of its own: explicit sample timestamps that old would vanish from instant queries).
- ``crmmetrics_metric_info{metric, name, unit, process, perspective, value_lens, direction, plugin}``: 1.
- ``crmmetrics_run_duration_seconds{metric, plugin}``: duration of the last run.
- ``crmmetrics_run_last_success_timestamp_seconds{metric, plugin}``: end of the last successful run.
- ``crmmetrics_run_up{metric, plugin}``: 1 if the last run succeeded, else 0.
- ``crmmetrics_run_failures_total{metric, plugin}`` (counter): failed runs kept in the store.
- ``crmmetrics_runs_total{metric, plugin}`` (counter): runs kept in the store.

The scorecard adds the standards' targets, thresholds, statuses and scores
(``crmmetrics.scorecard.scorecard_families``). The HTTP server (``crmmetrics.server``) serves
these bytes at ``/metrics`` with the service's own live metrics (``crmmetrics.health``) appended.
"""

from __future__ import annotations

import calendar
import logging
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.samples import Sample

from .scorecard import evaluate, scorecard_families
from .standards import standards_in_force
from .store import Store

log = logging.getLogger("crmmetrics.exporter")

def timestamp(moment: datetime) -> float:
    """Seconds since the epoch of a naive-UTC datetime."""
    return calendar.timegm(moment.timetuple()) + moment.microsecond / 1e6


class StoreCollector:
    """Yields fresh metric families from the store on every collect()."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        records = self.store.metric_records()
        values = Metric("crmmetrics_metric_value", "Value of a CRM metric for its current and previous reporting period", "gauge")
        computed = GaugeMetricFamily(
            "crmmetrics_metric_computed_timestamp_seconds",
            "Unix time at which the exported value of a metric was computed",
            labels=["metric"],
        )
        computed_at: dict[str, datetime] = {}
        observations = self.store.latest_observations()
        for observation in observations:
            record = records.get(observation.metric_key)
            if observation.value is None or record is None:
                continue
            labels = {
                "metric": observation.metric_key,
                "process": record.process,
                "perspective": record.perspective,
                "period": observation.period_label,
                **observation.dimensions,
            }
            values.samples.append(Sample("crmmetrics_metric_value", labels, observation.value))
            computed_at[observation.metric_key] = observation.computed_at
        for key, moment in sorted(computed_at.items()):
            computed.add_metric([key], timestamp(moment))
        yield values
        yield computed

        info = GaugeMetricFamily(
            "crmmetrics_metric_info",
            "Definition of a CRM metric (always 1)",
            labels=["metric", "name", "unit", "process", "perspective", "value_lens", "direction", "plugin"],
        )
        for record in records.values():
            info.add_metric(
                [record.key, record.name, record.unit, record.process, record.perspective, record.value_lens, record.direction, record.plugin],
                1,
            )
        yield info

        labels = ["metric", "plugin"]
        duration = GaugeMetricFamily("crmmetrics_run_duration_seconds", "Duration of the last run of a metric", labels=labels)
        success = GaugeMetricFamily(
            "crmmetrics_run_last_success_timestamp_seconds", "Unix time of the last successful run of a metric", labels=labels
        )
        up = GaugeMetricFamily("crmmetrics_run_up", "1 if the last run of a metric succeeded, 0 if it failed", labels=labels)
        failures = CounterMetricFamily("crmmetrics_run_failures", "Failed runs of a metric", labels=labels)
        runs = CounterMetricFamily("crmmetrics_runs", "Runs of a metric", labels=labels)
        for health in self.store.health():
            label_values = [health.metric_key, health.plugin]
            duration.add_metric(label_values, health.last_duration_seconds)
            if health.last_success_at is not None:
                success.add_metric(label_values, timestamp(health.last_success_at))
            up.add_metric(label_values, 1.0 if health.last_status == "success" else 0.0)
            failures.add_metric(label_values, health.failures)
            runs.add_metric(label_values, health.runs)
        yield from (duration, success, up, failures, runs)
        # The scorecard judges the same snapshot: one read of the store per render.
        yield from scorecard_families(evaluate(standards_in_force(self.store), records, observations))


class _Snapshot:
    """Metric families collected once, so that every encoding renders the same read of the store."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


@dataclass(frozen=True)
class Encoded:
    """One encoding of the store's families, rendered once per change.

    ``body`` is the rendered text without a final ``# EOF`` (so that live self-metrics can be
    appended). ``gzip_prefix`` is that text gzip-compressed up to a sync flush, and
    ``gzip_state`` the compressor at that point: a response appends the live part by compressing
    it with a copy of the compressor, so a gzip scrape never re-compresses the big part.
    """

    content_type: str
    body: bytes
    gzip_prefix: bytes
    gzip_state: Any

    @classmethod
    def of(cls, content_type: str, body: bytes) -> Encoded:
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip member
        prefix = compressor.compress(body) + compressor.flush(zlib.Z_SYNC_FLUSH)
        return cls(content_type, body, prefix, compressor)

    def gzip(self, tail: bytes) -> bytes:
        compressor = self.gzip_state.copy()
        return self.gzip_prefix + compressor.compress(tail) + compressor.flush()


TEXT = "text"
OPENMETRICS = "openmetrics"
CONTENT_TYPES = {TEXT: CONTENT_TYPE_PLAIN_0_0_4, OPENMETRICS: OPENMETRICS_CONTENT_TYPE}
_EOF = b"# EOF\n"


def encode(source: Any) -> dict[str, Encoded]:
    """The text and OpenMetrics encodings of what ``source.collect()`` yields (no ``# EOF``)."""
    openmetrics = openmetrics_latest(source)
    return {
        TEXT: Encoded.of(CONTENT_TYPES[TEXT], generate_latest(source)),
        OPENMETRICS: Encoded.of(CONTENT_TYPES[OPENMETRICS], openmetrics.removesuffix(_EOF)),
    }


class Exposition:
    """The rendered /metrics bytes, re-rendered only when the store's change marker moves.

    Every encoding (text, OpenMetrics, and the gzip of each) is rendered from one collection, so
    a scrape in any encoding serves bytes. ``last`` keeps the last good rendering: the HTTP
    server serves it while the store cannot be read.

    Under many concurrent scrapers (``crmmetrics serve``): ``recheck_after`` seconds pass between
    two looks at the change marker, so a hundred scrapers make one store query, not a hundred;
    and while one scrape re-renders, the others are served the previous rendering instead of
    queueing behind it (it is at most one render old).
    """

    def __init__(self, store: Store, recheck_after: float = 0.0) -> None:
        self.store = store
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StoreCollector(store))
        self.recheck_after = recheck_after
        self._lock = threading.Lock()
        self._marker: Any = object()
        self._checked_at = float("-inf")
        self.last: dict[str, Encoded] | None = None
        self.error: BaseException | None = None  # why the last look at the store failed, if it did
        self.renders = 0

    def encodings(self) -> dict[str, Encoded]:
        """The current renderings (raises what the store raises if it cannot be read)."""
        last = self.last
        if last is not None and time.monotonic() - self._checked_at < self.recheck_after:
            return last
        if not self._lock.acquire(blocking=last is None):
            return last  # another scrape is looking or rendering
        try:
            self._checked_at = time.monotonic()
            try:
                marker = self.store.change_marker()
                if marker != self._marker or self.last is None:
                    self.last = encode(_Snapshot(list(self.registry.collect())))
                    self._marker = marker
                    self.renders += 1
            except Exception as exc:
                self.error = exc
                raise
            self.error = None
            return self.last
        finally:
            self._lock.release()

    def body(self) -> bytes:
        """The text exposition of the store."""
        return self.encodings()[TEXT].body
