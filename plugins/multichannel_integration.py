"""Multichannel integration: the six channel categories and how well they work together.

Payne & Frow place the channels between value creation and the customer: sales force, outlets,
telephony, direct marketing, e-commerce and m-commerce, managed so that the customer meets the
same high standard in every channel and the organisation keeps one view of the customer across
them. The KPIs read ``channels.category`` (one of the six), ``orders``, ``interactions`` (cases
are the interactions sharing a ``case_id``), ``campaigns`` and the cost ledger.

KPIs: channel revenue mix, interaction mix, cost per interaction, channel contribution margin,
cross-channel customer share, multichannel spend uplift, self-service containment,
first-contact resolution, channel switching, average handle time, campaign response rate, ROMI.

Conventions
-----------
* Anonymous orders count in revenue, margins and channel mix; customer-level KPIs (cross-channel
  customers, spend uplift) count identified customers, each once: a duplicate record's orders and
  interactions belong to its master record.
* A cost entry counts in a period in proportion to the overlap of its ``[period_start,
  period_end)`` with the period (``crmmetrics.kpi.sql.prorated_cost``).
* Where ``cogs`` is NULL, the metric's ``margin_share`` parameter gives the gross margin.
* A breakdown reports the rows without a value of its dimension (a customer without a segment,
  an interaction or a case's first contact without a channel, a campaign without an objective)
  as ``unassigned`` (:mod:`crmmetrics.kpi`); the two channel mixes are shares of what has a
  known channel, so they have no ``unassigned`` part.
* "Inbound" interactions are those whose direction is not ``outbound`` (NULL counts as inbound):
  outbound campaign calls and mailings are the organisation's touches, not the customer's choice
  of channel nor a repeat contact about an issue.
* Time windows after an event (``window_days``) are compared in seconds with portable SQL, so
  that SQLite and PostgreSQL agree.

Changes from the catalogue
--------------------------
* ``mci_channel_revenue_mix`` and ``mci_interaction_channel_mix``: shares are of the revenue or
  interactions *with a known channel*; every category that has a channel appears (0 when idle).
  The catalogue's direction "target band" is not a direction: the mix is reported with
  ``higher_is_better`` (a category's growing share) and gets no default standard, so it is a
  metric, not a KPI, until an organisation sets a target for its strategic channel.
* ``mci_cost_per_interaction``: per channel (label ``channel`` with its ``channel_category``)
  from service costs tagged with the channel; the undimensioned total divides *all* service
  costs (tagged or not) by all interactions. A channel without any service cost entry reports
  no value rather than a misleading zero.
* ``mci_channel_contribution_margin``: "channel costs" are all cost entries tagged with a
  channel of the category (marketing, sales, service, fulfilment); cogs as above.
* ``mci_cross_channel_customer_share`` and ``mci_multichannel_spend_uplift`` (catalogue key
  ``mci_multichannel_spend_index``, renamed after what it measures): touches are orders and
  inbound interactions; the window is the reporting period, a quarter by default, because
  within one month few customers use two channels. The uplift is reported overall and per
  segment (the catalogue's "same segment" comparison).
* ``mci_self_service_containment``: "followed" means an inbound assisted interaction of the same
  case (or, without a case, of the same customer record) after the self-service one and within
  ``window_days``; self-service interactions with neither a case nor a customer cannot be
  followed and are left out.
* ``mci_fcr``: one KPI with a ``method`` parameter, ``operational`` (default; cases) or
  ``survey`` (``fcr`` answers at the top of their scale, normally 1 on 0-1). By the channel
  category of the case's first contact (or of the survey answer).
* ``mci_channel_switch_rate``: counts inbound contacts within ``window_days`` of the case's
  first contact, so that cases opened in different periods are comparable.
* ``mci_avg_handle_time``: assisted interactions are those with a handle time (> 0); the
  catalogue's ``channels.is_assisted`` is ``not channels.is_self_service`` in the data model.
* ``mci_campaign_response_rate``: campaigns are assigned to the period in which they start;
  pooled rate ``sum(responses) / sum(contacts_sent)``, by objective.
* ``mci_romi``: period-based: gross margin of the period's orders attributed to a campaign
  against the campaign spend falling into the period. Brand campaigns are left out: their return
  is not in attributed orders (Farris et al. 2010 warn against ROMI for brand building).
"""

