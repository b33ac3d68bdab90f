"""Benchmark: the whole built-in KPI catalogue on a demo database of N customers.

Generates the demo (SQLite, and with --engines the same demo into DuckDB too), then runs every
built-in metric once (current and previous period) through the real runner, and prints the
generation time, the catalogue's total, the slowest metrics and, for DuckDB, the ratio to SQLite
measured in the same run (the SQL-bound KPIs and the model-backed ones apart).

    python benchmarks/bench_catalogue.py [--customers 100000] [--seed 42] [--engines sqlite,duckdb]
    python benchmarks/bench_catalogue.py --engines sqlite,duckdb --demo-dir DIR --rounds 2

``--demo-dir`` uses existing demos (as of 2026-11-01) named ``d1m.sqlite`` and ``d1m.duckdb`` in
DIR instead of generating them (a million customers take about a minute each). ``--rounds N``
runs each engine's catalogue N times, each on a new store, alternating the engines, and keeps
each metric's fastest run: one round can put one engine at a busy moment of the machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

BUILTINS = "strategy_development,value_creation,multichannel_integration,information_management,performance_assessment"


#: The model-backed KPIs (BG/NBD, Gamma-Gamma fits in Python); the rest are SQL-bound.
MODEL_BACKED = ("vc_ltv_cac_ratio", "vc_clv_bgnbd_gg", "vc_expected_alive_customers", "vc_customer_equity",
                "vc_segment_clv", "im_clv_forecast_correlation", "im_clv_forecast_error")


def run_catalogue(source_url: str, directory: Path, as_of: date, store_name: str = ""):
    from crmmetrics.core.config import parse_config
    from crmmetrics.serve.app import App

    name = source_url.split(":", 1)[0]
    config = parse_config(
        {
            "source": {"url": source_url},
            "store": {"url": f"sqlite:///{directory / f'store-{name}{store_name}.sqlite'}"},
            "service": {"as_of": datetime(as_of.year, as_of.month, as_of.day)},
        },
        None,
    )
    app = App.from_config(config)
    start = time.perf_counter()
    runs = app.runner.run_all()
    total = time.perf_counter() - start
    app.source.dispose()
    app.store.engine.dispose()
    return runs, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--engines", default="sqlite",
                        help="comma-separated: sqlite,duckdb (the same demo in each; SQLite is the floor of the others)")
    parser.add_argument("--demo-dir", type=Path, help="existing demos d1m.sqlite and d1m.duckdb, as of 2026-11-01")
    parser.add_argument("--rounds", type=int, default=1, metavar="N", help="runs per engine, engines alternating (default 1)")
    args = parser.parse_args()
    os.environ["CRMMETRICS_LOAD_PLUGINS"] = BUILTINS

    from crmmetrics.data.demo import generate_demo

    as_of = date(2026, 11, 1)
    engines = args.engines.split(",")
    results: dict[str, dict[str, float]] = {}
    walls: dict[str, float] = {}  # each engine's fastest round, wall time (the store's writes included)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        urls = {}
        for engine in engines:
            if args.demo_dir is not None:
                urls[engine] = f"{engine}:///{(args.demo_dir / f'd1m.{engine}').resolve()}"
                print(f"{engine}: demo {args.demo_dir / f'd1m.{engine}'}")
                continue
            urls[engine] = {"sqlite": f"sqlite:///{directory / 'crm.sqlite'}", "duckdb": f"duckdb:///{directory / 'crm.duckdb'}"}[engine]
            start = time.perf_counter()
            rows = generate_demo(urls[engine], customers=args.customers, seed=args.seed, as_of=as_of)
            print(f"{engine}: demo of {args.customers:,} customers, {sum(rows.values()):,} rows, "
                  f"generated in {time.perf_counter() - start:.1f} s")
        for round_number in range(args.rounds):
            for engine in engines:
                runs, total = run_catalogue(urls[engine], directory, as_of, f"-{round_number}")
                fastest = results.setdefault(engine, {})
                walls[engine] = min(total, walls.get(engine, total))
                for run in runs:
                    fastest[run.metric_key] = min(run.duration_seconds, fastest.get(run.metric_key, run.duration_seconds))
                failed = [run for run in runs if run.status != "success"]
                print(f"{engine}: round {round_number + 1}: catalogue: {len(runs)} metrics ({len(failed)} failed), "
                      f"current + previous period, in {total:.1f} s (metrics' durations {sum(r.duration_seconds for r in runs):.1f} s)")
                for run in sorted(runs, key=lambda r: -r.duration_seconds)[:8]:
                    print(f"  {run.metric_key:36} {run.duration_seconds:6.2f} s")
                for run in failed:
                    print(f"  FAILED {run.metric_key}: {run.error}")
    if args.rounds > 1:
        for engine, times in results.items():
            print(f"{engine}: each metric's fastest of {args.rounds} rounds: {sum(times.values()):.1f} s")
    if "sqlite" in results:
        floor = results["sqlite"]
        for engine, times in results.items():
            if engine == "sqlite":
                continue
            sql_bound = [key for key in times if key not in MODEL_BACKED]
            print(f"{engine} / sqlite (floor, same run): whole catalogue {sum(times.values()) / sum(floor.values()):.3f}x "
                  f"by the metrics' durations, {walls[engine] / walls['sqlite']:.3f}x by wall time (fastest rounds, "
                  f"{walls[engine]:.1f} s / {walls['sqlite']:.1f} s), "
                  f"SQL-bound KPIs {sum(times[k] for k in sql_bound) / sum(floor[k] for k in sql_bound):.3f}x, "
                  f"model-backed {sum(times[k] for k in MODEL_BACKED) / sum(floor[k] for k in MODEL_BACKED):.3f}x")
            slower = sorted(sql_bound, key=lambda k: floor[k] / max(times[k], 1e-9))[:5]
            print("  least gain: " + ", ".join(f"{k} {times[k]:.2f} s vs {floor[k]:.2f} s" for k in slower))
            print("  model-backed: " + ", ".join(f"{k} {times[k]:.2f} s vs {floor[k]:.2f} s" for k in MODEL_BACKED))


if __name__ == "__main__":
    main()
