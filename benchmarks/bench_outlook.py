"""Benchmark: what the outlook (forecasts, pacing, anomalies, value chain) adds to a render.

Generates the demo with 24 months of backfilled history (``crmmetrics demo --once``; or reuses
``--dir`` from an earlier run), then times, on its store:

* the floor: a render of the exposition without the outlook (everything else /metrics has);
* the outlook computed from scratch (every KPI's forecast, pacing and anomaly score, every
  chain pair): the cost of the first render after a start;
* the outlook when the store changed but no KPI's inputs did (the history read and the
  remembered answers), and after one metric's history moved (one KPI recomputed);
* a full render with the outlook remembered, and a scrape of an unchanged store (bytes).

Prints the figures and their ratios to the floor.

    python benchmarks/bench_outlook.py [--customers 5000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crmmetrics.readers.exporter import OPENMETRICS, TEXT, Exposition, encode
from crmmetrics.readers.outlook import Outlook, OutlookCache
from crmmetrics.readers.scorecard import build_scorecard
from crmmetrics.store.store import Store

BUILT_IN = "strategy_development,value_creation,multichannel_integration,information_management,performance_assessment"


class NoOutlook:
    """The floor: an outlook cache that computes nothing."""

    def build(self, store, scorecard):
        return Outlook()


def timed(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def render(exposition: Exposition) -> None:
    rendering = encode(exposition.registry)
    for encoding in (TEXT, OPENMETRICS):  # both bodies, as a render made them all at once before
        rendering[encoding]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--dir", type=Path, help="a demo directory (made here if it has no store yet)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="crmmetrics-bench-outlook-"))
    if not (directory / "store.sqlite").exists():
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "crmmetrics", "demo", "--dir", str(directory), "--customers", str(args.customers),
             "--once", "--history-months", "24"],
            check=True, capture_output=True, env={**os.environ, "CRMMETRICS_LOAD_PLUGINS": BUILT_IN},
        )
        print(f"demo with 24 months of history: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    store = Store(f"sqlite:///{directory / 'store.sqlite'}", read_only=True)
    scorecard = build_scorecard(store)
    floor = timed(lambda: render(Exposition(store, outlook=NoOutlook())), args.repeat)

    def cold() -> OutlookCache:
        cache = OutlookCache()
        cache.build(store, scorecard)
        return cache

    scratch = timed(cold, args.repeat)
    cache = cold()
    outlook = cache.build(store, scorecard)
    warm = timed(lambda: cache.build(store, scorecard), args.repeat)

    def one_changed() -> None:
        # forget one KPI's answer, as when a run of its metric stores a new period
        victim = next(key for key, value in cache._kpis.items() if value.pacing is not None)
        del cache._kpis[victim]
        cache.build(store, scorecard)

    one = timed(one_changed, args.repeat)
    exposition = Exposition(store, outlook=cache)
    exposition.body()
    full = timed(lambda: render(exposition), args.repeat)
    scrape = timed(exposition.body, args.repeat * 4)
    kpis = len(outlook.kpis)
    forecasts = sum(1 for k in outlook.kpis.values() if k.pacing is not None)
    scored = sum(1 for k in outlook.kpis.values() if k.anomaly is not None)
    print(f"demo: {args.customers:,} customers, 24 months of history; {kpis} KPIs, {forecasts} forecasts, "
          f"{scored} anomaly scores, {len(outlook.chain)} chain analyses")
    print(f"render without the outlook (floor):                  {floor * 1000:8.1f} ms")
    print(f"outlook from scratch (first render after a start):   {scratch * 1000:8.1f} ms  ({scratch / floor:.1f}x floor)")
    print(f"outlook, store changed, no KPI input changed:        {warm * 1000:8.1f} ms  ({warm / floor:.2f}x floor)")
    print(f"outlook, one KPI's history changed:                  {one * 1000:8.1f} ms  ({one / floor:.2f}x floor)")
    print(f"render with the outlook remembered:                  {full * 1000:8.1f} ms  ({full / floor:.2f}x floor)")
    print(f"scrape of an unchanged store (marker + bytes):       {scrape * 1000:8.2f} ms")


if __name__ == "__main__":
    main()
