"""Strategy development: the customer base, its segments and its concentration."""

from __future__ import annotations

from sqlalchemy import func, select

from crmmetrics import MetricDefinition, Perspective, Process, Result, ValueLens, hookimpl
from crmmetrics.sql import count_active_customers, in_period, percent

PAYNE_FROW = "Payne & Frow 2005, J. Marketing 69(4):167-176"


def active_customers(ctx):
    return count_active_customers(ctx)


def segment_revenue_share(ctx):
    orders, customers, segments = ctx.tables["orders"], ctx.tables["customers"], ctx.tables["segments"]
    total = ctx.scalar(select(func.sum(orders.c.net_revenue)).where(in_period(orders.c.ordered_at, ctx.period)))
    rows = ctx.connection.execute(
        select(segments.c.name, func.sum(orders.c.net_revenue))
        .select_from(orders.join(customers, orders.c.customer_id == customers.c.customer_id).join(segments))
        .where(in_period(orders.c.ordered_at, ctx.period))
        .group_by(segments.c.name)
    ).all()
    return [Result(percent(revenue, total), {"segment": name}) for name, revenue in rows]


@hookimpl
def crmmetrics_metrics():
    return [
        MetricDefinition(
            key="sd_active_customers",
            name="Active customer base",
            description="Identified customers with at least one order in the trailing 365 days.",
            process=Process.STRATEGY_DEVELOPMENT,
            perspective=Perspective.CUSTOMER,
            value_lens=ValueLens.CUSTOMER_VALUE,
            unit="customers",
            direction="higher_is_better",
            formula="count(distinct customer_id with >=1 order in the period)",
            source="Fader, Hardie & Lee 2005, Marketing Science 24(2):275-284",
            period="trailing_365d",
            compute=active_customers,
        ),
        MetricDefinition(
            key="sd_segment_revenue_share",
            name="Revenue share by segment",
            description="Share of the period's net revenue that each customer segment brings.",
            process=Process.STRATEGY_DEVELOPMENT,
            perspective=Perspective.FINANCIAL,
            value_lens=ValueLens.SHAREHOLDER_VALUE,
            unit="percent",
            direction="higher_is_better",
            dimensions=("segment",),
            formula="sum(net_revenue of orders by customers of segment s) / sum(net_revenue of all orders)",
            source=PAYNE_FROW,
            compute=segment_revenue_share,
        ),
    ]
