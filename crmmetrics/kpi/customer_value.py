"""The customer-level building blocks of the value KPIs, pushed down into the source as SQL, and
the BG/NBD + Gamma-Gamma fit that several KPIs share.

Conventions every customer-level KPI of the built-in plugins follows:

- **One customer, one record.** A duplicate record (``master_customer_id`` set) belongs to its
  master: its orders count as the master's, and segment, acquisition date and wallet are read
  from the master record (:func:`crmmetrics.kpi.sql.customer_masters`). A duplicate is expected to
  point at a master record, not at another duplicate.
- **Anonymous orders** (``customer_id`` NULL) count in revenue totals only, never in
  customer-level KPIs.
- **A purchase occasion is a distinct purchase day** of a customer (several orders on one UTC
  day are one occasion): repeat purchases, frequency, RFM and the CLV models count occasions.
- **Margin** of an order is ``net_revenue - cogs``; where ``cogs`` is NULL the configured
  ``margin_share`` of the net revenue applies.

The purchase summary: every customer (master record) with a purchase before the end of a
reporting period is summarised in SQL into one row (purchase days, first and last day, revenue,
margin: :class:`PurchaseSummary`), once per period end in a run, and shared by the CLV models,
the forecast checks and the RFM scores. The models read it as ``(x, t_x, T, mbar)``: x = purchase
days after the first, t_x = first to last purchase day, T = first purchase day to the last day of
the period (both in weeks), mbar = mean day total of the x repeat days (0 when x = 0), as in
:func:`crmmetrics.kpi.clv.rfm_summary`. BG/NBD and Gamma-Gamma are fitted on these rows once per
period end and parameters in a run (:func:`customer_values`), so that the KPIs computed from one
fit (expected alive customers, BG/NBD + Gamma-Gamma CLV, customer equity, segment CLV, LTV/CAC)
share it; nothing is kept between runs, so no fit outlives a change of the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain
from typing import Any

import numpy as np
from sqlalchemy import case, func, select

from crmmetrics.core.errors import MetricError
from crmmetrics.core.periods import Period
from . import UNASSIGNED  # the label of customers (and anonymous revenue) without a segment
from .clv import (
    BgNbd,
    GammaGamma,
    clv_bgnbd_gg,
    conditional_expected_spend,
    fit_bgnbd,
    fit_gamma_gamma,
    horizon_purchases,
    p_alive,
)
from .sql import customer_masters, epoch_day, gross_margin


#: The fits need customers who came back: with fewer repeat customers than this the models are
#: not identified and a KPI built on them fails with the reason instead of a meaningless number.
MIN_REPEAT_CUSTOMERS = 10

#: BG/NBD time unit (days): weeks, as in Fader, Hardie & Lee 2005.
UNIT_DAYS = 7.0
_MONTH_DAYS = 365.25 / 12


def day_number(moment: datetime) -> int:
    """The :class:`epoch_day` of a Python datetime."""
    return (moment.date() - datetime(1970, 1, 1).date()).days


def last_day(period_end: datetime) -> int:
    """The day number of the last instant before a (half-open) period end."""
    return day_number(period_end - timedelta(microseconds=1))


def margin(columns: Any, margin_share: float) -> Any:
    """Gross margin of an order row: net revenue minus cogs, or ``margin_share`` of it without cogs."""
    return gross_margin(columns.net_revenue, columns.cogs, margin_share)


def customer_orders(tables: Any, start: datetime | None, end: datetime, *, anonymous: bool = False, master: bool = True) -> Any:
    """Orders in ``[start, end)`` with the customer they belong to, as a subquery.

    Columns: ``customer_id`` (the master record; NULL for anonymous orders, which are only
    included with ``anonymous=True``), ``segment_id`` and ``acquired_at`` of that master record
    (not with ``master=False``, which spares the source a lookup per order), ``order_id``,
    ``ordered_at``, ``day`` (:class:`epoch_day`), ``channel_id``, ``net_revenue``, ``cogs``.
    ``start=None`` means from the beginning.
    """
    orders, customers = tables["orders"], tables["customers"]
    masters = customer_masters(tables)
    joined = orders.outerjoin(masters, masters.c.customer_id == orders.c.customer_id)
    record = []
    if master:
        record_table = customers.alias("master")
        joined = joined.outerjoin(record_table, record_table.c.customer_id == masters.c.master_id)
        record = [record_table.c.segment_id, record_table.c.acquired_at]
    conditions = [orders.c.ordered_at < end]
    if start is not None:
        conditions.append(orders.c.ordered_at >= start)
    if not anonymous:
        conditions.append(masters.c.master_id.is_not(None))
    return (
        select(
            masters.c.master_id.label("customer_id"),
            *record,
            orders.c.order_id,
            orders.c.ordered_at,
            epoch_day(orders.c.ordered_at).label("day"),
            orders.c.channel_id,
            orders.c.net_revenue,
            orders.c.cogs,
        )
        .select_from(joined)
        .where(*conditions)
        .subquery("customer_orders")
    )


def customer_activity(tables: Any, period: Period, name: str = "activity") -> Any:
    """A subquery ``name`` with one row per customer with an order in the period: ``customer_id``,
    ``segment_id``, ``occasions`` (distinct purchase days), ``orders``, ``revenue``."""
    rows = customer_orders(tables, period.start, period.end)
    return (
        select(
            rows.c.customer_id,
            rows.c.segment_id,
            func.count(func.distinct(rows.c.day)).label("occasions"),
            func.count().label("orders"),
            func.sum(rows.c.net_revenue).label("revenue"),
        )
        .group_by(rows.c.customer_id, rows.c.segment_id)
        .subquery(name)
    )


@dataclass(frozen=True)
class PeriodActivity:
    """:func:`customer_activity` as arrays sorted by ``ids``: each customer (master record) with
    an order in the period, the master record's segment (NaN: none), distinct purchase days,
    orders and net revenue in the period."""

    ids: np.ndarray
    segment: np.ndarray
    occasions: np.ndarray
    orders: np.ndarray
    revenue: np.ndarray


def period_activity(ctx: Any, period: Period) -> PeriodActivity:
    """The customers' activity in ``period``, read once per run and window and shared: the
    repeat rate, purchase frequency, revenue concentration, target-segment penetration, share of
    wallet, the returning customers of retention, churn and net revenue retention, and the
    forecast checks' holdout all count from it (each was a scan of the period's orders of its own)."""

    def read() -> PeriodActivity:
        activity = customer_activity(ctx.tables, period)
        columns = (activity.c.customer_id, activity.c.segment_id, activity.c.occasions, activity.c.orders, activity.c.revenue)
        table = fetch_array(ctx.connection, select(*columns).order_by(activity.c.customer_id), columns=5)
        return PeriodActivity(table[:, 0].astype(np.int64), *table[:, 1:].T)

    return ctx.shared(("period_activity", period.start, period.end), read)


def segment_rows(segment: np.ndarray, *values: np.ndarray) -> list[tuple[Any, ...]]:
    """``(segment id, count, sum of each of values)`` per segment, as SQL's ``GROUP BY
    segment_id`` with ``count(*)`` and ``sum(...)`` gives them: customers without a segment (NaN)
    as ``None``, first, then by id; integer sums stay integers."""
    rows = []
    missing = np.isnan(segment)
    groups = [(None, missing)] if missing.any() else []
    groups += [(int(value), segment == value) for value in np.unique(segment[~missing])]
    for key, members in groups:
        sums = []
        for column in values:
            total = column[members].sum()
            sums.append(int(total) if column.dtype.kind in "bi" else float(total))
        rows.append((key, int(members.sum()), *sums))
    return rows


def preceding(period: Period) -> Period:
    """The window just before ``period``, for period-on-period comparisons of the same customers.

    Calendar periods (starting and ending on the first of a month at midnight) step back by the
    same number of calendar months; any other window steps back by its own length.
    """
    start, end = period.start, period.end
    if all(t.day == 1 and t.time() == datetime.min.time() for t in (start, end)):
        months = (end.year * 12 + end.month) - (start.year * 12 + start.month)
        index = start.year * 12 + (start.month - 1) - months
        return Period(period.label, start.replace(year=index // 12, month=index % 12 + 1), start)
    return Period(period.label, start - (end - start), start)


def segment_names(ctx: Any) -> dict[Any, str]:
    """``segment_id -> name`` of the (small) segments table, with NULL mapped to ``unassigned``."""
    segments = ctx.tables["segments"]
    names: dict[Any, str] = {None: UNASSIGNED}
    names.update(ctx.connection.execute(select(segments.c.segment_id, segments.c.name)).all())
    return names


def period_discount_rate(annual_rate: float, days: float) -> float:
    """The discount rate of a period of ``days`` days equivalent to ``annual_rate`` a year."""
    return (1.0 + annual_rate) ** (days / 365.25) - 1.0


# --------------------------------------------------------------------------------------------
# The shared model fit
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerValues:
    """The fitted models at one period end and their per-customer outputs (arrays by customer).

    ``ids`` are master customer ids (sorted); ``x``, ``t_x``, ``T`` (weeks) and ``mbar`` the
    summary the models were fitted on; ``expected_purchases`` the purchase days expected over the
    horizon, ``expected_spend`` E[M | x, mbar], ``clv`` the discounted margin over the horizon.
    """

    end: datetime
    ids: np.ndarray
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    mbar: np.ndarray
    bgnbd: BgNbd
    gamma_gamma: GammaGamma
    margin_share: float  # observed margin / net revenue of the customers' orders
    horizon_months: int
    monthly_discount_rate: float
    p_alive: np.ndarray
    expected_purchases: np.ndarray
    expected_spend: np.ndarray
    clv: np.ndarray

    def clv_of(self, x: Any, t_x: Any, T: Any, mbar: Any) -> np.ndarray:
        """CLV under the fitted models of customers with the given history (a new customer: all 0)."""
        return _clv(self.bgnbd, self.gamma_gamma, self.margin_share, self.horizon_months, self.monthly_discount_rate, x, t_x, T, mbar)

    def rows(self) -> list[dict[str, Any]]:
        """Per-customer outputs for ``ComputeContext.record_customer_values``."""
        # tolist() makes the Python numbers of a whole column at once (not one numpy scalar each).
        return [
            {"customer_id": customer, "p_alive": alive, "expected_purchases": purchases, "expected_spend": spend, "clv": value}
            for customer, alive, purchases, spend, value in zip(
                self.ids.tolist(),
                self.p_alive.tolist(),
                self.expected_purchases.tolist(),
                self.expected_spend.tolist(),
                self.clv.tolist(),
            )
        ]


@dataclass(frozen=True)
class PurchaseSummary:
    """Every customer (master record) with a purchase before ``end``, one entry per customer in
    arrays sorted by ``ids``: the distinct purchase days (``occasions``), the first and last of
    them (epoch days), the net revenue in all and on the first day, and the margin in two parts
    (``net_revenue - cogs`` of the orders with cogs, the net revenue of those without), so that
    one summary serves every ``margin_share``.

    The CLV models, the forecast checks and the RFM scores all read it: shared through the run
    (:func:`purchase_summary`), the source summarises the orders once per period end for all of
    them."""

    end: datetime
    ids: np.ndarray
    occasions: np.ndarray
    first: np.ndarray
    last: np.ndarray
    revenue: np.ndarray
    first_revenue: np.ndarray
    costed_margin: np.ndarray
    uncosted_revenue: np.ndarray

    def gross_margin(self, margin_share: float) -> float:
        """The customers' gross margin in total, ``margin_share`` of the net revenue without cogs."""
        return float(self.costed_margin.sum()) + margin_share * float(self.uncosted_revenue.sum())

    def model_inputs(self) -> tuple[np.ndarray, ...]:
        """``(x, t_x, T, mbar)`` in weeks, as :func:`crmmetrics.kpi.clv.rfm_summary` defines them."""
        x = self.occasions - 1
        mbar = np.divide(self.revenue - self.first_revenue, x, out=np.zeros_like(x), where=x > 0)
        t_x = (self.last - self.first) / UNIT_DAYS
        T = (last_day(self.end) - self.first) / UNIT_DAYS
        return x, t_x, T, mbar


