"""What a read-only SQLite connection may do: the authorizer of every source connection.

Its own module, importing nothing but sqlite3, because defining a config KPI checks its query
with it (crmmetrics.compute.config_kpis.tables_read) and listing the metrics must not import
SQLAlchemy.
"""

from __future__ import annotations

import sqlite3

_SQLITE_ALLOWED = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_TRANSACTION,
                   sqlite3.SQLITE_SAVEPOINT, sqlite3.SQLITE_RECURSIVE}
# Pragmas that change what the connection may do; reading ones (table_info...) stay allowed.
_SQLITE_PRAGMAS_DENIED = {"query_only", "writable_schema", "journal_mode", "locking_mode", "schema_version",
                          "user_version", "application_id", "trusted_schema", "foreign_keys", "recursive_triggers"}


def sqlite_authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    """Allow reading only (also used to check a config KPI's query before it reaches a source)."""
    if action in _SQLITE_ALLOWED:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA:
        return sqlite3.SQLITE_DENY if (arg1 or "").lower() in _SQLITE_PRAGMAS_DENIED else sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY  # ATTACH, DETACH, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER...
