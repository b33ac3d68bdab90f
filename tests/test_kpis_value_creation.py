"""Value-creation KPIs against values computed by hand on the small shop
(tests/support/small_shop.py), on SQLite and PostgreSQL, and on the demo source.

The model-based CLV KPIs are checked against crmmetrics.kpi.clv in test_kpis_clv.py; here only
that they refuse a customer base too small to fit.
"""

from __future__ import annotations

import pytest
from support import small_shop
from support.small_shop import AS_OF

from crmmetrics_plugins import value_creation

MODEL_KEYS = ["vc_ltv_cac_ratio", "vc_clv_bgnbd_gg", "vc_expected_alive_customers", "vc_customer_equity", "vc_segment_clv"]


@pytest.fixture
def shop(source_backend):
    database = source_backend()
    small_shop.build(database)
    return database


def by(dimension, result, period="current"):
    """Values by one dimension's value (the total left out)."""
    return {dict(dims)[dimension]: value for dims, value in result.dimension_values(period).items() if dims}


def segments(result, period="current"):
    return by("segment", result, period)


def test_nps(shop, compute):
    # February, 0-10 answers only: 10, 9, 9 (web), 7, 3 (store), 6 (no channel); the answer on a
    # 1-5 scale is left out. Promoters 3, detractors 2 (3 and 6) of 6: 100 * 1 / 6.
    # Web 3 of 3 promoters: 100; store 0 - 1 of 2: -50; the answer without a channel is
    # reported as 'unassigned' (one detractor: -100). January: one 10 on the web.
    result = compute("vc_nps", shop.url, as_of=AS_OF)
    assert result.current() == pytest.approx(100 / 6)
    assert by("channel_category", result) == pytest.approx({"e_commerce": 100.0, "outlets": -50.0, "unassigned": -100.0})
    assert result.previous() == pytest.approx(100.0)


def test_csat(shop, compute):
    # February: web 5, 4, 3 on 1-5 (top two boxes 4-5: 2 of 3); store 2 on 1-5 (no) and 6 on 1-7
    # (top two boxes 6-7: yes) -> 1 of 2. Total 3 of 5. No answers in January.
    result = compute("vc_csat", shop.url, as_of=AS_OF)
    assert result.current() == pytest.approx(60.0)
    assert by("channel_category", result) == pytest.approx({"e_commerce": 200 / 3, "outlets": 50.0})
    assert result.previous() is None


def test_ces(shop, compute):
    # February on 1-7: 7, 5 (web), 4 (store) -> 16 / 3; the CES 1.0 answer (1-5) is left out.
    # January: 6 in the store.
    result = compute("vc_ces", shop.url, as_of=AS_OF)
    assert result.current() == pytest.approx(16 / 3)
    assert by("channel_category", result) == pytest.approx({"e_commerce": 6.0, "outlets": 4.0})
    assert result.previous() == pytest.approx(6.0)


def test_complaint_rate(shop, compute):
    # February: 4 complaints (1, 6 = 1, 3, anonymous); active in the 365 days before 2026-03-01:
    # 1-5 -> 1000 * 4 / 5. Gold: 2 complaints / 2 customers; Silver 1 / 2; unassigned (customer
    # 5, without a segment, and the anonymous complaint) 1 / 1.
    # January: 1 complaint (5); active in the year before 2026-02-01: 1, 3, 5.
    result = compute("vc_complaint_rate", shop.url, as_of=AS_OF)
    assert result.current() == pytest.approx(800.0)
    assert segments(result) == pytest.approx({"Gold": 1000.0, "Silver": 500.0, "unassigned": 1000.0})
    assert result.previous() == pytest.approx(1000 / 3)
    assert segments(result, "previous") == pytest.approx({"Gold": 0.0, "Silver": 0.0, "unassigned": 1000.0})


def test_new_customers(shop, compute):
    # February: 2 (store) and 4 (web); the duplicate record 6 is not a new customer. January: none.
    result = compute("vc_new_customers", shop.url, as_of=AS_OF)
    assert result.current() == 2
    assert by("channel_category", result) == {"e_commerce": 1, "outlets": 1}
    assert result.previous() == 0


def test_cac(shop, compute):
    # February acquisition cost: web 300 + store 590 * 28 / 59 = 280 + 20 without channel = 600;
    # 2 new customers -> 300. Web 300 / 1, store 280 / 1; the 20 without a channel are
    # 'unassigned', with no customer acquired there: no value. January: 310 but nobody acquired.
    result = compute("vc_cac", shop.url, as_of=AS_OF)
    assert result.current() == pytest.approx(300.0)
    assert by("channel_category", result) == pytest.approx({"e_commerce": 300.0, "outlets": 280.0, "unassigned": None})
    assert result.previous() is None
    assert by("channel_category", result, "previous") == {"outlets": None}


