"""Opening the store's database, apart from its tables: ``store current`` reads the revision
without importing SQLModel and the store's table classes (most of its start-up)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from crmmetrics.core.config import redact_url
from crmmetrics.core.errors import StoreError, StoreMissing
from crmmetrics.data.engines import open_engine, parse_url, postgres_session_read_only


def open_store_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine on the store; read-only ones cannot write (SQLite mode=ro, PostgreSQL read-only
    sessions) and never create a SQLite file."""
    parsed = parse_url(url, "store")
    sqlite = parsed.get_backend_name() == "sqlite"
    connect_args: dict[str, Any] = {"timeout": 30} if sqlite else {}
    target: Any = url
    database = parsed.database or ""
    if sqlite and database not in ("", ":memory:"):
        folder = Path(database).resolve().parent
        if not folder.is_dir():
            raise StoreError(f"store {redact_url(url)}: the directory {folder} does not exist")
    if read_only and sqlite:
        if database in ("", ":memory:") or not Path(database).exists():
            raise StoreMissing(f"store {redact_url(url)}: no such store file (nothing has been run yet: run 'crmmetrics run' first)")
        # mode=ro: SQLite itself refuses every write, and never creates the file.
        target = f"sqlite:///file:{Path(database).resolve()}?mode=ro&uri=true"
    engine = open_engine(target, "store", connect_args=connect_args)
    if read_only and engine.dialect.name == "postgresql":
        # Readers' sessions refuse writes (a reader that tried would be a bug, not a change).
        event.listen(engine, "connect", postgres_session_read_only)
    return engine
