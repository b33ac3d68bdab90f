"""The whole demo: the shop-wide tables drawn from the seed's stream, the customers in blocks,
and the order in which they are drawn and handed to the writer.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Iterator

import numpy as np

from crmmetrics.core.schema import TABLES
from .columns import _Col, _b, _concat, _f, _i, _money, _rows, _s, _t
from .customers import _Block
from .draws import _Draws
from .shop import (
    CHAIN_LAG_MONTHS,
    CSAT_PER_MOOD,
    DAY,
    HISTORY_DAYS,
    TEAM_MOOD_AUTOCORRELATION,
    TEAM_MOOD_SD,
    _CAC,
    _CAMP_CH,
    _CAMP_CH_P,
    _CAMP_CH_SHORT,
    _CHANNELS,
    _COST_PER_CONTACT,
    _DEPARTMENTS,
    _DEPT_INDEX,
    _EPOCH,
    _NSEG,
    _OBJECTIVES,
    _OBJ_P,
    _PER_CONTACT,
    _PER_ORDER,
    _RESP_RATE,
    _SEGMENTS,
    _SEG_SHARE,
)


#: Customers generated and written at a time. A demo of up to this many customers is one block
#: drawn from ``default_rng(seed)`` alone, as every demo was before blocks (the default demo
#: and every test's); a larger demo is cut into near-equal blocks of at most this many, each
#: drawn from a stream of its own spawned from the seed (``SeedSequence(seed).spawn``), so
#: that only one block's rows are in memory at a time.
BLOCK_CUSTOMERS = 100_000

#: Rows per customer the progress total assumes until the first block is written (about 15:
#: 1.5 million rows for 100,000 customers).
_ROWS_PER_CUSTOMER = 15


class _CheckCounts:
    """What the weekly data-quality checks count, summed over the blocks: how many records
    (of a kind) existed at each check, and for the timeliness checks the newest of them and
    those of the week before."""

    def __init__(self, checks: np.ndarray) -> None:
        self.checks = checks
        self.before: dict[str, np.ndarray] = {}
        self.newest: dict[str, np.ndarray] = {}
        self.week: dict[str, np.ndarray] = {}

    def count(self, key: str, times: np.ndarray, flag: np.ndarray | None = None) -> None:
        t = np.sort(times if flag is None else times[flag])
        self.before[key] = self.before.get(key, 0) + np.searchsorted(t, self.checks, side="right")

    def track(self, key: str, times: np.ndarray) -> None:
        t = np.sort(times)
        k = np.searchsorted(t, self.checks, side="right")
        none = np.iinfo(np.int64).min
        newest = np.where(k > 0, t[np.maximum(k - 1, 0)], none) if t.size else np.full(k.size, none)
        self.before[key] = self.before.get(key, 0) + k
        self.newest[key] = np.maximum(self.newest.get(key, none), newest)
        self.week[key] = self.week.get(key, 0) + k - np.searchsorted(t, self.checks - 7 * DAY, side="right")


class _Demo(_Draws):
    """The whole demo: the shop-wide tables (segments, channels, campaigns, employees and their
    surveys, costs, data quality) drawn from ``default_rng(seed)``, and the customers in blocks
    (:class:`_Block`) whose tables are handed to the writer one block at a time."""

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
        blocks = -(-n // BLOCK_CUSTOMERS)
        self.block_sizes = [n // blocks + (i < n % blocks) for i in range(blocks)]
        self.block_seeds = np.random.SeedSequence(seed).spawn(blocks) if blocks > 1 else None
        # the data-quality checks: Mondays 02:00
        first_monday = (7 - self.start.weekday()) % 7
        checks = np.arange(first_monday, self.D, 7) * DAY + 2 * 3600
        self.dq = _CheckCounts(checks[checks < self.END])
        # what the shop-wide tables need from the blocks, summed as the blocks are written
        NM = len(self.months)
        self.next_id = dict.fromkeys(("customers", "orders", "interactions", "cases", "survey_responses"), 0)
        self.loyal_orders = np.zeros((_NSEG, NM), dtype=np.int64)
        self.inbound_contacts = np.zeros((10, NM), dtype=np.int64)
        self.channel_orders = np.zeros((10, NM), dtype=np.int64)
        self.channel_revenue = np.zeros((10, NM))
        self.goodwill: list[tuple[np.ndarray, ...]] = []
        self.m_cid: list[np.ndarray] = []
        self.m_revenue: list[np.ndarray] = []
        self.customers_done = self.block_rows = 0

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

    # ---- build everything ----------------------------------------------------------------

    def build(self) -> dict[str, dict[str, _Col]]:
        """Every table in memory (the blocks' parts joined): for tests and small demos."""
        tables: dict[str, dict[str, _Col]] = {}
        for name, cols in self.pieces():
            tables[name] = cols if name not in tables else {
                c: _concat(tables[name][c], cols[c]) for c in cols}
        return {name: tables[name] for name in TABLES}

    def pieces(self) -> Iterator[tuple[str, dict[str, _Col]]]:
        """``(table, columns)`` in an order the foreign keys allow, each customer table a block
        at a time. A block's stream must be drawn in the order one stream was drawn before
        blocks existed (the shop-wide draws coming between a block's own: campaigns after
        its customers, employees after its customer table, outbound contacts after its
        service cases), so a one-block demo is exactly what it was; a larger demo's blocks
        are drawn twice (first their customers, purchases and campaign attribution, which
        the campaigns' responses count; then again, from the same stream, in full) and
        written in between."""
        self.segments_channels()
        yield "segments", self.t.pop("segments")
        yield "channels", self.t.pop("channels")
        single = self.block_seeds is None
        kept = None
        acq, acq_ch, seg, start = [], [], [], [0]
        for k, size in enumerate(self.block_sizes):
            blk = _Block(self, size, self.rng if single else np.random.default_rng(self.block_seeds[k]))
            blk.customers_base()
            if k == 0:
                self.campaigns_base()
                self.attributed = np.zeros(self.C, dtype=np.int64)
            blk.purchases()
            blk.attribute()
            self.attributed += np.bincount(blk.o_camp[blk.o_camp >= 0], minlength=self.C)
            if single:
                blk.order_values()
                kept = blk
            acq.append(blk.acq)
            acq_ch.append(blk.acq_ch)
            seg.append(blk.seg)
            start.append(start[-1] + blk.M)
            del blk
        self.acq, self.acq_ch, self.seg = np.concatenate(acq), np.concatenate(acq_ch), np.concatenate(seg)
        self.M, self.block_start = start[-1], start
        self.campaign_results()
        yield "campaigns", self.t.pop("campaigns")
        for k, size in enumerate(self.block_sizes):
            blk, kept = kept or self._replay(k, size), None
            blk.master_start = start[k]
            blk.customers_table()
            for name in ("customers", "orders", "order_lines"):
                yield name, blk.t[name]
            if k == 0:
                self.employees()
                yield "employees", self.t.pop("employees")
            blk.inbound_cases()
            if k == 0:
                self.outbound_contacts()
            blk.interactions()
            yield "interactions", blk.t["interactions"]
            blk.surveys()
            yield "survey_responses", blk.t["survey_responses"]
            self._count_block(blk)
            del blk
        self.employee_surveys()
        self.costs()
        self.data_quality()
        for name in ("employee_survey_responses", "cost_entries", "data_quality_facts"):
            yield name, self.t.pop(name)

    def _replay(self, k: int, size: int) -> _Block:
        """Block ``k`` drawn again from the start of its stream, up to where the first sweep
        left it, and on to its orders' values and lines."""
        blk = _Block(self, size, np.random.default_rng(self.block_seeds[k]))
        blk.customers_base()
        blk.purchases()
        blk.attribute()
        blk.order_values()
        return blk

    def rows_expected(self, written: int) -> int:
        """Rows of the whole demo for the progress total: extrapolated from the blocks done."""
        if not self.customers_done:
            return max(written, self.n * _ROWS_PER_CUSTOMER)
        return written + round(self.block_rows / self.customers_done * (self.n - self.customers_done))

    def _count_block(self, blk: _Block) -> None:
        """Take from a written block what the costs and data-quality checks need."""
        NM = len(self.months)
        o, it, q = blk.orders, blk.i, blk.dq_customers
        self.customers_done += blk.n
        self.block_rows += sum(_rows(blk.t[name]) for name in blk.t)
        known = o["master"] >= 0
        act_m = self.month_of(o["ts"][known])
        act_seg = blk.seg[o["master"][known]]
        for s in range(_NSEG):
            self.loyal_orders[s] += np.bincount(act_m[act_seg == s], minlength=NM)
        i_m = self.month_of(it["at"])
        for c in _PER_CONTACT:
            self.inbound_contacts[c] += np.bincount(i_m[(it["chan"] == c) & it["inbound"]], minlength=NM)
        o_m = self.month_of(o["ts"])
        for c in _PER_ORDER:
            sel = o["ch"] == c
            self.channel_orders[c] += np.bincount(o_m[sel], minlength=NM)
            self.channel_revenue[c] += np.bincount(o_m[sel], weights=o["net"][sel], minlength=NM)
        # complaints opened by known customers: candidates for a goodwill credit
        comp = np.nonzero((it["kind"] == 2) & it["inbound"] & (it["cust"] >= 0) & (it["step"] == 0))[0]
        self.goodwill.append((comp + blk.first_interaction, it["at"][comp], it["chan"][comp],
                              blk.seg[it["cust"][comp]], blk.cid[it["cust"][comp]]))
        self.m_cid.append(blk.cid[:blk.M])
        self.m_revenue.append(np.bincount(o["master"][known], weights=o["net"][known], minlength=blk.M))
        dq = self.dq
        created = q["created"]
        dq.count("customers", created)
        for key in ("miss_email", "miss_phone", "miss_post", "miss_seg", "miss_ch", "is_dup",
                    "bad_email", "bad_phone", "bad_post"):
            dq.count(key, created, q[key])
        dq.track("customers.updated_at", q["upd"])
        dq.track("orders.ordered_at", o["ts"])
        dq.track("interactions.started_at", it["at"])
        dq.count("orders.no_cogs", o["ts"], o["no_cogs"])
        dq.count("orders.anonymous", o["ts"], o["rec"] < 0)
        dq.count("interactions.anonymous", it["at"], it["cust"] < 0)

    # ---- the shop-wide tables ------------------------------------------------------------

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

    def campaign_results(self) -> None:
        rng, C = self.rng, self.C
        attributed = self.attributed
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

    def outbound_contacts(self) -> None:
        """Calls and visits of the contact-centre and field-sales campaigns, each to a customer
        (of the campaign's segment, if it has one) of any block acquired before it."""
        rng = self.rng
        oc = np.nonzero(np.isin(self.c_ch, (1, 3)))[0]
        per = self.c_contacts[oc]
        o_camp = np.repeat(oc, per)
        o_from = self.c_start[o_camp]
        o_to = np.minimum(self.c_end[o_camp], self.END)
        o_ts = (o_from + rng.random(o_camp.size) * (o_to - o_from)).astype(np.int64)
        o_ts = (o_ts // DAY) * DAY + self.tod(self.c_ch[o_camp])
        o_ts = np.clip(o_ts, o_from, self.END - 1)
        by_acq = np.argsort(self.acq, kind="stable")  # one block: already in acquisition order
        avail = np.searchsorted(self.acq[by_acq], o_ts, side="left")
        o_cust = np.full(o_camp.size, -1, dtype=np.int64)
        todo = np.nonzero(avail > 0)[0]
        for _ in range(8):
            if todo.size == 0:
                break
            cand = by_acq[(rng.random(todo.size) * avail[todo]).astype(np.int64)]
            want = self.c_seg[o_camp[todo]]
            ok = (want < 0) | (self.seg[cand] == want)
            o_cust[todo[ok]] = cand[ok]
            todo = todo[~ok]
        keep = o_cust >= 0
        self.outbound = (o_camp[keep], o_ts[keep], o_cust[keep])

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
        for c, v in _CAC.items():
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
        for s in range(_NSEG):
            n_orders = self.loyal_orders[s]
            amount = (n_orders * [3.0, 1.0, 1.2, 0.5, 2.0, 0.3][s] + 100 * sc * frac) * noise()
            add(months, "marketing", "retention", amount, seg=s, desc="loyalty programme")
        # field sales account management (retention) for small businesses
        add(months, "sales", "retention", 4000 * sc * frac * noise(), ch=1, seg=4,
            desc="account management")
        # service cost per channel: per contact plus a fixed part
        for c, v in _PER_CONTACT.items():
            n_c = self.inbound_contacts[c]
            add(months, "service", "service", (n_c * v + 200 * sc * frac) * noise(), ch=c,
                desc="customer service")
        # fulfilment per order channel
        for c, v in _PER_ORDER.items():
            n_o, rev = self.channel_orders[c], self.channel_revenue[c]
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
        rev, cid = np.concatenate(self.m_revenue), np.concatenate(self.m_cid)
        top = np.argsort(-rev, kind="stable")[:max(3, self.M // 200)]
        for cst in np.sort(top).tolist():
            ms = np.arange(self.month_of(np.array([self.acq[cst]]))[0], NM)
            add(ms, "sales", "retention", rng.uniform(80, 200) * frac[ms], ch=1,
                seg=int(self.seg[cst]), cust=cid[cst] - 1, desc="key account management")
        pos, at, chan, seg, cust = (np.concatenate(x) for x in zip(*self.goodwill))
        comp = np.nonzero(rng.random(self.next_id["interactions"])[pos] < 0.25)[0]
        add(self.month_of(at[comp]), "service", "service", rng.uniform(10, 80, comp.size),
            ch=chan[comp], seg=seg[comp], cust=cust[comp] - 1, desc="goodwill credit")
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
        rng, counted = self.rng, self.dq
        checks = counted.checks
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

        before = counted.before
        n_cust = before["customers"]
        for col, key in (("email", "miss_email"), ("phone", "miss_phone"),
                         ("postcode", "miss_post"), ("segment_id", "miss_seg"),
                         ("acquisition_channel_id", "miss_ch")):
            add("crm", "customers", col, "completeness", n_cust, before[key])
        add("crm", "customers", "email", "uniqueness", n_cust, before["is_dup"])
        for col, key in (("email", "bad_email"), ("phone", "bad_phone"),
                         ("postcode", "bad_post")):
            add("crm", "customers", col, "validity", n_cust, before[key])
        # timeliness: hours since the newest loaded record, with load lags and a few outages
        lag = rng.uniform(0.5, 6.0, (3, W)) + np.where(rng.random((3, W)) < 0.03, 48.0, 0.0)
        for i, (src, tbl, col) in enumerate((("crm", "customers", "updated_at"),
                                             ("erp", "orders", "ordered_at"),
                                             ("web", "interactions", "started_at"))):
            key = f"{tbl}.{col}"
            newest = np.where(before[key] > 0, counted.newest[key], checks - 7 * DAY)
            age = (checks - newest) / 3600.0 + lag[i]
            week = counted.week[key]
            late = rng.binomial(week, np.where(lag[i] > 24, 0.3, 0.01))
            add(src, tbl, col, "timeliness", week, late, age)
        n_ord = before["orders.ordered_at"]
        add("erp", "orders", "cogs", "completeness", n_ord, before["orders.no_cogs"])
        add("erp", "orders", "customer_id", "completeness", n_ord, before["orders.anonymous"])
        add("erp", "orders", "net_revenue", "validity", n_ord, rng.binomial(n_ord, 0.0002))
        add("erp", "order_lines", "net_revenue", "consistency", n_ord,
            rng.binomial(n_ord, 0.0005))
        n_int = before["interactions.started_at"]
        add("web", "interactions", "customer_id", "completeness", n_int,
            before["interactions.anonymous"])
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
