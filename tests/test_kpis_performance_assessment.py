"""Performance-assessment KPIs against hand-computed values, on SQLite and PostgreSQL.

As of 2026-04-10 the monthly KPIs compare March 2026 (current, 31 days) with February 2026
(previous, 28 days); the employee surveys (quarterly) compare Q1 2026 with Q4 2025.
"""

from __future__ import annotations

from datetime import datetime

import pytest


AS_OF = datetime(2026, 4, 10)


def at(month, day, year=2026, hour=10):
    return datetime(year, month, day, hour)


MARCH = (at(3, 1, hour=0), at(4, 1, hour=0))
FEBRUARY = (at(2, 1, hour=0), at(3, 1, hour=0))

EMPLOYEES = [
    # id, hired_at, left_at, leave_type, fte
    (1, at(1, 1, 2020), None, None, 1.0),
    (2, at(1, 1, 2020), at(3, 15), "voluntary", 1.0),
    (3, at(3, 10), None, None, 0.5),
    (4, at(1, 1, 2019), at(3, 31), "involuntary", 1.0),
    (5, at(1, 1, 2018), at(2, 10), "voluntary", 0.8),
    (6, at(3, 1, hour=0), None, None, 1.0),  # hired at the first moment of March: there at its start
    (7, None, at(3, 20), None, 0.5),  # hire date and leave type unknown
]

EMPLOYEE_ANSWERS = [
    # instrument, responded_at, score, scale_min, scale_max
    ("esat", at(3, 1), 5, 1, 5), ("esat", at(3, 1), 4, 1, 5), ("esat", at(3, 2), 3, 1, 5),
    ("esat", at(3, 2), 2, 1, 5), ("esat", at(2, 2), 6, 1, 7), ("esat", at(2, 3), 5, None, None),
    ("esat", at(11, 5, 2025), 3, 1, 5),
    ("enps", at(3, 1), 10, 0, 10), ("enps", at(3, 1), 9, 0, 10), ("enps", at(3, 2), 9, 0, 10),
    ("enps", at(3, 2), 8, 0, 10), ("enps", at(3, 3), 6, 0, 10), ("enps", at(3, 3), 7, None, None),
    ("enps", at(3, 4), 5, 1, 5),  # not the eNPS scale
    ("enps", at(11, 5, 2025), 3, 0, 10), ("enps", at(11, 5, 2025), 10, 0, 10),
    ("engagement", at(3, 1), 5, 1, 5), ("engagement", at(3, 1), 4, 1, 5), ("engagement", at(3, 1), 3, 1, 5),
    ("engagement", at(3, 2), 1, 0, 1), ("engagement", at(3, 2), 0, 0, 1), ("engagement", at(3, 2), 5, None, None),
]

CHANNELS = [
    {"channel_id": 1, "name": "Stores", "category": "outlets"},
    {"channel_id": 2, "name": "Web shop", "category": "e_commerce", "is_virtual": True, "is_self_service": True},
    {"channel_id": 3, "name": "Contact centre", "category": "telephony", "is_virtual": True},
]

# Customer 5 is a duplicate of 3 (its own segment, Gold, is ignored: the master's Basic counts).
CUSTOMERS = [(1, 1, None), (2, 1, None), (3, 2, None), (4, 2, None), (5, 1, 3), (6, None, None)]

ORDERS = [
    # id, customer, channel, ordered_at, net_revenue, cogs (None: margin_share applies)
    (1, 1, 1, at(3, 2), 3000.0, 1800.0),
    (2, 2, 2, at(3, 5), 500.0, None),
    (3, 3, 2, at(3, 8), 200.0, 150.0),
    (4, 5, 1, at(3, 9), 300.0, 200.0),
    (5, None, 1, at(3, 10), 1000.0, 700.0),
    (6, 6, 2, at(3, 12), 100.0, None),
    (7, 1, 1, at(2, 10), 2000.0, 1000.0),
]

INTERACTIONS = [
    # id, customer, channel, started_at
    (1, 4, 3, at(3, 3)), (2, 1, 3, at(3, 4)), (3, None, 2, at(3, 5)), (4, 2, 2, at(3, 6)), (5, 1, 3, at(2, 12)),
]

