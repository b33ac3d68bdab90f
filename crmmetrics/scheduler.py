"""The scheduler: runs each enabled metric on its interval or cron schedule (APScheduler 3.11).

Every job has an explicit timezone, ``coalesce=True`` (a backlog runs once), ``max_instances=1``
(a slow metric never overlaps itself) and a misfire grace time. Jobs live in memory and are
derived from the config at start-up; missed runs are not lost on restart because the store knows
when each metric last ran: a metric whose schedule fired since its last run (or that never ran)
runs at once, then keeps its schedule. One scheduler per store: two would compute every metric
twice.

Jobs call ``scheduled_run``, not the runner directly: a run whose result cannot be written to
the store (the store is down) is counted in memory by reason (``ServiceHealth``) and logged as
one line, instead of an APScheduler traceback per attempt, and the next run tries again.
``sync_jobs`` applies a reloaded configuration to the running scheduler.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .config import Config
from .definitions import Schedule, parse_duration
from .health import ServiceHealth, one_line, store_failure_reason
from .runner import Runner
from .store import Run

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


def scheduled_run(runner: Runner, key: str, health: ServiceHealth) -> Run | None:
    """Run one metric for the scheduler; a run that cannot be stored is counted, not raised."""
    try:
        run = runner.run_metric(key)
    except Exception as exc:  # noqa: BLE001 - the only write is the store's; compute errors are runs
        reason = store_failure_reason(exc)
        health.run_unstored(reason)
        health.store_failed(exc)
        log.warning("scheduled run of %s could not be stored (%s): %s", key, reason, one_line(exc))
        return None
    if health.store_answered():
        log.info("store answers again: scheduled runs are stored")
    health.source_answered(run.status == "success" or source_answers(runner))
    return run


def _add_job(scheduler: BackgroundScheduler, runner: Runner, health: ServiceHealth, key: str, tz: ZoneInfo) -> None:
    settings = runner.config.metric_settings(runner.registry.get(key))
    scheduler.add_job(
        scheduled_run, make_trigger(settings.schedule, tz), args=[runner, key, health], id=key, name=key, replace_existing=True
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
        if job.id not in wanted:
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
    return scheduler


def run_until_signalled(
    scheduler: BackgroundScheduler, on_stop: list | None = None, on_reload: Callable[[], object] | None = None
) -> None:
    """Resume the scheduler and block until SIGTERM or SIGINT, then shut down cleanly.

    SIGHUP calls ``on_reload`` (in this thread, not inside the signal handler).
    """
    stop = threading.Event()
    hup = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    if on_reload is not None:
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda _signum, _frame: hup.set())
    try:
        scheduler.resume()
        while not stop.wait(0.2):
            if hup.is_set():
                hup.clear()
                log.info("received SIGHUP, reloading the configuration")
                on_reload()
    finally:
        for callback in on_stop or ():
            callback()
        scheduler.shutdown(wait=True)  # running computations are bounded by their timeouts
        for sig, handler in previous.items():
            signal.signal(sig, handler)
