"""The exposition is rendered by crmmetrics.readers.exposition_format: the same bytes as prometheus_client.

Both formats (text 0.0.4 and OpenMetrics 1.0) against prometheus_client's own ``generate_latest``
of the same families: the families of a store with awkward dimension values (quotes, a backslash,
a newline, non-ASCII) and a standard judging them, and hand-made families with every kind of
value (integers, exponents, infinities, NaN) and shapes that prometheus_client renders itself.
"""

from __future__ import annotations

import gzip
import math
from datetime import datetime

import pytest
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from crmmetrics.readers.exporter import OPENMETRICS, TEXT, Exposition
from crmmetrics.readers.exposition_format import render
from crmmetrics.store.standards import StandardChange
from crmmetrics.store.store import MetricRecord, Observation, Run, Store, dimensions_key

T0 = datetime(2026, 10, 1)
T1 = datetime(2026, 11, 1)
AWKWARD = ["plain", 'a "quoted" one', "back\\slash", "two\nlines", "Zürich – Genève", ""]


class Families:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def prometheus_client_bytes(families: list[Metric], encoding: str) -> bytes:
    if encoding == TEXT:
        return generate_latest(Families(families))
    return openmetrics_latest(Families(families)).removesuffix(b"# EOF\n")


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    with store.session() as session:
        for key, unit in (("by_city", "percent"), ("total", "currency")):
            session.merge(MetricRecord(key=key, plugin="test", name=key, description="", process="value_creation",
                                       perspective="customer", value_lens="customer_value", unit=unit,
                                       direction="higher_is_better", dimensions='["city"]' if key == "by_city" else "[]"))
        session.add(StandardChange(metric_key="by_city", origin="admin", target=85.0, red=20.0, green=80.0,
                                   valid_from=T0, changed_by="test", changed_at=T0))
        session.commit()
    values = [0.1, 42.0, 1234567.25, 1e-7, 99.999, -3.5]
    store.write_run(
        Run(metric_key="by_city", plugin="test", started_at=T1, finished_at=T1, duration_seconds=0.25, status="success"),
        [Observation(run_id=0, metric_key="by_city", dimensions=dimensions_key({"city": city}), period_label=label,
                     period_start=T0, period_end=T1, value=value, computed_at=T1)
         for city, value in zip(AWKWARD, values) for label in ("current", "previous")],
    )
    store.write_run(
        Run(metric_key="total", plugin="test", started_at=T1, finished_at=T1, duration_seconds=3.0, status="success"),
        [Observation(run_id=0, metric_key="total", dimensions="{}", period_label="current", period_start=T0, period_end=T1,
                     value=12345678901.5, computed_at=T1)],
    )
    yield store
    store.engine.dispose()


@pytest.mark.parametrize("encoding", [TEXT, OPENMETRICS])
def test_the_exposition_of_a_store_is_what_prometheus_client_renders(store, encoding):
    rendering = Exposition(store).encodings(encoding)
    body = rendering[encoding].body
    assert body == prometheus_client_bytes(rendering.families, encoding)
    assert 'city="a \\"quoted\\" one"' in body.decode() and 'city="two\\nlines"' in body.decode()
    assert "crmmetrics_kpi_by_city_status" in body.decode()  # the scorecard judged the awkward values too


@pytest.mark.parametrize("encoding", [TEXT, OPENMETRICS])
def test_every_value_and_shape_is_rendered_as_prometheus_client_does(encoding):
    gauge = GaugeMetricFamily("x_ratio", 'Help with "quotes", a back\\slash\nand a newline', labels=["b", "a"])
    values = [0.0, -0.0, 1.0, 3, 0.1, 1e-7, 123456.0, 999999.5, 1e6, 1234567.0, 1e21, -1e21, -7654321.5,
              math.inf, -math.inf, math.nan, 2**53 + 1]
    for n, value in enumerate(values):
        gauge.add_metric([f"v{n}", AWKWARD[n % len(AWKWARD)]], value)
    counter = CounterMetricFamily("x_runs", "Runs", labels=["metric"])
    counter.add_metric(["m"], 7)
    bare = GaugeMetricFamily("x_index", "An index without labels", value=61.25)
    created = CounterMetricFamily("x_made", "A counter with a created time", labels=["m"], created=1700000000.5)
    created.add_metric(["a"], 2, created=1700000000.5)
    stamped = Metric("x_stamped", "A sample with a timestamp", "gauge")
    stamped.add_sample("x_stamped", {"k": "v"}, 1.5, timestamp=1700000000.25)
    with_unit = Metric("x_seconds", "A family with a unit", "gauge", unit="seconds")
    with_unit.add_sample("x_seconds", {}, 2.0)
    colon = Metric("x:rule", "A recording-rule style name", "gauge")
    colon.add_sample("x:rule", {"k": "v"}, 1.0)
    shared = {"metric": "m", "city": "Zürich"}  # one dict for several families, as a KPI's
    first, second = Metric("x_first", "First", "gauge"), Metric("x_second", "Second", "gauge")
    first.add_sample("x_first", shared, 1.0)
    second.add_sample("x_second", shared, 2.0)
    families = [gauge, counter, bare, created, stamped, with_unit, colon, first, second, Metric("x_empty", "No samples", "gauge")]
    assert render(families, encoding) == prometheus_client_bytes(families, encoding)


def test_each_encoding_is_rendered_once_per_change_when_first_asked_for(store):
    exposition = Exposition(store)
    rendering = exposition.encodings(OPENMETRICS)
    assert exposition.renders == 1
    assert rendering[OPENMETRICS] is rendering[OPENMETRICS]
    assert exposition.encodings(TEXT) is rendering  # nothing changed: the same read of the store
    assert rendering[TEXT].body.decode().startswith("# HELP crmmetrics_metric_by_city_ratio ")
    gzipped = rendering[OPENMETRICS].gzip(b"# EOF\n")
    assert gzip.decompress(gzipped) == rendering[OPENMETRICS].body + b"# EOF\n"
    assert exposition.renders == 1
