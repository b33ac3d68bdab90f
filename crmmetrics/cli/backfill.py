"""Commands for history: backfill past periods, export the stored history."""

from __future__ import annotations

import signal
import sys
from datetime import datetime

import click

from crmmetrics.core.errors import ConfigError
from crmmetrics.core.vocabulary import RunStatus
from . import cli
from .core import _app, _progress, config_option


def _date(option: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    return _parse(option, text)


def _parse(option: str, text: str) -> datetime:
    from crmmetrics.core.periods import to_naive_utc

    try:
        return to_naive_utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise ConfigError(f"{option}: {text!r} is not an ISO 8601 date or date-time, e.g. 2024-01-01") from None


def _terminate_as_interrupt(_signum, _frame):  # SIGTERM stops like Ctrl-C: between two stored periods
    raise KeyboardInterrupt


@cli.command()
@config_option
@click.option("--metric", "metrics", multiple=True, metavar="KEY", help="Backfill only this metric (repeatable; default: every enabled one).")
@click.option("--from", "start", required=True, metavar="DATE", help="First day of the history (ISO 8601), e.g. 2024-01-01.")
@click.option("--to", "end", metavar="DATE", help="Last moment of the history (default: now, or service.as_of).")
@click.option("--force", is_flag=True, help="Recompute periods that are already stored.")
def backfill(config_path: str | None, metrics: tuple[str, ...], start: str, end: str | None, force: bool) -> None:
    """Compute every past reporting period of metrics from --from to --to and store them.

    Each period is computed as of its end by the ordinary runner and stored as a backfilled
    run. Periods already stored are skipped (unless --force), so an interrupted backfill is
    resumed by running the same command again. Exits 1 if any period failed.
    """
    from crmmetrics.compute.backfill import plan_backfill, run_backfill

    app = _app(config_path)
    first = _parse("--from", start)
    last = _parse("--to", end) if end is not None else app.runner.as_of()
    if first >= last:
        raise ConfigError(f"--from {start} is not before --to {end or last.isoformat()}")
    for key in metrics:
        if key not in app.registry:
            raise ConfigError(f"--metric: unknown metric {key!r} (see 'crmmetrics metrics list')")
    plan = plan_backfill(app.runner, list(metrics) or app.runner.enabled_keys(), first, last, force)
    click.echo(f"crmmetrics: backfilling {len(plan.todo)} periods ({plan.skipped} already stored)", err=True)
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    bar = _progress(len(plan.todo), "backfilling")
    runs = []
    try:
        runs = run_backfill(app.runner, plan, progress=lambda run: (runs.append(run), bar and bar[0].advance(bar[1])))
    except KeyboardInterrupt:
        if bar:
            bar[0].stop()
        click.echo(f"crmmetrics: interrupted after {len(runs)} of {len(plan.todo)} periods; run the same command to resume", err=True)
        sys.exit(130)
    finally:
        if bar:
            bar[0].stop()
    failed = [run for run in runs if run.status != RunStatus.SUCCESS]
    click.echo(f"crmmetrics: stored {len(runs) - len(failed)} of {len(runs)} periods", err=True)
    for run in failed:
        click.echo(f"  {run.metric_key}: {run.error}", err=True)
    if failed:
        sys.exit(1)


def backfill_demo(app, months: int) -> None:
    """The demo's history: the last ``months`` months of every enabled metric (already stored ones skipped)."""
    from crmmetrics.compute.backfill import plan_backfill, run_backfill
    from crmmetrics.core.periods import _calendar_start, _months_back

    now = app.runner.as_of()
    plan = plan_backfill(app.runner, app.runner.enabled_keys(), _months_back(_calendar_start(now, "month"), months), now)
    if not plan.todo:
        return
    click.echo(f"crmmetrics: backfilling {months} months of history ({len(plan.todo)} periods; --history-months 0 skips this)", err=True)
    bar = _progress(len(plan.todo), "backfilling history")
    try:
        runs = run_backfill(app.runner, plan, progress=(lambda _run: bar[0].advance(bar[1])) if bar else None)
    finally:
        if bar:
            bar[0].stop()
    failed = sum(run.status != RunStatus.SUCCESS for run in runs)
    click.echo(f"crmmetrics: stored {len(runs) - failed} of {len(runs)} past periods" + (f" ({failed} failed, see the log)" if failed else ""), err=True)


@cli.group()
def history() -> None:
    """The stored history of every metric, period by period."""


@history.command("export")
@config_option
@click.option("--format", "fmt", type=click.Choice(["openmetrics", "csv", "json"]), default="openmetrics", show_default=True)
@click.option("--from", "start", metavar="DATE", help="Only periods ending on or after DATE.")
@click.option("--to", "end", metavar="DATE", help="Only periods ending on or before DATE.")
@click.option("--metric", "metrics", multiple=True, metavar="KEY", help="Only this metric (repeatable).")
@click.option("--output", "-o", type=click.File("w"), default="-", help="Write to FILE (default: standard output).")
def history_export(config_path: str | None, fmt: str, start: str | None, end: str | None, metrics: tuple[str, ...], output) -> None:
    """Write the stored history: OpenMetrics (for `promtool tsdb create-blocks-from openmetrics`), CSV or JSON.

    OpenMetrics carries the families and labels /metrics serves, each sample stamped with the
    end of its period.
    """
    from crmmetrics.readers.history import export_csv, export_json, export_openmetrics, history_snapshots

    app = _app(config_path)
    snapshots = history_snapshots(app.store, _date("--from", start), _date("--to", end), list(metrics) or None)
    writer = {"openmetrics": export_openmetrics, "csv": export_csv, "json": export_json}[fmt]
    output.write(writer(app.store, snapshots))
