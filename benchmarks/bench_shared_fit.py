"""Benchmark: the BG/NBD + Gamma-Gamma fit shared by the five CLV KPIs, under ``serve``.

    python benchmarks/bench_shared_fit.py [--customers 20000] [--demo crm.sqlite]

Under ``serve`` every metric is its own scheduled job. This computes the five CLV KPIs as the
scheduler does (``scheduled_run``, one key after the other) with the jobs' run window
(``RunWindow``: runs starting within a minute share one run cache) and, for comparison, with one
cache per job; the floor, measured in the same run, is ``crmmetrics run`` of the same five
(``Runner.run_all``: one cache for all). It prints the number of fits and the time of each and
the ratios to the floor (the fastest of ``--repeat`` interleaved rounds). Each variant uses a new store, so no closed period is reused.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

CLV = ["vc_clv_bgnbd_gg", "vc_expected_alive_customers", "vc_customer_equity", "vc_segment_clv", "vc_ltv_cac_ratio"]
AS_OF = datetime(2026, 11, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--demo", type=Path, help="an existing demo database (SQLite, as of 2026-11-01)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the three variants, interleaved (the fastest of each counts)")
    args = parser.parse_args()
    os.environ.setdefault("CRMMETRICS_LOAD_PLUGINS", "value_creation")

    from crmmetrics.compute.health import ServiceHealth
    from crmmetrics.compute.scheduler import RunWindow, scheduled_run
    from crmmetrics.core.config import parse_config
    from crmmetrics.data.demo import generate_demo
    from crmmetrics.kpi import customer_value
    from crmmetrics.serve.app import App

    work = Path(tempfile.mkdtemp(prefix="bench-shared-fit-"))
    demo = args.demo
    if demo is None:
        demo = work / "crm.sqlite"
        generate_demo(f"sqlite:///{demo}", customers=args.customers, seed=3, as_of=date(2026, 11, 1))

    fits = [0]
    fit = customer_value._fit

    def counted(*a):
        fits[0] += 1
        return fit(*a)

    customer_value._fit = counted

    def app(name: str) -> App:
        config = {"source": {"url": f"sqlite:///{demo}"}, "store": {"url": f"sqlite:///{work / name}.sqlite"}, "service": {"as_of": AS_OF}}
        return App.from_config(parse_config(config, None))

    rounds = [0]

    def measure(name: str, compute) -> tuple[int, float]:
        rounds[0] += 1
        application = app(f"{name}-{rounds[0]}")
        fits[0] = 0
        clock = time.perf_counter()
        compute(application)
        return fits[0], time.perf_counter() - clock

    def serve(window_of):
        def compute(application):
            health = ServiceHealth()
            window = RunWindow()
            for key in CLV:
                scheduled_run(application.runner, key, health, window_of(window))
        return compute

    variants = {"floor": lambda a: a.runner.run_all(CLV), "window": serve(lambda w: w), "per-job": serve(lambda w: None)}
    results: dict[str, list[tuple[int, float]]] = {name: [] for name in variants}
    for _ in range(args.repeat):  # interleaved, so that a change of load hits every variant
        for name, compute in variants.items():
            results[name].append(measure(name, compute))
    floor, window, per_job = (min(results[name], key=lambda r: r[1]) for name in variants)
    print(f"five CLV KPIs, demo {demo}")
    print(f"  floor: crmmetrics run (one run cache)   {floor[0]:2d} fits  {floor[1]:7.2f} s")
    print(f"  serve, runs within a minute share      {window[0]:2d} fits  {window[1]:7.2f} s  {window[1] / floor[1]:.2f}x")
    print(f"  serve, one cache per job (reference)   {per_job[0]:2d} fits  {per_job[1]:7.2f} s  {per_job[1] / floor[1]:.2f}x")


if __name__ == "__main__":
    main()
