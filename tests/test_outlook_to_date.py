"""The period-end forecast of a to-date KPI from a hand-built store history.

``pa_revenue_per_employee`` on ``month_to_date``: in every month its value grows linearly from
0 to that month's final value R (1,000 in March 2025, 20 more each month: 1,240 in March 2026),
so at an elapsed share x it is R * x. The runs of each earlier month sit at a quarter, at half
(three hours late in odd months, three hours early in even ones: the nearest run within the
tolerance) and at three quarters, and the last one at the month's last microsecond (as a
backfill stores it). August 2025 has no run near its middle (only one at 40 %: outside the
tolerance), so it is left out; a ``quarter_to_date`` run of April (another period) is never
mixed in. The KPI now: 16 March 2026 12:00, half of March, value 620; the true end is 1,240.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from scipy import stats

from crmmetrics.compute.plugins import get_plugin_manager
from crmmetrics.compute.registry import build_registry
from crmmetrics.core.standard import StandardDefault
from crmmetrics.readers.exporter import Exposition, timestamp
from crmmetrics.readers.outlook import MIN_EARLIER_PERIODS, TO_DATE_TOLERANCE, OutlookCache
from crmmetrics.readers.scorecard import build_scorecard
from crmmetrics.serve.server import make_server
from crmmetrics.store.standards import record_defaults
from crmmetrics.store.store import Observation, Run, Store
from test_page import DomParser, chromium

METRIC = "pa_revenue_per_employee"
RED, GREEN = 1200.0, 1245.0
TICK = timedelta(microseconds=1)
MARCH_2026 = datetime(2026, 3, 1)
NOW = datetime(2026, 3, 16, 12)  # exactly half of March


def month_start(k: int) -> datetime:
    """The start of month k (0: March 2025)."""
    index = 2025 * 12 + 2 + k
    return datetime(index // 12, index % 12 + 1, 1)


def final_value(k: int) -> float:
    return 1000.0 + 20.0 * k


def new_store(tmp_path, url: str | None = None) -> Store:
    store = Store(url or f"sqlite:///{tmp_path / 'store.sqlite'}")
    registry = build_registry(get_plugin_manager())
    store.record_definitions(registry, registry.plugin_of)
    record_defaults(store, {(METRIC, "{}"): (StandardDefault(METRIC, target=1250.0, red=RED, green=GREEN), "test")})
    return store


def write(store: Store, start: datetime, end: datetime, value: float | None, spec: str = "month_to_date", metric: str = METRIC) -> None:
    run = Run(metric_key=metric, plugin="test", started_at=end, finished_at=end, duration_seconds=1.0, status="success", period=spec)
    store.write_run(run, [Observation(metric_key=metric, dimensions="{}", period_label="current", period_start=start,
                                      period_end=end, value=value, computed_at=end)])


def share_of(start: datetime, end: datetime, moment: datetime) -> float:
    return (moment - start) / (end - start)


def build_history(store: Store, months: range) -> list[tuple[float, float]]:
    """Write the runs of the earlier months ``months``; the (value at the point, final) pairs a
    period-end forecast should see, oldest first (August 2025 has none)."""
    pairs = []
    for k in months:
        start, end = month_start(k), month_start(k + 1)
        rate = final_value(k)
        middle = start + (end - start) / 2 + timedelta(hours=3 if k % 2 else -3)
        moments = [start + (end - start) / 4, middle, start + 3 * (end - start) / 4, end - TICK]
        if start == datetime(2025, 8, 1):
            moments[1] = start + 0.4 * (end - start)
        for moment in moments:
            write(store, start, moment, rate * share_of(start, end, moment))
        if start == datetime(2025, 4, 1):  # another period's run at the same point: not this KPI's
            write(store, start, start + (end - start) / 2, 1e6, spec="quarter_to_date")
        if start != datetime(2025, 8, 1):
            pairs.append((rate * share_of(start, end, middle), rate * share_of(start, end, end - TICK)))
    return pairs


def march_2026(store: Store) -> list[tuple[float, float]]:
    pairs = build_history(store, range(12))  # March 2025 .. February 2026
    write(store, MARCH_2026, MARCH_2026 + timedelta(days=31) / 4, final_value(12) / 4)
    write(store, MARCH_2026, NOW, final_value(12) / 2)
    return pairs


@pytest.fixture()
def store(tmp_path):
    store = new_store(tmp_path)
    yield store, march_2026(store)
    store.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request, tmp_path):
    """The same history on SQLite and on a real PostgreSQL (the same-point read is one query on both)."""
    store = new_store(tmp_path, None if request.param == "sqlite" else request.getfixturevalue("fresh_pg_db"))
    yield store, march_2026(store)
    store.engine.dispose()


def hand_forecast(now: float, pairs: list[tuple[float, float]]) -> tuple[float, float, float]:
    """The proportional method by hand: value, sigma from the leave-one-out errors, t half-width."""
    ratios = [b / a for a, b in pairs]
    value = now * sum(ratios) / len(ratios)
    errors = [b - a * (sum(ratios) - r) / (len(ratios) - 1) for (a, b), r in zip(pairs, ratios)]
    sigma = math.sqrt(sum(e * e for e in errors) / len(errors))
    return value, sigma, stats.t.ppf(0.9, len(errors) - 1) * sigma


def kpi_of(store: Store):
    scorecard = build_scorecard(store)
    return scorecard, next(k for k in scorecard.kpis if k.metric == METRIC)


def test_the_forecast_carries_the_value_so_far_to_the_end_like_earlier_months(any_store):
    store, pairs = any_store
    scorecard, kpi = kpi_of(store)
    assert (kpi.value, kpi.period_start, kpi.period_end) == (620.0, MARCH_2026, NOW)
    result = OutlookCache().build(store, scorecard, chain=False).of(kpi)
    assert result.forecast_reason is None
    assert result.forecast_period.start == MARCH_2026 and result.forecast_period.end == datetime(2026, 4, 1)
    assert result.elapsed == pytest.approx(0.5) and result.history == 11  # August left out
    forecast = result.forecast
    value, sigma, half = hand_forecast(620.0, pairs)
    assert forecast.method == "proportional" and forecast.observations == 11
    assert forecast.value == pytest.approx(value) and forecast.sigma == pytest.approx(sigma)
    assert (forecast.lower, forecast.upper) == (pytest.approx(value - half), pytest.approx(value + half))
    assert forecast.lower < 1240.0 < forecast.upper and abs(forecast.value - 1240.0) < 1.0
    # pacing by hand: the t distribution's mass on each side of red 1,200 and green 1,245
    t = stats.t(df=10, loc=value, scale=sigma)
    p_red, p_green = t.cdf(RED), 1 - t.cdf(GREEN)
    assert result.pacing.probabilities["red"] == pytest.approx(p_red, abs=1e-9)
    assert result.pacing.probabilities["green"] == pytest.approx(p_green, abs=1e-9)
    assert result.pacing.probabilities["amber"] == pytest.approx(1 - p_red - p_green, abs=1e-9)
    assert p_red < 0.2 and p_green < 0.5 and result.pacing.status == "at_risk"
    assert result.to_json("currency")["pacing"]["basis"] == "period_end"
    assert result.to_json("currency")["pacing"]["elapsed_share"] == pytest.approx(0.5)


def test_the_gauges_carry_the_period_end_forecast_and_promtool_accepts_them(store):
    store, pairs = store
    body = Exposition(store).body().decode()
    checked = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True)
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stdout + checked.stderr
    samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)

    def one(name, **labels):
        found = [s for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
        assert len(found) == 1, f"{len(found)} samples of {name} {labels}"
        return found[0].value

    value, _sigma, half = hand_forecast(620.0, pairs)
    assert one("crmmetrics_kpi_forecast_currency", metric=METRIC) == pytest.approx(value)
    assert one("crmmetrics_kpi_forecast_lower_currency", metric=METRIC) == pytest.approx(value - half)
    assert one("crmmetrics_kpi_forecast_upper_currency", metric=METRIC) == pytest.approx(value + half)
    assert one("crmmetrics_kpi_pacing_status", metric=METRIC) == 1.0  # at risk
    assert one("crmmetrics_kpi_forecast_period_start_timestamp_seconds", metric=METRIC) == timestamp(MARCH_2026)
    assert one("crmmetrics_kpi_forecast_period_end_timestamp_seconds", metric=METRIC) == timestamp(datetime(2026, 4, 1))
    assert sum(one("crmmetrics_kpi_pacing_probability_ratio", metric=METRIC, status=s) for s in ("green", "amber", "red")) == pytest.approx(1.0)


def test_too_little_history_is_no_forecast_with_the_reason(tmp_path):
    """Two earlier months with both points, and February with its middle but no run near its
    end (its last run is at 80 %): two, one short of the three a forecast needs."""
    store = new_store(tmp_path)
    try:
        build_history(store, range(9, 11))  # December 2025, January 2026
        february, end = datetime(2026, 2, 1), datetime(2026, 3, 1)
        for share in (0.5, 0.8):
            write(store, february, february + share * (end - february), final_value(11) * share)
        write(store, MARCH_2026, NOW, 620.0)
        scorecard, kpi = kpi_of(store)
        result = OutlookCache().build(store, scorecard, chain=False).of(kpi)
        assert result.pacing is None and result.history == 2 and MIN_EARLIER_PERIODS == 3
        assert result.forecast_reason == (
            f"no forecast: a period-end forecast needs at least 3 earlier periods with a stored run near the same point "
            f"(50% elapsed, within {TO_DATE_TOLERANCE:.0%} of the period) and one at their end; 2 have both"
        )
        samples = {s.name for f in text_string_to_metric_families(Exposition(store).body().decode()) for s in f.samples}
        assert "crmmetrics_kpi_forecast_currency" not in samples  # no data is no data
    finally:
        store.engine.dispose()


def test_a_trailing_window_says_it_has_no_forecast(tmp_path):
    store = new_store(tmp_path)
    try:
        for days in range(5):  # daily runs of a trailing 30-day window
            end = NOW - timedelta(days=4 - days)
            write(store, end - timedelta(days=30), end, 600.0 + days, spec="trailing_30d")
        scorecard, kpi = kpi_of(store)
        result = OutlookCache().build(store, scorecard, chain=False).of(kpi)
        assert result.pacing is None and result.forecast_reason == (
            "no forecast for a trailing period: a forecast needs calendar periods (a month, quarter or year, or one to date) "
            "to compare with the same point of earlier ones"
        )
    finally:
        store.engine.dispose()


def test_the_pages_and_scorecard_json_show_the_period_end_forecast(store, tmp_path):
    store, pairs = store
    value, _sigma, half = hand_forecast(620.0, pairs)

    def dom(url):
        done = chromium("--dump-dom", url, user_data_dir=tmp_path / "profile")
        assert done.returncode == 0 and "</html>" in done.stdout, done.stderr[-2000:]
        parser = DomParser()
        parser.feed(done.stdout)
        return parser.root

    server = make_server(store, "127.0.0.1", 0).start()
    try:
        card = dom(f"{server.url}/").find("li", cls="kpi", data_metric=METRIC)
        marker = card.find("span", cls="kpi-pacing")
        assert marker.attrs["data-pacing"] == "at_risk" and float(marker.attrs["data-forecast"]) == pytest.approx(value)
        assert "2026-03" in marker.text
        block = dom(f"{server.url}/kpi/{METRIC}").find("section", id="outlook").find("div", cls="pacing")
        assert block.attrs["data-method"] == "proportional" and float(block.attrs["data-upper"]) == pytest.approx(value + half)
        assert "Forecast for 2026-03" in block.text
        assert "from the value so far at 50% of the period and 11 earlier periods at the same point" in block.text
    finally:
        server.stop()
    config = tmp_path / "crmmetrics.toml"
    config.write_text(f'[source]\nurl = "sqlite:///{tmp_path / "crm.sqlite"}"\n[store]\nurl = "{store.url}"\n[logging]\nlevel = "WARNING"\n')
    done = subprocess.run([sys.executable, "-m", "crmmetrics", "scorecard", "--json", "--config", str(config)],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "CRMMETRICS_USER": "test-admin"})
    assert done.returncode == 0, done.stderr
    entry = next(k for k in json.loads(done.stdout)["kpis"] if k["metric"] == METRIC)
    pacing = entry["outlook"]["pacing"]
    assert pacing["basis"] == "period_end" and pacing["elapsed_share"] == pytest.approx(0.5)
    assert pacing["period"]["label"] == "2026-03" and pacing["status"] == "at_risk"
    assert pacing["forecast"]["value"] == pytest.approx(value) and entry["outlook"]["history_periods"] == 11


def test_runs_of_the_runner_and_a_backfill_feed_the_forecast(tmp_path):
    """Through the real runner: the monthly shop (tests/support/monthly_shop.py: every order on
    the 10th) with ``vc_aov`` on ``month_to_date``, July to November 2024 backfilled (their ends)
    and run as of the 16th at noon (their middles, within the tolerance in 30-day months), and
    December as of the 16th at noon. Every month's average order value is final from the 10th
    on, so the forecast is December's value so far, 900, with no error: on track."""
    from support.monthly_shop import build_shop, expected_aov

    source = f"sqlite:///{tmp_path / 'crm.sqlite'}"
    build_shop(source)
    config = tmp_path / "crmmetrics.toml"
    config.write_text(f'[source]\nurl = "{source}"\n[store]\nurl = "sqlite:///{tmp_path / "store.sqlite"}"\n'
                      '[logging]\nlevel = "WARNING"\n[metrics.vc_aov]\nperiod = "month_to_date"\n')

    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "crmmetrics", *args, "--config", str(config)],
                              capture_output=True, text=True, timeout=600, env={**os.environ, "CRMMETRICS_USER": "test-admin"})
        assert done.returncode == 0, done.stderr

    cli("backfill", "--metric", "vc_aov", "--from", "2024-07-01", "--to", "2024-12-01")
    for month in range(7, 13):
        cli("run", "--metric", "vc_aov", "--as-of", f"2024-{month:02d}-16T12:00")
    cli("standards", "set", "vc_aov", "--target", "600", "--red", "300", "--green", "500", "--valid-from", "2020-01-01")
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    try:
        scorecard = build_scorecard(store)
        kpi = next(k for k in scorecard.kpis if k.metric == "vc_aov" and not k.dimensions)
        assert kpi.value == expected_aov(59) == 900.0 and kpi.period_end == datetime(2024, 12, 16, 12)
        result = OutlookCache().build(store, scorecard, chain=False).of(kpi)
        assert result.forecast_reason is None and result.history == 5
        forecast = result.forecast
        assert (forecast.method, forecast.value, forecast.lower, forecast.upper) == ("unchanged", 900.0, 900.0, 900.0)
        assert result.forecast_period.start == datetime(2024, 12, 1) and result.forecast_period.end == datetime(2025, 1, 1)
        assert result.pacing.status == "on_track" and result.pacing.probabilities == {"green": 1.0, "amber": 0.0, "red": 0.0}
    finally:
        store.engine.dispose()