def purchase_summary(ctx: Any, end: datetime) -> PurchaseSummary:
    """The :class:`PurchaseSummary` at ``end``, computed once per run and shared."""
    return ctx.shared(("purchase_summary", end), lambda: _purchase_summary(ctx, end))


def _purchase_summary(ctx: Any, end: datetime) -> PurchaseSummary:
    rows = customer_orders(ctx.tables, None, end, master=False)
    uncosted = rows.c.cogs.is_(None)
    days = (
        select(
            rows.c.customer_id,
            rows.c.day,
            func.sum(rows.c.net_revenue).label("revenue"),
            func.sum(case((uncosted, 0.0), else_=rows.c.net_revenue - rows.c.cogs)).label("costed_margin"),
            func.sum(case((uncosted, rows.c.net_revenue), else_=0.0)).label("uncosted_revenue"),
        )
        .group_by(rows.c.customer_id, rows.c.day)
        .subquery("purchase_days")
    )
    ranked = select(
        *days.c,
        func.min(days.c.day).over(partition_by=days.c.customer_id).label("first_day"),
    ).subquery("ranked_days")
    statement = (
        select(
            ranked.c.customer_id,
            func.count(),
            func.min(ranked.c.day),
            func.max(ranked.c.day),
            func.sum(ranked.c.revenue),
            func.sum(case((ranked.c.day == ranked.c.first_day, ranked.c.revenue), else_=0.0)),
            func.sum(ranked.c.costed_margin),
            func.sum(ranked.c.uncosted_revenue),
        )
        .group_by(ranked.c.customer_id)
        .order_by(ranked.c.customer_id)
    )
    table = fetch_array(ctx.connection, statement, columns=8)
    return PurchaseSummary(end, table[:, 0].astype(np.int64), *table[:, 1:].T)


