"""Value creation: the value the customer receives and the value the organisation receives.

Payne & Frow's value creation process has two sides. The value the customer receives is measured
by surveys and complaints (NPS, CSAT, CES, complaint rate). The value the organisation receives
is acquisition economics (new customers, CAC, CAC payback, LTV/CAC), retention economics
(retention and churn, repeat purchases, frequency, order value, share of wallet, cross-sell, net
revenue retention) and customer segment lifetime value analysis (simple CLV, BG/NBD +
Gamma-Gamma CLV, expected alive customers, customer equity, CLV by segment).

Every customer-level KPI counts master records only (a duplicate's orders and interactions belong
to its master), counts purchase occasions as distinct purchase days, and leaves anonymous orders
out; revenue totals (average order value) include them (see :mod:`crmmetrics.kpi.customer_value`).
A breakdown reports the rows without a value of its dimension as ``unassigned``
(:mod:`crmmetrics.kpi`): customers without a segment and anonymous complaints under the segment,
answers and costs without a channel under the channel category.

Retention comes in two kinds that are never mixed: *contractual* (``customers.contract_type`` and
``churned_at``: a customer with a contract is retained until the contract ends) and
*non-contractual* or activity-based (a customer is retained when they buy again in the next
period). Each kind has its own retention and churn KPI, labelled in key, name and description.

The CLV models (BG/NBD + Gamma-Gamma) are fitted once per period end and shared by five KPIs
(:func:`crmmetrics.kpi.customer_value.customer_values`). When the data cannot support a fit (fewer
than 10 customers with a repeat purchase) the run of the current period fails with that reason
(stored with the run, visible in ``crmmetrics_run_up``); for the previous period the value is
missing instead, so a young customer base still gets its current value.

Changes from the catalogue
--------------------------
- Retention and churn: ``vc_retention_rate`` / ``vc_churn_rate`` become four KPIs,
  ``vc_active_retention_rate`` / ``vc_active_churn_rate`` (non-contractual: bought in the
  preceding period and again in this one) and ``vc_contract_retention_rate`` /
  ``vc_contract_churn_rate`` (contractual). Contractual retention is defined on the customers
  under contract at the start of the period (retained = still under contract at its end), so
  that retention + churn = 100 %; the catalogue's ``(end - new) / start`` counts a customer
  acquired and lost within the period against the starting base. Default period: quarter.
  "Contract customer": ``contract_type`` set and not ``none``.
- ``vc_nps``, ``vc_csat``, ``vc_ces``: by channel category of the response as well. NPS counts
  0-10 answers only; CSAT is top-2-box of each answer's own scale (score >= scale_max - 1,
  scale 1-5 when unset); CES is the CES 2.0 mean on 1-7 (higher is better): answers on another
  scale (e.g. CES 1.0, 1-5, lower is better) are left out rather than mixed in.
- ``vc_complaint_rate``: complaints (``interactions.kind = 'complaint'``, anonymous included) in
  the period per 1,000 customers active in the ``active_window_days`` (default 365) before the
  period end; the catalogue's "active in P" would make a monthly rate depend on how many
  customers happened to buy that month. By segment as well (anonymous complaints: ``unassigned``).
- ``vc_new_customers`` and ``vc_cac``: by acquisition channel category as well. CAC counts all
  cost entries with ``purpose = 'acquisition'`` (any cost type), pro rata to their overlap with
  the period.
- ``vc_cac_payback_months``: the catalogue's "margin per customer acquired in P over their first
  12 months" cannot be observed for a cohort younger than a year; the denominator is the
  average monthly gross margin per active customer over the 365 days before the period end
  (Skok's MRR x gross margin of the average customer).
- ``vc_ltv_cac_ratio``: the CLV is the BG/NBD + Gamma-Gamma CLV at the period end of the customers
  acquired in the period (a new customer without a purchase yet gets the CLV of a customer with
  no history).
- ``vc_aov``: per order, anonymous orders included (the catalogue allowed orders or occasions).
- ``vc_share_of_wallet``: spend-based on the active customers of the period whose category
  wallet is known (``customers.category_wallet``, else ``segments.wallet_per_customer``); the
  spend is annualised (x 365 / period days) because wallets are yearly. The survey-based and
  rank-based (Wallet Allocation Rule) variants are not computed.
- ``vc_cross_sell_rate``: among active customers with order lines in the period.
- ``vc_net_revenue_retention``: "active in P-1" = an order in the preceding window of the same
  length (calendar periods: the preceding calendar period). Default period: trailing 365 days.
- ``vc_clv_simple``: m = gross margin per active customer in the period, r = non-contractual
  retention from the preceding period, d = ``annual_discount_rate`` converted to the period's
  length; convention: first margin at the end of the first period, earned by survivors only:
  ``CLV = m r / (1 + d - r)``. Default period: trailing 365 days (yearly m and r).
- ``vc_clv_bgnbd_gg``: mean CLV over all customers with a purchase before the period end, margin
  over ``horizon_months`` (default 36) months, discounted monthly at ``annual_discount_rate``; the
  margin share applied to E[M] is the observed margin / net revenue of the customers' orders
  (``margin_share`` for orders without cogs). Per-customer outputs are kept in the store.
- ``vc_expected_alive_customers``: note that BG/NBD gives P(alive) = 1 to a customer without a
  repeat purchase, however long ago they bought.
- ``vc_customer_equity``: current customers only (no forecast of future cohorts).
- ``vc_segment_clv``: mean CLV per segment; totals per segment are ``vc_customer_equity`` by
  segment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmmetrics import MetricError, Parameter, Period, PeriodLabel, Perspective, Process, Result, ValueLens, hookimpl
from crmmetrics.kpi import (
    MARGIN_SHARE,
    Derived,
    Filter,
    Measure,
    Over,
    Ratio,
    answers,
    breakdown,
    customer_masters,
    customers,
    define,
    epoch_day,
    evaluate,
    gross_margin,
    in_period,
    label,
    net_promoter_score,
    on_scale,
    percent,
    ratio,
    sa,
    trailing,
)

# numpy, the CLV models (scipy) and the per-customer helpers are imported by the compute
# functions that use them: listing the metrics needs none of them.
if TYPE_CHECKING:
    import numpy as np

PAYNE_FROW = "Payne & Frow 2005, J. Marketing 69(4):167-176"
FARRIS = "Farris, Bendle, Pfeifer & Reibstein 2010, Marketing Metrics (2nd ed.)"
SKOK = "Skok, SaaS Metrics 2.0 (forEntrepreneurs.com)"
FHL_2005 = "Fader, Hardie & Lee 2005, Marketing Science 24(2):275-284"
RETENTION_SOURCE = "Reichheld & Sasser 1990, HBR 68(5):105-111; Fader & Hardie 2007, J. Interactive Marketing 21(1):76-90"
CLV_SOURCE = f"{FHL_2005}; Fader & Hardie 2013, note 025 'The Gamma-Gamma Model of Monetary Value'; Fader, Hardie & Lee 2005, J. Marketing Research 42(4)"

ANNUAL_DISCOUNT_RATE = Parameter(
    "annual_discount_rate", float, 0.10, "yearly discount rate applied to future margins", minimum=0.0, maximum=1.0
)
HORIZON_MONTHS = Parameter("horizon_months", int, 36, "months of future margin counted in the CLV", minimum=1, maximum=600)
MODEL_PARAMETERS = (MARGIN_SHARE, ANNUAL_DISCOUNT_RATE, HORIZON_MONTHS)


# --------------------------------------------------------------------------------------------
# The value the customer receives: surveys and complaints
# --------------------------------------------------------------------------------------------


def _top_two_boxes(r, ctx):
    return r.c.score >= sa.func.coalesce(r.c.scale_max, 5) - 1


NPS = net_promoter_score("nps")
CSAT = Ratio(answers("csat", _top_two_boxes), answers("csat"), scale=100)
SEVEN_POINT = on_scale(1, 7)
CES = Ratio(
    Measure("survey_responses", "score", filters=(Filter("instrument", "=", "ces"), SEVEN_POINT)), answers("ces", SEVEN_POINT)
)
COMPLAINTS = Measure("interactions", agg="count", filters=[Filter("kind", "=", "complaint")])

# --------------------------------------------------------------------------------------------
# Acquisition economics
# --------------------------------------------------------------------------------------------

NEW_CUSTOMERS = Measure("customers", agg="count", time="acquired_at")  # master records acquired in the period
ACQUISITION_COST = Measure("cost_entries", "amount", filters=[Filter("purpose", "=", "acquisition")])  # pro rata
CAC = Ratio(ACQUISITION_COST, NEW_CUSTOMERS)


def _identified_margin(orders, ctx):
    return gross_margin(orders.c.net_revenue, orders.c.cogs, ctx.params["margin_share"])


YEAR = trailing(365)


def _payback_months(cac, margin, customers):
    """CAC over the average monthly gross margin of a customer active in the year before the period end."""
    monthly = ratio(margin, customers, 1.0 / 12.0)
    return ratio(cac, monthly) if monthly is not None and monthly > 0 else None


CAC_PAYBACK_MONTHS = Derived(
    _payback_months,
    cac=CAC,
    margin=Over(Measure("orders", _identified_margin, filters=[Filter("customer.customer_id", "is not null")]), YEAR),
    customers=Over(customers("orders"), YEAR),
)


def _model(ctx):
    """The shared fit, or None for a previous period whose data cannot support one."""
    from crmmetrics.kpi import customer_values

    try:
        return customer_values(ctx)
    except MetricError:
        if ctx.period.label == PeriodLabel.PREVIOUS:
            return None
        raise


def ltv_cac_ratio(ctx):
    import numpy as np

    acquisition_cost = evaluate(CAC, ctx)[0]
    if not acquisition_cost:
        return None
    customers = ctx.tables["customers"]
    cohort = np.array(
        ctx.connection.execute(
            sa.select(customers.c.customer_id).where(
                customers.c.master_customer_id.is_(None), in_period(customers.c.acquired_at, ctx.period)
            )
        )
        .scalars()
        .all(),
        dtype=np.int64,
    )
    model = _model(ctx)
    if model is None or cohort.size == 0:
        return None
    position = np.searchsorted(model.ids, cohort)
    known = (position < model.ids.size) & (model.ids[np.minimum(position, model.ids.size - 1)] == cohort)
    newcomer = model.clv_of(*np.zeros((4, 1)))[0]
    values = np.where(known, model.clv[np.minimum(position, model.ids.size - 1)], newcomer)
    return float(values.mean()) / acquisition_cost




# --------------------------------------------------------------------------------------------
# Retention economics
# --------------------------------------------------------------------------------------------


def _contract_counts(ctx):
    """Per segment: (contract customers at the start of the period, of whom churned in it).
    Read once per run and period: retention and churn share it."""
    return ctx.shared(("contract_counts", ctx.period.start, ctx.period.end), lambda: _read_contract_counts(ctx))


def _read_contract_counts(ctx):
    customers = ctx.tables["customers"]
    start, end = ctx.period.start, ctx.period.end
    under_contract = sa.and_(
        customers.c.master_customer_id.is_(None),
        customers.c.contract_type.is_not(None),
        sa.func.lower(customers.c.contract_type).not_in(["none", ""]),
        customers.c.acquired_at < start,
        sa.or_(customers.c.churned_at.is_(None), customers.c.churned_at >= start),
    )
    churned = sa.and_(customers.c.churned_at.is_not(None), customers.c.churned_at < end)
    return tuple(tuple(row) for row in ctx.connection.execute(
        sa.select(customers.c.segment_id, sa.func.count(), sa.func.sum(sa.case((churned, 1), else_=0)))
        .where(under_contract)
        .group_by(customers.c.segment_id)
    ))


def contract_retention_rate(ctx):
    from crmmetrics.kpi import segment_names

    return breakdown(_contract_counts(ctx), lambda base, churned: percent(base - churned, base), labels=segment_names(ctx))


def contract_churn_rate(ctx):
    from crmmetrics.kpi import segment_names

    return breakdown(_contract_counts(ctx), lambda base, churned: percent(churned, base), labels=segment_names(ctx))


def _returning(ctx, period: Period):
    """Per segment: (customers active in the preceding window, of whom active in ``period``,
    their revenue in the preceding window, their revenue in ``period``). Computed once per run
    and period: retention and churn share it, and so do net revenue retention and the simple
    CLV (each pair has the same default period)."""
    from crmmetrics.kpi import preceding
    from crmmetrics.kpi.customer_value import lookup, period_activity, segment_rows

    def returning():
        before, now = period_activity(ctx, preceding(period)), period_activity(ctx, period)
        # each customer of the preceding window: active again in this one, and its revenue here
        revenue_now, retained = lookup(now.ids, now.revenue, before.ids, missing=0.0)
        rows = segment_rows(before.segment, retained, before.revenue, revenue_now)
        # SQL's sum over no returning customer is NULL, not 0
        return tuple((segment, count, kept, spent, earned if kept else None) for segment, count, kept, spent, earned in rows)

    return ctx.shared(("returning_customers", period.start, period.end), returning)


def active_retention_rate(ctx):
    from crmmetrics.kpi import segment_names

    rows = [row[:3] for row in _returning(ctx, ctx.period)]
    return breakdown(rows, lambda before, retained: percent(retained, before), labels=segment_names(ctx))


def active_churn_rate(ctx):
    from crmmetrics.kpi import segment_names

    rows = [row[:3] for row in _returning(ctx, ctx.period)]
    return breakdown(rows, lambda before, retained: percent(before - retained, before), labels=segment_names(ctx))


def net_revenue_retention(ctx):
    from crmmetrics.kpi import segment_names

    rows = [(row[0], row[3], row[4]) for row in _returning(ctx, ctx.period)]
    return breakdown(rows, lambda before, now: percent(now or 0, before), labels=segment_names(ctx))


def repeat_purchase_rate(ctx):
    from crmmetrics.kpi import segment_names
    from crmmetrics.kpi.customer_value import period_activity, segment_rows

    activity = period_activity(ctx, ctx.period)
    rows = segment_rows(activity.segment, activity.occasions >= 2)
    return breakdown(rows, lambda customers, repeaters: percent(repeaters, customers), labels=segment_names(ctx))


def purchase_frequency(ctx):
    from crmmetrics.kpi import segment_names
    from crmmetrics.kpi.customer_value import period_activity, segment_rows

    activity = period_activity(ctx, ctx.period)
    rows = [(segment, occasions, customers) for segment, customers, occasions in segment_rows(activity.segment, activity.occasions.astype(int))]
    return breakdown(rows, ratio, labels=segment_names(ctx))


def average_order_value(ctx):
    """Net revenue per order (``basis = order``) or per purchase occasion (``basis = occasion``:
    a customer's orders on one UTC day are one occasion; an anonymous order is one of its own)."""
    orders = ctx.tables["orders"]
    in_p = in_period(orders.c.ordered_at, ctx.period)
    revenue, count = ctx.connection.execute(sa.select(sa.func.sum(orders.c.net_revenue), sa.func.count()).where(in_p)).one()
    if ctx.params["basis"] == "order":
        return ratio(revenue, count)
    masters = customer_masters(ctx.tables)
    occasions = (
        sa.select(masters.c.master_id, epoch_day(orders.c.ordered_at), sa.case((masters.c.master_id.is_(None), orders.c.order_id)))
        .select_from(orders.outerjoin(masters, masters.c.customer_id == orders.c.customer_id))
        .where(in_p)
        .distinct()
        .subquery("occasions")
    )
    return ratio(revenue, ctx.scalar(sa.select(sa.func.count()).select_from(occasions)))


def share_of_wallet(ctx):
    import numpy as np
    from crmmetrics.kpi import segment_names
    from crmmetrics.kpi.customer_value import customer_record_values, lookup, period_activity, segment_rows

    segments = ctx.tables["segments"]
    activity = period_activity(ctx, ctx.period)
    # the customer's own category wallet, else its segment's per-customer wallet
    known_segments = np.array(ctx.connection.execute(
        sa.select(segments.c.segment_id, segments.c.wallet_per_customer)
        .where(segments.c.wallet_per_customer.is_not(None))
        .order_by(segments.c.segment_id)
    ).all(), dtype=float).reshape(-1, 2)
    segment_wallet = lookup(known_segments[:, 0], known_segments[:, 1], activity.segment)[0]  # no segment: NaN
    own = customer_record_values(ctx, activity.ids, "category_wallet")
    wallet = np.where(np.isnan(own), segment_wallet, own)
    known = wallet > 0  # NaN: no wallet known, left out as SQL's NULL > 0
    rows = [(segment, spend, wallets)
            for segment, _, spend, wallets in segment_rows(activity.segment[known], activity.revenue[known], wallet[known])]
    yearly = 365.0 / ctx.period.days
    return breakdown(rows, lambda spend, wallets: ratio(spend, wallets, 100.0 * yearly), labels=segment_names(ctx))


def cross_sell_rate(ctx):
    from crmmetrics.kpi import customer_orders, segment_names

    lines = ctx.tables["order_lines"]
    orders = customer_orders(ctx.tables, ctx.period.start, ctx.period.end)
    per_customer = (
        sa.select(orders.c.customer_id, orders.c.segment_id, sa.func.count(sa.func.distinct(lines.c.product_category)).label("categories"))
        .select_from(orders.join(lines, lines.c.order_id == orders.c.order_id))
        .group_by(orders.c.customer_id, orders.c.segment_id)
        .subquery("categories_bought")
    )
    rows = ctx.connection.execute(
        sa.select(per_customer.c.segment_id, sa.func.count(), sa.func.sum(sa.case((per_customer.c.categories >= 2, 1), else_=0))).group_by(
            per_customer.c.segment_id
        )
    ).all()
    return breakdown(rows, lambda customers, cross_buyers: percent(cross_buyers, customers), labels=segment_names(ctx))


# --------------------------------------------------------------------------------------------
# Customer segment lifetime value
# --------------------------------------------------------------------------------------------


def clv_simple(ctx):
    from crmmetrics.kpi import customer_orders, margin, period_discount_rate, segment_names
    from crmmetrics.kpi.clv import simple_clv

    margin_share = ctx.params["margin_share"]
    orders = customer_orders(ctx.tables, ctx.period.start, ctx.period.end)
    margins = {
        segment: (gross_margin, active)
        for segment, gross_margin, active in ctx.connection.execute(
            sa.select(orders.c.segment_id, sa.func.sum(margin(orders.c, margin_share)), sa.func.count(sa.func.distinct(orders.c.customer_id)))
            .group_by(orders.c.segment_id)
        ).all()
    }
    returning = {row[0]: row[1:3] for row in _returning(ctx, ctx.period)}
    discount = period_discount_rate(ctx.params["annual_discount_rate"], ctx.period.days)

    def value(gross_margin, active, before, retained):
        m, r = ratio(gross_margin, active), ratio(retained, before)
        # Without discounting, full retention has no finite lifetime value.
        if m is None or r is None or r >= 1 + discount:
            return None
        return float(simple_clv(m, r, discount))

    rows = [(segment, *margins.get(segment, (0, 0)), *returning.get(segment, (0, 0))) for segment in set(margins) | set(returning)]
    return breakdown(rows, value, labels=segment_names(ctx))


def _segments_of(ctx, ids: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The segment names of the customers ``ids`` (sorted master ids) and, per customer, the
    index of its name."""
    import numpy as np
    from crmmetrics.kpi import segment_names
    from crmmetrics.kpi.customer_value import customer_segment_ids

    segment = customer_segment_ids(ctx, ids)
    values, codes = np.unique(segment, return_inverse=True)  # one NaN, last
    names = segment_names(ctx)
    labels = [label(None if np.isnan(value) else int(value), names) for value in values]
    order = sorted(set(labels))  # two segments of one name are one
    return order, np.array([order.index(name) for name in labels], dtype=np.intp)[codes.reshape(-1)]


def _per_segment(ctx, values: np.ndarray, model, reduce) -> list[Result]:
    names, codes = _segments_of(ctx, model.ids)
    return [Result(float(reduce(values)))] + [
        Result(float(reduce(values[codes == index])), {"segment": name}) for index, name in enumerate(names)
    ]


def clv_bgnbd_gg(ctx):
    model = _model(ctx)
    if model is None:
        return None
    if ctx.period.label == PeriodLabel.CURRENT:
        ctx.record_customer_values(model.rows())
    return float(model.clv.mean())


def expected_alive_customers(ctx):
    import numpy as np

    model = _model(ctx)
    return None if model is None else _per_segment(ctx, model.p_alive, model, np.sum)


def customer_equity(ctx):
    import numpy as np

    model = _model(ctx)
    return None if model is None else _per_segment(ctx, model.clv, model, np.sum)


def segment_clv(ctx):
    import numpy as np

    model = _model(ctx)
    return None if model is None else _per_segment(ctx, model.clv, model, np.mean)[1:]




# --------------------------------------------------------------------------------------------
# Definitions
# --------------------------------------------------------------------------------------------

PROCESS = Process.VALUE_CREATION
CUSTOMER, FINANCIAL = Perspective.CUSTOMER, Perspective.FINANCIAL
CUSTOMER_VALUE, SHAREHOLDER_VALUE = ValueLens.CUSTOMER_VALUE, ValueLens.SHAREHOLDER_VALUE
HIGHER, LOWER = "higher_is_better", "lower_is_better"


@hookimpl
def crmmetrics_metrics():
    return [
        define(
            key="vc_nps", name="Net Promoter Score",
            description="Promoters (9-10) minus detractors (0-6), in points, of the period's NPS answers on the 0-10 scale; in total and by channel category of the answer.",
            process=PROCESS, perspective=CUSTOMER, value_lens=CUSTOMER_VALUE, unit="points", direction=HIGHER, by="channel_category",
            value=NPS,
            formula="100 * (count(score 9-10) - count(score 0-6)) / count(NPS responses)",
            source="Reichheld 2003, Harvard Business Review 81(12):46-54",
        ),
        define(
            key="vc_csat", name="Customer satisfaction (top-2-box)",
            description="Share of the period's CSAT answers in the top two boxes of their scale (4-5 on 1-5); in total and by channel category.",
            process=PROCESS, perspective=CUSTOMER, value_lens=CUSTOMER_VALUE, unit="percent", direction=HIGHER, by="channel_category",
            value=CSAT,
            formula="100 * count(score >= scale_max - 1) / count(CSAT responses)",
            source="ACSI (theacsi.org); SQM Group (world-class contact-centre CSAT >= 85% top box)",
        ),
        define(
            key="vc_ces", name="Customer Effort Score (CES 2.0)",
            description="Mean agreement (1-7, higher is better) with 'The company made it easy for me to handle my issue' in the period; answers on other scales (CES 1.0) are left out.",
            process=PROCESS, perspective=CUSTOMER, value_lens=CUSTOMER_VALUE, unit="score", direction=HIGHER, by="channel_category",
            value=CES,
            formula="mean(score) of CES responses on the 1-7 scale",
            source="Dixon, Freeman & Toman 2010, Harvard Business Review 88(7/8):116-122; Dixon, Toman & DeLisi 2013, The Effortless Experience",
        ),
        define(
            key="vc_complaint_rate", name="Complaint rate",
            description="Complaints received in the period per 1,000 customers active in the year before its end (active_window_days); by segment (anonymous complaints under 'unassigned').",
            process=PROCESS, perspective=CUSTOMER, value_lens=CUSTOMER_VALUE, unit="per_1000_customers", direction=LOWER, by="segment",
            value=Ratio(COMPLAINTS, Over(customers("orders"), trailing("active_window_days")), scale=1000),
            parameters=(Parameter("active_window_days", int, 365, "days before the period end in which a customer counts as active", minimum=1, maximum=3650),),
            formula="1000 * count(interactions with kind 'complaint' in the period) / count(customers with an order in the active window)",
            source="Fornell & Wernerfelt 1987, J. Marketing Research 24(4):337-346 (complaint management)",
        ),
        define(
            key="vc_new_customers", name="New customers acquired",
            description="Customers (master records, duplicates excluded) acquired in the period; in total and by acquisition channel category.",
            process=PROCESS, perspective=CUSTOMER, value_lens=CUSTOMER_VALUE, unit="customers", direction=HIGHER, by="channel_category",
            value=NEW_CUSTOMERS,
            formula="count(customers with acquired_at in the period and master_customer_id IS NULL)",
            source=f"{PAYNE_FROW} (acquisition economics)",
        ),
        define(
            key="vc_cac", name="Customer acquisition cost (CAC)",
            description="Acquisition cost of the period (cost entries with purpose 'acquisition', pro rata to their overlap with the period) per new customer; by channel category of cost and acquisition channel.",
            process=PROCESS, perspective=FINANCIAL, value_lens=SHAREHOLDER_VALUE, unit="currency", direction=LOWER, by="channel_category",
            value=CAC,
            formula="sum(cost_entries.amount where purpose = 'acquisition', pro rata) / vc_new_customers",
            source=f"{FARRIS}; {SKOK}",
        ),
        define(
            key="vc_cac_payback_months", name="CAC payback period",
            description="Months of average gross margin per active customer (over the 365 days before the period end) needed to earn back the period's CAC.",
            process=PROCESS, perspective=FINANCIAL, value_lens=SHAREHOLDER_VALUE, unit="months", direction=LOWER,
            value=CAC_PAYBACK_MONTHS, parameters=(MARGIN_SHARE,), needs=("cost_entries", "orders", "customers.acquired_at"),
            formula="CAC / (gross margin of identified orders in the 365 days before the period end / customers active in them / 12)",
            source=SKOK,
        ),
        define(
            key="vc_ltv_cac_ratio", name="CLV to CAC ratio",
            description="Mean BG/NBD + Gamma-Gamma CLV (at the period end) of the customers acquired in the period, divided by the period's CAC.",
            process=PROCESS, perspective=FINANCIAL, value_lens=SHAREHOLDER_VALUE, unit="ratio", direction=HIGHER,
            compute=ltv_cac_ratio, parameters=MODEL_PARAMETERS, needs=("cost_entries", "orders", "customers.acquired_at"),
            formula="mean(CLV_i of customers acquired in the period) / CAC",
            source=f"{SKOK}; Gupta, Lehmann & Stuart 2004, J. Marketing Research 41(1):7-18",
        ),
        define(
            key="vc_active_retention_rate", name="Customer retention rate (non-contractual, activity-based)",
            description="Share of the customers who bought in the preceding period who bought again in this one (customers without contracts: retention observed through activity).",
            process=PROCESS, perspective=CUSTOMER, value_lens=CUSTOMER_VALUE, unit="percent", direction=HIGHER, by="segment", period="quarter",
            compute=active_retention_rate, needs=("orders",),
            formula="100 * |active(P-1) & active(P)| / |active(P-1)|, active = >= 1 order in the period",
            source=RETENTION_SOURCE,
        ),
        define(
            key="vc_active_churn_rate", name="Churn rate (non-contractual, activity-based)",
            description="Share of the customers who bought in the preceding period who did not buy in this one; 100 minus the non-contractual retention rate.",
            process=PROCESS, perspective=CUSTOMER, value_lens=CUSTOMER_VALUE, unit="percent", direction=LOWER, by="segment", period="quarter",
            compute=active_churn_rate, needs=("orders",),
            formula="100 * |active(P-1) - active(P)| / |active(P-1)|",
            source=RETENTION_SOURCE,
        ),
        define(
            key="vc_contract_retention_rate", name="Customer retention rate (contractual)",
            description="Share of the customers under contract at the start of the period whose contract has not ended by its end (contract_type set, churned_at).",
            process=PROCESS, perspective=CUSTOMER, value_lens=CUSTOMER_VALUE, unit="percent", direction=HIGHER, by="segment", period="quarter",
            compute=contract_retention_rate, needs=("customers.contract_type",),
            formula="100 * count(contract customers at the start still under contract at the end) / count(contract customers at the start)",
            source=RETENTION_SOURCE,
        ),
        define(
            key="vc_contract_churn_rate", name="Churn rate (contractual)",
            description="Share of the customers under contract at the start of the period whose contract ended (churned_at) in the period.",
            process=PROCESS, perspective=CUSTOMER, value_lens=CUSTOMER_VALUE, unit="percent", direction=LOWER, by="segment", period="quarter",
            compute=contract_churn_rate, needs=("customers.contract_type",),
            formula="100 * count(contract customers at the start with churned_at in the period) / count(contract customers at the start)",
            source="Fader & Hardie 2007, J. Interactive Marketing 21(1):76-90",
        ),
        define(
            key="vc_repeat_purchase_rate", name="Repeat purchase rate",
            description="Share of the period's active customers with purchases on at least two different days (by default in the trailing 365 days).",
            process=PROCESS, perspective=CUSTOMER, value_lens=CUSTOMER_VALUE, unit="percent", direction=HIGHER, by="segment", period="trailing_365d",
            compute=repeat_purchase_rate, needs=("orders",),
            formula="100 * count(customers with >= 2 purchase days in the period) / count(customers with >= 1)",
            source=f"{FHL_2005} (CDNOW data)",
        ),
        define(
            key="vc_purchase_frequency", name="Purchase frequency",
            description="Purchase occasions (distinct purchase days) per active customer in the period (by default the trailing 365 days).",
            process=PROCESS, perspective=CUSTOMER, value_lens=CUSTOMER_VALUE, unit="occasions", direction=HIGHER, by="segment", period="trailing_365d",
            compute=purchase_frequency, needs=("orders",),
            formula="count(distinct (customer, purchase day) in the period) / count(active customers)",
            source=FARRIS,
        ),
        define(
            key="vc_aov", name="Average order value",
            description="Net revenue per order in the period, anonymous orders included; or, with basis = occasion, per purchase occasion (a customer's orders on one day).",
            process=PROCESS, perspective=FINANCIAL, value_lens=SHAREHOLDER_VALUE, unit="currency", direction=HIGHER,
            compute=average_order_value, needs=("orders",),
            parameters=(
                Parameter("basis", str, "order", "what a purchase is: each order, or each purchase occasion (customer-day)", choices=("order", "occasion")),
            ),
            formula="sum(net_revenue) / count(orders); basis = occasion: sum(net_revenue) / count(distinct customer-days, an anonymous order counting alone)",
            source=FARRIS,
        ),
        define(
            key="vc_share_of_wallet", name="Share of wallet",
            description="Active customers' spend with the firm (annualised) as a share of their yearly category spend (customers.category_wallet, else the segment's wallet_per_customer).",
            process=PROCESS, perspective=CUSTOMER, value_lens=CUSTOMER_VALUE, unit="percent", direction=HIGHER, by="segment", period="trailing_365d",
            compute=share_of_wallet, needs=("orders",),
            formula="100 * sum(net_revenue in the period * 365 / period days) / sum(category wallet) over active customers with a known wallet",
            source=f"{FARRIS}; Keiningham et al. 2015, The Wallet Allocation Rule (Wiley)",
        ),
        define(
            key="vc_cross_sell_rate", name="Cross-sell rate",
            description="Share of the customers who bought in the period (by default the trailing 365 days) who bought from at least two product categories.",
            process=PROCESS, perspective=FINANCIAL, value_lens=SHAREHOLDER_VALUE, unit="percent", direction=HIGHER, by="segment", period="trailing_365d",
            compute=cross_sell_rate, needs=("orders", "order_lines"),
            formula="100 * count(customers with >= 2 distinct order_lines.product_category in the period) / count(customers with order lines)",
            source=f"{PAYNE_FROW} (value the organisation receives)",
        ),
        define(
            key="vc_net_revenue_retention", name="Net revenue retention",
            description="Net revenue in the period from the customers who bought in the preceding period, as a share of what they spent then; above 100% expansion outweighs churn.",
            process=PROCESS, perspective=FINANCIAL, value_lens=SHAREHOLDER_VALUE, unit="percent_unbounded", direction=HIGHER, by="segment", period="trailing_365d",
            compute=net_revenue_retention, needs=("orders",),
            formula="100 * net_revenue in P of customers active in P-1 / their net_revenue in P-1",
            source=SKOK,
        ),
        define(
            key="vc_clv_simple", name="CLV, simple retention model",
            description="Lifetime margin of an active customer from the period's margin per customer m, non-contractual retention r and discount rate d, first margin at the end of the first period: m r / (1 + d - r).",
            process=PROCESS, perspective=FINANCIAL, value_lens=SHAREHOLDER_VALUE, unit="currency", direction=HIGHER, by="segment", period="trailing_365d",
            compute=clv_simple, needs=("orders",), parameters=(MARGIN_SHARE, ANNUAL_DISCOUNT_RATE),
            formula="CLV = m * r / (1 + d - r); m = gross margin per active customer in P, r = active retention from P-1 to P, d = annual_discount_rate over P's length",
            source="Gupta & Lehmann 2003, J. Interactive Marketing 17(1):9-24; Gupta, Lehmann & Stuart 2004, J. Marketing Research 41(1):7-18",
        ),
        define(
            key="vc_clv_bgnbd_gg", name="CLV, BG/NBD + Gamma-Gamma",
            description="Mean predicted lifetime margin over the horizon of all customers with a purchase before the period end, from BG/NBD purchases and Gamma-Gamma spend; per-customer values are kept.",
            process=PROCESS, perspective=FINANCIAL, value_lens=SHAREHOLDER_VALUE, unit="currency", direction=HIGHER,
            compute=clv_bgnbd_gg, needs=("orders",), parameters=MODEL_PARAMETERS,
            formula="CLV_i = margin% * E[M_i] * sum_{k=1..H} (E[Y_i(k L)] - E[Y_i((k-1) L)]) / (1 + d)^k, L = 1 month; mean over customers",
            source=CLV_SOURCE,
        ),
        define(
            key="vc_expected_alive_customers", name="Expected alive customers (sum of P(alive))",
            description="Expected number of customers still active at the period end under BG/NBD: the sum of P(alive) over all customers with a purchase before it.",
            process=PROCESS, perspective=CUSTOMER, value_lens=CUSTOMER_VALUE, unit="customers", direction=HIGHER, by="segment",
            compute=expected_alive_customers, needs=("orders",), parameters=MODEL_PARAMETERS,
            formula="sum_i P(alive | x_i, t_x_i, T_i) = sum_i 1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))",
            source=f"{FHL_2005}; Fader, Hardie & Lee 2008, note 'Computing P(alive) using the BG/NBD model'",
        ),
        define(
            key="vc_customer_equity", name="Customer equity",
            description="Sum of the BG/NBD + Gamma-Gamma CLV of all current customers at the period end; in total and by segment.",
            process=PROCESS, perspective=FINANCIAL, value_lens=SHAREHOLDER_VALUE, unit="currency", direction=HIGHER, by="segment",
            compute=customer_equity, needs=("orders",), parameters=MODEL_PARAMETERS,
            formula="sum_i CLV_i over customers with a purchase before the period end",
            source="Blattberg & Deighton 1996, HBR 74(4):136-144; Rust, Lemon & Zeithaml 2004, J. Marketing 68(1):109-127; Gupta, Lehmann & Stuart 2004",
        ),
        define(
            key="vc_segment_clv", name="Segment lifetime value",
            description="Mean BG/NBD + Gamma-Gamma CLV of the customers of each segment at the period end (customer segment lifetime value analysis).",
            process=PROCESS, perspective=FINANCIAL, value_lens=SHAREHOLDER_VALUE, unit="currency", direction=HIGHER, by="segment",
            compute=segment_clv, needs=("orders",), parameters=MODEL_PARAMETERS,
            formula="mean(CLV_i) over the customers of segment s",
            source=f"{PAYNE_FROW} (customer segment lifetime value analysis)",
        ),
    ]


@hookimpl
def crmmetrics_standards():
    """Default standards of the scale-free KPIs; the catalogue's benchmark where it gives one.

    KPIs in currency or counts (CLV, customer equity, CAC, AOV, new and alive customers) depend
    on the size and prices of the business and get no default: an admin sets theirs.
    """
    from crmmetrics import StandardDefault

    marketing, service, finance = "marketing", "customer service", "finance"
    return [
        StandardDefault("vc_nps", target=30, red=0, green=30, owner=marketing),
        StandardDefault(
            "vc_csat", target=None, red=70, green=85, owner=service, target_rule="benchmark", benchmark=85,
            source="SQM Group: world-class contact-centre CSAT >= 85% top box",
        ),
        StandardDefault("vc_ces", target=5.5, red=4.0, green=5.5, owner=service),
        StandardDefault("vc_complaint_rate", target=10, red=50, green=10, owner=service),
        StandardDefault(
            "vc_cac_payback_months", target=None, red=24, green=12, owner=finance, target_rule="benchmark", benchmark=12,
            source=f"{SKOK}: CAC payback under 12 months",
        ),
        StandardDefault(
            "vc_ltv_cac_ratio", target=None, red=1, green=3, weight=2.0, owner=finance, target_rule="benchmark", benchmark=3,
            source=f"{SKOK}: LTV/CAC of 3 or more",
        ),
        StandardDefault("vc_active_retention_rate", target=50, red=30, green=50, weight=2.0, owner=marketing),
        StandardDefault("vc_active_churn_rate", target=50, red=70, green=50, owner=marketing),
        StandardDefault("vc_contract_retention_rate", target=97, red=90, green=97, weight=2.0, owner=marketing),
        StandardDefault("vc_contract_churn_rate", target=3, red=10, green=3, owner=marketing),
        StandardDefault("vc_repeat_purchase_rate", target=40, red=25, green=40, owner=marketing),
        StandardDefault("vc_purchase_frequency", target=2.5, red=1.5, green=2.5, owner=marketing),
        StandardDefault("vc_share_of_wallet", target=30, red=10, green=30, owner=marketing),
        StandardDefault("vc_cross_sell_rate", target=40, red=20, green=40, owner=marketing),
        StandardDefault("vc_net_revenue_retention", target=100, red=80, green=100, weight=2.0, owner=finance),
    ]
