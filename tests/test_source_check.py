"""``crmmetrics source check``: rows, date ranges and fill rates per table, and which KPIs the
source can feed, on the demo, an empty source and an orders-only source."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from sqlalchemy import create_engine, func, select

from crmmetrics.core import schema
from crmmetrics.data.demo import generate_demo
from crmmetrics.data.importer import init_source
from test_no_data import EMPTIED, orders_only

AS_OF = "2026-06-15T00:00:00"


def check(crmmetrics_cli, url: str) -> dict:
    done = crmmetrics_cli("source", "check", "--source", url, "--as-of", AS_OF, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as connection:
        found = {name: connection.scalar(select(func.count()).select_from(table)) for name, table in schema.TABLES.items()}
    engine.dispose()
    return found


def test_check_on_the_demo(crmmetrics_cli, tmp_path):
    path = tmp_path / "crm.sqlite"
    generate_demo(f"sqlite:///{path}", customers=200, seed=3, as_of=dt.date(2026, 6, 15))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    report = check(crmmetrics_cli, f"sqlite:///{path}")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # read-only
    rows = counts(f"sqlite:///{path}")
    assert {name: t["rows"] for name, t in report["tables"].items()} == rows
    orders = report["tables"]["orders"]
    assert orders["date_column"] == "ordered_at" and orders["first"] < orders["last"] < "2026-06-15"
    assert report["tables"]["customers"]["date_column"] is None
    assert 0 < report["tables"]["interactions"]["columns"]["handle_seconds"]["fill_rate"] <= 1
    assert report["tables"]["interactions"]["columns"]["handle_seconds"]["needed_by"] == ["mci_avg_handle_time"]
    assert "vc_complaint_rate" in report["tables"]["interactions"]["needed_by"]
    # Every built-in metric can be computed on the demo.
    assert report["metrics"]["not_computable"] == 0
    assert report["metrics"]["computable"] == report["metrics"]["total"] >= 61


def test_check_on_an_empty_source(crmmetrics_cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    init_source(url)
    report = check(crmmetrics_cli, url)
    assert all(t["exists"] and t["rows"] == 0 and t["first"] is None for t in report["tables"].values())
    assert all(rate["fill_rate"] is None for rate in report["tables"]["orders"]["columns"].values())
    details = {m["metric"]: m for m in report["metrics"]["details"]}
    # Every metric declares an input, so nothing can be computed from nothing.
    assert report["metrics"]["computable"] == 0
    assert details["vc_aov"]["reason"] == "no rows in orders (the table is empty)"
    assert details["vc_nps"]["reason"] == "no rows in survey_responses (the table is empty)"
    assert details["pa_employee_turnover"]["reason"] == "no rows in employees (the table is empty)"
    # A database without the canonical tables says so.
    bare = tmp_path / "bare.sqlite"
    create_engine(f"sqlite:///{bare}").connect().close()
    report = check(crmmetrics_cli, f"sqlite:///{bare}")
    assert not any(t["exists"] for t in report["tables"].values())
    assert {m["metric"]: m["reason"] for m in report["metrics"]["details"]}["vc_aov"] == "no table orders in the source"


def test_check_on_an_orders_only_source(crmmetrics_cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'orders.sqlite'}"
    orders_only(url)
    report = check(crmmetrics_cli, url)
    for table in EMPTIED:
        assert report["tables"][table]["rows"] == 0
    assert report["tables"]["orders"]["rows"] == counts(url)["orders"] > 0
    details = {m["metric"]: m for m in report["metrics"]["details"]}
    cannot = {key for key, m in details.items() if not m["computable"]}
    assert {
        "vc_complaint_rate", "vc_nps", "vc_csat", "vc_ces", "vc_cac", "pa_cost_to_serve", "pa_whale_curve_peak",
        "pa_unprofitable_customer_share", "pa_crm_cost_per_active_customer", "mci_romi", "mci_campaign_response_rate",
        "pa_employee_turnover", "pa_enps", "im_source_data_age", "vc_cross_sell_rate",
    } <= cannot
    assert details["vc_complaint_rate"]["reason"] == "no rows in interactions (the table is empty)"
    assert details["vc_aov"] == {"metric": "vc_aov", "name": "Average order value", "period": "2026-05", "computable": True, "reason": None}
    assert {"vc_aov", "sd_active_customers", "vc_clv_bgnbd_gg", "im_identified_revenue_share"} <= set(details) - cannot
    assert report["metrics"]["computable"] + report["metrics"]["not_computable"] == report["metrics"]["total"]
    assert report["metrics"]["not_computable"] == len(cannot)
    # The text report names the same.
    done = crmmetrics_cli("source", "check", "--source", url, "--as-of", AS_OF)
    assert done.returncode == 0, done.stderr
    assert f"{report['metrics']['computable']} of {report['metrics']['total']} metrics can be computed" in done.stdout
    assert "vc_complaint_rate" in done.stdout and "no rows in interactions (the table is empty)" in done.stdout
