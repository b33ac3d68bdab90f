"""A transaction log of customer, date and amount is enough for the value KPIs and CLV.

The CDNOW sample (tests/data/cdnow, see ATTRIBUTION.md) written as a plain export, imported with
the real CLI (column mapping, a date format, customers derived from the orders), then the
BG/NBD + Gamma-Gamma KPIs computed on it with the calibration of Fader, Hardie & Lee 2005
(up to 1997-09-30): the published P(alive) of customer 1 comes out through the whole path.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from crmmetrics.clv import fit_bgnbd, p_alive, rfm_summary

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
