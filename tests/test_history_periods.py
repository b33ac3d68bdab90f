"""The history read from ``history_periods`` (one row per metric and period) is the history read
from every run kept, as before that table (SQLite and PostgreSQL).

A store with live, failed, interrupted, backfilled, calendar, to-date and trailing runs, and a
metric whose period changed: the snapshots equal those of the query that grouped every
observation (kept here as the reference), the table equals what it would be rebuilt from the
runs, and /metrics and the page are byte for byte the same. Then a prune: the table loses the
pruned runs' periods, an older run that is kept takes the place of a pruned newer one, and the
history still equals the reference.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, or_, select

from crmmetrics.core.periods import CALENDAR
from crmmetrics.core.vocabulary import PeriodLabel, RunStatus
from crmmetrics.readers import history as history_module
from crmmetrics.readers.history import Snapshot, history_snapshots
from crmmetrics.store.standards import StandardChange
from crmmetrics.store.store import (
    BackfilledRun, HistoryPeriod, LatestObservation, MetricRecord, MissingValue, Observation, Run, Store,
    history_period_candidates,
)
from support.history_runs import T0, add_run, fill


def reference_snapshots(store: Store, start=None, end=None, keys=None) -> list[Snapshot]:
    """history_snapshots as it was before history_periods: grouping every current observation kept."""
    obs, runs = Observation.__table__.c, Run.__table__.c
    backfilled = select(BackfilledRun.run_id)
    latest_live = select(func.max(runs.id)).where(runs.status == RunStatus.SUCCESS, runs.id.not_in(backfilled)).group_by(runs.metric_key)
    if keys is not None:
        keys = list(keys)
        latest_live = latest_live.where(runs.metric_key.in_(keys))
    newest = (
        select(obs.metric_key, obs.period_start, obs.period_end, func.max(obs.run_id).label("run_id"))
        .join(Run.__table__, runs.id == obs.run_id)
        .where(obs.period_label == PeriodLabel.CURRENT, runs.status == RunStatus.SUCCESS)
        .where(or_(runs.period.in_(CALENDAR), runs.id.in_(backfilled), runs.id.in_(latest_live)))
        .group_by(obs.metric_key, obs.period_start, obs.period_end)
    )
    if start is not None:
        newest = newest.where(obs.period_end >= start)
    if end is not None:
        newest = newest.where(obs.period_end <= end)
    if keys is not None:
        newest = newest.where(obs.metric_key.in_(keys))
    newest = newest.subquery()
    missing = MissingValue.__table__.c
    statement = (
        select(newest.c.run_id, obs.metric_key, obs.dimensions, obs.period_label, obs.period_start, obs.period_end,
               obs.value, obs.computed_at, missing.reason)
        .join(newest, obs.run_id == newest.c.run_id)
        .outerjoin(MissingValue.__table__,
                   (missing.run_id == obs.run_id) & (missing.period_label == obs.period_label) & obs.value.is_(None))
        .order_by(obs.run_id, obs.period_label, obs.dimensions)
    )
    with store.engine.connect() as connection:
        rows = connection.execute(statement).all()
    by_run: dict[int, list[LatestObservation]] = defaultdict(list)
    for run_id, key, dimensions, label, first, last, value, computed_at, reason in rows:
        by_run[run_id].append(LatestObservation(key, json.loads(dimensions), label, first, last, value, computed_at, reason, dimensions))
    snapshots = []
    for run_id, observations in by_run.items():
        current = next((o for o in observations if o.period_label == PeriodLabel.CURRENT), observations[0])
        snapshots.append(Snapshot(current.metric_key, run_id, current.period_start, current.period_end, observations))
    snapshots.sort(key=lambda s: (s.period_end, s.metric_key))
    return snapshots


def view(snapshots: list[Snapshot]) -> list[tuple]:
    return [(s.metric_key, s.run_id, s.period_start, s.period_end,
             [(o.period_label, o.dimensions_key, o.period_start, o.period_end, o.value, o.computed_at, o.reason) for o in s.observations])
            for s in snapshots]


def history_rows(store: Store) -> list[tuple]:
    table = HistoryPeriod.__table__.c
    with store.engine.connect() as connection:
        return sorted(tuple(r) for r in connection.execute(select(table.metric_key, table.period_start, table.period_end, table.run_id)).all())


def candidates(store: Store) -> list[tuple]:
    with store.engine.connect() as connection:
        return sorted(tuple(r) for r in connection.execute(history_period_candidates()).all())


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("fresh_pg_db")
    store = Store(url)
    yield store
    store.engine.dispose()


def totals(snapshots: list[Snapshot]) -> list[tuple]:
    return [(s.metric_key, s.period_start, s.period_end, s.current()) for s in snapshots]


def test_the_history_from_one_row_per_period_is_the_history_from_every_run(store):
    made = fill(store)
    snapshots = history_snapshots(store)
    eps = timedelta(microseconds=1)
    # By hand: the newest successful run of each calendar period (the backfill's recompute of
    # February, after the live recompute); of the to-date and trailing runs only the latest live
    # one (mtd_3, not the later failure), and the backfilled January of mtd; switch's calendar
    # January stays after its period changed.
    assert totals(snapshots) == [
        ("cal", datetime(2024, 12, 1), datetime(2025, 1, 1), 0.5),
        ("mtd", datetime(2025, 1, 1), datetime(2025, 2, 1) - eps, 9.0),
        ("cal", datetime(2025, 1, 1), datetime(2025, 2, 1), 1.0),
        ("switch", datetime(2025, 1, 1), datetime(2025, 2, 1), 30.0),
        ("cal", datetime(2025, 2, 1), datetime(2025, 3, 1), 2.75),
        ("mtd", datetime(2025, 3, 1), datetime(2025, 3, 20), 12.0),
        ("switch", datetime(2025, 3, 1), datetime(2025, 3, 20), 31.0),
        ("trail", datetime(2025, 3, 13), datetime(2025, 3, 20), 21.0),
        ("cal", datetime(2025, 3, 1), datetime(2025, 4, 1), 3.0),
    ]
    assert [s.run_id for s in snapshots if s.metric_key == "cal"] == [
        made[k].id for k in ("cal_dec", "cal_jan", "cal_feb_backfilled", "cal_mar")
    ]
    assert snapshots[0].observations[-1].reason == "no rows in orders"  # the previous period's missing total
    # The table holds the calendar and backfilled periods only, as a rebuild from the runs would.
    assert history_rows(store) == candidates(store)
    assert {key for key, *_ in history_rows(store)} == {"cal", "mtd", "switch"}
    for asked in ({}, {"keys": ["cal"]}, {"keys": ["mtd", "trail"]}, {"keys": ["nothing"]},
                  {"start": datetime(2025, 2, 1)}, {"end": datetime(2025, 3, 1)},
                  {"start": datetime(2025, 1, 15), "end": datetime(2025, 3, 1), "keys": ["cal", "mtd", "switch"]}):
        assert view(history_snapshots(store, **asked)) == view(reference_snapshots(store, **asked)), asked


def test_a_prune_keeps_the_history_equal_to_the_one_read_from_the_runs_kept(store):
    made = fill(store)
    before = history_snapshots(store)
    # A backfill's recompute of February, newer than the live run: a prune deletes it but keeps the
    # live run (the metric's last success), whose value takes its place in the history.
    late = add_run(store, "late", "month", datetime(2025, 3, 1, 1), 40.0, started=T0 + timedelta(days=59))
    recompute = add_run(store, "late", "month", datetime(2025, 3, 1), 41.0, backfill=True, started=T0 + timedelta(days=60))
    assert [s.current() for s in history_snapshots(store, keys=["late"])] == [41.0]
    done = store.prune(T0 + timedelta(days=63, hours=12))
    assert done.runs > 0
    with store.engine.connect() as connection:
        kept = {run_id for (run_id,) in connection.execute(select(Run.__table__.c.id)).all()}
    assert made["cal_jan"].id not in kept and made["cal_mar"].id in kept and recompute.id not in kept and late.id in kept
    assert history_rows(store) == candidates(store)
    after = history_snapshots(store)
    assert view(after) == view(reference_snapshots(store))
    assert [s.current() for s in history_snapshots(store, keys=["late"])] == [40.0]
    gone = {(s.metric_key, s.period_start) for s in before} - {(s.metric_key, s.period_start) for s in after}
    assert ("cal", datetime(2025, 1, 1)) in gone and ("switch", datetime(2025, 1, 1)) in gone


def test_metrics_and_the_page_are_the_bytes_they_were(tmp_path, monkeypatch):
    from crmmetrics.readers import page
    from crmmetrics.readers.exporter import OPENMETRICS, TEXT, Exposition
    from crmmetrics.readers.outlook import OutlookCache

    store = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    try:
        with store.session() as session:
            for key in ("cal", "mtd", "trail", "switch"):
                session.merge(MetricRecord(key=key, plugin="test", name=key, description="", process="value_creation",
                                           perspective="customer", value_lens="customer_value", unit="count",
                                           direction="higher_is_better", dimensions='["segment"]'))
                session.add(StandardChange(metric_key=key, origin="admin", target=40.0, red=5.0, green=20.0,
                                           valid_from=T0 - timedelta(days=400), changed_by="test", changed_at=T0))
            session.commit()
        fill(store)
        # more calendar months, so that the outlook has history to forecast from
        for month in range(4, 40):
            as_of = datetime(2025 + month // 12, month % 12 + 1, 1, 1)
            add_run(store, "cal", "month", as_of, 3.0 + month % 5, started=as_of)
        monkeypatch.setattr(page, "utcnow", lambda: datetime(2028, 5, 1))

        def render() -> tuple[bytes, bytes, str]:
            rendering = Exposition(store).encodings()
            return rendering[TEXT].body, rendering[OPENMETRICS].body, page.landing_page(store, OutlookCache())

        now = render()
        monkeypatch.setattr(history_module, "history_snapshots", reference_snapshots)
        assert render() == now
        # the history is in both: the calendar KPI's forecast and anomaly score, the sparklines
        assert b'crmmetrics_kpi_forecast_items{metric="cal"' in now[0] and b'crmmetrics_kpi_anomaly_score{metric="cal"' in now[0]
        assert now[2].count("<svg class='spark'") == 3  # cal, mtd, switch: trail has one period
    finally:
        store.engine.dispose()
