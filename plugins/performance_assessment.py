"""Performance assessment: employee value, shareholder value and cost reduction.

Payne & Frow close the loop with performance assessment: the shareholder results (employee
value, customer value, shareholder value, cost reduction) and the monitoring of standards,
metrics and KPIs. This plugin measures the employee side (satisfaction, eNPS, engagement,
turnover), the shareholder side (revenue per employee, gross margin by segment, customer
profitability) and cost reduction (cost to serve, CRM cost per active customer). The scorecard
itself (target attainment, the balanced-scorecard index) is computed from the standards by
``crmmetrics.readers.scorecard``, not here.

Conventions
-----------
* Survey answers are read on their published scale (``scale_min``/``scale_max`` of each
  answer); an answer without the scale it needs is left out.
* Customer-level KPIs count identified customers once (a duplicate record's orders,
  interactions and costs belong to its master record) and use the master record's segment.
* Where ``cogs`` is NULL, the metric's ``margin_share`` parameter gives the gross margin.
* A breakdown reports the rows without a value of its dimension (a customer without a segment,
  an answer without a department) as ``unassigned`` (:mod:`crmmetrics.kpi`).
* A cost entry counts in a period in proportion to its overlap with the period.
* Employed at a moment t: hired at or before t (or hire date unknown) and not yet left.

Cost to serve (activity-based, Kaplan & Narayanan 2001)
-------------------------------------------------------
Serving costs are the cost entries of the ``cost_types`` parameter (service and fulfilment by
default, as in the catalogue) except those for acquisition (``purpose = 'acquisition'``: that
is CAC). Each is assigned to the customers served in the period (an order or an interaction)
by its most precise tag: an entry with a ``customer_id`` goes to that customer; one with a ``channel_id`` is shared
by the customers' share of the channel's activities (orders and interactions, anonymous ones
included in the whole, so anonymous buyers carry their part); one with only a ``segment_id`` by
the customers' share of the segment's activities; an untagged one by the share of all
activities. A customer's profit is the gross margin of their orders less their cost to serve.

Changes from the catalogue
--------------------------
* The three employee-survey KPIs are quarterly by default: employee surveys are pulses a few
  times a year, and a month would mostly have no answers.
* ``pa_employee_satisfaction``: share of top-two-box answers (``score >= scale_max - 1``); the
  mean is not a second value of the KPI.
* ``pa_enps``: only answers on the 0-10 scale count (or without a stated scale).
* ``pa_employee_satisfaction`` by ``department`` (of the answer), so that a team's
  satisfaction can be set beside the customer KPIs of the channels it serves (the
  service-profit chain, :mod:`crmmetrics.readers.value_chain`); answers without a department are
  reported as ``unassigned``.
* ``pa_employee_engagement``: an answer is "engaged" when it lies at or above
  ``engaged_threshold`` (0.75 by default: 4 on 1-5, 1 on an engaged flag 0-1) of its scale.
* ``pa_employee_turnover``: separations over the mean headcount at the period's start and
  end, annualised by 365 / days in the period; the voluntary share is the dimension
  ``leave_type`` (voluntary, involuntary; ``unassigned`` where it is not known), each an
  annualised rate that adds up to the total.
* ``pa_revenue_per_employee``: over the mean FTE at the period's start and end, per period (not
  annualised).
* ``pa_gross_margin_by_segment``: the total covers all orders (anonymous ones too); anonymous
  orders and customers without a segment make up the segment ``unassigned``.
* ``pa_cost_to_serve`` and ``pa_unprofitable_customer_share``: over the customers *served* in
  the period (an order or an interaction), not only those who bought: a customer who only
  calls the service line costs money and earns none, which is what the whale curve shows.
  A channel-tagged cost that also names a segment is shared by channel activity (the more
  precise tag). The whale-curve peak is its own KPI, ``pa_whale_curve_peak`` (one unit per
  KPI), with no value when the customers' total profit is not positive.
* ``pa_crm_cost_per_active_customer``: the value is the cost per active customer (currency);
  its change against the previous period is the scorecard's change ratio, not a second KPI.
"""

