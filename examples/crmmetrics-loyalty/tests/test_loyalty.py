"""Tests of crmmetrics-loyalty with the fixtures crmmetrics ships for plugin authors.

Run them after installing the plugin (``pip install -e '.[test]'``): some go through the
installed ``crmmetrics`` command, which finds the plugin by its entry point.
"""

import json
from datetime import datetime

import pytest

from crmmetrics_loyalty import COST_PER_ACTIVE_CUSTOMER, PURCHASE_FREQUENCY

AS_OF = datetime(2026, 6, 15)  # current period: May 2026; previous: April 2026


@pytest.fixture
def loyalty_source(crm_db):
    """Customers 1, 2 (Gold), 3 (Silver), 4 (no segment), and record 5, a duplicate of 1.

    May: customer 1 orders 3 times and once more as record 5; 2, 3 and 4 order once each;
    one anonymous order. April: customer 1 orders once.
    Cost ledger, "loyalty programme": 30 + 10 for May, 25 for April, and 91 for April to June
    (91 days: 30 of them in April, 31 in May); besides, 100 of campaign cost in May and 8 of
    "Loyalty scheme".
    """
    crm_db.insert("segments", [{"segment_id": 1, "name": "Gold"}, {"segment_id": 2, "name": "Silver"}])
    crm_db.insert(
        "customers",
        [
            {"customer_id": customer, "segment_id": segment, "master_customer_id": master}
            for customer, segment, master in [(1, 1, None), (2, 1, None), (3, 2, None), (4, None, None), (5, None, 1)]
        ],
    )
    may = [datetime(2026, 5, day) for day in (2, 9, 16)]
    crm_db.insert(
        "orders",
        [{"customer_id": 1, "ordered_at": moment, "net_revenue": 20.0} for moment in may]
        + [
            {"customer_id": 2, "ordered_at": datetime(2026, 5, 31, 23, 59), "net_revenue": 50.0},
            {"customer_id": 3, "ordered_at": datetime(2026, 5, 1), "net_revenue": 70.0},
            {"customer_id": 4, "ordered_at": datetime(2026, 5, 20), "net_revenue": 10.0},
            {"customer_id": 5, "ordered_at": datetime(2026, 5, 21), "net_revenue": 10.0},
            {"customer_id": None, "ordered_at": datetime(2026, 5, 20), "net_revenue": 5.0},
            {"customer_id": 1, "ordered_at": datetime(2026, 4, 30), "net_revenue": 20.0},
        ],
    )

    def cost(start, amount, description, end=None):
        return {
            "period_start": start,
            "period_end": end or datetime(start.year, start.month + 1, 1),
            "cost_type": "marketing",
            "purpose": "retention",
            "amount": amount,
            "description": description,
        }

    crm_db.insert(
        "cost_entries",
        [
            cost(datetime(2026, 5, 1), 30.0, "loyalty programme"),
            cost(datetime(2026, 5, 1), 10.0, "loyalty programme"),
            cost(datetime(2026, 5, 1), 100.0, "campaign"),
            cost(datetime(2026, 5, 1), 8.0, "Loyalty scheme"),
            cost(datetime(2026, 4, 1), 25.0, "loyalty programme"),
            cost(datetime(2026, 4, 1), 91.0, "loyalty programme", end=datetime(2026, 7, 1)),
        ],
    )
    return crm_db


def test_purchase_frequency(loyalty_source, compute):
    result = compute(PURCHASE_FREQUENCY, loyalty_source.url, as_of=AS_OF)
    assert result.current() == pytest.approx(7 / 4)  # 7 identified orders, 4 customers
    assert result.current(segment="Gold") == pytest.approx(5 / 2)  # record 5 counts as customer 1
    assert result.current(segment="Silver") == pytest.approx(1.0)
    assert result.current(segment="unassigned") == pytest.approx(1.0)
    assert result.previous() == pytest.approx(1.0)
    assert result.previous(segment="Gold") == pytest.approx(1.0)


def test_programme_cost_per_active_customer(loyalty_source, compute):
    result = compute(COST_PER_ACTIVE_CUSTOMER, loyalty_source.url, as_of=AS_OF)
    assert result.current() == pytest.approx((30 + 10 + 31) / 4)
    assert result.previous() == pytest.approx((25 + 30) / 1)
    renamed = compute(COST_PER_ACTIVE_CUSTOMER, loyalty_source.url, as_of=AS_OF, params={"cost_description": "Loyalty scheme"})
    assert renamed.current() == pytest.approx(8 / 4)
    assert renamed.previous() is None  # nothing booked under that name in April: missing, not zero


