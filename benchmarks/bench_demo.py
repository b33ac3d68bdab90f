"""Time the demo data generator.

    python benchmarks/bench_demo.py --customers 100000
    python benchmarks/bench_demo.py --customers 100000 --url postgresql+psycopg://user@host/db

Without --url it writes a fresh SQLite file in a temporary directory and deletes it afterwards.
The target must not hold CRM data (the generator refuses to overwrite).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crmmetrics.demo import generate_demo  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2025, 6, 1))
    ap.add_argument("--url", help="SQLAlchemy URL of an empty database (default: temp SQLite)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'demo.db'}"
        started = time.perf_counter()
        counts = generate_demo(url, customers=args.customers, seed=args.seed, as_of=args.as_of)
        seconds = time.perf_counter() - started
        size = (Path(tmp) / "demo.db").stat().st_size if not args.url else None
    rows = sum(counts.values())
    for name, n in counts.items():
        print(f"{name:28s} {n:>12,d}")
    print(f"{'total rows':28s} {rows:>12,d}")
    if size is not None:
        print(f"{'SQLite file':28s} {size / 1e6:>12,.1f} MB")
    print(f"customers={args.customers} seconds={seconds:.2f} rows_per_s={rows / seconds:,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
