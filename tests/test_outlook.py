"""The outlook end to end: forecasts, pacing and anomaly scores of stored KPI histories, and the
value chain of the demo, in /metrics (promtool-clean), on the page and each KPI's page (a real
headless Chromium), in ``scorecard --json`` and ``chain --json``.

Known answers: the monthly shop (tests/support/monthly_shop.py) has an average order value of
15k or 20k in month k; December 2024 is planted at a fifth of its usual revenue, so its AOV is
180 instead of 900: a bad surprise the anomaly score finds, and a red KPI. The chain demos
(tests/conftest.py) plant team mood -> CSAT of the team's channels one month later, or nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from crmmetrics.data.demo import CHAIN_LAG_MONTHS
from crmmetrics.readers.anomaly import THRESHOLD, score_history
from crmmetrics.readers.display import format_value
from crmmetrics.readers.exporter import Exposition, timestamp
from crmmetrics.readers.forecast import forecast_next, pacing
from crmmetrics.readers.history import history_snapshots
from crmmetrics.readers.outlook import OutlookCache, calendar_unit
from crmmetrics.readers.scorecard import build_scorecard
from crmmetrics.serve.server import make_server
from crmmetrics.store.store import Store
from support.monthly_shop import build_shop
from test_page import DomParser, chromium

DECEMBER_2024 = datetime(2024, 12, 1)


def crmmetrics(config, *args):
    done = subprocess.run([sys.executable, "-m", "crmmetrics", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "CRMMETRICS_USER": "test-admin"})
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The monthly shop with December 2024 at a fifth of its revenue, 24 months backfilled, a
    live run as of 2025-01-10 (latest period: December 2024) and a standard red 300, green 500."""
    directory = tmp_path_factory.mktemp("outlook-shop")
    source = f"sqlite:///{directory / 'crm.sqlite'}"
    build_shop(source)
    engine = create_engine(source)
    with engine.begin() as connection:
        connection.execute(text("UPDATE orders SET net_revenue = net_revenue / 5 WHERE ordered_at >= '2024-12-01'"))
    engine.dispose()
    config = directory / "crmmetrics.toml"
    config.write_text(f'[source]\nurl = "{source}"\n[store]\nurl = "sqlite:///{directory / "store.sqlite"}"\n[logging]\nlevel = "WARNING"\n')
    crmmetrics(config, "backfill", "--metric", "vc_aov", "--from", "2023-01-01", "--to", "2025-01-01")
    crmmetrics(config, "run", "--metric", "vc_aov", "--as-of", "2025-01-10")
    crmmetrics(config, "standards", "set", "vc_aov", "--target", "600", "--red", "300", "--green", "500", "--valid-from", "2020-01-01")
    store = Store(f"sqlite:///{directory / 'store.sqlite'}")
    yield config, store
    store.engine.dispose()


def aov_history(store):
    return [s.current() for s in history_snapshots(store, keys=["vc_aov"]) if calendar_unit(s.period_start, s.period_end)]


def exposition_samples(store):
    body = Exposition(store).body().decode()
    samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return body, samples


