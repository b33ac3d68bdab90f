"""Opening a database URL (the store's or the source's) with errors a user can act on.

An unknown dialect, a driver that is not installed and a server or file that cannot be opened
are each reported as one line naming what was being opened (``store``/``source``) and its URL
with passwords hidden.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy.exc
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Engine, make_url

from crmmetrics.core.config import redact_url
from crmmetrics.core.errors import ConfigError

# The package that provides each dialect's default driver, and the extra that brings it.
DRIVERS = {
    "postgresql": "psycopg (pip install 'crmmetrics[postgres]')",
    "duckdb": "duckdb and duckdb-engine (pip install 'crmmetrics[duckdb]')",
    "chdb": "chdb and chdb-sqlalchemy (pip install 'crmmetrics[clickhouse]')",
    "mysql": "mysqlclient (pip install mysqlclient), or use mysql+pymysql:// with PyMySQL",
    "mariadb": "mariadb (pip install mariadb)",
    "mssql": "pyodbc (pip install pyodbc)",
    "oracle": "oracledb (pip install oracledb)",
}

#: Dialects that SQLAlchemy does not ship: an unknown one of these names means a missing package.
_DIALECT_PACKAGES = {"duckdb", "chdb"}

#: The ClickHouse settings every chdb database is opened with (chdb-sqlalchemy applies a URL's
#: ``?settings=NAME=VALUE`` with ``SET`` on each new connection, in order), so that its SQL means
#: what it means on the other engines: without them 53 of the 61 built-in KPIs failed and most of
#: the others differed from SQLite (benchmarks/compare_chdb.py).
CHDB_SETTINGS = {
    "session_timezone": "UTC",  # naive timestamps are UTC, the data model's convention, in any zone
    "join_use_nulls": "1",  # an outer join's unmatched columns are NULL, not 0 or ''
    "cast_keep_nullable": "1",  # CAST of NULL is NULL (the closed-period fingerprint's sums)
}


def parse_url(url: str, what: str) -> URL:
    try:
        return make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise ConfigError(f"{what}.url: not a SQLAlchemy database URL: {redact_url(url)!r}") from None


def chdb_url(url: URL, *, read_only: bool) -> URL:
    """A chdb URL with :data:`CHDB_SETTINGS` (and ``readonly``) in place of any the user gave.

    ``readonly=1`` comes last: ClickHouse refuses every ``SET`` after it, so the session cannot be
    made writable again (chdb-sqlalchemy's own ``?readonly=1`` is applied first and is dropped)."""
    given = url.query.get("settings", ())
    ours = {**CHDB_SETTINGS, **({"readonly": "1"} if read_only else {})}
    kept = [item for item in ([given] if isinstance(given, str) else given) if item.split("=", 1)[0].strip() not in ours]
    query = {key: value for key, value in url.query.items() if key not in ("settings", "readonly")}
    url = url.set(query={**query, "settings": [*kept, *(f"{name}={value}" for name, value in ours.items())]})
    if url.database and url.database != ":memory:":
        # chdb-sqlalchemy reads chdb:///crm.chdb as /crm.chdb: a relative path is the cwd's, as
        # for SQLite and DuckDB (a config file's are made relative to its folder when it is read)
        url = url.set(database=str(Path(url.database).resolve()))
    return url


def writable_url(url: str) -> str | URL:
    """The URL of a database crmmetrics writes (the demo): chdb's with its settings, others as given."""
    parsed = make_url(url)
    return chdb_url(parsed, read_only=False) if parsed.get_backend_name() == "chdb" else url


def open_engine(url: str | URL, what: str, **options: Any) -> Engine:
    """``create_engine`` whose failures to find a dialect or driver are one ConfigError line."""
    parsed = parse_url(url, what) if isinstance(url, str) else url
    shown = redact_url(parsed.render_as_string(hide_password=True)) if isinstance(url, URL) else redact_url(url)
    try:
        return create_engine(parsed, **options)
    except sqlalchemy.exc.NoSuchModuleError:
        if parsed.get_backend_name() in _DIALECT_PACKAGES:  # a dialect that ships in its own package
            raise ConfigError(
                f"{what}.url: {shown}: the {parsed.get_backend_name()} dialect is not installed: "
                f"install {DRIVERS[parsed.get_backend_name()]}"
            ) from None
        raise ConfigError(
            f"{what}.url: unknown database dialect {parsed.drivername!r} in {shown} "
            "(expected e.g. sqlite:///FILE or postgresql+psycopg://USER@HOST/DB)"
        ) from None
    except ImportError as exc:
        backend = parsed.get_backend_name()
        hint = DRIVERS.get(backend, f"the Python driver for {parsed.drivername}")
        missing = exc.name or str(exc)
        raise ConfigError(f"{what}.url: {shown}: the database driver is not installed ({missing}): install {hint}") from None


def check_driver(url: str, what: str) -> None:
    """Fail as ``open_engine`` would if the URL's dialect or driver is missing, without connecting."""
    open_engine(url, what).dispose()  # create_engine loads the dialect and its driver, opens nothing


def connection_problem(exc: sqlalchemy.exc.DBAPIError) -> str:
    """The first line of what the database said, without SQLAlchemy's boilerplate."""
    text = str(exc.orig).strip() if exc.orig is not None else str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def postgres_session_read_only(dbapi_connection: Any, _record: Any = None) -> None:
    """A ``connect`` listener: the PostgreSQL session's transactions are read-only by default
    (the store's readers, the source)."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    dbapi_connection.autocommit = autocommit
