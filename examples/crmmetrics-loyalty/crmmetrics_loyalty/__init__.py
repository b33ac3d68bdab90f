"""Loyalty programme KPIs for crmmetrics, computed from the canonical tables.

- ``loyalty_purchase_frequency``: orders per active customer in the period, in total and per
  customer segment (value creation, customer perspective; unit ``ratio``: orders, not the
  built-ins' purchase occasions, which are distinct purchase days). A loyalty programme exists
  to raise it.
- ``loyalty_programme_cost_per_active_customer``: what the programme cost in the period per
  active customer (performance assessment, financial perspective, cost reduction). The
  programme's costs are the cost ledger's entries with the description named by the
  parameter ``cost_description``.

Both are declared with crmmetrics' KPI kit (``crmmetrics.kpi``): a ratio of two measures.
The plugin implements four of crmmetrics' hooks: metrics, default standards, a check of its
own configuration, and a CLI command (``crmmetrics loyalty report``).
"""

from __future__ import annotations

from crmmetrics import ConfigError, Parameter, PeriodLabel, Perspective, Process, StandardDefault, ValueLens, hookimpl
from crmmetrics.kpi import Filter, Measure, Param, Ratio, customers, define

PURCHASE_FREQUENCY = "loyalty_purchase_frequency"
COST_PER_ACTIVE_CUSTOMER = "loyalty_programme_cost_per_active_customer"
KEYS = (PURCHASE_FREQUENCY, COST_PER_ACTIVE_CUSTOMER)

# The kit counts a customer once however many records they have (duplicates belong to their
# master record, whose segment counts), reports customers without a segment as "unassigned",
# applies the period and pro-rates cost entries by their overlap with it.
IDENTIFIED_ORDERS = Measure("orders", agg="count", filters=[Filter("customer.customer_id", "is not null")])
ACTIVE_CUSTOMERS = customers("orders")
PROGRAMME_COST = Measure("cost_entries", "amount", filters=[Filter("description", "=", Param("cost_description"))])


@hookimpl
def crmmetrics_metrics():
    return [
        define(
            key=PURCHASE_FREQUENCY, name="Orders per active customer",
            description="Orders of identified customers per customer who ordered in the period, in total and per segment.",
            process=Process.VALUE_CREATION, perspective=Perspective.CUSTOMER, value_lens=ValueLens.CUSTOMER_VALUE,
            unit="ratio", direction="higher_is_better", by="segment",
            value=Ratio(IDENTIFIED_ORDERS, ACTIVE_CUSTOMERS),  # needs ("orders",): no orders is no data, not 0
            formula="count(orders of identified customers) / count(distinct customers with an order)",
            source="Farris, Bendle, Pfeifer & Reibstein 2010, Marketing Metrics (2nd ed.)",
        ),
        define(
            key=COST_PER_ACTIVE_CUSTOMER, name="Loyalty programme cost per active customer",
            description="Loyalty programme cost booked in the period divided by the customers who ordered in it.",
            process=Process.PERFORMANCE_ASSESSMENT, perspective=Perspective.FINANCIAL, value_lens=ValueLens.COST_REDUCTION,
            unit="currency", direction="lower_is_better",
            # No programme cost at all is a missing value, not zero: an unlabelled ledger is not a free programme.
            value=Ratio(PROGRAMME_COST, ACTIVE_CUSTOMERS),  # needs ("cost_entries", "orders")
            parameters=(
                Parameter("cost_description", str, "loyalty programme", "The description of the loyalty programme's entries in the cost ledger"),
            ),
            formula="sum(cost_entries.amount where description = cost_description) / count(active customers)",
            source="Reinartz & Kumar 2002, Harvard Business Review 80(7):86-94",
        ),
    ]


@hookimpl
def crmmetrics_standards():
    return [
        # Monthly figures (the metrics' default period); a quarter or year needs its own.
        StandardDefault(metric=PURCHASE_FREQUENCY, target=1.5, red=1.1, green=1.35, owner="Loyalty programme manager"),
        StandardDefault(metric=COST_PER_ACTIVE_CUSTOMER, target=5.0, red=8.0, green=6.0, owner="Loyalty programme manager"),
    ]


@hookimpl
def crmmetrics_validate_config(config, registry):
    # A blank description matches no cost entry: the KPI would stay missing without a word.
    if COST_PER_ACTIVE_CUSTOMER not in registry:
        return
    description = config.metric_settings(registry.get(COST_PER_ACTIVE_CUSTOMER)).params["cost_description"]
    if not description.strip():
        raise ConfigError(
            f"{config.path or '<config>'}: metrics.{COST_PER_ACTIVE_CUSTOMER}.params.cost_description: "
            "must name the loyalty programme's entries in the cost ledger, not be blank"
        )


@hookimpl
def crmmetrics_cli_commands(cli):
    import click

    @cli.group()
    def loyalty():
        """Loyalty programme KPIs (from the crmmetrics-loyalty plugin)."""

    @loyalty.command()
    @click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Configuration file.")
    def report(config_path):
        """Print the latest loyalty KPI values from the store, current and previous period."""
        from crmmetrics import latest_values

        values = {}
        for row in latest_values(config_path):
            if row.metric in KEYS:
                label = ",".join(f"{k}={v}" for k, v in sorted(row.dimensions.items()))
                values[(row.metric, label)] = {"current": row.value, "previous": row.previous_value}
        if not values:
            click.echo("no loyalty KPI values stored yet (run 'crmmetrics run')")
        for (key, label), periods in sorted(values.items()):
            shown = "  ".join(
                f"{period} {'-' if periods.get(period) is None else format(periods[period], '.2f')}"
                for period in PeriodLabel
            )
            click.echo(f"{key}{'{' + label + '}' if label else ''}  {shown}")