def one(samples, name, **labels):
    found = [s for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, f"{len(found)} samples of {name} {labels}"
    return found[0].value


def test_the_planted_december_is_a_bad_surprise_with_its_hand_computed_score(shop):
    _config, store = shop
    history = aov_history(store)
    assert len(history) == 24 and history[-1] == pytest.approx(180.0)  # 900 / 5
    outlook = OutlookCache().build(store, build_scorecard(store))
    kpi = next(k for k in build_scorecard(store).kpis if k.metric == "vc_aov")
    result = outlook.of(kpi)
    scored = result.anomaly
    assert result.anomaly_period.start == DECEMBER_2024
    # Baseline: December 2023 (15 x 48 = 720) plus the median change over 12 months (180: seven
    # changes of 180, four of 240). Spread: the MAD is 0, so 1.2533 x the mean deviation (240/11).
    assert scored.expected == pytest.approx(900.0)
    assert scored.spread == pytest.approx(1.2533 * 240 / 11)
    assert scored.score == pytest.approx((180 - 900) / (1.2533 * 240 / 11))
    assert scored.anomalous and scored.direction == "down" and scored.surprise == "bad"
    assert [(p.start, s.surprise) for p, s in result.flagged] == [(DECEMBER_2024, "bad")]


def test_pacing_is_the_forecast_of_january_against_the_standard(shop):
    _config, store = shop
    history = aov_history(store)
    expected = forecast_next(history, season=12)
    outlook = OutlookCache().build(store, build_scorecard(store))
    kpi = next(k for k in build_scorecard(store).kpis if k.metric == "vc_aov")
    result = outlook.of(kpi)
    assert result.forecast_period.start == datetime(2025, 1, 1) and result.forecast_period.end == datetime(2025, 2, 1)
    assert result.forecast == expected
    assert result.pacing == pacing(expected, 300.0, 500.0)
    assert sum(result.pacing.probabilities.values()) == pytest.approx(1.0)
    assert expected.lower < expected.value < expected.upper


def test_the_exposition_carries_the_outlook_and_promtool_accepts_it(shop):
    _config, store = shop
    body, samples = exposition_samples(store)
    checked = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True)
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stdout + checked.stderr
    labels = {"metric": "vc_aov", "process": "value_creation", "perspective": "financial"}
    expected = forecast_next(aov_history(store), season=12)
    assert one(samples, "crmmetrics_kpi_forecast_currency", **labels) == pytest.approx(expected.value)
    assert one(samples, "crmmetrics_kpi_forecast_lower_currency", **labels) == pytest.approx(expected.lower)
    assert one(samples, "crmmetrics_kpi_forecast_upper_currency", **labels) == pytest.approx(expected.upper)
    probabilities = pacing(expected, 300.0, 500.0).probabilities
    for status in ("green", "amber", "red"):
        assert one(samples, "crmmetrics_kpi_pacing_probability_ratio", status=status, **labels) == pytest.approx(probabilities[status])
    assert one(samples, "crmmetrics_kpi_pacing_status", **labels) == {"off_track": 0, "at_risk": 1, "on_track": 2}[pacing(expected, 300.0, 500.0).status]
    assert one(samples, "crmmetrics_kpi_forecast_period_start_timestamp_seconds", metric="vc_aov") == timestamp(datetime(2025, 1, 1))
    assert one(samples, "crmmetrics_kpi_forecast_period_end_timestamp_seconds", metric="vc_aov") == timestamp(datetime(2025, 2, 1))
    assert one(samples, "crmmetrics_kpi_anomaly_score", **labels) == pytest.approx((180 - 900) / (1.2533 * 240 / 11))
    assert one(samples, "crmmetrics_kpi_anomaly_flagged", **labels) == 1.0
    assert one(samples, "crmmetrics_kpi_anomaly_surprise", **labels) == -1.0
    # No data is no data: KPIs without a value or a history have no forecast or anomaly sample.
    forecast_metrics = {s.labels["metric"] for s in samples["crmmetrics_kpi_forecast_currency"]}
    assert forecast_metrics == {"vc_aov"}
    assert {s.labels["metric"] for s in samples["crmmetrics_kpi_anomaly_score"]} == {"vc_aov"}
    # Too little data for the chain: counts only, no correlation of nothing.
    assert "crmmetrics_value_chain_correlation_ratio" not in samples


def test_the_outlook_is_remembered_until_its_inputs_change(shop):
    _config, store = shop
    cache = OutlookCache()
    scorecard = build_scorecard(store)
    first = cache.build(store, scorecard)
    computed = cache.computed
    assert computed >= len(scorecard.kpis)
    again = cache.build(store, scorecard)
    assert cache.computed == computed and again.kpis == first.kpis


def test_scorecard_json_carries_forecast_pacing_and_anomaly(shop):
    config, store = shop
    data = json.loads(crmmetrics(config, "scorecard", "--json").stdout)
    entry = next(k for k in data["kpis"] if k["metric"] == "vc_aov")
    expected = forecast_next(aov_history(store), season=12)
    outlook = entry["outlook"]
    assert outlook["pacing"]["forecast"]["value"] == pytest.approx(expected.value)
    assert outlook["pacing"]["status"] == pacing(expected, 300.0, 500.0).status
    assert (outlook["pacing"]["red"], outlook["pacing"]["green"]) == (300.0, 500.0)
    assert outlook["pacing"]["period"]["label"] == "2025-01" and outlook["pacing"]["unit"] == "currency"
    assert outlook["anomaly"]["anomalous"] is True and outlook["anomaly"]["surprise"] == "bad"
    assert outlook["anomaly"]["period"]["label"] == "2024-12" and outlook["anomaly"]["threshold"] == THRESHOLD
    assert [a["period"]["label"] for a in outlook["anomalies"]] == ["2024-12"]
    # a KPI with no value: no forecast, the reason said
    empty = next(k for k in data["kpis"] if k["value"] is None)
    assert empty["outlook"]["pacing"] is None and empty["outlook"]["pacing_reason"] == "no forecast without a current value"
    assert empty["outlook"]["anomaly"] is None


