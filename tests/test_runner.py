"""The runner: real values on a hand-built source, and failing plugins that fail only their own run."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from crmmetrics import MetricDefinition, Result, hookimpl
from crmmetrics.compute.runner import normalise
from crmmetrics.core.config import parse_config
from crmmetrics.core.errors import MetricError
from crmmetrics.readers.exporter import Exposition
from crmmetrics.serve.app import App

AS_OF = datetime(2026, 3, 10)


def orders_fixture(crm_db):
    """Four orders in February 2026 (the current month as of 2026-03-10), one in January.

    February: 100 + 50 (customer 1), 30 (customer 2), 20 anonymous -> AOV = 200 / 4 = 50.0;
    identified revenue share = 180 / 200 = 90 %. January: 80 (customer 2) -> AOV 80.0.
    """
    crm_db.insert("segments", [{"segment_id": 1, "name": "Gold", "is_target": True}])
    crm_db.insert("channels", [{"channel_id": 1, "name": "Web shop", "category": "e_commerce"}])
    crm_db.insert(
        "customers",
        [
            {"customer_id": 1, "segment_id": 1, "acquired_at": datetime(2025, 1, 5)},
            {"customer_id": 2, "segment_id": 1, "acquired_at": datetime(2025, 6, 1)},
        ],
    )
    crm_db.insert(
        "orders",
        [
            {"order_id": 1, "customer_id": 1, "ordered_at": datetime(2026, 2, 1, 9), "channel_id": 1, "net_revenue": 100.0},
            {"order_id": 2, "customer_id": 1, "ordered_at": datetime(2026, 2, 20), "channel_id": 1, "net_revenue": 50.0},
            {"order_id": 3, "customer_id": 2, "ordered_at": datetime(2026, 2, 28, 23), "channel_id": 1, "net_revenue": 30.0},
            {"order_id": 4, "customer_id": None, "ordered_at": datetime(2026, 2, 3), "channel_id": 1, "net_revenue": 20.0},
            {"order_id": 5, "customer_id": 2, "ordered_at": datetime(2026, 1, 15), "channel_id": 1, "net_revenue": 80.0},
        ],
    )


def test_kpi_values_on_hand_built_source(crm_db, compute):
    orders_fixture(crm_db)
    aov = compute("vc_aov", crm_db.url, as_of=AS_OF)
    assert aov.run.status == "success"
    assert aov.current() == pytest.approx(50.0)
    assert aov.previous() == pytest.approx(80.0)
    share = compute("im_identified_revenue_share", crm_db.url, as_of=AS_OF)
    assert share.current() == pytest.approx(90.0)
    assert share.previous() == pytest.approx(100.0)


class Misbehaving:
    """A plugin whose metrics raise, hang, return a non-number, and one that works."""

    @hookimpl
    def crmmetrics_metrics(self):
        def base(key, compute, **extra):
            return MetricDefinition(
                key=key, name=key, description="test", process="value_creation", perspective="customer",
                value_lens="customer_value", unit="count", direction="higher_is_better", compute=compute, **extra,
            )

        def raises(ctx):
            raise RuntimeError("source table missing")

        def hangs(ctx):
            time.sleep(5)
            return 1.0

        return [
            base("t_raises", raises),
            base("t_hangs", hangs, timeout_seconds=0.3),
            base("t_text", lambda ctx: "forty-two"),
            base("t_nan", lambda ctx: float("nan")),
            base("t_bad_dims", lambda ctx: [Result(1.0, {"colour": "red"})], dimensions=("segment",)),
            base("t_ok", lambda ctx: [Result(2.0, {"segment": "Gold"}), Result(3.0, {"segment": "Blue"})], dimensions=("segment",)),
        ]


def make_app(tmp_path, crm_db, plugin) -> App:
    config = parse_config(
        {"source": {"url": crm_db.url}, "store": {"url": f"sqlite:///{tmp_path / 'store.sqlite'}"}, "service": {"as_of": AS_OF}},
        None,
    )
    app = App.from_config(config)
    app.pm.register(plugin, name="misbehaving")
    from crmmetrics.compute.registry import build_registry

    app.registry = build_registry(app.pm)
    return app


def test_failing_plugins_fail_only_their_own_run(tmp_path, crm_db):
    orders_fixture(crm_db)
    app = make_app(tmp_path, crm_db, Misbehaving())
    runs = {run.metric_key: run for run in app.runner.run_all(["t_raises", "t_hangs", "t_text", "t_nan", "t_bad_dims", "t_ok", "vc_aov"])}
    assert runs["t_raises"].status == "failed" and runs["t_raises"].error == "RuntimeError: source table missing"
    assert runs["t_hangs"].status == "failed" and runs["t_hangs"].error == "timed out after 0.3s"
    assert runs["t_hangs"].duration_seconds < 2
    assert runs["t_text"].status == "failed" and "not a number" in runs["t_text"].error
    assert runs["t_nan"].status == "failed" and "non-finite" in runs["t_nan"].error
    assert runs["t_bad_dims"].status == "failed" and "declares ['segment']" in runs["t_bad_dims"].error
    assert runs["t_ok"].status == "success" and runs["t_ok"].rows == 4  # 2 segments x 2 periods
    assert runs["vc_aov"].status == "success"
    # The scrape still succeeds and carries the good values and the failures.
    body = Exposition(app.store).body().decode()
    assert 'crmmetrics_metric_by_segment_items{metric="t_ok",period="current",perspective="customer",process="value_creation",segment="Gold"} 2.0' in body
    assert 'crmmetrics_run_up{metric="t_raises",plugin="misbehaving"} 0.0' in body
    assert 'crmmetrics_run_failures_total{metric="t_hangs",plugin="misbehaving"} 1.0' in body
    assert 'metric="vc_aov",period="current"' in body


def test_normalise_accepts_numbers_none_and_results():
    definition = MetricDefinition(
        key="k", name="k", description="", process="value_creation", perspective="customer",
        value_lens="customer_value", unit="count", direction="higher_is_better", compute=lambda ctx: 0,
        dimensions=("segment",),
    )
    assert normalise(definition, 3) == [Result(3)]
    assert normalise(definition, None) == [Result(None)]
    total_and_breakdown = [Result(5.0), Result(2.0, {"segment": "A"})]
    assert normalise(definition, total_and_breakdown) == total_and_breakdown
    with pytest.raises(MetricError, match="two values"):
        normalise(definition, [Result(1.0, {"segment": "A"}), Result(2.0, {"segment": "A"})])
    with pytest.raises(MetricError, match="not a number"):
        normalise(definition, True)


def test_exposition_renders_once_per_change(tmp_path, crm_db):
    orders_fixture(crm_db)
    app = make_app(tmp_path, crm_db, Misbehaving())
    exposition = Exposition(app.store)
    first = exposition.body()
    assert exposition.body() is first and exposition.renders == 1
    app.runner.run_metric("t_ok")
    second = exposition.body()
    assert exposition.renders == 2 and second != first
    value_line = b'crmmetrics_metric_by_segment_items{metric="t_ok"'
    assert value_line in second and value_line not in first
