"""Commands to run the service and configure metrics: demo, serve, run, metrics, config."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from crmmetrics.core.errors import ConfigError
from crmmetrics.core.vocabulary import PeriodLabel, RunStatus
from crmmetrics.core.periods import PERIOD_HELP, is_valid_period
from . import cli

# The service, the config model and the store are imported inside the commands that use them:
# a command's --help (and `crmmetrics --help`) must not pay for SQLAlchemy, pydantic or SQLModel
# (tests/test_cli_startup.py).
if TYPE_CHECKING:
    from crmmetrics.serve.app import App
    from crmmetrics.store.store import Run

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Configuration file (default: $CRMMETRICS_CONFIG, else ./crmmetrics.toml).",
)


def _app(config_path: str | None) -> App:
    from crmmetrics.core.config import load_config
    from crmmetrics.serve.app import App
    from crmmetrics.serve.logs import configure_logging

    config = load_config(config_path)
    configure_logging(config.model.logging.level, config.model.logging.format)
    return App.from_config(config)


def optional_config(config_path: str | None) -> Any:
    """The config of --config, $CRMMETRICS_CONFIG or ./crmmetrics.toml, or None if there is none
    (the listing commands work without one, and then need not import the config model)."""
    import os

    if not (config_path or os.environ.get("CRMMETRICS_CONFIG") or Path("crmmetrics.toml").exists()):
        return None
    from crmmetrics.core.config import load_config

    return load_config(config_path)


def _progress(total: int, label: str):
    """A rich progress bar on a terminal; nothing when output is not a terminal."""
    if not sys.stderr.isatty():
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True)
    progress.start()
    task = progress.add_task(label, total=total)
    return progress, task


def run_metrics(app: App, keys: list[str] | None = None, recompute: bool = False) -> list[Run]:
    """Run metrics once, with a progress bar on a terminal."""
    keys = keys if keys is not None else app.runner.enabled_keys()
    bar = _progress(len(keys), "computing metrics")
    try:
        return app.runner.run_all(keys, progress=(lambda _run: bar[0].advance(bar[1])) if bar else None, recompute=recompute)
    finally:
        if bar:
            bar[0].stop()


def serve_app(app: App, host: str | None = None, port: int | None = None, web_config_file: str | None = None) -> None:
    """Serve /metrics and / and run the schedule until SIGTERM or SIGINT (SIGHUP reloads)."""
    from crmmetrics.serve.service import Service

    service = Service(app, host, port, web_config_file)
    service.run(announce=lambda url: click.echo(f"crmmetrics: serving {url}/ and /metrics (Ctrl-C to stop)", err=True))


web_config_option = click.option(
    "--web.config.file",
    "web_config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Prometheus exporter-toolkit web config (TLS, basic auth); overrides web.config_file.",
)


@cli.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False), default="crmmetrics-demo", show_default=True, help="Where to write the demo database, store and config.")
# 20: the smallest demo that generate_demo makes (it refuses fewer)
@click.option("--customers", type=click.IntRange(min=20), default=5000, show_default=True, help="How many customers to generate.")
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed: the same seed gives the same data.")
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port to listen on (default 9632).")
@web_config_option
@click.option("--once", is_flag=True, help="Stop after computing every metric once.")
@click.option("--history-months", type=click.IntRange(min=0), default=24, show_default=True,
              help="Backfill this many past months of history (0: none), so the charts have trends.")
@click.option("--source", "source_url", metavar="URL",
              help="Generate the demo CRM data into this empty database (SQLite, PostgreSQL, DuckDB or chdb) instead of DIR/crm.sqlite.")
def demo(directory: str, customers: int, seed: int, host: str | None, port: int | None, web_config_file: str | None, once: bool,
         history_months: int, source_url: str | None) -> None:
    """Generate a synthetic CRM database, compute every metric once, and serve them.

    Writes crm.sqlite (the demo CRM data), store.sqlite (the results) and crmmetrics.toml into
    DIR. An existing demo database in DIR is reused. With --source URL the demo CRM data goes
    into that database (which must hold no CRM rows) and the config reads it from there.
    """
    import sqlalchemy.exc
    import tomlkit

    from crmmetrics.core.config import redact_url, resolve_file_url
    from crmmetrics.core.resources import config_dir
    from crmmetrics.data.demo import generate_demo

    if source_url is not None:
        from crmmetrics.data.engines import check_driver

        source_url = resolve_file_url(source_url, Path.cwd())  # the config lives elsewhere
        try:
            check_driver(source_url, "source")
        except ConfigError as exc:
            raise ConfigError(f"--source: {str(exc).removeprefix('source.url: ')}") from None
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    config_path = target / "crmmetrics.toml"
    crm = target / "crm.sqlite"
    if not config_path.exists() or source_url is not None:
        template = config_path if config_path.exists() else config_dir() / "crmmetrics.toml"
        document = tomlkit.parse(template.read_text(encoding="utf-8"))
        if port is not None:
            document["service"]["port"] = port
        if host is not None:
            document["service"]["host"] = host
        if source_url is not None:
            document["source"]["url"] = source_url
        config_path.write_text(tomlkit.dumps(document), encoding="utf-8")
    if source_url is not None:
        click.echo(f"crmmetrics: generating {customers:,} demo customers into {redact_url(source_url)}", err=True)
        bar = _progress(100, "generating demo data")
        try:
            generate_demo(
                source_url,
                customers=customers,
                seed=seed,
                progress=(lambda done, total: bar[0].update(bar[1], completed=done, total=total)) if bar else None,
            )
        except ValueError as exc:  # the database already holds CRM data: nothing was written
            raise ConfigError(f"--source: {exc}") from None
        except sqlalchemy.exc.DBAPIError as exc:  # cannot connect, or the write failed and was rolled back
            from crmmetrics.data.engines import connection_problem

            raise ConfigError(f"--source: {redact_url(source_url)}: {connection_problem(exc)}") from None
        finally:
            if bar:
                bar[0].stop()
    elif crm.exists():
        click.echo(f"crmmetrics: reusing the demo database {crm}", err=True)
    else:
        click.echo(f"crmmetrics: generating {customers:,} demo customers into {crm}", err=True)
        bar = _progress(100, "generating demo data")
        try:
            generate_demo(
                f"sqlite:///{crm.resolve()}",
                customers=customers,
                seed=seed,
                progress=(lambda done, total: bar[0].update(bar[1], completed=done, total=total)) if bar else None,
            )
        except BaseException:
            crm.unlink(missing_ok=True)  # never leave a half-written demo database behind
            raise
        finally:
            if bar:
                bar[0].stop()
    app = _app(str(config_path))
    runs = run_metrics(app)
    failed = [run for run in runs if run.status != RunStatus.SUCCESS]
    click.echo(f"crmmetrics: computed {len(runs) - len(failed)} of {len(runs)} metrics into {target / 'store.sqlite'}", err=True)
    for run in failed:
        click.echo(f"  {run.metric_key}: {run.error}", err=True)
    if history_months:
        from .backfill import backfill_demo

        backfill_demo(app, history_months)
    if not once:
        serve_app(app, host, port, web_config_file)


@cli.command()
@config_option
@click.option("--host", default=None, help="Override service.host.")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Override service.port.")
@web_config_option
def serve(config_path: str | None, host: str | None, port: int | None, web_config_file: str | None) -> None:
    """Run every enabled metric on its schedule and serve / and /metrics.

    Also serves /-/healthy, /-/ready and POST /-/reload; SIGHUP reloads the configuration.
    """
    serve_app(_app(config_path), host, port, web_config_file)


@cli.command()
@config_option
@click.option("--metric", "metrics", multiple=True, metavar="KEY", help="Run only this metric (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@click.option("--as-of", "as_of", metavar="DATE", help="Compute as seen at DATE (ISO 8601, e.g. 2026-11-30 or 2026-11-30T18:00+01:00) instead of now.")
@click.option("--recompute", is_flag=True, help="Compute the previous (closed) period too even if its inputs did not change since it was stored.")
def run(config_path: str | None, metrics: tuple[str, ...], as_json: bool, as_of: str | None, recompute: bool) -> None:
    """Compute metrics once now (all enabled ones, or those named) and store the results.

    Each run reports the periods it computed and, for a value that is missing, why. The
    previous period keeps its stored values when the tables it needs did not change up to its
    end (rows, times, keys); --recompute computes it regardless.
    Exits 1 if any metric failed.
    """
    app = _app(config_path)
    if as_of is not None:
        app.config.service.as_of = parse_as_of(as_of)
    for key in metrics:
        if key not in app.registry:
            raise ConfigError(f"--metric: unknown metric {key!r} (see 'crmmetrics metrics list')")
    runs = run_metrics(app, list(metrics) or None, recompute=recompute)
    details = {run.id: app.store.run_periods(run.id) for run in runs}
    if as_json:
        click.echo(json.dumps([_run_json(run, details[run.id]) for run in runs], indent=2))
    else:
        for run in runs:
            status = run.status if run.status == RunStatus.SUCCESS else f"FAILED: {run.error}"
            current = details[run.id].get(PeriodLabel.CURRENT)
            period = current.describe() if current else ""
            missing = "".join(f"  {label}: no data ({p.reason})" for label, p in details[run.id].items() if p.reason)
            click.echo(f"{run.metric_key:40} {run.duration_seconds:8.3f}s {run.rows:5d} rows  {period:17} {status}{missing}")
    if any(run.status != RunStatus.SUCCESS for run in runs):
        sys.exit(1)


def parse_as_of(text: str) -> Any:
    """``--as-of``: an ISO 8601 date or date-time; an aware one is converted to naive UTC."""
    from datetime import datetime

    from crmmetrics.core.periods import to_naive_utc

    try:
        return to_naive_utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise ConfigError(f"--as-of: {text!r} is not an ISO 8601 date or date-time, e.g. 2026-11-30T18:00") from None


def _run_json(run: Run, periods: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": run.id,
        "metric": run.metric_key,
        "plugin": run.plugin,
        "status": run.status,
        "error": run.error,
        "duration_seconds": run.duration_seconds,
        "rows": run.rows,
        "started_at": run.started_at.isoformat() + "Z",
        "period": run.period,
        "periods": {label: p.to_json() for label, p in (periods or {}).items()},
    }


def _metric_json(definition: Any, plugin: str, settings: Any | None) -> dict[str, Any]:
    data = {
        "key": definition.key,
        "name": definition.name,
        "description": definition.description,
        "plugin": plugin,
        "process": str(definition.process),
        "perspective": str(definition.perspective),
        "value_lens": str(definition.value_lens),
        "unit": definition.unit,
        "base_unit": definition.export_unit.suffix,  # the unit of its Prometheus families
        "direction": str(definition.direction),
        "dimensions": list(definition.dimensions),
        "formula": definition.formula,
        "source": definition.source,
        "parameters": [
            {"name": p.name, "type": p.type.__name__, "default": p.default, "description": p.description}
            for p in definition.parameters
        ],
    }
    if settings is not None:
        data.update(
            enabled=settings.enabled,
            schedule=settings.schedule.describe(),
            period=settings.period,
            params=settings.params,
        )
    return data


@cli.group()
def metrics() -> None:
    """List metrics and change their settings in the config file."""


@metrics.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@config_option
def metrics_list(as_json: bool, config_path: str | None) -> None:
    """List every metric with its process, perspective, unit and (with a config) its schedule."""
    from crmmetrics.compute.plugins import get_plugin_manager
    from crmmetrics.compute.registry import build_registry

    config = optional_config(config_path)
    registry = build_registry(get_plugin_manager(config.plugins_dir if config else None), config)
    rows = [
        _metric_json(d, registry.plugin_of[d.key], config.metric_settings(d) if config else None)
        for d in sorted(registry, key=lambda d: (d.process, d.key))
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        extra = f"  [{'on' if row['enabled'] else 'off'}, {row['schedule']}, {row['period']}]" if config else ""
        click.echo(f"{row['key']:36} {row['process']:26} {row['perspective']:17} {row['unit']:10} {row['name']}{extra}")


@metrics.command("docs")
def metrics_docs() -> None:
    """Print the KPI catalogue of the loaded plugins as Markdown (docs/kpis.md)."""
    from crmmetrics.compute.plugins import get_plugin_manager
    from crmmetrics.compute.registry import build_registry
    from crmmetrics.readers.catalogue import catalogue_markdown

    pm = get_plugin_manager()
    click.echo(catalogue_markdown(pm, build_registry(pm)), nl=False)


def _editable(config_path: str | None, key: str) -> tuple[Any, Any]:
    """The config file and the loaded plugins' registry for an edit of metric KEY.

    The file's [metrics.*] tables are not checked here, only the edited result is (fully, as
    'config check'): an edit must be able to undo a bad hand edit.
    """
    from crmmetrics.compute.plugins import get_plugin_manager
    from crmmetrics.compute.registry import build_registry

    from crmmetrics.core.config import load_config
    from crmmetrics.serve.logs import configure_logging

    config = load_config(config_path)
    configure_logging(config.model.logging.level, config.model.logging.format)
    registry = build_registry(get_plugin_manager(config.plugins_dir), config)
    if key not in registry:
        raise ConfigError(f"{config.path}: metrics.{key}: unknown metric {key!r} (see 'crmmetrics metrics list')")
    return config, registry


def _edit(config_path: str | None, key: str, changes: dict[str, Any]) -> None:
    from crmmetrics.core.config import edit_metric
    from crmmetrics.serve.app import check_config

    config, registry = _editable(config_path, key)
    edit_metric(config.path, key, changes, registry, validate=check_config)


@metrics.command("enable")
@click.argument("key")
@config_option
def metrics_enable(key: str, config_path: str | None) -> None:
    """Enable metric KEY in the config file."""
    _edit(config_path, key, {"enabled": True})
    click.echo(f"{key}: enabled")


@metrics.command("disable")
@click.argument("key")
@config_option
def metrics_disable(key: str, config_path: str | None) -> None:
    """Disable metric KEY in the config file."""
    _edit(config_path, key, {"enabled": False})
    click.echo(f"{key}: disabled")


@metrics.command("schedule")
@click.argument("key")
@click.option("--every", metavar="DURATION", help="Run every DURATION, e.g. 15m, 6h, 1d.")
@click.option("--cron", metavar="EXPR", help="Run on a five-field cron expression, e.g. '0 6 * * *'.")
@config_option
def metrics_schedule(key: str, every: str | None, cron: str | None, config_path: str | None) -> None:
    """Set when metric KEY runs: --every DURATION or --cron EXPR."""
    if (every is None) == (cron is None):
        raise ConfigError("metrics schedule: give exactly one of --every or --cron")
    if every is not None:
        from crmmetrics.core.definitions import parse_duration

        try:
            parse_duration(every)
        except ValueError as exc:
            raise ConfigError(f"--every: {exc}") from None
    _edit(config_path, key, {"schedule": {"every": every} if every else {"cron": cron}})
    click.echo(f"{key}: {'every ' + every if every else 'cron ' + cron}")


@metrics.command("set")
@click.argument("key")
@click.argument("assignments", nargs=-1, metavar="PARAM=VALUE...")
@click.option("--period", metavar="PERIOD", help=f"Reporting period: {PERIOD_HELP}.")
@config_option
def metrics_set(key: str, assignments: tuple[str, ...], period: str | None, config_path: str | None) -> None:
    """Set parameters or the period of metric KEY, e.g. `crmmetrics metrics set vc_clv_simple discount_rate=0.1`
    or `crmmetrics metrics set vc_aov --period quarter`. Comments in the file are kept."""
    from crmmetrics.core.config import edit_metric
    from crmmetrics.serve.app import check_config

    config, registry = _editable(config_path, key)
    if not assignments and period is None:
        raise ConfigError("metrics set: give PARAM=VALUE assignments, --period, or both")
    definition = registry.get(key)
    changes: dict[str, Any] = {}
    if period is not None:
        if not is_valid_period(period):
            raise ConfigError(f"--period: unknown period {period!r}: expected {PERIOD_HELP}")
        changes["period"] = period
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        if not sep or not name:
            raise ConfigError(f"{assignment!r}: expected PARAM=VALUE")
        try:
            changes[f"params.{name}"] = definition.parameter(name).coerce(text)
        except KeyError as exc:
            raise ConfigError(f"metrics.{key}.params.{name}: {exc.args[0]}") from None
        except ValueError as exc:
            raise ConfigError(f"metrics.{key}.params.{name}: {exc}") from None
    edit_metric(config.path, key, changes, registry, validate=check_config)
    click.echo(f"{key}: " + ", ".join(f"{k.removeprefix('params.')}={v}" for k, v in changes.items()))


@cli.group("config")
def config_group() -> None:
    """Check and show the configuration."""


@config_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def config_check(file: str) -> None:
    """Validate FILE (syntax, keys, values, metrics and their parameters) without running anything."""
    from crmmetrics.core.config import load_config
    from crmmetrics.serve.app import check_config

    config = load_config(file)
    app = check_config(config)
    enabled = [d.key for d in app.registry if config.metric_settings(d).enabled]
    click.echo(f"{file}: OK ({len(app.registry)} metrics, {len(enabled)} enabled)")


@config_group.command("show")
@config_option
def config_show(config_path: str | None) -> None:
    """Print the effective configuration, defaults included, with secrets redacted."""
    from crmmetrics.core.config import effective_config, load_config
    from crmmetrics.serve.app import App

    app = App.from_config(load_config(config_path))
    click.echo(json.dumps(effective_config(app.config, app.registry), indent=2, default=str))
