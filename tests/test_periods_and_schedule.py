"""Reporting periods, durations and the scheduler's catch-up of missed runs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from crmmetrics.compute.scheduler import build_scheduler, is_due
from crmmetrics.core.definitions import Parameter, Schedule, default_schedule, parse_duration
from crmmetrics.core.periods import reporting_periods

AS_OF = datetime(2026, 11, 23, 10, 30)
UTC = ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("spec", "current", "previous"),
    [
        ("month", (datetime(2026, 10, 1), datetime(2026, 11, 1)), (datetime(2026, 9, 1), datetime(2026, 10, 1))),
        ("quarter", (datetime(2026, 7, 1), datetime(2026, 10, 1)), (datetime(2026, 4, 1), datetime(2026, 7, 1))),
        ("year", (datetime(2025, 1, 1), datetime(2026, 1, 1)), (datetime(2024, 1, 1), datetime(2025, 1, 1))),
        ("month_to_date", (datetime(2026, 11, 1), AS_OF), (datetime(2026, 10, 1), datetime(2026, 10, 23, 10, 30))),
        ("trailing_7d", (AS_OF - timedelta(days=7), AS_OF), (AS_OF - timedelta(days=14), AS_OF - timedelta(days=7))),
    ],
)
def test_reporting_periods(spec, current, previous):
    now, before = reporting_periods(spec, AS_OF)
    assert (now.label, now.start, now.end) == ("current", *current)
    assert (before.label, before.start, before.end) == ("previous", *previous)


def test_january_month_looks_back_into_the_previous_year():
    now, before = reporting_periods("month", datetime(2026, 1, 5))
    assert (now.start, now.end, before.start) == (datetime(2025, 12, 1), datetime(2026, 1, 1), datetime(2025, 11, 1))


def test_durations_and_parameters():
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("2w") == timedelta(weeks=2)
    for bad in ("0m", "5", "1y", "m"):
        with pytest.raises(ValueError, match="invalid duration"):
            parse_duration(bad)
    share = Parameter("margin_share", float, 0.3, "gross margin share where cogs is unknown", minimum=0, maximum=1)
    assert share.coerce("0.25") == 0.25
    with pytest.raises(ValueError, match="above the maximum 1"):
        share.coerce("1.5")
    with pytest.raises(ValueError, match="expected a number, got 'lots'"):
        share.coerce("lots")


@pytest.mark.parametrize(
    ("period", "cron"),
    [
        ("month", "15 0 * * *"), ("quarter", "15 0 * * *"), ("year", "15 0 * * *"),
        ("month_to_date", "15 * * * *"), ("quarter_to_date", "15 */6 * * *"), ("year_to_date", "15 */6 * * *"),
        ("trailing_7d", "15 * * * *"), ("trailing_30d", "15 */6 * * *"), ("trailing_90d", "15 */6 * * *"),
        ("trailing_365d", "15 0 * * *"),
    ],
)
def test_default_schedule_fits_the_period(period, cron):
    assert default_schedule(period) == Schedule(cron=cron)


def test_a_monthly_metric_runs_promptly_after_the_month_closes_then_daily():
    """Not hourly from start-up: the first run after 1 December 00:00 is at 00:15, the next a day later."""
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(default_schedule("month").cron, timezone=UTC)
    first = trigger.get_next_fire_time(None, datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
    assert first == datetime(2026, 12, 1, 0, 15, tzinfo=UTC)
    assert trigger.get_next_fire_time(first, first + timedelta(seconds=1)) == datetime(2026, 12, 2, 0, 15, tzinfo=UTC)


def test_missed_runs_are_due_after_a_restart():
    now = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
    hourly = Schedule(every="1h")
    assert is_due(hourly, UTC, None, now)  # never ran
    assert is_due(hourly, UTC, datetime(2026, 11, 23, 8, 59), now)
    assert not is_due(hourly, UTC, datetime(2026, 11, 23, 9, 30), now)
    daily_six = Schedule(cron="0 6 * * *")
    assert is_due(daily_six, UTC, datetime(2026, 11, 22, 6, 0, 5), now)  # today's 06:00 was missed
    assert not is_due(daily_six, UTC, datetime(2026, 11, 23, 6, 0, 5), now)
    # 06:00 in Auckland is 17:00 UTC the day before: already run at 17:00:05 UTC on the 22nd.
    assert not is_due(daily_six, ZoneInfo("Pacific/Auckland"), datetime(2026, 11, 22, 17, 0, 5), now)


def test_scheduler_jobs_have_the_safe_defaults(tmp_path, crm_db):
    from crmmetrics.core.config import parse_config
    from crmmetrics.serve.app import App

    config = parse_config(
        {
            "source": {"url": crm_db.url},
            "store": {"url": f"sqlite:///{tmp_path / 'store.sqlite'}"},
            "service": {"timezone": "Europe/Berlin"},
            "metrics": {"vc_nps": {"schedule": {"cron": "0 6 * * *"}}, "vc_aov": {"enabled": False}},
        },
        None,
    )
    app = App.from_config(config)
    app.runner.run_metric("vc_nps")  # ran just now: not due until tomorrow 06:00 Berlin time
    scheduler = build_scheduler(app.runner)
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert "vc_aov" not in jobs and "vc_nps" in jobs
        nps = jobs["vc_nps"]
        assert (nps.coalesce, nps.max_instances, nps.misfire_grace_time) == (True, 1, 600)
        assert str(nps.trigger.timezone) == "Europe/Berlin"
        assert nps.next_run_time.astimezone(ZoneInfo("Europe/Berlin")).hour == 6
        # A metric that never ran is due at once.
        never = jobs["sd_active_customers"]
        assert never.next_run_time <= datetime.now(timezone.utc)
    finally:
        scheduler.shutdown(wait=False)
