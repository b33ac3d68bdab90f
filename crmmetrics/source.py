"""The organisation's CRM data, opened read-only where the database allows it.

SQLite files are opened with ``mode=ro`` (a stray write raises instead of changing the file);
PostgreSQL sessions are set to read-only transactions. Other databases are opened as given.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine

from .engines import open_engine, parse_url
from .errors import ConfigError


def open_source(url: str) -> Engine:
    """An engine on the source database that refuses writes (SQLite, PostgreSQL)."""
    parsed = parse_url(url, "source")
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            raise ConfigError(f"source.url: an in-memory SQLite database has no CRM data: {url}")
        if not Path(database).exists():
            raise ConfigError(f"source.url: SQLite file not found: {database}")
        uri = f"sqlite:///file:{Path(database).resolve()}?mode=ro&uri=true"
        return open_engine(uri, "source")
    engine = open_engine(parsed, "source", pool_pre_ping=True)  # pre-ping: recover after a database outage
    if backend == "postgresql":

        @event.listens_for(engine, "connect")
        def _read_only(dbapi_connection, _record) -> None:
            autocommit = dbapi_connection.autocommit
            dbapi_connection.autocommit = True
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            dbapi_connection.autocommit = autocommit

    return engine
