"""Benchmark: the whole built-in KPI catalogue on a demo database of N customers.

Generates the demo (SQLite, and with --engines the same demo into DuckDB too), then runs every
built-in metric once (current and previous period) through the real runner, and prints the
generation time, the catalogue's total, the slowest metrics and, for DuckDB, the ratio to SQLite
measured in the same run (the SQL-bound KPIs and the model-backed ones apart).

    python benchmarks/bench_catalogue.py [--customers 100000] [--seed 42] [--engines sqlite,duckdb]
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


def run_catalogue(source_url: str, directory: Path, as_of: date):
    from crmmetrics.core.config import parse_config
    from crmmetrics.serve.app import App

    name = source_url.split(":", 1)[0]
    config = parse_config(
        {
            "source": {"url": source_url},
            "store": {"url": f"sqlite:///{directory / f'store-{name}.sqlite'}"},
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
    args = parser.parse_args()
    os.environ["CRMMETRICS_LOAD_PLUGINS"] = BUILTINS

    from crmmetrics.data.demo import generate_demo

    as_of = date(2026, 11, 1)
    engines = args.engines.split(",")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for engine in engines:
            url = {"sqlite": f"sqlite:///{directory / 'crm.sqlite'}", "duckdb": f"duckdb:///{directory / 'crm.duckdb'}"}[engine]
            start = time.perf_counter()
            rows = generate_demo(url, customers=args.customers, seed=args.seed, as_of=as_of)
            generated = time.perf_counter() - start
            runs, total = run_catalogue(url, directory, as_of)
            results[engine] = {run.metric_key: run.duration_seconds for run in runs}
            failed = [run for run in runs if run.status != "success"]
            print(f"{engine}: demo of {args.customers:,} customers, {sum(rows.values()):,} rows, generated in {generated:.1f} s")
            print(f"{engine}: catalogue: {len(runs)} metrics ({len(failed)} failed), current + previous period, in {total:.1f} s")
            for run in sorted(runs, key=lambda r: -r.duration_seconds)[:8]:
                print(f"  {run.metric_key:36} {run.duration_seconds:6.2f} s")
            for run in failed:
                print(f"  FAILED {run.metric_key}: {run.error}")
    if "sqlite" in results:
        floor = results["sqlite"]
        for engine, times in results.items():
            if engine == "sqlite":
                continue
            sql_bound = [key for key in times if key not in MODEL_BACKED]
            print(f"{engine} / sqlite (floor, same run): whole catalogue {sum(times.values()) / sum(floor.values()):.2f}x, "
                  f"SQL-bound KPIs {sum(times[k] for k in sql_bound) / sum(floor[k] for k in sql_bound):.2f}x, "
                  f"model-backed {sum(times[k] for k in MODEL_BACKED) / sum(floor[k] for k in MODEL_BACKED):.2f}x")
            slower = sorted(sql_bound, key=lambda k: floor[k] / max(times[k], 1e-9))[:5]
            print("  least gain: " + ", ".join(f"{k} {times[k]:.2f} s vs {floor[k]:.2f} s" for k in slower))


if __name__ == "__main__":
    main()
