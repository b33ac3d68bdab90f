"""Information management: the quality and reach of the customer data repository."""

from __future__ import annotations

from sqlalchemy import case, func, select

from crmmetrics import MetricDefinition, Perspective, Process, ValueLens, hookimpl
from crmmetrics.sql import in_period, percent


def identified_revenue_share(ctx):
    orders = ctx.tables["orders"]
    identified = func.sum(case((orders.c.customer_id.is_not(None), orders.c.net_revenue), else_=0))
    row = ctx.connection.execute(
        select(identified, func.sum(orders.c.net_revenue)).where(in_period(orders.c.ordered_at, ctx.period))
    ).one()
    return percent(row[0], row[1])


def duplicate_rate(ctx):
    customers = ctx.tables["customers"]
    duplicates = func.sum(case((customers.c.master_customer_id.is_not(None), 1), else_=0))
    row = ctx.connection.execute(
        select(duplicates, func.count()).where(customers.c.created_at < ctx.period.end)
    ).one()
    return percent(row[0], row[1])


@hookimpl
def crmmetrics_metrics():
    return [
        MetricDefinition(
            key="im_identified_revenue_share",
            name="Identified-revenue share",
            description="Share of net revenue from orders with a known customer: how far the single customer view reaches.",
            process=Process.INFORMATION_MANAGEMENT,
            perspective=Perspective.INTERNAL_PROCESS,
            value_lens=ValueLens.SHAREHOLDER_VALUE,
            unit="percent",
            direction="higher_is_better",
            formula="net_revenue of orders with customer_id / total net_revenue",
            source="Payne & Frow 2005, J. Marketing 69(4):167-176 (data repository)",
            compute=identified_revenue_share,
        ),
        MetricDefinition(
            key="im_duplicate_rate",
            name="Duplicate customer record rate",
            description="Share of customer records, created before the period's end, flagged as duplicates of a master record.",
            process=Process.INFORMATION_MANAGEMENT,
            perspective=Perspective.INTERNAL_PROCESS,
            value_lens=ValueLens.COST_REDUCTION,
            unit="percent",
            direction="lower_is_better",
            formula="records with master_customer_id set / records",
            source="DAMA-DMBOK 2nd ed. 2017 (uniqueness)",
            compute=duplicate_rate,
        ),
    ]
