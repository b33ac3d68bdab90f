"""Strategy-development KPIs against values computed by hand on the small shop
(tests/support/small_shop.py), on SQLite and PostgreSQL, and on the demo source."""

from __future__ import annotations

import pytest
from support import small_shop
from support.small_shop import AS_OF

from crmmetrics_plugins import strategy_development



@pytest.fixture
def shop(source_backend):
    database = source_backend()
    small_shop.build(database)
    return database


def segments(result, period="current"):
    """Values by segment name."""
    return {dict(dims)["segment"]: value for dims, value in result.dimension_values(period).items() if dims}


def test_active_customers(shop, compute):
    # Trailing 365 days to 2026-03-10: customers 1-5 all bought (customer 6 is customer 1);
    # Gold 1, 2; Silver 3, 4; customer 5 has no segment. The year before: no orders at all.
    result = compute("sd_active_customers", shop.url, as_of=AS_OF)
    assert result.current() == 5
    assert segments(result) == {"Gold": 2, "Silver": 2, "unassigned": 1}
    # No orders at all is no data, not "nobody was active".
    assert result.previous() is None
    assert result.missing == {"previous": "no rows in orders for 2024-03-10 to 2025-03-09"}
    # February: 1, 2, 3, 4; January: 1, 3, 5.
    month = compute("sd_active_customers", shop.url, as_of=AS_OF, period="month")
    assert (month.current(), month.previous()) == (4, 3)
    assert segments(month, "previous") == {"Gold": 1, "Silver": 1, "unassigned": 1}


def test_segment_revenue_share(shop, compute):
    # February 380: Gold 180 (1, incl. the duplicate's 30) + 80 (2) = 260, Silver 40 + 60 = 100,
    # anonymous 20 -> unassigned. January 160: Gold 70, Silver 50, customer 5 (no segment) 40.
    result = compute("sd_segment_revenue_share", shop.url, as_of=AS_OF)
    assert segments(result) == pytest.approx({"Gold": 100 * 260 / 380, "Silver": 100 * 100 / 380, "unassigned": 100 * 20 / 380})
    assert segments(result, "previous") == pytest.approx({"Gold": 43.75, "Silver": 31.25, "unassigned": 25.0})


def test_target_segment_penetration(shop, compute):
    # Target segments with a market size: Gold (10) with 2 active customers, Bronze (40) with none.
    # Total 2 / 50. The year before nobody was active.
    result = compute("sd_target_segment_penetration", shop.url, as_of=AS_OF)
    assert result.current() == pytest.approx(4.0)
    assert segments(result) == pytest.approx({"Gold": 20.0, "Bronze": 0.0})
    assert result.previous() is None
    assert result.missing["previous"].startswith("no rows in orders for ")


def test_revenue_concentration(shop, compute):
    # Trailing year: 1 380, 2 80, 3 135, 4 60, 5 120 = 775 identified; top ceil(0.2 * 5) = 1
    # customer: 380 / 775. The year before: no customers -> missing.
    result = compute("sd_revenue_concentration_top20", shop.url, as_of=AS_OF)
    assert result.current() == pytest.approx(100 * 380 / 775)
    assert result.previous() is None
    # February: 4 customers, top 1 = customer 1 with 180 of 360; January: 3 customers, 70 of 160.
    month = compute("sd_revenue_concentration_top20", shop.url, as_of=AS_OF, period="month")
    assert month.current() == pytest.approx(50.0)
    assert month.previous() == pytest.approx(43.75)
    # Another share: the top 40% are ceil(0.4 * 5) = 2 customers, 1 and 3: (380 + 135) / 775.
    wider = compute("sd_revenue_concentration_top20", shop.url, as_of=AS_OF, params={"top_share": 0.4})
    assert wider.current() == pytest.approx(100 * 515 / 775)
    everyone = compute("sd_revenue_concentration_top20", shop.url, as_of=AS_OF, params={"top_share": 1})
    assert everyone.current() == pytest.approx(100.0)


def test_rfm_shares(shop, compute):
    # Snapshot at 2026-03-01, N = 5 customers, score = 1 + floor(5 (rank - 1) / 5) = rank:
    #   R by last day: 5 (01-25) 1, 2 (02-05) 2, 4 (02-09) 3, 1 (02-12) 4, 3 (02-14) 5
    #   F by days: 2 and 4 (1 day, tie: both rank 1 -> 1), 3 (3 days) 3, 5 (4) 4, 1 (5) 5
    #   M: 4 (60) 1, 2 (80) 2, 5 (120) 3, 3 (135) 4, 1 (380) 5
    # Champions (R, F, M >= 4): customer 1 only. At risk (R <= 2, F >= 4): customer 5 only.
    # Snapshot at 2026-02-01, N = 3 (1, 3, 5), score = 1 + floor(5 (rank - 1) / 3): 1, 2, 4:
    #   R: 1 -> 1, 3 -> 2, 5 -> 4; F (3, 2, 4 days): 3 -> 1, 1 -> 2, 5 -> 4; M (200, 95, 120): 3 -> 1, 5 -> 2, 1 -> 4
    #   nobody is a champion (5 has M 2) or at risk (1 and 3 have F < 4).
    champions = compute("sd_rfm_champion_share", shop.url, as_of=AS_OF)
    assert champions.current() == pytest.approx(20.0)
    assert segments(champions) == pytest.approx({"Gold": 50.0, "Silver": 0.0, "unassigned": 0.0})
    assert champions.previous() == pytest.approx(0.0)
    at_risk = compute("sd_rfm_at_risk_share", shop.url, as_of=AS_OF)
    assert at_risk.current() == pytest.approx(20.0)
    assert segments(at_risk) == pytest.approx({"Gold": 0.0, "Silver": 0.0, "unassigned": 100.0})
    assert at_risk.previous() == pytest.approx(0.0)


def test_new_customer_revenue_share(shop, compute):
    # February: 2 (acquired 02-05, 80) and 4 (02-08, 60) are new; the duplicate 6 (created 02-10)
    # is customer 1, acquired 2025. 140 / 380. January: nobody acquired -> 0 of 160.
    result = compute("sd_new_customer_revenue_share", shop.url, as_of=AS_OF)
    assert result.current() == pytest.approx(100 * 140 / 380)
    assert result.previous() == pytest.approx(0.0)



def test_standards_agree_with_the_definitions():
    definitions = {definition.key: definition for definition in strategy_development.crmmetrics_metrics()}
    for standard in strategy_development.crmmetrics_standards():
        assert standard.problem(definitions[standard.metric].direction) is None
