"""Benchmark: the customer-value models.

    python benchmarks/bench_clv.py                       # fit times on the CDNOW sample (tests/data/cdnow)
    python benchmarks/bench_clv.py --demo crm.sqlite     # the shared fit on a demo database, vs its raw SQL

With ``--demo`` (a SQLite demo made by ``crmmetrics demo`` or ``generate_demo``, as of
``--as-of``), it computes the BG/NBD + Gamma-Gamma fit that the CLV KPIs share
(:func:`crmmetrics.kpi.customer_value.customer_values`, in a new run cache each time), captures every
SQL statement it sends, replays them with plain ``sqlite3`` (the floor: the inputs, fetched as
tuples) and prints both and their ratio, with the Python steps broken down.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from crmmetrics.kpi.clv import fit_bgnbd, fit_gamma_gamma, fit_sbg, rfm_summary

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "cdnow"
PARAMS = {"margin_share": 0.3, "horizon_months": 36, "annual_discount_rate": 0.10}


def timed(function, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cdnow() -> None:
    raw = np.loadtxt(DATA / "CDNOW_sample.txt", dtype=str)
    days = np.array([f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in raw[:, 2]], dtype="datetime64[D]")
    summary = rfm_summary(raw[:, 1].astype(int), days, raw[:, 4].astype(float), calibration_end="1997-09-30")
    print(f"customers: {summary.ids.size:,}")
    print(f"BG/NBD fit:      {timed(lambda: fit_bgnbd(summary.x, summary.t_x, summary.T)) * 1000:7.1f} ms")
    print(f"Gamma-Gamma fit: {timed(lambda: fit_gamma_gamma(summary.x, summary.mbar)) * 1000:7.1f} ms")
    survivors = [1000, 631, 468, 382, 326, 289, 262, 241]
    print(f"sBG fit:         {timed(lambda: fit_sbg(survivors)) * 1000:7.1f} ms")


def demo(path: Path, end: datetime, repeat: int) -> None:
    from sqlalchemy import create_engine, event

    from crmmetrics.core import schema
    from crmmetrics.core.definitions import ComputeContext
    from crmmetrics.core.periods import Period
    from crmmetrics.kpi import customer_value
    from crmmetrics.kpi.clv import clv_bgnbd_gg

    engine = create_engine(f"sqlite:///{path}")
    statements: list[tuple[str, object]] = []
    event.listen(engine, "before_cursor_execute", lambda c, cur, statement, params, ctx, many: statements.append((statement, params)))
    period = Period("current", end.replace(month=end.month - 1) if end.month > 1 else end.replace(year=end.year - 1, month=12), end)

    def crmmetrics_fit():
        statements.clear()
        with engine.connect() as connection:
            context = ComputeContext(connection=connection, tables=schema.TABLES, params=PARAMS, period=period, as_of=end, metric=None)
            return customer_value.customer_values(context)

    def floor():
        with sqlite3.connect(path) as raw:
            for statement, params in captured:
                raw.execute(statement, params).fetchall()

    values = crmmetrics_fit()
    captured = list(statements)
    ours, base = [], []
    for _ in range(repeat):  # interleaved, so that load on the machine hits both alike
        start = time.perf_counter()
        crmmetrics_fit()
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        floor()
        base.append(time.perf_counter() - start)
    ours_s, floor_s = statistics.median(ours), statistics.median(base)
    distinct = np.unique(np.column_stack([values.x, values.t_x, values.T]), axis=0).shape[0]
    print(f"demo {path.name}: {values.ids.size:,} customers with a purchase before {end:%Y-%m-%d}, "
          f"{distinct:,} distinct (x, t_x, T); {len(captured)} SQL statements; median of {repeat}")
    print(f"  shared fit (SQL + fits + per-customer outputs): {ours_s:7.2f} s")
    print(f"  floor: its SQL replayed with sqlite3:           {floor_s:7.2f} s")
    print(f"  ratio: {ours_s / floor_s:.2f}x the floor")
    x, t_x, T, mbar = values.x, values.t_x, values.T, values.mbar
    spending = mbar > 0
    month = 365.25 / 12 / 7
    print(f"  of which BG/NBD fit {timed(lambda: fit_bgnbd(x, t_x, T), 1):.2f} s, "
          f"Gamma-Gamma fit {timed(lambda: fit_gamma_gamma(x[spending], mbar[spending]), 1):.2f} s, "
          f"36-month CLV {timed(lambda: clv_bgnbd_gg(values.bgnbd, values.gamma_gamma, x, t_x, T, np.maximum(mbar, 0), horizon_periods=36, period_length=month, discount_rate=values.monthly_discount_rate, margin_share=values.margin_share), 1):.2f} s")
    print(f"  BG/NBD r={values.bgnbd.r:.4g} alpha={values.bgnbd.alpha:.4g} a={values.bgnbd.a:.4g} b={values.bgnbd.b:.4g}; "
          f"Gamma-Gamma p={values.gamma_gamma.p:.4g} q={values.gamma_gamma.q:.4g} gamma={values.gamma_gamma.gamma:.4g}; "
          f"total CLV {values.clv.sum():,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, help="a SQLite demo database")
    parser.add_argument("--end", default="2026-11-01", help="the period end (the demo's as-of day)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.demo is None:
        cdnow()
    else:
        demo(args.demo, datetime.fromisoformat(args.end), args.repeat)


if __name__ == "__main__":
    main()
