"""What the readers keep between renders answers as a fresh read would.

A render after a run reads what the run changed (docs/operations.md, "Rendering /metrics and
the page"): ``Store.latest_observations`` keeps each latest run's observations, and
``HistoryCache`` each metric's history until a run of it finishes. Each answer is checked
against a fresh read (a new Store, ``history_snapshots``) after live runs, a failed run and a
backfilled run.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from crmmetrics.core.periods import Period
from crmmetrics.readers.history import HistoryCache, history_snapshots
from crmmetrics.store.store import MetricRecord, Observation, Run, Store, dimensions_key

MONTHS = [datetime(2026, m, 1) for m in range(1, 12)]


def record(key: str) -> MetricRecord:
    return MetricRecord(key=key, plugin="test", name=key, description="", process="value_creation", perspective="customer",
                        value_lens="customer_value", unit="count", direction="higher_is_better", dimensions='["segment"]')


def observations(key: str, month: int, value: float) -> list[Observation]:
    start, end = MONTHS[month - 1], MONTHS[month]
    return [
        Observation(run_id=0, metric_key=key, dimensions=dimensions_key(dims), period_label="current", period_start=start,
                    period_end=end, value=value + n, computed_at=end)
        for n, dims in enumerate(({}, {"segment": "a"}, {"segment": "b"}))
    ]


def live_run(store: Store, key: str, month: int, value: float, status: str = "success") -> None:
    moment = MONTHS[month]
    run = Run(metric_key=key, plugin="test", started_at=moment, finished_at=moment, duration_seconds=0.1, status=status,
              period="month")
    store.write_run(run, observations(key, month, value) if status == "success" else [])


def backfilled_run(store: Store, key: str, month: int, value: float) -> None:
    moment = MONTHS[month]
    run = store.start_run(Run(metric_key=key, plugin="test", started_at=moment, period="month"),
                          backfilled=Period("current", MONTHS[month - 1], moment))
    run.status, run.finished_at, run.duration_seconds = "success", moment, 0.1
    store.finish_run(run, observations(key, month, value), backfilled=True)


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    with store.session() as session:
        for key in ("alpha", "beta"):
            session.merge(record(key))
        session.commit()
    live_run(store, "alpha", 5, 10.0)
    live_run(store, "beta", 5, 20.0)
    yield store
    store.engine.dispose()


def fresh(store: Store) -> list[tuple]:
    other = Store(store.url)
    try:
        return [(o.metric_key, o.dimensions, o.period_label, o.value, o.dimensions_key) for o in other.latest_observations()]
    finally:
        other.engine.dispose()


def seen(store: Store) -> list[tuple]:
    return [(o.metric_key, o.dimensions, o.period_label, o.value, o.dimensions_key) for o in store.latest_observations()]


def test_latest_observations_after_runs_are_a_fresh_read(store):
    first = store.latest_observations()
    assert seen(store) == fresh(store)
    assert [(o.metric_key, o.value) for o in first if not o.dimensions] == [("alpha", 10.0), ("beta", 20.0)]
    live_run(store, "alpha", 6, 30.0)
    after = store.latest_observations()
    assert seen(store) == fresh(store)
    assert [(o.metric_key, o.value) for o in after if not o.dimensions] == [("alpha", 30.0), ("beta", 20.0)]
    # beta did not run: its observations were not read again
    assert [o for o in after if o.metric_key == "beta"][0] is [o for o in first if o.metric_key == "beta"][0]
    live_run(store, "beta", 6, 0.0, status="failed")  # a failed run keeps the last success's values
    assert seen(store) == fresh(store)
    assert [(o.metric_key, o.value) for o in store.latest_observations() if not o.dimensions] == [("alpha", 30.0), ("beta", 20.0)]
    assert {o.dimensions_key for o in after} == {"{}", '{"segment":"a"}', '{"segment":"b"}'}


def snapshot_view(snapshots) -> list[tuple]:
    return [(s.metric_key, s.run_id, s.period_start, s.period_end, sorted(s.current_values.items())) for s in snapshots]


def test_the_history_kept_per_metric_is_a_fresh_read_after_live_and_backfilled_runs(store):
    cache = HistoryCache()
    keys = ["alpha", "beta"]
    assert snapshot_view(cache.snapshots(store, keys)) == snapshot_view(history_snapshots(store, keys=keys))
    backfilled_run(store, "beta", 3, 5.0)  # an earlier period: history moves, the latest values do not
    backfilled_run(store, "beta", 4, 6.0)
    live_run(store, "alpha", 6, 30.0)
    live_run(store, "alpha", 6, 31.0)  # the same period again: the newest run's values count
    kept = cache.snapshots(store, keys)
    assert snapshot_view(kept) == snapshot_view(history_snapshots(store, keys=keys))
    assert [(s.metric_key, s.period_end.month, s.current_values["{}"]) for s in kept] == [
        ("beta", 4, 5.0), ("beta", 5, 6.0), ("alpha", 6, 10.0), ("beta", 6, 20.0), ("alpha", 7, 31.0),
    ]
    assert snapshot_view(cache.snapshots(store, ["beta"])) == snapshot_view(history_snapshots(store, keys=["beta"]))
    assert store.metric_history_markers()["beta"][2:] != (0, None)  # its backfilled runs are in its marker


def test_the_page_is_rendered_once_per_change_of_the_store(store, monkeypatch):
    from crmmetrics.readers import page
    from crmmetrics.serve.server import CachedPage

    rendered = []
    real = page.landing_page
    monkeypatch.setattr(page, "landing_page", lambda *args: rendered.append(args) or real(*args))
    cached = CachedPage(store)
    first = cached()
    assert cached() is first and len(rendered) == 1
    live_run(store, "alpha", 6, 30.0)
    second = cached()
    assert len(rendered) == 2 and "30" in second and second != first
    assert cached() is second and len(rendered) == 2


def test_a_prune_moves_the_markers_so_readers_drop_the_pruned_periods(store, monkeypatch):
    from crmmetrics.readers import page
    from crmmetrics.readers.exporter import Exposition
    from crmmetrics.serve.server import CachedPage

    from crmmetrics.store.standards import StandardChange

    with store.session() as session:  # KPIs, so that the page has alpha's sparkline
        for key in ("alpha", "beta"):
            session.add(StandardChange(metric_key=key, origin="admin", target=40.0, red=5.0, green=20.0,
                                       valid_from=MONTHS[0], changed_by="test", changed_at=MONTHS[0]))
        session.commit()
    for month in (1, 2, 3, 4):
        live_run(store, "alpha", month, float(month))
    keys = ["alpha", "beta"]
    cache, cached_page, exposition = HistoryCache(), CachedPage(store), Exposition(store)
    monkeypatch.setattr(page, "utcnow", lambda: datetime(2026, 12, 1))
    months = lambda snapshots: [(s.metric_key, s.period_end.month) for s in snapshots]  # noqa: E731
    assert months(cache.snapshots(store, keys)) == [("alpha", m) for m in (2, 3, 4, 5)] + [("alpha", 6), ("beta", 6)]
    first_page, renders = cached_page(), exposition.renders
    exposition.body()
    markers = store.metric_history_markers()

    done = store.prune(MONTHS[3])  # alpha's runs of January and February (started 1 February and 1 March)
    assert done.runs == 2
    moved = store.metric_history_markers()
    assert moved["alpha"] != markers["alpha"] and moved["beta"] == markers["beta"]
    # No run since: the next render reads alpha's history again, without the pruned periods.
    kept = cache.snapshots(store, keys)
    assert months(kept) == [("alpha", 4), ("alpha", 5), ("alpha", 6), ("beta", 6)]
    assert snapshot_view(kept) == snapshot_view(history_snapshots(store, keys=keys))
    second_page = cached_page()
    assert second_page != first_page and second_page == page.landing_page(store)
    assert "data-values='[1.0, 2.0, 3.0, 4.0, 10.0]'" in first_page and "data-values='[3.0, 4.0, 10.0]'" in second_page
    exposition.body()
    assert exposition.renders == renders + 2
