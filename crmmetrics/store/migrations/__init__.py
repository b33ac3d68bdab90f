"""The store's schema versions (Alembic), shipped inside the package: no alembic.ini at run time.

Layout::

    crmmetrics/store/migrations/__init__.py    this API: state, prepare, upgrade, history
    crmmetrics/store/migrations/env.py         Alembic's environment (takes the open connection)
    crmmetrics/store/migrations/script.py.mako template of a new revision (imports sqlmodel)
    crmmetrics/store/migrations/versions/NNNN_name.py   one file per revision, in one line of history

A store is *unversioned* when it has crmmetrics' tables but no ``alembic_version`` table: it was
created by crmmetrics 0.1.0 (``create_all``) and is stamped at the baseline on first use by a
command that writes. A store at an older revision is refused by every command except
``crmmetrics store upgrade``; one at a revision this code does not know (written by a newer
crmmetrics) is refused by all.

To add a revision after changing the SQLModel tables: ``python -m crmmetrics.store.migrations new
"what changed"`` (see docs/operations.md), then read and edit the generated file.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from crmmetrics.core.errors import StoreError

# SQLAlchemy and Alembic are imported where used: `store history` reads only the revision files.
if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection, Engine

    from alembic.config import Config
    from alembic.script import ScriptDirectory

BASELINE = "0001_baseline"
VERSION_TABLE = "alembic_version"
# Tables every store written by crmmetrics 0.1.0 has (create_all made them all at every start).
BASELINE_TABLES = frozenset({"metric_definitions", "runs", "observations", "customer_values", "standard_changes"})
# pg_advisory_xact_lock key serialising migrations of one PostgreSQL store ("crmm" in ASCII).
_MIGRATION_LOCK = 0x63726D6D

_HERE = Path(__file__).resolve().parent
VERSIONS = _HERE / "versions"
UPGRADE_HINT = "run 'crmmetrics store upgrade' (back up the store first)"


def target_metadata() -> MetaData:
    """The SQLModel tables of the store, as the code declares them now."""
    from sqlmodel import SQLModel

    from .. import standards, store  # noqa: F401 - importing them declares their tables

    return SQLModel.metadata


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(VERSIONS))
    # Revision ids already carry the slug (NNNN_slug): the file is named by the id alone.
    config.set_main_option("file_template", "%%(rev)s")
    config.attributes["connection"] = connection
    return config


def script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


class Revision(NamedTuple):
    revision: str
    parent: str | None
    message: str  # the first line of its docstring


@functools.cache
def history() -> tuple[Revision, ...]:
    """Every revision shipped, oldest first: (revision, its parent, first line of its message).
    Read from the files in versions/ without running them: the commands that only check a
    store's revision (every reader, and every writer on a current store) then never import
    Alembic, a third of their start-up. A test holds this equal to Alembic's own reading."""
    return read_revisions(VERSIONS)


def read_revisions(folder: Path) -> tuple[Revision, ...]:
    """The revision files in ``folder`` in the order they apply; StoreError unless they form one line."""
    found: dict[str | None, Revision] = {}  # by parent
    for path in sorted(folder.glob("*.py")):
        module = ast.parse(path.read_text(encoding="utf-8"), str(path))
        names = {  # the module's constants, `revision = '...'` or `revision: str = '...'`
            target.id: node.value.value
            for node in module.body
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant)
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(target, ast.Name)
        }
        if not isinstance(names.get("revision"), str) or "down_revision" not in names:
            raise StoreError(f"{path}: not a revision: it needs the constants revision = '...' and down_revision")
        doc = (ast.get_docstring(module) or "").strip()
        revision = Revision(names["revision"], names["down_revision"], doc.splitlines()[0] if doc else "")
        if revision.parent in found:  # two revisions with one parent: a merge left history forked
            forked = sorted((found[revision.parent].revision, revision.revision))
            raise StoreError(f"crmmetrics' migrations fork after {revision.parent}: {', '.join(forked)}; they must form one line")
        found[revision.parent] = revision
    line: list[Revision] = []
    parent: str | None = None
    while parent in found:
        line.append(found[parent])
        parent = line[-1].revision
    if len(line) != len(found):
        stray = sorted({r.revision for r in found.values()} - {r.revision for r in line})
        raise StoreError(f"crmmetrics' migrations {', '.join(stray)} do not follow from the baseline; they must form one line")
    return tuple(line)