def customer_summary(ctx: Any, end: datetime) -> tuple[np.ndarray, ...]:
    """``(ids, x, t_x, T, mbar)`` of every customer with a purchase before ``end``, from SQL.

    The source returns one row per customer; purchase days are formed in the database.
    """
    summary = purchase_summary(ctx, end)
    return (summary.ids, *summary.model_inputs())


#: The columns of the customer records read once per run, by :func:`customer_record_values`.
CUSTOMER_RECORD_COLUMNS = ("segment_id", "category_wallet")


def customer_record_values(ctx: Any, ids: np.ndarray, column: str) -> np.ndarray:
    """``column`` (one of :data:`CUSTOMER_RECORD_COLUMNS`) of each customer record ``ids``
    (sorted), NaN where it is NULL or there is no such record.

    The customer records are read once per run as arrays (they are the source's now, whatever
    the period): at a million customers a dictionary of Row objects cost seconds per KPI and
    period. A master's values are its own record's, as :func:`customer_orders` joins it."""
    customers = ctx.tables["customers"]
    table = ctx.shared(("customer_records",), lambda: fetch_array(
        ctx.connection,
        select(customers.c.customer_id, *(customers.c[name] for name in CUSTOMER_RECORD_COLUMNS)).order_by(customers.c.customer_id),
        columns=1 + len(CUSTOMER_RECORD_COLUMNS),
    ))
    return lookup(table[:, 0].astype(np.int64), table[:, 1 + CUSTOMER_RECORD_COLUMNS.index(column)], ids)[0]


