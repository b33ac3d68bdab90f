"""One block of the demo's customers: their records and latent behaviour (BG/NBD purchases,
sBG contracts, gamma-gamma spend), orders and order lines, service contacts and surveys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .columns import _Col, _b, _f, _i, _money, _s, _t
from .draws import _Draws
from .shop import (
    DAY,
    _CATEGORIES,
    _CAT_HOME,
    _CAT_MARGIN,
    _CAT_MIX,
    _CAT_PRICE,
    _CHANNELS,
    _DEPT_INDEX,
    _DOMAINS,
    _FIRST_NAMES,
    _LAST_NAMES,
    _NSEG,
    _SEGMENTS,
    _SEG_B,
    _SEG_CONTRACT,
    _SEG_LAM,
    _SEG_NPS,
    _SEG_SBG,
    _SEG_SHARE,
    _SEG_SPEND,
    _SELF_SERVICE,
)

if TYPE_CHECKING:
    from .generator import _Demo


class _Block(_Draws):
    """One block of customers: their records and latent behaviour, orders, service contacts and
    surveys, drawn from the block's own stream (the demo's, when it is the only block)."""

    def __init__(self, shop: _Demo, n: int, rng: np.random.Generator) -> None:
        self.shop, self.n, self.rng = shop, n, rng
        self.D, self.END, self.day_p, self.months = shop.D, shop.END, shop.day_p, shop.months
        self.t: dict[str, dict[str, _Col]] = {}

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

    def attribute(self) -> None:
        """The block's orders in time order, and the campaign each is attributed to (if any)."""
        rng, shop = self.rng, self.shop
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
            cnt = shop.c_cnt[k][day[sel]]
            has = cnt > 0
            sel, cnt = sel[has], cnt[has]
            c = shop.c_pad[k][day[sel], (u[sel] * cnt).astype(np.int64)]
            ok = ((shop.c_seg[c] < 0) | (shop.c_seg[c] == seg[sel])) & (u2[sel] < p_attr) \
                & (ts[sel] >= shop.c_start[c])
            camp[sel[ok]] = c[ok]
        self.orders = dict(rec=rec, ts=ts, ch=ch, camp=camp, master=master, first=first, seg=seg)
        self.o_camp = camp
        del self.o_rec, self.o_ts, self.o_ch, self.o_master, self.o_cls, self.o_first

    def order_values(self) -> None:
        """Value, discount, cost and returns of the block's orders, and their lines."""
        rng = self.rng
        o = self.orders
        ts, ch, camp, master, first, seg = o["ts"], o["ch"], o["camp"], o["master"], o["first"], o["seg"]
        n = ts.size
        known = master >= 0
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
        o.update(net=net, cogs=cogs, no_cogs=no_cogs)
        self.lo = lo
        self.t["orders"] = {  # order_id and customer_id once the block's ids are known
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
            "line_no": _i(np.arange(L) - offsets[lo] + 1),
            "product_category": _s(np.array(_CATEGORIES)[cat].tolist()),
            "quantity": _f(qty),
            "net_revenue": _f(l_net),
            "cogs": _f(l_cogs, no_cogs[lo]),
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
        ids = self.shop.next_id
        cid = np.empty(M + n_dup, dtype=np.int64)
        cid[rec_order] = np.arange(1, M + n_dup + 1) + ids["customers"]
        self.cid = cid
        n_orders = o["ts"].size
        self.t["orders"]["order_id"] = _i(np.arange(1, n_orders + 1) + ids["orders"])
        self.t["orders"]["customer_id"] = _i(np.where(o["rec"] >= 0, cid[np.maximum(o["rec"], 0)],
                                                      0), o["rec"] < 0)
        self.t["order_lines"]["order_id"] = _i(self.lo + 1 + ids["orders"])
        ids["customers"] += M + n_dup
        ids["orders"] += n_orders
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

    def pick_employee(self, dept: np.ndarray, at: np.ndarray) -> np.ndarray:
        """An employee of the department employed at the time (0-based, -1 if none)."""
        rng, shop = self.rng, self.shop
        out = np.full(dept.size, -1, dtype=np.int64)
        for d in np.unique(dept[dept >= 0]).tolist():
            pool = np.nonzero((shop.e_dept == d) & shop.e_adopter)[0]
            idx = np.nonzero(dept == d)[0]
            if pool.size == 0:
                continue
            for _ in range(25):
                if idx.size == 0:
                    break
                cand = pool[rng.integers(0, pool.size, idx.size)]
                ok = (shop.e_hired[cand] <= at[idx]) & (at[idx] < shop.e_left[cand])
                out[idx[ok]] = cand[ok]
                idx = idx[~ok]
        return out

    def inbound_cases(self) -> None:
        """Service cases of the block's customers (and anonymous ones), each a chain of
        contacts until it is resolved or dropped."""
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
        n_contacts = np.bincount(case, minlength=ncase)
        self.cases = dict(c_cust=c_cust, kind=kind, case=case, ich=ich, its=its, ires=ires, ik=ik,
                          n_contacts=n_contacts)

    def interactions(self) -> None:
        """The block's inbound contacts and the outbound ones to its customers, in time order."""
        rng, shop, M = self.rng, self.shop, self.M
        cs = self.cases
        c_cust, kind, case, ich, its, ires, ik = (cs[k] for k in ("c_cust", "kind", "case", "ich", "its", "ires", "ik"))
        n_contacts, ncase, n_in = cs["n_contacts"], c_cust.size, case.size
        kinds = np.array(["inquiry", "service", "complaint", "sales", "other"])
        o_camp, o_ts, o_cust = shop.outbound
        mine = (o_cust >= self.master_start) & (o_cust < self.master_start + self.M)
        o_camp, o_ts, o_cust = o_camp[mine], o_ts[mine], o_cust[mine] - self.master_start
        n_out = o_camp.size
        # all interactions, sorted by time
        cust = np.concatenate([c_cust[case], o_cust])
        chan = np.concatenate([ich, shop.c_ch[o_camp]])
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
        ids = shop.next_id
        self.first_interaction = ids["interactions"]
        case_ids = np.array([f"C{x:08d}" for x in range(ids["cases"] + 1, ids["cases"] + ncase + 1)], dtype=object)
        ids["interactions"] += N
        ids["cases"] += ncase
        self.t["interactions"] = {
            "interaction_id": _i(np.arange(1, N + 1) + self.first_interaction),
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
                  + rng.normal(0.0, 0.7, idx.size) + self.shop.chain_csat(it["chan"][idx], it["at"][idx]))
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
        ids = self.shop.next_id
        self.t["survey_responses"] = {
            "response_id": _i(np.arange(1, at.size + 1) + ids["survey_responses"]),
            "customer_id": _i(self.cid[np.maximum(cust, 0)], cust < 0),
            "interaction_id": _i(inter + 1 + self.first_interaction, inter < 0),
            "channel_id": _i(chan),
            "responded_at": _t(at),
            "instrument": _s(names[inst].tolist()),
            "score": _f(score),
            "scale_min": _f(lo),
            "scale_max": _f(hi),
        }
        ids["survey_responses"] += at.size

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
