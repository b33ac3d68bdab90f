"""Benchmark: /metrics rendered after a change, against plain prometheus_client, and a scrape of bytes.

Fills a store with ``--metrics`` metrics broken down by segment (half of them KPIs: a standard
for the whole metric judges every segment, so each gets its target, thresholds, status, score,
change and weight; the other half values only), sized so that the exposition has about
``--samples`` samples. Then times:

* the floor: plain prometheus_client rendering the same samples (the same families, names,
  labels and values, held in memory; a collector building them with ``add_metric``-style
  calls and ``generate_latest``), checked byte for byte against crmmetrics' text exposition;
* a render after a change: a run of one metric is written, then ``Exposition.body()`` (the
  change marker moved: the store is read, the scorecard and the outlook evaluated, the
  families built and rendered), in the text format; and the same for an OpenMetrics + gzip
  scrape (what Prometheus asks for), against the floor rendering OpenMetrics and gzipping it;
* a scrape of an unchanged store (the change marker and the bytes).

Prints the figures and the ratios to the floor, measured in the same run, interleaved.

    python benchmarks/bench_exporter.py [--samples 10000] [--repeat 10] [--store DEMO/store.sqlite]
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.parser import text_string_to_metric_families

from crmmetrics.readers.exporter import OPENMETRICS, TEXT, Exposition
from crmmetrics.store.standards import StandardChange
from crmmetrics.store.store import MetricRecord, Observation, Run, Store, dimensions_key

NOW = datetime(2026, 11, 1)
UNITS = ("count", "percent", "currency", "customers")
# samples per segment: a KPI's values (2) and its 7 scorecard families; a plain metric's 2 values
PER_SEGMENT = 9 + 2


def fill(store: Store, samples: int, metrics: int = 20) -> int:
    """About ``samples`` samples of ``metrics`` metrics (half of them KPIs); returns the segments per metric."""
    segments = max(1, samples // (max(metrics // 2, 1) * PER_SEGMENT))
    with store.session() as session:
        for n in range(metrics):
            session.merge(MetricRecord(key=f"bench_{n:02d}", plugin="bench", name=f"Bench {n}", description="",
                                       process="value_creation", perspective="customer", value_lens="customer_value",
                                       unit=UNITS[n % len(UNITS)], direction="higher_is_better", dimensions='["segment"]'))
            if n % 2 == 0:
                session.add(StandardChange(metric_key=f"bench_{n:02d}", origin="admin", target=85.0, red=20.0, green=80.0,
                                           valid_from=NOW, changed_by="bench", changed_at=NOW))
        session.commit()
    for n in range(metrics):
        write_run(store, f"bench_{n:02d}", segments, 0.0)
    return segments


def write_run(store: Store, key: str, segments: int, shift: float) -> None:
    run = Run(metric_key=key, plugin="bench", started_at=NOW, finished_at=NOW, duration_seconds=0.1, status="success")
    observations = [
        Observation(run_id=0, metric_key=key, dimensions=dimensions_key({"segment": f"segment {i:04d}"}), period_label=label,
                    period_start=NOW, period_end=NOW, value=(i * 7 + shift) % 100 + (1 if label == "current" else 0),
                    computed_at=NOW)
        for i in range(segments)
        for label in ("current", "previous")
    ]
    store.write_run(run, observations)


class Plain:
    """The floor: the same families built from values in memory, as a plain exporter would."""

    def __init__(self, text: str) -> None:
        self.families = [
            (family.name, family.documentation, family.type, [(s.name, s.labels, s.value) for s in family.samples])
            for family in text_string_to_metric_families(text)
        ]

    def collect(self):
        for name, documentation, kind, samples in self.families:
            metric = Metric(name, documentation, kind)
            for sample_name, labels, value in samples:
                metric.add_sample(sample_name, labels, value)
            yield metric


def timed(function, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--store", type=Path,
                        help="render a copy of this store (e.g. a demo's store.sqlite) instead of a filled one; "
                             "a change is a new run of its first metric with its latest values")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "store.sqlite"
        if args.store:
            shutil.copyfile(args.store, path)
        store = Store(f"sqlite:///{path}")
        segments = 0 if args.store else fill(store, args.samples, args.metrics)
        exposition = Exposition(store)
        body = exposition.body()  # the first scrape renders (and computes the outlook from scratch)
        samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        # the exposition's own live self-metrics are appended by the server, not rendered here
        plain = Plain(body.decode())
        registry = CollectorRegistry(auto_describe=False)
        registry.register(plain)
        same = generate_latest(registry) == body
        shift = [0.0]

        def change() -> None:
            shift[0] += 1
            if not args.store:
                write_run(store, "bench_00", segments, shift[0])
                return
            latest = store.latest_observations()
            key = latest[0].metric_key
            run = Run(metric_key=key, plugin="bench", started_at=NOW, finished_at=NOW, duration_seconds=0.1, status="success")
            store.write_run(run, [
                Observation(run_id=0, metric_key=key, dimensions=o.dimensions_key, period_label=o.period_label,
                            period_start=o.period_start, period_end=o.period_end,
                            value=None if o.value is None else o.value + shift[0], computed_at=o.computed_at)
                for o in latest if o.metric_key == key
            ])

        def after_change(encoding: str) -> float:
            change()
            start = time.perf_counter()
            encoded = exposition.encodings(encoding)[encoding]
            if encoding == OPENMETRICS:
                encoded.gzip(b"")
            return time.perf_counter() - start

        def openmetrics_floor() -> None:
            gzip.compress(openmetrics_latest(registry), 6)

        text, text_floor, om, om_floor = [], [], [], []
        for _ in range(args.repeat):  # interleaved: the load moves both alike
            text.append(after_change(TEXT))
            text_floor.extend(timed(lambda: generate_latest(registry), 1))
            om.append(after_change(OPENMETRICS))
            om_floor.extend(timed(openmetrics_floor, 1))
        cached = statistics.median(timed(exposition.body, args.repeat * 4))
        median = statistics.median
        shape = f"a copy of {args.store}" if args.store else f"{args.metrics} metrics x {segments} segments"
        print(f"{shape}: {samples:,} samples, exposition {len(body):,} bytes; "
              f"renders {exposition.renders}; floor's text identical to crmmetrics': {same}")
        print(f"floor, plain prometheus_client, text:                {median(text_floor) * 1000:8.1f} ms")
        print(f"render after a change, text:                         {median(text) * 1000:8.1f} ms  "
              f"({median(text) / median(text_floor):.2f}x floor)")
        print(f"floor, plain prometheus_client, OpenMetrics + gzip:  {median(om_floor) * 1000:8.1f} ms")
        print(f"render after a change, OpenMetrics + gzip:           {median(om) * 1000:8.1f} ms  "
              f"({median(om) / median(om_floor):.2f}x floor)")
        print(f"scrape of an unchanged store (marker + bytes):       {cached * 1000:8.2f} ms")
        store.engine.dispose()


if __name__ == "__main__":
    main()
