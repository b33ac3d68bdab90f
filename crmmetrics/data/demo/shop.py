"""The fictitious company the demo describes: its history, segments, channels, product
categories, campaign programme, departments, cost rates, and the planted service-profit chain.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np

#: Length of the generated history in days (three years and a day).
HISTORY_DAYS = 1096

#: The planted service-profit chain: a department's team mood (sd in units of an employee's
#: mood) moves the CSAT on its channels this many months later, by this many points per unit.
TEAM_MOOD_SD = 1.0
TEAM_MOOD_AUTOCORRELATION = 0.3
CHAIN_LAG_MONTHS = 1
CSAT_PER_MOOD = 1.0

DAY = 86_400
_EPOCH = _dt.date(1970, 1, 1)

# --------------------------------------------------------------------------------------------
# The fictitious company: segments, channels, product categories
# --------------------------------------------------------------------------------------------

# name, is_target, share of customers, market factor (market size / customers), wallet per
# customer and year, purchase-rate multiplier, dropout "b" multiplier (higher = more loyal),
# spend multiplier, share of contract customers, sBG (gamma, delta)
_SEGMENTS: list[tuple[Any, ...]] = [
    ("Premium households", True, 0.10, 4.0, 3200.0, 1.6, 1.8, 2.2, 0.55, (0.668, 3.806)),
    ("Young professionals", True, 0.20, 6.0, 1500.0, 1.2, 1.0, 1.0, 0.35, (0.704, 1.182)),
    ("Families", False, 0.24, 8.0, 2400.0, 1.1, 1.2, 1.3, 0.40, (0.704, 1.182)),
    ("Value seekers", False, 0.24, 10.0, 900.0, 0.8, 0.8, 0.6, 0.15, (0.704, 1.182)),
    ("Small businesses", False, 0.07, 12.0, 7000.0, 1.8, 2.0, 3.5, 0.60, (0.668, 3.806)),
    ("Occasional buyers", False, 0.15, 15.0, 500.0, 0.5, 0.6, 0.7, 0.05, (0.704, 1.182)),
]
_NSEG = len(_SEGMENTS)
_SEG_SHARE = np.array([s[2] for s in _SEGMENTS])
_SEG_LAM = np.array([s[5] for s in _SEGMENTS])
_SEG_B = np.array([s[6] for s in _SEGMENTS])
_SEG_SPEND = np.array([s[7] for s in _SEGMENTS])
_SEG_CONTRACT = np.array([s[8] for s in _SEGMENTS])
_SEG_SBG = np.array([s[9] for s in _SEGMENTS])
_SEG_NPS = np.array([0.6, 0.1, 0.2, -0.4, 0.0, -0.2])

# channel_id, name, category, is_virtual, is_self_service, hour profile, handling department
_CHANNELS: list[tuple[Any, ...]] = [
    (1, "Field sales team", "sales_force", False, False, "office", "field_sales"),
    (2, "Retail stores", "outlets", False, False, "store", "retail"),
    (3, "Contact centre", "telephony", True, False, "phone", "customer_service"),
    (4, "IVR self-service", "telephony", True, True, "online", None),
    (5, "Direct mail", "direct_marketing", True, False, "office", "customer_service"),
    (6, "E-mail marketing", "direct_marketing", True, False, "online", None),
    (7, "Web shop and self-service portal", "e_commerce", True, True, "online", None),
    (8, "Live chat", "e_commerce", True, False, "chat", "customer_service"),
    (9, "Mobile app", "m_commerce", True, True, "online", None),
]
_SELF_SERVICE = np.zeros(10, dtype=bool)
_SELF_SERVICE[[4, 7, 9]] = True

_HOURS = {
    "office": [0] * 8 + [1, 3, 4, 4, 3, 3, 4, 4, 3, 2] + [0] * 6,
    "store": [0] * 9 + [2, 3, 4, 5, 5, 5, 5, 6, 6, 5, 4] + [0] * 4,
    "phone": [0] * 8 + [4, 6, 6, 5, 4, 4, 4, 4, 3, 3, 2, 2] + [0] * 4,
    "chat": [0] * 8 + [3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 3, 3, 2, 2] + [0] * 2,
    "online": [1, .5, .3, .2, .2, .3, .6, 1, 2, 2.5, 3, 3, 3.5, 3, 3, 3, 3.5, 4, 4.5, 5, 5.5, 5,
               3.5, 2],
}
_HOUR_CDF = np.zeros((10, 24))
for _c in _CHANNELS:
    _w = np.array(_HOURS[_c[5]], dtype=float)
    _HOUR_CDF[_c[0]] = np.cumsum(_w) / _w.sum()
_HOUR_CDF[0] = _HOUR_CDF[2]

# Channels where orders are placed, and their mix at the start / end of the history.
_ORDER_CH = np.array([1, 2, 3, 5, 7, 9])
_ORDER_MIX0 = np.array([0.05, 0.40, 0.12, 0.06, 0.29, 0.08])
_ORDER_MIX1 = np.array([0.04, 0.30, 0.08, 0.03, 0.33, 0.22])
_ORDER_SEG = np.array([
    [2.0, 1.2, 1.0, 1.0, 1.0, 1.0],
    [0.5, 0.7, 0.6, 0.3, 1.1, 2.2],
    [0.5, 1.2, 1.0, 1.0, 1.0, 1.0],
    [0.2, 1.0, 0.8, 1.2, 1.3, 0.8],
    [10.0, 0.6, 1.5, 1.0, 1.0, 0.5],
    [0.2, 1.3, 0.8, 1.2, 1.0, 0.7],
])

_CATEGORIES = ["devices", "accessories", "consumables", "services", "insurance", "spare_parts",
               "gift_cards", "premium_range"]
_CAT_MARGIN = np.array([0.18, 0.55, 0.35, 0.70, 0.80, 0.45, 0.02, 0.40])
_CAT_PRICE = np.array([4.0, 1.0, 0.6, 1.5, 0.8, 0.7, 1.0, 2.5])
_CAT_MIX = np.array([0.14, 0.22, 0.20, 0.14, 0.06, 0.08, 0.04, 0.12])
_CAT_HOME = np.array([
    [0.25, 0.10, 0.05, 0.15, 0.10, 0.05, 0.05, 0.25],
    [0.30, 0.25, 0.10, 0.15, 0.05, 0.05, 0.05, 0.05],
    [0.20, 0.20, 0.30, 0.10, 0.10, 0.05, 0.03, 0.02],
    [0.10, 0.30, 0.40, 0.05, 0.02, 0.10, 0.03, 0.00],
    [0.30, 0.10, 0.20, 0.25, 0.05, 0.10, 0.00, 0.00],
    [0.15, 0.25, 0.25, 0.05, 0.02, 0.05, 0.20, 0.03],
])

_OBJECTIVES = ["acquisition", "retention", "cross_sell", "win_back", "brand"]
_OBJ_P = np.array([0.30, 0.25, 0.20, 0.12, 0.13])
# campaign channels (field sales, contact centre, direct mail, e-mail, web, app) by objective
_CAMP_CH = np.array([1, 3, 5, 6, 7, 9])
_CAMP_CH_P = np.array([
    [0.15, 0.10, 0.30, 0.00, 0.35, 0.10],
    [0.05, 0.15, 0.15, 0.40, 0.00, 0.25],
    [0.05, 0.15, 0.10, 0.45, 0.00, 0.25],
    [0.00, 0.25, 0.35, 0.40, 0.00, 0.00],
    [0.00, 0.00, 0.30, 0.00, 0.50, 0.20],
])
_CAMP_CH_SHORT = {1: "field visits", 3: "outbound calls", 5: "mailing", 6: "e-mail", 7: "web",
                  9: "app push"}
# response rate range and cost per contact by campaign channel
_RESP_RATE = {1: (0.18, 0.30), 3: (0.07, 0.14), 5: (0.02, 0.04), 6: (0.01, 0.03),
              7: (0.005, 0.015), 9: (0.02, 0.05)}
_COST_PER_CONTACT = {1: 45.0, 3: 4.5, 5: 0.85, 6: 0.01, 7: 0.06, 9: 0.005}

_DEPARTMENTS = [
    # name, customer-facing, share of headcount, yearly leave hazard, part-time share
    ("customer_service", True, 0.36, 0.22, 0.15),
    ("retail", True, 0.24, 0.25, 0.40),
    ("field_sales", True, 0.10, 0.15, 0.05),
    ("marketing", False, 0.08, 0.12, 0.10),
    ("it", False, 0.07, 0.10, 0.05),
    ("finance_admin", False, 0.08, 0.08, 0.15),
    ("logistics", False, 0.07, 0.15, 0.10),
]
_DEPT_INDEX = {d[0]: i for i, d in enumerate(_DEPARTMENTS)}

_FIRST_NAMES = ("anna ben carla david emma felix greta hugo ida jonas katrin leon mia noah olga "
                "paul quinn rosa sam tara uwe vera will xenia yusuf zoe amir bea chen dana eli "
                "fatima george hana ivan julia karl lina marco nora oscar").split()
_LAST_NAMES = ("smith jones mueller schmidt garcia rossi novak kowalski jensen nielsen dubois "
               "martin silva santos costa ferreira brown taylor wilson davies evans thomas "
               "johnson lee walker white hall young king wright green baker adams nelson hill "
               "campbell mitchell roberts carter phillips").split()
_DOMAINS = ["example.com", "example.org", "example.net", "mail.example", "post.example"]

# Cost rates of the ledger by channel: acquisition cost per new customer, service cost per
# inbound contact, fulfilment cost per order.
_CAC = {1: 320.0, 2: 35.0, 3: 70.0, 5: 110.0, 7: 55.0, 9: 40.0}
_PER_CONTACT = {1: 60.0, 2: 8.0, 3: 6.0, 4: 0.5, 7: 0.3, 8: 3.5, 9: 0.2}
_PER_ORDER = {1: 12.0, 2: 1.5, 3: 6.0, 5: 6.5, 7: 5.5, 9: 5.0}
