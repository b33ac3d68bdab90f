"""A shop with known values every month from 2020-01 to 2024-12, for backfill and history tests.

Month i (0-based from 2020-01): customer 1 buys on the web shop for 10(i+1), customer 2 in the
store (outlets) for 20(i+1); in the first month of a quarter an anonymous web order of 30(i+1)
is added. 2020-05 has no orders at all (no data, never 0).
"""

from __future__ import annotations

from datetime import datetime

from crmmetrics.testing import CrmDatabase

MONTHS = 60  # 2020-01 .. 2024-12
EMPTY_MONTH = 4  # 2020-05 has no orders at all: no data, not 0


def month_start(index: int) -> datetime:
    return datetime(2020 + index // 12, index % 12 + 1, 1)


def build_shop(url: str) -> None:
    db = CrmDatabase(url)
    db.insert("segments", [{"segment_id": 1, "name": "Gold", "is_target": True}])
    db.insert("channels", [
        {"channel_id": 1, "name": "Web shop", "category": "e_commerce"},
        {"channel_id": 2, "name": "Store", "category": "outlets"},
    ])
    db.insert("customers", [
        {"customer_id": 1, "segment_id": 1, "acquired_at": datetime(2019, 1, 1)},
        {"customer_id": 2, "segment_id": 1, "acquired_at": datetime(2019, 1, 1)},
    ])
    orders = []
    for i in range(MONTHS):
        if i == EMPTY_MONTH:
            continue
        day = month_start(i).replace(day=10, hour=12)
        k = i + 1
        orders += [
            {"order_id": 3 * i + 1, "customer_id": 1, "ordered_at": day, "channel_id": 1, "net_revenue": 10.0 * k},
            {"order_id": 3 * i + 2, "customer_id": 2, "ordered_at": day, "channel_id": 2, "net_revenue": 20.0 * k},
        ]
        if i % 3 == 0:
            orders.append({"order_id": 3 * i + 3, "customer_id": None, "ordered_at": day, "channel_id": 1, "net_revenue": 30.0 * k})
    db.insert("orders", orders)
    db.dispose()


def expected_aov(i: int) -> float | None:
    """Hand-computed: (10k + 20k) / 2 = 15k, or (10k + 20k + 30k) / 3 = 20k with the anonymous order."""
    if i == EMPTY_MONTH:
        return None
    k = i + 1
    return 20.0 * k if i % 3 == 0 else 15.0 * k


def expected_identified_share(quarter: int) -> float:
    """Percent of a quarter's revenue from identified customers: only its first month has an anonymous order."""
    months = [3 * quarter + m for m in range(3) if 3 * quarter + m != EMPTY_MONTH]
    identified = sum(30.0 * (i + 1) for i in months)
    anonymous = 30.0 * (3 * quarter + 1)
    return 100 * identified / (identified + anonymous)
