"""For developers: ``python -m crmmetrics.store.migrations new "add model fits"``.

Builds a temporary SQLite store at the current head, compares it with the SQLModel tables the
code declares now, and writes the difference as the next revision in
crmmetrics/store/migrations/versions/ (``NNNN_slug.py``, parent: the head). Read and edit it before
committing: autogenerate misses renames and server defaults, and SQLite needs batch mode
(already on). ``python -m crmmetrics.store.migrations check`` exits 1 if the tables and the
revisions disagree (the test suite runs the same comparison).
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from . import alembic_config, head, history, target_metadata, upgrade


def _scratch_store(directory: str):
    engine = create_engine(f"sqlite:///{Path(directory) / 'scratch.sqlite'}")
    upgrade(engine, "scratch store")
    return engine


def differences() -> list:
    """What the declared tables have that the revisions do not create (empty: in step)."""
    with tempfile.TemporaryDirectory() as directory:
        engine = _scratch_store(directory)
        with engine.connect() as connection:
            found = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), target_metadata())
        engine.dispose()
    return found


def new(message: str) -> Path:
    number = len(history()) + 1
    # alembic_version.version_num is VARCHAR(32): NNNN_ plus at most 27 characters of slug.
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:27].strip("_")
    revision = f"{number:04d}_{slug}"
    with tempfile.TemporaryDirectory() as directory:
        engine = _scratch_store(directory)
        with engine.begin() as connection:
            config = alembic_config(connection)
            script = command.revision(config, message=message, autogenerate=True, rev_id=revision, head=head())
        engine.dispose()
    return Path(script.path)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "new":
        print(f"wrote {new(argv[1])}: read it, edit it, then run the migration tests")
        return 0
    if argv == ["check"]:
        found = differences()
        for difference in found:
            print(difference)
        return 1 if found else 0
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
