"""``crmmetrics kpis``: KPIs defined in the config file (``[kpis.KEY]`` tables, crmmetrics.compute.config_kpis)."""

from __future__ import annotations

from pathlib import Path

import click

from crmmetrics.core.errors import ConfigError
from crmmetrics.core.vocabulary import Direction, Perspective, Process, ValueLens
from . import cli
from .core import config_option


@cli.group()
def kpis() -> None:
    """KPIs defined in the config file as SQL: add one with comments in the file kept.

    A [kpis.KEY] table names the KPI and its place on the scorecard and holds a SQL query over
    the canonical tables returning a `value` column (and one column per dimension), with the
    period's bounds as :start and :end. See docs/operations.md, "KPIs in the config file".
    """


def _choice(enum: type) -> click.Choice:
    return click.Choice([str(member) for member in enum])


@kpis.command("add")
@click.argument("key")
@click.option("--sql", help="The query: a value column (and one per --dimension); :start and :end are the period's bounds.")
@click.option("--sql-file", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="Read the query from this file.")
@click.option("--numerator", metavar="SQL", help="A ratio KPI: the numerator's query (a value column, like --sql); with --denominator.")
@click.option("--denominator", metavar="SQL", help="A ratio KPI: the denominator's query; value = numerator / denominator.")
@click.option("--name", required=True, help="The KPI's name, as people read it.")
@click.option("--description", default="", help="What it measures and why.")
@click.option("--formula", default="", help="The formula in words or symbols (shown by 'metrics explain').")
@click.option("--process", required=True, type=_choice(Process), help="The CRM process it belongs to.")
@click.option("--perspective", required=True, type=_choice(Perspective), help="Its balanced-scorecard perspective.")
@click.option("--value-lens", "value_lens", required=True, type=_choice(ValueLens), help="Whose value it speaks for.")
@click.option("--unit", required=True, help="Its unit: percent, ratio, count, customers, currency, seconds, ...")
@click.option("--direction", required=True, type=_choice(Direction), help="Which way is better.")
@click.option("--period", default=None, help="Reporting period (default month): month, quarter, year, *_to_date, trailing_<N>d.")
@click.option("--dimension", "dimensions", multiple=True, metavar="NAME", help="A dimension column of the query (repeatable).")
@click.option("--needs", "needs", multiple=True, metavar="TABLE[.COLUMN]",
              help="A source input without which there is no value (repeatable; default: the tables the query reads).")
@click.option("--every", metavar="DURATION", help="Run every DURATION (default: from the period).")
@click.option("--cron", metavar="EXPR", help="Run on a five-field cron expression (default: from the period).")
@config_option
def kpis_add(key: str, sql: str | None, sql_file: Path | None, numerator: str | None, denominator: str | None, name: str, description: str, formula: str, process: str,
             perspective: str, value_lens: str, unit: str, direction: str, period: str | None, dimensions: tuple[str, ...],
             needs: tuple[str, ...], every: str | None, cron: str | None, config_path: str | None) -> None:
    """Add KPI KEY, defined by a SQL query, to the config file (comments in the file are kept).

    The edited file is checked as `config check` checks it, the query run against the source
    (LIMIT 0, names and types), before it replaces the old one; a bad definition leaves the file
    as it was. Example:

    crmmetrics kpis add cfg_orders --name Orders --process value_creation --perspective customer
    --value-lens customer_value --unit count --direction higher_is_better
    --sql "SELECT count(*) AS value FROM orders WHERE ordered_at >= :start AND ordered_at < :end"
    """
    from crmmetrics.compute.plugins import get_plugin_manager
    from crmmetrics.compute.registry import build_registry
    from crmmetrics.core.config import add_kpi, load_config
    from crmmetrics.serve.app import check_config

    ratio = numerator is not None or denominator is not None
    if ratio and (numerator is None or denominator is None or sql is not None or sql_file is not None):
        raise ConfigError("kpis add: a ratio KPI takes --numerator and --denominator, and no --sql")
    if not ratio and (sql is None) == (sql_file is None):
        raise ConfigError("kpis add: give exactly one of --sql or --sql-file (or --numerator and --denominator)")
    if every is not None and cron is not None:
        raise ConfigError("kpis add: give at most one of --every or --cron")
    config = load_config(config_path)
    if config.path is None:
        raise ConfigError("kpis add: no config file")
    registry = build_registry(get_plugin_manager(config.plugins_dir))
    if key in registry:
        raise ConfigError(f"{config.path}: kpis.{key}: {key!r} is already a metric of plugin {registry.plugin_of[key]}: choose another key")
    fields: dict[str, object] = {"kind": "ratio"} if ratio else {}
    fields["name"] = name
    if description:
        fields["description"] = description
    if formula:
        fields["formula"] = formula
    fields.update(process=process, perspective=perspective, value_lens=value_lens, unit=unit, direction=direction)
    if period is not None:
        fields["period"] = period
    if every or cron:
        fields["schedule"] = {"every": every} if every else {"cron": cron}
    if dimensions:
        fields["dimensions"] = list(dimensions)
    if needs:
        fields["needs"] = list(needs)
    if ratio:
        fields.update(numerator=numerator, denominator=denominator)
    else:
        fields["sql"] = sql if sql is not None else sql_file.read_text(encoding="utf-8")  # type: ignore[union-attr]
    add_kpi(config.path, key, fields, validate=check_config)
    click.echo(f"{config.path}: kpis.{key} added ('crmmetrics metrics explain {key}' shows what it runs)")