COSTS = [
    # cost_type, purpose, channel, segment, customer, (period_start, period_end), amount
    ("service", "service", 3, None, None, MARCH, 200.0),
    ("fulfilment", None, 1, None, None, MARCH, 300.0),
    ("fulfilment", None, 2, None, None, MARCH, 500.0),
    ("service", "service", None, None, 5, MARCH, 50.0),
    ("service", "retention", None, 1, None, MARCH, 120.0),
    ("service", None, None, None, None, MARCH, 100.0),
    ("service", "acquisition", 1, None, None, MARCH, 1000.0),  # onboarding: acquisition, not serving
    ("sales", "retention", 1, None, None, MARCH, 70.0),  # sales are not serving costs
    ("marketing", "retention", 2, None, None, MARCH, 400.0),
    ("it", "infrastructure", None, None, None, MARCH, 300.0),
    ("service", "service", 3, None, None, FEBRUARY, 90.0),
]


def load(database):
    database.insert("segments", [{"segment_id": 1, "name": "Gold"}, {"segment_id": 2, "name": "Basic"}])
    database.insert("channels", CHANNELS)
    database.insert(
        "customers", [{"customer_id": i, "segment_id": s, "master_customer_id": m} for i, s, m in CUSTOMERS]
    )
    database.insert(
        "orders",
        [
            {"order_id": i, "customer_id": c, "channel_id": ch, "ordered_at": t, "net_revenue": r, "cogs": cogs}
            for i, c, ch, t, r, cogs in ORDERS
        ],
    )
    database.insert(
        "employees",
        [
            {"employee_id": i, "department": "service", "is_customer_facing": True, "hired_at": h, "left_at": left,
             "leave_type": kind, "fte": fte}
            for i, h, left, kind, fte in EMPLOYEES
        ],
    )
    database.insert(
        "employee_survey_responses",
        [
            {"instrument": i, "responded_at": t, "score": s, "scale_min": lo, "scale_max": hi}
            for i, t, s, lo, hi in EMPLOYEE_ANSWERS
        ],
    )
    database.insert(
        "interactions",
        [{"interaction_id": i, "customer_id": c, "channel_id": ch, "started_at": t, "kind": "service"}
         for i, c, ch, t in INTERACTIONS],
    )
    database.insert(
        "cost_entries",
        [
            {"cost_type": kind, "purpose": purpose, "channel_id": ch, "segment_id": seg, "customer_id": cust,
             "period_start": span[0], "period_end": span[1], "amount": amount}
            for kind, purpose, ch, seg, cust, span, amount in COSTS
        ],
    )


@pytest.fixture
def source(source_backend):
    database = source_backend()
    load(database)
    return database



def test_employee_satisfaction(source, compute):
    result = compute("pa_employee_satisfaction", source.url, as_of=AS_OF)
    # Q1 answers with a scale, top two boxes: 5 and 4 of 1-5 yes, 3 and 2 no, 6 of 1-7 yes -> 3 of
    # 5 (the answer without a scale is left out). Q4 2025: 3 of 1-5 -> 0%.
    assert result.current() == pytest.approx(60.0)
    assert result.previous() == 0.0


def test_employee_satisfaction_by_department(crm_db, compute):
    answers = [
        # instrument, department, score, scale max
        ("esat", "service", 5, 5), ("esat", "service", 4, 5), ("esat", "retail", 3, 5), ("esat", "retail", 5, 5),
        ("esat", None, 2, 5),
    ]
    crm_db.insert(
        "employee_survey_responses",
        [
            {"instrument": i, "department": d, "responded_at": at(2, 10), "score": s, "scale_min": 1, "scale_max": hi}
            for i, d, s, hi in answers
        ],
    )
    satisfaction = compute("pa_employee_satisfaction", crm_db.url, as_of=AS_OF)
    # service 2 of 2 top-two, retail 1 of 2; the answer without a department is 'unassigned' (0 of 1)
    assert satisfaction.by_dimension_values() == {
        (): pytest.approx(60.0), ("service",): 100.0, ("retail",): 50.0, ("unassigned",): 0.0
    }


