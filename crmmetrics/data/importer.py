"""Import a CSV export into a canonical table of a source database, all rows or none.

Real users start from exports: ``import_csv(url, "orders", "orders.csv", mapping={"amount":
"net_revenue"}, derive_customers=True)`` loads a transaction log of customer, date and amount
into ``orders`` and creates the ``customers`` it needs, which is enough for the value KPIs and
the CLV models.  ``init_source(url)`` creates the canonical tables in an empty database.

The rules, in one place
-----------------------
* The file is UTF-8 CSV (a byte-order mark is allowed) whose first line is the header.  Blank
  lines are skipped.  Line numbers in messages are the file's own lines (the header is line 1;
  a record with a quoted line break is reported at its first line).
* Each header name is a column of the target table, or is mapped onto one (``mapping``:
  their name -> our column).  Any other column is an error, unless ``ignore_extra`` drops it.
* Values are typed by :mod:`crmmetrics.core.schema`: integers (decimal digits; 32- or 64-bit range
  by column), numbers (decimal or exponent notation; no NaN, no infinity), booleans
  (``true/false``, ``1/0``, ``yes/no``, any case), date-times (``date_format``, a ``strptime``
  format; default ISO 8601) and strings (at most the column's length, no NUL character).
  A date-time with a UTC offset is converted to naive UTC; one without is read in ``timezone``
  (default UTC) and converted likewise.
* An empty (or blank) field is NULL, or the column's default where it has one (``orders.discount`` 0,
  ``channels.is_virtual`` false ...).  A column that is NOT NULL and has no default is
  *required*: it must be in the header and have a value on every line.
* A table whose key is one integer column (every table but ``order_lines``) may leave the key
  out (transaction logs rarely carry an order id): the key is then derived from the row's
  content, a hash of its values and of how many identical lines came before it in the file
  (two identical purchases on one line each are two rows). The same file therefore always
  gets the same keys, which is what makes a re-import detectable. A derived key that meets a
  *different* row already in the table is an error of that line (give the key column). The
  import remembers each key it wrote (tens of MB per million rows) to tell a line repeated
  in the file from a row of an earlier import.
* **Re-imports** (``mode``): a row whose key is already in the table is, by default
  (``insert``), refused: the import stops at the first such line with one line of error and
  nothing is imported.  ``append`` imports only the rows not yet in the table (an overlapping
  incremental export); ``upsert`` inserts new rows and updates the existing ones with the
  file's values; ``replace`` deletes every row of the table first (in the same transaction), so
  the table holds exactly the file afterwards.
* **Implausible rows** are refused with their line number, as no CRM would hold them: an event
  time after the import time (:data:`NOT_IN_THE_FUTURE`), and a negative amount, count or
  duration (:data:`NON_NEGATIVE`).  Returns and credits are allowed as negative amounts only
  in ``order_lines`` (a returned line) and ``cost_entries`` (a credit note); an order records
  its returns in ``returned_amount``, never as a negative order.
* Primary keys and unique columns (``segments.name``, ``channels.name``) must not repeat within
  the file or collide with a row already in the table.  A repeat within the same chunk of
  rows names the earlier line; a repeat of a row from an earlier chunk reads "already in TABLE",
  because those rows are already in the table inside the import's transaction.
* Foreign keys are checked against the target database (``orders.customer_id`` must be a
  ``customers`` row; ``customers.master_customer_id`` may name a customer from an earlier line
  of the same file).  With ``derive_customers`` (orders only) a missing customer is created
  instead, in the same transaction: ``customer_id``, ``acquired_at`` = the customer's first
  order, ``created_at`` = ``updated_at`` = the time of the import.
* The whole import is one transaction.  The file is read as a stream and inserted in chunks of
  ``chunk_size`` rows, so memory grows only by the keys it wrote (see derived keys) and the
  referred keys it found.  Every bad row is reported with its line number and reason; if there is any and no ``reject_file`` is given, the transaction
  is rolled back and :class:`CsvImportError` lists the first :data:`MAX_LISTED` problems.  With
  a ``reject_file`` the valid rows are imported and the bad ones are written there (CSV:
  ``line``, ``error``, then the row's own fields); the reject file appears only if the import
  commits.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from operator import attrgetter, itemgetter, methodcaller
from pathlib import Path
from typing import Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    String,
    Table,
    UniqueConstraint,
    bindparam,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy import table as sql_table
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError

from crmmetrics.core.config import redact_url
from crmmetrics.core.errors import ConfigError
from crmmetrics.core.periods import utcnow
from crmmetrics.core.schema import TABLES, create_tables

__all__ = [
    "CHUNK_ROWS",
    "MAX_LISTED",
    "CsvImportError",
    "ImportResult",
    "InitResult",
    "RowError",
    "import_csv",
    "init_source",
    "open_target",
]

#: What happens to rows whose key is already in the table (see the module docstring).
MODES = ("insert", "append", "upsert", "replace")

#: Event times that cannot lie after the import time (planned ends, contract ends, hires and
#: leaves, cost periods may).
NOT_IN_THE_FUTURE = {
    "campaigns": ("starts_at",),
    "customers": ("acquired_at", "created_at", "updated_at"),
    "orders": ("ordered_at",),
    "interactions": ("started_at",),
    "survey_responses": ("responded_at",),
    "employee_survey_responses": ("responded_at",),
    "data_quality_facts": ("checked_at",),
}

#: Columns that cannot be negative. Tables that allow returns or credits as negative amounts
#: (order_lines, cost_entries) have no entry for them.
NON_NEGATIVE = {
    "segments": ("market_size_customers", "wallet_per_customer"),
    "campaigns": ("contacts_sent", "responses"),
    "customers": ("category_wallet",),
    "orders": ("gross_revenue", "discount", "net_revenue", "cogs", "returned_amount"),
    "employees": ("fte",),
    "interactions": ("wait_seconds", "handle_seconds"),
    "data_quality_facts": ("records_checked", "records_failed", "max_age_hours"),
}
RETURNS_ALLOWED = ("order_lines", "cost_entries")

#: How many problems an error lists before "... and N more".
MAX_LISTED = 20
#: Rows validated and inserted together (memory is bounded by this, not by the file).
CHUNK_ROWS = 1000
# An import of at least this many lines (and a quarter of the table's rows) builds the table's
# plain indexes at its end instead of row by row (SQLite; _Import._defer_indexes).
DEFER_INDEXES_FROM_ROWS = 10_000

_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True)
class RowError:
    """One problem of one line of the file; ``column`` is None for a problem of the whole line."""

    line: int
    column: str | None
    reason: str

    def message(self) -> str:
        """``column COL: reason``, or the reason alone."""
        return f"column {self.column}: {self.reason}" if self.column is not None else self.reason

    def describe(self, path: str | Path) -> str:
        """``FILE:LINE: column COL: reason``."""
        return f"{path}:{self.line}: {self.message()}"


class ReimportError(ConfigError):
    """The file holds a row that is already in the table and the mode is ``insert``; nothing was imported."""


class CsvImportError(ConfigError):
    """The file has bad rows (or a bad header); nothing was imported.

    ``errors`` holds the first :data:`MAX_LISTED` problems, ``error_count`` all of them.
    """

    def __init__(self, path: str | Path, errors: list[RowError], error_count: int, bad_rows: int) -> None:
        self.path = path
        self.errors = errors
        self.error_count = error_count
        self.bad_rows = bad_rows
        if bad_rows:
            what = f"{error_count} error{'s' * (error_count != 1)} in {bad_rows} row{'s' * (bad_rows != 1)}"
        else:
            what = f"bad header ({error_count} error{'s' * (error_count != 1)})"
        super().__init__(f"{path}: {what}; nothing was imported")

    def lines(self) -> list[str]:
        """One line per listed problem, then ``... and N more`` if some were left out."""
        lines = [error.describe(self.path) for error in self.errors]
        if self.error_count > len(self.errors):
            lines.append(f"... and {self.error_count - len(self.errors)} more")
        return lines


@dataclass(frozen=True)
class ImportResult:
    """What an import did: lines read, rows imported and rejected, customers derived."""

    table: str
    rows_read: int
    rows_imported: int
    rows_rejected: int
    customers_derived: int
    reject_file: Path | None
    rows_updated: int = 0  # upsert: existing rows given the file's values
    rows_skipped: int = 0  # append: rows already in the table
    rows_replaced: int = 0  # replace: rows deleted before the import
    mode: str = "insert"


@dataclass(frozen=True)
class InitResult:
    """The canonical tables ``init_source`` created and those that already existed (empty)."""

    created: list[str]
    existing: list[str]


def open_target(url: str) -> Engine:
    """A writable engine on an existing source database (SQLite files must already exist)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"not a SQLAlchemy database URL: {redact_url(url)!r}") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            raise ConfigError(f"{url}: an in-memory SQLite database cannot be imported into")
        if not Path(database).exists():
            raise ConfigError(f"{url}: SQLite file not found (create it with 'crmmetrics source init URL')")
        engine = create_engine(parsed)
        # A 128 MiB page cache: the orders indexes take random keys, which thrash the default 2 MiB.
        event.listen(engine, "connect", lambda dbapi_connection, _record: dbapi_connection.execute("PRAGMA cache_size=-131072"))
        return engine
    return create_engine(parsed)