def test_cac_payback(shop, compute):
    # Margin of the identified orders in the 365 days before 2026-03-01 (all of them; NULL cogs at
    # 0.3): 40 + 15 + 20 + 40 + 20 + 30 + 35 + 25 + 12 + 15 + 45 + 25 + 20 + 7.5 + 15 = 364.5, over
    # 5 customers and 12 months = 6.075 a month. CAC 300 / 6.075. January has no CAC.
    result = compute("vc_cac_payback_months", shop.url, as_of=AS_OF)
    assert result.current() == pytest.approx(300 / 6.075)
    assert result.previous() is None
    # With a margin share of 0.5 for NULL cogs: 364.5 + 0.2 * (50 + 40 + 25) = 387.5.
    richer = compute("vc_cac_payback_months", shop.url, as_of=AS_OF, params={"margin_share": 0.5})
    assert richer.current() == pytest.approx(300 / (387.5 / 5 / 12))


def test_active_retention_and_churn(shop, compute):
    # Default quarter: Q3 2025 buyers 1 (09-01) and 5 (07-01, 08-01); Q4 buyers: 3 only -> 0 %.
    # Q2 buyers 1 (06-01) and 5 (06-15) both bought in Q3 -> 100 %.
    quarter = compute("vc_active_retention_rate", shop.url, as_of=AS_OF)
    assert quarter.current() == pytest.approx(0.0)
    assert segments(quarter) == pytest.approx({"Gold": 0.0, "unassigned": 0.0})
    assert quarter.previous() == pytest.approx(100.0)
    # Months: January buyers 1, 3, 5; of them 1 and 3 bought in February -> 2 / 3. December
    # buyer 3 bought in January -> 100 %.
    retention = compute("vc_active_retention_rate", shop.url, as_of=AS_OF, period="month")
    assert retention.current() == pytest.approx(200 / 3)
    assert segments(retention) == pytest.approx({"Gold": 100.0, "Silver": 100.0, "unassigned": 0.0})
    assert retention.previous() == pytest.approx(100.0)
    churn = compute("vc_active_churn_rate", shop.url, as_of=AS_OF, period="month")
    assert churn.current() == pytest.approx(100 / 3)
    assert segments(churn) == pytest.approx({"Gold": 0.0, "Silver": 0.0, "unassigned": 100.0})
    assert churn.previous() == pytest.approx(0.0)


def test_contract_retention_and_churn(shop, compute):
    # Contract customers (master records): 1 (Gold, since 2025-06-01) and 3 (Silver, since
    # 2025-12-10, churned 2026-02-15); the duplicate 6 does not count. February: both under
    # contract on 02-01, 3 churned -> retention 50 %, churn 50 %. January: both, nobody churned.
    retention = compute("vc_contract_retention_rate", shop.url, as_of=AS_OF, period="month")
    assert retention.current() == pytest.approx(50.0)
    assert segments(retention) == pytest.approx({"Gold": 100.0, "Silver": 0.0})
    assert retention.previous() == pytest.approx(100.0)
    churn = compute("vc_contract_churn_rate", shop.url, as_of=AS_OF, period="month")
    assert churn.current() == pytest.approx(50.0)
    assert segments(churn) == pytest.approx({"Gold": 0.0, "Silver": 100.0})
    assert churn.previous() == pytest.approx(0.0)
    # Default quarter Q4 2025: only 1 was under contract on 10-01, and stayed.
    quarter = compute("vc_contract_retention_rate", shop.url, as_of=AS_OF)
    assert quarter.current() == pytest.approx(100.0)


def test_repeat_purchase_rate(shop, compute):
    # Trailing year: purchase days 1: 5, 2: 1, 3: 3, 4: 1, 5: 4 -> 3 of 5 came back. Customer 1's
    # two February orders on 02-02 are one purchase day. The year before: nobody bought.
    result = compute("vc_repeat_purchase_rate", shop.url, as_of=AS_OF)
    assert result.current() == pytest.approx(60.0)
    assert segments(result) == pytest.approx({"Gold": 50.0, "Silver": 50.0, "unassigned": 100.0})
    assert result.previous() is None
    # February: only 1 bought on two days (02-02 and 02-12 through the duplicate) -> 1 of 4.
    month = compute("vc_repeat_purchase_rate", shop.url, as_of=AS_OF, period="month")
    assert month.current() == pytest.approx(25.0)
    assert month.previous() == pytest.approx(0.0)


def test_purchase_frequency(shop, compute):
    # Trailing year: (5 + 1 + 3 + 1 + 4) / 5. February: (2 + 1 + 1 + 1) / 4, Gold (2 + 1) / 2.
    result = compute("vc_purchase_frequency", shop.url, as_of=AS_OF)
    assert result.current() == pytest.approx(2.8)
    month = compute("vc_purchase_frequency", shop.url, as_of=AS_OF, period="month")
    assert month.current() == pytest.approx(1.25)
    assert segments(month) == pytest.approx({"Gold": 1.5, "Silver": 1.0})
    assert month.previous() == pytest.approx(1.0)


