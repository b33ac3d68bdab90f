"""Deterministic synthetic CRM data for demos, tests and benchmarks.

:func:`generate_demo` fills every canonical table (:mod:`crmmetrics.core.schema`) of a database with
about three years of believable behaviour up to ``as_of``:

* segments of different value (two strategic targets) and nine channels covering the six
  channel categories of Payne & Frow (sales force, outlets, telephony, direct marketing,
  e-commerce, m-commerce), physical/virtual and assisted/self-service;
* customers acquired steadily (growing, with a Christmas peak) through channels and campaigns;
  ~2% duplicate records pointing at their master, a few percent missing or invalid contact
  data, contract customers whose churn follows the shifted-beta-geometric story (Fader & Hardie
  2007) and the rest non-contractual;
* orders from the BG/NBD story (Fader, Hardie & Lee 2005): each customer buys at a Poisson rate
  drawn from a gamma distribution and after each purchase becomes inactive with a probability
  drawn from a beta distribution; spend per order follows the gamma-gamma model and depends on
  the segment.  Same-day multiple orders, ~4% anonymous orders, channel preferences with some
  multichannel customers, campaign attribution, NULL cogs (~10%), returns and order lines in
  several product categories;
* campaigns (acquisition, retention, cross-sell, win-back, brand) whose responses agree with the
  orders attributed to them: a direct-response campaign of the monthly programme starts in every
  month, ad-hoc campaigns at random;
* service cases made of one or more interactions (self-service sometimes followed by an
  assisted contact, channel switching, first-contact resolution), outbound campaign calls and
  visits, employees handling the assisted contacts;
* surveys (NPS 0-10, CSAT 1-5, CES 2.0 1-7, FCR 0/1, share of wallet 0-100) that depend on
  what happened to the customer; the NPS, CSAT, CES and FCR samples keep a minimum number of
  answers a month, so that a small customer base still has a monthly score;
* employees with hires, voluntary and involuntary leavers, monthly pulse surveys (eNPS,
  satisfaction, engagement; some anonymous) asking a third of the staff each month by a fixed
  rota, so that everyone is asked once a quarter;
* a planted **service-profit chain** (Heskett et al. 1994), on unless ``chain_effect=False``:
  every department has a team mood that varies from month to month (an AR(1) series, sd
  :data:`TEAM_MOOD_SD` in units of an employee's mood, autocorrelation
  :data:`TEAM_MOOD_AUTOCORRELATION`). It moves the pulse answers (eNPS, satisfaction,
  engagement) of that department's staff in that month (so ``pa_employee_satisfaction`` by
  ``department`` follows it) and, :data:`CHAIN_LAG_MONTHS` month later, the CSAT of the assisted
  contacts on the channels the department serves (contact centre and live chat: customer
  service; retail stores: retail; field sales team: field sales), by :data:`CSAT_PER_MOOD`
  points of the 1-5 scale per unit of mood: a satisfied team this month, more satisfied
  customers on its channels next month. No link to retention or revenue is planted. The team
  moods come from a generator of their own, so everything else (and, with
  ``chain_effect=False``, every row) is the same either way. A department has few answers a
  month: :mod:`crmmetrics.readers.value_chain` finds the link reliably from about 5,000 customers on
  (the default size);
* a monthly cost ledger (acquisition and retention marketing and sales by channel and campaign,
  service and fulfilment by channel, IT, per segment and a few per customer);
* weekly data-quality checks per source system computed from the generated data.

Every month and quarter of the history thus has data for each built-in KPI (from a few hundred
customers on): both periods a KPI compares, the current and the previous one, have a value
whatever ``as_of``.

Everything derives from one ``numpy.random.Generator(seed)``: the same ``customers``, ``seed``
and ``as_of`` give identical data.  Timestamps are naive UTC and all lie before midnight UTC of
``as_of`` (period ends of the cost ledger are exclusive and at most ``as_of``).
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy import table as _sql_table
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateIndex, CreateTable

from crmmetrics.core.schema import TABLES, create_key_sequence, key_sequence_name, metadata

__all__ = ["generate_demo", "HISTORY_DAYS", "CHAIN_LAG_MONTHS", "CSAT_PER_MOOD", "TEAM_MOOD_SD", "TEAM_MOOD_AUTOCORRELATION"]

#: Length of the generated history in days (three years and a day).
HISTORY_DAYS = 1096

#: The planted service-profit chain: a department's team mood (sd in units of an employee's
#: mood) moves the CSAT on its channels this many months later, by this many points per unit.
TEAM_MOOD_SD = 1.0
TEAM_MOOD_AUTOCORRELATION = 0.3
CHAIN_LAG_MONTHS = 1
CSAT_PER_MOOD = 1.0

DAY = 86_400
_strings = getattr(np, "strings", np.char)  # numpy >= 2 has the faster np.strings
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


# --------------------------------------------------------------------------------------------
# Columns held in memory before writing
# --------------------------------------------------------------------------------------------


@dataclass
class _Col:
    """One generated column: kind 'i' int, 'f' float, 'b' bool, 's' str, 't' seconds from start."""

    kind: str
    values: Any
    null: np.ndarray | None = None


def _i(values, null=None) -> _Col:
    return _Col("i", np.asarray(values, dtype=np.int64), None if null is None else np.asarray(null))


def _f(values, null=None) -> _Col:
    v = np.asarray(values, dtype=np.float64)
    nn = np.isnan(v)
    if null is not None:
        nn = nn | np.asarray(null)
    return _Col("f", v, nn if nn.any() else None)


def _b(values, null=None) -> _Col:
    return _Col("b", np.asarray(values, dtype=bool), None if null is None else np.asarray(null))


def _s(values, null=None) -> _Col:
    return _Col("s", values, None if null is None else np.asarray(null))


def _t(values, null=None) -> _Col:
    return _Col("t", np.asarray(values, dtype=np.int64), None if null is None else np.asarray(null))


def _money(x) -> np.ndarray:
    return np.round(np.asarray(x, dtype=np.float64), 2)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def generate_demo(
    url: str,
    *,
    customers: int = 5000,
    seed: int = 42,
    as_of: _dt.date | None = None,
    progress: Callable[[int, int], None] | None = None,
    chain_effect: bool = True,
) -> dict[str, int]:
    """Create the canonical tables at ``url`` and fill them with synthetic CRM data.

    ``customers`` is the number of rows of the ``customers`` table (about 2% of them are
    duplicate records of another customer).  The history covers :data:`HISTORY_DAYS` days up to
    midnight UTC of ``as_of`` (default: today, UTC); every timestamp is before it.  ``progress``
    is called with ``(rows written, rows in total)`` while the tables are written.
    ``chain_effect``: plant the service-profit chain (team mood -> CSAT a month later; see the
    module docs); False generates the same data without it.

    Refuses (``ValueError``) to write into a database whose canonical tables already hold rows;
    nothing is dropped.  Returns the number of rows written per table.
    """
    if isinstance(customers, bool) or not isinstance(customers, int) or customers < 20:
        raise ValueError(f"customers must be an integer >= 20, not {customers!r}")
    if as_of is None:
        as_of = _dt.datetime.now(_dt.timezone.utc).date()
    elif isinstance(as_of, _dt.datetime):
        as_of = as_of.date()
    elif not isinstance(as_of, _dt.date):
        raise ValueError(f"as_of must be a date, not {as_of!r}")
    engine = create_engine(url)
    try:
        _check_target(engine)
        demo = _Demo(customers, seed, as_of, chain_effect=chain_effect)
        data = demo.build()
        return _write(engine, data, demo.start_epoch, progress)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------


class _Demo:
    def __init__(self, n: int, seed: int, as_of: _dt.date, chain_effect: bool = True) -> None:
        self.rng = np.random.default_rng(seed)
        self.n = n
        self.as_of = as_of
        self.start = as_of - _dt.timedelta(days=HISTORY_DAYS)
        self.D = HISTORY_DAYS
        self.END = HISTORY_DAYS * DAY  # seconds from start; every timestamp is < END
        self.start_epoch = (self.start - _EPOCH).days * DAY
        self.scale = math.sqrt(n / 5000.0)
        # month of every day (1..12) for seasonality, and the month periods of the cost ledger
        days = np.datetime64(self.start.isoformat(), "D") + np.arange(self.D)
        self.day_month = (days.astype("datetime64[M]").astype(np.int64) % 12) + 1
        bounds = []
        m = self.start.replace(day=1)
        while m < as_of:
            nxt = (m.replace(day=28) + _dt.timedelta(days=4)).replace(day=1)
            ps, pe = max(m, self.start), min(nxt, as_of)
            bounds.append(((ps - self.start).days * DAY, (pe - self.start).days * DAY,
                           (nxt - m).days, (m - self.start).days * DAY, m.month))
            m = nxt
        self.months = np.array([b[:2] for b in bounds], dtype=np.int64)
        self.month_days = np.array([b[2] for b in bounds], dtype=np.float64)
        # calendar months: first day (seconds from start, negative for the first) and 1..12
        self.month_first = np.array([b[3] for b in bounds], dtype=np.int64)
        self.month_number = np.array([b[4] for b in bounds], dtype=np.int64)
        season = np.array([0.9, 0.85, 0.95, 1.0, 1.0, 0.95, 0.9, 0.9, 1.0, 1.05, 1.25, 1.4])
        w = (1.0 + 0.6 * np.arange(self.D) / self.D) * season[self.day_month - 1]
        self.day_p = w / w.sum()
        self.t: dict[str, dict[str, _Col]] = {}
        self.team_mood = self._team_mood(seed) if chain_effect else np.zeros((len(_DEPARTMENTS), len(self.months)))

    def _team_mood(self, seed: int) -> np.ndarray:
        """(department, month) team mood of the planted chain, from a generator of its own so that
        the rest of the data does not depend on whether the chain is planted."""
        rng = np.random.default_rng((seed, 1994))  # Heskett et al.
        phi = TEAM_MOOD_AUTOCORRELATION
        shocks = rng.normal(0.0, TEAM_MOOD_SD * math.sqrt(1 - phi * phi), (len(_DEPARTMENTS), len(self.months)))
        mood = np.empty_like(shocks)
        mood[:, 0] = rng.normal(0.0, TEAM_MOOD_SD, len(_DEPARTMENTS))
        for m in range(1, mood.shape[1]):
            mood[:, m] = phi * mood[:, m - 1] + shocks[:, m]
        return mood

    def chain_csat(self, chan: np.ndarray, at: np.ndarray) -> np.ndarray:
        """CSAT points the planted chain adds to contacts on ``chan`` at ``at``: the mood of the
        department serving the channel, CHAIN_LAG_MONTHS months before the contact's month."""
        dept = np.full(10, -1, dtype=np.int64)
        for c in _CHANNELS:
            if c[6] is not None:
                dept[c[0]] = _DEPT_INDEX[c[6]]
        d = dept[chan]
        month = self.month_of(at) - CHAIN_LAG_MONTHS
        ok = (d >= 0) & (month >= 0)
        effect = np.zeros(chan.size)
        effect[ok] = CSAT_PER_MOOD * self.team_mood[d[ok], month[ok]]
        return effect

    # ---- small helpers -------------------------------------------------------------------

    def choose_rows(self, p: np.ndarray) -> np.ndarray:
        """One draw per row of a (n, k) weight matrix."""
        cdf = np.cumsum(p, axis=1)
        cdf /= cdf[:, -1:]
        u = self.rng.random(p.shape[0])[:, None]
        return np.minimum((u > cdf).sum(axis=1), p.shape[1] - 1)

    def tod(self, channel: np.ndarray) -> np.ndarray:
        """Seconds after midnight, following the opening hours of each channel."""
        u = self.rng.random(channel.shape[0])[:, None]
        hour = np.minimum((u > _HOUR_CDF[channel]).sum(axis=1), 23)
        return hour * 3600 + self.rng.integers(0, 3600, channel.shape[0])

    def order_channel(self, day: np.ndarray, seg: np.ndarray) -> np.ndarray:
        frac = (day / self.D)[:, None]
        p = (_ORDER_MIX0 * (1 - frac) + _ORDER_MIX1 * frac) * _ORDER_SEG[seg]
        return _ORDER_CH[self.choose_rows(p)]

    def month_of(self, sec: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.months[:, 0], sec, side="right") - 1

    def sample_monthly(self, at: np.ndarray, p: float, floor: int) -> np.ndarray:
        """Indices of the candidates (at times ``at``) who answer a survey: each with
        probability ``p``, and at least ``floor`` a month where there are that many candidates
        (the survey programme keeps a minimum sample per month)."""
        u = self.rng.random(at.size)
        month = self.month_of(at)
        order = np.lexsort((u, month))
        rank = np.empty(at.size, dtype=np.int64)
        rank[order] = np.arange(at.size) - np.searchsorted(month[order], month[order])
        return np.nonzero((u < p) | (rank < floor))[0]

    # ---- build everything ----------------------------------------------------------------

    def build(self) -> dict[str, dict[str, _Col]]:
        self.segments_channels()
        self.customers_base()
        self.campaigns_base()
        self.purchases()
        self.orders_and_lines()
        self.campaign_results()
        self.customers_table()
        self.employees()
        self.interactions()
        self.surveys()
        self.employee_surveys()
        self.costs()
        self.data_quality()
        return {name: self.t[name] for name in TABLES}

    def segments_channels(self) -> None:
        n = self.n
        self.t["segments"] = {
            "segment_id": _i(np.arange(1, _NSEG + 1)),
            "name": _s([s[0] for s in _SEGMENTS]),
            "is_target": _b([s[1] for s in _SEGMENTS]),
            "market_size_customers": _i([round(s[2] * n * s[3]) for s in _SEGMENTS]),
            "wallet_per_customer": _f([s[4] for s in _SEGMENTS]),
        }
        self.t["channels"] = {
            "channel_id": _i([c[0] for c in _CHANNELS]),
            "name": _s([c[1] for c in _CHANNELS]),
            "category": _s([c[2] for c in _CHANNELS]),
            "is_virtual": _b([c[3] for c in _CHANNELS]),
            "is_self_service": _b([c[4] for c in _CHANNELS]),
        }

    def customers_base(self) -> None:
        """Master customers (sorted by acquisition) and their latent behaviour."""
        rng, n = self.rng, self.n
        n_dup = max(1, round(0.02 * n))
        M = n - n_dup
        seg = rng.choice(_NSEG, M, p=_SEG_SHARE)
        day = rng.choice(self.D, M, p=self.day_p)
        ch = self.order_channel(day, seg)
        acq = day * DAY + self.tod(ch)
        order = np.argsort(acq, kind="stable")
        seg, day, ch, acq = seg[order], day[order], ch[order], acq[order]
        self.M, self.n_dup = M, n_dup
        self.seg, self.acq, self.acq_ch = seg, acq, ch
        # contracts and sBG churn: yearly renewal, churn probability theta ~ Beta(gamma, delta)
        contract = rng.random(M) < _SEG_CONTRACT[seg]
        theta = rng.beta(_SEG_SBG[seg, 0], _SEG_SBG[seg, 1])
        years = rng.geometric(np.clip(theta, 1e-6, 1.0))
        churn = acq + years * 365 * DAY - rng.integers(0, 21 * DAY, M)
        self.contract = contract
        self.churned = contract & (churn < self.END)
        self.churn = np.where(self.churned, churn, -1)
        self.life_end = np.where(self.churned, churn, self.END)
        # BG/NBD: purchase rate per day ~ Gamma(r, 1/alpha), dropout p ~ Beta(a, b)
        self.lam = rng.gamma(0.9, 1.0 / 70.0, M) * _SEG_LAM[seg]
        self.pdrop = rng.beta(1.0, 3.0 * _SEG_B[seg])
        # gamma-gamma spend: nu ~ Gamma(q, 1/gamma); order value ~ Gamma(p, 1/nu)
        self.nu = rng.gamma(3.74, 1.0 / 15.44, M)
        self.home_cat = self.choose_rows(_CAT_HOME[seg])
        self.fav_ch = np.where(rng.random(M) < 0.6, ch, self.order_channel(day, seg))
        # duplicate records: a later record of the same person
        self.dup_master = np.sort(rng.choice(M, n_dup, replace=False))
        u = rng.random(n_dup)
        self.dup_created = (acq[self.dup_master] + DAY
                            + u * np.maximum(self.END - acq[self.dup_master] - 2 * DAY, 0)
                            ).astype(np.int64)
        self.dup_created = np.minimum(self.dup_created, self.END - 1)
        self.dup_ch = self.order_channel(self.dup_created // DAY, seg[self.dup_master])

    def campaigns_base(self) -> None:
        rng = self.rng
        # the monthly programme: a direct-response campaign (not brand) starts in every month, at
        # least a week before as_of, so every month has a response rate and a ROMI; ad-hoc
        # campaigns of any objective start on random days
        lo = self.months[:, 0] // DAY
        hi = np.minimum(self.months[:, 1] // DAY, self.D - 7)
        planned = np.nonzero(hi > lo)[0]
        monthly = lo[planned] + (rng.random(planned.size) * (hi - lo)[planned]).astype(np.int64)
        n_adhoc = int(round(40 + 12 * math.sqrt(self.n / 1000)))
        start_day = np.concatenate([monthly, rng.integers(0, self.D - 7, n_adhoc)])
        obj = np.concatenate([rng.choice(4, monthly.size, p=_OBJ_P[:4] / _OBJ_P[:4].sum()),
                              rng.choice(5, n_adhoc, p=_OBJ_P)])
        order = np.argsort(start_day, kind="stable")
        start_day, obj = start_day[order], obj[order]
        C = start_day.size
        ch = _CAMP_CH[self.choose_rows(_CAMP_CH_P[obj])]
        seg = np.where(rng.random(C) < 0.4, -1,
                       rng.choice(_NSEG, C, p=_SEG_SHARE * np.array([2, 2, 1, 1, 1, 0.5])
                                  / (_SEG_SHARE * np.array([2, 2, 1, 1, 1, 0.5])).sum()))
        dur = rng.integers(14, 46, C)
        self.c_obj, self.c_ch, self.c_seg = obj, ch, seg
        self.c_start = start_day * DAY + 8 * 3600
        self.c_end = (start_day + dur) * DAY + 8 * 3600
        self.C = C
        # per day, the active campaigns of each attribution class (acq, repeat, win-back)
        active = np.zeros((C, self.D), dtype=bool)
        for c in range(C):
            active[c, start_day[c]:min(start_day[c] + dur[c], self.D)] = True
        classes = [obj == 0, (obj == 1) | (obj == 2), obj == 3]
        self.c_pad, self.c_cnt = [], []
        for cls in classes:
            a = active & cls[:, None]
            cnt = a.sum(axis=0)
            pad = np.full((self.D, max(int(cnt.max()), 1)), -1, dtype=np.int64)
            for d in np.nonzero(cnt)[0]:
                ids = np.nonzero(a[:, d])[0]
                pad[d, :ids.size] = ids
            self.c_pad.append(pad)
            self.c_cnt.append(cnt)

    def purchases(self) -> None:
        """Purchase occasions of the master customers (BG/NBD) and of duplicates."""
        rng, M = self.rng, self.M
        cur = self.acq.astype(np.float64)
        cust, times, gaps, first = [np.arange(M)], [self.acq.astype(np.float64)], \
            [np.zeros(M)], [np.ones(M, dtype=bool)]
        active = np.arange(M)
        for _ in range(600):
            if active.size == 0:
                break
            active = active[rng.random(active.size) >= self.pdrop[active]]
            nt = cur[active] + rng.exponential(1.0, active.size) / self.lam[active] * DAY
            ok = nt < self.life_end[active]
            active, nt = active[ok], nt[ok]
            cust.append(active)
            times.append(nt)
            gaps.append((nt - cur[active]) / DAY)
            first.append(np.zeros(active.size, dtype=bool))
            cur[active] = nt
        cust = np.concatenate(cust)
        t = np.concatenate(times)
        gap = np.concatenate(gaps)
        first = np.concatenate(first)
        seg = self.seg[cust]
        day = (t // DAY).astype(np.int64)
        use_fav = rng.random(cust.size) < 0.72
        ch = np.where(first, self.acq_ch[cust],
                      np.where(use_fav, self.fav_ch[cust], self.order_channel(day, seg)))
        ts = day * DAY + self.tod(ch)
        ts = np.where(first, self.acq[cust], np.maximum(ts, self.acq[cust] + 60))
        ts = np.minimum(ts, self.life_end[cust] - 1)
        # same-day second orders
        extra = np.nonzero(rng.random(cust.size) < 0.04)[0]
        e_ts = ts[extra] + rng.integers(300, 3 * 3600, extra.size)
        e_ts = np.minimum(np.minimum(e_ts, day[extra] * DAY + DAY - 1),
                          self.life_end[cust[extra]] - 1)
        e_ch = np.where(rng.random(extra.size) < 0.5, ch[extra],
                        self.order_channel(day[extra], seg[extra]))
        # duplicate records: half of them carry one order at creation
        dj = np.nonzero(rng.random(self.n_dup) < 0.5)[0]
        d_ts = np.minimum(self.dup_created[dj] + rng.integers(60, 1800, dj.size), self.END - 1)
        # anonymous orders (~4% of all orders)
        n_ident = cust.size + extra.size + dj.size
        n_anon = int(round(n_ident * 0.04 / 0.96))
        a_day = rng.choice(self.D, n_anon, p=self.day_p)
        a_ch = np.array([2, 7, 3])[rng.choice(3, n_anon, p=[0.72, 0.22, 0.06])]
        a_ts = a_day * DAY + self.tod(a_ch)
        # all orders; record = master index, M + duplicate index, or -1 (anonymous)
        self.o_rec = np.concatenate([cust, cust[extra], self.M + dj, np.full(n_anon, -1)])
        self.o_ts = np.concatenate([ts, e_ts, d_ts, a_ts]).astype(np.int64)
        self.o_ch = np.concatenate([ch, e_ch, self.dup_ch[dj], a_ch])
        master = np.concatenate([cust, cust[extra], self.dup_master[dj], np.full(n_anon, -1)])
        self.o_master = master
        # attribution class: 0 first purchase, 1 repeat, 2 win-back (gap > 150 days), -1 none
        cls = np.where(first, 0, np.where(gap > 150, 2, 1))
        self.o_cls = np.concatenate([cls, np.full(extra.size, -1), np.zeros(dj.size, np.int64),
                                     np.full(n_anon, -1)])
        self.o_extra_first = np.concatenate([np.zeros(cust.size, bool), np.zeros(extra.size, bool),
                                             np.ones(dj.size, bool), np.zeros(n_anon, bool)])
        self.o_first = np.concatenate([first, np.zeros(extra.size + dj.size + n_anon, bool)])

    def orders_and_lines(self) -> None:
        rng = self.rng
        order = np.argsort(self.o_ts, kind="stable")
        rec, ts, ch = self.o_rec[order], self.o_ts[order], self.o_ch[order]
        master, cls, first = self.o_master[order], self.o_cls[order], self.o_first[order]
        n = ts.size
        known = master >= 0
        seg = np.where(known, self.seg[np.maximum(master, 0)], 3)
        # campaign attribution
        camp = np.full(n, -1, dtype=np.int64)
        day = ts // DAY
        u = rng.random(n)
        u2 = rng.random(n)
        for k, p_attr in enumerate((0.45, 0.18, 0.5)):
            sel = np.nonzero(cls == k)[0]
            cnt = self.c_cnt[k][day[sel]]
            has = cnt > 0
            sel, cnt = sel[has], cnt[has]
            c = self.c_pad[k][day[sel], (u[sel] * cnt).astype(np.int64)]
            ok = ((self.c_seg[c] < 0) | (self.c_seg[c] == seg[sel])) & (u2[sel] < p_attr) \
                & (ts[sel] >= self.c_start[c])
            camp[sel[ok]] = c[ok]
        # order value: gamma-gamma with a segment multiplier
        nu = np.where(known, self.nu[np.maximum(master, 0)], rng.gamma(3.74, 1.0 / 15.44, n))
        value = rng.gamma(6.25, 1.0, n) / nu * 2.2 * _SEG_SPEND[seg]
        net = _money(np.maximum(value, 1.0))
        disc_p = np.where(camp >= 0, 0.65, 0.18)
        rate = np.array([0.05, 0.10, 0.15, 0.20, 0.25])[
            rng.choice(5, n, p=[0.3, 0.3, 0.2, 0.12, 0.08])]
        rate = np.where(rng.random(n) < disc_p, rate, 0.0)
        gross = _money(net / (1.0 - rate))
        discount = _money(gross - net)
        # order lines (cross-sell: fewer lines from the home category after the first order)
        n_lines = 1 + np.minimum(rng.poisson(0.75, n), 5)
        offsets = np.concatenate([[0], np.cumsum(n_lines)[:-1]])
        L = int(n_lines.sum())
        lo = np.repeat(np.arange(n), n_lines)
        home = np.where(known, self.home_cat[np.maximum(master, 0)],
                        rng.choice(8, n, p=_CAT_MIX))
        p_home = np.where(first, 0.75, 0.5)
        cat = np.where(rng.random(L) < p_home[lo], home[lo], rng.choice(8, L, p=_CAT_MIX))
        w = (rng.gamma(1.5, 1.0, L) + 0.1) * _CAT_PRICE[cat]
        cs = np.cumsum(w)
        tot = np.add.reduceat(w, offsets)
        before = (cs[offsets] - w[offsets])[lo]
        cum = (cs - before) / tot[lo]
        last = offsets + n_lines - 1
        cum[last] = 1.0
        cum_prev = np.concatenate([[0.0], cum[:-1]])
        cum_prev[offsets] = 0.0
        l_net = _money(np.round(net[lo] * cum, 2) - np.round(net[lo] * cum_prev, 2))
        qty = np.where(cat == 2, 1 + rng.poisson(1.5, L), 1 + rng.poisson(0.2, L)).astype(float)
        l_cogs = _money(l_net * (1.0 - _CAT_MARGIN[cat]) * rng.uniform(0.9, 1.1, L))
        cogs = _money(np.add.reduceat(l_cogs, offsets))
        no_cogs = rng.random(n) < 0.10
        ret = rng.random(n)
        returned = np.where(ret < 0.02, net, np.where(ret < 0.055, l_net[offsets], 0.0))
        self.orders = dict(rec=rec, ts=ts, ch=ch, camp=camp, master=master, net=net, cogs=cogs,
                           first=first, seg=seg, no_cogs=no_cogs)
        self.t["orders"] = {
            "order_id": _i(np.arange(1, n + 1)),
            "customer_id": None,  # filled in once customer ids are known
            "ordered_at": _t(ts),
            "channel_id": _i(ch),
            "campaign_id": _i(camp + 1, camp < 0),
            "gross_revenue": _f(gross),
            "discount": _f(discount),
            "net_revenue": _f(net),
            "cogs": _f(cogs, no_cogs),
            "returned_amount": _f(_money(returned)),
        }
        self.t["order_lines"] = {
            "order_id": _i(lo + 1),
            "line_no": _i(np.arange(L) - offsets[lo] + 1),
            "product_category": _s(np.array(_CATEGORIES)[cat].tolist()),
            "quantity": _f(qty),
            "net_revenue": _f(l_net),
            "cogs": _f(l_cogs, no_cogs[lo]),
        }

    def campaign_results(self) -> None:
        rng, C = self.rng, self.C
        camp = self.orders["camp"]
        attributed = np.bincount(camp[camp >= 0], minlength=C)
        responses = attributed + rng.poisson(0.3 * attributed + 3)
        lo = np.array([_RESP_RATE[c][0] for c in self.c_ch])
        hi = np.array([_RESP_RATE[c][1] for c in self.c_ch])
        rate = rng.uniform(lo, hi)
        # the audience is planned for at least a few responses: never a campaign without contacts
        contacts = np.ceil(np.maximum(responses, 3) / rate).astype(np.int64)
        brand = self.c_obj == 4
        reach = np.round(self.n * rng.uniform(0.3, 1.5, C)).astype(np.int64)
        contacts = np.where(brand, reach, contacts)
        responses = np.where(brand, rng.binomial(reach, rate), responses)
        running = self.c_end >= self.END
        self.c_contacts = contacts
        year_month = (np.datetime64(self.start.isoformat(), "s")
                      + self.c_start.astype("timedelta64[s]")).astype("datetime64[M]")
        names = [f"{ym} {_OBJECTIVES[o].replace('_', '-')} {_CAMP_CH_SHORT[c]} #{i + 1}"
                 for i, (ym, o, c) in enumerate(zip(year_month.astype(str), self.c_obj,
                                                    self.c_ch))]
        self.t["campaigns"] = {
            "campaign_id": _i(np.arange(1, C + 1)),
            "name": _s(names),
            "channel_id": _i(self.c_ch),
            "objective": _s([_OBJECTIVES[o] for o in self.c_obj]),
            "segment_id": _i(self.c_seg + 1, self.c_seg < 0),
            "starts_at": _t(self.c_start),
            "ends_at": _t(np.minimum(self.c_end, self.END - 1), running),
            "contacts_sent": _i(contacts),
            "responses": _i(responses),
        }

    def customers_table(self) -> None:
        rng, M, n_dup = self.rng, self.M, self.n_dup
        o = self.orders
        # master records: created a little before the first purchase (online registration)
        online = np.isin(self.acq_ch, (7, 9))
        lead = np.where(online & (rng.random(M) < 0.5), rng.integers(0, 2 * DAY, M),
                        rng.integers(0, 600, M))
        created_m = np.maximum(self.acq - lead, 0)
        created = np.concatenate([created_m, self.dup_created])
        rec_order = np.argsort(created, kind="stable")
        cid = np.empty(M + n_dup, dtype=np.int64)
        cid[rec_order] = np.arange(1, M + n_dup + 1)
        self.cid = cid
        self.t["orders"]["customer_id"] = _i(np.where(o["rec"] >= 0, cid[np.maximum(o["rec"], 0)],
                                                      0), o["rec"] < 0)
        # first-order campaign = acquisition campaign
        first_idx = np.nonzero(o["first"])[0]
        acq_camp = np.full(M, -1, dtype=np.int64)
        acq_camp[o["master"][first_idx]] = o["camp"][first_idx]
        # per master: last purchase, orders, spend in the last 365 days
        ident = o["master"] >= 0
        mm = o["master"][ident]
        last = np.full(M, -1, dtype=np.int64)
        np.maximum.at(last, mm, o["ts"][ident])
        self.last_order = last
        self.n_orders = np.bincount(mm, minlength=M)
        recent = ident & (o["ts"] >= self.END - 365 * DAY)
        self.spend12 = np.bincount(o["master"][recent], weights=o["net"][recent], minlength=M)
        # contact data
        fn = rng.integers(0, len(_FIRST_NAMES), M)
        ln = rng.integers(0, len(_LAST_NAMES), M)
        num = rng.integers(1, 10000, M)
        dom = rng.integers(0, len(_DOMAINS), M)
        emails = [f"{_FIRST_NAMES[a]}.{_LAST_NAMES[b]}{c}@{_DOMAINS[d]}"
                  for a, b, c, d in zip(fn.tolist(), ln.tolist(), num.tolist(), dom.tolist())]
        bad = np.nonzero(rng.random(M) < 0.015)[0]
        kinds = rng.integers(0, 3, bad.size)
        for i, k in zip(bad.tolist(), kinds.tolist()):
            e = emails[i]
            emails[i] = (e.replace("@", " at ") if k == 0 else
                         e.replace("@", "@@") if k == 1 else e.rsplit(".", 1)[0])
        phone_n = rng.integers(100_000_000, 1_000_000_000, M)
        phones = [f"+447{p}" for p in phone_n.tolist()]
        for i in np.nonzero(rng.random(M) < 0.01)[0].tolist():
            phones[i] = phones[i][:7]
        postcodes = [f"{p:05d}" for p in rng.integers(1000, 100_000, M).tolist()]
        for i in np.nonzero(rng.random(M) < 0.005)[0].tolist():
            postcodes[i] = "N/A"
        store = self.acq_ch == 2
        miss_email = rng.random(M) < np.where(store, 0.09, np.where(online, 0.005, 0.04))
        miss_phone = rng.random(M) < 0.07
        miss_post = rng.random(M) < np.where(online, 0.01, 0.035)
        miss_seg = rng.random(M) < 0.01
        miss_ch = (self.acq < 120 * DAY) & (rng.random(M) < 0.06)
        # updated_at: recently active customers tend to have fresh records
        tail = rng.random(M)
        span = self.END - created_m
        upd = np.where(rng.random(M) < 0.6,
                       np.maximum(created_m, np.minimum(last + rng.integers(0, 30 * DAY, M),
                                                        self.END - 1)),
                       created_m + (tail * span).astype(np.int64))
        upd = np.minimum(np.maximum(upd, created_m), self.END - 1)
        wallet_known = rng.random(M) < 0.3
        wallet = np.maximum(np.array([s[4] for s in _SEGMENTS])[self.seg]
                            * rng.lognormal(0.0, 0.5, M), 1.2 * self.spend12)
        self.wallet = wallet
        # duplicates: same person, contact data copied (sometimes formatted differently)
        dm = self.dup_master
        d_email = [emails[i] for i in dm.tolist()]
        for j in np.nonzero(rng.random(n_dup) < 0.3)[0].tolist():
            d_email[j] = d_email[j].upper()
        d_phone = [phones[i] for i in dm.tolist()]
        for j in np.nonzero(rng.random(n_dup) < 0.4)[0].tolist():
            d_phone[j] = "0" + d_phone[j][3:]
        d_post = [postcodes[i] for i in dm.tolist()]
        d_miss_email = miss_email[dm] | (rng.random(n_dup) < 0.05)
        d_miss_phone = miss_phone[dm] | (rng.random(n_dup) < 0.2)
        d_upd = np.minimum(self.dup_created + rng.integers(0, 90 * DAY, n_dup), self.END - 1)

        def cat(a, b):
            return np.concatenate([a, b])

        rows = rec_order  # write in id order
        seg_all = cat(self.seg + 1, self.seg[dm] + 1)
        self.t["customers"] = {
            "customer_id": _i(cid[rows]),
            "segment_id": _i(seg_all[rows], cat(miss_seg, miss_seg[dm])[rows]),
            "acquired_at": _t(cat(self.acq, self.dup_created)[rows]),
            "acquisition_channel_id": _i(cat(self.acq_ch, self.dup_ch)[rows],
                                         cat(miss_ch, np.zeros(n_dup, bool))[rows]),
            "acquisition_campaign_id": _i(cat(acq_camp + 1, np.zeros(n_dup, np.int64))[rows],
                                          cat(acq_camp < 0, np.ones(n_dup, bool))[rows]),
            "contract_type": _s(np.where(cat(self.contract, np.zeros(n_dup, bool)),
                                         "contract", "none")[rows].tolist()),
            "churned_at": _t(cat(self.churn, np.zeros(n_dup, np.int64))[rows],
                             cat(~self.churned, np.ones(n_dup, bool))[rows]),
            "email": _s(np.array(emails + d_email, dtype=object)[rows].tolist(),
                        cat(miss_email, d_miss_email)[rows]),
            "phone": _s(np.array(phones + d_phone, dtype=object)[rows].tolist(),
                        cat(miss_phone, d_miss_phone)[rows]),
            "postcode": _s(np.array(postcodes + d_post, dtype=object)[rows].tolist(),
                           cat(miss_post, miss_post[dm])[rows]),
            "master_customer_id": _i(cat(np.zeros(M, np.int64), cid[dm])[rows],
                                     cat(np.ones(M, bool), np.zeros(n_dup, bool))[rows]),
            "category_wallet": _f(_money(cat(wallet, wallet[dm]))[rows],
                                  cat(~wallet_known, np.ones(n_dup, bool))[rows]),
            "created_at": _t(created[rows]),
            "updated_at": _t(cat(upd, d_upd)[rows]),
        }
        self.dq_customers = dict(
            created=created, miss_email=cat(miss_email, d_miss_email),
            miss_phone=cat(miss_phone, d_miss_phone), miss_post=cat(miss_post, miss_post[dm]),
            miss_seg=cat(miss_seg, miss_seg[dm]), miss_ch=cat(miss_ch, np.zeros(n_dup, bool)),
            is_dup=cat(np.zeros(M, bool), np.ones(n_dup, bool)),
            bad_email=cat(np.isin(np.arange(M), bad), np.isin(dm, bad))
            & ~cat(miss_email, d_miss_email),
            bad_phone=np.array([len(p) != 13 or not p.startswith("+")
                                for p in phones + d_phone]) & ~cat(miss_phone, d_miss_phone),
            bad_post=np.array([p == "N/A" for p in postcodes + d_post])
            & ~cat(miss_post, miss_post[dm]),
            upd=cat(upd, d_upd),
        )

    def employees(self) -> None:
        rng = self.rng
        base = int(round(40 + 30 * math.sqrt(self.n / 1000)))
        shares = np.array([d[2] for d in _DEPARTMENTS])
        per_dept = np.maximum(np.round(base * shares).astype(np.int64), 2)
        dept = np.repeat(np.arange(len(_DEPARTMENTS)), per_dept)
        hired = -rng.integers(20, 12 * 365, dept.size) * DAY  # hired at midnight UTC
        # growth hires during the history
        n_growth = int(round(0.15 * dept.size))
        g_dept = rng.choice(len(_DEPARTMENTS), n_growth, p=shares)
        g_hired = rng.integers(0, self.D, n_growth) * DAY
        dept = np.concatenate([dept, g_dept])
        hired = np.concatenate([hired, g_hired])
        hazard = np.array([d[3] for d in _DEPARTMENTS])
        all_dept, all_hired, all_left = [], [], []
        for _ in range(60):
            if dept.size == 0:
                break
            stay = rng.exponential(1.0, dept.size) / hazard[dept] * 365 * DAY
            left = (np.maximum(hired, 0) + stay.astype(np.int64)) // DAY * DAY + DAY
            left = np.where(left < self.END, left, -1)
            all_dept.append(dept)
            all_hired.append(hired)
            all_left.append(left)
            repl = np.nonzero(left >= 0)[0]
            new_hired = left[repl] + rng.integers(14, 75, repl.size) * DAY
            keep = new_hired < self.END
            dept, hired = dept[repl][keep], new_hired[keep]
        dept = np.concatenate(all_dept)
        hired = np.concatenate(all_hired)
        left = np.concatenate(all_left)
        order = np.argsort(hired, kind="stable")
        dept, hired, left = dept[order], hired[order], left[order]
        E = dept.size
        facing = np.array([d[1] for d in _DEPARTMENTS])[dept]
        part = rng.random(E) < np.array([d[4] for d in _DEPARTMENTS])[dept]
        fte = np.where(part, np.array([0.5, 0.6, 0.8])[rng.integers(0, 3, E)], 1.0)
        voluntary = rng.random(E) < 0.75
        self.e_dept, self.e_hired = dept, hired
        self.e_left = np.where(left >= 0, left, np.iinfo(np.int64).max)
        # about 10% of customer-facing staff never log their contacts in the CRM
        self.e_adopter = facing & (rng.random(E) >= 0.10)
        self.t["employees"] = {
            "employee_id": _i(np.arange(1, E + 1)),
            "department": _s([_DEPARTMENTS[d][0] for d in dept.tolist()]),
            "is_customer_facing": _b(facing),
            "fte": _f(fte),
            "hired_at": _t(hired),
            "left_at": _t(left, left < 0),
            "leave_type": _s(np.where(voluntary, "voluntary", "involuntary").tolist(), left < 0),
        }

    def pick_employee(self, dept: np.ndarray, at: np.ndarray) -> np.ndarray:
        """An employee of the department employed at the time (0-based, -1 if none)."""
        rng = self.rng
        out = np.full(dept.size, -1, dtype=np.int64)
        for d in np.unique(dept[dept >= 0]).tolist():
            pool = np.nonzero((self.e_dept == d) & self.e_adopter)[0]
            idx = np.nonzero(dept == d)[0]
            if pool.size == 0:
                continue
            for _ in range(25):
                if idx.size == 0:
                    break
                cand = pool[rng.integers(0, pool.size, idx.size)]
                ok = (self.e_hired[cand] <= at[idx]) & (at[idx] < self.e_left[cand])
                out[idx[ok]] = cand[ok]
                idx = idx[~ok]
        return out

    def interactions(self) -> None:
        rng, M = self.rng, self.M
        # inbound service cases of known customers
        years = (self.life_end - self.acq) / (365.0 * DAY)
        win_end = np.minimum(self.life_end + np.where(self.churned, 14 * DAY, 0),
                             np.maximum(self.last_order + 240 * DAY, self.acq + 30 * DAY))
        win_end = np.minimum(win_end, self.END)
        k = rng.poisson(0.3 * years + 0.3 * self.n_orders)
        c_cust = np.repeat(np.arange(M), k)
        n_anon = int(round(c_cust.size * 0.05))
        c_start = (self.acq[c_cust] + rng.random(c_cust.size)
                   * (win_end[c_cust] - self.acq[c_cust])).astype(np.int64)
        a_start = (rng.choice(self.D, n_anon, p=self.day_p) * DAY
                   + rng.integers(0, DAY, n_anon))
        c_cust = np.concatenate([c_cust, np.full(n_anon, -1)])
        c_start = np.concatenate([c_start, a_start])
        ncase = c_cust.size
        seg = np.where(c_cust >= 0, self.seg[np.maximum(c_cust, 0)], 3)
        kinds = np.array(["inquiry", "service", "complaint", "sales", "other"])
        kind = rng.choice(5, ncase, p=[0.38, 0.30, 0.09, 0.13, 0.10])
        frac = (c_start / self.END)[:, None]
        first_ch = np.array([2, 3, 4, 7, 8, 9, 1])
        mix = np.array([0.12, 0.32, 0.08, 0.22, 0.10, 0.12, 0.04]) * (1 - frac) \
            + np.array([0.08, 0.24, 0.06, 0.26, 0.14, 0.20, 0.02]) * frac
        mix = mix * np.where((seg == 4)[:, None], [1, 1, 1, 1, 1, 1, 8], 1)
        mix = mix * np.where((kind == 2)[:, None], [1.2, 1.6, 0.3, 0.6, 1.4, 0.4, 1], 1)
        ch = first_ch[self.choose_rows(mix)]
        day = c_start // DAY
        ts = day * DAY + self.tod(ch)
        if_known = c_cust >= 0
        ts = np.where(if_known, np.maximum(ts, self.acq[np.maximum(c_cust, 0)] + 60), ts)
        ts = np.minimum(ts, self.END - 1)
        order = np.argsort(ts, kind="stable")
        c_cust, kind, ch, ts, seg = c_cust[order], kind[order], ch[order], ts[order], seg[order]
        fcr_kind = np.array([0.82, 0.72, 0.55, 0.85, 0.80])
        ss_kind = np.array([0.68, 0.62, 0.35, 0.60, 0.65])
        assisted = np.array([3, 8, 2])
        i_case, i_ch, i_ts, i_res, i_k = [], [], [], [], []
        alive = np.arange(ncase)
        cur_ch, cur_ts = ch.copy(), ts.copy()
        for step in range(5):
            c_ = cur_ch[alive]
            ss = _SELF_SERVICE[c_]
            p_res = np.where(ss, ss_kind[kind[alive]], fcr_kind[kind[alive]] + 0.1 * step)
            p_res = p_res + np.where(c_ == 8, -0.05, 0.0) + np.where(c_ == 2, 0.03, 0.0)
            res = rng.random(alive.size) < np.minimum(p_res, 0.97)
            i_case.append(alive)
            i_ch.append(c_)
            i_ts.append(cur_ts[alive])
            i_res.append(res)
            i_k.append(np.full(alive.size, step))
            go_on = ~res & (rng.random(alive.size) < np.where(ss, 0.8, 0.88))
            nxt, ss_n, prev_ch = alive[go_on], ss[go_on], c_[go_on]
            new_ch = np.where(ss_n | (rng.random(nxt.size) >= 0.65),
                              assisted[rng.choice(3, nxt.size, p=[0.6, 0.25, 0.15])], prev_ch)
            gap = np.where(ss_n & (rng.random(nxt.size) < 0.5), rng.integers(60, 2 * 3600,
                                                                             nxt.size),
                           rng.integers(DAY // 5, 5 * DAY, nxt.size))
            new_ts = cur_ts[nxt] + gap
            ok = new_ts < self.END
            alive = nxt[ok]
            cur_ch[alive] = new_ch[ok]
            cur_ts[alive] = new_ts[ok]
        case = np.concatenate(i_case)
        ich = np.concatenate(i_ch)
        its = np.concatenate(i_ts)
        ires = np.concatenate(i_res)
        ik = np.concatenate(i_k)
        n_in = case.size
        n_contacts = np.bincount(case, minlength=ncase)
        # outbound: calls and visits of contact-centre and field-sales campaigns
        oc = np.nonzero(np.isin(self.c_ch, (1, 3)))[0]
        per = self.c_contacts[oc]
        o_camp = np.repeat(oc, per)
        o_from = self.c_start[o_camp]
        o_to = np.minimum(self.c_end[o_camp], self.END)
        o_ts = (o_from + rng.random(o_camp.size) * (o_to - o_from)).astype(np.int64)
        o_ts = (o_ts // DAY) * DAY + self.tod(self.c_ch[o_camp])
        o_ts = np.clip(o_ts, o_from, self.END - 1)
        avail = np.searchsorted(self.acq, o_ts, side="left")
        o_cust = np.full(o_camp.size, -1, dtype=np.int64)
        todo = np.nonzero(avail > 0)[0]
        for _ in range(8):
            if todo.size == 0:
                break
            cand = (rng.random(todo.size) * avail[todo]).astype(np.int64)
            want = self.c_seg[o_camp[todo]]
            ok = (want < 0) | (self.seg[cand] == want)
            o_cust[todo[ok]] = cand[ok]
            todo = todo[~ok]
        keep = o_cust >= 0
        o_camp, o_ts, o_cust = o_camp[keep], o_ts[keep], o_cust[keep]
        n_out = o_camp.size
        # all interactions, sorted by time
        cust = np.concatenate([c_cust[case], o_cust])
        chan = np.concatenate([ich, self.c_ch[o_camp]])
        at = np.concatenate([its, o_ts])
        kind_all = np.concatenate([kind[case], np.full(n_out, 3)])
        inbound = np.concatenate([np.ones(n_in, bool), np.zeros(n_out, bool)])
        resolved = np.concatenate([ires, np.zeros(n_out, bool)])
        case_all = np.concatenate([case, np.full(n_out, -1)])
        step_all = np.concatenate([ik, np.zeros(n_out, np.int64)])
        order = np.argsort(at, kind="stable")
        cust, chan, at, kind_all = cust[order], chan[order], at[order], kind_all[order]
        inbound, resolved, case_all = inbound[order], resolved[order], case_all[order]
        step_all = step_all[order]
        N = at.size
        ss = _SELF_SERVICE[chan]
        dept_of = np.full(10, -1, dtype=np.int64)
        for c in _CHANNELS:
            if c[6] is not None:
                dept_of[c[0]] = _DEPT_INDEX[c[6]]
        emp = np.where(ss, -1, self.pick_employee(np.where(ss, -1, dept_of[chan]), at))
        wait_med = np.array([0, 0, 180, 75, 0, 0, 0, 0, 35, 0], dtype=float)
        handle_med = np.array([0, 2400, 420, 300, 0, 0, 0, 0, 480, 0], dtype=float)
        wait = np.round(wait_med[chan] * rng.lognormal(0.0, 0.9, N))
        wait = np.where(inbound, wait, 0.0)
        handle = np.round(handle_med[chan] * rng.lognormal(0.0, 0.6, N)
                          * np.where(kind_all == 2, 1.5, 1.0)
                          * np.where(inbound, 1.0, 0.6))
        handle = np.where(ss, np.nan, handle)
        self.i = dict(cust=cust, chan=chan, at=at, kind=kind_all, inbound=inbound,
                      resolved=resolved, case=case_all, step=step_all, wait=wait, ss=ss)
        self.case_contacts, self.case_kind, self.case_cust = n_contacts, kind, c_cust
        self.case_last_res = np.zeros(ncase, bool)
        self.case_last_res[case_all[inbound]] = resolved[inbound]  # last contact wins (sorted)
        case_ids = np.array([f"C{x:08d}" for x in range(1, ncase + 1)], dtype=object)
        self.t["interactions"] = {
            "interaction_id": _i(np.arange(1, N + 1)),
            "customer_id": _i(self.cid[np.maximum(cust, 0)], cust < 0),
            "channel_id": _i(chan),
            "employee_id": _i(emp + 1, emp < 0),
            "case_id": _s(np.where(case_all >= 0, case_ids[np.maximum(case_all, 0)],
                                   None).tolist(), case_all < 0),
            "started_at": _t(at),
            "direction": _s(np.where(inbound, "inbound", "outbound").tolist()),
            "kind": _s(kinds[kind_all].tolist()),
            "wait_seconds": _f(np.where(ss, 0.0, wait)),
            "handle_seconds": _f(handle),
            "resolved": _b(resolved, ~inbound),
        }
        # complaint experience per customer (drives NPS)
        comp = (kind_all == 2) & inbound & (cust >= 0)
        self.complaints = np.bincount(cust[comp], minlength=M)
        bad_case = (self.case_kind == 2) & ~self.case_last_res & (self.case_cust >= 0)
        self.unresolved_complaints = np.bincount(self.case_cust[bad_case], minlength=M)

    def surveys(self) -> None:
        rng, M = self.rng, self.M
        it = self.i
        parts: list[dict[str, np.ndarray]] = []
        # NPS relationship survey: invitations about once a customer-year, a quarter answered (by
        # e-mail, web or app)
        years = (np.minimum(self.life_end, self.END) - self.acq) / (365.0 * DAY)
        k = rng.poisson(years)
        cust = np.repeat(np.arange(M), k)
        at = (self.acq[cust] + rng.random(cust.size)
              * (np.minimum(self.life_end[cust], self.END) - self.acq[cust])).astype(np.int64)
        pick = self.sample_monthly(at, 0.25, 10)
        cust, at = cust[pick], at[pick]
        person = rng.normal(0.0, 1.3, M)
        latent = (7.9 + _SEG_NPS[self.seg[cust]] + person[cust] + 0.5 * at / self.END
                  - 0.8 * np.minimum(self.complaints[cust], 2)
                  - 1.5 * np.minimum(self.unresolved_complaints[cust], 1)
                  + rng.normal(0.0, 0.8, cust.size))
        parts.append(dict(cust=cust, inter=np.full(cust.size, -1),
                          chan=np.array([6, 7, 9])[rng.choice(3, cust.size, p=[.6, .2, .2])],
                          at=at, inst=np.zeros(cust.size, np.int64),
                          score=np.clip(np.round(latent), 0, 10), lo=0.0, hi=10.0))
        # CSAT after assisted inbound contacts, CES (2.0) after any inbound contact
        idx, at = self._answers_after(np.nonzero(it["inbound"] & ~it["ss"])[0], 600, 8 * 3600,
                                      0.12, 8)
        latent = (3.7 + 0.8 * it["resolved"][idx] - 0.7 * (it["kind"][idx] == 2)
                  - 0.25 * (it["step"][idx] > 0) - 0.002 * np.minimum(it["wait"][idx], 600)
                  + rng.normal(0.0, 0.7, idx.size) + self.chain_csat(it["chan"][idx], it["at"][idx]))
        parts.append(self._survey_after(idx, at, 1, np.clip(np.round(latent), 1, 5), 1.0, 5.0))
        idx, at = self._answers_after(np.nonzero(it["inbound"])[0], 600, 8 * 3600, 0.08, 8)
        latent = (5.0 + 1.0 * it["resolved"][idx] - 0.8 * (it["step"][idx] > 0)
                  - 0.6 * (it["kind"][idx] == 2) + rng.normal(0.0, 1.0, idx.size))
        parts.append(self._survey_after(idx, at, 2, np.clip(np.round(latent), 1, 7), 1.0, 7.0))
        # FCR survey: asked after the first contact of a case, answered the next day
        idx, at = self._answers_after(np.nonzero(it["inbound"] & (it["step"] == 0) & ~it["ss"])[0],
                                      DAY, DAY + 6 * 3600, 0.10, 5)
        truth = (self.case_contacts[it["case"][idx]] == 1) & it["resolved"][idx]
        flip = rng.random(idx.size) < 0.08
        parts.append(self._survey_after(idx, at, 3, (truth ^ flip).astype(float), 0.0, 1.0))
        # share of wallet (stated share, 0-100) in the last year
        cust = np.nonzero((rng.random(M) < 0.05) & (self.last_order >= self.END - 365 * DAY))[0]
        share = 100 * self.spend12[cust] / self.wallet[cust] + rng.normal(0, 8, cust.size)
        at = (self.END - 365 * DAY + rng.random(cust.size) * 365 * DAY).astype(np.int64)
        parts.append(dict(cust=cust, inter=np.full(cust.size, -1),
                          chan=np.full(cust.size, 6), at=at, inst=np.full(cust.size, 4),
                          score=np.clip(np.round(share), 0, 100), lo=0.0, hi=100.0))
        cust = np.concatenate([p["cust"] for p in parts])
        inter = np.concatenate([p["inter"] for p in parts])
        chan = np.concatenate([p["chan"] for p in parts])
        at = np.concatenate([p["at"] for p in parts])
        inst = np.concatenate([p["inst"] for p in parts])
        score = np.concatenate([p["score"] for p in parts])
        lo = np.concatenate([np.full(p["at"].size, p["lo"]) for p in parts])
        hi = np.concatenate([np.full(p["at"].size, p["hi"]) for p in parts])
        keep = at < self.END
        order = np.argsort(at[keep], kind="stable")
        cust, inter, chan, at = cust[keep][order], inter[keep][order], chan[keep][order], \
            at[keep][order]
        inst, score, lo, hi = inst[keep][order], score[keep][order], lo[keep][order], \
            hi[keep][order]
        names = np.array(["nps", "csat", "ces", "fcr", "sow"])
        self.t["survey_responses"] = {
            "response_id": _i(np.arange(1, at.size + 1)),
            "customer_id": _i(self.cid[np.maximum(cust, 0)], cust < 0),
            "interaction_id": _i(inter + 1, inter < 0),
            "channel_id": _i(chan),
            "responded_at": _t(at),
            "instrument": _s(names[inst].tolist()),
            "score": _f(score),
            "scale_min": _f(lo),
            "scale_max": _f(hi),
        }

    def _answers_after(self, cand, delay_min, delay_max, p, floor):
        """The interactions (of ``cand``) whose post-contact survey is answered, and when: a
        delay after the contact, sampled per month of the answer (:meth:`sample_monthly`)."""
        at = self.i["at"][cand] + self.rng.integers(delay_min, delay_max, cand.size)
        pick = self.sample_monthly(at, p, floor)
        return cand[pick], at[pick]

    def _survey_after(self, idx, at, inst, score, lo, hi) -> dict[str, Any]:
        it = self.i
        return dict(cust=it["cust"][idx], inter=idx, chan=it["chan"][idx], at=at,
                    inst=np.full(idx.size, inst), score=score.astype(float), lo=lo, hi=hi)

    def employee_surveys(self) -> None:
        """Monthly pulses, opening on the 4th for ten days: each employee is invited in one month
        of every quarter (a fixed rota of thirds), so every month and quarter has answers."""
        rng = self.rng
        waves = self.month_first + 3 * DAY
        keep = (waves >= 0) & (waves < self.END)
        waves, wave_month, wave_index = waves[keep], self.month_number[keep], np.nonzero(keep)[0]
        E = self.e_dept.size
        rota = rng.integers(0, 3, E)
        person = rng.normal(0.0, 1.0, E)
        dept_eff = rng.normal(0.0, 0.4, len(_DEPARTMENTS))
        emp_l, at_l, inst_l, score_l, anon_l = [], [], [], [], []
        for w_i, (w, month) in enumerate(zip(waves.tolist(), wave_month.tolist())):
            invited = np.nonzero((self.e_hired <= w) & (w < self.e_left) & (rota == month % 3))[0]
            resp = invited[rng.random(invited.size) < 0.68]
            at = w + 9 * 3600 + rng.integers(0, 10 * DAY, resp.size)
            answered = (at < self.END) & (at < self.e_left[resp])
            resp, at = resp[answered], at[answered]
            anon = rng.random(resp.size) < 0.35
            mood = (person[resp] + dept_eff[self.e_dept[resp]] + rng.normal(0, 0.15)
                    + 0.1 * w_i / max(len(waves), 1) + self.team_mood[self.e_dept[resp], wave_index[w_i]])
            for inst, (lo, hi, mu, sd) in enumerate(((0, 10, 7.0, 1.8), (1, 5, 3.7, 0.8),
                                                     (1, 5, 3.6, 0.8))):
                s = np.clip(np.round(mu + sd * mood + rng.normal(0, sd * 0.5, resp.size)), lo, hi)
                emp_l.append(resp)
                at_l.append(at)
                inst_l.append(np.full(resp.size, inst))
                score_l.append(s)
                anon_l.append(anon)
        emp = np.concatenate(emp_l) if emp_l else np.zeros(0, np.int64)
        at = np.concatenate(at_l) if at_l else np.zeros(0, np.int64)
        inst = np.concatenate(inst_l) if inst_l else np.zeros(0, np.int64)
        score = np.concatenate(score_l) if score_l else np.zeros(0)
        anon = np.concatenate(anon_l) if anon_l else np.zeros(0, bool)
        order = np.argsort(at, kind="stable")
        emp, at, inst, score, anon = emp[order], at[order], inst[order], score[order], anon[order]
        lo = np.array([0.0, 1.0, 1.0])[inst]
        hi = np.array([10.0, 5.0, 5.0])[inst]
        self.t["employee_survey_responses"] = {
            "response_id": _i(np.arange(1, at.size + 1)),
            "employee_id": _i(emp + 1, anon),
            "department": _s([_DEPARTMENTS[d][0] for d in self.e_dept[emp].tolist()]),
            "responded_at": _t(at),
            "instrument": _s(np.array(["enps", "esat", "engagement"])[inst].tolist()),
            "score": _f(score),
            "scale_min": _f(lo),
            "scale_max": _f(hi),
        }

    def costs(self) -> None:
        rng = self.rng
        NM = self.months.shape[0]
        ps, pe = self.months[:, 0], self.months[:, 1]
        frac = (pe - ps) / (self.month_days * DAY)  # share of the month inside the history
        sc = self.scale
        rows: dict[str, list] = {k: [] for k in ("ps", "pe", "type", "purpose", "ch", "seg",
                                                 "camp", "cust", "amount", "desc")}

        def add(month, ctype, purpose, amount, ch=-1, seg=-1, camp=-1, cust=-1, desc=""):
            month = np.atleast_1d(month)
            n = month.size
            rows["ps"].append(ps[month])
            rows["pe"].append(pe[month])
            rows["type"].append(np.full(n, ctype, dtype=object))
            rows["purpose"].append(np.full(n, purpose, dtype=object))
            for key, v in (("ch", ch), ("seg", seg), ("camp", camp), ("cust", cust)):
                rows[key].append(np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)))
            rows["amount"].append(np.broadcast_to(_money(amount), (n,)))
            rows["desc"].append(np.full(n, desc, dtype=object))

        months = np.arange(NM)
        noise = lambda k=NM: rng.lognormal(0.0, 0.12, k)  # noqa: E731
        # acquisition spend by channel, proportional to new (master) customers
        new_m = self.month_of(self.acq)
        cac = {1: 320.0, 2: 35.0, 3: 70.0, 5: 110.0, 7: 55.0, 9: 40.0}
        for c, v in cac.items():
            n_new = np.bincount(new_m[self.acq_ch == c], minlength=NM)
            amount = (n_new * v * 0.8 + 150 * sc * frac) * noise()
            add(months, "sales" if c in (1, 2) else "marketing", "acquisition", amount, ch=c,
                desc="acquisition spend")
        # campaign spend, spread over the months the campaign runs
        for c in range(self.C):
            s, e = self.c_start[c], min(self.c_end[c], self.END)
            ms = np.arange(self.month_of(np.array([s]))[0], self.month_of(np.array([e - 1]))[0] + 1)
            overlap = np.minimum(pe[ms], e) - np.maximum(ps[ms], s)
            share = overlap / max(e - s, 1)
            ch = int(self.c_ch[c])
            total = self.c_contacts[c] * _COST_PER_CONTACT[ch] + rng.uniform(300, 3000) * sc
            obj = _OBJECTIVES[self.c_obj[c]]
            purpose = {"acquisition": "acquisition", "brand": "other"}.get(obj, "retention")
            add(ms, "sales" if ch in (1, 3) else "marketing", purpose, total * share, ch=ch,
                seg=int(self.c_seg[c]), camp=c, desc="campaign")
        # loyalty programme per segment (retention)
        act_m = self.month_of(self.orders["ts"][self.orders["master"] >= 0])
        act_seg = self.seg[self.orders["master"][self.orders["master"] >= 0]]
        for s in range(_NSEG):
            n_orders = np.bincount(act_m[act_seg == s], minlength=NM)
            amount = (n_orders * [3.0, 1.0, 1.2, 0.5, 2.0, 0.3][s] + 100 * sc * frac) * noise()
            add(months, "marketing", "retention", amount, seg=s, desc="loyalty programme")
        # field sales account management (retention) for small businesses
        add(months, "sales", "retention", 4000 * sc * frac * noise(), ch=1, seg=4,
            desc="account management")
        # service cost per channel: per contact plus a fixed part
        it = self.i
        i_m = self.month_of(it["at"])
        per_contact = {1: 60.0, 2: 8.0, 3: 6.0, 4: 0.5, 7: 0.3, 8: 3.5, 9: 0.2}
        for c, v in per_contact.items():
            n_c = np.bincount(i_m[(it["chan"] == c) & it["inbound"]], minlength=NM)
            add(months, "service", "service", (n_c * v + 200 * sc * frac) * noise(), ch=c,
                desc="customer service")
        # fulfilment per order channel
        o = self.orders
        o_m = self.month_of(o["ts"])
        per_order = {1: 12.0, 2: 1.5, 3: 6.0, 5: 6.5, 7: 5.5, 9: 5.0}
        for c, v in per_order.items():
            sel = o["ch"] == c
            n_o = np.bincount(o_m[sel], minlength=NM)
            rev = np.bincount(o_m[sel], weights=o["net"][sel], minlength=NM)
            add(months, "fulfilment", "service", (n_o * v + 0.025 * rev) * noise(), ch=c,
                desc="fulfilment")
        # IT: CRM platform (grows with the customer base), web shop and app platforms
        cum_customers = np.cumsum(np.bincount(new_m, minlength=NM))
        add(months, "it", "infrastructure", (2500 * sc + 0.3 * cum_customers) * frac * noise(),
            desc="CRM platform")
        add(months, "it", "infrastructure", 1800 * sc * frac * noise(), ch=7, desc="web platform")
        add(months, "it", "infrastructure", 1200 * sc * frac * noise(), ch=9, desc="app platform")
        add(months, "other", "other", 3000 * sc * frac * noise(), desc="overheads")
        # per customer: key-account management of the top customers, goodwill after complaints
        rev = np.bincount(o["master"][o["master"] >= 0], weights=o["net"][o["master"] >= 0],
                          minlength=self.M)
        top = np.argsort(-rev, kind="stable")[:max(3, self.M // 200)]
        for cst in np.sort(top).tolist():
            ms = np.arange(self.month_of(np.array([self.acq[cst]]))[0], NM)
            add(ms, "sales", "retention", rng.uniform(80, 200) * frac[ms], ch=1,
                seg=int(self.seg[cst]), cust=self.cid[cst] - 1, desc="key account management")
        comp = np.nonzero((it["kind"] == 2) & it["inbound"] & (it["cust"] >= 0)
                          & (it["step"] == 0) & (rng.random(it["at"].size) < 0.25))[0]
        add(self.month_of(it["at"][comp]), "service", "service",
            rng.uniform(10, 80, comp.size), ch=it["chan"][comp],
            seg=self.seg[it["cust"][comp]], cust=self.cid[it["cust"][comp]] - 1,
            desc="goodwill credit")
        cat = {k: np.concatenate(v) for k, v in rows.items()}
        order = np.argsort(cat["ps"], kind="stable")
        cat = {k: v[order] for k, v in cat.items()}
        n = order.size
        self.t["cost_entries"] = {
            "cost_id": _i(np.arange(1, n + 1)),
            "period_start": _t(cat["ps"]),
            "period_end": _t(cat["pe"]),
            "cost_type": _s(cat["type"].tolist()),
            "purpose": _s(cat["purpose"].tolist()),
            "channel_id": _i(np.maximum(cat["ch"], 0), cat["ch"] < 0),
            "segment_id": _i(cat["seg"] + 1, cat["seg"] < 0),
            "campaign_id": _i(cat["camp"] + 1, cat["camp"] < 0),
            "customer_id": _i(cat["cust"] + 1, cat["cust"] < 0),
            "amount": _f(cat["amount"]),
            "description": _s(cat["desc"].tolist()),
        }

    def data_quality(self) -> None:
        """Weekly checks (Mondays 02:00) per source system, computed from the generated data."""
        rng = self.rng
        first_monday = (7 - self.start.weekday()) % 7
        checks = np.arange(first_monday, self.D, 7) * DAY + 2 * 3600
        checks = checks[checks < self.END]
        W = checks.size
        out: dict[str, list] = {k: [] for k in ("at", "src", "tbl", "col", "dim", "n", "bad",
                                                "age")}

        def add(src, tbl, col, dim, n, bad, age=None):
            out["at"].append(checks)
            out["src"].append([src] * W)
            out["tbl"].append([tbl] * W)
            out["col"].append([col] * W)
            out["dim"].append([dim] * W)
            out["n"].append(np.asarray(n, dtype=np.int64))
            out["bad"].append(np.asarray(bad, dtype=np.int64))
            out["age"].append(np.full(W, np.nan) if age is None else np.round(age, 2))

        def cum_before(times, flag=None):
            t = np.sort(times if flag is None else times[flag])
            return np.searchsorted(t, checks, side="right")

        q = self.dq_customers
        created = q["created"]
        n_cust = cum_before(created)
        for col, key in (("email", "miss_email"), ("phone", "miss_phone"),
                         ("postcode", "miss_post"), ("segment_id", "miss_seg"),
                         ("acquisition_channel_id", "miss_ch")):
            add("crm", "customers", col, "completeness", n_cust, cum_before(created, q[key]))
        add("crm", "customers", "email", "uniqueness", n_cust, cum_before(created, q["is_dup"]))
        for col, key in (("email", "bad_email"), ("phone", "bad_phone"),
                         ("postcode", "bad_post")):
            add("crm", "customers", col, "validity", n_cust, cum_before(created, q[key]))
        # timeliness: hours since the newest loaded record, with load lags and a few outages
        lag = rng.uniform(0.5, 6.0, (3, W)) + np.where(rng.random((3, W)) < 0.03, 48.0, 0.0)
        for i, (src, tbl, col, times) in enumerate((
                ("crm", "customers", "updated_at", q["upd"]),
                ("erp", "orders", "ordered_at", self.orders["ts"]),
                ("web", "interactions", "started_at", self.i["at"]))):
            t = np.sort(times)
            k = np.searchsorted(t, checks, side="right")
            newest = np.where(k > 0, t[np.maximum(k - 1, 0)], checks - 7 * DAY)
            age = (checks - newest) / 3600.0 + lag[i]
            week = k - np.searchsorted(t, checks - 7 * DAY, side="right")
            late = rng.binomial(week, np.where(lag[i] > 24, 0.3, 0.01))
            add(src, tbl, col, "timeliness", week, late, age)
        o = self.orders
        n_ord = cum_before(o["ts"])
        add("erp", "orders", "cogs", "completeness", n_ord, cum_before(o["ts"], o["no_cogs"]))
        add("erp", "orders", "customer_id", "completeness", n_ord,
            cum_before(o["ts"], o["rec"] < 0))
        add("erp", "orders", "net_revenue", "validity", n_ord, rng.binomial(n_ord, 0.0002))
        add("erp", "order_lines", "net_revenue", "consistency", n_ord,
            rng.binomial(n_ord, 0.0005))
        it = self.i
        n_int = cum_before(it["at"])
        add("web", "interactions", "customer_id", "completeness", n_int,
            cum_before(it["at"], it["cust"] < 0))
        add("web", "interactions", "case_id", "consistency", n_int, rng.binomial(n_int, 0.001))
        cat = {k: (np.concatenate(v) if k in ("at", "n", "bad", "age") else sum(v, []))
               for k, v in out.items()}
        order = np.argsort(cat["at"], kind="stable")
        n = order.size
        pick = order.tolist()
        self.t["data_quality_facts"] = {
            "check_id": _i(np.arange(1, n + 1)),
            "checked_at": _t(cat["at"][order]),
            "source_system": _s([cat["src"][i] for i in pick]),
            "table_name": _s([cat["tbl"][i] for i in pick]),
            "column_name": _s([cat["col"][i] for i in pick]),
            "dimension": _s([cat["dim"][i] for i in pick]),
            "records_checked": _i(cat["n"][order]),
            "records_failed": _i(cat["bad"][order]),
            "max_age_hours": _f(cat["age"][order]),
        }


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _check_target(engine: Engine) -> None:
    """Refuse a database whose canonical tables hold rows (or are views)."""
    insp = inspect(engine)
    tables = set(insp.get_table_names())
    views = set(insp.get_view_names())
    clash = sorted(views & set(TABLES))
    if clash:
        raise ValueError(f"{engine.url.render_as_string(hide_password=True)}: "
                         f"{', '.join(clash)} exist as views; generate the demo into another "
                         "database")
    filled = []
    with engine.connect() as conn:
        for name in TABLES:
            if name in tables and conn.execute(
                    select(text("1")).select_from(_sql_table(name)).limit(1)).first():
                filled.append(name)
    if filled:
        raise ValueError(f"{engine.url.render_as_string(hide_password=True)} already holds CRM "
                         f"data (tables {', '.join(filled)} are not empty); the demo generator "
                         "drops nothing: use an empty database")


def _slice(col: _Col | None, start: int, stop: int) -> _Col | None:
    if col is None:
        return None
    return _Col(col.kind, col.values[start:stop], None if col.null is None else col.null[start:stop])


def _py_column(col: _Col | None, n: int, start_epoch: int, sqlite: bool) -> list:
    """A column as a list of Python values (None for NULL) for the DBAPI."""
    if col is None:
        return [None] * n
    k, v, null = col.kind, col.values, col.null
    if k == "s":
        vals = list(v)
        if null is not None:
            for i in np.nonzero(null)[0].tolist():
                vals[i] = None
        return vals
    if k == "t":
        dt = (np.datetime64(0, "s") + (v + start_epoch).astype("timedelta64[s]"))
        if sqlite:  # SQLAlchemy's own SQLite storage format for DateTime
            arr = _strings.add(_strings.replace(np.datetime_as_string(dt, unit="s"), "T", " "),
                               ".000000").astype(object)
        else:
            arr = dt.astype("datetime64[us]").astype(object)
    elif k == "b":
        arr = v.astype(np.int64).astype(object) if sqlite else v.astype(object)
    elif k == "f" and null is not None:
        arr = np.where(null, 0.0, v).astype(object)
    else:
        arr = v.astype(object)
    if null is not None:
        arr[null] = None
    return arr.tolist()


def _np_column(col: _Col | None, n: int, start_epoch: int) -> np.ndarray:
    """A column as a numpy array DuckDB scans directly (object arrays with None where NULL)."""
    if col is None:
        return np.full(n, None, dtype=object)
    k, v, null = col.kind, col.values, col.null
    if k == "t":
        arr = (np.datetime64(0, "s") + (v + start_epoch).astype("timedelta64[s]")).astype("datetime64[us]")
    elif k == "s":
        arr = np.asarray(v, dtype=object)
    else:
        arr = np.asarray(v)
    if null is None:
        return arr
    arr = arr.astype(object)
    arr[null] = None
    return arr


#: Rows converted and written at a time: the Python objects of one chunk are all the writer
#: holds beside the generated numpy columns.
WRITE_CHUNK_ROWS = 50_000


def _write(engine: Engine, data: dict[str, dict[str, _Col]], start_epoch: int,
           progress: Callable[[int, int], None] | None, *, loader: str | None = None
           ) -> dict[str, int]:
    """Create the missing tables, bulk-load every table in one transaction, then the indexes.

    Each table is converted and written :data:`WRITE_CHUNK_ROWS` rows at a time by the
    engine's own bulk path (``loader``, default: the engine's): SQLite through the raw DBAPI
    connection (executemany of tuples in SQLAlchemy's own storage format), PostgreSQL with
    ``COPY ... FROM STDIN`` (psycopg), DuckDB by scanning the chunk's numpy arrays
    (``INSERT ... SELECT``), any other database (and ``loader="core"``) through SQLAlchemy
    Core ``insert`` executemany.
    """
    counts = {}
    for name, cols in data.items():
        first = next(iter(cols.values()))
        counts[name] = len(first.values)
    total = sum(counts.values())
    done = 0
    if progress:
        progress(0, total)
    loader = loader or engine.dialect.name
    if loader not in _LOADERS:
        loader = "core"
    with engine.begin() as conn:
        existing = set(inspect(conn).get_table_names())
        for t in metadata.sorted_tables:
            if t.name not in existing:
                create_key_sequence(t, conn)
                conn.execute(CreateTable(t))

    def chunks(t):
        nonlocal done
        n = counts[t.name]
        for i in range(0, n, WRITE_CHUNK_ROWS):
            j = min(n, i + WRITE_CHUNK_ROWS)
            yield j - i, {c.name: _slice(data[t.name].get(c.name), i, j) for c in t.columns}
            done += j - i
            if progress:
                progress(done, total)

    # The indexes after the rows (faster than updating them row by row), in the same transaction.
    indexes = [str(CreateIndex(ix, if_not_exists=True).compile(dialect=engine.dialect))
               for t in metadata.sorted_tables
               for ix in sorted(t.indexes, key=lambda ix: str(ix.name))]  # a set: fix the order
    _LOADERS[loader](engine, chunks, start_epoch, indexes)
    return {name: counts[name] for name in TABLES}


def _columns(t) -> str:
    return ", ".join(f'"{c.name}"' for c in t.columns)


def _load_sqlite(engine: Engine, chunks, start_epoch: int, indexes: list[str]) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA synchronous=OFF")
        cur.execute("PRAGMA cache_size=-131072")  # 128 MiB: the index builds sort in it
        cur.execute("PRAGMA threads=2")  # and may use a second core
        cur.execute("BEGIN")
        for t in metadata.sorted_tables:
            sql = f'INSERT INTO "{t.name}" ({_columns(t)}) VALUES ({", ".join("?" * len(t.columns))})'
            for n, cols in chunks(t):
                cur.executemany(sql, zip(*(_py_column(cols[c.name], n, start_epoch, True) for c in t.columns)))
        for ddl in indexes:
            cur.execute(ddl)
        raw.commit()
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()


def _load_postgresql(engine: Engine, chunks, start_epoch: int, indexes: list[str]) -> None:
    if engine.dialect.driver != "psycopg":  # COPY through psycopg 3; other drivers insert
        _load_core(engine, chunks, start_epoch, indexes)
        return
    with engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()
        for t in metadata.sorted_tables:
            with cursor.copy(f'COPY "{t.name}" ({_columns(t)}) FROM STDIN') as copy:
                for n, cols in chunks(t):
                    for row in zip(*(_py_column(cols[c.name], n, start_epoch, False) for c in t.columns)):
                        copy.write_row(row)
        _reset_sequences(conn)
        for ddl in indexes:
            conn.exec_driver_sql(ddl)


def _load_duckdb(engine: Engine, chunks, start_epoch: int, indexes: list[str]) -> None:
    with engine.begin() as conn:
        duck = conn.connection.driver_connection
        for t in metadata.sorted_tables:
            for n, cols in chunks(t):
                duck.register("demo_chunk", {c.name: _np_column(cols[c.name], n, start_epoch) for c in t.columns})
                try:
                    duck.execute(f'INSERT INTO "{t.name}" ({_columns(t)}) SELECT {_columns(t)} FROM demo_chunk')
                finally:
                    duck.unregister("demo_chunk")
        _reset_sequences(conn)
        for ddl in indexes:
            conn.exec_driver_sql(ddl)


def _load_core(engine: Engine, chunks, start_epoch: int, indexes: list[str]) -> None:
    with engine.begin() as conn:
        for t in metadata.sorted_tables:
            names = [c.name for c in t.columns]
            for n, cols in chunks(t):
                py = [_py_column(cols[c], n, start_epoch, False) for c in names]
                conn.execute(t.insert(), [dict(zip(names, r)) for r in zip(*py)])
        if engine.dialect.name in ("postgresql", "duckdb"):
            _reset_sequences(conn)
        for ddl in indexes:
            conn.exec_driver_sql(ddl)


def _reset_sequences(conn) -> None:
    """Let the database number later rows after the demo's own keys (PostgreSQL, DuckDB)."""
    for t in metadata.sorted_tables:
        pk = list(t.primary_key.columns)
        if len(pk) != 1:
            continue
        if conn.dialect.name == "postgresql":
            conn.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{t.name}', '{pk[0].name}'), "
                f"COALESCE((SELECT MAX({pk[0].name}) FROM {t.name}), 0) + 1, false)"))
        elif conn.dialect.name == "duckdb" and t.autoincrement_column is not None:
            # DuckDB cannot set a sequence: draw it past the largest key instead.
            sequence = key_sequence_name(pk[0])
            conn.execute(text(f"SELECT max(nextval('{sequence}')) FROM range("
                              f"(SELECT COALESCE(MAX({pk[0].name}), 0) FROM {t.name}))"))


_LOADERS = {"sqlite": _load_sqlite, "postgresql": _load_postgresql, "duckdb": _load_duckdb, "core": _load_core}