def init_source(url: str) -> InitResult:
    """Create the canonical tables in a database (a new SQLite file is created).

    Tables that exist already are left alone as long as every canonical table is empty; if any
    holds rows, nothing is changed and :class:`ConfigError` says which.
    """
    try:
        engine = create_engine(url)
    except ArgumentError:
        raise ConfigError(f"not a SQLAlchemy database URL: {redact_url(url)!r}") from None
    try:
        with engine.connect() as connection:
            inspector = inspect(connection)
            existing = [name for name in TABLES if inspector.has_table(name)]
            holding = [
                f"{name}: {count} rows"
                for name in existing
                if (count := connection.scalar(select(func.count()).select_from(TABLES[name])))
            ]
        if holding:
            raise ConfigError(f"{redact_url(url)}: canonical tables already hold data ({', '.join(holding)}); nothing changed")
        create_tables(engine)
    finally:
        engine.dispose()
    return InitResult(created=[name for name in TABLES if name not in existing], existing=existing)


def import_csv(
    url: str,
    table: str,
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    date_format: str | None = None,
    timezone: str = "UTC",
    ignore_extra: bool = False,
    reject_file: str | Path | None = None,
    derive_customers: bool = False,
    chunk_size: int = CHUNK_ROWS,
    mode: str = "insert",
) -> ImportResult:
    """Import the CSV file ``path`` into canonical ``table`` of the database at ``url``.

    The rules are in this module's docstring.  Raises :class:`CsvImportError` (nothing
    imported) for bad rows without ``reject_file``, :class:`ConfigError` for a bad argument, a
    missing file or table, or an unreadable file.
    """
    if table not in TABLES:
        raise ConfigError(f"unknown table {table!r} (one of: {', '.join(TABLES)})")
    if derive_customers and table != "orders":
        raise ConfigError(f"--derive-customers: applies to orders only, not to {table}")
    if mode not in MODES:
        raise ConfigError(f"--mode: {mode!r} is not one of {', '.join(MODES)}")
    zone = _zone(timezone)
    path = Path(path)
    engine = open_target(url)
    try:
        with _Rejects(reject_file) as rejects, engine.begin() as connection:
            job = _Import(connection, TABLES[table], path, rejects, url=url, derive_customers=derive_customers, mode=mode)
            job.run(mapping or {}, date_format, zone, ignore_extra, chunk_size)
            if rejects.count and rejects.target is None:
                raise CsvImportError(path, rejects.listed, rejects.count, rejects.rows)
        return ImportResult(
            table=table,
            rows_read=job.rows_read,
            rows_imported=job.rows_imported,
            rows_rejected=rejects.rows,
            customers_derived=job.customers_derived,
            reject_file=rejects.target,
            rows_updated=job.rows_updated,
            rows_skipped=job.rows_skipped,
            rows_replaced=job.rows_replaced,
            mode=mode,
        )
    except IntegrityError as exc:
        detail = str(exc.orig).strip().splitlines()[0]
        raise ConfigError(f"{path}: the database refused the import ({detail}); nothing was imported") from None
    finally:
        engine.dispose()


