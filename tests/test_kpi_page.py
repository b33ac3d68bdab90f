"""The page of one KPI (/kpi/KEY) in a real headless Chromium: the chart's points are the
stored values, its bands are the standard's thresholds, the breakdown lists every dimension
value, and screenshots at 1,400 px and 400 px wide are kept in test-artifacts/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import datetime

import pytest

from crmmetrics.readers.history import history_snapshots
from crmmetrics.serve.server import make_server
from crmmetrics.store.store import Store
from support.monthly_shop import build_shop, expected_aov
from test_page import ARTIFACTS, DomParser, chromium, png_size


def crmmetrics(config, *args):
    done = subprocess.run([sys.executable, "-m", "crmmetrics", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "CRMMETRICS_USER": "test-admin"})
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    directory = tmp_path_factory.mktemp("kpi-page")
    build_shop(f"sqlite:///{directory / 'crm.sqlite'}")
    config = directory / "crmmetrics.toml"
    config.write_text(
        f'[source]\nurl = "sqlite:///{directory / "crm.sqlite"}"\n[store]\nurl = "sqlite:///{directory / "store.sqlite"}"\n'
        '[logging]\nlevel = "WARNING"\n'
    )
    metrics = ["--metric", "vc_aov", "--metric", "mci_channel_revenue_mix"]
    crmmetrics(config, "backfill", *metrics, "--from", "2023-01-01", "--to", "2025-01-01")
    crmmetrics(config, "run", *metrics, "--as-of", "2025-01-10")  # the live run: latest period December 2024
    crmmetrics(config, "standards", "set", "vc_aov", "--target", "600", "--red", "300", "--green", "500", "--valid-from", "2020-01-01")
    crmmetrics(config, "standards", "set", "vc_aov", "--green", "550", "--target", "650", "--valid-from", "2024-06-01")
    store = Store(f"sqlite:///{directory / 'store.sqlite'}")
    server = make_server(store, "127.0.0.1", 0).start()
    yield server.url, store
    server.stop()
    store.engine.dispose()


def dom_of(url, tmp_path):
    done = chromium("--dump-dom", url, user_data_dir=tmp_path / "profile")
    assert done.returncode == 0 and "</html>" in done.stdout, done.stderr[-2000:]
    parser = DomParser()
    parser.feed(done.stdout)
    return parser.root


def test_chart_points_bands_breakdown_standard_and_runs(site, tmp_path):
    url, store = site
    root = dom_of(f"{url}/kpi/vc_aov", tmp_path)
    chart = root.find("section", id="history").find("div", cls="wide").find("svg", cls="history")
    assert chart.attrs["role"] == "img" and "currency" in chart.attrs["aria-label"]
    assert chart.children[0].tag == "title" and chart.children[0].text == "Average order value per reporting period, in currency"
    points = chart.find_all("circle", cls="point")
    stored = {s.period_start: s.current() for s in history_snapshots(store, keys=["vc_aov"])}
    assert len(points) == len(stored) == 24  # 2023-01 .. 2024-12
    for point in points:
        start = datetime.fromisoformat(point.attrs["data-period-start"].removesuffix("Z"))
        assert float(point.attrs["data-value"]) == stored[start]
        index = (start.year - 2020) * 12 + start.month - 1
        assert float(point.attrs["data-value"]) == pytest.approx(expected_aov(index))
        assert point.children[0].text.startswith(f"{start:%Y-%m}: ")
    # The bands are the standard in force: red at 300, green at 550 (the later change), target 650.
    bands = chart.find("g", cls="bands")
    assert (float(bands.attrs["data-red"]), float(bands.attrs["data-green"])) == (300.0, 550.0)
    assert {b.attrs["data-band"] for b in chart.find_all("rect", cls="band")} == {"red", "amber", "green"}
    assert float(chart.find("line", cls="target").attrs["data-target"]) == 650.0
    assert "value (currency)" in chart.text and "reporting period" in chart.text
    # The standard's history: both changes, newest first, with who made them.
    changes = root.find("section", id="standard-history").find_all("tr")
    rows = [row for row in changes if "data-change-id" in row.attrs]
    assert len(rows) == 2 and "test-admin" in rows[0].text and "550" in rows[0].text and "500" in rows[1].text
    # Last runs with their status and kind: the live run is the newest.
    runs = root.find("section", id="runs").find_all("tr", data_status="success")
    assert len(runs) == 15 and "live" in runs[0].text and "backfill" in runs[1].text


def test_breakdown_lists_every_dimension_value(site, tmp_path):
    url, store = site
    root = dom_of(f"{url}/kpi/mci_channel_revenue_mix", tmp_path)
    breakdown = root.find("section", id="breakdown")
    assert "2024-12" in breakdown.find("h2").text
    bars = breakdown.find("div", cls="wide").find_all("g", cls="bar")
    latest = {
        o.dimensions["channel_category"]: o.value
        for o in store.latest_observations()
        if o.metric_key == "mci_channel_revenue_mix" and o.period_label == "current" and o.dimensions
    }
    assert {b.attrs["data-label"]: float(b.attrs["data-value"]) for b in bars if b.attrs["data-value"]} == {
        k: v for k, v in latest.items() if v is not None
    }
    assert set(latest) == {b.attrs["data-label"] for b in bars}
    # December 2024 (k = 60): web 600 + anonymous 0, store 1200 -> one third and two thirds.
    assert latest["e_commerce"] == pytest.approx(100 / 3) and latest["outlets"] == pytest.approx(200 / 3)
    # Reported only by channel category: one line per value in the history chart.
    series = root.find("section", id="history").find("div", cls="wide").find_all("g", cls="series")
    assert {s.attrs["data-series"] for s in series} >= {"e_commerce", "outlets"}


def test_scorecard_cards_link_to_their_page_with_a_sparkline(site, tmp_path):
    url, store = site
    root = dom_of(f"{url}/", tmp_path)
    card = root.find("li", cls="kpi", data_metric="vc_aov")
    assert card.find("a", cls="kpi-link").attrs["href"] == "/kpi/vc_aov"
    spark = card.find("svg", cls="spark")

    stored = [s.current() for s in history_snapshots(store, keys=["vc_aov"])][-24:]
    assert json.loads(spark.attrs["data-values"]) == stored


def test_unknown_kpi_is_404(site):
    url, _store = site
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"{url}/kpi/no_such_metric", timeout=10)
    assert error.value.code == 404


@pytest.mark.parametrize("width", [1400, 400])
def test_screenshots(site, tmp_path, width):
    url, _store = site
    ARTIFACTS.mkdir(exist_ok=True)
    for key in ("vc_aov", "mci_channel_revenue_mix"):
        shot = ARTIFACTS / f"kpi-{key}-{width}.png"
        shot.unlink(missing_ok=True)
        done = chromium(f"--window-size={width},1400", f"--screenshot={shot}", f"{url}/kpi/{key}", user_data_dir=tmp_path / f"p-{key}")
        assert done.returncode == 0, done.stderr[-2000:]
        assert png_size(shot) == (width, 1400)
        assert shot.stat().st_size > 30_000
