"""Strategy development: the customer base, its segments, its concentration and its RFM profile.

Payne & Frow's strategy development process decides which customers to attract and keep (macro,
micro or one-to-one segmentation). Its KPIs watch the customer base that strategy produces: how
many customers are active, what each segment brings, how far the target segments are penetrated,
how concentrated revenue is, and how the base splits into RFM segments.

Every customer-level KPI counts master records only (a duplicate's orders belong to its master),
counts purchase occasions as distinct purchase days, and leaves anonymous orders out; revenue
totals include anonymous orders (see :mod:`crmmetrics.kpi.customer_value`). Customers without a
segment, and anonymous revenue in the revenue split, are reported under the segment
``unassigned``.

Changes from the catalogue
--------------------------
- ``sd_active_customers``: the breakdown by segment is added; the model-based alternative
  (sum of P(alive)) is its own KPI, ``vc_expected_alive_customers``. The default period is
  ``trailing_365d`` (active = an order in the trailing 365 days).
- ``sd_segment_revenue_share``: revenue of anonymous orders and of customers without a segment is
  shown as the segment ``unassigned``, so the shares add up to 100 %. The catalogue's direction
  "target band" becomes higher-is-better (a standard per segment can set a band).
- ``sd_target_segment_penetration``: per target segment with a known market size, plus the total
  over those segments (active customers / market size, summed).
- ``sd_revenue_concentration_top20``: customers are ranked by net revenue within the period;
  anonymous revenue cannot be ranked, so the share is of *identified* revenue. Ties at the cut are
  broken by customer id. Direction: lower is better (less concentration risk); the catalogue
  said "monitor".
- ``sd_rfm_champion_share`` and ``sd_rfm_at_risk_share``: scored on the whole purchase history
  up to the end of the period (a snapshot at the period end). The tie rule: a score is
  ``1 + floor(5 * (rank - 1) / N)`` with rank = SQL ``RANK()`` in ascending order (ties share
  the lowest rank), so customers with equal recency, frequency or monetary value always get the
  same score; R ranks by the last purchase day (most recent = 5), F by purchase occasions, M by
  net revenue. The catalogue's CDNOW figures were computed with rank-first ties and are not
  comparable in the second decimal. Breakdown by segment added (quintiles over the whole base).
- ``sd_new_customer_revenue_share``: "new" = the master record's ``acquired_at`` falls in the
  period (the catalogue's ``acquisition_date``); the denominator includes anonymous revenue. The
  catalogue's direction "target band" becomes higher-is-better (growth through new customers);
  a standard can set a band.
"""

from __future__ import annotations

import math

from crmmetrics import Parameter, Perspective, Process, ValueLens, hookimpl
from crmmetrics.kpi import Filter, Measure, Ratio, Share, breakdown, customers, define, percent, sa

# The per-customer helpers (crmmetrics.kpi.customer_value, with numpy and scipy) and
# StandardDefault are imported by the functions that use them: listing the metrics needs neither.

PAYNE_FROW = "Payne & Frow 2005, J. Marketing 69(4):167-176"
FARRIS = "Farris, Bendle, Pfeifer & Reibstein 2010, Marketing Metrics (2nd ed.)"
RFM_SOURCE = "Hughes 1994, Strategic Database Marketing; Fader, Hardie & Lee 2005, J. Marketing Research 42(4):415-430"

REVENUE = Measure("orders", "net_revenue")  # anonymous orders included


def target_segment_penetration(ctx):
    from crmmetrics.kpi.customer_value import period_activity

    segments = ctx.tables["segments"]
    targets = ctx.connection.execute(
        sa.select(segments.c.segment_id, segments.c.name, segments.c.market_size_customers)
        .where(segments.c.is_target.is_(True), segments.c.market_size_customers > 0)
        .order_by(segments.c.segment_id)
    ).all()
    if not targets:
        return None
    segment = period_activity(ctx, ctx.period).segment
    return breakdown(((name, int((segment == segment_id).sum()), size) for segment_id, name, size in targets), percent)