from __future__ import annotations

from datetime import datetime

from crmmetrics import Parameter, Perspective, Process, ValueLens, hookimpl
from crmmetrics.kpi import (
    MARGIN_SHARE,
    Derived,
    Filter,
    Measure,
    Ratio,
    answers,
    breakdown,
    customer_masters,
    customers,
    define,
    gross_margin,
    in_period,
    net_promoter_score,
    percent,
    prorated_cost,
    ratio,
    sa,
)

PAYNE_FROW = "Payne & Frow 2005, J. Marketing 69(4):167-176"
KAPLAN_NARAYANAN = "Kaplan & Narayanan 2001, J. Cost Management 15(5):5-15"
COOPER_KAPLAN = "Cooper & Kaplan 1991, HBR 69(3):130-135"


def cost_types_parameter(default):
    return Parameter("cost_types", str, default, "comma-separated cost_entries.cost_type values that count")


def _cost_types(ctx):
    return [name.strip() for name in ctx.params["cost_types"].split(",") if name.strip()]


# --- employee value ------------------------------------------------------------------------


EMPLOYEE_ANSWERS = "employee_survey_responses"


def _top_two_boxes(responses, ctx):
    return responses.c.score >= responses.c.scale_max - 1


def _on_a_scale(responses, ctx):
    return sa.and_(responses.c.scale_min.is_not(None), responses.c.scale_max.is_not(None), responses.c.scale_max > responses.c.scale_min)


def _engaged(responses, ctx):
    low, high = responses.c.scale_min, responses.c.scale_max
    return responses.c.score - low >= (high - low) * ctx.params["engaged_threshold"]


WITH_SCALE_MAX = Filter("scale_max", "is not null")
EMPLOYEE_SATISFACTION = Ratio(
    answers("esat", WITH_SCALE_MAX, _top_two_boxes, table=EMPLOYEE_ANSWERS), answers("esat", WITH_SCALE_MAX, table=EMPLOYEE_ANSWERS), scale=100
)
ENPS = net_promoter_score("enps", table=EMPLOYEE_ANSWERS)
EMPLOYEE_ENGAGEMENT = Ratio(
    answers("engagement", _on_a_scale, _engaged, table=EMPLOYEE_ANSWERS), answers("engagement", _on_a_scale, table=EMPLOYEE_ANSWERS), scale=100
)


def _employed_at(employees, moment: datetime):
    return sa.and_(
        sa.or_(employees.c.hired_at.is_(None), employees.c.hired_at <= moment),
        sa.or_(employees.c.left_at.is_(None), employees.c.left_at > moment),
    )


def employee_turnover(ctx):
    employees = ctx.tables["employees"]
    headcount_start = ctx.scalar(sa.select(sa.func.count()).where(_employed_at(employees, ctx.period.start)))
    headcount_end = ctx.scalar(sa.select(sa.func.count()).where(_employed_at(employees, ctx.period.end)))
    rows = ctx.connection.execute(
        sa.select(employees.c.leave_type, sa.func.count())
        .where(in_period(employees.c.left_at, ctx.period))
        .group_by(employees.c.leave_type)
    ).all()
    mean_headcount = (headcount_start + headcount_end) / 2

    def annual_rate(leavers):
        return ratio(leavers, mean_headcount, 100.0 * 365 / ctx.period.days)

    return breakdown(rows, annual_rate, "leave_type") or annual_rate(0)  # nobody left: a rate of 0


# --- shareholder value -----------------------------------------------------------------------


def revenue_per_employee(ctx):
    orders, employees = ctx.tables["orders"], ctx.tables["employees"]
    revenue = ctx.scalar(sa.select(sa.func.sum(orders.c.net_revenue)).where(in_period(orders.c.ordered_at, ctx.period)))
    fte_start = ctx.scalar(sa.select(sa.func.sum(employees.c.fte)).where(_employed_at(employees, ctx.period.start)))
    fte_end = ctx.scalar(sa.select(sa.func.sum(employees.c.fte)).where(_employed_at(employees, ctx.period.end)))
    return ratio(revenue, ((fte_start or 0) + (fte_end or 0)) / 2)


