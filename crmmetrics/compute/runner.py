"""The runner: the one place that calls a metric's compute function.

For each run it computes the current and the previous reporting period in a worker thread,
enforces the metric's timeout, validates what came back (finite numbers or explicit ``None``,
exactly the declared dimensions), and writes the run with its observations in one transaction.
A plugin that raises, hangs or returns garbage fails its own run, stored with the reason;
nothing else is affected.

A timed-out computation cannot be killed inside a thread: it is abandoned (daemon thread) and
the run is recorded as failed. On PostgreSQL the server also cancels the query itself through
``statement_timeout``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pluggy
from sqlalchemy.engine import Engine

from crmmetrics import __version__
from crmmetrics.core import schema
from crmmetrics.core.config import Config, redact_text
from crmmetrics.core.definitions import ComputeContext, MetricDefinition, Result, RunCache
from crmmetrics.core.errors import MetricError
from crmmetrics.core.inputs import missing_reason, source_fingerprint
from crmmetrics.core.periods import reporting_periods, to_naive_utc, utcnow
from crmmetrics.core.vocabulary import PeriodLabel, RunStatus
from crmmetrics.store.store import Observation, Run, Store, dimensions_key
from .registry import Registry

log = logging.getLogger("crmmetrics.runner")

_PROCESS_TOKEN = uuid.uuid4().hex[:12]


def process_owner() -> str:
    """Who runs a run: host, pid and a token unique to this process (a container's restarted
    process has the same host name and often pid 1 again)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_PROCESS_TOKEN}"


def _owner_is_dead(owner: str) -> bool:
    """Whether the process that started a run is certainly gone (only knowable on this host)."""
    host, _, rest = owner.partition(":")
    pid_text, _, token = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return token != _PROCESS_TOKEN
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


@dataclass
class _Outcome:
    results: list[tuple[Any, list[Result]]] | None = None
    customer_values: list[dict[str, Any]] | None = None
    missing: dict[str, str] | None = None  # period label -> reason its value is missing
    model_fits: list[dict[str, Any]] | None = None  # kept even when the run fails
    fingerprints: dict[str, str] | None = None  # period label -> of the inputs of that closed period
    error: BaseException | None = None


def normalise(definition: MetricDefinition, returned: Any) -> list[Result]:
    """Turn what a compute function returned into validated Results, or raise MetricError."""
    if returned is None or isinstance(returned, (int, float)) and not isinstance(returned, bool):
        results = [Result(returned)]
    elif isinstance(returned, Result):
        results = [returned]
    elif isinstance(returned, Iterable) and not isinstance(returned, (str, bytes, Mapping)):
        results = list(returned)
    else:
        raise MetricError(f"returned {type(returned).__name__} {returned!r}, not a number, None or Results")
    declared = set(definition.dimensions)
    seen: set[str] = set()
    for result in results:
        if not isinstance(result, Result):
            raise MetricError(f"returned {type(result).__name__} {result!r} among its results, not a Result")
        value = result.value
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
                raise MetricError(f"returned a non-number value {value!r}")
            if not math.isfinite(float(value)):
                raise MetricError(f"returned a non-finite value {value!r}; return None for a missing value")
        keys = set(result.dimensions)
        if keys and keys != declared:  # an undimensioned total beside the breakdown is allowed
            raise MetricError(
                f"returned dimensions {sorted(keys)} but declares {sorted(declared) or 'none'}"
            )
        identity = dimensions_key(result.dimensions)
        if identity in seen:
            raise MetricError(f"returned two values for dimensions {identity}")
        seen.add(identity)
    return results


def _definition_identity(definition: MetricDefinition) -> str:
    """What changes when the way a metric is computed does: crmmetrics' version, the formula
    and dimensions, and the compute function's code (a plugin edited or upgraded), hashed."""
    compute = getattr(definition.compute, "__func__", definition.compute)
    code = getattr(compute, "__code__", None)
    # No repr of objects: it may hold memory addresses, which differ from process to process (a
    # KPI kit computation is named by its type; its formula, derived from its blocks, is above).
    parts = [__version__, definition.formula, ",".join(definition.dimensions), getattr(compute, "__qualname__", type(compute).__qualname__)]
    if code is not None:
        parts.append(_code_text(code))
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def _code_text(code: Any) -> str:
    """Bytecode and constants of a function, nested functions included (without the memory
    addresses a nested code object's repr has, so that it is the same in every process)."""
    consts = [_code_text(c) if hasattr(c, "co_code") else repr(c) for c in code.co_consts]
    return code.co_code.hex() + "|" + "|".join(consts)