def revenue_concentration_top20(ctx):
    import numpy as np
    from crmmetrics.kpi.customer_value import period_activity

    activity = period_activity(ctx, ctx.period)
    customers = activity.ids.size
    if not customers:
        return None
    total = float(activity.revenue.sum())
    # The top share's customers, rounded up (at least one); a float product such as 0.3 * 10
    # is rounded first so that it does not become 4.
    top = max(1, math.ceil(round(ctx.params["top_share"] * customers, 9)))
    # by revenue, highest first; ties broken by customer id
    order = np.lexsort((activity.ids, -activity.revenue))
    return percent(float(activity.revenue[order[:top]].sum()), total)


def _quintile(values):
    """The RFM score 1-5 of each value, as SQL's ``1 + 5 * (rank() - 1) // count()`` over them
    ascending (ties share the lowest rank; NaN, SQL's NULL, ranks first as SQLite sorts it)."""
    import numpy as np

    keys = np.where(np.isnan(values), -np.inf, values)
    rank = np.searchsorted(np.sort(keys), keys, side="left")  # values below each: rank - 1
    return 1 + (5 * rank) // keys.size


def _rfm_counts(ctx):
    """Per segment: (customers scored, champions R,F,M >= 4, at risk R <= 2 and F >= 4).

    Scored on the customers' purchase summary at the period end, the one the CLV KPIs fit their
    models on (shared through the run: the source summarises the orders once for all of them)."""
    from crmmetrics.kpi.customer_value import customer_segment_ids, purchase_summary, segment_rows

    summary = purchase_summary(ctx, ctx.period.end)
    if summary.ids.size == 0:
        return []
    r, f, m = _quintile(summary.last), _quintile(summary.occasions), _quintile(summary.revenue)
    champion = (r >= 4) & (f >= 4) & (m >= 4)
    at_risk = (r <= 2) & (f >= 4)
    return segment_rows(customer_segment_ids(ctx, summary.ids), champion, at_risk)


def _rfm_share(ctx, column: int):
    from crmmetrics.kpi import segment_names

    # Both shares read the same scores: one query per run and period end.
    rows = ctx.shared(("rfm_counts", ctx.period.end), lambda: _rfm_counts(ctx))
    return breakdown(((row[0], row[column], row[1]) for row in rows), percent, labels=segment_names(ctx))


def rfm_champion_share(ctx):
    return _rfm_share(ctx, 2)


def rfm_at_risk_share(ctx):
    return _rfm_share(ctx, 3)


PROCESS = Process.STRATEGY_DEVELOPMENT


