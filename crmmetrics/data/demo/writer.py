"""Writing the generated tables: into an empty database, by each engine's bulk path, a chunk
at a time, the indexes at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from itertools import groupby

import numpy as np
from sqlalchemy import inspect, select, text
from sqlalchemy import table as _sql_table
from sqlalchemy.engine import Engine

from crmmetrics.core.schema import TABLES, create_tables, index_statements, key_sequence_name, metadata
from .columns import _Col, _rows


_strings = getattr(np, "strings", np.char)  # numpy >= 2 has the faster np.strings


def _check_target(engine: Engine) -> None:
    """Refuse a database whose canonical tables hold rows (or are views)."""
    insp = inspect(engine)
    tables = set(insp.get_table_names())
    views = set(insp.get_view_names())
    clash = sorted(views & set(TABLES))
    if clash:
        raise ValueError(f"{engine.url.render_as_string(hide_password=True)}: "
                         f"{', '.join(clash)} exist as views; generate the demo into another "
                         "database")
    filled = []
    with engine.connect() as conn:
        for name in TABLES:
            if name in tables and conn.execute(
                    select(text("1")).select_from(_sql_table(name)).limit(1)).first():
                filled.append(name)
    if filled:
        raise ValueError(f"{engine.url.render_as_string(hide_password=True)} already holds CRM "
                         f"data (tables {', '.join(filled)} are not empty); the demo generator "
                         "drops nothing: use an empty database")


def _slice(col: _Col | None, start: int, stop: int) -> _Col | None:
    if col is None:
        return None
    return _Col(col.kind, col.values[start:stop], None if col.null is None else col.null[start:stop])


def _py_column(col: _Col | None, n: int, start_epoch: int, sqlite: bool) -> list:
    """A column as a list of Python values (None for NULL) for the DBAPI."""
    if col is None:
        return [None] * n
    k, v, null = col.kind, col.values, col.null
    if k == "s":
        vals = list(v)
        if null is not None:
            for i in np.nonzero(null)[0].tolist():
                vals[i] = None
        return vals
    if k == "t":
        dt = (np.datetime64(0, "s") + (v + start_epoch).astype("timedelta64[s]"))
        if sqlite:  # SQLAlchemy's own SQLite storage format for DateTime
            arr = _strings.add(_strings.replace(np.datetime_as_string(dt, unit="s"), "T", " "),
                               ".000000").astype(object)
        else:
            arr = dt.astype("datetime64[us]").astype(object)
    elif k == "b":
        arr = v.astype(np.int64).astype(object) if sqlite else v.astype(object)
    elif k == "f" and null is not None:
        arr = np.where(null, 0.0, v).astype(object)
    else:
        arr = v.astype(object)
    if null is not None:
        arr[null] = None
    return arr.tolist()


def _np_column(col: _Col | None, n: int, start_epoch: int) -> np.ndarray:
    """A column as a numpy array DuckDB scans directly (object arrays with None where NULL)."""
    if col is None:
        return np.full(n, None, dtype=object)
    k, v, null = col.kind, col.values, col.null
    if k == "t":
        arr = (np.datetime64(0, "s") + (v + start_epoch).astype("timedelta64[s]")).astype("datetime64[us]")
    elif k == "s":
        arr = np.asarray(v, dtype=object)
    else:
        arr = np.asarray(v)
    if null is None:
        return arr
    arr = arr.astype(object)
    arr[null] = None
    return arr


#: Rows converted and written at a time: the Python objects of one chunk are all the writer
#: holds beside the generated numpy columns.
WRITE_CHUNK_ROWS = 50_000


def _write(engine: Engine, data: Mapping[str, dict[str, _Col]] | Iterable[tuple[str, dict[str, _Col]]],
           start_epoch: int, progress: Callable[[int, int], None] | None, *, loader: str | None = None,
           expected: Callable[[int], int] | None = None) -> dict[str, int]:
    """Create the missing tables, bulk-load every table in one transaction (DuckDB: one per
    table, every row deleted on a failure), then the indexes.

    ``data`` is every table (name -> columns), or ``(name, columns)`` parts of the tables in an
    order the foreign keys allow, generated while they are written (``expected(rows written)``
    then gives the progress total). Each part is converted and written
    :data:`WRITE_CHUNK_ROWS` rows at a time by the engine's own bulk path (``loader``,
    default: the engine's): SQLite through the raw DBAPI connection (executemany of tuples in
    SQLAlchemy's own storage format), PostgreSQL with ``COPY ... FROM STDIN`` (psycopg), DuckDB
    by scanning the chunk's numpy arrays (``INSERT ... SELECT``), any other database (and
    ``loader="core"``) through SQLAlchemy Core ``insert`` executemany.
    """
    if isinstance(data, Mapping):
        parts: Iterable[tuple[str, dict[str, _Col]]] = [
            (t.name, data[t.name]) for t in metadata.sorted_tables if t.name in data]
        total = sum(_rows(cols) for _, cols in parts)
        expected = lambda done: total  # noqa: E731
    else:
        parts = data
        if expected is None:
            raise ValueError("expected is needed to report progress on parts generated while written")
    counts = dict.fromkeys(TABLES, 0)
    done = 0
    if progress:
        progress(0, expected(0))
    loader = loader or engine.dialect.name
    if loader not in _LOADERS:
        loader = "core"
    create_tables(engine, indexes=False)

    def chunks():
        """(table, rows, columns) a chunk at a time, the parts' order kept."""
        nonlocal done
        for name, cols in parts:
            t = metadata.tables[name]
            n = _rows(cols)
            counts[name] += n
            for i in range(0, n, WRITE_CHUNK_ROWS):
                j = min(n, i + WRITE_CHUNK_ROWS)
                yield t, j - i, {c.name: _slice(cols.get(c.name), i, j) for c in t.columns}
                done += j - i
                if progress:
                    progress(done, max(done, expected(done)))

    # The indexes after the rows (faster than updating them row by row), in the same transaction.
    _LOADERS[loader](engine, chunks(), start_epoch, index_statements(engine.dialect))
    if progress and expected(done) != done:
        progress(done, done)
    return counts