def dom_of(url, tmp_path):
    done = chromium("--dump-dom", url, user_data_dir=tmp_path / "profile")
    assert done.returncode == 0 and "</html>" in done.stdout, done.stderr[-2000:]
    parser = DomParser()
    parser.feed(done.stdout)
    return parser.root


def test_the_pages_show_pacing_and_the_anomaly(shop, tmp_path):
    _config, store = shop
    expected = forecast_next(aov_history(store), season=12)
    status = pacing(expected, 300.0, 500.0).status
    server = make_server(store, "127.0.0.1", 0).start()
    try:
        root = dom_of(f"{server.url}/", tmp_path)
        card = root.find("li", cls="kpi", data_metric="vc_aov")
        marker = card.find("span", cls="kpi-pacing")
        assert marker.attrs["data-pacing"] == status and float(marker.attrs["data-forecast"]) == pytest.approx(expected.value)
        assert "2025-01" in marker.text
        anomaly = card.find("span", cls="kpi-anomaly")
        assert anomaly.attrs["data-anomaly"] == "bad" and "unusual 2024-12 (bad surprise)" in anomaly.text
        chain = root.find("section", id="value-chain")
        assert "Not enough data to say anything about the value chain" in chain.find("p", cls="chain-statement").text
        page = dom_of(f"{server.url}/kpi/vc_aov", tmp_path)
        section = page.find("section", id="outlook")
        block = section.find("div", cls="pacing")
        assert block.attrs["data-pacing"] == status
        assert float(block.attrs["data-forecast"]) == pytest.approx(expected.value)
        assert float(block.attrs["data-lower"]) == pytest.approx(expected.lower)
        assert (float(block.attrs["data-red"]), float(block.attrs["data-green"])) == (300.0, 500.0)
        assert "Forecast for 2025-01" in block.text and f"red at {format_value(300, 'currency')}, green at {format_value(500, 'currency')}" in block.text
        rows = section.find_all("tr", cls="anomaly")
        assert [(r.attrs["data-period-start"], r.attrs["data-surprise"]) for r in rows] == [("2024-12-01T00:00:00Z", "bad")]
        assert "not unusual" not in section.find("p", cls="anomaly-latest").text
    finally:
        server.stop()


# --- the value chain on the demo ------------------------------------------------------------


def across_units(links):
    found = [link for link in links if link["basis"] == "across_units"
             and (link["driver"], link["outcome"]) == ("pa_employee_satisfaction", "vc_csat")]
    assert len(found) == 1
    return found[0]


def test_chain_json_recovers_the_planted_link(chain_demos):
    demo = chain_demos[True]
    data = json.loads(crmmetrics(demo.config, "chain", "--json").stdout)
    assert data["unit_pairs"] == [list(p) for p in demo.pairs]
    link = across_units(data["links"])
    assert link["linked"] is True and link["lag"] == CHAIN_LAG_MONTHS and link["correlation"] > 0 and link["lower"] > 0
    assert link["stage"] == "employee_to_customer" and link["observations"] > 100 and link["units"] == 4
    assert link["statement"].startswith("When Employee satisfaction rises, Customer satisfaction (top-2-box) rises 1 period later (across units")
    assert "find a link" in data["statement"]
    # the plain text says the same
    plain = crmmetrics(demo.config, "chain").stdout
    assert "LINK pa_employee_satisfaction -> vc_csat (across units) [lag 1 month]" in plain


def test_chain_json_finds_no_link_without_the_planted_chain(chain_demos):
    demo = chain_demos[False]
    data = json.loads(crmmetrics(demo.config, "chain", "--json").stdout)
    link = across_units(data["links"])
    assert link["linked"] is False and link["lower"] < 0 < link["upper"] and link["observations"] > 100
    assert link["statement"].startswith("No link found between Employee satisfaction and Customer satisfaction (top-2-box) across units")
    assert not any(entry["linked"] for entry in data["links"])


