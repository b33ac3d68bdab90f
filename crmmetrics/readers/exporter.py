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
(``crmmetrics.readers.scorecard_families``), and the outlook the forecasts, pacing, anomaly
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
from itertools import groupby
from operator import attrgetter
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE
from prometheus_client.samples import Sample

from crmmetrics.core.definitions import EXPORT_UNITS
from crmmetrics.core.vocabulary import RunStatus
from crmmetrics.store.standards import standards_in_force
from crmmetrics.store.store import LatestObservation, MetricRecord, Store
from . import exposition_format
from .families import COMPUTED, INFO, PERIOD_END, PERIOD_START, unit_suffix, value_family
from .scorecard import evaluate
from .scorecard_families import scorecard_families

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


def _metric_value_samples(
    metric: str, record: MetricRecord, observations: list[LatestObservation], names: dict[tuple[str, tuple[str, ...]], tuple[str, str]]
) -> tuple[list[tuple[str, str, Sample]], dict[tuple[str, str], tuple[datetime, datetime]], datetime | None]:
    """One metric's value samples (family name, help, sample), its period bounds and when it was
    computed; ``names``: family names and help by unit and dimension names, made once per render."""
    samples = []
    bounds: dict[tuple[str, str], tuple[datetime, datetime]] = {}
    computed_at = None
    to_base = EXPORT_UNITS[record.unit].to_base
    for observation in observations:
        if observation.value is None:
            continue
        dimensions = observation.dimensions
        named = names.get((record.unit, tuple(dimensions)))
        if named is None:
            named = names[(record.unit, tuple(dimensions))] = (
                value_family(record.unit, dimensions), _value_help(record.unit, dimensions)
            )
        labels = {
            "metric": metric,
            "process": record.process,
            "perspective": record.perspective,
            "period": observation.period_label,
            **dimensions,
        }
        samples.append((*named, Sample(named[0], labels, to_base(observation.value))))
        bounds[(metric, observation.period_label)] = (observation.period_start, observation.period_end)
        computed_at = observation.computed_at
    return samples, bounds, computed_at


def value_families(
    records: Mapping[str, MetricRecord], observations: Iterable[LatestObservation], memo: dict[str, Any] | None = None
) -> Iterator[Metric]:
    """The value families of these observations, with their period bounds and computation times.

    One place for how a stored value becomes samples: ``/metrics`` renders the latest
    observations, ``crmmetrics history export`` each stored period (crmmetrics.readers.history).
    ``memo``: a dict a reader keeps between renders: a metric whose definition is unchanged and
    whose observations are the same objects (the store keeps a run's) keeps its samples.
    """
    values: dict[str, Metric] = {}
    bounds: dict[tuple[str, str], tuple[datetime, datetime]] = {}
    computed_at: dict[str, datetime] = {}
    names: dict[tuple[str, tuple[str, ...]], tuple[str, str]] = {}
    kept: dict[str, Any] = {}
    for metric, run in groupby(observations, key=attrgetter("metric_key")):
        group = list(run)
        record = records.get(metric)
        if record is None:
            continue
        shown = (record.unit, record.process, record.perspective)
        known = memo.get(metric) if memo is not None and metric not in kept else None
        if (known is not None and known[0] == shown and len(known[1]) == len(group)
                and all(a is b for a, b in zip(known[1], group))):
            part = known[2]
        else:
            part = _metric_value_samples(metric, record, group, names)
        if metric not in kept:
            kept[metric] = (shown, group, part)
        samples, metric_bounds, computed = part
        for name, documentation, sample in samples:
            family = values.get(name)
            if family is None:
                family = values[name] = Metric(name, documentation, "gauge")
            family.samples.append(sample)
        bounds.update(metric_bounds)
        if computed is not None:
            computed_at[metric] = computed
    if memo is not None:
        memo.clear()
        memo.update(kept)
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
        self._values: dict[str, Any] = {}  # memos kept between renders (value_families, evaluate, scorecard_families)
        self._kpis: dict[str, Any] = {}
        self._kpi_samples: dict[int, Any] = {}

    def collect(self) -> Iterator[Metric]:
        records = self.store.metric_records()
        observations = self.store.latest_observations()
        yield from value_families(records, observations, self._values)
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
        # The scorecard judges the same snapshot: one read of the store per render. A metric
        # whose run, definition and standards did not change keeps its KPIs and their samples.
        scorecard = evaluate(standards_in_force(self.store), records, observations, self._kpis)
        yield from scorecard_families(scorecard, self._kpi_samples)
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


class Encoded:
    """One encoding of the store's families, rendered once per change.

    ``body`` is the rendered text without a final ``# EOF`` (so that live self-metrics can be
    appended). Its gzip is made on the first gzip scrape and kept: the text compressed up to a
    sync flush, and the compressor at that point; a response appends the live part by
    compressing it with a copy of the compressor, so a gzip scrape never re-compresses the big part.
    """

    def __init__(self, content_type: str, body: bytes) -> None:
        self.content_type = content_type
        self.body = body
        self._gzip: tuple[bytes, Any] | None = None
        self._lock = threading.Lock()

    def gzip(self, tail: bytes) -> bytes:
        with self._lock:
            if self._gzip is None:
                compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip member
                self._gzip = (compressor.compress(self.body) + compressor.flush(zlib.Z_SYNC_FLUSH), compressor)
            prefix, state = self._gzip
            compressor = state.copy()
        return prefix + compressor.compress(tail) + compressor.flush()


TEXT = exposition_format.TEXT
OPENMETRICS = exposition_format.OPENMETRICS
CONTENT_TYPES = {TEXT: CONTENT_TYPE_PLAIN_0_0_4, OPENMETRICS: OPENMETRICS_CONTENT_TYPE}


class Rendering:
    """The families of one read of the store, and each encoding of them rendered when first
    asked for (a scraper asks for one: Prometheus for OpenMetrics, curl for text), so that every
    encoding renders the same read."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families
        self._encoded: dict[str, Encoded] = {}
        self._lock = threading.Lock()

    def __getitem__(self, encoding: str) -> Encoded:
        encoded = self._encoded.get(encoding)
        if encoded is None:
            with self._lock:  # scrapes asking at once wait for one rendering
                encoded = self._encoded.get(encoding)
                if encoded is None:
                    body = exposition_format.render(self.families, encoding)
                    encoded = self._encoded[encoding] = Encoded(CONTENT_TYPES[encoding], body)
        return encoded


def encode(source: Any) -> Rendering:
    """The encodings of what ``source.collect()`` yields (OpenMetrics without its ``# EOF``)."""
    return Rendering(list(source.collect()))


class Exposition:
    """The rendered /metrics bytes, re-rendered only when the store's change marker moves.

    Every encoding (text, OpenMetrics, and the gzip of each) is rendered from one collection,
    when a scrape first asks for it, and then served as bytes. ``last`` keeps the last good
    rendering: the HTTP server serves it while the store cannot be read.

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
        self.last: Rendering | None = None
        self.error: BaseException | None = None  # why the last look at the store failed, if it did
        self.renders = 0

    def encodings(self, encoding: str = TEXT) -> Rendering:
        """The current renderings, ``encoding`` among them already rendered (raises what the
        store raises if it cannot be read)."""
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
                    rendering = encode(self.registry)
                    rendering[encoding]  # before the others are served it
                    self.last = rendering
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
