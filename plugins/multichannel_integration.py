"""Multichannel integration: the six channel categories and how well they work together."""

from __future__ import annotations

from sqlalchemy import func, select

from crmmetrics import MetricDefinition, Perspective, Process, Result, ValueLens, hookimpl
from crmmetrics.sql import in_period, percent, ratio


def channel_revenue_mix(ctx):
    orders, channels = ctx.tables["orders"], ctx.tables["channels"]
    rows = ctx.connection.execute(
        select(channels.c.category, func.sum(orders.c.net_revenue))
        .select_from(orders.join(channels))
        .where(in_period(orders.c.ordered_at, ctx.period))
        .group_by(channels.c.category)
    ).all()
    total = sum(revenue or 0 for _, revenue in rows)
    return [Result(percent(revenue, total), {"channel_category": category}) for category, revenue in rows]


def average_handle_time(ctx):
    interactions = ctx.tables["interactions"]
    row = ctx.connection.execute(
        select(func.sum(interactions.c.handle_seconds), func.count()).where(
            in_period(interactions.c.started_at, ctx.period), interactions.c.handle_seconds > 0
        )
    ).one()
    return ratio(row[0], row[1])


@hookimpl
def crmmetrics_metrics():
    return [
        MetricDefinition(
            key="mci_channel_revenue_mix",
            name="Channel mix (revenue)",
            description="Share of the period's net revenue taken through each channel category.",
            process=Process.MULTICHANNEL_INTEGRATION,
            perspective=Perspective.INTERNAL_PROCESS,
            value_lens=ValueLens.SHAREHOLDER_VALUE,
            unit="percent",
            direction="higher_is_better",
            dimensions=("channel_category",),
            formula="net_revenue by channels.category / total net_revenue",
            source="Payne & Frow 2005, J. Marketing 69(4):167-176 (six channel categories)",
            compute=channel_revenue_mix,
        ),
        MetricDefinition(
            key="mci_avg_handle_time",
            name="Average handle time",
            description="Mean handling time of assisted interactions (those with handle time) in the period.",
            process=Process.MULTICHANNEL_INTEGRATION,
            perspective=Perspective.INTERNAL_PROCESS,
            value_lens=ValueLens.COST_REDUCTION,
            unit="seconds",
            direction="lower_is_better",
            formula="sum(handle_seconds) / count(assisted interactions)",
            source="common contact-centre practice",
            compute=average_handle_time,
        ),
    ]
