"""Commands on the store itself: its schema revision (upgrade, current, history) and pruning."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from crmmetrics.core.errors import ConfigError, StoreError
from . import cli
from .core import config_option

# The store, its migrations (Alembic) and SQLAlchemy are imported by the commands that open it.
if TYPE_CHECKING:
    from crmmetrics.store.migrations import StoreState


@cli.group()
def store() -> None:
    """The store's schema: upgrade it after installing a new crmmetrics, see where it stands.

    Back up the store before an upgrade (copy the SQLite file, or pg_dump).
    """


def _store_url(config_path: str | None) -> str:
    from crmmetrics.core.config import load_config

    return load_config(config_path).store_url


def _describe(found: StoreState) -> str:
    from crmmetrics.store import migrations

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
    import sqlalchemy.exc

    from crmmetrics.core.config import redact_url
    from crmmetrics.data.engines import connection_problem
    from crmmetrics.store import migrations
    from crmmetrics.store.engine import open_store_engine

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
    import sqlalchemy.exc

    from crmmetrics.core.config import redact_url
    from crmmetrics.data.engines import connection_problem
    from crmmetrics.store import migrations
    from crmmetrics.store.engine import open_store_engine

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
    from crmmetrics.store import migrations

    for revision, parent, message in migrations.history():
        click.echo(f"{revision:32} <- {parent or '(none)':32} {message}")


@store.command("prune")
@click.option("--older-than", metavar="DURATION", help="Delete runs started longer ago than this, e.g. 400d (default: [store] retention).")
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@config_option
def store_prune(older_than: str | None, dry_run: bool, config_path: str | None) -> None:
    """Delete old runs and their observations.

    Never deleted: the standards history, runs still running, and each metric's last run and
    last successful run (its latest value). 'serve' does the same daily with [store] retention.
    """
    from crmmetrics.core.config import load_config, parse_retention, redact_url
    from crmmetrics.core.periods import utcnow
    from crmmetrics.store.store import Store

    config = load_config(config_path)
    if older_than is None:
        retention = config.retention
    else:
        try:
            retention = parse_retention(older_than)
        except ValueError as exc:
            raise ConfigError(f"--older-than: {exc}") from None
    store = Store(config.store_url)
    try:
        result = store.prune(utcnow() - retention, dry_run=dry_run)
    finally:
        store.engine.dispose()
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"store {redact_url(config.store_url)}: {verb} {result.runs} runs and {result.observations} observations "
        f"started before {result.older_than:%Y-%m-%d %H:%M} UTC"
    )
