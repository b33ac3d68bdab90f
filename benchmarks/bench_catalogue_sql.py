"""Benchmark: the whole built-in catalogue against its own SQL replayed raw, on SQLite and PostgreSQL.

Generates the demo of N customers into each engine, runs every built-in metric once (current and
previous period, one run cache, as ``crmmetrics run`` does) while capturing every statement it
sends to the source, then replays each distinct (statement, parameters) once on the engine's raw
DBAPI connection, fetching every row: that replay is the floor, measured in the same run. Prints
crmmetrics' time against the floor for the whole catalogue, the SQL-bound KPIs and the
model-backed ones, the metrics furthest above their floor, and PostgreSQL against SQLite.

    python benchmarks/bench_catalogue_sql.py [--customers 100000] [--engines sqlite,postgresql]
    python benchmarks/bench_catalogue_sql.py --engines sqlite --demo crm.sqlite --metrics model-backed
    python benchmarks/bench_catalogue_sql.py --engines sqlite --demo crm.sqlite --top-statements 40

``--demo`` uses an existing SQLite demo (as of 2026-11-01) instead of generating one (a
million-customer demo takes minutes to generate); ``--metrics`` runs only the given keys, or the
model-backed ones; ``--top-statements N`` also prints the N slowest distinct statements of the
replay, each with the metric that sent it (where the floor itself goes), and the costliest
statements sent more than once (what crmmetrics pays again and the floor counts once).
``--rounds N`` runs the catalogue and its replay N times, each round on a new store (so that
every round computes the same periods and sends the same statements), and compares each
metric's fastest run with its fastest replay: on a machine whose load or page cache moves
during a run, one round can put crmmetrics or the floor at the bad moment.

PostgreSQL is a throw-away server on loopback (started as the tests start theirs).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_catalogue import BUILTINS, MODEL_BACKED  # noqa: E402


def catalogue_with_its_sql(source_url: str, directory: Path, as_of: date, keys: list[str] | None = None, store_name: str = ""):
    """Each metric's seconds, and the statements it sent in order: (metric, statement, parameters)."""
    from sqlalchemy import event

    from crmmetrics.core.config import parse_config
    from crmmetrics.core.definitions import RunCache
    from crmmetrics.serve.app import App

    name = source_url.split(":", 1)[0].split("+")[0]
    config = parse_config(
        {
            "source": {"url": source_url},
            "store": {"url": f"sqlite:///{directory / f'store-{name}{store_name}.sqlite'}"},
            "service": {"as_of": datetime(as_of.year, as_of.month, as_of.day)},
        },
        None,
    )
    app = App.from_config(config)
    runner = app.runner
    current = [None]
    statements: list[tuple[str, str, object]] = []

    @event.listens_for(app.source, "before_cursor_execute")
    def capture(_conn, _cursor, statement, parameters, _context, executemany):
        if not executemany:
            statements.append((current[0], statement, parameters))

    seconds: dict[str, float] = {}
    failed = []
    cache = RunCache()
    for key in keys or runner.enabled_keys():
        current[0] = key
        started = time.perf_counter()
        run = runner.run_metric(key, run_cache=cache)
        seconds[key] = time.perf_counter() - started
        if run.status != "success":
            failed.append((key, run.error))
    event.remove(app.source, "before_cursor_execute", capture)
    return app, seconds, statements, failed


