"""Time and peak memory of the demo data generator (goal at 1M customers: <= 120 s, <= 1 GiB).

    python benchmarks/bench_demo.py --customers 100000
    python benchmarks/bench_demo.py --customers 100000 --url postgresql+psycopg://user@host/db
    python benchmarks/bench_demo.py --customers 100000 --url duckdb:////tmp/demo.duckdb

Without --url it writes a fresh SQLite file in a temporary directory and deletes it afterwards.
The target must not hold CRM data (the generator refuses to overwrite).

Each measurement runs in a process of its own, so that its peak RSS is its own. The floor,
measured in the same run, is generating the same data without writing it (``_Demo.pieces``,
a block of customers at a time, each part dropped once made): the ratio says what writing costs
on top, in time and in memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GIB = 1024**3


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes


def _child(phase: str, url: str, customers: int, seed: int, as_of: dt.date) -> None:
    from crmmetrics.data import demo

    started = time.perf_counter()
    if phase == "build":  # the tables as generate_demo makes them, a block at a time, dropped
        from crmmetrics.core.schema import TABLES
        from crmmetrics.data.demo.columns import _rows

        counts = dict.fromkeys(TABLES, 0)
        for name, cols in demo._Demo(customers, seed, as_of).pieces():
            counts[name] += _rows(cols)
    else:
        counts = demo.generate_demo(url, customers=customers, seed=seed, as_of=as_of)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_rss": _peak_rss(), "counts": counts}))


def _measure(phase: str, url: str, args: argparse.Namespace) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", phase, "--url", url, "--customers", str(args.customers),
         "--seed", str(args.seed), "--as-of", args.as_of.isoformat()],
        check=True, capture_output=True, text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2025, 6, 1))
    ap.add_argument("--url", help="SQLAlchemy URL of an empty database (default: temp SQLite)")
    ap.add_argument("--child", choices=["build", "generate"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args.child, args.url, args.customers, args.seed, args.as_of)
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'demo.db'}"
        floor = _measure("build", url, args)
        full = _measure("generate", url, args)
        size = (Path(tmp) / "demo.db").stat().st_size if not args.url else None
    counts = full["counts"]
    rows = sum(counts.values())
    for name, n in counts.items():
        print(f"{name:28s} {n:>12,d}")
    print(f"{'total rows':28s} {rows:>12,d}")
    if size is not None:
        print(f"{'SQLite file':28s} {size / 1e6:>12,.1f} MB")
    engine = url.split(":", 1)[0]
    print(f"floor: generate, write nothing  {floor['seconds']:8.2f} s  peak RSS {floor['peak_rss'] / GIB:6.2f} GiB  "
          f"{rows / floor['seconds']:,.0f} rows/s")
    print(f"demo into {engine:22s} {full['seconds']:8.2f} s  peak RSS {full['peak_rss'] / GIB:6.2f} GiB  "
          f"{rows / full['seconds']:,.0f} rows/s")
    print(f"ratio to floor: time {full['seconds'] / floor['seconds']:.2f}x  peak RSS {full['peak_rss'] / floor['peak_rss']:.2f}x")
    print(f"ratio to goal (120 s, 1 GiB): time {full['seconds'] / 120:.2f}x  peak RSS {full['peak_rss'] / GIB:.2f}x")
    print(f"customers={args.customers} seconds={full['seconds']:.2f} rows_per_s={rows / full['seconds']:,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
