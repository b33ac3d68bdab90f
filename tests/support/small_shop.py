"""A small shop, small enough to compute every strategy-development and value-creation KPI by hand.

Seen as of 2026-03-10: the current month is February 2026, the previous one January 2026.

Segments: 1 Gold (target, market 10, wallet 1000), 2 Silver (not a target, market 100, wallet
500), 3 Bronze (target, market 40, no customers). Channels: 1 Web shop (e_commerce), 2 Store
(outlets).

Customers (master records unless said otherwise):

=====  =======  ==========  =======  ===================================  ================
id     segment  acquired    channel  contract                             category_wallet
=====  =======  ==========  =======  ===================================  ================
1      Gold     2025-06-01  web      contract, not churned                2000
2      Gold     2026-02-05  store    none
3      Silver   2025-12-10  web      contract, churned 2026-02-15
4      Silver   2026-02-08  web
5      (none)   2025-01-01  (none)
6      Silver   2026-02-10  store    contract -- a DUPLICATE of 1: counts as customer 1 (Gold)
=====  =======  ==========  =======  ===================================  ================

Orders (net revenue / cogs; "-" = NULL cogs, margin share 0.3 applies -> margin in brackets):

=====  ========  ================  =======  =====  ====  ======
order  customer  ordered_at        channel  net    cogs  margin
=====  ========  ================  =======  =====  ====  ======
1      1         2026-02-02 10:00  web      100    60    40
2      1         2026-02-02 15:00  store    50     -     15     (same day as order 1)
3      6 (->1)   2026-02-12 09:00  store    30     10    20
4      2         2026-02-05 12:00  store    80     40    40
5      3         2026-02-14 12:00  web      40     20    20
6      anon.     2026-02-20 12:00  store    20     -     (6)
7      4         2026-02-09 12:00  web      60     30    30
8      1         2026-01-10 12:00  web      70     35    35
9      3         2026-01-20 12:00  web      50     25    25
10     5         2026-01-25 12:00  store    40     -     12
11     5         2025-06-15 12:00  store    30     15    15
12     1         2025-06-01 12:00  web      90     45    45
13     3         2025-12-10 12:00  web      45     20    25
14     1         2025-09-01 12:00  web      40     20    20
15     5         2025-07-01 12:00  store    25     -     7.5
16     5         2025-08-01 12:00  store    25     10    15
=====  ========  ================  =======  =====  ====  ======

February: revenue 380 (identified 360: customer 1 180 on two purchase days, 2 80, 3 40, 4 60;
anonymous 20), 7 orders. January: 160 (1 70, 3 50, 5 40), 3 orders. December 2025: 3 45.
Purchase days up to February: 1 five (2025-06-01, 09-01, 2026-01-10, 02-02, 02-12), 2 one,
3 three, 4 one, 5 four.

Order lines, interactions, survey responses and cost entries: see the functions below.
"""

from __future__ import annotations

from datetime import datetime

AS_OF = datetime(2026, 3, 10)


def _order(order_id, customer_id, ordered_at, channel_id, net, cogs):
    return {
        "order_id": order_id,
        "customer_id": customer_id,
        "ordered_at": ordered_at,
        "channel_id": channel_id,
        "net_revenue": float(net),
        "cogs": None if cogs is None else float(cogs),
    }


def insert(database, table: str, rows: list[dict]) -> None:
    """Insert rows that may leave out columns (NULL), as one executemany needs the same keys."""
    columns = {column for row in rows for column in row}
    database.insert(table, [{column: row.get(column) for column in columns} for row in rows])


