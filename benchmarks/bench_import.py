"""Import speed of ``crmmetrics import orders`` against ``sqlite3 .import`` (goal at 1M rows:
>= 100,000 rows/s and <= 3x the floor).

    python benchmarks/bench_import.py --rows 1000000

Writes an orders CSV of ``--rows`` rows (every column of ``orders``; campaign_id empty, cogs
empty on a tenth) for 100,000 customers, then imports
it twice into fresh SQLite files holding the canonical tables and the customers: with
``crmmetrics.data.importer.import_csv`` (typed, validated, all or nothing) and, as the floor measured in
the same run, with the sqlite3 command-line shell's ``.import --csv`` into the same table (no
checks, values stored as the text the file holds where the column affinity allows). A second
floor imports into a bare table of the same columns without the canonical table's four indexes,
to show what maintaining the indexes costs either way.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine  # noqa: E402

from crmmetrics.core import schema  # noqa: E402
from crmmetrics.data.importer import import_csv  # noqa: E402

CUSTOMERS = 100_000


def write_orders(path: Path, rows: int) -> None:
    rng = random.Random(7)
    start = dt.datetime(2023, 1, 1)
    with open(path, "w", newline="") as stream:
        out = csv.writer(stream)
        # every column of orders in table order, so that the sqlite3 shell's .import fills the same table
        out.writerow(["order_id", "customer_id", "ordered_at", "channel_id", "campaign_id", "gross_revenue", "discount",
                      "net_revenue", "cogs", "returned_amount"])
        for order_id in range(1, rows + 1):
            gross = round(rng.uniform(5, 500), 2)
            discount = round(gross * rng.choice((0, 0, 0, 0.1)), 2)
            net = round(gross - discount, 2)
            cogs = "" if rng.random() < 0.1 else round(net * 0.6, 2)
            at = start + dt.timedelta(seconds=rng.randrange(3 * 365 * 86400))
            out.writerow([order_id, rng.randint(1, CUSTOMERS), at.isoformat(sep=" "), rng.randint(1, 9), "", gross,
                          discount, net, cogs, 0])


def fresh_database(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = create_engine(url)
    schema.create_tables(engine)
    with engine.begin() as connection:
        connection.execute(schema.channels.insert(), [{"channel_id": i, "name": f"c{i}", "category": "outlets"} for i in range(1, 10)])
        connection.execute(schema.customers.insert(), [{"customer_id": i} for i in range(1, CUSTOMERS + 1)])
    engine.dispose()
    return url


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        orders = directory / "orders.csv"
        write_orders(orders, args.rows)
        floor_db = directory / "floor.sqlite"
        fresh_database(floor_db)
        started = time.perf_counter()
        shell = subprocess.run(["sqlite3", str(floor_db), ".import --csv --skip 1 " + str(orders) + " orders"],
                               check=True, capture_output=True, text=True)
        assert not shell.stderr, shell.stderr[:500]
        floor = time.perf_counter() - started
        bare_db = directory / "bare.sqlite"
        subprocess.run(["sqlite3", str(bare_db), "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer_id BIGINT, "
                        "ordered_at DATETIME, channel_id INTEGER, campaign_id INTEGER, gross_revenue FLOAT, discount FLOAT, "
                        "net_revenue FLOAT, cogs FLOAT, returned_amount FLOAT)"], check=True)
        started = time.perf_counter()
        subprocess.run(["sqlite3", str(bare_db), ".import --csv --skip 1 " + str(orders) + " orders"], check=True)
        bare = time.perf_counter() - started
        url = fresh_database(directory / "crm.sqlite")
        started = time.perf_counter()
        result = import_csv(url, "orders", orders)
        seconds = time.perf_counter() - started
        assert result.rows_imported == args.rows, result
    print(f"rows={args.rows:,}  (orders CSV {orders.name}, {CUSTOMERS:,} customers)")
    print(f"floor: sqlite3 .import         {floor:8.2f} s  {args.rows / floor:>12,.0f} rows/s")
    print(f"floor: sqlite3 .import, bare   {bare:8.2f} s  {args.rows / bare:>12,.0f} rows/s  (no indexes)")
    print(f"crmmetrics import orders       {seconds:8.2f} s  {args.rows / seconds:>12,.0f} rows/s")
    print(f"ratio to floor: {seconds / floor:.2f}x same table (goal <= 3x), {seconds / bare:.2f}x bare table; "
          f"rows/s to goal (100,000): {args.rows / seconds / 100_000:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