def _zone(name: str) -> ZoneInfo | None:
    """The zone of naive date-times in the file; None for UTC (nothing to convert)."""
    if name.upper() == "UTC":
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"--timezone: unknown timezone {name!r}") from None


def _parser(column: Column, date_format: str | None, zone: ZoneInfo | None) -> Callable[[str], Any]:
    """A function from a non-empty field to the column's Python value; ValueError says why not."""
    kind = column.type
    if isinstance(kind, Boolean):

        def parse(text: str) -> bool:
            try:
                return _BOOLEANS[text.strip().lower()]
            except KeyError:
                raise ValueError(f"not a boolean (true/false, 1/0, yes/no): {text!r}") from None

    elif isinstance(kind, Integer):
        bits = 64 if isinstance(kind, BigInteger) else 32

        def parse(text: str) -> int:
            if not _INTEGER.fullmatch(text.strip()):
                raise ValueError(f"not an integer: {text!r}")
            value = int(text)
            if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
                raise ValueError(f"out of range of a {bits}-bit integer: {text!r}")
            return value

    elif isinstance(kind, Float):

        def parse(text: str) -> float:
            if not _NUMBER.fullmatch(text.strip()):
                raise ValueError(f"not a number: {text!r}")
            return float(text)

    elif isinstance(kind, DateTime):
        expected = f"format {date_format!r}" if date_format else "ISO 8601"

        def parse(text: str) -> datetime:
            try:
                value = datetime.strptime(text.strip(), date_format) if date_format else datetime.fromisoformat(text.strip())
            except ValueError:
                raise ValueError(f"not a date-time in {expected}: {text!r}") from None
            if value.tzinfo is None and zone is not None:
                value = value.replace(tzinfo=zone)
            return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value

    elif isinstance(kind, String):
        length = kind.length

        def parse(text: str) -> str:
            if "\x00" in text:
                raise ValueError("contains a NUL character")
            if length is not None and len(text) > length:
                raise ValueError(f"longer than {length} characters ({len(text)})")
            return text

    else:  # the schema uses only the types above
        raise TypeError(f"{column}: no CSV parser for {kind!r}")
    return parse


class _Slow(Exception):
    """A column parser cannot vouch for a chunk: it is typed line by line (see ``_Import.parse``)."""


# Whole columns of a chunk, one field a line, matched at once. Each line's pattern is atomic and
# unambiguous, so that a failing line costs no backtracking into the lines before it.
_INTEGER_LINES = re.compile(r"(?>[+-]?\d+)?(?:\n(?>[+-]?\d+)?)*")
_NUMBER_TEXT = r"(?>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
_NUMBER_LINES = re.compile(f"{_NUMBER_TEXT}?(?:\\n{_NUMBER_TEXT}?)*")


def _column_parser(column: Column, date_format: str | None, zone: ZoneInfo | None, required: bool) -> Callable[[list[str]], list[Any]]:
    """A function from a chunk's fields of one column to their values, as :func:`_parser` and
    ``_Import.parse`` give them, that raises :class:`_Slow` at anything it does not vouch for:
    a value :func:`_parser` would refuse, a padded or blank-but-not-empty field, an empty field
    of a required column."""
    kind, default = column.type, _default(column)

    def lines(texts: list[str], pattern: re.Pattern[str]) -> None:
        joined = "".join(texts)
        # Nothing but ASCII digits (and dots, for numbers: float() refuses what the pattern would)
        # is the common case, tested faster than by the pattern.
        if joined and not (joined.isascii() and (joined if pattern is _INTEGER_LINES else joined.replace(".", "")).isdigit()):
            joined = "\n".join(texts)
            if joined.count("\n") != len(texts) - 1 or not pattern.fullmatch(joined):
                raise _Slow  # a field with a line break, or one that is not a plain number
        if required and "" in texts:
            raise _Slow

    if isinstance(kind, Boolean):

        def parse(texts: list[str]) -> list[Any]:
            if required and "" in texts:
                raise _Slow
            try:
                return [_BOOLEANS[text.lower()] if text else default for text in texts]
            except KeyError:
                raise _Slow from None

    elif isinstance(kind, Integer):
        bits = 64 if isinstance(kind, BigInteger) else 32

        def parse(texts: list[str]) -> list[Any]:
            lines(texts, _INTEGER_LINES)
            values = [int(text) if text else default for text in texts] if "" in texts else list(map(int, texts))
            present = _present(values)
            if present and not (-(2 ** (bits - 1)) <= min(present) and max(present) < 2 ** (bits - 1)):
                raise _Slow
            return values

    elif isinstance(kind, Float):

        def parse(texts: list[str]) -> list[Any]:
            lines(texts, _NUMBER_LINES)
            try:
                return [float(text) if text else default for text in texts] if "" in texts else list(map(float, texts))
            except ValueError:  # such as "1.2.3"
                raise _Slow from None

    elif isinstance(kind, DateTime):
        fallback = _parser(column, date_format, zone)

        def parse(texts: list[str]) -> list[Any]:
            if date_format is not None or zone is not None:
                raise _Slow
            if required and "" in texts:
                raise _Slow
            try:
                if "" in texts:
                    values = [datetime.fromisoformat(text) if text else default for text in texts]
                else:
                    values = list(map(datetime.fromisoformat, texts))
            except ValueError:
                raise _Slow from None
            if set(map(_TZINFO, _present(values))) - {None}:
                return [fallback(text) if text else default for text in texts]  # offsets to UTC
            return values

    elif isinstance(kind, String):
        length = kind.length

        def parse(texts: list[str]) -> list[Any]:
            if "\x00" in "".join(texts) or (length is not None and max(map(len, texts)) > length):
                raise _Slow
            if "" not in texts and not any(map(str.isspace, texts)):
                return list(texts)
            if required:
                raise _Slow
            return [text if text.strip() else default for text in texts]

    else:  # the schema uses only the types above
        raise TypeError(f"{column}: no CSV parser for {kind!r}")
    return parse


_TZINFO = attrgetter("tzinfo")


def _present(values: list[Any]) -> list[Any]:
    """The values that are not None (the list itself when none is)."""
    return [value for value in values if value is not None] if None in values else values