from __future__ import annotations

from crmmetrics import Parameter, Perspective, Process, Result, ValueLens, hookimpl
from crmmetrics.kpi import (
    MARGIN_SHARE,
    Filter,
    Measure,
    Ratio,
    breakdown,
    customer_masters,
    define,
    epoch_seconds,
    gross_margin,
    in_period,
    percent,
    prorated_cost,
    ratio,
    sa,
    with_segment,
)

PAYNE_FROW = "Payne & Frow 2005, J. Marketing 69(4):167-176"
GARTNER_2019 = "Gartner 2019 Customer Service and Support Leader poll (via destinationCRM, 26 Nov 2019)"

WINDOW_DAYS = Parameter(
    "window_days", int, 7, "days after a contact within which a further contact counts as a repeat", minimum=1, maximum=90
)
CHANNEL = ("channel_category", "channel")


def inbound(interactions):
    """Interactions the customer started (direction NULL counts as inbound)."""
    return sa.or_(interactions.c.direction.is_(None), interactions.c.direction != "outbound")


def within_days(later, earlier, days):
    """``earlier <= later < earlier + days``, portable between SQLite and PostgreSQL."""
    return sa.and_(later >= earlier, epoch_seconds(later) - epoch_seconds(earlier) < days * 86400)


def _shares_by_category(rows):
    total = sum(amount or 0 for _, amount in rows)
    return [Result(percent(amount or 0, total), {"channel_category": category}) for category, amount in rows]


def channel_revenue_mix(ctx):
    orders, channels = ctx.tables["orders"], ctx.tables["channels"]
    rows = ctx.connection.execute(
        sa.select(channels.c.category, sa.func.sum(orders.c.net_revenue))
        .select_from(
            channels.outerjoin(
                orders,
                sa.and_(orders.c.channel_id == channels.c.channel_id, in_period(orders.c.ordered_at, ctx.period)),
            )
        )
        .group_by(channels.c.category)
    ).all()
    return _shares_by_category(rows)


def interaction_channel_mix(ctx):
    interactions, channels = ctx.tables["interactions"], ctx.tables["channels"]
    rows = ctx.connection.execute(
        sa.select(channels.c.category, sa.func.count(interactions.c.interaction_id))
        .select_from(
            channels.outerjoin(
                interactions,
                sa.and_(
                    interactions.c.channel_id == channels.c.channel_id,
                    in_period(interactions.c.started_at, ctx.period),
                ),
            )
        )
        .group_by(channels.c.category)
    ).all()
    return _shares_by_category(rows)


def cost_per_interaction(ctx):
    interactions, channels, costs = ctx.tables["interactions"], ctx.tables["channels"], ctx.tables["cost_entries"]
    amount, overlaps = prorated_cost(costs, ctx.period)
    service = sa.and_(overlaps, costs.c.cost_type == "service")
    cost = sa.select(costs.c.channel_id, sa.func.sum(amount).label("cost")).where(service).group_by(costs.c.channel_id)
    cost = cost.subquery("cost")
    contacts = (
        sa.select(interactions.c.channel_id, sa.func.count().label("contacts"))
        .where(in_period(interactions.c.started_at, ctx.period))
        .group_by(interactions.c.channel_id)
        .subquery("contacts")
    )
    rows = ctx.connection.execute(
        sa.select(channels.c.category, channels.c.name, cost.c.cost, contacts.c.contacts).select_from(
            channels.join(contacts, contacts.c.channel_id == channels.c.channel_id).outerjoin(
                cost, cost.c.channel_id == channels.c.channel_id
            )
        )
    ).all()
    total_cost = ctx.scalar(sa.select(sa.func.sum(amount)).where(service))
    total_contacts = ctx.scalar(sa.select(sa.func.count()).where(in_period(interactions.c.started_at, ctx.period)))
    results = [Result(ratio(total_cost, total_contacts))]
    for category, name, channel_cost, count in rows:
        results.append(Result(ratio(channel_cost, count), {"channel_category": category, "channel": name}))
    return results