def build(database) -> None:
    """Fill ``database`` (a ``CrmDatabase``) with the small shop."""
    insert(
        database,
        "segments",
        [
            {"segment_id": 1, "name": "Gold", "is_target": True, "market_size_customers": 10, "wallet_per_customer": 1000.0},
            {"segment_id": 2, "name": "Silver", "is_target": False, "market_size_customers": 100, "wallet_per_customer": 500.0},
            {"segment_id": 3, "name": "Bronze", "is_target": True, "market_size_customers": 40, "wallet_per_customer": None},
        ],
    )
    insert(
        database,
        "channels",
        [
            {"channel_id": 1, "name": "Web shop", "category": "e_commerce"},
            {"channel_id": 2, "name": "Store", "category": "outlets"},
        ],
    )
    insert(
        database,
        "customers",
        [
            {"customer_id": 1, "segment_id": 1, "acquired_at": datetime(2025, 6, 1), "acquisition_channel_id": 1,
             "contract_type": "contract", "category_wallet": 2000.0},
            {"customer_id": 2, "segment_id": 1, "acquired_at": datetime(2026, 2, 5), "acquisition_channel_id": 2,
             "contract_type": "none"},
            {"customer_id": 3, "segment_id": 2, "acquired_at": datetime(2025, 12, 10), "acquisition_channel_id": 1,
             "contract_type": "contract", "churned_at": datetime(2026, 2, 15)},
            {"customer_id": 4, "segment_id": 2, "acquired_at": datetime(2026, 2, 8), "acquisition_channel_id": 1},
            {"customer_id": 5, "segment_id": None, "acquired_at": datetime(2025, 1, 1)},
        ],
    )
    insert(
        database,
        "customers",
        [
            {"customer_id": 6, "segment_id": 2, "acquired_at": datetime(2026, 2, 10), "acquisition_channel_id": 2,
             "contract_type": "contract", "master_customer_id": 1},
        ],
    )
    insert(
        database,
        "orders",
        [
            _order(1, 1, datetime(2026, 2, 2, 10), 1, 100, 60),
            _order(2, 1, datetime(2026, 2, 2, 15), 2, 50, None),
            _order(3, 6, datetime(2026, 2, 12, 9), 2, 30, 10),
            _order(4, 2, datetime(2026, 2, 5, 12), 2, 80, 40),
            _order(5, 3, datetime(2026, 2, 14, 12), 1, 40, 20),
            _order(6, None, datetime(2026, 2, 20, 12), 2, 20, None),
            _order(7, 4, datetime(2026, 2, 9, 12), 1, 60, 30),
            _order(8, 1, datetime(2026, 1, 10, 12), 1, 70, 35),
            _order(9, 3, datetime(2026, 1, 20, 12), 1, 50, 25),
            _order(10, 5, datetime(2026, 1, 25, 12), 2, 40, None),
            _order(11, 5, datetime(2025, 6, 15, 12), 2, 30, 15),
            _order(12, 1, datetime(2025, 6, 1, 12), 1, 90, 45),
            _order(13, 3, datetime(2025, 12, 10, 12), 1, 45, 20),
            _order(14, 1, datetime(2025, 9, 1, 12), 1, 40, 20),
            _order(15, 5, datetime(2025, 7, 1, 12), 2, 25, None),
            _order(16, 5, datetime(2025, 8, 1, 12), 2, 25, 10),
        ],
    )
    # Product categories: February 1 {devices, accessories}, 2 {devices}, 3 {services}, 4 has no
    # lines; January 1 {accessories}, 3 {services, insurance}, 5 {devices}.
    lines = [
        (1, 1, "devices", 100), (2, 1, "accessories", 50), (3, 1, "devices", 30),
        (4, 1, "devices", 50), (4, 2, "devices", 30), (5, 1, "services", 40),
        (8, 1, "accessories", 70), (9, 1, "services", 25), (9, 2, "insurance", 25), (10, 1, "devices", 40),
    ]
    insert(
        database,
        "order_lines",
        [{"order_id": o, "line_no": n, "product_category": c, "quantity": 1.0, "net_revenue": float(v)} for o, n, c, v in lines],
    )
    # Complaints: February by 1 (web), 6 (the duplicate of 1), 3 and one anonymous; an inquiry of
    # 2 that is no complaint. January: one complaint by 5.
    interactions = [
        (1, 1, 1, datetime(2026, 2, 3), "complaint"),
        (2, 6, 2, datetime(2026, 2, 13), "complaint"),
        (3, 3, 1, datetime(2026, 2, 15), "complaint"),
        (4, None, 2, datetime(2026, 2, 21), "complaint"),
        (5, 2, 2, datetime(2026, 2, 6), "inquiry"),
        (6, 5, 2, datetime(2026, 1, 26), "complaint"),
    ]
    insert(
        database,
        "interactions",
        [{"interaction_id": i, "customer_id": c, "channel_id": ch, "started_at": t, "kind": k} for i, c, ch, t, k in interactions],
    )
    # Surveys (channel None = no channel): see the value-creation tests for the expected values.
    responses = [
        ("nps", 10, 0, 10, 1, datetime(2026, 2, 3)),
        ("nps", 9, 0, 10, 1, datetime(2026, 2, 4)),
        ("nps", 9, 0, 10, 1, datetime(2026, 2, 5)),
        ("nps", 7, 0, 10, 2, datetime(2026, 2, 6)),
        ("nps", 3, 0, 10, 2, datetime(2026, 2, 7)),
        ("nps", 6, 0, 10, None, datetime(2026, 2, 8)),
        ("nps", 5, 1, 5, 1, datetime(2026, 2, 9)),  # not on the 0-10 scale: left out
        ("nps", 10, 0, 10, 1, datetime(2026, 1, 9)),
        ("csat", 5, 1, 5, 1, datetime(2026, 2, 3)),
        ("csat", 4, 1, 5, 1, datetime(2026, 2, 4)),
        ("csat", 3, 1, 5, 1, datetime(2026, 2, 5)),
        ("csat", 2, 1, 5, 2, datetime(2026, 2, 6)),
        ("csat", 6, 1, 7, 2, datetime(2026, 2, 7)),  # top-2-box of its own 1-7 scale
        ("ces", 7, 1, 7, 1, datetime(2026, 2, 3)),
        ("ces", 5, 1, 7, 1, datetime(2026, 2, 4)),
        ("ces", 4, 1, 7, 2, datetime(2026, 2, 5)),
        ("ces", 2, 1, 5, 2, datetime(2026, 2, 6)),  # CES 1.0 (1-5, lower is better): left out
        ("ces", 6, 1, 7, 2, datetime(2026, 1, 6)),
    ]
    insert(
        database,
        "survey_responses",
        [
            {"response_id": i, "instrument": inst, "score": float(score), "scale_min": float(lo), "scale_max": float(hi),
             "channel_id": channel, "responded_at": at}
            for i, (inst, score, lo, hi, channel, at) in enumerate(responses, start=1)
        ],
    )
    # Acquisition cost: 300 on the web in February, 590 in the store over January and February
    # (59 days: 310 falls in January, 280 in February), a one-day entry of 20 without channel
    # on 2026-02-15; retention cost is not acquisition cost.
    costs = [
        (datetime(2026, 2, 1), datetime(2026, 3, 1), "marketing", "acquisition", 1, 300.0),
        (datetime(2026, 1, 1), datetime(2026, 3, 1), "sales", "acquisition", 2, 590.0),
        (datetime(2026, 2, 15), datetime(2026, 2, 16), "marketing", "acquisition", None, 20.0),
        (datetime(2026, 2, 1), datetime(2026, 3, 1), "marketing", "retention", 1, 1000.0),
    ]
    insert(
        database,
        "cost_entries",
        [
            {"cost_id": i, "period_start": s, "period_end": e, "cost_type": t, "purpose": p, "channel_id": c, "amount": a}
            for i, (s, e, t, p, c, a) in enumerate(costs, start=1)
        ],
    )
