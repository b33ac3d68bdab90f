"""``crmmetrics plugins``: list the loaded plugins, and write a new plugin package to start from."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from crmmetrics.core.config import CONFIG_ENV, DEFAULT_CONFIG_NAME, load_config
from . import cli
from .core import config_option


@cli.group("plugins", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@config_option
@click.pass_context
def plugins_group(ctx: click.Context, as_json: bool, config_path: str | None) -> None:
    """List the loaded plugins, the hooks they implement and the metrics they define.

    With a config file (--config, $CRMMETRICS_CONFIG or ./crmmetrics.toml), plugin files from
    its service.plugins_dir are listed too.
    """
    if ctx.invoked_subcommand is not None:
        return
    from crmmetrics.compute.plugins import get_plugin_manager, plugin_info
    from crmmetrics.compute.registry import build_registry

    config = None
    if config_path or os.environ.get(CONFIG_ENV) or Path(DEFAULT_CONFIG_NAME).exists():
        config = load_config(config_path)
    pm = get_plugin_manager(config.plugins_dir if config else None)
    registry = build_registry(pm, config)
    info = plugin_info(pm)
    if config is not None and config.model.kpis:  # the config file's KPIs, listed like a plugin's
        from crmmetrics.compute.config_kpis import PLUGIN

        info.append({"name": PLUGIN, "module": "[kpis.*]", "file": str(config.path), "package": None, "version": None, "hooks": []})
    for entry in info:
        entry["metrics"] = sorted(key for key, plugin in registry.plugin_of.items() if plugin == entry["name"])
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for entry in info:
        version = f" {entry['version']}" if entry["version"] else ""
        hooks = f"; hooks: {', '.join(entry['hooks'])}" if entry["hooks"] else f" in {entry['file']}"
        click.echo(f"{entry['name']}{version} ({entry['module']}): {len(entry['metrics'])} metrics{hooks}")


@plugins_group.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Where to create the package's directory crmmetrics-NAME.",
)
def plugins_new(name: str, directory: str) -> None:
    """Write a new plugin package NAME: one metric, one default standard, a test and a README.

    NAME is lower-case letters, digits and hyphens, e.g. `loyalty`; the package is
    crmmetrics-NAME, ready for `pip install -e` and `pytest`.
    """
    from .scaffold import write_plugin

    plugin = write_plugin(name, Path(directory))
    click.echo(f"Created {plugin.root}:")
    for path in plugin.files:
        click.echo(f"  {path.relative_to(plugin.root)}")
    click.echo(
        "Next:\n"
        f"  cd {plugin.root}\n"
        "  pip install -e .\n"
        "  pytest\n"
        f"  crmmetrics metrics list    # shows {plugin.metric_key}"
    )