def _by_table(chunks):
    """The chunks grouped into runs of one table: (table, its chunks)."""
    return groupby(chunks, key=lambda chunk: chunk[0])


def _columns(t) -> str:
    return ", ".join(f'"{c.name}"' for c in t.columns)


def _load_sqlite(engine: Engine, chunks, start_epoch: int, indexes: list[str]) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA synchronous=OFF")
        cur.execute("PRAGMA cache_size=-131072")  # 128 MiB: the index builds sort in it
        cur.execute("PRAGMA threads=2")  # and may use a second core
        cur.execute("BEGIN")
        for t, run in _by_table(chunks):
            sql = f'INSERT INTO "{t.name}" ({_columns(t)}) VALUES ({", ".join("?" * len(t.columns))})'
            for _, n, cols in run:
                cur.executemany(sql, zip(*(_py_column(cols[c.name], n, start_epoch, True) for c in t.columns)))
        for ddl in indexes:
            cur.execute(ddl)
        raw.commit()
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()


def _load_postgresql(engine: Engine, chunks, start_epoch: int, indexes: list[str]) -> None:
    if engine.dialect.driver != "psycopg":  # COPY through psycopg 3; other drivers insert
        _load_core(engine, chunks, start_epoch, indexes)
        return
    with engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()
        for t, run in _by_table(chunks):
            with cursor.copy(f'COPY "{t.name}" ({_columns(t)}) FROM STDIN') as copy:
                for _, n, cols in run:
                    for row in zip(*(_py_column(cols[c.name], n, start_epoch, False) for c in t.columns)):
                        copy.write_row(row)
        _reset_sequences(conn)
        for ddl in indexes:
            conn.exec_driver_sql(ddl)


def _load_duckdb(engine: Engine, chunks, start_epoch: int, indexes: list[str]) -> None:
    """One transaction per run of a table's chunks: DuckDB keeps what a transaction appends in
    memory until it commits (the million-customer demo in one transaction peaked at 3.75 GiB
    of RSS, 0.86 GiB this way). The tables were empty (:func:`_check_target`), so a failure
    deletes every row written: none is left."""
    try:
        for t, run in _by_table(chunks):
            with engine.begin() as conn:
                duck = conn.connection.driver_connection
                for _, n, cols in run:
                    duck.register("demo_chunk", {c.name: _np_column(cols[c.name], n, start_epoch) for c in t.columns})
                    try:
                        duck.execute(f'INSERT INTO "{t.name}" ({_columns(t)}) SELECT {_columns(t)} FROM demo_chunk')
                    finally:
                        duck.unregister("demo_chunk")
        with engine.begin() as conn:
            _reset_sequences(conn)
            for ddl in indexes:
                conn.exec_driver_sql(ddl)
    except BaseException:
        with engine.begin() as conn:
            for t in reversed(metadata.sorted_tables):
                conn.execute(t.delete())
        raise


def _load_core(engine: Engine, chunks, start_epoch: int, indexes: list[str]) -> None:
    with engine.begin() as conn:
        for t, run in _by_table(chunks):
            names = [c.name for c in t.columns]
            for _, n, cols in run:
                py = [_py_column(cols[c], n, start_epoch, False) for c in names]
                conn.execute(t.insert(), [dict(zip(names, r)) for r in zip(*py)])
        if engine.dialect.name in ("postgresql", "duckdb"):
            _reset_sequences(conn)
        for ddl in indexes:
            conn.exec_driver_sql(ddl)


def _reset_sequences(conn) -> None:
    """Let the database number later rows after the demo's own keys (PostgreSQL, DuckDB)."""
    for t in metadata.sorted_tables:
        pk = list(t.primary_key.columns)
        if len(pk) != 1:
            continue
        if conn.dialect.name == "postgresql":
            conn.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{t.name}', '{pk[0].name}'), "
                f"COALESCE((SELECT MAX({pk[0].name}) FROM {t.name}), 0) + 1, false)"))
        elif conn.dialect.name == "duckdb" and t.autoincrement_column is not None:
            # DuckDB cannot set a sequence: draw it past the largest key instead.
            sequence = key_sequence_name(pk[0])
            conn.execute(text(f"SELECT max(nextval('{sequence}')) FROM range("
                              f"(SELECT COALESCE(MAX({pk[0].name}), 0) FROM {t.name}))"))


_LOADERS = {"sqlite": _load_sqlite, "postgresql": _load_postgresql, "duckdb": _load_duckdb, "core": _load_core}
