"""Value creation: the value the customer receives and the value the organisation receives."""

from __future__ import annotations

from sqlalchemy import case, func, select

from crmmetrics import MetricDefinition, Perspective, Process, ValueLens, hookimpl
from crmmetrics.sql import in_period, ratio


def nps(ctx):
    responses = ctx.tables["survey_responses"]
    promoters = func.sum(case((responses.c.score >= 9, 1), else_=0))
    detractors = func.sum(case((responses.c.score <= 6, 1), else_=0))
    row = ctx.connection.execute(
        select(promoters, detractors, func.count()).where(
            responses.c.instrument == "nps", in_period(responses.c.responded_at, ctx.period)
        )
    ).one()
    return ratio((row[0] or 0) - (row[1] or 0), row[2], 100.0)


def average_order_value(ctx):
    orders = ctx.tables["orders"]
    row = ctx.connection.execute(
        select(func.sum(orders.c.net_revenue), func.count()).where(in_period(orders.c.ordered_at, ctx.period))
    ).one()
    return ratio(row[0], row[1])


@hookimpl
def crmmetrics_metrics():
    return [
        MetricDefinition(
            key="vc_nps",
            name="Net Promoter Score",
            description="Promoters (9-10) minus detractors (0-6), in points, of the period's NPS answers.",
            process=Process.VALUE_CREATION,
            perspective=Perspective.CUSTOMER,
            value_lens=ValueLens.CUSTOMER_VALUE,
            unit="points",
            direction="higher_is_better",
            formula="100 * (count(score 9-10) - count(score 0-6)) / count(NPS responses)",
            source="Reichheld 2003, Harvard Business Review 81(12):46-54",
            compute=nps,
        ),
        MetricDefinition(
            key="vc_aov",
            name="Average order value",
            description="Net revenue per order in the period, anonymous orders included.",
            process=Process.VALUE_CREATION,
            perspective=Perspective.FINANCIAL,
            value_lens=ValueLens.SHAREHOLDER_VALUE,
            unit="currency",
            direction="higher_is_better",
            formula="sum(net_revenue) / count(orders)",
            source="Farris, Bendle, Pfeifer & Reibstein 2010, Marketing Metrics (2nd ed.)",
            compute=average_order_value,
        ),
    ]