def _default(column: Column) -> Any:
    """The column's scalar default, or None."""
    return column.default.arg if column.default is not None and column.default.is_scalar else None


@dataclass
class _Row:
    line: int
    fields: list[str]
    values: dict[str, Any]
    errors: list[RowError] = field(default_factory=list)


@dataclass
class _Columns:
    """A chunk the column parsers vouched for, kept as one list of values per column (no object
    per line: per-line objects and dicts were most of an import's time)."""

    records: list[tuple[int, list[str]]]  # (line, fields), for the lines that go the slow way after all
    values: dict[str, list[Any]]  # column name -> its value on each line, in the order of the lines

    def rows(self) -> list[_Row]:
        """The same chunk line by line."""
        names, lines = list(self.values), zip(*self.values.values())
        return [_Row(line, fields, dict(zip(names, typed))) for (line, fields), typed in zip(self.records, lines)]


class _Rejects:
    """Collects the problems: the first few for the error message, all in the reject file.

    The reject file is written next to its target and renamed into place only on success.
    """

    def __init__(self, target: str | Path | None) -> None:
        self.target = Path(target) if target is not None else None
        self.listed: list[RowError] = []
        self.count = 0
        self.rows = 0
        self._stream = None
        self._writer = None

    def __enter__(self) -> Self:
        if self.target is not None:
            try:
                handle, name = tempfile.mkstemp(dir=self.target.parent, prefix=f".{self.target.name}.", suffix=".tmp")
            except OSError as exc:
                raise ConfigError(f"--reject-file: cannot write {self.target}: {exc.strerror}") from None
            self._stream = open(handle, "w", newline="", encoding="utf-8")
            self._temporary = Path(name)
            self._writer = csv.writer(self._stream)
        return self

    def start(self, header: list[str]) -> None:
        if self._writer is not None:
            self._writer.writerow(["line", "error", *header])

    def add(self, errors: list[RowError], fields: list[str] | None = None) -> None:
        """Record a bad row's problems (``fields`` None: a problem of the header)."""
        self.listed.extend(errors[: MAX_LISTED - len(self.listed)])
        self.count += len(errors)
        if fields is not None:
            self.rows += 1
            if self._writer is not None:
                self._writer.writerow([errors[0].line, "; ".join(e.message() for e in errors), *fields])

    def __exit__(self, kind, _value, _traceback) -> None:
        if self._stream is None:
            return
        self._stream.close()
        if kind is None:
            os.replace(self._temporary, self.target)
        else:
            self._temporary.unlink(missing_ok=True)


def _records(path: Path, size: int) -> Iterator[list[tuple[int, list[str]]]]:
    """The non-blank records as (line number of the record's first line, fields): the header
    alone, then chunks of ``size`` records."""
    try:
        # Decoded by the text layer in blocks (decoding line by line cost a sixth of an import);
        # bad bytes are then found at their line by a second, slow pass.
        with open(path, encoding="utf-8-sig", newline="") as stream:
            reader = csv.reader(stream, strict=True)
            chunk: list[tuple[int, list[str]]] = []
            wanted, read = 1, 0  # records wanted in this chunk, lines read before this block
            # Read in blocks (a generator step per record was a tenth of an import).
            while block := list(islice(reader, wanted - len(chunk))):
                if reader.line_num - read == len(block):  # a line a record
                    numbered = zip(range(read + 1, reader.line_num + 1), block)
                else:
                    numbered = _numbered(block, read + 1)
                read = reader.line_num
                chunk.extend(numbered if [] not in block else (record for record in numbered if record[1]))
                if len(chunk) == wanted:
                    yield chunk
                    chunk, wanted = [], max(size, 1)
            if chunk:
                yield chunk
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(_not_utf8(path)) from None
    except csv.Error:
        raise ConfigError(_not_csv(path)) from None


_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # as a text file opened with newline="" splits lines


def _numbered(block: list[list[str]], line: int) -> list[tuple[int, list[str]]]:
    """(line, fields) for records that may hold quoted line breaks, from the first one's line."""
    numbered = []
    for fields in block:
        numbered.append((line, fields))
        line += 1 + sum(len(_LINE_BREAK.findall(text)) for text in fields)
    return numbered


def _not_csv(path: Path) -> str:
    """The message for a file that is not valid CSV, naming the line where the bad record starts
    (a second pass, record by record)."""
    line = 1
    with open(path, encoding="utf-8-sig", newline="") as stream:
        reader = csv.reader(stream, strict=True)
        try:
            for _fields in reader:
                line = reader.line_num + 1
        except csv.Error as exc:
            return f"{path}:{line}: not valid CSV: {exc}"
    return f"{path}: not valid CSV"


def _not_utf8(path: Path) -> str:
    """The message for a file that is not UTF-8 text, naming the first bad line and byte."""
    with open(path, "rb") as stream:
        for number, raw in enumerate(stream, 1):
            try:
                raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                return f"{path}:{number}: not UTF-8 text (byte {raw[exc.start]:#04x})"
    return f"{path}: not UTF-8 text"