def head() -> str:
    return history()[-1].revision


@dataclass(frozen=True)
class StoreState:
    """Where a store stands: ``empty``, ``unversioned`` (0.1.0), ``current``, ``old`` or ``unknown``."""

    kind: str
    revision: str | None  # the store's revision (None: empty or unversioned)
    head: str


def state(connection: Connection) -> StoreState:
    from sqlalchemy import inspect, text

    tables = set(inspect(connection).get_table_names())
    wanted = head()
    if VERSION_TABLE not in tables:
        if tables & BASELINE_TABLES:
            return StoreState("unversioned", None, wanted)
        return StoreState("empty", None, wanted)
    # What Alembic's MigrationContext.get_current_heads reads, without importing Alembic.
    found = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if not found:
        return StoreState("empty" if not tables & BASELINE_TABLES else "unversioned", None, wanted)
    revision = found[0]
    if revision == wanted:
        return StoreState("current", revision, wanted)
    if revision not in {known.revision for known in history()}:
        return StoreState("unknown", revision, wanted)
    return StoreState("old", revision, wanted)


@contextmanager
def _migration_transaction(engine: Engine) -> Iterator[Connection]:
    from sqlalchemy import text

    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Two processes starting on a new store must not both create its tables.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        yield connection


def refusal(found: StoreState, where: str) -> str | None:
    """The one-line reason a store in this state cannot be used by this code, or None."""
    if found.kind == "old":
        return f"store {where} is at revision {found.revision}, this crmmetrics needs {found.head}: {UPGRADE_HINT}"
    if found.kind == "unversioned":
        return f"store {where} was created by crmmetrics 0.1.0 and has no revision: {UPGRADE_HINT}"
    if found.kind == "unknown":
        return (
            f"store {where} is at revision {found.revision}, which this crmmetrics does not know "
            f"(it was upgraded by a newer crmmetrics; run that version)"
        )
    return None


def prepare(engine: Engine, where: str) -> StoreState:
    """Make a store usable by a command that writes: create a new one at the head, stamp a 0.1.0
    one at the baseline; then refuse any store not at the head (one line naming the command)."""
    with _migration_transaction(engine) as connection:
        found = state(connection)
        if found.kind == "current":
            return found
        from alembic import command

        config = alembic_config(connection)
        if found.kind == "empty":
            command.upgrade(config, "head")
            found = state(connection)
        elif found.kind == "unversioned":
            _check_baseline(connection, where)
            command.stamp(config, BASELINE)
            found = state(connection)
            if found.kind == "current":
                return found
    problem = refusal(found, where)
    if problem:
        raise StoreError(problem)
    return found


def _check_baseline(connection: Connection, where: str) -> None:
    from sqlalchemy import inspect

    missing = BASELINE_TABLES - set(inspect(connection).get_table_names())
    if missing:
        raise StoreError(f"store {where} has some crmmetrics tables but not {', '.join(sorted(missing))}: it is not a crmmetrics store")


def upgrade(engine: Engine, where: str, target: str = "head") -> tuple[StoreState, StoreState]:
    """Bring a store (new, 0.1.0 or older) to ``target``; returns the states before and after."""
    with _migration_transaction(engine) as connection:
        before = state(connection)
        if before.kind == "unknown":
            raise StoreError(refusal(before, where))
        from alembic import command

        config = alembic_config(connection)
        if before.kind == "unversioned":
            _check_baseline(connection, where)
            command.stamp(config, BASELINE)
        command.upgrade(config, target)
        after = state(connection)
    return before, after