def channel_contribution_margin(ctx):
    orders, channels, costs = ctx.tables["orders"], ctx.tables["channels"], ctx.tables["cost_entries"]
    margin = gross_margin(orders.c.net_revenue, orders.c.cogs, ctx.params["margin_share"])
    sales = dict(
        (category, (revenue, gross))
        for category, revenue, gross in ctx.connection.execute(
            sa.select(channels.c.category, sa.func.sum(orders.c.net_revenue), sa.func.sum(margin))
            .select_from(orders.join(channels))
            .where(in_period(orders.c.ordered_at, ctx.period))
            .group_by(channels.c.category)
        )
    )
    amount, overlaps = prorated_cost(costs, ctx.period)
    channel_costs = dict(
        ctx.connection.execute(
            sa.select(channels.c.category, sa.func.sum(amount))
            .select_from(costs.join(channels))
            .where(overlaps)
            .group_by(channels.c.category)
        ).all()
    )

    def contribution(revenue, gross, cost):
        return percent((gross or 0) - (cost or 0), revenue)

    results = [
        Result(contribution(revenue, gross, channel_costs.get(category)), {"channel_category": category})
        for category, (revenue, gross) in sales.items()
    ]
    total_revenue = sum(revenue or 0 for revenue, _ in sales.values())
    total_gross = sum(gross or 0 for _, gross in sales.values())
    results.append(Result(contribution(total_revenue, total_gross, sum(c or 0 for c in channel_costs.values()))))
    return results


def _customer_touches(ctx):
    """Per identified customer (master id): channel categories touched in the period, and spend."""
    orders, interactions, channels = ctx.tables["orders"], ctx.tables["interactions"], ctx.tables["channels"]
    masters = customer_masters(ctx.tables)
    touches = sa.union_all(
        sa.select(masters.c.master_id, channels.c.category)
        .select_from(orders.join(masters, masters.c.customer_id == orders.c.customer_id).join(channels))
        .where(in_period(orders.c.ordered_at, ctx.period)),
        sa.select(masters.c.master_id, channels.c.category)
        .select_from(interactions.join(masters, masters.c.customer_id == interactions.c.customer_id).join(channels))
        .where(in_period(interactions.c.started_at, ctx.period), inbound(interactions)),
    ).subquery("touches")
    per_customer = (
        sa.select(touches.c.master_id, sa.func.count(sa.func.distinct(touches.c.category)).label("categories"))
        .group_by(touches.c.master_id)
        .subquery("per_customer")
    )
    spend = (
        sa.select(masters.c.master_id, sa.func.sum(orders.c.net_revenue).label("spend"))
        .select_from(orders.join(masters, masters.c.customer_id == orders.c.customer_id))
        .where(in_period(orders.c.ordered_at, ctx.period))
        .group_by(masters.c.master_id)
        .subquery("spend")
    )
    return per_customer, spend


def _segment_rows(ctx, per_customer, *columns):
    """Rows ``(segment name, *aggregates)`` of a per-customer subquery (column ``master_id``)."""
    joined, segment = with_segment(ctx, per_customer)
    return ctx.connection.execute(sa.select(segment, *columns).select_from(joined).group_by(segment)).all()


def cross_channel_customer_share(ctx):
    per_customer, _ = _customer_touches(ctx)
    multichannel = sa.func.sum(sa.case((per_customer.c.categories >= 2, 1), else_=0))
    return breakdown(_segment_rows(ctx, per_customer, multichannel, sa.func.count()), percent)


def multichannel_spend_uplift(ctx):
    per_customer, spend = _customer_touches(ctx)
    joined = (
        sa.select(per_customer.c.master_id, per_customer.c.categories, spend.c.spend)
        .select_from(per_customer.join(spend, spend.c.master_id == per_customer.c.master_id))
        .subquery("spenders")
    )
    multi = joined.c.categories >= 2
    columns = [
        sa.func.sum(sa.case((multi, joined.c.spend), else_=0)),
        sa.func.sum(sa.case((multi, 1), else_=0)),
        sa.func.sum(sa.case((multi, 0), else_=joined.c.spend)),
        sa.func.sum(sa.case((multi, 0), else_=1)),
    ]
    def uplift(multi_spend, multi_count, single_spend, single_count):
        multi_mean, single_mean = ratio(multi_spend, multi_count), ratio(single_spend, single_count)
        if multi_mean is None or not single_mean:
            return None
        return 100.0 * (multi_mean / single_mean - 1.0)

    return breakdown(_segment_rows(ctx, joined, *columns), uplift)


