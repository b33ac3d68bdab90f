"""Commands for the user's own data: ``source init URL`` and ``import TABLE FILE``."""

from __future__ import annotations

import click

from crmmetrics.core.config import load_config, redact_url
from crmmetrics.core.errors import ConfigError
from crmmetrics.core.schema import TABLES
from crmmetrics.data.importer import MODES, CsvImportError, import_csv, init_source
from . import cli
from .core import config_option


@cli.group("source")
def source_group() -> None:
    """Prepare a source database for your own CRM data."""


@source_group.command("init")
@click.argument("url")
def source_init(url: str) -> None:
    """Create the canonical tables in the database at URL (a new SQLite file is created).

    Refuses, changing nothing, if a canonical table already holds rows.
    """
    result = init_source(url)
    click.echo(f"{redact_url(url)}: created {len(result.created)} canonical tables" + (f"; {len(result.existing)} existed already (empty)" if result.existing else ""))


def _mapping(assignments: tuple[str, ...]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for assignment in assignments:
        their, sep, our = assignment.partition("=")
        their, our = their.strip(), our.strip()
        if not sep or not their or not our:
            raise ConfigError(f"--map {assignment!r}: expected THEIR_COLUMN=OUR_COLUMN")
        if their in mapping:
            raise ConfigError(f"--map {assignment!r}: {their!r} is mapped twice")
        mapping[their] = our
    return mapping


@cli.command("import")
@click.argument("table", type=click.Choice(list(TABLES)), metavar="TABLE")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--source", "source_url", metavar="URL", help="Database to import into (default: source.url of the config).")
@config_option
@click.option("--map", "assignments", multiple=True, metavar="THEIR=OUR", help="Read the file's column THEIR into column OUR (repeatable).")
@click.option("--date-format", metavar="FORMAT", help="strptime format of the date-times, e.g. '%d/%m/%Y %H:%M' (default ISO 8601).")
@click.option("--timezone", default="UTC", metavar="ZONE", show_default=True, help="Zone of date-times without a UTC offset; stored as UTC.")
@click.option("--ignore-extra", is_flag=True, help="Skip columns of the file that are not columns of TABLE.")
@click.option("--reject-file", type=click.Path(dir_okay=False), help="Import the valid rows and write the bad ones here (CSV with line and error).")
@click.option("--derive-customers", is_flag=True, help="orders: create the customers the orders name, acquired at their first order.")
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="insert",
    show_default=True,
    help="Rows already in the table (same key): insert refuses the import, append skips them, upsert updates them, replace empties the table first.",
)
def import_command(
    table: str,
    file: str,
    source_url: str | None,
    config_path: str | None,
    assignments: tuple[str, ...],
    date_format: str | None,
    timezone: str,
    ignore_extra: bool,
    reject_file: str | None,
    derive_customers: bool,
    mode: str,
) -> None:
    """Import the CSV export FILE into canonical TABLE, all rows or none.

    TABLE is one of: segments, channels, campaigns, customers, orders, order_lines,
    interactions, survey_responses, employees, employee_survey_responses, cost_entries,
    data_quality_facts. Each bad row is reported as FILE:LINE: column COL: reason, and nothing
    is imported (exit 2) unless --reject-file is given. Rows are identified by their key, or by
    their content when the file has no key column, so importing a file twice is refused (exit
    2) unless --mode says otherwise. A transaction log needs only customer, date and amount:

    \b
      crmmetrics import orders tx.csv --derive-customers \\
        --map customer=customer_id --map date=ordered_at --map amount=net_revenue

    Types, defaults, derived keys and checks: see the docstring of crmmetrics.data.importer.
    """
    url = source_url or load_config(config_path).source_url
    try:
        result = import_csv(
            url,
            table,
            file,
            mapping=_mapping(assignments),
            date_format=date_format,
            timezone=timezone,
            ignore_extra=ignore_extra,
            reject_file=reject_file,
            derive_customers=derive_customers,
            mode=mode,
        )
    except CsvImportError as exc:
        for line in exc.lines():
            click.echo(line, err=True)
        raise
    summary = f"{table}: imported {result.rows_imported} of {result.rows_read} rows from {file}"
    if result.rows_replaced:
        summary += f" (replacing {result.rows_replaced} rows)"
    if result.rows_updated:
        summary += f"; updated {result.rows_updated} rows already there"
    if result.rows_skipped:
        summary += f"; skipped {result.rows_skipped} rows already there"
    if result.customers_derived:
        summary += f"; derived {result.customers_derived} customers"
    if result.reject_file is not None:
        summary += f"; rejected {result.rows_rejected} rows (listed in {result.reject_file})"
    click.echo(summary)