def test_enps(source, compute):
    result = compute("pa_enps", source.url, as_of=AS_OF)
    # Q1 answers on 0-10 (or no scale stated): promoters 10, 9, 9; passives 8, 7; detractor 6
    # -> 100 * (3 - 1) / 6; the 5 on a 1-5 scale is not an eNPS answer. Q4: 3 and 10 -> 0.
    assert result.current() == pytest.approx(100 * 2 / 6)
    assert result.previous() == 0.0


def test_employee_engagement(source, compute):
    result = compute("pa_employee_engagement", source.url, as_of=AS_OF)
    # Q1 answers with a scale, engaged at 75% of it: 5 and 4 of 1-5 yes, 3 no; flag 1 yes, 0 no.
    assert result.current() == pytest.approx(60.0)
    assert result.previous() is None  # no Q4 answers
    # At 90% of the scale only the 5 and the flag 1 count.
    strict = compute("pa_employee_engagement", source.url, as_of=AS_OF, params={"engaged_threshold": 0.9})
    assert strict.current() == pytest.approx(40.0)


def test_employee_turnover(source, compute):
    result = compute("pa_employee_turnover", source.url, as_of=AS_OF)
    # March headcount: at 1 March 1, 2, 4, 6, 7 (5); at 1 April 1, 3, 6 (3); mean 4. Leavers: 2
    # (voluntary), 4 (involuntary), 7 (leave type unknown: 'unassigned'). Each type: 1 / 4 * 365 /
    # 31 = 294.35% a year.
    one = 100 * 1 / 4 * 365 / 31
    assert result.by_dimension_values() == pytest.approx(
        {("voluntary",): one, ("involuntary",): one, ("unassigned",): one, (): 3 * one}
    )
    # February: headcount 5 at 1 February (1, 2, 4, 5, 7) and 5 at 1 March; 5 left (voluntary).
    feb = 100 * 1 / 5 * 365 / 28
    assert result.by_dimension_values("previous") == pytest.approx({("voluntary",): feb, (): feb})


def test_revenue_per_employee(source, compute):
    result = compute("pa_revenue_per_employee", source.url, as_of=AS_OF)
    # March revenue 5,100 (anonymous included); FTE at 1 March 1 + 1 + 1 + 1 + 0.5 = 4.5, at 1
    # April 1 + 0.5 + 1 = 2.5 -> mean 3.5.
    assert result.current() == pytest.approx(5100 / 3.5)
    # February: 2,000 over the mean of 4.3 (1, 2, 4, 5 at 0.8, 7 at 0.5) and 4.5.
    assert result.previous() == pytest.approx(2000 / 4.4)


def test_gross_margin_by_segment(source, compute):
    result = compute("pa_gross_margin_by_segment", source.url, as_of=AS_OF)
    # March gross margin (0.3 of revenue where cogs is NULL): orders 1 1,200; 2 150; 3 50; 4 100;
    # 5 (anonymous) 300; 6 30 -> 1,830 of 5,100 overall. Gold (1, 2): 1,350 of 3,500; Basic
    # (3 with its duplicate 5): 150 of 500; 'unassigned': the anonymous order 5 and customer 6
    # (no segment), 330 of 1,100.
    assert result.by_dimension_values() == pytest.approx(
        {("Gold",): 100 * 1350 / 3500, ("Basic",): 30.0, ("unassigned",): 30.0, (): 100 * 1830 / 5100}
    )
    assert result.by_dimension_values("previous") == pytest.approx({("Gold",): 50.0, (): 50.0})
    # A margin share of 0.5 lifts orders 2 (250) and 6 (50).
    other = compute("pa_gross_margin_by_segment", source.url, as_of=AS_OF, params={"margin_share": 0.5})
    assert other.by_dimension_values() == pytest.approx(
        {("Gold",): 100 * 1450 / 3500, ("Basic",): 30.0, ("unassigned",): 100 * 350 / 1100, (): 100 * 1950 / 5100}
    )


