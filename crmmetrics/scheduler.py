"""The scheduler: runs each enabled metric on its interval or cron schedule (APScheduler 3.11).

Every job has an explicit timezone, ``coalesce=True`` (a backlog runs once), ``max_instances=1``
(a slow metric never overlaps itself) and a misfire grace time. Jobs live in memory and are
derived from the config at start-up; missed runs are not lost on restart because the store knows
when each metric last ran: a metric whose schedule fired since its last run (or that never ran)
runs at once, then keeps its schedule. One scheduler per store: two would compute every metric
twice.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .definitions import Schedule, parse_duration
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


def build_scheduler(runner: Runner, workers: int = 2) -> BackgroundScheduler:
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
    now = datetime.now(timezone.utc)
    last_runs = runner.store.last_run_times()
    for key in runner.enabled_keys():
        settings = runner.config.metric_settings(runner.registry.get(key))
        job = scheduler.add_job(
            runner.run_metric,
            make_trigger(settings.schedule, tz),
            args=[key],
            id=key,
            name=key,
        )
        if is_due(settings.schedule, tz, last_runs.get(key), now):
            job.modify(next_run_time=now)
            log.info("metric %s missed its schedule (last run %s): running now", key, last_runs.get(key) or "never")
    return scheduler


def run_until_signalled(scheduler: BackgroundScheduler, on_stop: list | None = None) -> None:
    """Resume the scheduler and block until SIGTERM or SIGINT, then shut down cleanly."""
    stop = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        scheduler.resume()
        stop.wait()
    finally:
        for callback in on_stop or ():
            callback()
        scheduler.shutdown(wait=True)  # running computations are bounded by their timeouts
        for sig, handler in previous.items():
            signal.signal(sig, handler)
