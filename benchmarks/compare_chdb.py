"""Compare: the whole built-in KPI catalogue on ClickHouse's in-process engine (chdb) against SQLite.

Generates the same demo (default: the test suite's fixture, 400 customers, seed 7, as of
2026-06-15) into SQLite and into chdb (``generate_demo`` with a ``chdb:///`` URL, which writes
through the demo's generic SQLAlchemy Core loader into MergeTree tables), runs every built-in
metric once (current and previous period) through the real runner on each, and prints per
metric: same, differs (the first differing values, SQLite's then chdb's) or fails (chdb's
error, one line), the totals, and the catalogue's time on chdb against SQLite's in the same run
(the floor). crmmetrics opens a chdb source with the settings that make ClickHouse's SQL
standard and the session read-only (``crmmetrics.data.engines.CHDB_SETTINGS``, ``readonly``
last); ``--settings`` adds others (``NAME=VALUE,...``, passed as chdb-sqlalchemy's
``?settings=NAME=VALUE``).

    pip install 'crmmetrics[clickhouse]'   # chdb 4.4.0, chdb-core 26.9.0, chdb-sqlalchemy 0.2.1
    python benchmarks/compare_chdb.py [--customers 400] [--seed 7] [--as-of 2026-06-15] [--settings A=1,B=1]

Found with it (chdb 4.4.0, chdb-core 26.9.0, chdb-sqlalchemy 0.2.1, SQLAlchemy 2.1.9): without
the settings 8 of the 61 metrics ran (``CAST(... AS Int64)`` of a NULL amount in the
closed-period fingerprint fails), with ``cast_keep_nullable`` 58 ran and 28 differed (outer
joins fill unmatched columns with 0 or '' unless ``join_use_nulls``); with both, two KPIs still
failed or differed because of correlated subqueries (``im_crm_adoption_rate``: a correlated
EXISTS inside ``sum()``, which ClickHouse cannot run; ``mci_self_service_containment``: in a
subquery ``FROM interactions AS assisted`` ClickHouse bound the outer ``interactions.started_at``
to the inner table) and one because chdb-sqlalchemy 0.2.1 sends SQLAlchemy's ``a // b`` as
ClickHouse's exact ``a / b`` (``div_is_floordiv``; the RFM scores, now ranked in numpy). Both
KPIs now send uncorrelated ``IN`` subqueries: all 61 run and agree with SQLite
(tests/test_demo.py checks it on every run of the suite).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

BUILTINS = "strategy_development,value_creation,multichannel_integration,information_management,performance_assessment"


def catalogue(source_url: str, store: Path, as_of: date) -> tuple[dict[str, str | None], dict]:
    """Every built-in metric's error (None: it ran) and stored values {metric: {(period, dimensions): value}}."""
    from crmmetrics.core.config import parse_config
    from crmmetrics.serve.app import App

    config = parse_config({"source": {"url": source_url}, "store": {"url": f"sqlite:///{store}"},
                           "service": {"as_of": datetime(as_of.year, as_of.month, as_of.day)}}, None)
    app = App.from_config(config)
    try:
        errors = {run.metric_key: None if run.status == "success" else str(run.error) for run in app.runner.run_all()}
        values: dict[str, dict] = {}
        for o in app.store.latest_observations():
            values.setdefault(o.metric_key, {})[(o.period_label, tuple(sorted(o.dimensions.items())))] = o.value
    finally:
        app.source.dispose()
        app.store.engine.dispose()
    return errors, values


def same(a: float | None, b: float | None) -> bool:
    return a is b if a is None or b is None else math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def compare(expected: dict, errors: dict, got: dict, title: str) -> None:
    counts = {"same": 0, "differs": 0, "fails": 0}
    print(f"--- {title}")
    for metric in sorted(errors):
        if errors[metric] is not None:
            counts["fails"] += 1
            print(f"  fails    {metric}: {errors[metric].strip().splitlines()[0][:240]}")
            continue
        mine, theirs = expected.get(metric, {}), got.get(metric, {})
        keys = sorted(set(mine) | set(theirs), key=repr)
        differing = [k for k in keys if k not in mine or k not in theirs or not same(mine[k], theirs[k])]
        counts["differs" if differing else "same"] += 1
        if differing:
            shown = "; ".join(f"{k[0]} {dict(k[1]) or ''} {mine.get(k, 'absent')} vs {theirs.get(k, 'absent')}"
                              for k in differing[:3])
            print(f"  differs  {metric} ({len(differing)} of {len(keys)} values): {shown}")
        else:
            print(f"  same     {metric} ({len(keys)} values)")
    print(f"{title}: {len(errors)} metrics, {counts['same'] + counts['differs']} run, {counts['fails']} fail; "
          f"{counts['same']} same as SQLite, {counts['differs']} differ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 6, 15))
    parser.add_argument("--settings", default="", help="comma-separated NAME=VALUE, besides crmmetrics' own")
    args = parser.parse_args()
    os.environ["CRMMETRICS_LOAD_PLUGINS"] = BUILTINS
    logging.getLogger("crmmetrics").setLevel(logging.CRITICAL)  # the runner's line per failed run

    from crmmetrics.data.demo import generate_demo

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        sqlite, chdb = f"sqlite:///{directory / 'crm.sqlite'}", f"chdb:///{directory / 'crm.chdb'}"
        for url in (sqlite, chdb):
            generate_demo(url, customers=args.customers, seed=args.seed, as_of=args.as_of)
        started = time.perf_counter()
        errors, expected = catalogue(sqlite, directory / "store-sqlite.sqlite", args.as_of)
        floor = time.perf_counter() - started
        print(f"sqlite: {len(errors)} metrics, {sum(e is not None for e in errors.values())} fail, {floor:.1f} s")
        extra = [f"settings={item}" for item in args.settings.split(",") if item]
        started = time.perf_counter()
        found = catalogue(chdb + ("?" + "&".join(extra) if extra else ""), directory / "store-chdb.sqlite", args.as_of)
        seconds = time.perf_counter() - started
        compare(expected, *found, "chdb" + (f" with {args.settings}" if extra else ""))
        print(f"chdb: {seconds:.1f} s, {seconds / floor:.2f}x SQLite's time in the same run")


if __name__ == "__main__":
    main()
