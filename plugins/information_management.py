"""Information management: the quality and reach of the customer data repository.

Payne & Frow's information management process is the organisation's corporate memory of its
customers: the data repository, the IT systems, the analysis tools and the front- and
back-office applications. Its KPIs say whether that memory can be trusted (complete, unique,
valid, fresh), how far it reaches (how much revenue it can put a name to) and whether the people
serving customers use it (CRM adoption).

Conventions
-----------
* The customer table holds only the current state of each record, so the customer-record KPIs
  describe the records that existed at the end of the period (``created_at`` before it, or
  unknown) with the values they have now.
* Customer counts use master records only; the duplicate rate is the exception that counts the
  duplicates themselves.
* ``data_quality_facts`` are checks run in the source systems (weekly, say); a KPI from them
  uses the checks made in the period, per ``source_system`` and overall.
* A breakdown reports the rows without a value of its dimension (an order without a channel) as
  ``unassigned`` (:mod:`crmmetrics.kpi`).

Changes from the catalogue
--------------------------
* ``im_data_completeness``: the required fields are the ``required_fields`` parameter (the
  catalogue's five by default); text fields that are empty or blanks count as missing. Computed
  from the customer table, over master records.
* ``im_duplicate_rate``: a record pointing at itself is not a duplicate. Candidates found by
  match rules (normalised e-mail, phone) are left to the source's data-quality checks.
* ``im_data_freshness`` splits into two KPIs with one unit each: ``im_data_freshness`` (% of
  master records updated within ``max_age_days``, 365 by default, of the period's end; a record
  never updated counts from its creation; the source keeps only the latest update, so a record
  updated after the period's end counts as fresh) and ``im_source_data_age`` (hours: the worst
  ``max_age_hours`` of the period's timeliness checks, per source system; overall the worst).
* ``im_validity_rate``: pooled over the period's validity checks,
  ``sum(records_checked - records_failed) / sum(records_checked)``, per source system.
* ``im_identified_revenue_share``: also by channel category (where anonymous revenue comes from).
* ``im_crm_adoption_rate``: customer-facing employees employed at any time in the period (hired
  before its end, not left before its start).
* ``im_clv_forecast_accuracy`` splits into two KPIs with one unit each, both from a holdout test
  of the BG/NBD model (Fader, Hardie & Lee 2005) in which the reporting period (a quarter by
  default) is the holdout and everything before it the calibration: BG/NBD is fitted on the
  customers who bought before the period (``crmmetrics.kpi.customer_value.customer_summary``), and
  each one's conditional expected purchase occasions in the period are compared with the
  occasions (distinct purchase days) they really had. ``im_clv_forecast_correlation`` is the
  Pearson correlation over those customers (ratio; on the CDNOW sample with 39 + 39 weeks it is
  the published 0.626); ``im_clv_forecast_error`` is the absolute error of the summed forecast,
  ``|sum(expected) - sum(actual)| / sum(actual)`` in percent (on CDNOW 1,653 expected against
  1,882 actual: 12.1%; the catalogue's 4.1% is the paper's unconditional cohort forecast of
  calibration and holdout together, which needs each customer's birth in a closed cohort).
  Customers acquired in the period are not part of the test. With fewer than 10 customers who
  came back before the period there is no value (the model is not identified).
"""

from __future__ import annotations

from datetime import timedelta

from crmmetrics import ConfigError, MetricError, Parameter, Perspective, Process, Schedule, ValueLens, hookimpl
from crmmetrics.kpi import Filter, Measure, Ratio, define, in_period, master_customers, percent, sa

# numpy, the CLV models (scipy) and StandardDefault are imported by the functions that use them:
# listing the metrics needs none of them.

