"""A transaction log of customer, date and amount is enough for the value KPIs and CLV.

The CDNOW sample (tests/data/cdnow, see ATTRIBUTION.md) written as a plain export, imported with
the real CLI (column mapping, a date format, customers derived from the orders), then the
BG/NBD + Gamma-Gamma KPIs computed on it with the calibration of Fader, Hardie & Lee 2005
(up to 1997-09-30): the published P(alive) of customer 1 comes out through the whole path.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from crmmetrics.kpi.clv import fit_bgnbd, p_alive, rfm_summary
from crmmetrics.testing import render_exposition

CDNOW = Path(__file__).parent / "data" / "cdnow" / "CDNOW_sample.txt"
# as_of 1997-10-01 with a 273-day (39-week) period: the current period ends on 1997-09-30.
AS_OF = datetime(1997, 10, 1)
PERIOD = "trailing_273d"


def crmmetrics(*args):
    return subprocess.run([sys.executable, "-m", "crmmetrics", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def imported_log(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cdnow-import")
    export = directory / "transactions.csv"
    with open(export, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["cust", "date", "dollars"])  # another system's names
        for line in CDNOW.read_text().splitlines():
            _master, customer, day, _cds, dollars = line.split()
            writer.writerow([customer, day, dollars])
    url = f"sqlite:///{directory / 'crm.sqlite'}"
    (directory / "crm.sqlite").touch()
    assert crmmetrics("source", "init", url).returncode == 0
    done = crmmetrics(
        "import", "orders", str(export), "--source", url,
        "--map", "cust=customer_id", "--map", "date=ordered_at", "--map", "dollars=net_revenue",
        "--date-format", "%Y%m%d", "--derive-customers",
    )
    assert done.returncode == 0, done.stderr
    return url


def test_clv_kpis_from_an_imported_transaction_log(imported_log, compute):
    clv = compute("vc_clv_bgnbd_gg", imported_log, as_of=AS_OF, period=PERIOD)
    assert clv.run.status == "success", clv.run.error
    by_customer = {row["customer_id"]: row for row in clv.customer_values}
    assert len(by_customer) == 2357  # every customer derived from the log, each with model outputs
    # Fader, Hardie & Lee 2005: customer 1 (x=2, t_x=30.43, T=38.86 weeks) is alive with P = 0.727.
    assert by_customer[1]["p_alive"] == pytest.approx(0.727, abs=0.0005)
    assert clv.current() > 0 and np.isfinite(clv.current())

    # The model's expected alive customers equal the sum of P(alive) fitted directly on the raw file.
    raw = np.loadtxt(CDNOW, dtype=str)
    days = np.array([f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in raw[:, 2]], dtype="datetime64[D]")
    summary = rfm_summary(raw[:, 1].astype(int), days, raw[:, 4].astype(float), calibration_end="1997-09-30")
    expected = p_alive(fit_bgnbd(summary.x, summary.t_x, summary.T), summary.x, summary.t_x, summary.T).sum()
    alive = compute("vc_expected_alive_customers", imported_log, as_of=AS_OF, period=PERIOD)
    assert alive.current() == pytest.approx(expected, rel=1e-4)

    # Plain value KPIs work on the same three columns.
    aov = compute("vc_aov", imported_log, as_of=AS_OF, period=PERIOD)
    in_calibration = days <= np.datetime64("1997-09-30")
    assert aov.current() == pytest.approx(raw[in_calibration, 4].astype(float).sum() / in_calibration.sum())
    repeat = compute("vc_repeat_purchase_rate", imported_log, as_of=AS_OF, period=PERIOD)
    assert repeat.current() == pytest.approx(100 * 946 / 2357, abs=0.01)  # 40.1 % (catalogue, CDNOW)


def test_models_show_gives_the_published_cdnow_fit(imported_log, tmp_path):
    """Fader, Hardie & Lee 2005 (BG/NBD) and Fader & Hardie 2013 (Gamma-Gamma) on the CDNOW
    calibration period, read back through `crmmetrics models show --json` after a real run."""
    config = tmp_path / "crmmetrics.toml"
    config.write_text(
        f'[source]\nurl = "{imported_log}"\n[store]\nurl = "sqlite:///{tmp_path / "store.sqlite"}"\n'
        f'[service]\nas_of = {AS_OF.isoformat()}\n[metrics.vc_clv_bgnbd_gg]\nperiod = "{PERIOD}"\n'
    )
    run = crmmetrics("run", "--config", str(config), "--metric", "vc_clv_bgnbd_gg")
    assert run.returncode == 0, run.stderr
    shown = crmmetrics("models", "show", "--config", str(config), "--json")
    assert shown.returncode == 0, shown.stderr
    fits = {(f["model"], f["period"]): f for f in json.loads(shown.stdout)}
    bg, gg = fits[("bgnbd", "current")], fits[("gamma_gamma", "current")]
    assert bg["calibration_end"] == "1997-10-01T00:00:00Z" and bg["metric"] == "vc_clv_bgnbd_gg"
    assert {k: round(v, 3) for k, v in bg["parameters"].items()} == {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    assert bg["log_likelihood"] == pytest.approx(-9582.4, abs=0.1)
    assert (bg["customers"], bg["converged"]) == (2357, True)
    assert {k: round(v, 2) for k, v in gg["parameters"].items()} == {"p": 6.25, "q": 3.74, "gamma": 15.44}
    assert gg["log_likelihood"] == pytest.approx(-4055.9, abs=0.05)
    assert (gg["customers"], gg["converged"]) == (946, True)

    # The same fits as gauges on /metrics.
    exposition = render_exposition(f"sqlite:///{tmp_path / 'store.sqlite'}")
    labels = {"metric": "vc_clv_bgnbd_gg", "period": "current"}
    exported = {s.labels["parameter"]: s.value for s in exposition.samples("crmmetrics_model_fit_parameter", model="bgnbd", **labels)}
    assert exported == bg["parameters"]
    assert exposition.value("crmmetrics_model_fit_log_likelihood", model="gamma_gamma", **labels) == gg["log_likelihood"]
    assert exposition.value("crmmetrics_model_fit_customers", model="bgnbd", **labels) == 2357
    assert exposition.value("crmmetrics_model_fit_converged", model="gamma_gamma", **labels) == 1


def test_a_fit_that_did_not_converge_fails_its_kpis_with_the_reason(imported_log, compute, monkeypatch):
    import crmmetrics.kpi.clv

    monkeypatch.setattr(crmmetrics.kpi.clv, "MAX_ITERATIONS", 3)  # the search stops long before the optimum
    clv = compute("vc_clv_bgnbd_gg", imported_log, as_of=AS_OF, period=PERIOD, params={"horizon_months": 11})
    assert clv.run.status == "failed"
    assert clv.run.error.startswith("MetricError: BG/NBD fit at 1997-10-01 00:00 did not converge after 3 iterations: ")
    assert "ITERATIONS REACHED LIMIT" in clv.run.error  # L-BFGS-B's own words
    assert clv.values == {}  # no numbers from it