def self_service_containment(ctx):
    interactions, channels = ctx.tables["interactions"], ctx.tables["channels"]
    contact, contact_channel = interactions.alias("contact"), channels.alias("contact_channel")
    assisted, assisted_channel = interactions.alias("assisted"), channels.alias("assisted_channel")
    window = ctx.params["window_days"]

    def followed_by(same_issue):
        """The self-service contacts of the period that an assisted inbound contact on the same
        issue followed within the window."""
        return (
            sa.select(contact.c.interaction_id)
            .select_from(
                contact.join(contact_channel, contact_channel.c.channel_id == contact.c.channel_id)
                .join(assisted, same_issue)
                .join(assisted_channel, assisted_channel.c.channel_id == assisted.c.channel_id)
            )
            .where(
                contact_channel.c.is_self_service.is_(True),
                in_period(contact.c.started_at, ctx.period),
                assisted_channel.c.is_self_service.is_(False),
                inbound(assisted),
                assisted.c.started_at > contact.c.started_at,
                within_days(assisted.c.started_at, contact.c.started_at, window),
            )
        )

    # Uncorrelated sets of the contacts followed, one per way of being the same issue, each on one
    # equality: a correlated EXISTS binds the outer table wrongly on ClickHouse (it compared each
    # contact with itself), and a single condition on the OR of both became a nested loop on DuckDB.
    followed = sa.union(
        followed_by(assisted.c.case_id == contact.c.case_id),
        followed_by(sa.and_(contact.c.case_id.is_(None), assisted.c.customer_id == contact.c.customer_id)),
    )
    rows = ctx.connection.execute(
        sa.select(channels.c.category, channels.c.name,
                  sa.func.sum(sa.case((interactions.c.interaction_id.in_(followed), 0), else_=1)), sa.func.count())
        .select_from(interactions.join(channels))
        .where(
            channels.c.is_self_service.is_(True),
            in_period(interactions.c.started_at, ctx.period),
            sa.or_(interactions.c.case_id.is_not(None), interactions.c.customer_id.is_not(None)),
        )
        .group_by(channels.c.category, channels.c.name)
    ).all()
    return breakdown(rows, percent, CHANNEL)


def _cases(ctx):
    """Per case opened (first inbound contact) in the period: its first contact's channel category,
    and over its inbound contacts within ``window_days``: their number, whether any was marked
    resolved, and the number of channel categories used."""
    interactions, channels = ctx.tables["interactions"], ctx.tables["channels"]
    opened = (
        sa.select(interactions.c.case_id, sa.func.min(interactions.c.started_at).label("opened_at"))
        .where(interactions.c.case_id.is_not(None), inbound(interactions))
        .group_by(interactions.c.case_id)
        .having(in_period(sa.func.min(interactions.c.started_at), ctx.period))
        .subquery("opened")
    )
    first = interactions.c.started_at == opened.c.opened_at
    return (
        sa.select(
            opened.c.case_id,
            sa.func.min(sa.case((first, channels.c.category))).label("first_category"),
            sa.func.count().label("contacts"),
            sa.func.max(sa.case((interactions.c.resolved.is_(True), 1), else_=0)).label("resolved"),
            sa.func.count(sa.func.distinct(channels.c.category)).label("categories"),
        )
        .select_from(
            opened.join(interactions, interactions.c.case_id == opened.c.case_id).outerjoin(
                channels, channels.c.channel_id == interactions.c.channel_id
            )
        )
        .where(inbound(interactions), within_days(interactions.c.started_at, opened.c.opened_at, ctx.params["window_days"]))
        .group_by(opened.c.case_id)
        .subquery("cases")
    )


def _share_by_first_category(ctx, cases, condition):
    rows = ctx.connection.execute(
        sa.select(cases.c.first_category, sa.func.sum(sa.case((condition, 1), else_=0)), sa.func.count()).group_by(
            cases.c.first_category
        )
    ).all()
    return breakdown(rows, percent, "channel_category")