def test_chain_gauges_and_page_on_the_demo(chain_demos, tmp_path):
    demo = chain_demos[True]
    store = Store(demo.store_url)
    try:
        cache = OutlookCache(demo.pairs)
        exposition = Exposition(store, outlook=cache)
        body = exposition.body().decode()
        checked = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True)
        assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stdout + checked.stderr
        samples = {}
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append(sample)
        labels = {"driver": "pa_employee_satisfaction", "outcome": "vc_csat", "stage": "employee_to_customer", "basis": "across_units"}
        assert one(samples, "crmmetrics_value_chain_linked", **labels) == 1.0
        assert one(samples, "crmmetrics_value_chain_lag_seconds", **labels) == CHAIN_LAG_MONTHS * 2_629_800
        assert one(samples, "crmmetrics_value_chain_correlation_lower_ratio", **labels) > 0
        assert one(samples, "crmmetrics_value_chain_correlation_ratio", **labels) > one(samples, "crmmetrics_value_chain_correlation_lower_ratio", **labels)
        assert one(samples, "crmmetrics_value_chain_observations", **labels) > 100
        server = make_server(store, "127.0.0.1", 0, unit_pairs=demo.pairs).start()
        try:
            root = dom_of(f"{server.url}/", tmp_path)
        finally:
            server.stop()
        section = root.find("section", id="value-chain")
        svg = section.find("svg", cls="chain")
        found = svg.find("g", cls="link", data_driver="pa_employee_satisfaction", data_outcome="vc_csat", data_basis="across_units")
        assert found.attrs["data-linked"] == "yes" and found.attrs["data-lag-months"] == str(CHAIN_LAG_MONTHS)
        assert float(found.attrs["data-correlation"]) > 0 and "lag 1 mo" in found.text
        assert {n.attrs["data-metric"] for n in svg.find_all("g", cls="node")} == {"pa_employee_satisfaction", "vc_csat"}
        item = section.find("li", data_driver="pa_employee_satisfaction", data_basis="across_units")
        assert item.attrs["data-linked"] == "yes" and item.text.startswith("When Employee satisfaction rises")
    finally:
        store.engine.dispose()


def test_the_page_without_the_chain_says_no_link(chain_demos, tmp_path):
    store = Store(chain_demos[False].store_url)
    server = make_server(store, "127.0.0.1", 0, unit_pairs=chain_demos[False].pairs).start()
    try:
        root = dom_of(f"{server.url}/", tmp_path)
    finally:
        server.stop()
        store.engine.dispose()
    section = root.find("section", id="value-chain")
    assert section.find("p", cls="chain-statement").text.startswith("No link found in")
    assert not section.find_all("g", cls="link", data_linked="yes")
    item = section.find("li", data_driver="pa_employee_satisfaction", data_basis="across_units")
    assert item.attrs["data-linked"] == "no" and item.text.startswith("No link found between Employee satisfaction")


def test_anomaly_scores_of_the_demo_history_match_the_method(chain_demos):
    """The exported score of CSAT is the method's score of its stored monthly history."""
    store = Store(chain_demos[True].store_url)
    try:
        scorecard = build_scorecard(store)
        kpi = next(k for k in scorecard.kpis if k.metric == "vc_csat" and not k.dimensions)
        history = [s.current() for s in history_snapshots(store, keys=["vc_csat"])][-36:]
        expected = score_history(history, direction="higher_is_better", season=12)[-1]
        result = OutlookCache().build(store, scorecard).of(kpi)
        assert result.anomaly == expected and result.history == 34
        assert result.forecast == forecast_next(history, season=12)
    finally:
        store.engine.dispose()


def test_a_period_never_computed_is_a_gap_not_skipped():
    """Monthly history 2023-01 .. 2024-12 without 2024-06 (and a quarter stored by an earlier
    configuration): the forecast rests on the stretch after the gap only (six months), the
    quarter is not mixed in, and the history counts the 23 months stored."""
    from types import SimpleNamespace

    from crmmetrics.core.periods import Period
    from crmmetrics.readers.outlook import _kpi_outlook

    months = [datetime(2023 + m // 12, m % 12 + 1, 1) for m in range(25)]
    periods = [Period("current", a, b) for a, b in zip(months, months[1:]) if a != datetime(2024, 6, 1)]
    values = [100.0 + (p.start.year - 2023) * 12 + p.start.month for p in periods]
    periods.append(Period("current", datetime(2024, 1, 1), datetime(2024, 4, 1)))  # a quarter: left out
    values.append(1e6)
    spec = SimpleNamespace(red=90.0, green=110.0)
    kpi = SimpleNamespace(metric="m", dimensions={}, direction="higher_is_better", value=values[-2],
                          period_start=datetime(2024, 12, 1), period_end=datetime(2025, 1, 1), standard=SimpleNamespace(spec=spec))
    result = _kpi_outlook(kpi, periods, values)
    assert result.history == 23
    assert result.forecast.observations == 6  # 2024-07 .. 2024-12
    assert result.forecast == forecast_next(values[17:23], season=12)
    assert result.forecast_period.start == datetime(2025, 1, 1)
    # a straight line after the gap: the drift and Holt methods forecast it exactly
    assert result.forecast.value == pytest.approx(100.0 + 25) and result.pacing.status == "on_track"