def replay(engine, statements, slowest: list | None = None, repeats: list | None = None) -> dict[str, float]:
    """Each distinct statement once on the raw DBAPI connection, its time charged to the first
    metric that sent it; ``slowest`` collects (seconds, metric, statement) for each, ``repeats``
    (seconds, times sent again, metrics) for each statement sent more than once: what sending it
    again costs crmmetrics but not the floor."""
    floor: dict[str, float] = {}
    seen: dict[tuple[str, str], float] = {}
    raw = engine.raw_connection()
    try:
        for metric, statement, parameters in statements:
            key = (statement, repr(parameters))
            if key in seen:
                continue
            cursor = raw.cursor()
            started = time.perf_counter()
            cursor.execute(statement, parameters)
            if cursor.description is not None:
                cursor.fetchall()
            elapsed = time.perf_counter() - started
            floor[metric] = floor.get(metric, 0.0) + elapsed
            seen[key] = elapsed
            if slowest is not None:
                slowest.append((elapsed, metric, statement))
            cursor.close()
        raw.rollback()
    finally:
        raw.close()
    if repeats is not None:
        senders: dict[tuple[str, str], list[str]] = {}
        for metric, statement, parameters in statements:
            senders.setdefault((statement, repr(parameters)), []).append(metric)
        repeats.extend((seen[key] * (len(metrics) - 1), len(metrics) - 1, sorted(set(metrics)), key[0])
                       for key, metrics in senders.items() if len(metrics) > 1)
    return floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--demo", type=Path, help="an existing SQLite demo as of 2026-11-01 (with --engines sqlite)")
    parser.add_argument("--top-statements", type=int, default=0, metavar="N",
                        help="also print the N slowest distinct statements of the replay")
    parser.add_argument("--metrics", help="comma-separated keys, or 'model-backed' (default: the whole catalogue)")
    parser.add_argument("--rounds", type=int, default=1, metavar="N",
                        help="run and replay N times, each on a new store; compare the fastest of each (default 1)")
    args = parser.parse_args()
    keys = None if args.metrics is None else list(MODEL_BACKED) if args.metrics == "model-backed" else args.metrics.split(",")
    os.environ["CRMMETRICS_LOAD_PLUGINS"] = BUILTINS
    from crmmetrics.data.demo import generate_demo

    as_of = date(2026, 11, 1)
    totals = {}
    server = None
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        try:
            for engine_name in args.engines.split(","):
                if engine_name == "sqlite" and args.demo is not None:
                    url = f"sqlite:///{args.demo.resolve()}"
                elif engine_name == "sqlite":
                    url = f"sqlite:///{directory / 'crm.sqlite'}"
                elif engine_name == "postgresql":
                    from tests.support.servers import PostgresServer

                    server = PostgresServer()
                    server.start()
                    url = server.url()
                else:
                    raise SystemExit(f"--engines: {engine_name!r} is not sqlite or postgresql")
                if engine_name == "sqlite" and args.demo is not None:
                    print(f"{engine_name}: demo {args.demo}")
                else:
                    started = time.perf_counter()
                    rows = generate_demo(url, customers=args.customers, seed=args.seed, as_of=as_of)
                    print(f"{engine_name}: demo of {args.customers:,} customers, {sum(rows.values()):,} rows, "
                          f"generated in {time.perf_counter() - started:.1f} s")
                seconds, floor = {}, {}
                for round_number in range(args.rounds):
                    app, ran, statements, failed = catalogue_with_its_sql(url, directory, as_of, keys, f"-{round_number}")
                    slowest: list = []
                    repeats: list = []
                    replayed = replay(app.source, statements, slowest, repeats)
                    app.source.dispose()
                    app.store.engine.dispose()
                    if args.rounds > 1:
                        print(f"{engine_name}: round {round_number + 1}: {sum(ran.values()):.1f} s vs raw SQL "
                              f"{sum(replayed.values()):.1f} s = {sum(ran.values()) / sum(replayed.values()):.2f}x")
                    for key, value in ran.items():
                        seconds[key] = min(value, seconds.get(key, value))
                    for key, value in replayed.items():
                        floor[key] = min(value, floor.get(key, value))
                totals[engine_name] = seconds
                if args.rounds > 1:
                    print(f"{engine_name}: each metric's fastest of {args.rounds} rounds against its fastest replay:")
                report(engine_name, seconds, floor, statements, failed)
                print(f"{engine_name}: statements sent again (by the same or another metric): {sum(r[1] for r in repeats)}, "
                      f"{sum(r[0] for r in repeats):.1f} s of replay that the floor counts once")
                for elapsed, metric, statement in sorted(slowest, reverse=True)[: args.top_statements]:
                    print(f"  {elapsed:7.2f} s  {metric:32} {' '.join(statement.split())[:160]}")
                for cost, again, metrics, statement in sorted(repeats, reverse=True)[: args.top_statements and 8]:
                    print(f"  again {again}x {cost:6.2f} s  {','.join(metrics)[:60]:60} {' '.join(statement.split())[:100]}")
        finally:
            if server is not None:
                server.stop()
    if "sqlite" in totals and "postgresql" in totals:
        pg, lite = totals["postgresql"], totals["sqlite"]
        print(f"postgresql / sqlite (floor, same run): whole catalogue {sum(pg.values()):.1f} s / {sum(lite.values()):.1f} s "
              f"= {sum(pg.values()) / sum(lite.values()):.2f}x (goal <= 1.0x at 100,000 customers)")


def report(engine: str, seconds: dict[str, float], floor: dict[str, float], statements, failed) -> None:
    def ratio(keys) -> str:
        ours, raw = sum(seconds[k] for k in keys), sum(floor.get(k, 0.0) for k in keys)
        return f"{ours:.1f} s vs raw SQL {raw:.1f} s = {ours / raw:.2f}x" if raw else f"{ours:.1f} s (no SQL)"

    sql_bound = [k for k in seconds if k not in MODEL_BACKED]
    model = [k for k in seconds if k in MODEL_BACKED]
    distinct = len({(s, repr(p)) for _m, s, p in statements})
    print(f"{engine}: {len(seconds)} metrics ({len(failed)} failed), {len(statements)} statements ({distinct} distinct)")
    print(f"{engine}: whole catalogue {ratio(list(seconds))} (goal <= 1.10x)")
    print(f"{engine}: SQL-bound KPIs  {ratio(sql_bound)}")
    print(f"{engine}: model-backed    {ratio(model)} (goal <= 1.5x)")
    above = sorted(seconds, key=lambda k: floor.get(k, 0.0) - seconds[k])[:8]
    for key in above:
        print(f"  {key:36} {seconds[key]:7.2f} s  raw SQL {floor.get(key, 0.0):7.2f} s")
    for key, error in failed:
        print(f"  FAILED {key}: {error}")


if __name__ == "__main__":
    main()