def first_contact_resolution(ctx):
    if ctx.params["method"] == "survey":
        responses, channels = ctx.tables["survey_responses"], ctx.tables["channels"]
        resolved = responses.c.score >= sa.func.coalesce(responses.c.scale_max, 1)
        rows = ctx.connection.execute(
            sa.select(channels.c.category, sa.func.sum(sa.case((resolved, 1), else_=0)), sa.func.count())
            .select_from(responses.outerjoin(channels))
            .where(responses.c.instrument == "fcr", in_period(responses.c.responded_at, ctx.period))
            .group_by(channels.c.category)
        ).all()
        return breakdown(rows, percent, "channel_category")
    cases = _cases(ctx)
    return _share_by_first_category(ctx, cases, sa.and_(cases.c.contacts == 1, cases.c.resolved == 1))


def channel_switch_rate(ctx):
    cases = _cases(ctx)
    return _share_by_first_category(ctx, cases, cases.c.categories >= 2)


ASSISTED = Filter("handle_seconds", ">", 0)  # assisted interactions have a handle time
AVERAGE_HANDLE_TIME = Ratio(Measure("interactions", "handle_seconds", filters=[ASSISTED]), Measure("interactions", agg="count", filters=[ASSISTED]))
CAMPAIGNS_WITH_RESPONSES = (Filter("contacts_sent", ">", 0), Filter("responses", "is not null"))
CAMPAIGN_RESPONSE_RATE = Ratio(
    # Campaigns belong to the period in which they start.
    Measure("campaigns", "responses", filters=CAMPAIGNS_WITH_RESPONSES, time="starts_at"),
    Measure("campaigns", "contacts_sent", filters=CAMPAIGNS_WITH_RESPONSES, time="starts_at"),
    scale=100,
)


def romi(ctx):
    orders, campaigns, costs = ctx.tables["orders"], ctx.tables["campaigns"], ctx.tables["cost_entries"]
    direct_response = campaigns.c.objective != "brand"
    margin = dict(
        ctx.connection.execute(
            sa.select(campaigns.c.objective, sa.func.sum(gross_margin(orders.c.net_revenue, orders.c.cogs, ctx.params["margin_share"])))
            .select_from(orders.join(campaigns))
            .where(in_period(orders.c.ordered_at, ctx.period), direct_response)
            .group_by(campaigns.c.objective)
        ).all()
    )
    amount, overlaps = prorated_cost(costs, ctx.period)
    spend = dict(
        ctx.connection.execute(
            sa.select(campaigns.c.objective, sa.func.sum(amount))
            .select_from(costs.join(campaigns))
            .where(overlaps, direct_response)
            .group_by(campaigns.c.objective)
        ).all()
    )
    results = [
        Result(percent((margin.get(objective) or 0) - cost, cost), {"objective": objective})
        for objective, cost in spend.items()
    ]
    total_spend = sum(cost or 0 for cost in spend.values())
    results.append(Result(percent(sum(m or 0 for o, m in margin.items() if o in spend) - total_spend, total_spend)))
    return results


PROCESS = Process.MULTICHANNEL_INTEGRATION
CUSTOMER, FINANCIAL, INTERNAL = Perspective.CUSTOMER, Perspective.FINANCIAL, Perspective.INTERNAL_PROCESS
CUSTOMER_VALUE, SHAREHOLDER_VALUE, COST_REDUCTION = ValueLens.CUSTOMER_VALUE, ValueLens.SHAREHOLDER_VALUE, ValueLens.COST_REDUCTION
HIGHER, LOWER = "higher_is_better", "lower_is_better"


