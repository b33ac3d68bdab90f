"""Time backfilling 24 months of every enabled metric on a demo database.

    python benchmarks/bench_backfill.py --customers 100000 [--months 24]

Generates a demo (SQLite, in a temporary directory) as of --as-of, runs every metric once as
of that time (the floor: one live run of the catalogue), then backfills --months months and
prints the time, the periods per second and the ratio of the backfill to --months live runs:
near 1 means a backfilled period costs what a live run costs (it computes two periods too).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crmmetrics.compute.backfill import plan_backfill, run_backfill  # noqa: E402
from crmmetrics.core.config import parse_config  # noqa: E402
from crmmetrics.core.periods import _months_back  # noqa: E402
from crmmetrics.data.demo import generate_demo  # noqa: E402
from crmmetrics.serve.app import App  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2026, 6, 1))
    args = ap.parse_args(argv)
    as_of = dt.datetime.combine(args.as_of, dt.time())

    with tempfile.TemporaryDirectory() as tmp:
        source = f"sqlite:///{Path(tmp) / 'crm.sqlite'}"
        started = time.perf_counter()
        generate_demo(source, customers=args.customers, seed=args.seed, as_of=args.as_of)
        generated = time.perf_counter() - started
        config = parse_config(
            {"source": {"url": source}, "store": {"url": f"sqlite:///{Path(tmp) / 'store.sqlite'}"},
             "service": {"as_of": as_of}, "logging": {"level": "ERROR"}},
            None,
        )
        app = App.from_config(config)
        import logging

        logging.getLogger("crmmetrics").setLevel(logging.ERROR)
        keys = app.runner.enabled_keys()
        started = time.perf_counter()
        app.runner.run_all(keys)
        live = time.perf_counter() - started
        plan = plan_backfill(app.runner, keys, _months_back(as_of, args.months), as_of)
        started = time.perf_counter()
        runs = run_backfill(app.runner, plan)
        backfill = time.perf_counter() - started
        failed = sum(run.status != "success" for run in runs)
        app.store.engine.dispose()
        app.source.dispose()
    print(f"customers={args.customers:,} metrics={len(keys)} months={args.months}")
    print(f"demo generation           {generated:9.1f} s")
    print(f"one live run (floor)      {live:9.1f} s")
    print(f"backfill                  {backfill:9.1f} s  ({len(runs)} periods, {failed} failed, {len(plan.todo) and len(runs) / backfill:.1f} periods/s)")
    print(f"backfill / (months x live run) = {backfill / (args.months * live):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
