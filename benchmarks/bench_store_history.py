"""Benchmark: /metrics and the page as the store's history grows, and what pruning takes.

Fills a SQLite store with 61 metrics (the built-in catalogue's count), each with a standard
(so the page has KPIs with sparklines and an outlook), 4 observations per run on calendar
months over 140 days, first with ten runs per metric (the floor: the same periods, few runs),
then with --runs runs in all (200,000 by default: about 140 days of the default schedules), and
times at both sizes:

* a first render of /metrics and of the page (a new Exposition or page cache: what a
  restarted service pays; it reads each metric's stored periods once, one row each);
* a render of each after a change (a run of one metric, the readers' caches kept: what a
  serving instance pays after each run).

Then times a dry run and a real prune of everything older than 100 days. Prints the figures
and the ratios to the floor measured in the same run.

    python benchmarks/bench_store_history.py [--runs 200000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from crmmetrics.core.periods import _months_back
from crmmetrics.readers.exporter import Exposition
from crmmetrics.readers.outlook import OutlookCache
from crmmetrics.readers.page import landing_page
from crmmetrics.store.standards import StandardChange
from crmmetrics.store.store import HistoryPeriod, MetricRecord, Observation, Run, Store, dimensions_key, history_period_candidates

METRICS = 61
FLOOR_RUNS = METRICS * 10  # the same 140 days of monthly periods, ten runs per metric
NOW = datetime(2026, 11, 1)


def add_runs(store: Store, count: int, first_id: int, totals: bool = True, at: datetime | None = None) -> None:
    """``count`` runs spread over the metrics, oldest first, each with current/previous x 2 values
    (``totals=False``: one run, written by ``Store.write_run`` as a run finishes)."""
    step = timedelta(days=140) / max(count, 1)
    runs, observations = [], []
    for n in range(count):
        run_id = first_id + n
        key = f"bench_{n % METRICS:02d}"
        started = at or NOW - timedelta(days=140) + step * n
        failed = at is None and n % 50 == 0
        runs.append({"id": run_id, "metric_key": key, "plugin": "bench", "started_at": started, "finished_at": started,
                     "duration_seconds": 0.05, "status": "failed" if failed else "success", "error": "boom" if failed else None,
                     "rows": 0 if failed else 4, "period": "month", "owner": ""})
        if not failed:
            # a monthly metric: its last complete month, and the month before
            end = started.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            for label, (first, last) in (("current", (_months_back(end, 1), end)), ("previous", (_months_back(end, 2), _months_back(end, 1)))):
                for part in ("a", "b"):
                    observations.append({"run_id": run_id, "metric_key": key, "dimensions": dimensions_key({"part": part}),
                                         "period_label": label, "period_start": first, "period_end": last,
                                         "value": float(run_id % 97), "computed_at": started})
    if not totals:  # one run, written as the runner writes it
        run = runs[0]
        store.write_run(Run(**run), [Observation(**o) for o in observations])
        return
    with store.engine.begin() as connection:
        for start in range(0, len(runs), 20_000):
            connection.execute(insert(Run.__table__), runs[start : start + 20_000])
        for start in range(0, len(observations), 80_000):
            connection.execute(insert(Observation.__table__), observations[start : start + 80_000])
        # What finish_run keeps up to date, recomputed once for the bulk load.
        connection.exec_driver_sql("DELETE FROM metric_run_totals")
        connection.exec_driver_sql(
            "INSERT INTO metric_run_totals (metric_key, runs, failures, last_run_id, last_success_run_id) "
            "SELECT metric_key, count(*), sum(status = 'failed'), max(id), "
            "max(CASE WHEN status = 'success' THEN id END) FROM runs GROUP BY metric_key"
        )
        history = HistoryPeriod.__table__
        connection.execute(history.delete())
        connection.execute(history.insert().from_select(["metric_key", "period_start", "period_end", "run_id"],
                                                         history_period_candidates()))


def timed(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(store: Store, repeat: int) -> tuple[float, float, float, float]:
    """First renders of /metrics and the page, then renders after a change with the caches kept."""
    metrics = timed(lambda: Exposition(store).body(), repeat)
    page = timed(lambda: landing_page(store, OutlookCache()), repeat)
    outlook = OutlookCache()  # shared by /metrics and the page, as under serve
    exposition = Exposition(store, outlook=outlook)
    exposition.body()
    landing_page(store, outlook)
    last = store.runs(limit=1)[0].id
    changed_metrics, changed_page = [], []
    for n in range(repeat):
        last += 1
        add_runs(store, 1, last, totals=False, at=NOW)  # one more run of one metric
        start = time.perf_counter()
        exposition.body()
        changed_metrics.append(time.perf_counter() - start)
        start = time.perf_counter()
        landing_page(store, outlook)
        changed_page.append(time.perf_counter() - start)
    return metrics, page, statistics.median(changed_metrics), statistics.median(changed_page)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        store = Store(f"sqlite:///{Path(directory) / 'store.sqlite'}")
        with store.session() as session:
            for n in range(METRICS):
                session.merge(MetricRecord(key=f"bench_{n:02d}", plugin="bench", name=f"Bench {n}", description="",
                                           process="value_creation", perspective="customer", value_lens="customer_value",
                                           unit="count", direction="higher_is_better", dimensions='["part"]'))
                session.add(StandardChange(metric_key=f"bench_{n:02d}", origin="admin", target=90.0, red=10.0, green=80.0,
                                           valid_from=NOW - timedelta(days=400), changed_by="bench", changed_at=NOW))
            session.commit()
        add_runs(store, FLOOR_RUNS, 1)
        floor = measure(store, args.repeat)
        start = time.perf_counter()
        add_runs(store, args.runs - FLOOR_RUNS, store.runs(limit=1)[0].id + 1)
        print(f"filled {args.runs:,} runs in {time.perf_counter() - start:.1f} s; store {Path(store.url.removeprefix('sqlite:///')).stat().st_size / 1e6:.0f} MB")
        grown = measure(store, args.repeat)
        for what, before, after in zip(
            ("first /metrics render", "first page render", "/metrics after a change", "page after a change"), floor, grown
        ):
            print(f"{what + ':':25s} {before * 1000:7.1f} ms at {FLOOR_RUNS} runs, {after * 1000:7.1f} ms at {args.runs:,} runs "
                  f"(ratio {after / before:.2f})")
        cutoff = NOW - timedelta(days=100)
        start = time.perf_counter()
        planned = store.prune(cutoff, dry_run=True)
        dry = time.perf_counter() - start
        start = time.perf_counter()
        done = store.prune(cutoff)
        real = time.perf_counter() - start
        assert (planned.runs, planned.observations) == (done.runs, done.observations)
        print(f"prune older than 100 days: {done.runs:,} runs, {done.observations:,} observations; dry run {dry:.2f} s, prune {real:.2f} s")
        after = measure(store, args.repeat)
        print(f"after pruning: first /metrics render {after[0] * 1000:.1f} ms, first page {after[1] * 1000:.1f} ms, "
              f"after a change {after[2] * 1000:.1f} ms and {after[3] * 1000:.1f} ms")
        store.engine.dispose()


if __name__ == "__main__":
    main()