@hookimpl
def crmmetrics_metrics():
    return [
        define(
            key="sd_active_customers", name="Active customer base",
            description="Customers (master records) with at least one order in the period, by default the trailing 365 days; in total and by segment.",
            process=PROCESS, perspective=Perspective.CUSTOMER, value_lens=ValueLens.CUSTOMER_VALUE,
            unit="customers", direction="higher_is_better", by="segment", period="trailing_365d",
            value=customers("orders"),
            formula="count(distinct master customer with >= 1 order in the period)",
            source="Fader, Hardie & Lee 2005, Marketing Science 24(2):275-284",
        ),
        define(
            key="sd_segment_revenue_share", name="Revenue share by segment",
            description="Share of the period's net revenue that each customer segment brings; anonymous orders and customers without a segment make up the segment 'unassigned'.",
            process=PROCESS, perspective=Perspective.FINANCIAL, value_lens=ValueLens.SHAREHOLDER_VALUE,
            unit="percent", direction="higher_is_better", by="segment",
            value=Share(REVENUE),
            formula="100 * sum(net_revenue of orders of customers in segment s) / sum(net_revenue of all orders)",
            source=f"{PAYNE_FROW} (customer strategy, segmentation); {FARRIS}",
        ),
        define(
            key="sd_target_segment_penetration", name="Target-segment penetration",
            description="Active customers of each target segment (an order in the period, by default the trailing 365 days) as a share of the segment's market size; the total covers all target segments.",
            process=PROCESS, perspective=Perspective.CUSTOMER, value_lens=ValueLens.CUSTOMER_VALUE,
            unit="percent", direction="higher_is_better", by="segment", period="trailing_365d",
            compute=target_segment_penetration, needs=("orders",),
            formula="100 * count(active customers of target segment s) / segments.market_size_customers",
            source=f"{FARRIS} (penetration)",
        ),
        define(
            key="sd_revenue_concentration_top20", name="Revenue concentration (top customers)",
            description="Share of identified net revenue in the period (by default the trailing 365 days) that the top customers by revenue bring (the top 20% by default: top_share). High values mean dependence on few customers.",
            process=PROCESS, perspective=Perspective.FINANCIAL, value_lens=ValueLens.SHAREHOLDER_VALUE,
            unit="percent", direction="lower_is_better", period="trailing_365d",
            compute=revenue_concentration_top20, needs=("orders",),
            parameters=(
                Parameter("top_share", float, 0.2, "share of the customers (ranked by revenue) whose revenue share is measured", minimum=0.01, maximum=1),
            ),
            formula="100 * net_revenue of the top ceil(top_share * N) of N active customers ranked by net_revenue / identified net_revenue",
            source="Schmittlein, Cooper & Morrison 1993, Marketing Science 12(2):167-183",
        ),
        define(
            key="sd_rfm_champion_share", name="RFM champion share",
            description="Share of customers scoring 4 or 5 on recency, frequency and monetary value, each scored in quintiles over all customers with a purchase before the end of the period (ties share the lower score).",
            process=PROCESS, perspective=Perspective.CUSTOMER, value_lens=ValueLens.CUSTOMER_VALUE,
            unit="percent", direction="higher_is_better", by="segment",
            compute=rfm_champion_share, needs=("orders",),
            formula=(
                "score = 1 + floor(5 * (RANK() - 1) / N) ascending by last purchase day (R), purchase days (F), "
                "net revenue (M); 100 * count(R >= 4 and F >= 4 and M >= 4) / N"
            ),
            source=RFM_SOURCE,
        ),
        define(
            key="sd_rfm_at_risk_share", name="RFM at-risk share",
            description="Share of customers who bought often but not recently (RFM frequency score 4-5, recency score 1-2), same scoring as the champion share.",
            process=PROCESS, perspective=Perspective.CUSTOMER, value_lens=ValueLens.CUSTOMER_VALUE,
            unit="percent", direction="lower_is_better", by="segment",
            compute=rfm_at_risk_share, needs=("orders",),
            formula="100 * count(R <= 2 and F >= 4) / N, same scores as sd_rfm_champion_share",
            source=RFM_SOURCE,
        ),
        define(
            key="sd_new_customer_revenue_share", name="New-customer revenue share",
            description="Share of the period's net revenue from customers acquired in the period: the balance between acquisition and retention.",
            process=PROCESS, perspective=Perspective.FINANCIAL, value_lens=ValueLens.SHAREHOLDER_VALUE,
            unit="percent", direction="higher_is_better",
            value=Ratio(Measure("orders", "net_revenue", filters=[Filter("customer.acquired_at", "in period")]), REVENUE, scale=100),
            formula="100 * net_revenue of customers with acquired_at in the period / net_revenue of all orders",
            source=f"{PAYNE_FROW} (acquisition vs retention balance)",
        ),
    ]


@hookimpl
def crmmetrics_standards():
    """Default standards of the scale-free KPIs.

    The active customer base depends on the size of the business, and the revenue shares by
    segment and of new customers are bands the customer strategy sets: they get no default.
    """
    from crmmetrics import StandardDefault

    strategy = "customer strategy"
    return [
        StandardDefault("sd_target_segment_penetration", target=20, red=5, green=15, owner=strategy),
        StandardDefault(
            "sd_revenue_concentration_top20", target=60, red=80, green=60, owner=strategy,
            source="CDNOW: about 68% (Schmittlein, Cooper & Morrison 1993 data); '80/20' is folklore",
        ),
        StandardDefault("sd_rfm_champion_share", target=25, red=10, green=20, owner=strategy),
        StandardDefault("sd_rfm_at_risk_share", target=5, red=10, green=5, owner=strategy),
    ]
