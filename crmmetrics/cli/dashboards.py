"""Commands for the Grafana dashboards: build (to files for provisioning) and push (HTTP API)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from crmmetrics.core.errors import ConfigError
from crmmetrics.readers.deployment import DEFAULT_PROMETHEUS_URL, FOLDER
from . import cli
from .core import config_option, optional_config

if TYPE_CHECKING:  # the generator and the plugins are imported by the commands, not by their --help
    from crmmetrics.compute.registry import Registry

prometheus_url_option = click.option(
    "--prometheus-url",
    default=DEFAULT_PROMETHEUS_URL,
    show_default=True,
    help="URL at which Grafana reaches the Prometheus that scrapes crmmetrics (the datasource).",
)


currency_option = click.option(
    "--currency",
    default=None,
    help="ISO 4217 code of the reporting currency to show amounts in (default: the config's service.currency, else neutral).",
)


def _currency(option: str | None, config_path: str | None) -> str | None:
    if option is not None:
        if len(option) != 3 or not option.isalpha() or not option.isupper():
            raise ConfigError(f"--currency: {option!r} is not an ISO 4217 code of three capital letters, e.g. EUR")
        return option
    config = optional_config(config_path)
    return config.service.currency if config is not None else None


def _metrics_and_kpis(config_path: str | None) -> tuple[Registry, set[str]]:
    """The loaded plugins' metrics, and the keys of those with a standard (the KPIs).

    With a configuration: its plugins directory too, and the standards in force in its store
    (admin changes included); without one: the plugins' default standards.
    """
    from crmmetrics.compute.plugins import get_plugin_manager
    from crmmetrics.compute.registry import build_registry
    from crmmetrics.serve.app import App
    from crmmetrics.compute.standard_defaults import collect_defaults

    config = optional_config(config_path)
    if config is not None:
        app = App.from_config(config)
        from .standards import in_force_without_writing

        return app.registry, {standard.spec.metric for standard in in_force_without_writing(app).values()}
    pm = get_plugin_manager()
    registry = build_registry(pm)
    return registry, {metric for metric, _ in collect_defaults(pm, registry)}


@cli.group()
def dashboards() -> None:
    """Grafana dashboards generated from the loaded plugins' KPIs."""


@dashboards.command("build")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("dashboards"),
    show_default=True,
    help="Directory to write the dashboards and provisioning/ into.",
)
@prometheus_url_option
@currency_option
@config_option
def build(out_dir: Path, prometheus_url: str, currency: str | None, config_path: str | None) -> None:
    """Regenerate the dashboard JSON and Grafana provisioning files.

    A Grafana started with GF_PATHS_PROVISIONING=DIR/provisioning loads them all.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out: {out_dir} is a file, not a directory")
    from crmmetrics.readers.dashboards import write_dashboards

    registry, kpis = _metrics_and_kpis(config_path)
    try:
        result = write_dashboards(out_dir, registry, kpis, prometheus_url, _currency(currency, config_path))
    except OSError as exc:
        raise ConfigError(f"--out: cannot write {exc.filename or out_dir}: {exc.strerror}") from None
    click.echo(
        f"dashboards: {len(result.written)} files for {len(registry)} metrics ({len(kpis)} KPIs) in {out_dir} "
        f"({len(result.changed)} changed)"
    )
    for relative in result.changed:
        click.echo(f"  wrote {out_dir / relative}")


@dashboards.command("push")
@click.option("--url", required=True, help="Grafana's base URL, e.g. http://grafana:3000 (user:password@ for basic auth).")
@click.option(
    "--token-env",
    default="GRAFANA_TOKEN",
    show_default=True,
    metavar="VAR",
    help="Environment variable holding a Grafana service account token (sent as a Bearer token).",
)
@click.option("--folder", default=FOLDER, show_default=True, help="Grafana folder to put the dashboards in.")
@prometheus_url_option
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True, help="Seconds to wait for each request.")
@currency_option
@config_option
@click.pass_context
def push(ctx: click.Context, url: str, token_env: str, folder: str, prometheus_url: str, timeout: float,
         currency: str | None, config_path: str | None) -> None:
    """Upsert a folder, the Prometheus datasource and every dashboard through Grafana's HTTP API.

    Safe to repeat: what is already there unchanged is not written again. Exits 1 if Grafana is
    unreachable or rejects something, 2 if it refuses the credentials.
    """
    try:
        from crmmetrics.readers.grafana import push as push_to_grafana
    except ImportError as exc:
        raise ConfigError(f"dashboards push needs the grafana extra ({exc.name} is not installed): pip install 'crmmetrics[grafana]'") from None

    token = os.environ.get(token_env) or None
    explicit = ctx.get_parameter_source("token_env") != click.core.ParameterSource.DEFAULT
    if token is None and explicit:
        raise ConfigError(f"--token-env: environment variable {token_env} is not set")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--url: {url!r} is not an http:// or https:// URL")
    if not folder.strip():
        raise ConfigError("--folder: the folder name is empty")
    from crmmetrics.readers.dashboards import build_dashboards, datasource

    registry, kpis = _metrics_and_kpis(config_path)
    report = push_to_grafana(
        url, build_dashboards(registry, kpis, _currency(currency, config_path)), datasource(prometheus_url), folder=folder, token=token, timeout=timeout
    )
    click.echo(f"folder {report.folder[0]}: {report.folder[1]}")
    click.echo(f"datasource {report.datasource[0]}: {report.datasource[1]}")
    for uid, title, outcome in report.dashboards:
        click.echo(f"dashboard {uid} ({title}): {outcome}")