def test_exposition(loyalty_source, metrics_exposition):
    exposition = metrics_exposition(loyalty_source.url, [PURCHASE_FREQUENCY, COST_PER_ACTIVE_CUSTOMER], as_of=AS_OF)
    value = exposition.value
    assert exposition.metric_value(PURCHASE_FREQUENCY, "current", segment="Gold") == 2.5
    assert value("crmmetrics_metric_by_segment_ratio", metric=PURCHASE_FREQUENCY, period="current", segment="Gold") == 2.5
    assert value("crmmetrics_metric_currency", metric=COST_PER_ACTIVE_CUSTOMER, period="previous") == pytest.approx(55.0)
    info = exposition.samples("crmmetrics_metric_info", metric=COST_PER_ACTIVE_CUSTOMER)[0].labels
    assert (info["plugin"], info["unit"], info["direction"]) == ("loyalty", "currency", "lower_is_better")


def test_default_standards(loaded_plugins):
    standards = loaded_plugins().standards
    frequency, plugin = standards[PURCHASE_FREQUENCY]
    assert (frequency.target, frequency.red, frequency.green, plugin) == (1.5, 1.1, 1.35, "loyalty")
    assert standards[COST_PER_ACTIVE_CUSTOMER][0].direction == "lower_is_better"


def write_config(directory, source_url, extra=""):
    """A crmmetrics.toml on the test's source, with a store beside it and a fixed as-of time."""
    path = directory / "crmmetrics.toml"
    path.write_text(
        f'[source]\nurl = "{source_url}"\n'
        '[store]\nurl = "sqlite:///store.sqlite"\n'
        "[service]\nas_of = 2026-06-15T00:00:00\n" + extra
    )
    return path


def test_plugin_is_installed(crmmetrics_cli):
    result = crmmetrics_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {plugin["name"]: plugin for plugin in json.loads(result.stdout)}
    assert plugins["loyalty"]["metrics"] == [COST_PER_ACTIVE_CUSTOMER, PURCHASE_FREQUENCY]
    assert plugins["loyalty"]["hooks"] == [
        "crmmetrics_cli_commands",
        "crmmetrics_metrics",
        "crmmetrics_standards",
        "crmmetrics_validate_config",
    ]


def test_config_check_refuses_a_blank_cost_description(loyalty_source, crmmetrics_cli, tmp_path):
    config = write_config(tmp_path, loyalty_source.url, f'[metrics.{COST_PER_ACTIVE_CUSTOMER}]\nparams = {{ cost_description = " " }}\n')
    result = crmmetrics_cli("config", "check", str(config))
    assert (result.returncode, result.stderr) == (
        2,
        f"Error: {config}: metrics.{COST_PER_ACTIVE_CUSTOMER}.params.cost_description: must name the loyalty "
        "programme's entries in the cost ledger, not be blank\n",
    )


def test_report_command(loyalty_source, crmmetrics_cli, tmp_path):
    config = write_config(tmp_path, loyalty_source.url)
    assert crmmetrics_cli("loyalty", "report", "--config", str(config)).stdout == (
        "no loyalty KPI values stored yet (run 'crmmetrics run')\n"
    )
    ran = crmmetrics_cli("run", "--config", str(config), "--metric", PURCHASE_FREQUENCY, "--metric", COST_PER_ACTIVE_CUSTOMER)
    assert ran.returncode == 0, ran.stderr
    report = crmmetrics_cli("loyalty", "report", "--config", str(config))
    assert report.returncode == 0, report.stderr
    assert report.stdout.splitlines() == [
        f"{COST_PER_ACTIVE_CUSTOMER}  current 17.75  previous 55.00",
        f"{PURCHASE_FREQUENCY}  current 1.75  previous 1.00",
        f"{PURCHASE_FREQUENCY}{{segment=Gold}}  current 2.50  previous 1.00",
        f"{PURCHASE_FREQUENCY}{{segment=Silver}}  current 1.00  previous -",
        f"{PURCHASE_FREQUENCY}{{segment=unassigned}}  current 1.00  previous -",
    ]
