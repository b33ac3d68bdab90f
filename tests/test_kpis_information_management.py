"""Information-management KPIs against hand-computed values, on SQLite and PostgreSQL.

As of 2026-04-10 the (monthly) KPIs compare March 2026 (current, customer records as they stand
at 1 April) with February 2026 (previous, records at 1 March).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from crmmetrics.core.errors import ConfigError

AS_OF = datetime(2026, 4, 10)


def at(month, day, year=2026, hour=10):
    return datetime(year, month, day, hour)


CUSTOMERS = [
    # id, created_at, updated_at, email, phone, postcode, segment, acquisition channel, master
    (1, at(1, 1, 2024), at(6, 1, 2025), "a@example.org", "+4930111", "10115", 1, 1, None),  # 5 of 5 filled
    (2, at(5, 1, 2024), at(3, 15, 2025), "", None, "  ", 1, None, None),  # 1 of 5 (blank text is empty)
    (3, at(3, 10), None, "c@example.org", "+4930333", None, None, 2, None),  # 3 of 5; created in March
    (4, at(1, 1, 2025), None, "a@example.org", None, None, None, None, 1),  # duplicate of 1
    (5, None, None, None, None, None, None, None, None),  # creation unknown: always there; 0 of 5
    (6, at(4, 5), None, "f@example.org", "+4930666", "20095", 2, 1, None),  # created after March
    (7, at(12, 1, 2025), at(2, 1), "g@example.org", "+4930777", "20095", 2, 1, 7),  # points at itself: a master
]

FACTS = [
    # source_system, checked_at, dimension, records_checked, records_failed, max_age_hours
    ("crm", at(3, 7), "timeliness", None, None, 20.0),
    ("crm", at(3, 14), "timeliness", None, None, 30.0),
    ("erp", at(3, 7), "timeliness", None, None, 5.0),
    ("erp", at(2, 20), "timeliness", None, None, 50.0),
    ("web", at(3, 21), "timeliness", None, None, None),  # no age measured
    ("crm", at(3, 7), "validity", 100, 5, None),
    ("crm", at(3, 14), "validity", 100, 15, None),
    ("erp", at(3, 7), "validity", 50, None, None),  # failures not stated: none
    ("erp", at(2, 7), "validity", 10, 1, None),
    ("web", at(3, 7), "validity", 0, 0, None),  # nothing checked
    ("crm", at(3, 7), "completeness", 100, 50, None),  # another dimension
]

ORDERS = [
    # id, customer, channel, ordered_at, net_revenue
    (1, 1, 1, at(3, 5), 100.0),
    (2, None, 1, at(3, 6), 50.0),
    (3, 4, 2, at(3, 7), 150.0),  # the duplicate record's order is identified revenue
    (4, None, None, at(3, 8), 200.0),
    (5, 2, 2, at(2, 10), 80.0),
]

EMPLOYEES = [
    # id, customer-facing, hired_at, left_at
    (1, True, at(1, 1, 2020), None),
    (2, True, at(1, 1, 2020), at(3, 15)),  # left in March: employed in March
    (3, True, at(3, 20), None),  # joined in March, logged nothing
    (4, True, at(1, 1, 2019), at(2, 20)),  # left in February
    (5, False, at(1, 1, 2019), None),  # back office
    (6, True, at(4, 2), None),  # joined after March
    (7, True, None, None),  # hire date unknown
]

INTERACTIONS = [
    # id, employee, started_at
    (1, 1, at(3, 3)), (2, 2, at(3, 10)), (3, 5, at(3, 11)), (4, 4, at(2, 10)), (5, 7, at(2, 15)), (6, 1, at(2, 5)),
]


def load(database):
    database.insert("segments", [{"segment_id": 1, "name": "Gold"}, {"segment_id": 2, "name": "Basic"}])
    database.insert(
        "channels",
        [
            {"channel_id": 1, "name": "Stores", "category": "outlets"},
            {"channel_id": 2, "name": "Web shop", "category": "e_commerce", "is_virtual": True, "is_self_service": True},
        ],
    )
    database.insert(
        "customers",
        [
            {"customer_id": i, "created_at": c, "updated_at": u, "email": e, "phone": p, "postcode": z,
             "segment_id": s, "acquisition_channel_id": ch, "master_customer_id": m}
            for i, c, u, e, p, z, s, ch, m in CUSTOMERS
        ],
    )
    database.insert(
        "data_quality_facts",
        [
            {"source_system": sys, "checked_at": t, "dimension": d, "records_checked": n, "records_failed": f,
             "max_age_hours": age}
            for sys, t, d, n, f, age in FACTS
        ],
    )
    database.insert(
        "orders",
        [
            {"order_id": i, "customer_id": c, "channel_id": ch, "ordered_at": t, "net_revenue": r}
            for i, c, ch, t, r in ORDERS
        ],
    )
    database.insert(
        "employees",
        [
            {"employee_id": i, "department": "service", "is_customer_facing": f, "hired_at": h, "left_at": left}
            for i, f, h, left in EMPLOYEES
        ],
    )
    database.insert(
        "interactions",
        [{"interaction_id": i, "employee_id": e, "channel_id": 1, "started_at": t, "kind": "service"} for i, e, t in INTERACTIONS],
    )


@pytest.fixture
def source(source_backend):
    database = source_backend()
    load(database)
    return database



def test_data_completeness(source, compute):
    result = compute("im_data_completeness", source.url, as_of=AS_OF)
    # Master records at 1 April: 1 (5 filled), 2 (1), 3 (3), 5 (0), 7 (5) -> 14 of 25 fields.
    assert result.current() == pytest.approx(56.0)
    # At 1 March (3 not yet created): 1, 2, 5, 7 -> 11 of 20.
    assert result.previous() == pytest.approx(55.0)
    # Only e-mail and phone: 1 (2), 2 (0), 3 (2), 5 (0), 7 (2) -> 6 of 10.
    narrow = compute("im_data_completeness", source.url, as_of=AS_OF, params={"required_fields": "email, phone"})
    assert narrow.current() == pytest.approx(60.0)


def test_data_completeness_rejects_an_unknown_field(source, compute):
    with pytest.raises(ConfigError, match=r"metrics\.im_data_completeness\.params\.required_fields: not a column of customers: 'emial'"):
        compute("im_data_completeness", source.url, as_of=AS_OF, params={"required_fields": "emial,phone"})


def test_duplicate_rate(source, compute):
    result = compute("im_duplicate_rate", source.url, as_of=AS_OF)
    # Records at 1 April: 1, 2, 3, 4, 5, 7; duplicate: 4 (7 points at itself) -> 1 of 6.
    assert result.current() == pytest.approx(100 / 6)
    assert result.previous() == pytest.approx(20.0)  # 1 of 1, 2, 4, 5, 7


def test_data_freshness(source, compute):
    result = compute("im_data_freshness", source.url, as_of=AS_OF)
    # Masters at 1 April, fresh when last updated (or created) on or after 1 April 2025:
    # 1 (June 2025) yes, 2 (March 2025) no, 3 (created March 2026) yes, 5 (no dates) no,
    # 7 (February 2026) yes -> 3 of 5.
    assert result.current() == pytest.approx(60.0)
    # At 1 March the cut-off is 1 March 2025: 1, 2, 7 fresh, 5 not -> 3 of 4.
    assert result.previous() == pytest.approx(75.0)
    # Within 30 days of 1 April: only 3.
    recent = compute("im_data_freshness", source.url, as_of=AS_OF, params={"max_age_days": 30})
    assert recent.current() == pytest.approx(20.0)


def test_source_data_age(source, compute):
    result = compute("im_source_data_age", source.url, as_of=AS_OF)
    # The worst March timeliness check per system: crm 30 h, erp 5 h; web measured nothing.
    assert result.by_dimension_values() == pytest.approx({("crm",): 30.0, ("erp",): 5.0, (): 30.0})
    assert result.by_dimension_values("previous") == pytest.approx({("erp",): 50.0, (): 50.0})


def test_validity_rate(source, compute):
    result = compute("im_validity_rate", source.url, as_of=AS_OF)
    # March validity checks: crm 200 checked, 20 failed -> 90%; erp 50, none failed -> 100%;
    # web checked nothing; the completeness check is another dimension. Overall 230 / 250.
    assert result.by_dimension_values() == pytest.approx({("crm",): 90.0, ("erp",): 100.0, (): 92.0})
    assert result.by_dimension_values("previous") == pytest.approx({("erp",): 90.0, (): 90.0})


def test_identified_revenue_share(source, compute):
    result = compute("im_identified_revenue_share", source.url, as_of=AS_OF)
    # March: stores 100 identified of 150; web shop 150 (duplicate record: still identified) of
    # 150; the anonymous order without channel (200) is 'unassigned' (0 of 200): 250 of 500.
    assert result.by_dimension_values() == pytest.approx(
        {("outlets",): 100 * 100 / 150, ("e_commerce",): 100.0, ("unassigned",): 0.0, (): 50.0}
    )
    assert result.by_dimension_values("previous") == pytest.approx({("e_commerce",): 100.0, (): 100.0})


def test_crm_adoption_rate(source, compute):
    result = compute("im_crm_adoption_rate", source.url, as_of=AS_OF)
    # Customer-facing employees employed in March: 1, 2, 3, 7; logged an interaction: 1, 2.
    assert result.current() == pytest.approx(50.0)
    # February: 1, 2, 4, 7 employed; 1, 4, 7 logged one -> 3 of 4.
    assert result.previous() == pytest.approx(75.0)


def test_clv_forecast_needs_repeat_customers(source, compute):
    # Five orders, no customer came back: the model cannot be fitted, so there is no value.
    for key in ("im_clv_forecast_correlation", "im_clv_forecast_error"):
        result = compute(key, source.url, as_of=AS_OF)
        assert (result.current(), result.previous()) == (None, None)


CDNOW = Path(__file__).parent / "data" / "cdnow" / "CDNOW_sample.txt"  # see ATTRIBUTION.md there


@pytest.fixture
def cdnow_source(source_backend):
    """The CDNOW sample (2,357 customers, 6,919 orders in 1997-1998) as a canonical source."""
    orders = []
    for number, line in enumerate(CDNOW.read_text().splitlines(), start=1):
        _master, customer, day, _cds, dollars = line.split()
        ordered_at = datetime(int(day[:4]), int(day[4:6]), int(day[6:]))
        orders.append({"order_id": number, "customer_id": int(customer), "ordered_at": ordered_at, "net_revenue": float(dollars)})
    database = source_backend()
    database.insert("customers", [{"customer_id": i} for i in sorted({o["customer_id"] for o in orders})])
    database.insert("orders", orders)
    return database


def test_clv_forecast_reproduces_the_cdnow_holdout(cdnow_source, compute):
    # Fader, Hardie & Lee 2005: BG/NBD calibrated on the 39 weeks to 30 September 1997, tested
    # on the 39 weeks (273 days) to 30 June 1998. Correlation of the conditional expectations
    # with the actual holdout purchase days: 0.626 (published).
    options = {"as_of": datetime(1998, 7, 1), "period": "trailing_273d"}
    correlation = compute("im_clv_forecast_correlation", cdnow_source.url, **options)
    assert correlation.current() == pytest.approx(0.626, abs=0.0005)
    assert correlation.previous() is None  # nobody had bought before 1997
    # The customers' 1,882 holdout purchase days (2,457 in calibration: together the published
    # 4,339) against 1,653.4 expected: 12.15% too few.
    error = compute("im_clv_forecast_error", cdnow_source.url, **options)
    assert error.current() == pytest.approx(100 * (1882 - 1653.41) / 1882, abs=0.01)



def test_default_standards(loaded_plugins):
    standards = {label: spec for label, (spec, _plugin) in loaded_plugins().standards.items() if "{" not in label}
    assert {key for key in standards if key.startswith("im_")} == {
        "im_data_completeness", "im_duplicate_rate", "im_data_freshness", "im_source_data_age",
        "im_validity_rate", "im_identified_revenue_share", "im_crm_adoption_rate",
        "im_clv_forecast_correlation", "im_clv_forecast_error",
    }
    duplicates = standards["im_duplicate_rate"]  # lower is better: red above green
    assert (duplicates.red, duplicates.green, duplicates.fixed_target) == (5, 1, 1)

