"""Back-test the forecast methods and the anomaly scores on the demo's KPI history.

Generates the demo (5,000 customers, seed 42, as of 2026-06-15), computes every built-in KPI
with a monthly or quarterly period as of the first day of each month (quarter) of the history,
through the real runner and store, so each value is that of the last complete month (quarter);
and the monthly ones also month-to-date as of the 16th (days 1-15). Then, per KPI total:

* :func:`crmmetrics.readers.forecast.backtest`: each method's one-step-ahead rolling-origin error;
* ``auto`` (:func:`crmmetrics.readers.forecast.forecast_next`, choosing its method on the history
  before each origin only) on the last 12 months / 4 quarters: its MASE and how often the 80%
  interval held the actual value;
* the period-end forecast (:func:`crmmetrics.readers.forecast.forecast_period_end`) from day 15 of
  each month and the earlier months, against the naive "the month ends where it stands";
* :func:`crmmetrics.readers.anomaly.score_history`: the share of scored months flagged.

Prints a Markdown summary (the figures in docs/scorecard.md). Takes several minutes:
``python scripts/backtest_forecasts.py [--customers N]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

import numpy as np

from crmmetrics.compute.plugins import get_plugin_manager
from crmmetrics.compute.registry import build_registry
from crmmetrics.data.demo import generate_demo
from crmmetrics.readers.anomaly import score_history
from crmmetrics.readers.forecast import METHODS, InsufficientHistory, backtest, forecast_next, forecast_period_end
from crmmetrics.testing import metric_history

AS_OF = date(2026, 6, 15)


def month_starts(first: date, last: date) -> list[datetime]:
    out, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        out.append(datetime(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def complete(series: list[float | None]) -> list[float] | None:
    return None if any(v is None for v in series) else [float(v) for v in series]


def compute_histories(args, monthly, quarterly, months, quarters):
    """The KPIs' totals: complete periods as of each month (quarter) start, and month-to-date
    (days 1-15) as of each 16th, through the real runner and store."""
    folder = Path(tempfile.mkdtemp(prefix="crmmetrics-backtest-"))
    url = f"sqlite:///{folder / 'crm.sqlite'}"
    clock = time.perf_counter()
    generate_demo(url, customers=args.customers, seed=args.seed, as_of=AS_OF)
    store = lambda name: f"sqlite:///{folder / name}"  # noqa: E731
    history = metric_history(url, monthly, months, store_url=store("m.sqlite"))
    history |= metric_history(url, quarterly, quarters, store_url=store("q.sqlite"))
    to_date = metric_history(
        url, monthly, [m.replace(day=16) for m in months[:-1]], store_url=store("mtd.sqlite"), period="month_to_date"
    )
    print(f"computed in {time.perf_counter() - clock:.0f} s: {len(monthly)} monthly KPIs x {len(months)} months, "
          f"{len(quarterly)} quarterly x {len(quarters)} quarters", file=sys.stderr)
    totals = lambda h: {key: [values.get(()) for values in rows] for key, rows in h.items()}  # noqa: E731
    return totals(history), totals(to_date)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--histories", type=Path, help="JSON file: load the KPI histories from it if it exists, else save them to it")
    args = parser.parse_args()
    registry = build_registry(get_plugin_manager(None))
    monthly = [d.key for d in registry if d.period == "month"]
    quarterly = [d.key for d in registry if d.period == "quarter"]
    direction = {d.key: str(d.direction) for d in registry}
    # the history starts 2023-06-15: the first complete month is July 2023, quarter Q3 2023
    months = month_starts(date(2023, 8, 1), date(2026, 6, 1))
    quarters = [m for m in months if m.month in (1, 4, 7, 10) and m >= datetime(2023, 10, 1)]
    if args.histories and args.histories.exists():
        saved = json.loads(args.histories.read_text())
        history, to_date = saved["history"], saved["to_date"]
    else:
        history, to_date = compute_histories(args, monthly, quarterly, months, quarters)
        if args.histories:
            args.histories.write_text(json.dumps({"history": history, "to_date": to_date}))

    per_method: dict[str, list[float]] = {m: [] for m in METHODS}
    wins: dict[str, int] = {m: 0 for m in METHODS}
    auto_mase, auto_hits, auto_n = [], 0, 0
    path_ratio, anomalies_flagged, anomalies_scored = [], 0, 0
    path_methods: dict[str, int] = {}
    kpis = {"month": 0, "quarter": 0}
    for key in monthly + quarterly:
        season, tail = (12, 12) if key in monthly else (4, 4)
        y = complete(history[key])
        if y is None or len(set(y)) < 3:
            continue  # a KPI without a value every period, or (almost) constant, has nothing to test
        kpis["month" if key in monthly else "quarter"] += 1
        try:
            results = backtest(y, season=season if len(y) > season + 2 else None)
        except InsufficientHistory:
            continue
        scored = [r for r in results if r.mase is not None]
        for r in scored:
            per_method[r.method].append(r.mase)
        if scored:
            wins[min(scored, key=lambda r: r.mase).method] += 1
        lag = season if len(y) > season else 1  # the MASE unit of backtest(): in-sample seasonal naive
        scale = float(np.mean(np.abs(np.array(y[lag:]) - np.array(y[:-lag]))))
        errors = []
        for k in range(len(y) - tail, len(y)):
            try:
                f = forecast_next(y[:k], season=season if k > season + 2 else None)
            except InsufficientHistory:
                continue
            errors.append(abs(y[k] - f.value))
            auto_hits += f.contains(y[k])
            auto_n += 1
        if errors and scale > 0:
            auto_mase.append(float(np.mean(errors)) / scale)
        if key in monthly:
            partial = to_date[key]
            final = y[: len(partial)]
            errs, naive = [], []
            for k in range(4, len(partial)):
                earlier = [(partial[j], final[j]) for j in range(k) if partial[j] is not None]
                if partial[k] is None or len(earlier) < 3:
                    continue
                forecast = forecast_period_end(partial[k], earlier)
                path_methods[forecast.method] = path_methods.get(forecast.method, 0) + 1
                errs.append(abs(final[k] - forecast.value))
                naive.append(abs(final[k] - partial[k]))
            if errs and np.mean(naive) > 0:
                path_ratio.append(float(np.mean(errs) / np.mean(naive)))
            flags = [s for s in score_history(y, direction=direction[key], season=12) if s]
            anomalies_scored += len(flags)
            anomalies_flagged += sum(s.anomalous for s in flags)
            for s in flags:
                if s.anomalous:
                    print(f"  anomaly: {key} {months[s.index - 1]:%Y-%m} value {s.value:.4g} expected {s.expected:.4g} "
                          f"score {s.score:+.1f}", file=sys.stderr)

    print(f"KPIs with a complete history: {kpis['month']} monthly ({len(months)} months), "
          f"{kpis['quarter']} quarterly ({len(quarters)} quarters)\n")
    print("| method | KPIs | median MASE | mean MASE | best on |")
    print("|---|---|---|---|---|")
    for method, values in per_method.items():
        if values:
            print(f"| {method} | {len(values)} | {statistics.median(values):.2f} | {statistics.mean(values):.2f} | {wins[method]} |")
    if auto_mase:
        print(f"| auto (chosen before each origin; last 12 months / 4 quarters) | {len(auto_mase)} | "
              f"{statistics.median(auto_mase):.2f} | {statistics.mean(auto_mase):.2f} | |")
    print(f"\n80% interval of auto held the actual value in {auto_hits} of {auto_n} forecasts ({auto_hits / max(auto_n, 1):.0%})")
    if path_ratio:
        better = sum(r < 0.95 for r in path_ratio)
        worse = sum(r > 1.05 for r in path_ratio)
        print(f"period-end forecast from day 15: MAE over that of 'the month ends where it stands', over "
              f"{len(path_ratio)} monthly KPIs: median {statistics.median(path_ratio):.2f}, best {min(path_ratio):.2f}, "
              f"worst {max(path_ratio):.2f}; better by 5% or more on {better}, worse by 5% or more on {worse} "
              f"(methods chosen: {path_methods})")
    print(f"anomaly flags on the demo's monthly totals: {anomalies_flagged} of {anomalies_scored} scored months "
          f"({anomalies_flagged / max(anomalies_scored, 1):.1%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
