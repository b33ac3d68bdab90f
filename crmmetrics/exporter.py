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
(``crmmetrics.scorecard.scorecard_families``), and ``/`` serves its page (``crmmetrics.page``).
"""

from __future__ import annotations

import calendar
import logging
import threading
from collections.abc import Iterator
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.samples import Sample

from .page import landing_page
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


class Exposition:
    """The rendered /metrics bytes, re-rendered only when the store's change marker moves."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StoreCollector(store))
        self._lock = threading.Lock()
        self._marker: Any = object()
        self._body = b""
        self.renders = 0

    def body(self) -> bytes:
        marker = self.store.change_marker()
        with self._lock:
            if marker != self._marker:
                self._body = generate_latest(self.registry)
                self._marker = marker
                self.renders += 1
            return self._body


def make_server(store: Store, host: str = "127.0.0.1", port: int = 9464) -> ThreadingHTTPServer:
    """An HTTP server for / and /metrics over ``store`` (call serve_forever() to run it)."""
    exposition = Exposition(store)

    class Handler(BaseHTTPRequestHandler):
        server_version = "crmmetrics"

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            path = self.path.split("?", 1)[0]
            try:
                if path == "/metrics":
                    self._send(HTTPStatus.OK, CONTENT_TYPE_LATEST, exposition.body())
                elif path == "/":
                    self._send(HTTPStatus.OK, "text/html; charset=utf-8", landing_page(store).encode())
                elif path == "/healthz":
                    self._send(HTTPStatus.OK, "text/plain; charset=utf-8", b"ok\n")
                else:
                    self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n")
            except Exception:
                log.exception("error serving %s", path)
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8", b"internal error\n")

        def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the http.server API
            log.debug("%s %s", self.address_string(), format % args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.exposition = exposition  # type: ignore[attr-defined]  # for tests and benchmarks
    return server
