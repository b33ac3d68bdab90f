"""The organisation's CRM data, opened read-only in fact, not only by convention.

SQLite: the file is opened with ``mode=ro``, every connection has ``PRAGMA query_only`` on and
an authorizer that refuses ATTACH/DETACH, every write and schema change, and the pragmas that
would undo this (``query_only``, ``writable_schema``...). ATTACH of the same file without
``mode=ro`` was the way round ``mode=ro`` alone.

PostgreSQL: every transaction is ``BEGIN READ ONLY`` (psycopg's ``read_only``) and the session
default is read-only; a guard on every statement sent through SQLAlchemy refuses what would
switch that back (``SET TRANSACTION READ WRITE``, ``SET SESSION CHARACTERISTICS``,
``default_transaction_read_only``, ``set_config(...)``, ``RESET``, ``SET ROLE``) or end the
read-only transaction early (``COMMIT``, ``ROLLBACK``, ``BEGIN``, ``START TRANSACTION``...).
A plugin holding the raw driver connection could still get round a client-side guard: the
barrier that cannot be bypassed is a role with SELECT only (docs/operations.md), and start-up
warns when the configured role can write to the canonical tables.

DuckDB: the file is opened with ``read_only`` (DuckDB itself refuses every write and schema
change, and ATTACH of the same file read-write), file system access is off
(``enable_external_access``: no ATTACH of another file, COPY TO, extension loading) and the
configuration is locked so that neither can be switched back. A missing file is an error, not
a new empty database.

ClickHouse in-process (chdb): the session is opened with ``readonly = 1`` as its last setting,
after the ones that make its SQL standard (:data:`crmmetrics.data.engines.CHDB_SETTINGS`);
ClickHouse then refuses every write, schema change and ``SET``, the settings included. A
missing database folder is an error, not a new empty database.

Other databases are opened as given.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from crmmetrics.core.errors import ConfigError
from .engines import chdb_url, open_engine, parse_url, postgres_session_read_only
from .sqlite_read_only import sqlite_authorizer

log = logging.getLogger("crmmetrics.source")


class ReadOnlySourceError(PermissionError):
    """A statement tried to write to the source or to leave its read-only session."""


# --- SQLite ----------------------------------------------------------------------------------


def _sqlite_read_only(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA query_only = ON")
    dbapi_connection.set_authorizer(sqlite_authorizer)


# --- PostgreSQL ------------------------------------------------------------------------------

# Statements (after splitting on ';') that would end the read-only transaction or change the
# session's access mode; and text anywhere in a statement that switches it back.
_PG_STATEMENT_DENIED = re.compile(
    r"^\s*(commit|rollback|begin|start|end|abort|savepoint|release|prepare|reset|discard|"
    r"set\s+(session|transaction|role|local\s+(transaction|role|session)))\b",
    re.IGNORECASE,
)
_PG_TEXT_DENIED = re.compile(r"\bread\s+write\b|transaction_read_only|set_config\s*\(|session\s+authorization", re.IGNORECASE)


def _pg_guard(_conn: Any, _cursor: Any, statement: str, _parameters: Any, _context: Any, _executemany: bool) -> None:
    for part in statement.split(";"):
        if _PG_STATEMENT_DENIED.match(part) or _PG_TEXT_DENIED.search(part):
            raise ReadOnlySourceError(f"the source is read-only: refused {part.strip()[:80]!r}")


def _pg_read_only(dbapi_connection: Any, _record: Any) -> None:
    postgres_session_read_only(dbapi_connection)
    dbapi_connection.read_only = True  # psycopg then opens every transaction with BEGIN READ ONLY


# --- DuckDB ----------------------------------------------------------------------------------

#: Connection settings of a DuckDB source (duckdb.connect's read_only and config).
DUCKDB_READ_ONLY = {
    "read_only": True,
    "config": {"enable_external_access": False, "lock_configuration": True},
}


def _database_file(parsed: Any, url: str, engine_name: str) -> Path:
    """The existing database file of a file-based source (opening a missing one would create it)."""
    database = parsed.database or ""
    if database in ("", ":memory:"):
        raise ConfigError(f"source.url: an in-memory {engine_name} database has no CRM data: {url}")
    if not Path(database).exists():
        raise ConfigError(f"source.url: {engine_name} file not found: {database}")
    return Path(database).resolve()


def open_source(url: str) -> Engine:
    """An engine on the source database that refuses writes (SQLite, PostgreSQL, DuckDB, chdb)."""
    parsed = parse_url(url, "source")
    backend = parsed.get_backend_name()
    if backend == "duckdb":
        path = _database_file(parsed, url, "DuckDB")
        return open_engine(parsed.set(database=str(path)), "source", connect_args=DUCKDB_READ_ONLY)
    if backend == "chdb":
        path = _database_file(parsed, url, "chdb")
        return open_engine(chdb_url(parsed.set(database=str(path)), read_only=True), "source")
    if backend == "sqlite":
        uri = f"sqlite:///file:{_database_file(parsed, url, 'SQLite')}?mode=ro&uri=true"
        engine = open_engine(uri, "source")
        event.listen(engine, "connect", _sqlite_read_only)
        return engine
    engine = open_engine(parsed, "source", pool_pre_ping=True)  # pre-ping: recover after a database outage
    if backend == "postgresql":
        event.listen(engine, "connect", _pg_read_only)
        event.listen(engine, "before_cursor_execute", _pg_guard)
    return engine


def writable_canonical_tables(engine: Engine) -> list[str]:
    """The canonical tables the source's role may change (PostgreSQL; empty elsewhere)."""
    if engine.dialect.name != "postgresql":
        return []
    from sqlalchemy import text

    from crmmetrics.core import schema

    with engine.connect() as connection:
        present = {row[0] for row in connection.execute(text("SELECT c.relname FROM pg_class c WHERE c.relname = ANY(:names) AND pg_table_is_visible(c.oid)"), {"names": list(schema.TABLES)})}
        return [
            name
            for name in schema.TABLES
            if name in present
            and connection.execute(
                text("SELECT has_table_privilege(CAST(:name AS regclass), 'INSERT, UPDATE, DELETE, TRUNCATE')"), {"name": name}
            ).scalar()
        ]


def warn_if_writable(engine: Engine) -> list[str]:
    """Log a warning when the source's role could write (the guard is client-side only)."""
    try:
        writable = writable_canonical_tables(engine)
    except Exception as exc:  # noqa: BLE001 - a warning must not stop the service
        log.debug("could not check the source role's privileges: %s", exc)
        return []
    if writable:
        log.warning(
            "the source's database role can write to %s: crmmetrics only reads, but a plugin holding the raw "
            "connection could write; connect with a SELECT-only role (see docs/operations.md)",
            ", ".join(writable),
        )
    return writable
