"""Benchmark: the whole built-in KPI catalogue on a demo database of N customers.

Generates the demo (SQLite), then runs every built-in metric once (current and previous period)
through the real runner, and prints the generation time, the catalogue's total, and the slowest
metrics.

    python benchmarks/bench_catalogue.py [--customers 100000] [--seed 42]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

BUILTINS = "strategy_development,value_creation,multichannel_integration,information_management,performance_assessment"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    os.environ["CRMMETRICS_LOAD_PLUGINS"] = BUILTINS

    from crmmetrics.app import App
    from crmmetrics.config import parse_config
    from crmmetrics.demo import generate_demo

    as_of = date(2026, 11, 1)
    with tempfile.TemporaryDirectory() as directory:
        crm = Path(directory) / "crm.sqlite"
        start = time.perf_counter()
        rows = generate_demo(f"sqlite:///{crm}", customers=args.customers, seed=args.seed, as_of=as_of)
        generated = time.perf_counter() - start
        config = parse_config(
            {
                "source": {"url": f"sqlite:///{crm}"},
                "store": {"url": f"sqlite:///{Path(directory) / 'store.sqlite'}"},
                "service": {"as_of": datetime(as_of.year, as_of.month, as_of.day)},
            },
            None,
        )
        app = App.from_config(config)
        start = time.perf_counter()
        runs = app.runner.run_all()
        total = time.perf_counter() - start
        failed = [run for run in runs if run.status != "success"]
        print(f"demo: {args.customers:,} customers, {sum(rows.values()):,} rows, generated in {generated:.1f} s")
        print(f"catalogue: {len(runs)} metrics ({len(failed)} failed), current + previous period, in {total:.1f} s")
        for run in sorted(runs, key=lambda r: -r.duration_seconds)[:8]:
            print(f"  {run.metric_key:36} {run.duration_seconds:6.2f} s")
        for run in failed:
            print(f"  FAILED {run.metric_key}: {run.error}")


if __name__ == "__main__":
    main()
