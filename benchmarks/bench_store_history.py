"""Benchmark: /metrics and the page as the store's history grows, and what pruning takes.

Fills a SQLite store with 61 metrics (the built-in catalogue's count), 4 observations per run,
first with one run per metric (the floor), then with --runs runs in all (200,000 by default:
about 140 days of the default schedules), and times a first render of /metrics (a new
Exposition: what a restarted service pays) and of the page at both sizes. Then times a dry run
and a real prune of everything older than 100 days. Prints the figures and the ratios to the
floor measured in the same run.

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

from crmmetrics.readers.exporter import Exposition
from crmmetrics.readers.page import landing_page
from crmmetrics.store.store import MetricRecord, Observation, Run, Store, dimensions_key

METRICS = 61
NOW = datetime(2026, 11, 1)


def add_runs(store: Store, count: int, first_id: int) -> None:
    """``count`` runs spread over the metrics, oldest first, each with current/previous x 2 values."""
    step = timedelta(days=140) / max(count, 1)
    runs, observations = [], []
    for n in range(count):
        run_id = first_id + n
        key = f"bench_{n % METRICS:02d}"
        started = NOW - timedelta(days=140) + step * n
        failed = n % 50 == 0
        runs.append({"id": run_id, "metric_key": key, "plugin": "bench", "started_at": started, "finished_at": started,
                     "duration_seconds": 0.05, "status": "failed" if failed else "success", "error": "boom" if failed else None,
                     "rows": 0 if failed else 4, "period": "month", "owner": ""})
        if not failed:
            for label in ("current", "previous"):
                for part in ("a", "b"):
                    observations.append({"run_id": run_id, "metric_key": key, "dimensions": dimensions_key({"part": part}),
                                         "period_label": label, "period_start": started, "period_end": started,
                                         "value": float(n), "computed_at": started})
    with store.engine.begin() as connection:
        for start in range(0, len(runs), 20_000):
            connection.execute(insert(Run.__table__), runs[start : start + 20_000])
        for start in range(0, len(observations), 80_000):
            connection.execute(insert(Observation.__table__), observations[start : start + 80_000])
        # What finish_run keeps up to date, recomputed once for the bulk load.
        connection.exec_driver_sql("DELETE FROM metric_run_totals")
        connection.exec_driver_sql(
            "INSERT INTO metric_run_totals SELECT metric_key, count(*), sum(status = 'failed'), max(id), "
            "max(CASE WHEN status = 'success' THEN id END) FROM runs GROUP BY metric_key"
        )


def timed(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(store: Store, repeat: int) -> tuple[float, float]:
    metrics = timed(lambda: Exposition(store).body(), repeat)
    page = timed(lambda: landing_page(store), repeat)
    return metrics, page


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
            session.commit()
        add_runs(store, METRICS, 1)
        floor_metrics, floor_page = measure(store, args.repeat)
        start = time.perf_counter()
        add_runs(store, args.runs - METRICS, METRICS + 1)
        print(f"filled {args.runs:,} runs in {time.perf_counter() - start:.1f} s; store {Path(store.url.removeprefix('sqlite:///')).stat().st_size / 1e6:.0f} MB")
        grown_metrics, grown_page = measure(store, args.repeat)
        print(f"first /metrics render: {floor_metrics * 1000:7.1f} ms at {METRICS} runs, {grown_metrics * 1000:7.1f} ms at {args.runs:,} runs "
              f"(ratio {grown_metrics / floor_metrics:.2f})")
        print(f"page render:           {floor_page * 1000:7.1f} ms at {METRICS} runs, {grown_page * 1000:7.1f} ms at {args.runs:,} runs "
              f"(ratio {grown_page / floor_page:.2f})")
        cutoff = NOW - timedelta(days=100)
        start = time.perf_counter()
        planned = store.prune(cutoff, dry_run=True)
        dry = time.perf_counter() - start
        start = time.perf_counter()
        done = store.prune(cutoff)
        real = time.perf_counter() - start
        assert (planned.runs, planned.observations) == (done.runs, done.observations)
        print(f"prune older than 100 days: {done.runs:,} runs, {done.observations:,} observations; dry run {dry:.2f} s, prune {real:.2f} s")
        after_metrics, after_page = measure(store, args.repeat)
        print(f"after pruning: /metrics {after_metrics * 1000:.1f} ms, page {after_page * 1000:.1f} ms")
        store.engine.dispose()


if __name__ == "__main__":
    main()