def lookup(keys: np.ndarray, values: np.ndarray, wanted: np.ndarray, missing: float = np.nan) -> tuple[np.ndarray, np.ndarray]:
    """``(the value of each wanted key, whether it was found)``: ``values[i]`` where ``keys[i]``
    (sorted, unique) equals it, ``missing`` where no key does (a NaN key never matches)."""
    found = np.zeros(wanted.size, dtype=bool)
    looked_up = np.full(wanted.size, missing, dtype=float)
    if keys.size:
        place = np.minimum(np.searchsorted(keys, wanted), keys.size - 1)
        found = keys[place] == wanted
        looked_up[found] = values[place[found]]
    return looked_up, found


def customer_segment_ids(ctx: Any, ids: np.ndarray) -> np.ndarray:
    """The segment id of each customer record ``ids`` (sorted; NaN: none, or no such record)."""
    return customer_record_values(ctx, ids, "segment_id")


#: Rows converted to an array at a time by :func:`fetch_array`.
FETCH_ROWS = 65_536


def fetch_array(connection: Any, statement: Any, columns: int) -> np.ndarray:
    """The rows of ``statement`` (numbers only; NULL becomes NaN) as one float array of
    ``columns`` columns, read from the DBAPI cursor as plain tuples (SQLAlchemy's Row objects
    cost about 40x more to build and convert at a million customers) and converted a block of
    :data:`FETCH_ROWS` at a time, so that at most one block is held as Python tuples (a million
    rows of seven numbers at once were about 270 MB of them). ``np.fromiter`` over the flattened
    block converts in half the time ``np.array`` takes to find a list of tuples' shape. A cursor
    that hands out columns as arrays (DuckDB's ``fetchnumpy``) is read that way: no tuples."""
    result = connection.execute(statement)
    blocks = []
    try:
        fetch_columns = getattr(result.cursor, "fetchnumpy", None)
        if fetch_columns is not None:
            return _column_array(fetch_columns(), columns)
        while rows := result.cursor.fetchmany(FETCH_ROWS):
            if len(rows[0]) != columns:  # fromiter would silently read a wider row as the next one
                raise ValueError(f"the statement returns {len(rows[0])} columns, not {columns}")
            block = np.fromiter(chain.from_iterable(rows), dtype=float, count=len(rows) * columns)
            blocks.append(block.reshape(len(rows), columns))
    finally:
        result.close()
    if not blocks:
        return np.zeros((0, columns))
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def _column_array(fetched: dict[str, Any], columns: int) -> np.ndarray:
    """``fetchnumpy``'s columns (NULLs masked) as one float array, NULL as NaN."""
    if len(fetched) != columns:
        raise ValueError(f"the statement returns {len(fetched)} columns, not {columns}")
    table = np.empty((len(next(iter(fetched.values()))) if fetched else 0, columns))
    for at, column in enumerate(fetched.values()):
        table[:, at] = np.ma.filled(np.ma.asarray(column).astype(float), np.nan)
    return table