PAYNE_FROW = "Payne & Frow 2005, J. Marketing 69(4):167-176"
DAMA = "DAMA-DMBOK 2nd ed. 2017 (data quality dimensions); ISO/IEC 25012:2008"
FADER_HARDIE_LEE = "Fader, Hardie & Lee 2005, Marketing Science 24(2):275-284 (holdout validation)"
REQUIRED_FIELDS = "email,phone,postcode,segment_id,acquisition_channel_id"


def _records_at_end(customers, period):
    """Customer records that existed at the end of the period (or whose creation is unknown)."""
    return sa.or_(customers.c.created_at.is_(None), customers.c.created_at < period.end)


def _existed_at_end(customers, ctx):
    return _records_at_end(customers, ctx.period)


def required_columns(customers, text):
    """The customer columns named in a comma-separated list; ValueError naming an unknown one."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError("names no field")
    unknown = [name for name in names if name not in customers.c]
    if unknown:
        raise ValueError(
            f"not a column of customers: {', '.join(map(repr, unknown))} "
            f"(columns: {', '.join(customers.c.keys())})"
        )
    return [customers.c[name] for name in names]


def data_completeness(ctx):
    customers = ctx.tables["customers"]
    columns = required_columns(customers, ctx.params["required_fields"])

    def filled(column):
        if isinstance(column.type, sa.String):
            return sa.case((sa.func.trim(column) != "", 1), else_=0)  # NULL compares unknown: 0
        return sa.case((column.is_not(None), 1), else_=0)

    row = ctx.connection.execute(
        sa.select(sum((sa.func.coalesce(sa.func.sum(filled(c)), 0) for c in columns), sa.literal(0)), sa.func.count()).where(
            master_customers(customers), _records_at_end(customers, ctx.period)
        )
    ).one()
    return percent(row[0], row[1] * len(columns))


def _duplicate(customers, ctx):
    return sa.and_(customers.c.master_customer_id.is_not(None), customers.c.master_customer_id != customers.c.customer_id)


def _fresh(customers, ctx):
    cutoff = ctx.period.end - timedelta(days=ctx.params["max_age_days"])
    return sa.func.coalesce(customers.c.updated_at, customers.c.created_at) >= cutoff


# The customer table holds current state: its KPIs read the records that existed at the period end.
RECORDS = Measure("customers", agg="count", filters=[_existed_at_end], time=None, masters_only=False)
DUPLICATE_RATE = Ratio(Measure("customers", agg="count", filters=[_existed_at_end, _duplicate], time=None, masters_only=False), RECORDS, scale=100)
MASTER_RECORDS = Measure("customers", agg="count", filters=[_existed_at_end], time=None)
DATA_FRESHNESS = Ratio(Measure("customers", agg="count", filters=[_existed_at_end, _fresh], time=None), MASTER_RECORDS, scale=100)
SOURCE_DATA_AGE = Measure(
    "data_quality_facts", "max_age_hours", agg="max", filters=[Filter("dimension", "=", "timeliness"), Filter("max_age_hours", "is not null")]
)
VALIDITY_CHECKS = (Filter("dimension", "=", "validity"), Filter("records_checked", ">", 0))


def _passed(facts, ctx):
    return facts.c.records_checked - sa.func.coalesce(facts.c.records_failed, 0)


VALIDITY_RATE = Ratio(
    Measure("data_quality_facts", _passed, filters=VALIDITY_CHECKS), Measure("data_quality_facts", "records_checked", filters=VALIDITY_CHECKS), scale=100
)
REVENUE = Measure("orders", "net_revenue")
IDENTIFIED_REVENUE_SHARE = Ratio(Measure("orders", "net_revenue", filters=[Filter("customer_id", "is not null")]), REVENUE, scale=100)


def _employed_in_period(employees, ctx):
    return sa.and_(
        employees.c.is_customer_facing.is_(True),
        sa.or_(employees.c.hired_at.is_(None), employees.c.hired_at < ctx.period.end),
        sa.or_(employees.c.left_at.is_(None), employees.c.left_at >= ctx.period.start),
    )


def _logged_an_interaction(employees, ctx):
    interactions = ctx.tables["interactions"]
    # An uncorrelated IN, not a correlated EXISTS: ClickHouse cannot run a correlated subquery
    # inside an aggregate's argument (where the kit's filters go), and the other engines read the
    # period's employees once either way.
    return employees.c.employee_id.in_(
        sa.select(interactions.c.employee_id)
        .where(interactions.c.employee_id.is_not(None), in_period(interactions.c.started_at, ctx.period))
    )


CUSTOMER_FACING = Measure("employees", agg="count", filters=[_employed_in_period])
CRM_ADOPTION_RATE = Ratio(Measure("employees", agg="count", filters=[_employed_in_period, _logged_an_interaction]), CUSTOMER_FACING, scale=100)


def holdout_forecast(ctx):
    """``(expected, actual)`` repeat occasions in the period of each customer who bought before it,
    the expectation from BG/NBD fitted on the purchases before the period; None when too few
    customers came back before the period to fit the model (typically the previous period of a
    young history, which must not cost the current period its value).

    Both forecast KPIs use it: the fit and the forecast are made once per run and period, and
    each KPI keeps the fit with its own run."""
    holdout = ctx.shared(("clv_holdout", ctx.period.start, ctx.period.end), lambda: _holdout(ctx))
    if holdout is None:
        return None
    ids, model, expected, actual = holdout
    ctx.record_model_fit(
        "bgnbd", {"r": model.r, "alpha": model.alpha, "a": model.a, "b": model.b}, log_likelihood=model.log_likelihood,
        customers=int(ids.size), converged=model.convergence.converged, message=model.convergence.message,
        calibration_end=ctx.period.start,
    )
    if not model.convergence.converged:
        raise MetricError(
            f"BG/NBD fit on the purchases before {ctx.period.start:%Y-%m-%d} did not converge after "
            f"{model.convergence.iterations} iterations: {model.convergence.message}"
        )
    return expected, actual


def _holdout(ctx):
    """``(ids, model, expected, actual)`` of :func:`holdout_forecast`, or None."""
    import numpy as np
    from crmmetrics.kpi.clv import conditional_expected_purchases, fit_bgnbd
    from crmmetrics.kpi.customer_value import MIN_REPEAT_CUSTOMERS, UNIT_DAYS, customer_summary, last_day, lookup, period_activity

    ids, x, t_x, T, _ = customer_summary(ctx, ctx.period.start)
    if np.count_nonzero(x > 0) < MIN_REPEAT_CUSTOMERS:
        return None
    try:
        model = fit_bgnbd(x, t_x, T)
    except (RuntimeError, ValueError) as exc:
        raise MetricError(f"BG/NBD fit on the purchases before {ctx.period.start:%Y-%m-%d} failed: {exc}") from None
    weeks = (last_day(ctx.period.end) - last_day(ctx.period.start)) / UNIT_DAYS
    with np.errstate(all="ignore"):  # the forecast of a fit that did not converge is never read
        expected = conditional_expected_purchases(model, weeks, x, t_x, T)
    # the period's buyers and their purchase days, as retention and churn read them (shared)
    activity = period_activity(ctx, ctx.period)
    actual = lookup(activity.ids, activity.occasions, ids, missing=0.0)[0]  # 0: no purchase in the period
    return ids, model, expected, actual


def clv_forecast_correlation(ctx):
    import numpy as np

    forecast = holdout_forecast(ctx)
    if forecast is None:
        return None
    expected, actual = forecast
    if np.std(actual) == 0 or np.std(expected) == 0:
        return None  # a correlation needs variation on both sides
    return float(np.corrcoef(expected, actual)[0, 1])


def clv_forecast_error(ctx):
    forecast = holdout_forecast(ctx)
    if forecast is None:
        return None
    expected, actual = forecast
    if actual.sum() == 0:
        return None
    return 100.0 * abs(float(expected.sum()) - float(actual.sum())) / float(actual.sum())


@hookimpl
def crmmetrics_validate_config(config, registry):
    # A misspelt required field would otherwise only fail the metric's runs.
    if "im_data_completeness" not in registry:
        return
    from crmmetrics.kpi import TABLES  # the SQLAlchemy tables: built on first use, not for listing

    text = config.metric_settings(registry.get("im_data_completeness")).params["required_fields"]
    try:
        required_columns(TABLES["customers"], text)
    except ValueError as exc:
        raise ConfigError(f"{config.path or '<config>'}: metrics.im_data_completeness.params.required_fields: {exc}") from None


PROCESS = Process.INFORMATION_MANAGEMENT
INTERNAL, LEARNING = Perspective.INTERNAL_PROCESS, Perspective.LEARNING_GROWTH
COST_REDUCTION, SHAREHOLDER_VALUE = ValueLens.COST_REDUCTION, ValueLens.SHAREHOLDER_VALUE
HIGHER, LOWER = "higher_is_better", "lower_is_better"


@hookimpl
def crmmetrics_metrics():
    return [
        define(
            key="im_data_completeness", name="Customer data completeness",
            description="Share of the required fields that are filled in, over the master customer records that existed at the end of the period.",
            process=PROCESS, perspective=INTERNAL, value_lens=COST_REDUCTION, unit="percent", direction=HIGHER,
            compute=data_completeness, needs=("customers",),
            parameters=(Parameter("required_fields", str, REQUIRED_FIELDS, "comma-separated customers columns that every record should have"),),
            formula="non-empty required fields / (master records x required fields); required_fields = email, phone, postcode, segment_id, acquisition_channel_id",
            source=f"{DAMA}; Wang & Strong 1996, J. MIS 12(4):5-33",
        ),
        define(
            key="im_duplicate_rate", name="Duplicate customer record rate",
            description="Share of the customer records that existed at the end of the period flagged as duplicates of another (master) record.",
            process=PROCESS, perspective=INTERNAL, value_lens=COST_REDUCTION, unit="percent", direction=LOWER,
            value=DUPLICATE_RATE,
            formula="records with master_customer_id set to another record / records",
            source=f"{DAMA} (uniqueness); Gartner via Information Management Journal 2007",
        ),
        define(
            key="im_data_freshness", name="Customer data freshness",
            description="Share of the master customer records updated (or created) within max_age_days of the end of the period.",
            process=PROCESS, perspective=INTERNAL, value_lens=COST_REDUCTION, unit="percent", direction=HIGHER,
            value=DATA_FRESHNESS,
            parameters=(Parameter("max_age_days", int, 365, "a record updated longer ago than this is stale", minimum=1),),
            formula="master records with coalesce(updated_at, created_at) >= period end - max_age_days / master records",
            source=f"{DAMA} (timeliness)",
        ),
        define(
            key="im_source_data_age", name="Source data age",
            description="Hours since the newest loaded record, the worst of the period's timeliness checks, per source system and overall.",
            process=PROCESS, perspective=INTERNAL, value_lens=COST_REDUCTION, unit="hours", direction=LOWER, by="source_system",
            value=SOURCE_DATA_AGE, needs=("data_quality_facts",),
            formula="max(data_quality_facts.max_age_hours where dimension = 'timeliness', checked in the period)",
            source=f"{DAMA} (timeliness)",
        ),
        define(
            key="im_validity_rate", name="Data validity rate",
            description="Share of the values checked in the period that passed their format and domain rules (e-mail syntax, phone, postcode, no future dates), per source system and overall.",
            process=PROCESS, perspective=INTERNAL, value_lens=COST_REDUCTION, unit="percent", direction=HIGHER, by="source_system",
            value=VALIDITY_RATE, needs=("data_quality_facts",),
            formula="sum(records_checked - records_failed) / sum(records_checked), data_quality_facts where dimension = 'validity'",
            source=DAMA,
        ),
        define(
            key="im_identified_revenue_share", name="Identified-revenue share",
            description="Share of net revenue from orders with a known customer: how far the single customer view reaches, overall and per channel category.",
            process=PROCESS, perspective=INTERNAL, value_lens=SHAREHOLDER_VALUE, unit="percent", direction=HIGHER, by="channel_category",
            value=IDENTIFIED_REVENUE_SHARE,
            formula="net_revenue of orders with customer_id / total net_revenue",
            source=f"{PAYNE_FROW} (data repository)",
        ),
        define(
            key="im_crm_adoption_rate", name="CRM adoption rate",
            description="Share of the customer-facing employees employed in the period who logged at least one interaction in it.",
            process=PROCESS, perspective=LEARNING, value_lens=ValueLens.EMPLOYEE_VALUE, unit="percent", direction=HIGHER,
            value=CRM_ADOPTION_RATE, needs=("interactions", "employees"),
            formula="customer-facing employees with >= 1 interaction (employee_id) in the period / customer-facing employees employed in the period",
            source=f"{PAYNE_FROW} (IT systems, front-office applications)",
        ),
        define(
            key="im_clv_forecast_correlation", name="CLV model holdout correlation",
            description="How well the BG/NBD model fitted on the purchases before the period predicts each customer's purchase occasions in it: the correlation of expected and actual.",
            process=PROCESS, perspective=LEARNING, value_lens=SHAREHOLDER_VALUE, unit="ratio", direction=HIGHER, period="quarter",
            compute=clv_forecast_correlation, needs=("orders",),
            schedule=Schedule(every="1d"),  # a model fit per period; the inputs change slowly
            formula="corr(E[Y(period) | x, t_x, T before the period], actual purchase days in the period), customers who bought before it",
            source=FADER_HARDIE_LEE,
        ),
        define(
            key="im_clv_forecast_error", name="CLV model holdout error",
            description="Absolute error of the BG/NBD model's forecast of the purchase occasions in the period, summed over the customers who bought before it, relative to the actual.",
            process=PROCESS, perspective=LEARNING, value_lens=SHAREHOLDER_VALUE, unit="percent_unbounded", direction=LOWER, period="quarter",
            compute=clv_forecast_error, needs=("orders",), schedule=Schedule(every="1d"),
            formula="|sum(E[Y(period) | x, t_x, T before the period]) - sum(actual purchase days in the period)| / sum(actual)",
            source=FADER_HARDIE_LEE,
        ),
    ]


@hookimpl
def crmmetrics_standards():
    """Default standards. The catalogue gives no universal benchmark for data quality: these are
    common data-governance aims (one day's data loads, a few percent of defects at most)."""
    from crmmetrics import StandardDefault

    data, sales, analytics = "data management", "sales and service management", "customer analytics"
    return [
        StandardDefault("im_data_completeness", target=95, red=80, green=95, owner=data),
        StandardDefault("im_duplicate_rate", target=1, red=5, green=1, owner=data),
        StandardDefault(
            "im_data_freshness", target=85, red=60, green=80, owner=data,
            source="vendor-cited contact data decay of about 22.5% a year (low confidence)",
        ),
        StandardDefault("im_source_data_age", target=24, red=48, green=24, owner=data),
        StandardDefault("im_validity_rate", target=99, red=95, green=99, owner=data),
        StandardDefault("im_identified_revenue_share", target=90, red=70, green=90, weight=2.0, owner=data),
        StandardDefault("im_crm_adoption_rate", target=95, red=70, green=90, owner=sales),
        StandardDefault(
            "im_clv_forecast_correlation", target=0.6, red=0.3, green=0.5, owner=analytics,
            source="Fader, Hardie & Lee 2005: 0.626 on CDNOW, 39 + 39 weeks",
        ),
        StandardDefault("im_clv_forecast_error", target=10, red=25, green=10, owner=analytics),
    ]
