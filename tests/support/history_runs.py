"""Runs of every kind the stored history chooses from, written as the runner writes them: live and
backfilled, calendar, to-date and trailing, failed and interrupted, and a metric whose period changed."""

from __future__ import annotations

from datetime import datetime, timedelta

from crmmetrics.core.periods import reporting_periods
from crmmetrics.store.store import Observation, Run, Store, dimensions_key

T0 = datetime(2025, 1, 1)


def add_run(store: Store, key: str, spec: str, as_of: datetime, value: float, *, status: str = "success",
            backfill: bool = False, started: datetime | None = None) -> Run:
    """A run of ``key`` on ``spec`` as of ``as_of``, written as the runner writes it; its previous
    period's total is missing (with its reason), its current one has a total and a segment."""
    current, previous = reporting_periods(spec, as_of)
    moment = started or as_of
    run = store.start_run(Run(metric_key=key, plugin="test", started_at=moment, period=spec),
                          backfilled=current if backfill else None)
    run.status, run.finished_at, run.duration_seconds = status, moment, 0.1
    observations = [
        Observation(run_id=0, metric_key=key, dimensions=dimensions_key(dims), period_label=period.label,
                    period_start=period.start, period_end=period.end, value=number, computed_at=moment)
        for period, dims, number in ((current, {}, value), (current, {"segment": "a"}, value + 0.5), (previous, {}, None))
    ] if status == "success" else []
    missing = {"previous": "no rows in orders"} if status == "success" else None
    return store.finish_run(run, observations, missing=missing, backfilled=backfill)


def interrupted_run(store: Store, key: str, spec: str, as_of: datetime, backfill: bool) -> None:
    current, _ = reporting_periods(spec, as_of)
    run = store.start_run(Run(metric_key=key, plugin="test", started_at=as_of, period=spec),
                          backfilled=current if backfill else None)
    assert store.mark_interrupted([run], "gone") == [run]


def fill(store: Store) -> dict[str, Run]:
    """Runs in the order a service and a backfill would make them (ids follow the run times)."""
    at = lambda days, hours=0: T0 + timedelta(days=days, hours=hours)  # noqa: E731
    made = {}
    made["cal_jan"] = add_run(store, "cal", "month", datetime(2025, 2, 1, 1), 1.0, started=at(31, 1))
    made["mtd_1"] = add_run(store, "mtd", "month_to_date", datetime(2025, 2, 10), 10.0, started=at(40))
    made["trail_1"] = add_run(store, "trail", "trailing_7d", datetime(2025, 2, 10), 20.0, started=at(40, 1))
    made["cal_feb"] = add_run(store, "cal", "month", datetime(2025, 3, 1, 1), 2.0, started=at(59, 1))
    made["cal_failed"] = add_run(store, "cal", "month", datetime(2025, 3, 2), 0.0, status="failed", started=at(60))
    made["mtd_2"] = add_run(store, "mtd", "month_to_date", datetime(2025, 3, 5), 11.0, started=at(63))
    made["switch_jan"] = add_run(store, "switch", "month", datetime(2025, 2, 1, 2), 30.0, started=at(63, 1))
    made["cal_feb_again"] = add_run(store, "cal", "month", datetime(2025, 3, 3), 2.5, started=at(61 + 2))  # recomputed: counts
    # A backfill of earlier periods: the periods it adds, and one it computes again (newer: counts).
    made["cal_dec"] = add_run(store, "cal", "month", datetime(2025, 1, 1), 0.5, backfill=True, started=at(64))
    made["cal_feb_backfilled"] = add_run(store, "cal", "month", datetime(2025, 3, 1), 2.75, backfill=True, started=at(64, 1))
    interrupted_run(store, "cal", "month", datetime(2024, 12, 1), backfill=True)
    made["mtd_jan"] = add_run(store, "mtd", "month_to_date", datetime(2025, 2, 1) - timedelta(microseconds=1), 9.0,
                              backfill=True, started=at(64, 2))
    made["mtd_3"] = add_run(store, "mtd", "month_to_date", datetime(2025, 3, 20), 12.0, started=at(78))
    made["trail_2"] = add_run(store, "trail", "trailing_7d", datetime(2025, 3, 20), 21.0, started=at(78, 1))
    made["switch_mtd"] = add_run(store, "switch", "month_to_date", datetime(2025, 3, 20), 31.0, started=at(78, 2))
    made["cal_mar"] = add_run(store, "cal", "month", datetime(2025, 4, 1, 1), 3.0, started=at(90, 1))
    add_run(store, "mtd", "month_to_date", datetime(2025, 4, 2), 0.0, status="failed", started=at(91))  # the latest success stays mtd_3
    interrupted_run(store, "trail", "trailing_7d", datetime(2025, 4, 2), backfill=False)
    return made