@hookimpl
def crmmetrics_metrics():
    return [
        define(
            key="mci_channel_revenue_mix", name="Channel mix (revenue)",
            description="Share of the period's net revenue (anonymous orders included) taken through each channel category.",
            process=PROCESS, perspective=INTERNAL, value_lens=SHAREHOLDER_VALUE, unit="percent", direction=HIGHER, by="channel_category",
            compute=channel_revenue_mix, needs=("orders",),
            formula="sum(net_revenue of orders in channels of category c) / sum(net_revenue of orders with a channel)",
            source=f"{PAYNE_FROW} (six channel categories)",
        ),
        define(
            key="mci_interaction_channel_mix", name="Channel mix (interactions)",
            description="Share of the period's interactions (inbound and outbound) that took place in each channel category.",
            process=PROCESS, perspective=INTERNAL, value_lens=COST_REDUCTION, unit="percent", direction=HIGHER, by="channel_category",
            compute=interaction_channel_mix, needs=("interactions",),
            formula="count(interactions in channels of category c) / count(interactions with a channel)",
            source=f"{PAYNE_FROW}; {GARTNER_2019}",
        ),
        define(
            key="mci_cost_per_interaction", name="Cost per interaction",
            description="Service cost of the period per interaction, per channel (service costs tagged with the channel) and overall (all service costs over all interactions).",
            process=PROCESS, perspective=INTERNAL, value_lens=COST_REDUCTION, unit="currency", direction=LOWER, by=CHANNEL,
            compute=cost_per_interaction, needs=("interactions", "cost_entries"),
            formula="sum(prorated service cost_entries of channel c) / count(interactions in channel c)",
            source=GARTNER_2019,
        ),
        define(
            key="mci_channel_contribution_margin", name="Channel contribution margin",
            description="Gross margin of the orders taken through a channel category, less the costs tagged with its channels, as a share of its net revenue.",
            process=PROCESS, perspective=FINANCIAL, value_lens=SHAREHOLDER_VALUE, unit="percent_unbounded", direction=HIGHER, by="channel_category",
            compute=channel_contribution_margin, needs=("orders", "cost_entries"), parameters=(MARGIN_SHARE,),
            formula="(net_revenue - cogs - prorated cost_entries tagged with the category's channels) / net_revenue; cogs NULL -> (1 - margin_share) * net_revenue",
            source="Kaplan & Narayanan 2001, J. Cost Management 15(5):5-15",
        ),
        define(
            key="mci_cross_channel_customer_share", name="Cross-channel customer share",
            description="Share of the customers who ordered or contacted the organisation in the period that used two or more channel categories.",
            process=PROCESS, perspective=CUSTOMER, value_lens=CUSTOMER_VALUE, unit="percent", direction=HIGHER, by="segment", period="quarter",
            compute=cross_channel_customer_share, needs=("orders",),
            formula="customers touching >= 2 channel categories (orders, inbound interactions) / customers touching >= 1",
            source="Sopadjieva, Dholakia & Benjamin 2017, HBR online 'A Study of 46,000 Shoppers Shows That Omnichannel Retailing Works'",
        ),
        define(
            key="mci_multichannel_spend_uplift", name="Multichannel spend uplift",
            description="How much more a buying customer who used two or more channel categories spent in the period than one who used a single category.",
            process=PROCESS, perspective=FINANCIAL, value_lens=SHAREHOLDER_VALUE, unit="percent_unbounded", direction=HIGHER, by="segment", period="quarter",
            compute=multichannel_spend_uplift, needs=("orders",),
            formula="mean(net_revenue per multichannel buyer) / mean(net_revenue per single-channel buyer) - 1",
            source="Sopadjieva, Dholakia & Benjamin 2017, HBR online",
        ),
        define(
            key="mci_self_service_containment", name="Self-service containment",
            description="Share of self-service interactions not followed by an inbound assisted contact about the same case (or from the same customer) within the window.",
            process=PROCESS, perspective=INTERNAL, value_lens=COST_REDUCTION, unit="percent", direction=HIGHER, by=CHANNEL,
            compute=self_service_containment, needs=("interactions",), parameters=(WINDOW_DAYS,),
            formula="self-service interactions without an assisted inbound follow-up within window_days / self-service interactions",
            source=GARTNER_2019,
        ),
        define(
            key="mci_fcr", name="First-contact resolution",
            description="Share of the cases opened in the period that were resolved at the first contact, with no further inbound contact within the window (or, by survey, share of FCR answers saying resolved).",
            process=PROCESS, perspective=CUSTOMER, value_lens=CUSTOMER_VALUE, unit="percent", direction=HIGHER, by="channel_category",
            compute=first_contact_resolution,
            needs=lambda params: ("survey_responses",) if params["method"] == "survey" else ("interactions.case_id",),
            parameters=(
                WINDOW_DAYS,
                Parameter("method", str, "operational", "operational (cases) or survey (fcr answers)", choices=("operational", "survey")),
            ),
            formula="operational: cases with exactly one inbound contact within window_days of the first, resolved / cases opened; survey: count(fcr score = scale_max) / count(fcr answers)",
            source="SQM Group FCR benchmark (2022; sqmgroup.com)",
        ),
        define(
            key="mci_channel_switch_rate", name="Channel-switching rate",
            description="Share of the cases opened in the period whose inbound contacts within the window used two or more channel categories.",
            process=PROCESS, perspective=INTERNAL, value_lens=CUSTOMER_VALUE, unit="percent", direction=LOWER, by="channel_category",
            compute=channel_switch_rate, needs=("interactions.case_id",), parameters=(WINDOW_DAYS,),
            formula="cases with inbound contacts in >= 2 channel categories within window_days / cases opened",
            source="Dixon, Freeman & Toman 2010, HBR 88(7/8):116-122; Gartner via CX Dive",
        ),
        define(
            key="mci_avg_handle_time", name="Average handle time",
            description="Mean handling time of assisted interactions (those with a handle time) in the period, per channel and overall; read it together with first-contact resolution.",
            process=PROCESS, perspective=INTERNAL, value_lens=COST_REDUCTION, unit="seconds", direction=LOWER, by=CHANNEL,
            value=AVERAGE_HANDLE_TIME,
            formula="sum(handle_seconds) / count(interactions with handle_seconds > 0)",
            source="common contact-centre practice",
        ),
        define(
            key="mci_campaign_response_rate", name="Campaign response rate",
            description="Responses per contact sent of the campaigns starting in the period, by objective and overall.",
            process=PROCESS, perspective=INTERNAL, value_lens=SHAREHOLDER_VALUE, unit="percent", direction=HIGHER, by="objective",
            value=CAMPAIGN_RESPONSE_RATE, needs=("campaigns.contacts_sent",),
            formula="sum(campaigns.responses) / sum(campaigns.contacts_sent), campaigns starting in the period",
            source="DMA Response Rate Report 2012 (as reported by Target Marketing, 14 Jun 2012)",
        ),
        define(
            key="mci_romi", name="Return on marketing investment",
            description="Gross margin of the period's orders attributed to direct-response campaigns, less their spend in the period, per unit of that spend.",
            process=PROCESS, perspective=FINANCIAL, value_lens=SHAREHOLDER_VALUE, unit="percent_unbounded", direction=HIGHER, by="objective",
            compute=romi, needs=("campaigns", "cost_entries", "orders"), parameters=(MARGIN_SHARE,),
            formula="(gross margin of orders with campaign_id - prorated campaign cost_entries) / prorated campaign cost_entries; brand campaigns excluded",
            source="Farris, Bendle, Pfeifer & Reibstein 2010, Marketing Metrics (2nd ed.)",
        ),
    ]