def _order_margin(orders, ctx):
    return gross_margin(orders.c.net_revenue, orders.c.cogs, ctx.params["margin_share"])


GROSS_MARGIN_SHARE = Ratio(Measure("orders", _order_margin), Measure("orders", "net_revenue"), scale=100)  # anonymous orders included


# --- customer profitability ------------------------------------------------------------------


def customer_profit(ctx):
    """A subquery of the customers served in the period: ``master_id``, ``margin``, ``cost``, ``profit``.

    See the module docstring for how serving costs are assigned.
    """
    t = ctx.tables
    orders, interactions, costs, customers = t["orders"], t["interactions"], t["cost_entries"], t["customers"]
    masters = customer_masters(t)
    activity = sa.union_all(
        sa.select(masters.c.master_id, orders.c.channel_id)
        .select_from(orders.outerjoin(masters, masters.c.customer_id == orders.c.customer_id))
        .where(in_period(orders.c.ordered_at, ctx.period)),
        sa.select(masters.c.master_id, interactions.c.channel_id)
        .select_from(interactions.outerjoin(masters, masters.c.customer_id == interactions.c.customer_id))
        .where(in_period(interactions.c.started_at, ctx.period)),
    ).cte("activity")
    record = customers.alias("master_record")
    served = (
        sa.select(activity.c.master_id, record.c.segment_id, sa.func.count().label("activities"))
        .select_from(activity.join(record, record.c.customer_id == activity.c.master_id))
        .group_by(activity.c.master_id, record.c.segment_id)
        .cte("served")
    )

    amount, overlaps = prorated_cost(costs, ctx.period)
    serving = sa.and_(
        overlaps,
        costs.c.cost_type.in_(_cost_types(ctx)),
        sa.or_(costs.c.purpose.is_(None), costs.c.purpose != "acquisition"),
    )
    untagged = sa.and_(costs.c.customer_id.is_(None), costs.c.channel_id.is_(None))

    direct = (
        sa.select(masters.c.master_id, sa.func.sum(amount).label("cost"))
        .select_from(costs.join(masters, masters.c.customer_id == costs.c.customer_id))
        .where(serving)
        .group_by(masters.c.master_id)
        .subquery("direct")
    )

    # Channel-tagged costs, shared by activity in the channel.
    channel_cost = (
        sa.select(costs.c.channel_id, sa.func.sum(amount).label("cost"))
        .where(serving, costs.c.customer_id.is_(None), costs.c.channel_id.is_not(None))
        .group_by(costs.c.channel_id)
        .subquery("channel_cost")
    )
    channel_activities = (
        sa.select(activity.c.channel_id, sa.func.count().label("activities")).group_by(activity.c.channel_id).subquery()
    )
    customer_channel = (
        sa.select(activity.c.master_id, activity.c.channel_id, sa.func.count().label("activities"))
        .where(activity.c.master_id.is_not(None))
        .group_by(activity.c.master_id, activity.c.channel_id)
        .subquery()
    )
    by_channel = (
        sa.select(
            customer_channel.c.master_id,
            sa.func.sum(channel_cost.c.cost * customer_channel.c.activities / channel_activities.c.activities).label("cost"),
        )
        .select_from(
            customer_channel.join(channel_cost, channel_cost.c.channel_id == customer_channel.c.channel_id).join(
                channel_activities, channel_activities.c.channel_id == customer_channel.c.channel_id
            )
        )
        .group_by(customer_channel.c.master_id)
        .subquery("by_channel")
    )

    # Segment-tagged costs, shared by activity within the segment.
    segment_cost = (
        sa.select(costs.c.segment_id, sa.func.sum(amount).label("cost"))
        .where(serving, untagged, costs.c.segment_id.is_not(None))
        .group_by(costs.c.segment_id)
        .subquery("segment_cost")
    )
    segment_activities = (
        sa.select(served.c.segment_id, sa.func.sum(served.c.activities).label("activities"))
        .group_by(served.c.segment_id)
        .subquery()
    )
    # Untagged costs, shared by all activity.
    general_cost = sa.select(sa.func.sum(amount)).where(serving, untagged, costs.c.segment_id.is_(None)).scalar_subquery()
    all_activities = sa.select(sa.func.count()).select_from(activity).scalar_subquery()

    margin = (
        sa.select(masters.c.master_id, sa.func.sum(gross_margin(orders.c.net_revenue, orders.c.cogs, ctx.params["margin_share"])).label("margin"))
        .select_from(orders.join(masters, masters.c.customer_id == orders.c.customer_id))
        .where(in_period(orders.c.ordered_at, ctx.period))
        .group_by(masters.c.master_id)
        .subquery("margin")
    )

    cost = (
        sa.func.coalesce(direct.c.cost, 0)
        + sa.func.coalesce(by_channel.c.cost, 0)
        + sa.func.coalesce(segment_cost.c.cost * served.c.activities / segment_activities.c.activities, 0)
        + sa.func.coalesce(general_cost * served.c.activities / all_activities, 0)
    )
    customer_margin = sa.func.coalesce(margin.c.margin, 0)
    return (
        sa.select(
            served.c.master_id,
            served.c.segment_id,
            customer_margin.label("margin"),
            cost.label("cost"),
            (customer_margin - cost).label("profit"),
        )
        .select_from(
            served.outerjoin(direct, direct.c.master_id == served.c.master_id)
            .outerjoin(by_channel, by_channel.c.master_id == served.c.master_id)
            .outerjoin(segment_cost, segment_cost.c.segment_id == served.c.segment_id)
            .outerjoin(segment_activities, segment_activities.c.segment_id == served.c.segment_id)
            .outerjoin(margin, margin.c.master_id == served.c.master_id)
        )
        .subquery("customer_profit")
    )