class _Import:
    """One import: the header's plan, then chunk after chunk of rows checked and inserted."""

    def __init__(
        self, connection: Connection, table: Table, path: Path, rejects: _Rejects, *, url: str, derive_customers: bool, mode: str = "insert"
    ) -> None:
        self.connection = connection
        self.mode = mode
        self.rows_updated = self.rows_skipped = self.rows_replaced = 0
        self.occurrences: dict[bytes, int] = {}  # content digest -> lines with that content so far
        # Primary keys this import wrote (values of a one-column key, else tuples): a repeat is a duplicate line.
        self.inserted: set[Any] = set()
        self.referred: dict[tuple[str, str], set[Any]] = {}  # (table, column) -> values found there (_referred)
        self.table = table
        self.path = path
        self.rejects = rejects
        self.url = url
        self.derive = derive_customers
        self.stamp = utcnow()  # created_at/updated_at of derived customers, and how to find them again
        self.rows_read = 0
        self.rows_imported = 0
        self.customers_derived = 0

    # -- the header -------------------------------------------------------------------------

    def plan(self, header: list[str], mapping: Mapping[str, str], ignore_extra: bool) -> None:
        """Decide which field feeds which column; every problem is an error of line 1."""
        table, errors = self.table, []
        header = [name.strip() for name in header]
        for their, our in mapping.items():
            if their not in header:
                errors.append(RowError(1, None, f"--map {their}={our}: the header has no column {their!r}"))
            if our not in table.c:
                errors.append(RowError(1, None, f"--map {their}={our}: {table.name} has no column {our!r}"))
        self.positions: list[tuple[int, Column]] = []
        source_of: dict[str, str] = {}
        for index, name in enumerate(header):
            if header.index(name) != index:
                errors.append(RowError(1, name, "appears twice in the header"))
                continue
            target = mapping.get(name, name)
            if target not in table.c:
                if not ignore_extra and name not in mapping:
                    errors.append(
                        RowError(1, name, f"not a column of {table.name} (map it with --map {name}=COLUMN, or pass --ignore-extra)")
                    )
                continue
            if target in source_of:
                errors.append(RowError(1, target, f"given by both {source_of[target]!r} and {name!r}"))
                continue
            source_of[target] = name
            self.positions.append((index, table.c[target]))
        auto = table.autoincrement_column
        self.derived_key = auto if auto is not None and auto.name not in source_of else None
        self.required = {c.name for c in table.c if not c.nullable and c.default is None and c is not self.derived_key}
        for name in sorted(self.required - set(source_of), key=list(table.c.keys()).index):
            errors.append(RowError(1, name, f"required, but the file has no such column (map one with --map THEIR={name})"))
        if errors:
            self.rejects.add(errors)
            raise CsvImportError(self.path, self.rejects.listed, self.rejects.count, 0)
        self.width = len(header)
        self.absent = {c.name: _default(c) for c in table.c if c.name not in source_of and _default(c) is not None}
        in_file = set(source_of) | ({self.derived_key.name} if self.derived_key is not None else set())
        self.content_columns = [c for _i, c in self.positions] + [table.c[name] for name in sorted(self.absent)]
        self.future = [table.c[name] for name in NOT_IN_THE_FUTURE.get(table.name, ()) if name in in_file]
        self.non_negative = [table.c[name] for name in NON_NEGATIVE.get(table.name, ()) if name in in_file]
        keys = [tuple(table.primary_key.columns)] + [
            tuple(c.columns) for c in table.constraints if isinstance(c, UniqueConstraint)
        ]
        self.unique_keys = [key for key in keys if {c.name for c in key} <= in_file]
        self.references = [(fk.parent, fk.column) for fk in table.foreign_keys if fk.parent.name in in_file]
        self.references.sort(key=lambda pair: list(table.c.keys()).index(pair[0].name))
        self._check_target_tables()

    def _check_target_tables(self) -> None:
        """The tables this import writes and reads must exist with the columns it uses."""
        needed = {self.table.name: {c.name for _i, c in self.positions} | set(self.absent)}
        if self.derived_key is not None:
            needed[self.table.name].add(self.derived_key.name)
        for _column, referred in self.references:
            needed.setdefault(referred.table.name, set()).add(referred.name)
        if self.derive:
            needed.setdefault("customers", set()).update({"customer_id", "acquired_at", "created_at", "updated_at"})
        inspector = inspect(self.connection)
        for name, columns in needed.items():
            if not inspector.has_table(name):
                raise ConfigError(
                    f"{redact_url(self.url)}: no table {name} (create the canonical tables with 'crmmetrics source init URL')"
                )
            # The columns of a query with no rows: portable where reflection is not (duckdb-engine).
            present = self.connection.execute(select(text("*")).select_from(sql_table(name)).limit(0)).keys()
            missing = sorted(columns - set(present))
            if missing:
                raise ConfigError(f"{redact_url(self.url)}: table {name} has no column {', '.join(missing)}")

    # -- the rows ---------------------------------------------------------------------------

    def run(self, mapping: Mapping[str, str], date_format: str | None, zone: ZoneInfo | None, ignore_extra: bool, chunk_size: int) -> None:
        with closing(_records(self.path, chunk_size)) as records:
            first = next(records, None)
            if first is None:
                raise ConfigError(f"{self.path}: empty file, expected a header line")
            header = first[0][1]
            self.plan(header, mapping, ignore_extra)
            self.rejects.start(header)
            if self.mode == "replace":
                self.rows_replaced = self.connection.execute(self.table.delete()).rowcount
            deferred = self._defer_indexes()
            self.parsers = [(index, column, _parser(column, date_format, zone)) for index, column in self.positions]
            self.column_parsers = [
                (index, column, _column_parser(column, date_format, zone, column.name in self.required))
                for index, column in self.positions
            ]
            for chunk in records:
                self.rows_read += len(chunk)
                self.write(self.parse_chunk(chunk))
        for statement in deferred:
            self.connection.exec_driver_sql(statement)
        if self.customers_derived:  # after the indexes: it looks up each derived customer's orders
            self._date_derived_customers()

    def _defer_indexes(self) -> list[str]:
        """SQLite, a large import: drop the table's plain (not unique) indexes, and return the
        statements that build them again at the end of the import, in its transaction (a failed
        import rolls the drop back too). Building an index once over all rows is several times
        cheaper than keeping it current row by row (benchmarks/bench_import.py); a small import
        into a large table keeps them, as rebuilding would cost more."""
        if self.connection.dialect.name != "sqlite":
            return []
        with open(self.path, "rb") as stream:
            lines = sum(block.count(b"\n") for block in iter(lambda: stream.read(1 << 20), b""))
        if lines < DEFER_INDEXES_FROM_ROWS:
            return []
        name = self.table.name
        if lines < self.connection.exec_driver_sql(f'SELECT count(*) FROM "{name}"').scalar() // 4:
            return []
        plain = {row[1] for row in self.connection.exec_driver_sql(f'PRAGMA index_list("{name}")') if not row[2]}
        found = self.connection.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (name,)
        ).all()
        driver = self.connection.connection.driver_connection
        if not driver.in_transaction:
            # The sqlite3 module opens its transaction at the first INSERT, not before DDL: without
            # this BEGIN the DROP INDEX would be committed at once and survive a failed import.
            driver.execute("BEGIN")
        statements = []
        for index, statement in found:
            if index in plain:
                self.connection.exec_driver_sql(f'DROP INDEX "{index}"')
                statements.append(statement)
        return statements

    def parse_chunk(self, records: list[tuple[int, list[str]]]) -> _Columns | list[_Row]:
        """Type a chunk of lines column by column; a chunk the column parsers cannot vouch for
        (any problem, or anything unusual such as padded fields) is typed line by line by
        :meth:`parse`, which finds and words the problems: both give the same values."""
        if not records:
            return []
        try:
            if set(map(len, map(itemgetter(1), records))) != {self.width}:
                raise _Slow
            columns = list(zip(*map(itemgetter(1), records)))
            values = {name: [default] * len(records) for name, default in self.absent.items()}
            for index, column, parse in self.column_parsers:
                values[column.name] = parse(list(columns[index]))
            for column in self.future:
                present = _present(values[column.name])
                if present and max(present) > self.stamp:
                    raise _Slow
            for column in self.non_negative:
                present = _present(values[column.name])
                if present and min(present) < 0:
                    raise _Slow
        except _Slow:
            return [self.parse(line, fields) for line, fields in records]
        return _Columns(records, values)

    def parse(self, line: int, fields: list[str]) -> _Row:
        """Type one line; problems of single fields are collected, not raised."""
        if len(fields) != self.width:
            return _Row(line, fields, {}, [RowError(line, None, f"expected {self.width} fields, found {len(fields)}")])
        row = _Row(line, fields, dict(self.absent))
        for index, column, parse in self.parsers:
            text = fields[index]
            if not text.strip():
                if column.name in self.required:
                    row.errors.append(RowError(line, column.name, "missing required value"))
                row.values[column.name] = _default(column)
                continue
            try:
                row.values[column.name] = parse(text)
            except ValueError as exc:
                row.errors.append(RowError(line, column.name, str(exc)))
        self._check_plausible(row)
        return row

    def _check_plausible(self, row: _Row) -> None:
        """Refuse what no CRM holds: events after the import time, negative amounts (module docs)."""
        for column in self.future:
            value = row.values.get(column.name)
            if value is not None and value > self.stamp:
                row.errors.append(
                    RowError(row.line, column.name, f"{value.isoformat(sep=' ')} is after the import time ({self.stamp:%Y-%m-%d %H:%M} UTC)")
                )
        for column in self.non_negative:
            value = row.values.get(column.name)
            if value is not None and value < 0:
                row.errors.append(
                    RowError(
                        row.line, column.name,
                        f"negative ({value:g}): {self.table.name} does not hold returns or credits as negative values "
                        f"(only {' and '.join(RETURNS_ALLOWED)} do)",
                    )
                )

    def _derive_keys(self, columns: list[list[Any]], count: int) -> list[int]:
        """Keys for ``count`` lines from their content (the values of ``content_columns``, one
        list per column) and each content's occurrences in the file so far (see the module docs)."""
        contents = map("\x1f".join, zip(*map(_canonical_column, columns))) if columns else [""] * count
        prefix = f"{self.table.name}\x1e"
        modulus = 2 ** (63 if isinstance(self.derived_key.type, BigInteger) else 31) - 1
        sha256, occurrences, keys = hashlib.sha256, self.occurrences, []
        for content in contents:
            digest = sha256((prefix + content).encode()).digest()
            occurrence = occurrences.get(digest, 0)
            occurrences[digest] = occurrence + 1
            keyed = sha256(digest + occurrence.to_bytes(8, "big")).digest()
            keys.append(int.from_bytes(keyed[:8], "big") % modulus + 1)  # 1 .. 2**bits - 1
        return keys

    def write(self, chunk: _Columns | list[_Row]) -> None:
        """Check a chunk's keys against itself and the database, then insert its good rows.

        A chunk of columns whose keys are new and whose references exist is inserted as it is;
        any other chunk is decided line by line (:meth:`_write_rows`).
        """
        key = self.derived_key
        if isinstance(chunk, _Columns):
            if key is not None:
                count = len(chunk.records)
                chunk.values[key.name] = self._derive_keys([chunk.values[c.name] for c in self.content_columns], count)
            if self._write_columns(chunk.values):
                return
            chunk = chunk.rows()
        elif key is not None:
            good = [row for row in chunk if not row.errors]
            derived = self._derive_keys([[row.values.get(c.name) for row in good] for c in self.content_columns], len(good))
            for row, value in zip(good, derived):
                row.values[key.name] = value
        self._write_rows(chunk)

    def _write_columns(self, values: dict[str, list[Any]]) -> bool:
        """Insert a chunk of columns if nothing in it needs a decision line by line: no key that
        repeats in the chunk or is in the table already, no reference to a missing row other
        than customers to derive. False (and nothing done) otherwise."""
        for columns in self.unique_keys:
            if len(columns) == 1:
                keys = _present(values[columns[0].name])
            else:
                keys = [key for key in zip(*(values[c.name] for c in columns)) if None not in key]
            distinct = set(keys)
            if len(distinct) != len(keys) or self._existing_values(columns, distinct):
                return False
        missing_customers: set[Any] = set()
        for column, referred in self.references:
            wanted = set(values[column.name])
            wanted.discard(None)
            missing = wanted - self._referred(referred, wanted)
            if not missing:
                continue
            if not (self.derive and column.name == "customer_id"):
                return False
            missing_customers = missing
        if missing_customers:
            self._derive_customers(values["customer_id"], values["ordered_at"], missing_customers)
        names = list(values)
        self._insert(self.table, names, list(values.values()))
        count = len(values[names[0]])
        self.rows_imported += count
        self._remember([values.get(c.name, [None] * count) for c in self.table.primary_key.columns])
        return True

    def _write_rows(self, chunk: list[_Row]) -> None:
        """Check a chunk's keys line by line against itself and the database, word each problem
        at its line, then insert the good rows and update (upsert) the existing ones.

        Inserting continues after a bad row even when the import will be rolled back, so that
        later chunks are checked against everything before them.
        """
        same, changed = self._check_unique([row for row in chunk if not row.errors])
        existing = same + changed
        if same and self.mode == "insert":
            first = min(same, key=lambda row: row.line)
            key = tuple(first.values[c.name] for c in self.table.primary_key.columns)
            raise ReimportError(
                f"{self.path}:{first.line}: this row is already in {self.table.name} (key {_show(key)}): the file was "
                "imported before? Nothing was imported; use --mode append (only new rows), upsert or replace"
            )
        if self.mode == "append":
            self.rows_skipped += len(existing)
        updates = [row for row in existing if not row.errors] if self.mode == "upsert" else []
        present = {id(row) for row in existing}
        chunk = [row for row in chunk if id(row) not in present or row.errors]
        missing_customers = self._check_references([row for row in chunk + updates if not row.errors])
        for row in chunk:
            if row.errors:
                self.rejects.add(row.errors, row.fields)
        good = [row for row in chunk if not row.errors]
        updates = [row for row in updates if not row.errors]
        if missing_customers:
            ordering = good + updates
            self._derive_customers([row.values["customer_id"] for row in ordering], [row.values["ordered_at"] for row in ordering],
                                   missing_customers)
        if updates:
            keys = list(self.table.primary_key.columns)
            statement = (
                update(self.table)
                .where(*(column == bindparam(f"_key_{column.name}") for column in keys))
                .values({name: bindparam(name) for name in updates[0].values if name not in {c.name for c in keys}})
            )
            self.connection.execute(
                statement, [{**row.values, **{f"_key_{c.name}": row.values[c.name] for c in keys}} for row in updates]
            )
            self.rows_updated += len(updates)
        if not good:
            return
        names = list(good[0].values)
        self._insert(self.table, names, [[row.values[name] for row in good] for name in names])
        self.rows_imported += len(good)
        self._remember([[row.values.get(c.name) for row in good] for c in self.table.primary_key.columns])

    def _remember(self, keys: list[list[Any]]) -> None:
        """Add the primary keys just written (one list of values per key column) to ``inserted``."""
        self.inserted.update(keys[0] if len(keys) == 1 else zip(*keys))

    def _insert(self, table: Table, names: list[str], columns: list[list[Any]]) -> None:
        """Insert checked rows given as one list of values per column of ``names``. SQLite: one
        executemany of tuples on the driver, the values converted column by column as
        SQLAlchemy's bind processors would (SQLAlchemy's per-row parameter handling cost more
        than the insert itself); PostgreSQL (psycopg): COPY, in the import's transaction;
        elsewhere SQLAlchemy Core."""
        dialect = self.connection.dialect
        quoted = ", ".join(f'"{name}"' for name in names)
        if dialect.name == "postgresql" and dialect.driver == "psycopg":
            import psycopg

            statement = f'COPY "{table.name}" ({quoted}) FROM STDIN'
            try:
                with self.connection.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
                    for row in zip(*columns):
                        copy.write_row(row)
            except psycopg.errors.IntegrityError as exc:  # worded like SQLAlchemy's (import_csv)
                raise IntegrityError(statement, None, exc) from None
            return
        if dialect.name != "sqlite":
            self.connection.execute(table.insert(), [dict(zip(names, row)) for row in zip(*columns)])
            return
        columns = [_sqlite_values(table.c[name], values, dialect) for name, values in zip(names, columns)]
        statement = f'INSERT INTO "{table.name}" ({quoted}) VALUES ({", ".join("?" * len(names))})'
        self.connection.exec_driver_sql(statement, list(zip(*columns)))

    def _existing(self, columns: tuple[Column, ...], keys: set[tuple]) -> set[tuple]:
        """Which of ``keys`` (tuples of values of ``columns``) are in the database already."""
        if len(columns) == 1:
            return {(value,) for value in self._existing_values(columns, {key[0] for key in keys})}
        return self._existing_values(columns, keys)

    def _existing_values(self, columns: tuple[Column, ...], keys: set) -> set:
        """Which of ``keys`` (values of the one column, tuples of several) are in the database already."""
        if not keys:
            return set()
        if len(columns) == 1 and self.connection.dialect.name == "sqlite" and set(map(type, keys)) <= {int, str}:
            # One JSON parameter instead of an IN list that SQLAlchemy renders value by value.
            # On the driver's cursor: SQLAlchemy's result rows cost more than the query.
            column, driver = columns[0], self.connection.connection.driver_connection
            if set(map(type, keys)) == {int}:
                # Keys above the column's largest (a file in key order) are not there; its index gives that at once.
                largest = driver.execute(f'SELECT max("{column.name}") FROM "{column.table.name}"').fetchone()[0]
                if largest is None or largest < min(keys):
                    return set()
            found = driver.execute(
                f'SELECT "{column.name}" FROM "{column.table.name}" WHERE "{column.name}" IN (SELECT value FROM json_each(?))',
                (json.dumps(list(keys)),),
            )
            return set(map(itemgetter(0), found.fetchall()))
        if len(columns) == 1:
            return set(self.connection.execute(select(columns[0]).where(columns[0].in_(list(keys)))).scalars())
        return {tuple(found) for found in self.connection.execute(select(*columns).where(tuple_(*columns).in_(list(keys))))}

    def _referred(self, referred: Column, wanted: set) -> set:
        """Which of ``wanted`` are values of ``referred`` in the database. Those found are
        remembered, since no row is deleted once chunks are written (a replace deletes before):
        most chunks of a large file refer to rows that earlier chunks found."""
        known = self.referred.setdefault((referred.table.name, referred.name), set())
        known |= self._existing_values((referred,), wanted - known)
        return wanted & known

    def _check_unique(self, rows: list[_Row]) -> tuple[list[_Row], list[_Row]]:
        """Flag keys that repeat in the file or meet another row.

        Returns the rows whose primary key is already in the table, split into those with the
        same content there (a re-import) and those with other content; what happens to them
        depends on the mode.
        """
        same: list[_Row] = []
        changed: list[_Row] = []
        primary = tuple(self.table.primary_key.columns)
        for columns in self.unique_keys:
            names = [c.name for c in columns]
            label = names[0] if len(names) == 1 else f"({', '.join(names)})"
            first: dict[tuple, _Row] = {}
            for row in rows:
                key = tuple(row.values[name] for name in names)
                if None in key:
                    continue
                if key in first:
                    row.errors.append(RowError(row.line, label, f"duplicate key {_show(key)}: also on line {first[key].line}"))
                else:
                    first[key] = row
            found = self._existing(columns, set(first))
            if columns == primary:
                written = {key for key in found if (key[0] if len(key) == 1 else key) in self.inserted}
                for key in written:  # an earlier line of this file, in an earlier chunk
                    first[key].errors.append(RowError(first[key].line, label, f"duplicate key {_show(key)}: already in {self.table.name}"))
                equal, other = self._compare(found - written, first)
                same.extend(equal)
                if self.derived_key is not None or self.mode == "insert":
                    for row in other:
                        what = (
                            f"derived key {_show(tuple(row.values[n] for n in names))} is taken by a different row of "
                            f"{self.table.name}; give the {label} column"
                            if self.derived_key is not None
                            else f"duplicate key {_show(tuple(row.values[n] for n in names))}: already in {self.table.name}"
                        )
                        row.errors.append(RowError(row.line, label, what))
                else:
                    changed.extend(other)
                continue
            present = {id(row) for row in same + changed}
            for key in found:
                row = first[key]
                if id(row) in present and self.mode in ("append", "upsert"):
                    continue  # the same row again: its unique columns are its own
                row.errors.append(RowError(row.line, label, f"duplicate key {_show(key)}: already in {self.table.name}"))
        return same, changed

    def _compare(self, found: set[tuple], rows: Mapping[tuple, _Row]) -> tuple[list[_Row], list[_Row]]:
        """The lines whose key is in the table: (same content as the stored row, other content)."""
        if not found:
            return [], []
        keys = tuple(self.table.primary_key.columns)
        match = keys[0].in_([k[0] for k in found]) if len(keys) == 1 else tuple_(*keys).in_(list(found))
        columns = [c for c in self.content_columns if c not in keys]
        stored = {
            tuple(row[: len(keys)]): tuple(_canonical(v) for v in row[len(keys):])
            for row in self.connection.execute(select(*keys, *columns).where(match))
        }
        equal, other = [], []
        for key in sorted(found, key=lambda k: rows[k].line):
            line = rows[key]
            mine = tuple(_canonical(line.values.get(c.name)) for c in columns)
            (equal if stored.get(key) == mine else other).append(line)
        return equal, other

    def _check_references(self, rows: list[_Row]) -> set[Any]:
        """Flag references to rows that do not exist; returns the customers to derive."""
        to_derive: set[Any] = set()
        for column, referred in self.references:
            wanted = {row.values[column.name] for row in rows if row.values[column.name] is not None}
            missing = wanted - self._referred(referred, wanted)
            if not missing:
                continue
            if self.derive and column.name == "customer_id":
                to_derive |= missing
                continue
            self_reference = referred.table is self.table
            earlier: set[Any] = set()
            for row in rows:
                value = row.values[column.name]
                if value in missing and value not in earlier:
                    where = f"{referred.table.name}" + (" (nor on an earlier line of the file)" if self_reference else "")
                    row.errors.append(RowError(row.line, column.name, f"{_show((value,))} not found in {where}"))
                if self_reference and not row.errors:
                    earlier.add(row.values.get(referred.name))  # None while the key is still to be derived
        return to_derive

    def _derive_customers(self, customer_ids: list[Any], ordered_at: list[datetime], missing: set[Any]) -> None:
        """Create the customers that the chunk's good orders (their customers and times) need,
        acquired at their first order."""
        first_order: dict[Any, datetime] = {}
        for customer, ordered in zip(customer_ids, ordered_at):
            if customer in missing:
                first_order[customer] = min(first_order.get(customer, ordered), ordered)
        customers, count = TABLES["customers"], len(first_order)
        self._insert(customers, ["customer_id", "acquired_at", "created_at", "updated_at"],
                     [list(first_order), list(first_order.values()), [self.stamp] * count, [self.stamp] * count])
        self.customers_derived += count

    def _date_derived_customers(self) -> None:
        """An unsorted file can bring a customer's first order in a later chunk: date it then."""
        customers, orders = TABLES["customers"], TABLES["orders"]
        first_order = (
            select(func.min(orders.c.ordered_at)).where(orders.c.customer_id == customers.c.customer_id).scalar_subquery()
        )
        self.connection.execute(
            update(customers)
            .where(customers.c.created_at == self.stamp, customers.c.updated_at == self.stamp, customers.c.acquired_at > first_order)
            .values(acquired_at=first_order)
        )


