"""Benchmark: what the period-end forecast of to-date KPIs costs, against the store's size.

Builds a store with one month-to-date KPI (``pa_revenue_per_employee``) run hourly, as the
default schedule does, for ``--months`` months (24: 17,500 runs, the default retention keeps
about that many) with ``--dims`` values of a dimension per run besides the total, then times:

* the floor: the scorecard read (every KPI's latest value: what every render reads anyway);
* the same-point read of the to-date KPI (``Store.period_points``: one query, the runs in the
  windows near the same point and the end of each earlier month);
* the outlook of the scorecard from scratch (that read, the pairing and the forecast).

Each at twice the months too, so that the growth with the runs kept shows. Prints the figures
and their ratios to the floor.

    python benchmarks/bench_outlook_to_date.py [--months 24] [--dims 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from crmmetrics.compute.plugins import get_plugin_manager
from crmmetrics.compute.registry import build_registry
from crmmetrics.core.standard import StandardDefault
from crmmetrics.readers.outlook import OutlookCache, _store_windows, _to_date_windows
from crmmetrics.readers.scorecard import build_scorecard
from crmmetrics.store.standards import record_defaults
from crmmetrics.store.store import MetricRunTotals, Observation, Run, Store

METRIC = "pa_revenue_per_employee"


def timed(function, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build(path: Path, months: int, dims: int) -> tuple[Store, datetime]:
    store = Store(f"sqlite:///{path}")
    registry = build_registry(get_plugin_manager())
    store.record_definitions(registry, registry.plugin_of)
    record_defaults(store, {(METRIC, "{}"): (StandardDefault(METRIC, target=1250.0, red=1200.0, green=1245.0), "bench")})
    now = datetime(2026, 3, 16, 12, 15)
    first = datetime(2026 - (months + 10) // 12, (3 - months - 1) % 12 + 1, 1)
    runs, observations = [], []
    moment, run_id = first + timedelta(minutes=15), 0
    while moment <= now:
        run_id += 1
        start = moment.replace(day=1, hour=0, minute=0)
        runs.append({"id": run_id, "metric_key": METRIC, "plugin": "bench", "started_at": moment, "finished_at": moment,
                     "duration_seconds": 1.0, "status": "success", "period": "month_to_date", "rows": 0, "owner": ""})
        share = (moment - start) / timedelta(days=30)
        for d in range(dims + 1):
            observations.append({"run_id": run_id, "metric_key": METRIC, "dimensions": "{}" if d == 0 else f'{{"segment":"s{d}"}}',
                                 "period_label": "current", "period_start": start, "period_end": moment,
                                 "value": 1000.0 * share + d, "computed_at": moment})
        moment += timedelta(hours=1)
    with store.engine.begin() as connection:
        connection.execute(insert(Run.__table__), runs)
        for i in range(0, len(observations), 20000):
            connection.execute(insert(Observation.__table__), observations[i:i + 20000])
        connection.execute(insert(MetricRunTotals.__table__), [{"metric_key": METRIC, "runs": run_id, "failures": 0,
                                                                 "last_run_id": run_id, "last_success_run_id": run_id}])
    return store, now


def measure(months: int, dims: int, directory: Path) -> tuple[int, float, float, float, int]:
    store, now = build(directory / f"store-{months}.sqlite", months, dims)
    try:
        scorecard = build_scorecard(store)
        kpi = next(k for k in scorecard.kpis if k.metric == METRIC)
        _running, _elapsed, windows = _to_date_windows("month_to_date", kpi.period_start, kpi.period_end)
        floor = timed(lambda: build_scorecard(store))
        read = timed(lambda: store.period_points(METRIC, ["month_to_date", "month"], _store_windows(windows), ["{}"]))
        outlook = timed(lambda: OutlookCache().build(store, build_scorecard(store), chain=False))
        result = OutlookCache().build(store, scorecard, chain=False).of(kpi)
        assert result.pacing is not None, result.forecast_reason
        runs = store.engine.connect().exec_driver_sql("SELECT count(*) FROM runs").scalar_one()
        return runs, floor, read, outlook, result.history
    finally:
        store.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--dims", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        print(f"{'months':>6} {'runs':>7} {'floor (scorecard)':>18} {'same-point read':>16} {'outlook':>10} {'periods':>8}")
        for months in (args.months, 2 * args.months):
            runs, floor, read, outlook, periods = measure(months, args.dims, Path(directory))
            print(f"{months:>6} {runs:>7} {floor * 1000:>15.1f} ms {read * 1000:>10.1f} ms {read / floor:>4.1f}x "
                  f"{outlook * 1000:>7.1f} ms {outlook / floor:>4.1f}x {periods:>4}")


if __name__ == "__main__":
    main()