def _per_segment(ctx, profit, *columns):
    """Rows ``(segment name or None, *aggregates)`` of the customer-profit subquery."""
    segments = ctx.tables["segments"]
    return ctx.connection.execute(
        sa.select(segments.c.name, *columns)
        .select_from(profit.outerjoin(segments, segments.c.segment_id == profit.c.segment_id))
        .group_by(segments.c.name)
    ).all()


def cost_to_serve(ctx):
    profit = customer_profit(ctx)
    return breakdown(_per_segment(ctx, profit, sa.func.sum(profit.c.cost), sa.func.count()), ratio)


def unprofitable_customer_share(ctx):
    profit = customer_profit(ctx)
    return breakdown(_per_segment(ctx, profit, sa.func.sum(sa.case((profit.c.profit < 0, 1), else_=0)), sa.func.count()), percent)


def whale_curve_peak(ctx):
    profit = customer_profit(ctx)
    cumulative = sa.select(
        sa.func.sum(profit.c.profit).over(order_by=(profit.c.profit.desc(), profit.c.master_id), rows=(None, 0)).label("cumulative")
    ).subquery("whale_curve")
    peak = ctx.scalar(sa.select(sa.func.max(cumulative.c.cumulative)))
    total = ctx.scalar(sa.select(sa.func.sum(profit.c.profit)))
    if total is None or total <= 0:
        return None  # no profit to be a share of
    return percent(peak, total)


# --- cost reduction --------------------------------------------------------------------------


def _of_cost_types(costs, ctx):
    return costs.c.cost_type.in_(_cost_types(ctx))


CRM_COST_PER_ACTIVE_CUSTOMER = Derived(
    lambda cost, active: ratio(cost or 0, active), cost=Measure("cost_entries", "amount", filters=[_of_cost_types]), active=customers("orders")
)


PROCESS = Process.PERFORMANCE_ASSESSMENT
FINANCIAL, LEARNING = Perspective.FINANCIAL, Perspective.LEARNING_GROWTH
EMPLOYEE_VALUE, SHAREHOLDER_VALUE, COST_REDUCTION = ValueLens.EMPLOYEE_VALUE, ValueLens.SHAREHOLDER_VALUE, ValueLens.COST_REDUCTION
HIGHER, LOWER = "higher_is_better", "lower_is_better"
SERVING_COSTS = (MARGIN_SHARE, cost_types_parameter("service,fulfilment"))


