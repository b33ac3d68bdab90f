"""``crmmetrics values``: every latest value of every metric, with its period and status."""

from __future__ import annotations

import json
import click

from crmmetrics.core.errors import ConfigError
from . import cli
from .core import _app, config_option


@cli.command("values")
@click.option("--metric", "metric", metavar="KEY", help="Only this metric.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (for scripts).")
@config_option
def values_command(metric: str | None, as_json: bool, config_path: str | None) -> None:
    """Print every latest value (standard or not) with its period, dimensions and status."""
    from crmmetrics.readers.display import format_value
    from crmmetrics.readers.latest import judged_values

    app = _app(config_path)
    if metric is not None and metric not in app.registry:
        raise ConfigError(f"--metric: unknown metric {metric!r} (see 'crmmetrics metrics list')")
    rows = [row for row in judged_values(app.store) if metric is None or row.metric == metric]
    if as_json:
        click.echo(json.dumps([row.to_json() for row in rows], indent=2))
        return
    if not rows:
        click.echo("No values yet: run 'crmmetrics run' first.")
        return
    for row in rows:
        dims = ", ".join(f"{k}={v}" for k, v in sorted(row.dimensions.items()))
        name = row.metric + (f"{{{dims}}}" if dims else "")
        period = row.current.describe() if row.current else ""
        status = row.status or ("no data" if row.value is None else "no standard")
        text = format_value(row.value, row.unit)
        if row.value is None and row.missing_reason:
            text += f" ({row.missing_reason})"
        click.echo(f"{name:60} {period:22} {status:11} {text}")
