"""The ``crmmetrics`` command: thin click commands over the core.

Errors that a user can fix are printed as one line (``Error: ...``) with exit code 2 for bad
configuration or input and 1 for other failures; never a traceback.

Start-up is lazy: ``crmmetrics --help`` imports no command module, no plugin shipped with
crmmetrics, and none of SQLAlchemy, numpy or scipy. A command's module is imported when the
command is named (:data:`COMMANDS` says where each lives), and plugins installed from other
distributions are loaded only to list or run the commands they add (hook
``crmmetrics_cli_commands``); the built-in process plugins add no commands.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, NamedTuple

import click
from click.utils import make_default_short_help

from crmmetrics.core.errors import CrmmetricsError


class Builtin(NamedTuple):
    modules: tuple[str, ...]  # the modules of this package that define the command and its subcommands
    help: str  # the first paragraph of its help, shown by ``crmmetrics --help`` without importing it


# Every top-level command of this package. tests/test_cli_startup.py checks this table against
# what the modules define, so a new command or a changed docstring fails there, not silently.
COMMANDS: dict[str, Builtin] = {
    "alerts": Builtin(("scorecard",), "Prometheus alerting rules generated from the standards."),
    "backfill": Builtin(("backfill",), "Compute every past reporting period of metrics from --from to --to and store them."),
    "chain": Builtin(("scorecard",), "The value chain: do employee KPIs lead customer KPIs, and customer KPIs shareholder KPIs?"),
    "config": Builtin(("core",), "Check and show the configuration."),
    "dashboards": Builtin(("dashboards",), "Grafana dashboards generated from the loaded plugins' KPIs."),
    "demo": Builtin(("core",), "Generate a synthetic CRM database, compute every metric once, and serve them."),
    "history": Builtin(("backfill",), "The stored history of every metric, period by period."),
    "import": Builtin(("source",), "Import the CSV export FILE into canonical TABLE, all rows or none."),
    "kpis": Builtin(("kpis",), "KPIs defined in the config file, as SQL or declared measures: add one with comments in the file kept."),
    "metrics": Builtin(("core", "explain"), "List metrics and change their settings in the config file."),
    "models": Builtin(("models",), "The fitted models (BG/NBD, Gamma-Gamma) behind the CLV KPIs."),
    "plugins": Builtin(("plugins",), "List the loaded plugins, the hooks they implement and the metrics they define."),
    "run": Builtin(("core",), "Compute metrics once now (all enabled ones, or those named) and store the results."),
    "scorecard": Builtin(
        ("scorecard",), "Show the balanced scorecard: 5 processes x 4 perspectives, KPI status, scores, index."
    ),
    "serve": Builtin(("core",), "Run every enabled metric on its schedule and serve / and /metrics."),
    "source": Builtin(("source", "source_check"), "Prepare a source database for your own CRM data."),
    "standards": Builtin(("standards",), "Targets, thresholds and weights that make metrics KPIs on the scorecard."),
    "store": Builtin(
        ("store",), "The store's schema: upgrade it after installing a new crmmetrics, see where it stands."
    ),
    "values": Builtin(("values",), "Print every latest value (standard or not) with its period, dimensions and status."),
}


def _imported(reference: str) -> Any:
    """The attribute named by ``"package.module:NAME"``, its module imported now."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


class ImportedChoice(click.Choice):
    """A choice among the values of a heavy module's constant (``"module:NAME"``), imported when
    the choices are first needed (parsing, or the command's own --help)."""

    def __init__(self, choices_from: str, case_sensitive: bool = True) -> None:
        self.choices_from, self.case_sensitive = choices_from, case_sensitive

    @property  # type: ignore[override]
    def choices(self) -> tuple[str, ...]:
        return tuple(_imported(self.choices_from))


def _redact(text: str) -> str:
    """Passwords in URLs as ``***`` (the config module is imported only when there is an error)."""
    from crmmetrics.core.config import redact_text

    return redact_text(text)


class CrmmetricsGroup(click.Group):
    """A click group that turns crmmetrics' errors into one line and an exit code, and that
    imports a command only when it is named."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CrmmetricsError as exc:
            click.echo(f"Error: {_redact(str(exc))}", err=True)
            ctx.exit(exc.exit_code)
        except Exception as exc:
            sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")  # imported only if a command used it
            if sqlalchemy_exc is not None and isinstance(exc, sqlalchemy_exc.OperationalError):
                click.echo(f"Error: database: {_redact(str(exc.orig).strip().splitlines()[0])}", err=True)
                ctx.exit(1)
            raise

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        builtin = COMMANDS.get(cmd_name)
        if builtin is not None:
            for module in builtin.modules:
                importlib.import_module(f"{__name__}.{module}")
        elif cmd_name not in self.commands:
            add_plugin_commands()
            if cmd_name not in self.commands:  # a command module missing from COMMANDS still works
                import_command_modules()
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        add_plugin_commands()  # a plugin's commands are listed with the built-in ones
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            command = self.commands.get(name)
            if command is not None:
                if command.hidden:
                    continue
                rows.append((name, command.get_short_help_str(limit)))
            else:
                rows.append((name, make_default_short_help(COMMANDS[name].help, limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=CrmmetricsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="crmmetrics")
def cli() -> None:
    """crmmetrics: standards, metrics and KPIs for the five CRM processes, served to Prometheus."""


def import_command_modules() -> None:
    """Import every command module (each attaches its commands to `cli`)."""
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_plugin_commands_added = False


def add_plugin_commands() -> None:
    """Let the plugins of other distributions add their commands (once per process)."""
    global _plugin_commands_added
    if _plugin_commands_added:
        return
    _plugin_commands_added = True
    from crmmetrics.compute.plugins import get_plugin_manager

    try:
        pm = get_plugin_manager(builtin=False)
    except CrmmetricsError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    pm.hook.crmmetrics_cli_commands(cli=cli)


def main() -> None:
    cli(prog_name="crmmetrics")