@hookimpl
def crmmetrics_metrics():
    return [
        define(
            key="pa_employee_satisfaction", name="Employee satisfaction",
            description="Share of the period's employee-satisfaction answers in the top two boxes of their scale.",
            process=PROCESS, perspective=LEARNING, value_lens=EMPLOYEE_VALUE, unit="percent", direction=HIGHER, by="department", period="quarter",
            value=EMPLOYEE_SATISFACTION,
            formula="count(esat score >= scale_max - 1) / count(esat answers with a scale)",
            source=f"{PAYNE_FROW} (employee value); Heskett et al. 1994, HBR 72(2):164-174 (service-profit chain)",
        ),
        define(
            key="pa_enps", name="Employee Net Promoter Score",
            description="Promoters (9-10) minus detractors (0-6), in points, of employees asked how likely they are to recommend the company as a place to work.",
            process=PROCESS, perspective=LEARNING, value_lens=EMPLOYEE_VALUE, unit="points", direction=HIGHER, period="quarter",
            value=ENPS,
            formula="100 * (count(9-10) - count(0-6)) / count(eNPS answers on the 0-10 scale)",
            source="Reichheld 2003 (NPS method); HR vendor guidance (low confidence)",
        ),
        define(
            key="pa_employee_engagement", name="Employee engagement",
            description="Share of the period's engagement answers at or above the engaged threshold of their scale.",
            process=PROCESS, perspective=LEARNING, value_lens=EMPLOYEE_VALUE, unit="percent", direction=HIGHER, period="quarter",
            value=EMPLOYEE_ENGAGEMENT,
            parameters=(
                Parameter("engaged_threshold", float, 0.75, "position on the answer's scale (0-1) from which an employee counts as engaged", minimum=0, maximum=1),
            ),
            formula="count((score - scale_min) >= engaged_threshold * (scale_max - scale_min)) / count(engagement answers)",
            source="Gallup 2024/2025 US engagement reports (gallup.com)",
        ),
        define(
            key="pa_employee_turnover", name="Employee turnover",
            description="Leavers in the period over the mean headcount at its start and end, annualised; by leave type (voluntary, involuntary) and overall.",
            process=PROCESS, perspective=LEARNING, value_lens=EMPLOYEE_VALUE, unit="percent", direction=LOWER, by="leave_type",
            compute=employee_turnover, needs=("employees",),
            formula="separations / mean(headcount at start, headcount at end) * 365 / days in the period",
            source="BLS Job Openings and Labor Turnover Survey (bls.gov/jlt)",
        ),
        define(
            key="pa_revenue_per_employee", name="Revenue per employee",
            description="Net revenue of the period per full-time equivalent, the mean of the FTE employed at its start and end.",
            process=PROCESS, perspective=FINANCIAL, value_lens=SHAREHOLDER_VALUE, unit="currency", direction=HIGHER,
            compute=revenue_per_employee, needs=("orders", "employees"),
            formula="sum(net_revenue) / mean(FTE at period start, FTE at period end)",
            source=f"{PAYNE_FROW} (shareholder value)",
        ),
        define(
            key="pa_gross_margin_by_segment", name="Gross margin by segment",
            description="Gross margin as a share of net revenue, per customer segment and over all orders.",
            process=PROCESS, perspective=FINANCIAL, value_lens=SHAREHOLDER_VALUE, unit="percent_unbounded", direction=HIGHER, by="segment",
            value=GROSS_MARGIN_SHARE, parameters=(MARGIN_SHARE,),
            formula="(sum(net_revenue) - sum(cogs)) / sum(net_revenue); cogs NULL -> (1 - margin_share) * net_revenue",
            source=f"{PAYNE_FROW}; Farris, Bendle, Pfeifer & Reibstein 2010, Marketing Metrics (2nd ed.)",
        ),
        define(
            key="pa_cost_to_serve", name="Cost to serve",
            description="Serving costs of the period (service and fulfilment, not acquisition) per customer served, assigned activity-based; per segment and overall.",
            process=PROCESS, perspective=FINANCIAL, value_lens=COST_REDUCTION, unit="currency", direction=LOWER, by="segment",
            compute=cost_to_serve, needs=("orders", "cost_entries"), parameters=SERVING_COSTS,
            formula="sum(serving costs assigned to customers: direct + channel cost x activity share + segment cost x activity share + general cost x activity share) / customers served (order or interaction)",
            source=KAPLAN_NARAYANAN,
        ),
        define(
            key="pa_unprofitable_customer_share", name="Unprofitable customer share",
            description="Share of the customers served in the period whose gross margin did not cover their cost to serve.",
            process=PROCESS, perspective=FINANCIAL, value_lens=SHAREHOLDER_VALUE, unit="percent", direction=LOWER, by="segment",
            compute=unprofitable_customer_share, needs=("orders", "cost_entries"), parameters=SERVING_COSTS,
            formula="customers served with gross margin - cost to serve < 0 / customers served",
            source=f"{COOPER_KAPLAN}; {KAPLAN_NARAYANAN}",
        ),
        define(
            key="pa_whale_curve_peak", name="Whale-curve peak",
            description="Cumulative profit of the most profitable customers at its highest, as a share of total customer profit: how much profit the unprofitable customers destroy.",
            process=PROCESS, perspective=FINANCIAL, value_lens=SHAREHOLDER_VALUE, unit="percent_unbounded", direction=LOWER,
            compute=whale_curve_peak, needs=("orders", "cost_entries"), parameters=SERVING_COSTS,
            formula="max(cumulative profit, customers sorted by profit descending) / total profit (none when total profit <= 0)",
            source=f"{COOPER_KAPLAN} (the most profitable 20% can earn about 225% of profits)",
        ),
        define(
            key="pa_crm_cost_per_active_customer", name="CRM cost per active customer",
            description="Marketing, sales, service and IT costs of the period per active customer (an order in the period); its fall is the cost reduction.",
            process=PROCESS, perspective=FINANCIAL, value_lens=COST_REDUCTION, unit="currency", direction=LOWER,
            value=CRM_COST_PER_ACTIVE_CUSTOMER, needs=("orders", "cost_entries"), parameters=(cost_types_parameter("marketing,sales,service,it"),),
            formula="sum(prorated cost_entries of cost_types) / active customers",
            source=f"{PAYNE_FROW} (cost reduction)",
        ),
    ]


