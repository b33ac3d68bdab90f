"""Backfill: compute the past reporting periods of metrics, so history starts on day one.

Each past period is computed by the ordinary runner as of that period's end (same timeouts,
same read-only source, same no-data rule) and stored as an ordinary run, marked in
``backfilled_runs`` with the period it is for (readers of the latest values pass over those).

How periods step (docs/operations.md, "Backfilling history"):

- ``month``, ``quarter``, ``year``: every calendar unit that ends after ``start`` and on or
  before ``end``, computed as of the first instant of the next unit (the runner's "last
  complete period" then is exactly that unit).
- ``month_to_date`` etc.: the same calendar units, computed as of their last microsecond, so
  that the period to date is the whole unit.
- ``trailing_<N>d``: back-to-back windows of N days, the first starting at midnight of
  ``start``, each computed as of its end; stepping by their own length keeps the windows from
  overlapping, and a fixed anchor (``start``) makes a resumed backfill ask for the same windows.

A period is already stored when a successful run of the metric has it as its current period
(a backfilled run or a live one); it is skipped unless ``force``. Every run is written in one
transaction, so an interrupted backfill loses at most the period it was computing, and running
the same command again resumes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from crmmetrics.core.definitions import RunCache
from crmmetrics.core.periods import (
    CALENDAR,
    TO_DATE,
    _UNIT_MONTHS,
    _calendar_start,
    _months_back,
    reporting_periods,
    to_naive_utc,
    trailing_days,
)
from crmmetrics.core.vocabulary import PeriodLabel, RunStatus
from crmmetrics.store.store import Observation, Run
from .runner import Runner

_TICK = timedelta(microseconds=1)


def backfill_as_ofs(spec: str, start: datetime, end: datetime) -> list[datetime]:
    """The as-of times of the periods of ``spec`` to compute between ``start`` and ``end``, oldest first."""
    start, end = to_naive_utc(start), to_naive_utc(end)
    as_ofs: list[datetime] = []
    if spec in CALENDAR or spec in TO_DATE:
        unit = spec.removesuffix("_to_date")
        months = _UNIT_MONTHS[unit]
        period_end = _months_back(_calendar_start(start, unit), -months)
        while period_end <= end:
            as_ofs.append(period_end if spec in CALENDAR else period_end - _TICK)
            period_end = _months_back(period_end, -months)
        return as_ofs
    days = trailing_days(spec)
    if days is None or days < 1:
        raise ValueError(f"unknown period {spec!r}")
    length = timedelta(days=days)
    period_end = start.replace(hour=0, minute=0, second=0, microsecond=0) + length
    while period_end <= end:
        as_ofs.append(period_end)
        period_end += length
    return as_ofs


def stored_periods(runner: Runner, key: str) -> set[tuple[datetime, datetime]]:
    """The current periods of ``key`` that a successful run has already stored."""
    columns = Observation.__table__.c
    statement = (
        select(columns.period_start, columns.period_end)
        .join(Run.__table__, Run.__table__.c.id == columns.run_id)
        .where(columns.metric_key == key, columns.period_label == PeriodLabel.CURRENT, Run.__table__.c.status == RunStatus.SUCCESS)
        .distinct()
    )
    with runner.store.engine.connect() as connection:
        return {(first, last) for first, last in connection.execute(statement).all()}


@dataclass
class BackfillPlan:
    """What a backfill will compute: (as-of time, metric) pairs, oldest first, and what it skips."""

    todo: list[tuple[datetime, str]] = field(default_factory=list)
    skipped: int = 0


def plan_backfill(runner: Runner, keys: Iterable[str], start: datetime, end: datetime, force: bool = False) -> BackfillPlan:
    plan = BackfillPlan()
    for key in keys:
        spec = runner.config.metric_settings(runner.registry.get(key)).period
        stored = set() if force else stored_periods(runner, key)
        for as_of in backfill_as_ofs(spec, start, end):
            period = reporting_periods(spec, as_of)[0]
            if (period.start, period.end) in stored:
                plan.skipped += 1
            else:
                plan.todo.append((as_of, key))
    plan.todo.sort()
    return plan


def run_backfill(runner: Runner, plan: BackfillPlan, progress: Callable[[Run], None] | None = None) -> list[Run]:
    """Compute and store every planned period; an interruption keeps what is stored."""
    runs = []
    # One run cache per period kind and as-of time, shared by the metrics of that step (one CLV
    # fit for all CLV KPIs) and handed on to the next step of the same kind, whose previous
    # period is this step's current one; kinds interleave in the plan, so each has its own chain.
    steps: dict[Any, tuple[datetime, RunCache]] = {}
    for as_of, key in plan.todo:
        kind = runner.config.metric_settings(runner.registry.get(key)).period
        step = steps.get(kind)
        if step is None:
            step = (as_of, RunCache())
        elif step[0] != as_of:
            step = (as_of, step[1].following())
        steps[kind] = step
        run = runner.run_metric(key, as_of=as_of, backfill=True, run_cache=step[1])
        runs.append(run)
        if progress:
            progress(run)
    return runs
