"""A plugin for the scorecard tests: metrics whose values are set by their parameters.

Each metric returns its ``current`` or ``previous`` parameter (None: explicitly missing), so a
test chooses the values and runs them through the real runner, store, scorecard, exporter and
page. ``sc_nps`` also ships a default standard.
"""

from crmmetrics import MetricDefinition, Parameter, Result, StandardDefault, hookimpl


def from_params(ctx):
    return ctx.params[ctx.period.label]


def by_channel(ctx):
    # "e_commerce=80,telephony=65" -> one Result per channel category
    text = ctx.params[ctx.period.label]
    return [Result(float(value), {"channel_category": name}) for name, value in (part.split("=") for part in text.split(","))]


def metric(key, name, process, perspective, unit, direction, current, previous, **extra):
    kind = str if isinstance(current, str) else float
    return MetricDefinition(
        key=key,
        name=name,
        description=f"{name} (set by parameters, for tests)",
        process=process,
        perspective=perspective,
        value_lens="customer_value",
        unit=unit,
        direction=direction,
        compute=by_channel if kind is str else from_params,
        parameters=(
            Parameter("current", kind, current, "value of the current period"),
            Parameter("previous", kind, previous, "value of the previous period"),
        ),
        **extra,
    )


@hookimpl
def crmmetrics_metrics():
    return [
        metric("sc_nps", "Net Promoter Score", "strategy_development", "financial", "points", "higher_is_better", 30.0, 25.0),
        metric("sc_new_customers", "New customers", "strategy_development", "customer", "count", "higher_is_better", 8.0, None),
        metric("sc_complaints", "Complaint rate", "value_creation", "customer", "percent", "lower_is_better", 16.0, 20.0),
        # Needs a table the (empty) test source has no rows in: missing with that reason.
        metric("sc_missing", "Share of wallet", "value_creation", "customer", "percent", "higher_is_better", 12.0, 10.0, needs=("orders",)),
        metric(
            "sc_fcr_by_channel", "First-contact resolution", "multichannel_integration", "internal_process", "percent",
            "higher_is_better", "e_commerce=80,telephony=65,outlets=70", "e_commerce=70,telephony=60,outlets=75",
            dimensions=("channel_category",),
        ),
        metric("sc_engagement", "Employee engagement", "performance_assessment", "learning_growth", "percent", "higher_is_better", 55.0, 50.0),
    ]


@hookimpl
def crmmetrics_standards():
    return [StandardDefault("sc_nps", target=40, red=10, green=30, owner="Marketing")]