@hookimpl
def crmmetrics_standards():
    """Default standards; the catalogue's benchmark where it gives one.

    Revenue per employee, cost to serve and CRM cost per active customer are in the
    organisation's currency, and gross margin is industry-specific: they get no default (an
    admin may set the CRM cost's target to the previous period's value less 5%).
    """
    from crmmetrics import StandardDefault

    hr, finance = "human resources", "finance"
    return [
        StandardDefault("pa_employee_satisfaction", target=75, red=50, green=70, owner=hr),
        StandardDefault(
            "pa_enps", target=30, red=0, green=10, owner=hr,
            source="HR vendor guidance: +10 to +30 good, +50 or more excellent (low confidence)",
        ),
        StandardDefault(
            "pa_employee_engagement", target=50, red=20, green=40, owner=hr,
            source="Gallup 2024: 31% of US employees engaged, about 70% in the best organisations",
        ),
        StandardDefault(
            "pa_employee_turnover", target=15, red=40, green=20, owner=hr,
            source="BLS JOLTS: total separations about 3.3% a month (about 40% a year) in 2024",
        ),
        StandardDefault("pa_unprofitable_customer_share", target=20, red=40, green=20, owner=finance),
        StandardDefault(
            "pa_whale_curve_peak", target=150, red=250, green=150, owner=finance,
            source="Cooper & Kaplan 1991: the most profitable customers often earn about 225% of profits",
        ),
    ]