class Runner:
    """Computes metrics from the source and stores the results."""

    def __init__(
        self,
        registry: Registry,
        config: Config,
        store: Store,
        source: Engine,
        pm: pluggy.PluginManager | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.registry = registry
        self.config = config
        self.store = store
        self.source = source
        self.pm = pm
        self.now = now

    def as_of(self) -> datetime:
        fixed = self.config.service.as_of
        return to_naive_utc(fixed) if fixed else to_naive_utc(self.now())

    def _closed_period(
        self, connection: Any, definition: MetricDefinition, settings: Any, inputs: Any, period: Any, run_cache: RunCache
    ) -> tuple[str, tuple[list[Result], list[dict[str, Any]]] | None]:
        """The fingerprint of a closed period's inputs (with the metric's parameters), and the
        values and model fits stored for it by the latest live run that computed it, if that run
        saw the same fingerprint."""
        needs = tuple(sorted(inputs, key=str))
        # Each table up to the same end is summarised once per run, for every metric that reads it.
        summary = source_fingerprint(connection, needs, period, share=run_cache.get)
        fingerprint = json.dumps(
            {"params": dict(settings.params), "period": settings.period, "inputs": [str(n) for n in needs], "source": summary,
             "definition": _definition_identity(definition)},
            sort_keys=True, default=str, separators=(",", ":"),
        )
        stored = self.store.closed_period_values(definition.key, period, fingerprint)
        if stored is None:
            return fingerprint, None
        values, fits = stored
        return fingerprint, ([Result(value, json.loads(dimensions)) for dimensions, value in values], fits)

    def _compute(
        self, definition: MetricDefinition, settings: Any, as_of: datetime, outcome: _Outcome, run_cache: RunCache,
        fingerprint_closed: bool = False, reuse_closed: bool = False,
    ) -> None:
        try:
            periods = reporting_periods(settings.period, as_of)
            with self.source.connect() as connection:
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql(f"SET statement_timeout = {int(settings.timeout_seconds * 1000)}")
                results = []
                customer_values: list[dict[str, Any]] = []
                missing: dict[str, str] = {}
                outcome.model_fits = fits = []
                outcome.fingerprints = fingerprints = {}
                inputs = definition.inputs(settings.params)
                for period in periods:
                    # No data is no data: an input without rows for the period makes the value
                    # missing with that reason; the compute function is not asked to make one up.
                    reason = missing_reason(connection, inputs, period) if inputs else None
                    if reason is not None:
                        missing[period.label] = reason
                        results.append((period, [Result(None)]))
                        continue
                    # A period that ended before the as-of time is closed (the previous period
                    # always; the current one of a calendar period such as the last full month):
                    # unless its inputs changed since the latest run computed it (or the user
                    # asks to recompute), its stored values and model fits stand. A recompute
                    # keeps the fingerprint too, so that the next run reuses it.
                    if period.end < as_of and fingerprint_closed and inputs:
                        fingerprints[period.label], stored = self._closed_period(connection, definition, settings, inputs, period, run_cache)
                        if stored is not None and reuse_closed:
                            values, stored_fits = stored
                            results.append((period, values))
                            fits.extend(stored_fits)
                            continue
                    ctx = ComputeContext(
                        connection=connection,
                        tables=schema.TABLES,
                        params=dict(settings.params),
                        period=period,
                        as_of=as_of,
                        metric=definition,
                        model_fits=fits,
                        run_cache=run_cache,
                    )
                    results.append((period, normalise(definition, definition.compute(ctx))))
                    if period.label == PeriodLabel.CURRENT:
                        customer_values = ctx.customer_values
            outcome.results, outcome.customer_values, outcome.missing = results, customer_values, missing
        except BaseException as exc:  # noqa: BLE001 - a plugin's failure is recorded, not raised
            outcome.error = exc

    def run_metric(
        self, key: str, as_of: datetime | None = None, backfill: bool = False, run_cache: RunCache | None = None,
        recompute: bool = False,
    ) -> Run:
        """Compute one metric for its current and previous period and store the run.

        ``as_of`` overrides the as-of time; ``backfill`` stores the run as a backfilled one
        (crmmetrics.compute.backfill): marked with its current period, not the latest values.
        ``run_cache`` is shared by the metrics of one run (:meth:`run_all`); without it the two
        periods of this metric share a new one. A closed period (one that ended before the
        as-of time: the previous period, and the current one of a calendar period) is not
        computed again when the latest live run that has it saw the same inputs (the same
        fingerprint of the needed tables up to its end, the same parameters and computation):
        its stored values and model fits are kept. ``recompute`` computes it regardless; a
        backfill computes what it is asked.
        """
        definition = self.registry.get(key)
        plugin = self.registry.plugin_of.get(key, "")
        settings = self.config.metric_settings(definition)
        as_of = to_naive_utc(as_of) if as_of is not None else self.as_of()
        # Recorded before computing: a process killed mid-run leaves a visible ``running`` run
        # (marked ``interrupted`` at the next start), never a silent gap.
        run = self.store.start_run(
            Run(metric_key=key, plugin=plugin, started_at=utcnow(), status=RunStatus.RUNNING, period=settings.period, owner=process_owner()),
            backfilled=reporting_periods(settings.period, as_of)[0] if backfill else None,
        )
        clock = time.perf_counter()
        outcome = _Outcome()
        worker = threading.Thread(
            target=self._compute,
            args=(definition, settings, as_of, outcome, run_cache or RunCache(), not backfill, not (backfill or recompute)),
            name=f"compute-{key}", daemon=True,
        )
        worker.start()
        worker.join(settings.timeout_seconds)
        duration = time.perf_counter() - clock
        run.finished_at, run.duration_seconds, run.status = utcnow(), duration, RunStatus.SUCCESS
        observations: list[Observation] = []
        if worker.is_alive():
            run.status, run.error = RunStatus.FAILED, f"timed out after {settings.timeout_seconds:g}s"
        elif outcome.error is not None:
            # Stored and exported: a URL with its password in an exception must not leak there.
            run.status, run.error = RunStatus.FAILED, redact_text(f"{type(outcome.error).__name__}: {outcome.error}")
        else:
            for period, results in outcome.results or []:
                for result in results:
                    observations.append(
                        Observation(
                            run_id=run.id,
                            metric_key=key,
                            dimensions=dimensions_key(result.dimensions),
                            period_label=period.label,
                            period_start=period.start,
                            period_end=period.end,
                            value=None if result.value is None else float(result.value),
                            computed_at=run.finished_at,
                        )
                    )
            run.rows = len(observations)
            run.previous_fingerprint = (outcome.fingerprints or {}).get(PeriodLabel.PREVIOUS)
            run.current_fingerprint = (outcome.fingerprints or {}).get(PeriodLabel.CURRENT)
        ok = run.status == RunStatus.SUCCESS
        missing = outcome.missing if ok else None
        run = self.store.finish_run(
            run, observations, outcome.customer_values if ok else (), missing, [] if worker.is_alive() else outcome.model_fits or [],
            backfilled=backfill,
        )
        level = logging.INFO if run.status == RunStatus.SUCCESS else logging.WARNING
        log.log(
            level,
            "run metric=%s status=%s duration=%.3fs rows=%d%s%s",
            key,
            run.status,
            duration,
            run.rows,
            f" error={run.error!r}" if run.error else "",
            "".join(f" {label}=no data ({reason})" for label, reason in (missing or {}).items()),
            extra={
                "metric": key,
                "plugin": plugin,
                "status": run.status,
                "duration_seconds": round(duration, 6),
                "rows": run.rows,
                "error": run.error,
                "run_id": run.id,
                "missing": missing or None,
            },
        )
        if self.pm is not None and not backfill:  # observers hear of live runs, not of history being filled in
            try:
                self.pm.hook.crmmetrics_run_finished(run=run.for_plugins(), observations=tuple(o.for_plugins() for o in observations))
            except Exception:  # an observer's bug must not undo or fail a stored run
                log.exception("a crmmetrics_run_finished hook failed for run %s", run.id)
        return run

    def recover_interrupted(self) -> list[Run]:
        """Mark runs left ``running`` by a process that died as ``interrupted``.

        A run is dead when its process is gone (same host) or when it started longer ago than
        its metric's timeout plus a minute (a live runner finishes every run by its timeout).
        """
        now = utcnow()
        dead = []
        for run in self.store.unfinished_runs():
            timeout = 0.0
            if run.metric_key in self.registry:
                timeout = self.config.metric_settings(self.registry.get(run.metric_key)).timeout_seconds
            overdue = (now - run.started_at).total_seconds() > timeout + 60
            if _owner_is_dead(run.owner) or overdue:
                dead.append(run)
        marked = self.store.mark_interrupted(dead, "interrupted: the process computing it stopped before the run finished")
        for run in marked:
            log.warning(
                "run metric=%s status=%s started_at=%s (run %s)", run.metric_key, RunStatus.INTERRUPTED, run.started_at, run.id,
                extra={"metric": run.metric_key, "plugin": run.plugin, "status": RunStatus.INTERRUPTED, "run_id": run.id},
            )
        return marked

    def enabled_keys(self) -> list[str]:
        return [d.key for d in self.registry if self.config.metric_settings(d).enabled]

    def run_all(
        self, keys: Iterable[str] | None = None, progress: Callable[[Run], None] | None = None, recompute: bool = False
    ) -> list[Run]:
        runs = []
        run_cache = RunCache()  # what one metric computes for the others of this run
        for key in keys if keys is not None else self.enabled_keys():
            run = self.run_metric(key, run_cache=run_cache, recompute=recompute)
            runs.append(run)
            if progress:
                progress(run)
        return runs
