"""Commands on the store itself: its schema revision (upgrade, current, history)."""

from __future__ import annotations

import click
import sqlalchemy.exc

from .. import migrations
from ..config import load_config, redact_url
from ..engines import connection_problem
from ..errors import StoreError
from ..store import open_store_engine
from . import cli
from .core import config_option


@cli.group()
def store() -> None:
    """The store's schema: upgrade it after installing a new crmmetrics, see where it stands.

    Back up the store before an upgrade (copy the SQLite file, or pg_dump).
    """


def _store_url(config_path: str | None) -> str:
    return load_config(config_path).store_url


def _describe(found: migrations.StoreState) -> str:
    if found.kind == "empty":
        return "empty (no crmmetrics tables yet)"
    if found.kind == "unversioned":
        return f"unversioned (created by crmmetrics 0.1.0; 'store upgrade' stamps it at {migrations.BASELINE})"
    if found.kind == "current":
        return f"{found.revision} (head)"
    if found.kind == "old":
        return f"{found.revision} (older than head {found.head}: run 'crmmetrics store upgrade')"
    return f"{found.revision} (unknown to this crmmetrics: written by a newer version)"


@store.command("upgrade")
@config_option
def store_upgrade(config_path: str | None) -> None:
    """Bring the store to this crmmetrics' schema (creates a new store, stamps a 0.1.0 one)."""
    url = _store_url(config_path)
    engine = open_store_engine(url)
    try:
        before, after = migrations.upgrade(engine, redact_url(url))
    except sqlalchemy.exc.DBAPIError as exc:
        raise StoreError(f"store {redact_url(url)}: upgrade failed, nothing changed: {connection_problem(exc)}") from None
    finally:
        engine.dispose()
    if before.revision == after.revision and before.kind == "current":
        click.echo(f"store {redact_url(url)}: already at {after.revision} (head)")
    else:
        click.echo(f"store {redact_url(url)}: {before.revision or before.kind} -> {after.revision}")


@store.command("current")
@config_option
def store_current(config_path: str | None) -> None:
    """Print the store's schema revision (reads only)."""
    url = _store_url(config_path)
    engine = open_store_engine(url, read_only=True)
    try:
        with engine.connect() as connection:
            found = migrations.state(connection)
    except sqlalchemy.exc.DBAPIError as exc:
        raise StoreError(f"store {redact_url(url)}: cannot open: {connection_problem(exc)}") from None
    finally:
        engine.dispose()
    click.echo(f"store {redact_url(url)}: {_describe(found)}")


@store.command("history")
def store_history() -> None:
    """List the schema revisions this crmmetrics knows, oldest first."""
    for revision, parent, message in migrations.history():
        click.echo(f"{revision:32} <- {parent or '(none)':32} {message}")