def test_average_order_value(shop, compute):
    # February 380 over 7 orders (anonymous included); January 160 over 3.
    result = compute("vc_aov", shop.url, as_of=AS_OF)
    assert result.current() == pytest.approx(380 / 7)
    assert result.previous() == pytest.approx(160 / 3)
    # Per purchase occasion: customer 1's orders 1 and 2 on 2 February are one occasion, their
    # duplicate record 6 on 12 February another; the anonymous order 6 counts alone -> 6.
    occasions = compute("vc_aov", shop.url, as_of=AS_OF, params={"basis": "occasion"})
    assert occasions.current() == pytest.approx(380 / 6)
    assert occasions.previous() == pytest.approx(160 / 3)


def test_share_of_wallet(shop, compute):
    # Trailing year (365 days: no annualisation). Wallets: 1 its own 2000, 2 Gold 1000, 3 and 4
    # Silver 500; 5 has no wallet and is left out. Spend 380 + 80 + 135 + 60 = 655 of 4000.
    # Gold 460 / 3000, Silver 195 / 1000.
    result = compute("vc_share_of_wallet", shop.url, as_of=AS_OF)
    assert result.current() == pytest.approx(16.375)
    assert segments(result) == pytest.approx({"Gold": 100 * 460 / 3000, "Silver": 19.5})
    assert result.previous() is None
    # February (28 days): spend 180 + 80 + 40 + 60 = 360 annualised x 365 / 28, of 4000.
    month = compute("vc_share_of_wallet", shop.url, as_of=AS_OF, period="month")
    assert month.current() == pytest.approx(100 * 360 * 365 / 28 / 4000)


def test_cross_sell_rate(shop, compute):
    # February customers with order lines: 1 {devices, accessories}, 2 {devices}, 3 {services}
    # (4 has none) -> 1 of 3. January: 1 {accessories}, 3 {services, insurance}, 5 {devices}.
    result = compute("vc_cross_sell_rate", shop.url, as_of=AS_OF, period="month")
    assert result.current() == pytest.approx(100 / 3)
    assert segments(result) == pytest.approx({"Gold": 50.0, "Silver": 0.0})
    assert result.previous() == pytest.approx(100 / 3)
    assert segments(result, "previous") == pytest.approx({"Gold": 0.0, "Silver": 100.0, "unassigned": 0.0})


def test_net_revenue_retention(shop, compute):
    # January buyers 1 (70), 3 (50), 5 (40) = 160 spent 180 + 40 + 0 = 220 in February.
    # December buyer 3 (45) spent 50 in January.
    result = compute("vc_net_revenue_retention", shop.url, as_of=AS_OF, period="month")
    assert result.current() == pytest.approx(137.5)
    assert segments(result) == pytest.approx({"Gold": 100 * 180 / 70, "Silver": 80.0, "unassigned": 0.0})
    assert result.previous() == pytest.approx(100 * 50 / 45)


def test_simple_clv(shop, compute):
    # February: margin 40 + 15 + 20 + 40 + 20 + 30 = 165 over 4 customers, m = 41.25; r = 2 / 3.
    # Without discounting: m r / (1 - r) = 82.5. Gold and Silver kept every January buyer (r = 1):
    # no finite value undiscounted. January: m = (35 + 25 + 12) / 3 = 24, r = 1.
    flat = compute("vc_clv_simple", shop.url, as_of=AS_OF, period="month", params={"annual_discount_rate": 0.0})
    assert flat.current() == pytest.approx(82.5)
    assert segments(flat)["Gold"] is None
    assert flat.previous() is None
    # At 10 % a year, per month of d days: d_month = 1.1 ** (days / 365.25) - 1.
    discounted = compute("vc_clv_simple", shop.url, as_of=AS_OF, period="month")
    february, january = 1.1 ** (28 / 365.25) - 1, 1.1 ** (31 / 365.25) - 1
    assert discounted.current() == pytest.approx(41.25 * (2 / 3) / (1 + february - 2 / 3))
    assert segments(discounted)["Gold"] == pytest.approx(57.5 / february)
    assert discounted.previous() == pytest.approx(24 / january)


@pytest.mark.parametrize("key", MODEL_KEYS)
def test_model_kpis_refuse_too_few_repeat_customers(shop, compute, key):
    # Repeat customers before 2026-03-01: 1, 3 and 5 only.
    result = compute(key, shop.url, as_of=AS_OF)
    assert result.run.status == "failed"
    assert "at least 10 customers with a repeat purchase" in result.run.error
    assert "found 3 among 5 customers" in result.run.error



def test_standards_agree_with_the_definitions():
    definitions = {definition.key: definition for definition in value_creation.crmmetrics_metrics()}
    for standard in value_creation.crmmetrics_standards():
        assert standard.problem(definitions[standard.metric].direction) is None