def _fit(ctx: Any, end: datetime, margin_share: float, horizon_months: int, annual_discount_rate: float) -> CustomerValues:
    summary = purchase_summary(ctx, end)
    ids, (x, t_x, T, mbar) = summary.ids, summary.model_inputs()
    revenue, gross_margin = float(summary.revenue.sum()), summary.gross_margin(margin_share)
    repeaters = int(np.count_nonzero((x > 0) & (mbar > 0)))
    if repeaters < MIN_REPEAT_CUSTOMERS:
        raise MetricError(
            f"BG/NBD + Gamma-Gamma need at least {MIN_REPEAT_CUSTOMERS} customers with a repeat purchase "
            f"(and positive spend) before {end:%Y-%m-%d %H:%M}; found {repeaters} among {ids.size} customers"
        )
    try:
        bgnbd = fit_bgnbd(x, t_x, T)
        # Gamma-Gamma needs a positive mean spend: customers whose repeat days total 0 (free
        # orders) are left out of its fit.
        spending = mbar > 0
        gamma_gamma = fit_gamma_gamma(x[spending], mbar[spending])
    except (RuntimeError, ValueError) as exc:
        raise MetricError(f"BG/NBD + Gamma-Gamma fit failed at {end:%Y-%m-%d %H:%M}: {exc}") from None
    # A fit that did not converge, or has q <= 1, is kept (it is shown with the run) and refused
    # by customer_values(); the outputs below are then never read.
    spend_mbar = np.maximum(mbar, 0.0)
    monthly_rate = period_discount_rate(annual_discount_rate, _MONTH_DAYS)
    observed_margin = gross_margin / revenue if revenue else margin_share  # of the customers' orders
    with np.errstate(all="ignore"):  # the outputs of a refused fit (q <= 1) are never read
        # The horizon's purchases once for the forecast and the CLV (as :func:`_clv` computes it).
        purchases, discounted = horizon_purchases(
            bgnbd, x, t_x, T, horizon_periods=horizon_months, period_length=_MONTH_DAYS / UNIT_DAYS, discount_rate=monthly_rate
        )
        spend = conditional_expected_spend(gamma_gamma, x, spend_mbar)
        return CustomerValues(
            end=end,
            ids=ids,
            x=x,
            t_x=t_x,
            T=T,
            mbar=mbar,
            bgnbd=bgnbd,
            gamma_gamma=gamma_gamma,
            margin_share=observed_margin,
            horizon_months=horizon_months,
            monthly_discount_rate=monthly_rate,
            p_alive=p_alive(bgnbd, x, t_x, T),
            expected_purchases=purchases,
            expected_spend=spend,
            clv=observed_margin * spend * discounted,
        )


