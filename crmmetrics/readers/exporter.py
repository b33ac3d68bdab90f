"""The exporter: the latest values in the store, as Prometheus metrics over HTTP.

A custom Collector reads the store (never the source: no KPI query runs during a scrape), so a
restart loses nothing and a metric that stops being produced disappears instead of lingering.
KPI values change only when a run completes, so the exposition is rendered once per change and
served as bytes: each scrape asks the store for a cheap change marker (the newest run id, which
also sees runs written by another process) and re-renders only when it moved.

Families (all gauges unless said otherwise; the model and its names: crmmetrics.readers.families and
docs/operations.md):

- ``crmmetrics_metric[_by_<dimensions>]_<unit>{metric, process, perspective, period[, <dimensions>]}``:
  the value of a metric for the ``current`` and ``previous`` reporting period, in the base unit
  of the metric's unit (``crmmetrics.core.definitions.EXPORT_UNITS``: percentages as 0-1 ratios,
  hours and months as seconds); a metric's total and each of its breakdowns are separate
  families. Missing values are not exported.
- ``crmmetrics_metric_period_start_timestamp_seconds{metric, period}`` and
  ``crmmetrics_metric_period_end_timestamp_seconds{metric, period}``: the half-open period
  ``[start, end)`` the exported values are for.
- ``crmmetrics_metric_computed_timestamp_seconds{metric}``: when the exported value was computed
  (a gauge of its own: explicit sample timestamps that old would vanish from instant queries).
- ``crmmetrics_metric_info{metric, name, unit, base_unit, process, perspective, value_lens, direction, plugin}``: 1.
- ``crmmetrics_run_duration_seconds{metric, plugin}``: duration of the last run.
- ``crmmetrics_run_last_success_timestamp_seconds{metric, plugin}``: end of the last successful run.
- ``crmmetrics_run_up{metric, plugin}``: 1 if the last run succeeded, else 0.
- ``crmmetrics_run_failures_total{metric, plugin}`` (counter): failed runs kept in the store.
- ``crmmetrics_runs_total{metric, plugin}`` (counter): runs kept in the store.

The scorecard adds the standards' targets, thresholds, statuses and scores
(``crmmetrics.readers.scorecard.scorecard_families``), and the outlook the forecasts, pacing, anomaly
scores and value-chain links (``crmmetrics.readers.outlook.outlook_families``), computed from the
stored history; the change marker therefore includes the backfilled runs
(``Store.history_marker``). The HTTP server (``crmmetrics.serve.server``) serves
these bytes at ``/metrics`` with the service's own live metrics (``crmmetrics.compute.health``) appended.
"""

from __future__ import annotations

import calendar
import json
import logging
import math
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.samples import Sample

from crmmetrics.core.definitions import EXPORT_UNITS
from crmmetrics.core.vocabulary import RunStatus
from crmmetrics.store.standards import standards_in_force
from crmmetrics.store.store import LatestObservation, MetricRecord, Store
from .families import COMPUTED, INFO, PERIOD_END, PERIOD_START, unit_suffix, value_family
from .scorecard import evaluate, scorecard_families

log = logging.getLogger("crmmetrics.exporter")

def _value_help(unit: str, dimensions: Iterable[str]) -> str:
    """The HELP of a value family: it depends on the family only (several units share one)."""
    by = f"by {', '.join(sorted(dimensions))}" if dimensions else "totals"
    return (
        f"Values of CRM metrics in {unit_suffix(unit)}, {by}, for the current and previous reporting period "
        "(base unit; crmmetrics_metric_info has each metric's unit)"
    )


def timestamp(moment: datetime) -> float:
    """Seconds since the epoch of a naive-UTC datetime."""
    return calendar.timegm(moment.timetuple()) + moment.microsecond / 1e6


def value_families(records: Mapping[str, MetricRecord], observations: Iterable[LatestObservation]) -> Iterator[Metric]:
    """The value families of these observations, with their period bounds and computation times.

    One place for how a stored value becomes samples: ``/metrics`` renders the latest
    observations, ``crmmetrics history export`` each stored period (crmmetrics.readers.history).
    """
    values: dict[str, Metric] = {}
    bounds: dict[tuple[str, str], tuple[datetime, datetime]] = {}
    computed_at: dict[str, datetime] = {}
    for observation in observations:
        record = records.get(observation.metric_key)
        if observation.value is None or record is None:
            continue
        name = value_family(record.unit, observation.dimensions)
        if name not in values:
            values[name] = Metric(name, _value_help(record.unit, observation.dimensions), "gauge")
        labels = {
            "metric": observation.metric_key,
            "process": record.process,
            "perspective": record.perspective,
            "period": observation.period_label,
            **observation.dimensions,
        }
        values[name].samples.append(Sample(name, labels, EXPORT_UNITS[record.unit].to_base(observation.value)))
        bounds[(observation.metric_key, observation.period_label)] = (observation.period_start, observation.period_end)
        computed_at[observation.metric_key] = observation.computed_at
    for name in sorted(values):
        yield values[name]
    start = GaugeMetricFamily(PERIOD_START, "Unix time at which the period of a metric's exported values starts", labels=["metric", "period"])
    end = GaugeMetricFamily(PERIOD_END, "Unix time at which the period of a metric's exported values ends (exclusive)", labels=["metric", "period"])
    for (key, period), (first, last) in sorted(bounds.items()):
        start.add_metric([key, period], timestamp(first))
        end.add_metric([key, period], timestamp(last))
    computed = GaugeMetricFamily(COMPUTED, "Unix time at which the exported value of a metric was computed", labels=["metric"])
    for key, moment in sorted(computed_at.items()):
        computed.add_metric([key], timestamp(moment))
    yield from (start, end, computed)


