"""Benchmark: the whole built-in KPI catalogue on a demo database of N customers.

Generates the demo (SQLite, and with --engines the same demo into DuckDB too), then runs every
built-in metric once (current and previous period) through the real runner, and prints the
generation time, the catalogue's total, the slowest metrics and, for DuckDB, the ratio to SQLite
measured in the same run (the SQL-bound KPIs and the model-backed ones apart).

On SQLite it also measures the floor: every SQL statement the metrics sent to the source is
captured, and the distinct ones are replayed with plain ``sqlite3`` (fetching all rows as
tuples) right after the catalogue, each counted for the first metric that sent it. It prints
crmmetrics vs that floor for the whole catalogue, the SQL-bound KPIs and the model-backed ones.

    python benchmarks/bench_catalogue.py [--customers 100000] [--seed 42] [--engines sqlite,duckdb]
    python benchmarks/bench_catalogue.py --demo crm.sqlite --metrics model-backed   # an existing demo as of 2026-11-01
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

BUILTINS = "strategy_development,value_creation,multichannel_integration,information_management,performance_assessment"


#: The model-backed KPIs (BG/NBD, Gamma-Gamma fits in Python); the rest are SQL-bound.
MODEL_BACKED = ("vc_ltv_cac_ratio", "vc_clv_bgnbd_gg", "vc_expected_alive_customers", "vc_customer_equity",
                "vc_segment_clv", "im_clv_forecast_correlation", "im_clv_forecast_error")


def run_catalogue(source_url: str, directory: Path, as_of: date, keys: list[str] | None = None):
    """Run the metrics (all enabled ones by default) as ``crmmetrics run`` does, with a new store.

    Returns the runs, the total time and, per metric, the SQL statements it sent to the source."""
    from sqlalchemy import event

    from crmmetrics.app import App
    from crmmetrics.config import parse_config
    from crmmetrics.definitions import RunCache

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
    sent: dict[str, list[tuple[str, object]]] = {}
    running = [""]
    event.listen(app.source, "before_cursor_execute",
                 lambda conn, cursor, statement, params, context, many: sent[running[0]].append((statement, params)))
    runs = []
    run_cache = RunCache()  # one cache for the run, as Runner.run_all
    start = time.perf_counter()
    for key in keys or app.runner.enabled_keys():
        running[0] = key
        sent[key] = []
        runs.append(app.runner.run_metric(key, run_cache=run_cache))
    total = time.perf_counter() - start
    app.source.dispose()
    app.store.engine.dispose()
    return runs, total, sent


def replay(path: Path, sent: dict[str, list[tuple[str, object]]]) -> dict[str, float]:
    """Seconds per metric of its SQL replayed with sqlite3 (each distinct statement once, for the
    first metric that sent it): the floor."""
    seen: set[tuple[str, str]] = set()
    floor = {}
    with sqlite3.connect(path) as connection:
        for key, statements in sent.items():
            start = time.perf_counter()
            for statement, params in statements:
                identity = (statement, repr(params))
                if identity in seen or not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                    continue
                seen.add(identity)
                connection.execute(statement, params or ()).fetchall()
            floor[key] = time.perf_counter() - start
    return floor


def ratios(label: str, times: dict[str, float], floor: dict[str, float]) -> None:
    """crmmetrics vs the floor, for the whole set and its SQL-bound and model-backed parts."""
    groups = {"whole catalogue": list(times), "SQL-bound KPIs": [k for k in times if k not in MODEL_BACKED],
              "model-backed KPIs": [k for k in times if k in MODEL_BACKED]}
    for name, keys in groups.items():
        if keys:
            ours, base = sum(times[k] for k in keys), sum(floor[k] for k in keys)
            print(f"{label}: {name} ({len(keys)}): {ours:.1f} s vs {base:.1f} s: {ours / base:.2f}x the floor")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--engines", default="sqlite",
                        help="comma-separated: sqlite,duckdb (the same demo in each; SQLite is the floor of the others)")
    parser.add_argument("--demo", type=Path, help="an existing SQLite demo (as of 2026-11-01) instead of generating one; copied")
    parser.add_argument("--metrics", help="comma-separated keys, or 'model-backed' (default: the whole catalogue)")
    args = parser.parse_args()
    os.environ["CRMMETRICS_LOAD_PLUGINS"] = BUILTINS

    from crmmetrics.demo import generate_demo

    as_of = date(2026, 11, 1)
    engines = args.engines.split(",")
    keys = None if args.metrics is None else list(MODEL_BACKED) if args.metrics == "model-backed" else args.metrics.split(",")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for engine in engines:
            url = {"sqlite": f"sqlite:///{directory / 'crm.sqlite'}", "duckdb": f"duckdb:///{directory / 'crm.duckdb'}"}[engine]
            start = time.perf_counter()
            if args.demo is not None and engine == "sqlite":
                shutil.copy(args.demo, directory / "crm.sqlite")
                with sqlite3.connect(directory / "crm.sqlite") as connection:
                    rows = {"customers": connection.execute("SELECT count(*) FROM customers").fetchone()[0],
                            "orders": connection.execute("SELECT count(*) FROM orders").fetchone()[0]}
                what = f"demo {args.demo.name} ({rows['customers']:,} customers, {rows['orders']:,} orders)"
            else:
                rows = generate_demo(url, customers=args.customers, seed=args.seed, as_of=as_of)
                what = f"demo of {args.customers:,} customers, {sum(rows.values()):,} rows, generated in {time.perf_counter() - start:.1f} s"
            runs, total, sent = run_catalogue(url, directory, as_of, keys)
            results[engine] = times = {run.metric_key: run.duration_seconds for run in runs}
            failed = [run for run in runs if run.status != "success"]
            print(f"{engine}: {what}")
            print(f"{engine}: catalogue: {len(runs)} metrics ({len(failed)} failed), current + previous period, in {total:.1f} s")
            for run in sorted(runs, key=lambda r: -r.duration_seconds)[:8]:
                print(f"  {run.metric_key:36} {run.duration_seconds:6.2f} s")
            for run in failed:
                print(f"  FAILED {run.metric_key}: {run.error}")
            if engine == "sqlite":
                floor = replay(directory / "crm.sqlite", sent)
                ratios("sqlite vs its SQL replayed with sqlite3 (floor, same run)", times, floor)
                for key in [k for k in MODEL_BACKED if k in times]:
                    print(f"  {key:36} {times[key]:6.2f} s vs {floor[key]:6.2f} s")
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
