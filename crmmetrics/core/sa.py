"""SQLAlchemy, imported when a name of it is first used: ``sa.select(...)``, ``sa.func.count()``.

The one place where the KPI kit and the built-in plugins get SQLAlchemy from (plugins as
``from crmmetrics.kpi import sa``). Importing SQLAlchemy's SQL and engine packages takes longer
than the rest of ``crmmetrics metrics list``; the SQL of a KPI is built only when it computes, so
defining KPIs (listing them) need not pay for it. A module ``__getattr__`` (PEP 562) forwards
each top-level name of ``sqlalchemy`` (and keeps it here for the next use); ``from sqlalchemy
import ...`` at the top of a module still works, it only imports SQLAlchemy at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the names are, for type checkers and editors
    from sqlalchemy import *  # noqa: F401,F403


def __getattr__(name: str) -> Any:
    if name.startswith("__"):  # the import system's probes (__path__, __wrapped__ ...) are not SQLAlchemy's
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import sqlalchemy

    value = getattr(sqlalchemy, name)
    globals()[name] = value
    return value