def _canonical(value: Any) -> str:
    """A value as text for content hashes and comparisons, the same from a file and from the database."""
    if value is None:
        return "\x00"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat()
    return str(value)


def _canonical_column(values: list[Any]) -> list[str]:
    """:func:`_canonical` of each value, a column of one plain type at once."""
    kinds = set(map(type, values))
    if kinds == {float}:
        return list(map(float.__repr__, values))
    if kinds == {int}:
        return list(map(int.__repr__, values))
    if kinds == {str}:
        return values
    if kinds == {datetime} and set(map(_TZINFO, values)) == {None}:
        return list(map(datetime.isoformat, values))
    return list(map(_canonical, values))


# SQLAlchemy's SQLite DATETIME storage format (its bind processor) written by isoformat: that
# processor, a dict and a format per value, was a tenth of an import (tests/test_import.py proves equality).
_SQLITE_DATETIME = methodcaller("isoformat", " ", "microseconds")


def _sqlite_values(column: Column, values: list[Any], dialect: Any) -> list[Any]:
    """A column's values as the SQLite driver gets them from SQLAlchemy (its bind processor)."""
    kind = column.type.dialect_impl(dialect)
    if isinstance(kind, sqlite.DATETIME) and kind._storage_format == sqlite.DATETIME._storage_format:
        present = _present(values)
        if set(map(type, present)) <= {datetime} and set(map(_TZINFO, present)) <= {None}:  # naive, as the processor writes them
            texts = list(map(_SQLITE_DATETIME, present))
            if present is values:
                return texts
            it = iter(texts)
            return [None if value is None else next(it) for value in values]
    process = column.type._cached_bind_processor(dialect)
    return list(map(process, values)) if process else values


def _show(key: tuple) -> str:
    return str(key[0]) if len(key) == 1 else "(" + ", ".join(str(value) for value in key) + ")"
