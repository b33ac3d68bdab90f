"""Performance assessment: employee value, shareholder value and cost reduction."""

from __future__ import annotations

from sqlalchemy import case, func, or_, select

from crmmetrics import MetricDefinition, Perspective, Process, ValueLens, hookimpl
from crmmetrics.sql import in_period, ratio


def enps(ctx):
    responses = ctx.tables["employee_survey_responses"]
    promoters = func.sum(case((responses.c.score >= 9, 1), else_=0))
    detractors = func.sum(case((responses.c.score <= 6, 1), else_=0))
    row = ctx.connection.execute(
        select(promoters, detractors, func.count()).where(
            responses.c.instrument == "enps", in_period(responses.c.responded_at, ctx.period)
        )
    ).one()
    return ratio((row[0] or 0) - (row[1] or 0), row[2], 100.0)


def revenue_per_employee(ctx):
    orders, employees = ctx.tables["orders"], ctx.tables["employees"]
    revenue = ctx.scalar(select(func.sum(orders.c.net_revenue)).where(in_period(orders.c.ordered_at, ctx.period)))
    # FTE employed at the end of the period (hired before it, not left by then).
    fte = ctx.scalar(
        select(func.sum(employees.c.fte)).where(
            or_(employees.c.hired_at.is_(None), employees.c.hired_at < ctx.period.end),
            or_(employees.c.left_at.is_(None), employees.c.left_at >= ctx.period.end),
        )
    )
    return ratio(revenue, fte)


@hookimpl
def crmmetrics_metrics():
    return [
        MetricDefinition(
            key="pa_enps",
            name="Employee Net Promoter Score",
            description="Promoters (9-10) minus detractors (0-6), in points, of employees asked how likely they are to recommend the company as a place to work.",
            process=Process.PERFORMANCE_ASSESSMENT,
            perspective=Perspective.LEARNING_GROWTH,
            value_lens=ValueLens.EMPLOYEE_VALUE,
            unit="points",
            direction="higher_is_better",
            formula="100 * (count(9-10) - count(0-6)) / count(eNPS responses)",
            source="Reichheld 2003 (NPS method)",
            compute=enps,
        ),
        MetricDefinition(
            key="pa_revenue_per_employee",
            name="Revenue per employee",
            description="Net revenue of the period per full-time equivalent employed at its end.",
            process=Process.PERFORMANCE_ASSESSMENT,
            perspective=Perspective.FINANCIAL,
            value_lens=ValueLens.SHAREHOLDER_VALUE,
            unit="currency",
            direction="higher_is_better",
            formula="sum(net_revenue) / FTE employed at the end of the period",
            source="Payne & Frow 2005, J. Marketing 69(4):167-176 (shareholder value)",
            compute=revenue_per_employee,
        ),
    ]
