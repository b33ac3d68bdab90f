"""The scheduler: runs each enabled metric on its interval or cron schedule (APScheduler 3.11).

Every job has an explicit timezone, ``coalesce=True`` (a backlog runs once), ``max_instances=1``
(a slow metric never overlaps itself) and a misfire grace time. Jobs live in memory and are
derived from the config at start-up; missed runs are not lost on restart because the store knows
when each metric last ran: a metric whose schedule fired since its last run (or that never ran)
runs at once, then keeps its schedule.

One scheduler per store (two would compute every metric twice), however many instances serve:
the scheduling instance is the *leader*. On PostgreSQL, leadership is a session-level advisory
lock held on a dedicated connection; every instance serves /metrics and the page, the others
stand by and try to take the lock every LEADER_POLL_SECONDS, so when the leader dies (its
session ends with it) another takes over within that time. A leader that loses its connection
stops scheduling until it holds the lock again. On SQLite (one host, one file) a second
scheduler is refused at start-up: the lock is an flock on ``STORE.scheduler.lock``.

Jobs call ``scheduled_run``, not the runner directly: a run whose result cannot be written to
the store (the store is down) is counted in memory by reason (``ServiceHealth``) and logged as
one line, instead of an APScheduler traceback per attempt, and the next run tries again.
``sync_jobs`` applies a reloaded configuration to the running scheduler.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from crmmetrics.core.config import Config
from crmmetrics.core.definitions import RunCache, Schedule, parse_duration
from crmmetrics.core.errors import StoreError
from crmmetrics.core.vocabulary import RunStatus
from crmmetrics.store.store import Run, Store
from .health import ServiceHealth, one_line, store_failure_reason
from .runner import Runner

log = logging.getLogger("crmmetrics.scheduler")


def make_trigger(schedule: Schedule, tz: ZoneInfo) -> BaseTrigger:
    if schedule.every is not None:
        return IntervalTrigger(seconds=parse_duration(schedule.every).total_seconds(), timezone=tz)
    return CronTrigger.from_crontab(schedule.cron, timezone=tz)


def is_due(schedule: Schedule, tz: ZoneInfo, last_run: datetime | None, now: datetime) -> bool:
    """Whether the schedule fired between the metric's last run (naive UTC) and ``now`` (aware)."""
    if last_run is None:
        return True
    last = last_run.replace(tzinfo=timezone.utc)
    if schedule.every is not None:
        return now - last >= parse_duration(schedule.every)
    trigger = CronTrigger.from_crontab(schedule.cron, timezone=tz)
    next_fire = trigger.get_next_fire_time(None, last + timedelta(seconds=1))
    return next_fire is not None and next_fire <= now


def source_answers(runner: Runner) -> bool:
    try:
        with runner.source.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        return True
    except Exception:  # noqa: BLE001 - any failure means it did not answer
        return False


