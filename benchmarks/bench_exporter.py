"""Benchmark: a scrape that serves pre-rendered bytes vs one that renders the exposition.

Fills a store with one metric of N dimension values (N samples per period), then times
``Exposition.body()`` when nothing changed (one change-marker query, bytes served) against a
full render with prometheus-client. Prints the figures and their ratio.

    python benchmarks/bench_exporter.py [--samples 10000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from prometheus_client import generate_latest

from crmmetrics.readers.exporter import Exposition
from crmmetrics.store.store import MetricRecord, Observation, Run, Store, dimensions_key


def fill(store: Store, samples: int) -> None:
    now = datetime(2026, 11, 1)
    with store.session() as session:
        session.merge(MetricRecord(key="bench", plugin="bench", name="bench", description="", process="value_creation",
                                   perspective="customer", value_lens="customer_value", unit="count",
                                   direction="higher_is_better", dimensions='["customer"]'))
        session.commit()
    run = Run(metric_key="bench", plugin="bench", started_at=now, finished_at=now, duration_seconds=0.1, status="success")
    observations = [
        Observation(run_id=0, metric_key="bench", dimensions=dimensions_key({"customer": str(i)}), period_label="current",
                    period_start=now, period_end=now, value=float(i), computed_at=now)
        for i in range(samples)
    ]
    store.write_run(run, observations)


def timed(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        store = Store(f"sqlite:///{Path(directory) / 'store.sqlite'}")
        fill(store, args.samples)
        exposition = Exposition(store)
        body = exposition.body()  # the first scrape renders
        cached = timed(exposition.body, args.repeat)
        rendered = timed(lambda: generate_latest(exposition.registry), max(3, args.repeat // 4))
        print(f"samples: {args.samples:,}  exposition: {len(body):,} bytes")
        print(f"scrape, unchanged store (marker check + bytes): {cached * 1000:8.2f} ms")
        print(f"scrape, full render with prometheus-client:     {rendered * 1000:8.2f} ms")
        print(f"ratio render / cached: {rendered / cached:.0f}x")


if __name__ == "__main__":
    main()
