"""History round trip: backfill the demo, export OpenMetrics, make TSDB blocks with promtool,
start a real Prometheus on them and read past periods back at their timestamps."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime

import pytest

from crmmetrics.readers.exporter import timestamp
from crmmetrics.readers.history import history_snapshots
from crmmetrics.store.store import Store

pytestmark = pytest.mark.prometheus


def crmmetrics(*args, cwd=None):
    done = subprocess.run([sys.executable, "-m", "crmmetrics", *args], capture_output=True, text=True, cwd=cwd, timeout=600)
    assert done.returncode == 0, done.stderr
    return done


def test_backfilled_history_reaches_prometheus_at_each_period_end(tmp_path, prometheus):
    demo = tmp_path / "demo"
    crmmetrics("demo", "--dir", str(demo), "--customers", "300", "--seed", "3", "--once", "--history-months", "0")
    config = str(demo / "crmmetrics.toml")
    crmmetrics("backfill", "--config", config, "--metric", "vc_aov", "--metric", "mci_channel_revenue_mix", "--from", "2025-06-01")
    history = demo / "history.om"
    crmmetrics("history", "export", "--config", config, "--format", "openmetrics", "--output", str(history))
    text = history.read_text()
    assert text.endswith("# EOF\n")

    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed (scripts/install-test-deps.sh)"
    made = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(history), str(prometheus.data_dir)],
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr + made.stdout
    # No scrape target: every value Prometheus has comes from the blocks.
    prometheus.start(targets=[], flags=["--storage.tsdb.retention.time=5y"])

    store = Store(f"sqlite:///{demo / 'store.sqlite'}")
    aov = {s.period_start: s for s in history_snapshots(store, keys=["vc_aov"])}
    mix = {s.period_start: s for s in history_snapshots(store, keys=["mci_channel_revenue_mix"])}
    store.engine.dispose()
    checked = 0
    for month in (datetime(2025, 6, 1), datetime(2025, 9, 1), datetime(2026, 1, 1)):
        snapshot = aov[month]
        at = timestamp(snapshot.period_end)
        answer = prometheus.query('crmmetrics_metric_currency{metric="vc_aov", period="current"}', time=at)
        assert len(answer) == 1
        assert float(answer[0]["value"][1]) == pytest.approx(snapshot.current(), rel=1e-12)
        assert answer[0]["value"][0] == pytest.approx(at)
        # A breakdown arrives in its own family, as a ratio, labelled like /metrics labels it.
        share = prometheus.query(
            'crmmetrics_metric_by_channel_category_ratio{metric="mci_channel_revenue_mix", period="current", channel_category="e_commerce"}',
            time=at,
        )
        assert float(share[0]["value"][1]) == pytest.approx(mix[month].current(channel_category="e_commerce") / 100, rel=1e-12)
        # The period bounds travel with the value.
        start = prometheus.query('crmmetrics_metric_period_start_timestamp_seconds{metric="vc_aov", period="current"}', time=at)
        assert float(start[0]["value"][1]) == timestamp(month)
        checked += 1
    assert checked == 3
    # Between two period ends an instant query finds nothing (no invented values in between).
    assert prometheus.query('crmmetrics_metric_currency{metric="vc_aov", period="current"}', time=timestamp(datetime(2025, 6, 15))) == []
