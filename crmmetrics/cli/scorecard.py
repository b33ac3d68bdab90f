"""``crmmetrics scorecard`` (the balanced scorecard in the terminal), ``crmmetrics chain`` (the value
chain) and ``crmmetrics alerts``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from crmmetrics.core.errors import ConfigError
from crmmetrics.core.vocabulary import KpiStatus, PeriodLabel
from crmmetrics.readers.deployment import DEFAULT_GRAFANA_URL, DEFAULT_JOB, DEFAULT_RUNBOOK_URL
from . import cli
from .core import _app, config_option

if TYPE_CHECKING:  # the readers are imported by the commands (their --help needs none of them)
    from crmmetrics.readers.scorecard import Coverage, Kpi, Scorecard

STATUS_STYLES = {KpiStatus.GREEN: "green", KpiStatus.AMBER: "yellow", KpiStatus.RED: "red", None: "dim"}
STATUS_MARKS = {KpiStatus.GREEN: "●", KpiStatus.AMBER: "◐", KpiStatus.RED: "○", None: "·"}


def _score(value: float | None) -> str:
    return "no data" if value is None else f"{value:.0f}"


def _rollup(value: float | None, coverage: Coverage | None) -> str:
    """``71 (3 of 4 KPIs)`` or ``no data (0 of 2 KPIs)``: a score always says what it rests on."""
    if coverage is None or coverage.total == 0:
        return _score(value)
    return f"{_score(value)} ({coverage.with_data} of {coverage.total} KPIs)"


PACING_STYLES = {"on_track": "green", "at_risk": "yellow", "off_track": "red"}


def _kpi_line(kpi: Kpi, outlook=None):
    from rich.text import Text

    from crmmetrics.core.periods import Period
    from crmmetrics.readers.display import change_is_good, format_change, format_value

    style = STATUS_STYLES[kpi.status]
    line = Text()
    line.append(f"{STATUS_MARKS[kpi.status]} ", style=style)
    dims = ", ".join(f"{v}" for _k, v in sorted(kpi.dimensions.items()))
    line.append(kpi.name + (f" ({dims})" if dims else ""))
    line.append(f"  {format_value(kpi.value, kpi.unit)}", style=f"bold {style}")
    if kpi.value is None and kpi.missing_reason:
        line.append(f" ({kpi.missing_reason})", style="dim")
    if kpi.period_start is not None and kpi.period_end is not None:
        line.append(f"  [{Period(PeriodLabel.CURRENT, kpi.period_start, kpi.period_end).describe()}]", style="dim")
    if kpi.target is not None:
        line.append(f"  target {format_value(kpi.target, kpi.unit)}", style="dim")
    change = format_change(kpi.change)
    if change:
        good = change_is_good(kpi)
        line.append(f"  {change}", style="green" if good else "red" if good is False else "dim")
    result = outlook.of(kpi) if outlook is not None else None
    if result is not None and result.pacing is not None:
        period = result.forecast_period.describe() if result.forecast_period else ""
        status = result.pacing.status
        line.append(f"  {status.replace('_', ' ')} {period} (forecast {format_value(result.pacing.forecast.value, kpi.unit)})",
                    style=PACING_STYLES[status])
    if result is not None and result.anomaly is not None and result.anomaly.anomalous:
        line.append(f"  unusual ({result.anomaly.surprise} surprise)", style="bold red" if result.anomaly.surprise == "bad" else "bold green")
    return line


def render_terminal(scorecard: Scorecard, outlook=None) -> None:
    """Print the grid with rich: processes down, perspectives across, colours by status."""
    from rich.console import Console, Group
    from rich.table import Table
    from rich.text import Text

    from crmmetrics.core.vocabulary import Perspective, Process

    console = Console(width=None if sys.stdout.isatty() else 180)
    attainment = "–" if scorecard.attainment is None else f"{scorecard.attainment * 100:.0f}%"
    counts = scorecard.status_counts()
    computed = scorecard.computed_at.strftime("%Y-%m-%d %H:%M UTC") if scorecard.computed_at else "never"
    heading = Text()
    heading.append("CRM balanced scorecard   ", style="bold")
    heading.append(f"index {_score(scorecard.index)}{'/100' if scorecard.index is not None else ''}", style="bold")
    heading.append(f" ({scorecard.coverage.describe()})")
    heading.append(f"   target attainment {attainment}   ")
    heading.append(f"{counts[KpiStatus.GREEN]} green ", style="green")
    heading.append(f"{counts[KpiStatus.AMBER]} amber ", style="yellow")
    heading.append(f"{counts[KpiStatus.RED]} red ", style="red")
    heading.append(f"{counts['no data']} no data", style="dim")
    heading.append(f"   computed {computed}", style="dim")
    console.print(heading)
    if scorecard.periods:
        console.print(
            Text("periods: " + "; ".join(f"{p.describe()} ({n} KPIs)" for p, n in scorecard.periods), style="dim")
        )
    if not scorecard.kpis:
        console.print("No KPIs yet: set a standard with 'crmmetrics standards set KEY --target X --red R --green G'.")
        return
    table = Table(show_lines=True, expand=True)
    table.add_column("Process", style="bold", ratio=1)
    for perspective in Perspective:
        score = _rollup(scorecard.perspectives.get(str(perspective)), scorecard.perspective_coverage.get(str(perspective)))
        table.add_column(f"{perspective.title} {score}", ratio=2)
    for process in Process:
        cells = []
        for perspective in Perspective:
            kpis = scorecard.cell(str(process), str(perspective))
            if not kpis:
                cells.append(Text("–", style="dim"))
                continue
            cell = (str(process), str(perspective))
            score = Text(f"score {_rollup(scorecard.cells.get(cell), scorecard.cell_coverage.get(cell))}", style="dim")
            cells.append(Group(score, *(_kpi_line(kpi, outlook) for kpi in kpis)))
        score = _rollup(scorecard.processes.get(str(process)), scorecard.process_coverage.get(str(process)))
        table.add_row(f"{process.title}\nscore {score}", *cells)
    console.print(table)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (for scripts).")
@config_option
def scorecard(as_json: bool, config_path: str | None) -> None:
    """Show the balanced scorecard: 5 processes x 4 perspectives, KPI status, scores, index."""
    from crmmetrics.readers.outlook import OutlookCache
    from crmmetrics.readers.scorecard import build_scorecard

    store = _app(config_path).reader_store
    result = build_scorecard(store)
    outlook = OutlookCache().build(store, result)
    if as_json:
        data = result.to_json()
        for kpi, entry in zip(result.kpis, data["kpis"]):
            found = outlook.of(kpi)
            entry["outlook"] = found.to_json(kpi.unit) if found is not None else None
        click.echo(json.dumps(data, indent=2))
    else:
        render_terminal(result, outlook)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (for scripts).")
@config_option
def chain(as_json: bool, config_path: str | None) -> None:
    """The value chain: do employee KPIs lead customer KPIs, and customer KPIs shareholder KPIs?"""
    from crmmetrics.readers.outlook import OutlookCache, SourceUnitPairs
    from crmmetrics.readers.scorecard import build_scorecard

    app = _app(config_path)
    store = app.reader_store
    outlook = OutlookCache(SourceUnitPairs(app)).build(store, build_scorecard(store))
    if as_json:
        click.echo(json.dumps(outlook.chain_json(), indent=2))
        return
    click.echo(outlook.chain_statement())
    order = {True: 0, False: 1, None: 2}
    for link in sorted(outlook.chain, key=lambda l: (order[l.linked], l.driver, l.outcome, l.basis)):
        mark = {True: "LINK", False: "none", None: "n/a "}[link.linked]
        months = outlook.lag_months(link)
        lag = "" if months is None else f" [lag {months} month{'s' if months != 1 else ''}]"
        click.echo(f"  {mark} {link.driver} -> {link.outcome} ({link.basis.replace('_', ' ')}){lag}: {link.statement}")
    if outlook.unit_pairs is None:
        click.echo("  (across units: not analysed, the source could not be read for which departments serve which channels)")


@cli.group()
def alerts() -> None:
    """Prometheus alerting rules generated from the standards."""


@alerts.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file instead of standard output.")
@click.option("--for-red", default="15m", show_default=True, metavar="DURATION", help="How long a KPI stays red before it alerts.")
@click.option("--for-failing", default="15m", show_default=True, metavar="DURATION", help="How long a metric keeps failing before it alerts.")
@click.option("--grafana-url", default=DEFAULT_GRAFANA_URL, show_default=True, help="Grafana's base URL, for the alerts' dashboard links.")
@click.option("--runbook-url", default=DEFAULT_RUNBOOK_URL, show_default=True,
              help="Where the operations guide is published; each alert links to its section.")
@click.option("--job", default=DEFAULT_JOB, show_default=True, help="Prometheus' scrape job for crmmetrics (for the 'down' alerts).")
@config_option
def alerts_export(output: str | None, for_red: str, for_failing: str, grafana_url: str, runbook_url: str, job: str,
                  config_path: str | None) -> None:
    """Write alerting rules: a KPI turning red (severity ticket, for its owner); crmmetrics down or
    absent, a metric failing or stale (severity warning, for its operators)."""
    from crmmetrics.core.definitions import parse_duration
    from crmmetrics.readers.alerts import Links, alert_rules, dump_rules
    from crmmetrics.store.standards import standards_in_force

    for name, value in (("--for-red", for_red), ("--for-failing", for_failing)):
        try:
            parse_duration(value)
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    app = _app(config_path)
    if not grafana_url.startswith(("http://", "https://")):
        raise ConfigError(f"--grafana-url: {grafana_url!r} is not an http:// or https:// URL")
    if not job.strip() or '"' in job:
        raise ConfigError(f"--job: {job!r} is not a Prometheus job name")
    rules = alert_rules(standards_in_force(app.reader_store), app.registry, app.config, for_red=for_red, for_failing=for_failing,
                        links=Links(grafana_url, runbook_url), job=job)
    text = dump_rules(rules)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"{output}: {sum(len(g['rules']) for g in rules['groups'])} rules written", err=True)
    else:
        click.echo(text, nl=False)
