"""The service's own health, kept in memory so that it can be told while the store is down.

``ServiceHealth`` records what the running service knows about itself: whether the store and
the source answered at the last attempt, the scheduled runs that could not be stored (by
reason), whether the exposition being served is the last good one rather than a fresh one, and
the outcome of the last configuration reload. ``self_metrics_registry`` exports it with the
process and Python runtime metrics of prometheus_client; the HTTP server renders that registry
live on every scrape and appends it to the store's pre-rendered exposition.

Families:

- ``crmmetrics_build_info{version}``: 1.
- ``crmmetrics_store_up``, ``crmmetrics_source_up``: 1 if the store / the source answered at
  the last attempt, 0 if not; absent until the first attempt.
- ``crmmetrics_store_last_error_timestamp_seconds``: when the store last failed to answer.
- ``crmmetrics_scheduled_runs_unstored_total{reason}`` (counter): scheduled runs whose result
  could not be written to the store (``store_unreachable``: the database did not answer;
  ``store_error``: it answered with an error).
- ``crmmetrics_exposition_stale``: 1 while /metrics serves the last good exposition because the
  store cannot be read, else 0.
- ``crmmetrics_config_last_reload_successful``, ``crmmetrics_config_last_reload_success_timestamp_seconds``:
  as Prometheus names them for its own reloads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import exc as sa_exc

UNSTORED_REASONS = ("store_unreachable", "store_error")


def package_version() -> str:
    try:
        return version("crmmetrics")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def store_failure_reason(error: BaseException) -> str:
    """``store_unreachable`` when the database did not answer, else ``store_error``."""
    if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, ConnectionError)):
        return "store_unreachable"
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return "store_unreachable"
    return "store_error"


def one_line(error: BaseException) -> str:
    """An exception as one short log line: its type and the first line of its message."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


class ServiceHealth:
    """What the running service knows about itself; thread-safe, never touches the store."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.version = package_version()
        self.store_up: bool | None = None
        self.store_error: str | None = None
        self.store_last_error_at: float | None = None
        self.source_up: bool | None = None
        self.unstored: dict[str, int] = dict.fromkeys(UNSTORED_REASONS, 0)
        self.stale = False
        self.reload_successful: bool | None = None
        self.reload_success_at: float = time.time()  # the start-up load counts as a success
        self.reload_error: str | None = None

    def store_answered(self) -> bool:
        """Record that the store answered; True if it had not answered at the last attempt."""
        with self._lock:
            recovered = self.store_up is False
            self.store_up, self.store_error = True, None
            return recovered

    def store_failed(self, error: BaseException) -> bool:
        """Record that the store did not answer; True if it had answered at the last attempt."""
        with self._lock:
            fresh = self.store_up is not False
            self.store_up, self.store_error = False, one_line(error)
            self.store_last_error_at = time.time()
            return fresh

    def source_answered(self, up: bool) -> None:
        with self._lock:
            self.source_up = up

    def run_unstored(self, reason: str) -> None:
        with self._lock:
            self.unstored[reason] = self.unstored.get(reason, 0) + 1

    def reloaded(self, error: str | None) -> None:
        with self._lock:
            self.reload_successful = error is None
            self.reload_error = error
            if error is None:
                self.reload_success_at = time.time()

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            build = GaugeMetricFamily("crmmetrics_build_info", "The running crmmetrics version (always 1)", labels=["version"])
            build.add_metric([self.version], 1)
            yield build
            for name, up, what in (
                ("crmmetrics_store_up", self.store_up, "store"),
                ("crmmetrics_source_up", self.source_up, "source database"),
            ):
                family = GaugeMetricFamily(name, f"1 if the {what} answered at the last attempt, 0 if it did not")
                if up is not None:  # no attempt yet: no data, not a 0
                    family.add_metric([], 1.0 if up else 0.0)
                yield family
            last_error = GaugeMetricFamily(
                "crmmetrics_store_last_error_timestamp_seconds", "Unix time at which the store last failed to answer"
            )
            if self.store_last_error_at is not None:
                last_error.add_metric([], self.store_last_error_at)
            yield last_error
            unstored = CounterMetricFamily(
                "crmmetrics_scheduled_runs_unstored",
                "Scheduled runs whose result could not be written to the store, since the service started",
                labels=["reason"],
            )
            for reason, count in sorted(self.unstored.items()):
                unstored.add_metric([reason], count)
            yield unstored
            yield GaugeMetricFamily(
                "crmmetrics_exposition_stale",
                "1 while /metrics serves the last good exposition because the store cannot be read",
                value=1.0 if self.stale else 0.0,
            )
            reload_ok = GaugeMetricFamily(
                "crmmetrics_config_last_reload_successful", "1 if the last configuration reload succeeded, 0 if it was refused"
            )
            reload_ok.add_metric([], 0.0 if self.reload_successful is False else 1.0)
            yield reload_ok
            yield GaugeMetricFamily(
                "crmmetrics_config_last_reload_success_timestamp_seconds",
                "Unix time of the last successful configuration load (start-up or reload)",
                value=self.reload_success_at,
            )


def self_metrics_registry(health: ServiceHealth) -> CollectorRegistry:
    """The live part of /metrics: process and runtime metrics and the service's health."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in (PROCESS_COLLECTOR, GC_COLLECTOR, PLATFORM_COLLECTOR, health):
        registry.register(collector)
    return registry