def info_families(records: Iterable[MetricRecord]) -> Iterator[Metric]:
    """``crmmetrics_metric_info``: one sample (1) per metric definition."""
    info = GaugeMetricFamily(
        INFO,
        "Definition of a CRM metric (always 1)",
        labels=["metric", "name", "unit", "base_unit", "process", "perspective", "value_lens", "direction", "plugin"],
    )
    for record in records:
        info.add_metric(
            [record.key, record.name, record.unit, unit_suffix(record.unit), record.process, record.perspective,
             record.value_lens, record.direction, record.plugin],
            1,
        )
    yield info


class StoreCollector:
    """Yields fresh metric families from the store on every collect().

    ``outlook``: the cache of forecasts, anomalies and the value chain (crmmetrics.readers.outlook),
    shared with the page so that both compute each answer once per change of its inputs."""

    def __init__(self, store: Store, outlook: Any = None) -> None:
        from .outlook import OutlookCache

        self.store = store
        self.outlook = outlook if outlook is not None else OutlookCache()

    def collect(self) -> Iterator[Metric]:
        records = self.store.metric_records()
        observations = self.store.latest_observations()
        yield from value_families(records, observations)
        yield from info_families(records.values())

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
            up.add_metric(label_values, 1.0 if health.last_status == RunStatus.SUCCESS else 0.0)
            failures.add_metric(label_values, health.failures)
            runs.add_metric(label_values, health.runs)
        yield from (duration, success, up, failures, runs)
        yield from model_fit_families(self.store.latest_model_fits())
        # The scorecard judges the same snapshot: one read of the store per render.
        scorecard = evaluate(standards_in_force(self.store), records, observations)
        yield from scorecard_families(scorecard)
        from sqlalchemy.exc import SQLAlchemyError

        from .outlook import outlook_families

        try:
            outlook = self.outlook.build(self.store, scorecard)
        except SQLAlchemyError:
            raise  # the store cannot be read: the server serves the last rendering
        except Exception:  # noqa: BLE001 - a fault in the outlook must not take /metrics down
            log.exception("the outlook (forecasts, anomalies, value chain) could not be computed; exported without it")
            return
        yield from outlook_families(outlook, scorecard)


def model_fit_families(fits: Iterable[Any]) -> Iterator[Metric]:
    """The model fits of each metric's latest run (BG/NBD, Gamma-Gamma...): whether a CLV KPI
    rests on a sound fit can be watched and alerted on like any value."""
    labels = ["metric", "period", "model"]
    parameter = GaugeMetricFamily(
        "crmmetrics_model_fit_parameter", "A fitted parameter of a model a metric rests on", labels=[*labels, "parameter"]
    )
    log_likelihood = GaugeMetricFamily("crmmetrics_model_fit_log_likelihood", "Maximised log-likelihood of a model fit", labels=labels)
    customers = GaugeMetricFamily("crmmetrics_model_fit_customers", "Customers a model was fitted on", labels=labels)
    converged = GaugeMetricFamily("crmmetrics_model_fit_converged", "1 if the model fit converged, 0 if not (its KPIs failed)", labels=labels)
    for fit in fits:
        label_values = [fit.metric_key, fit.period_label, fit.model]
        for name, value in sorted(json.loads(fit.parameters).items()):
            if isinstance(value, (int, float)) and math.isfinite(value):
                parameter.add_metric([*label_values, name], float(value))
        if fit.log_likelihood is not None and math.isfinite(fit.log_likelihood):
            log_likelihood.add_metric(label_values, fit.log_likelihood)
        customers.add_metric(label_values, fit.customers)
        converged.add_metric(label_values, 1.0 if fit.converged else 0.0)
    yield from (parameter, log_likelihood, customers, converged)


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

    def __init__(self, store: Store, recheck_after: float = 0.0, outlook: Any = None) -> None:
        self.store = store
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = StoreCollector(store, outlook)
        self.registry.register(self.collector)
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
                # history too: the forecasts and anomaly scores read the backfilled periods
                marker = self.store.history_marker()
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
