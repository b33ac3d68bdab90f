"""``crmmetrics source check``: what the source holds and which KPIs it can feed (read-only)."""

from __future__ import annotations

import json

import click

from crmmetrics.core.config import load_config, parse_config, redact_url
from crmmetrics.data.source_check import check_source
from crmmetrics.serve.app import App
from crmmetrics.serve.logs import configure_logging
from . import cli  # noqa: F401 - the group below hangs off it
from .core import config_option, parse_as_of
from .source import source_group


@source_group.command("check")
@click.option("--source", "source_url", metavar="URL", help="Database to check (default: source.url of the config).")
@click.option("--as-of", "as_of", metavar="DATE", help="Check the periods as seen at DATE (ISO 8601; default: now, or service.as_of).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (for scripts).")
@config_option
def source_check(source_url: str | None, as_of: str | None, as_json: bool, config_path: str | None) -> None:
    """Report, read-only, what the source holds: rows, date range and fill rate per canonical
    table, then which metrics can be computed for their current period and why not.

    Run it first on your own data: a metric it cannot compute is "no data" on the scorecard.
    """
    if source_url is not None:
        config = parse_config({"source": {"url": source_url}, "store": {"url": "sqlite://"}}, None)
    else:
        config = load_config(config_path)
        configure_logging(config.model.logging.level, config.model.logging.format)
    app = App.from_config(config)
    moment = parse_as_of(as_of) if as_of is not None else app.runner.as_of()
    report = check_source(app.source, app.registry, app.config, moment)
    app.source.dispose()
    if as_json:
        click.echo(json.dumps({"source": redact_url(config.source_url), **report.to_json()}, indent=2))
        return
    click.echo(f"Source {redact_url(config.source_url)} as of {moment:%Y-%m-%d %H:%M} UTC")
    click.echo(f"{'table':27} {'rows':>10}  {'date range':25} columns filled < 100%")
    for table in report.tables:
        if not table.exists:
            click.echo(f"{table.name:27} {'missing':>10}")
            continue
        span = f"{table.first:%Y-%m-%d} .. {table.last:%Y-%m-%d}" if table.first and table.last else ""
        partly = ", ".join(
            f"{name} {rate * 100:.0f}%" for name, rate in table.fill_rates.items() if rate is not None and rate < 1 and table.needed_by.get(name)
        )
        click.echo(f"{table.name:27} {table.rows:>10,}  {span:25} {partly}")
    click.echo(f"\n{len(report.computable)} of {len(report.metrics)} metrics can be computed for their current period.")
    if report.not_computable:
        click.echo("Cannot be computed (no data on the scorecard):")
        for metric in report.not_computable:
            click.echo(f"  {metric.key:36} {metric.reason}")
