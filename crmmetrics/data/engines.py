"""Opening a database URL (the store's or the source's) with errors a user can act on.

An unknown dialect, a driver that is not installed and a server or file that cannot be opened
are each reported as one line naming what was being opened (``store``/``source``) and its URL
with passwords hidden.
"""

from __future__ import annotations

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
    "mysql": "mysqlclient (pip install mysqlclient), or use mysql+pymysql:// with PyMySQL",
    "mariadb": "mariadb (pip install mariadb)",
    "mssql": "pyodbc (pip install pyodbc)",
    "oracle": "oracledb (pip install oracledb)",
}

#: Dialects that SQLAlchemy does not ship: an unknown one of these names means a missing package.
_DIALECT_PACKAGES = {"duckdb"}


def parse_url(url: str, what: str) -> URL:
    try:
        return make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise ConfigError(f"{what}.url: not a SQLAlchemy database URL: {redact_url(url)!r}") from None


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