def _clv(bgnbd: BgNbd, gamma_gamma: GammaGamma, margin_share: float, horizon_months: int, monthly_rate: float, x, t_x, T, mbar) -> np.ndarray:
    """Discounted margin over ``horizon_months`` months, cash at the end of each month."""
    return clv_bgnbd_gg(
        bgnbd,
        gamma_gamma,
        x,
        t_x,
        T,
        mbar,
        horizon_periods=horizon_months,
        period_length=_MONTH_DAYS / UNIT_DAYS,
        discount_rate=monthly_rate,
        margin_share=margin_share,
    )


def customer_values(ctx: Any, end: datetime | None = None) -> CustomerValues:
    """The BG/NBD + Gamma-Gamma fit and per-customer outputs at ``end`` (default: the period end).

    Parameters come from ``ctx.params``: ``margin_share``, ``horizon_months``,
    ``annual_discount_rate``. Raises :class:`MetricError` when the data cannot support a fit.
    """
    end = end or ctx.period.end
    params = (float(ctx.params["margin_share"]), int(ctx.params["horizon_months"]), float(ctx.params["annual_discount_rate"]))
    # One fit per (period end, parameters) in a run or a backfill step, shared by every CLV KPI
    # through the run's cache: the run is the scope, so nothing is kept between runs and no
    # fingerprint of the data is needed to notice a change (the next run fits again).
    values = ctx.shared(("customer_values", end, params), lambda: _fit(ctx, end, *params))
    _record_fits(ctx, values)
    for name, fit in (("BG/NBD", values.bgnbd), ("Gamma-Gamma", values.gamma_gamma)):
        if not fit.convergence.converged:  # no numbers from a fit that did not converge
            raise MetricError(
                f"{name} fit at {end:%Y-%m-%d %H:%M} did not converge after {fit.convergence.iterations} iterations: "
                f"{fit.convergence.message}"
            )
    if values.gamma_gamma.q <= 1:
        raise MetricError(f"Gamma-Gamma fit at {end:%Y-%m-%d %H:%M} has q = {values.gamma_gamma.q:.3g} <= 1: no finite mean spend")
    return values


def _record_fits(ctx: Any, values: CustomerValues) -> None:
    """Keep the two fits with the run (once per period), so that they can be judged."""
    record = getattr(ctx, "record_model_fit", None)
    if record is None or any(f["calibration_end"] == values.end for f in getattr(ctx, "model_fits", ())):
        return
    bg, gg = values.bgnbd, values.gamma_gamma
    spenders = int(np.count_nonzero((values.x > 0) & (values.mbar > 0)))
    record(
        "bgnbd", {"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b}, log_likelihood=bg.log_likelihood,
        customers=int(values.ids.size), converged=bg.convergence.converged, message=bg.convergence.message,
        calibration_end=values.end,
    )
    record(
        "gamma_gamma", {"p": gg.p, "q": gg.q, "gamma": gg.gamma}, log_likelihood=gg.log_likelihood,
        customers=spenders, converged=gg.convergence.converged, message=gg.convergence.message,
        calibration_end=values.end,
    )
