"""End to end: demo data -> crmmetrics serve -> a real Prometheus -> the value equals the store's."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from crmmetrics.store.store import Store

pytestmark = pytest.mark.prometheus


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("e2e")
    done = subprocess.run(
        [sys.executable, "-m", "crmmetrics", "demo", "--dir", str(directory), "--customers", "300", "--seed", "3", "--once", "--history-months", "0"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "computed" in done.stderr
    return directory


def stored_value(directory, metric, **dimensions):
    store = Store(f"sqlite:///{directory / 'store.sqlite'}")
    try:
        for observation in store.latest_observations():
            if observation.metric_key == metric and observation.period_label == "current" and observation.dimensions == dimensions:
                return observation.value
    finally:
        store.engine.dispose()
    raise AssertionError(f"no stored value for {metric} {dimensions}")


def test_prometheus_scrapes_the_stored_values(demo_dir, prometheus, crmmetrics_service):
    service = crmmetrics_service(demo_dir / "crmmetrics.toml")
    prometheus.start(targets=[f"127.0.0.1:{service.port}"])
    prometheus.wait_for('up{job="crmmetrics"} == 1')

    result = prometheus.wait_for('crmmetrics_metric_currency{metric="vc_aov", period="current"}')
    assert float(result[0]["value"][1]) == pytest.approx(stored_value(demo_dir, "vc_aov"), rel=1e-12)

    # A percentage arrives as a ratio, in the breakdown family of its dimension.
    share = prometheus.wait_for(
        'crmmetrics_metric_by_channel_category_ratio{metric="mci_channel_revenue_mix", period="current", channel_category="e_commerce"}'
    )
    assert float(share[0]["value"][1]) == pytest.approx(
        stored_value(demo_dir, "mci_channel_revenue_mix", channel_category="e_commerce") / 100, rel=1e-12
    )
    # The migration examples of CHANGELOG.md run: the CSAT percentage, hours from seconds.
    csat = prometheus.query('crmmetrics_metric_ratio{metric="vc_csat", period="current"} * 100')
    assert float(csat[0]["value"][1]) == pytest.approx(stored_value(demo_dir, "vc_csat"), rel=1e-12)
    ages = prometheus.query('crmmetrics_metric_by_source_system_seconds{metric="im_source_data_age", period="current"} / 3600')
    age = next(float(s["value"][1]) for s in ages if s["metric"]["source_system"] == "crm")
    assert age == pytest.approx(stored_value(demo_dir, "im_source_data_age", source_system="crm"), rel=1e-12)
    # sum() over a breakdown counts each customer once: it equals the total.
    total = prometheus.query('crmmetrics_metric_customers{metric="vc_new_customers", period="current"}')
    summed = prometheus.query('sum(crmmetrics_metric_by_channel_category_customers{metric="vc_new_customers", period="current"})')
    assert float(summed[0]["value"][1]) == pytest.approx(float(total[0]["value"][1]))
    # Every process is on the scrape, and the service reports its own health.
    values = prometheus.query('{__name__=~"crmmetrics_metric_.+", period="current"}')
    processes = {series["metric"]["process"] for series in values if "process" in series["metric"]}
    assert processes == {
        "strategy_development", "value_creation", "multichannel_integration", "information_management", "performance_assessment",
    }
    up = prometheus.query("crmmetrics_run_up == 1")
    assert len(up) >= 10
    assert service.stop() == 0  # SIGTERM shuts down cleanly


def test_promtool_finds_no_problems_in_the_exposition(demo_dir, crmmetrics_service):
    service = crmmetrics_service(demo_dir / "crmmetrics.toml")
    exposition = service.metrics()
    assert "crmmetrics_metric_ratio{" in exposition and "crmmetrics_metric_by_segment_ratio{" in exposition
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed: run scripts/install-test-deps.sh"
    checked = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == ""


def test_landing_page_lists_kpis(demo_dir, crmmetrics_service):
    import urllib.request

    service = crmmetrics_service(demo_dir / "crmmetrics.toml")
    page = urllib.request.urlopen(service.url + "/").read().decode()
    assert page.lower().startswith("<!doctype html>")
    assert "vc_aov" in page


def test_runs_written_by_another_process_reach_the_next_scrape(demo_dir, crmmetrics_service):
    """A run written by `crmmetrics run` in another process shows up on the next scrape once the
    server looks at the store's change marker again (at most once a second: recheck_after)."""
    import time

    service = crmmetrics_service(demo_dir / "crmmetrics.toml")
    before = service.metrics()
    looked = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "crmmetrics", "run", "--config", str(demo_dir / "crmmetrics.toml"), "--metric", "vc_nps", "--json"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)[0]["id"]
    time.sleep(max(0.0, looked + 1.2 - time.monotonic()))  # a quick run may end inside that second
    after = service.metrics()
    assert 'crmmetrics_runs_total{metric="vc_nps",plugin="value_creation"}' in after
    count = lambda text: float(text.split('crmmetrics_runs_total{metric="vc_nps",plugin="value_creation"} ')[1].split()[0])  # noqa: E731
    assert count(after) == count(before) + 1
    assert run_id > 0