@hookimpl
def crmmetrics_standards():
    """Default standards; the catalogue's benchmark where it gives one.

    The channel mixes are bands the channel strategy sets, cost per interaction is in the
    organisation's currency and handle time is industry-specific: they get no default.
    """
    from crmmetrics import StandardDefault

    channels, service, marketing = "channel management", "customer service", "marketing"
    return [
        StandardDefault("mci_channel_contribution_margin", target=20, red=0, green=15, owner=channels),
        StandardDefault(
            "mci_cross_channel_customer_share", target=35, red=15, green=30, owner=channels,
            source="Sopadjieva, Dholakia & Benjamin 2017: 73% of one retailer's shoppers over 14 months (a longer window)",
        ),
        StandardDefault(
            "mci_multichannel_spend_uplift", target=None, red=0, green=10, owner=channels,
            target_rule="benchmark", benchmark=10,
            source="Sopadjieva, Dholakia & Benjamin 2017: omnichannel shoppers spent 4% more in store, 10% more online",
        ),
        StandardDefault("mci_self_service_containment", target=75, red=50, green=70, owner=service),
        StandardDefault(
            "mci_fcr", target=None, red=70, green=80, weight=2.0, owner=service, target_rule="benchmark", benchmark=80,
            source="SQM Group: call-centre FCR about 70% on average, 70-79% good, 80% or more world class",
        ),
        StandardDefault("mci_channel_switch_rate", target=10, red=25, green=10, owner=service),
        StandardDefault(
            "mci_campaign_response_rate", target=None, red=1, green=3, owner=marketing,
            target_rule="benchmark", benchmark=3.4,
            source="DMA Response Rate Report 2012: letter mail to the house file 3.40%",
        ),
        StandardDefault("mci_romi", target=50, red=0, green=50, owner=marketing),
    ]
