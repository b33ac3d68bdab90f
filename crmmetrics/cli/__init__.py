"""The ``crmmetrics`` command: thin click commands over the core.

Errors that a user can fix are printed as one line (``Error: ...``) with exit code 2 for bad
configuration or input and 1 for other failures; never a traceback.
"""

from __future__ import annotations

import sys

import click
import sqlalchemy.exc

from ..config import redact_text
from ..errors import CrmmetricsError


class CrmmetricsGroup(click.Group):
    """A click group that turns crmmetrics' errors into one line and an exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CrmmetricsError as exc:
            click.echo(f"Error: {redact_text(str(exc))}", err=True)
            ctx.exit(exc.exit_code)
        except sqlalchemy.exc.OperationalError as exc:
            click.echo(f"Error: database: {redact_text(str(exc.orig).strip().splitlines()[0])}", err=True)
            ctx.exit(1)


@click.group(cls=CrmmetricsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="crmmetrics")
def cli() -> None:
    """crmmetrics: standards, metrics and KPIs for the five CRM processes, served to Prometheus."""


def _import_command_modules() -> None:
    """Every module of this package attaches its commands to `cli` when imported."""
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_import_command_modules()


def _add_plugin_commands() -> None:
    from ..plugins import get_plugin_manager

    try:
        pm = get_plugin_manager()
    except CrmmetricsError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    pm.hook.crmmetrics_cli_commands(cli=cli)


def main() -> None:
    _add_plugin_commands()
    cli(prog_name="crmmetrics")