# Customer profitability in March. Activities (orders and interactions): stores: order 1 (1),
# order 4 (3), order 5 (anonymous) = 3; web shop: orders 2 (2), 3 (3), 6 (6), interactions 3
# (anonymous), 4 (2) = 5; contact centre: interactions 1 (4), 2 (1) = 2; all 10. Customers served:
# 1 (2 activities), 2 (2), 3 (2), 4 (1), 6 (1). Serving costs (service and fulfilment, not for
# acquisition) assigned:
#   contact centre 200 by activity: 4 -> 100, 1 -> 100
#   stores 300: 1 -> 100, 3 -> 100 (the anonymous order carries the third 100)
#   web shop 500: 2 -> 200, 3 -> 100, 6 -> 100 (anonymous 100)
#   customer 5's 50 goes to its master 3
#   Gold's 120 by activity in the segment (1: 2, 2: 2): 60 each
#   untagged 100 by all activity: 1, 2, 3 -> 20 each, 4, 6 -> 10 each (anonymous 20)
# Cost to serve: 1 280, 2 280, 3 270, 4 110, 6 110 = 1,050. Gross margin: 1 1,200, 2 150, 3 150,
# 4 0, 6 30. Profit: 1 920, 2 -130, 3 -120, 4 -110, 6 -80 = 480.
# February: customer 1 served (order 7, interaction 5), the contact centre's 90 -> profit 910.


def test_cost_to_serve(source, compute):
    result = compute("pa_cost_to_serve", source.url, as_of=AS_OF)
    # 1,050 over 5 customers served; Gold (1, 2) 560 / 2; Basic (3, 4) 380 / 2; 6 (no segment) 110.
    assert result.by_dimension_values() == pytest.approx({("Gold",): 280.0, ("Basic",): 190.0, ("unassigned",): 110.0, (): 210.0})
    assert result.by_dimension_values("previous") == pytest.approx({("Gold",): 90.0, (): 90.0})


def test_unprofitable_customer_share(source, compute):
    result = compute("pa_unprofitable_customer_share", source.url, as_of=AS_OF)
    # Unprofitable: 2, 3, 4, 6 of 5; Gold 2 of (1, 2); Basic 3 and 4 of (3, 4); unassigned 6 of (6).
    assert result.by_dimension_values() == pytest.approx({("Gold",): 50.0, ("Basic",): 100.0, ("unassigned",): 100.0, (): 80.0})
    assert result.by_dimension_values("previous") == pytest.approx({("Gold",): 0.0, (): 0.0})


def test_whale_curve_peak(source, compute):
    result = compute("pa_whale_curve_peak", source.url, as_of=AS_OF)
    # Sorted by profit: 920, -80, -110, -120, -130; the cumulative profit peaks at 920 after the
    # first customer, 920 / 480 of the total.
    assert result.current() == pytest.approx(100 * 920 / 480)
    assert result.previous() == pytest.approx(100.0)  # one customer: 910 of 910


def test_crm_cost_per_active_customer(source, compute):
    result = compute("pa_crm_cost_per_active_customer", source.url, as_of=AS_OF)
    # March marketing, sales, service and IT costs: 200 + 50 + 120 + 100 + 1,000 + 70 + 400 + 300
    # = 2,240 (fulfilment is not CRM cost); active customers (an order): 1, 2, 3 (with 5), 6 -> 4.
    assert result.current() == pytest.approx(2240 / 4)
    assert result.previous() == pytest.approx(90.0)  # 90 for customer 1



def test_default_standards(loaded_plugins):
    standards = {label: spec for label, (spec, _plugin) in loaded_plugins().standards.items() if "{" not in label}
    turnover = standards["pa_employee_turnover"]  # lower is better: red above green
    assert (turnover.red, turnover.green, turnover.fixed_target) == (40, 20, 15)
    assert (standards["pa_enps"].red, standards["pa_enps"].green) == (0, 10)
    # Currency and industry-specific KPIs have no default.
    for key in ("pa_revenue_per_employee", "pa_cost_to_serve", "pa_crm_cost_per_active_customer", "pa_gross_margin_by_segment"):
        assert key not in standards