class RunWindow:
    """The run cache of the scheduled runs that start within ``seconds`` of each other.

    Under ``serve`` every metric is its own job, so the metrics due at the same time (the CLV
    KPIs on one schedule) would each fit the same model. Runs starting within one window share
    one cache, as the metrics of one ``crmmetrics run`` do; a run after the window gets a new
    one, so nothing computed is kept longer than the runs that use it.
    """

    def __init__(self, seconds: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._opened = -math.inf
        self._cache = RunCache()

    def cache(self) -> RunCache:
        with self._lock:
            now = self.clock()
            if now - self._opened >= self.seconds:
                self._opened, self._cache = now, RunCache()
            return self._cache


def scheduled_run(runner: Runner, key: str, health: ServiceHealth, window: RunWindow | None = None) -> Run | None:
    """Run one metric for the scheduler; a run that cannot be stored is counted, not raised."""
    try:
        run = runner.run_metric(key, run_cache=window.cache() if window is not None else None)
    except Exception as exc:  # noqa: BLE001 - the only write is the store's; compute errors are runs
        reason = store_failure_reason(exc)
        health.run_unstored(reason)
        health.store_failed(exc)
        log.warning("scheduled run of %s could not be stored (%s): %s", key, reason, one_line(exc))
        return None
    if health.store_answered():
        log.info("store answers again: scheduled runs are stored")
    health.source_answered(run.status == RunStatus.SUCCESS or source_answers(runner))
    return run


def _add_job(scheduler: BackgroundScheduler, runner: Runner, health: ServiceHealth, key: str, tz: ZoneInfo) -> None:
    settings = runner.config.metric_settings(runner.registry.get(key))
    # One window for all the jobs of this scheduler, kept with it (jobs added after a reload too).
    window = scheduler.__dict__.setdefault("crmmetrics_run_window", RunWindow())
    scheduler.add_job(
        scheduled_run, make_trigger(settings.schedule, tz), args=[runner, key, health, window], id=key, name=key, replace_existing=True
    )


def _catch_up(scheduler: BackgroundScheduler, runner: Runner, keys: list[str], tz: ZoneInfo) -> None:
    """Make due now every metric among ``keys`` whose schedule fired since its last run."""
    now = datetime.now(timezone.utc)
    last_runs = runner.store.last_run_times()
    for key in keys:
        settings = runner.config.metric_settings(runner.registry.get(key))
        if is_due(settings.schedule, tz, last_runs.get(key), now):
            scheduler.get_job(key).modify(next_run_time=now)
            log.info("metric %s missed its schedule (last run %s): running now", key, last_runs.get(key) or "never")


def sync_jobs(scheduler: BackgroundScheduler, runner: Runner, health: ServiceHealth, previous: Config) -> list[str]:
    """Bring the jobs in line with ``runner.config`` (after a reload); returns what changed.

    A disabled metric loses its job, a newly enabled one gets one (running now if due), and one
    whose schedule or timezone changed is rescheduled; the others keep their next run time.
    """
    tz = ZoneInfo(runner.config.service.timezone)
    retimed = runner.config.service.timezone != previous.service.timezone
    wanted = runner.enabled_keys()
    changes = []
    for job in scheduler.get_jobs():
        if job.id not in wanted and job.id != PRUNE_JOB:
            job.remove()
            changes.append(f"{job.id} unscheduled")
    added = []
    for key in wanted:
        definition = runner.registry.get(key)
        schedule = runner.config.metric_settings(definition).schedule
        job = scheduler.get_job(key)
        if job is None:
            _add_job(scheduler, runner, health, key, tz)
            added.append(key)
            changes.append(f"{key} scheduled {schedule.describe()}")
        elif retimed or schedule != previous.metric_settings(definition).schedule:
            job.reschedule(make_trigger(schedule, tz))
            changes.append(f"{key} rescheduled {schedule.describe()}")
    if added:
        try:
            _catch_up(scheduler, runner, added, tz)
        except Exception as exc:  # noqa: BLE001 - the store is down: they run on their schedule
            log.warning("could not read the last runs of newly scheduled metrics: %s", one_line(exc))
    return changes


def build_scheduler(runner: Runner, workers: int = 2, health: ServiceHealth | None = None) -> BackgroundScheduler:
    """A started-paused scheduler with one job per enabled metric and missed runs made due now."""
    service = runner.config.service
    tz = ZoneInfo(service.timezone)
    scheduler = BackgroundScheduler(
        timezone=tz,
        executors={"default": ThreadPoolExecutor(workers)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": int(parse_duration(service.misfire_grace).total_seconds()),
        },
    )
    # Paused first, so that no job fires before every job and its catch-up run are in place.
    scheduler.start(paused=True)
    health = health or ServiceHealth()
    keys = runner.enabled_keys()
    for key in keys:
        _add_job(scheduler, runner, health, key, tz)
    _catch_up(scheduler, runner, keys, tz)
    # Pruning runs in the leader only, daily, first a minute after start-up.
    scheduler.add_job(
        prune_store, IntervalTrigger(days=1, timezone=tz), args=[runner], id=PRUNE_JOB, name=PRUNE_JOB,
        next_run_time=datetime.now(timezone.utc) + timedelta(minutes=1),
    )
    return scheduler


LEADER_POLL_SECONDS = 15.0
# pg_try_advisory_lock key of the scheduling instance of one store database ("crms" in ASCII).
_LEADER_LOCK = 0x63726D73


class Leadership:
    """The right to schedule on one store. ``try_acquire`` never blocks."""

    def try_acquire(self) -> bool:
        return True

    def still_held(self) -> bool | None:
        """True or False; None when the store cannot be reached to tell."""
        return True

    def release(self) -> None:
        pass


class PostgresLeadership(Leadership):
    """A session-level advisory lock on a connection of its own (autocommit: never idle in a
    transaction). The server frees it when the session ends, however the process died."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.connection: Connection | None = None

    def _query(self, sql: str) -> object:
        if self.connection is None:
            self.connection = self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self.connection.execute(text(sql), {"key": _LEADER_LOCK}).scalar()

    def _drop(self) -> None:
        if self.connection is not None:
            try:
                self.connection.invalidate()
                self.connection.close()
            except Exception:  # noqa: BLE001 - the connection is already gone
                pass
            self.connection = None

    def try_acquire(self) -> bool:
        try:
            return bool(self._query("SELECT pg_try_advisory_lock(:key)"))
        except Exception as exc:  # noqa: BLE001 - the store is down: stand by and retry
            log.warning("cannot reach the store to take the scheduler lock: %s", str(exc).splitlines()[0])
            self._drop()
            return False

    def still_held(self) -> bool | None:
        try:
            held = self._query(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                "AND granted AND ((classid::bigint << 32) | objid::bigint) = :key"
            )
            return bool(held)
        except Exception:  # noqa: BLE001 - the session is lost, and the lock with it; the next
            self._drop()  # check, on a new session, tells whether another instance took it
            return None

    def release(self) -> None:
        try:
            if self.connection is not None:
                self._query("SELECT pg_advisory_unlock(:key)")
        except Exception:  # noqa: BLE001
            pass
        self._drop()


class FileLeadership(Leadership):
    """An exclusive flock beside a SQLite store; the kernel frees it when the process dies."""

    def __init__(self, store: Store, path: Path) -> None:
        self.store = store
        self.path = path
        self.handle = None

    def try_acquire(self) -> bool:
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StoreError(
                f"store {self.store.where}: another crmmetrics ({holder}) is already scheduling metrics on it; "
                "a SQLite store has one scheduler: stop the other one, or use a PostgreSQL store for several instances"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self.handle = handle
        return True

    def release(self) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


def leadership_for(store: Store) -> Leadership:
    backend = store.engine.dialect.name
    if backend == "postgresql":
        return PostgresLeadership(store)
    if backend == "sqlite":
        database = make_url(store.url).database or ""
        return FileLeadership(store, Path(database).resolve().with_name(Path(database).name + ".scheduler.lock"))
    log.warning("store %s: no scheduler lock on %s; run one 'serve' per store", store.where, backend)
    return Leadership()


def claim_leadership(runner: Runner) -> tuple[Leadership, bool]:
    """At start-up: the store's leadership and whether this instance holds it. On SQLite a
    second scheduler is refused here (StoreError), before anything is served."""
    leadership = leadership_for(runner.store)
    return leadership, leadership.try_acquire()


PRUNE_JOB = "store-prune"


def prune_store(runner: Runner) -> None:
    """The leader's daily pruning of runs older than [store] retention."""
    from crmmetrics.core.periods import utcnow

    try:
        result = runner.store.prune(utcnow() - runner.config.retention)
    except Exception:  # noqa: BLE001 - a failed prune is retried tomorrow, it never stops scheduling
        log.exception("pruning the store failed")
        return
    log.info("pruned %d runs (%d observations) started before %s", result.runs, result.observations, f"{result.older_than:%Y-%m-%d %H:%M}")


def _lost_leadership(leadership: Leadership) -> bool:
    """Whether a scheduling instance must stand by. While the store cannot be reached it goes
    on scheduling (its runs fail to be stored and are counted: no other instance can store
    any either); once the store answers, a lock that went with the old session is taken back
    if no other instance took it meanwhile, so an outage causes no gap in the schedule."""
    held = leadership.still_held()
    return held is False and not leadership.try_acquire()


def run_until_signalled(
    runner: Runner,
    leadership: Leadership,
    leader: bool,
    *,
    health: ServiceHealth | None = None,
    on_stop: list | None = None,
    on_reload: Callable[[], object] | None = None,
    on_scheduler: Callable[[BackgroundScheduler | None], object] | None = None,
    poll_seconds: float = LEADER_POLL_SECONDS,
) -> None:
    """Schedule while this instance leads, stand by while another does; until SIGTERM or SIGINT.

    ``on_scheduler`` is told of the scheduler when this instance starts or stops scheduling (for
    readiness and reloads). SIGHUP calls ``on_reload`` (in this thread, not the signal handler).
    """
    stop = threading.Event()
    hup = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    if on_reload is not None:
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda _signum, _frame: hup.set())
    scheduler: BackgroundScheduler | None = None
    next_poll = 0.0
    try:
        if not leader:
            log.info("standby: another instance schedules the metrics on this store; serving only")
        while not stop.is_set():
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + poll_seconds
                if scheduler is None and (leader or leadership.try_acquire()):
                    leader = False
                    log.info("leader: this instance schedules the metrics")
                    runner.recover_interrupted()  # a dead leader's unfinished runs
                    scheduler = build_scheduler(runner, health=health)
                    scheduler.resume()
                    if on_scheduler is not None:
                        on_scheduler(scheduler)
                elif scheduler is not None and _lost_leadership(leadership):
                    log.warning("lost the scheduler lock on the store: standing by")
                    scheduler.shutdown(wait=False)
                    scheduler = None
                    if on_scheduler is not None:
                        on_scheduler(None)
            if hup.is_set():
                hup.clear()
                log.info("received SIGHUP, reloading the configuration")
                on_reload()
            stop.wait(0.2)
    finally:
        for callback in on_stop or ():
            callback()
        if scheduler is not None:
            scheduler.shutdown(wait=True)  # running computations are bounded by their timeouts
        leadership.release()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
