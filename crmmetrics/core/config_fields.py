"""The fields of the config file's tables, checked without a validation library.

Every admin command loads the config, so loading it must stay light: pydantic's import and the
building of its model classes were about half of `crmmetrics metrics list --config`'s start
(docs/operations.md, the CLI start-up rows). A table is a plain dataclass (``kw_only``) whose
fields are declared with the parsers here (``setting(text())``, ``setting(integer(ge=0), 9632)``);
``parse_table`` builds one from what ``tomllib`` read and reports every problem at once.

A parser takes the value as TOML gave it and returns it checked (and converted: a ``${NAME}``
string to an integer, a name to its enum member), or raises ``ValueError`` with a message that
names the value and what was expected. A table may define ``check(self)``, run once its fields
parsed, for rules across fields; its ``ValueError`` is reported against the table's own key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

Parser = Callable[[Any], Any]
T = TypeVar("T")


class TableProblems(Exception):
    """Every problem of one table: (dotted key relative to the table, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(problems)
        self.problems = problems


def setting(parse: Parser, default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field read with ``parse``; without a default or factory the key is required."""
    return dataclasses.field(default=default, default_factory=factory, metadata={"parse": parse})


def _kind(value: Any) -> str:
    """How a message shows the value it refuses: text quoted, a table or an array by its kind."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return repr(value) if isinstance(value, str) else str(value)


def text(check: Callable[[str], Any] | None = None) -> Parser:
    """A string; ``check`` may refuse it with a ValueError."""

    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected text, got {_kind(value)}")
        if check is not None:
            check(value)
        return value

    return parse


def integer(ge: int | None = None, le: int | None = None) -> Parser:
    """An integer within [ge, le]; a string of digits (from ``${NAME}``) is read as one."""

    def parse(value: Any) -> int:
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {_kind(value)}")
        if (ge is not None and value < ge) or (le is not None and value > le):
            bounds = f"from {ge} to {le}" if ge is not None and le is not None else (f"of at least {ge}" if ge is not None else f"of at most {le}")
            raise ValueError(f"{value} is out of range: expected an integer {bounds}")
        return value

    return parse


_BOOLEAN_WORDS = {"true": True, "false": False}


def boolean() -> Parser:
    """true or false; the strings "true" and "false" (from ``${NAME}``) too."""

    def parse(value: Any) -> bool:
        if isinstance(value, str) and value.strip().lower() in _BOOLEAN_WORDS:
            return _BOOLEAN_WORDS[value.strip().lower()]
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {_kind(value)}")
        return value

    return parse


def moment() -> Parser:
    """A TOML date-time, or the same as ISO 8601 text (e.g. 2026-03-10T00:00:00)."""

    def parse(value: Any) -> datetime:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(f"invalid date-time {value!r}: expected e.g. 2026-03-10T00:00:00") from None
        if not isinstance(value, datetime):
            raise ValueError(f"expected a date-time such as 2026-03-10T00:00:00, got {_kind(value)}")
        return value

    return parse


def choice(options: type[Enum] | Iterable[str], what: str = "value") -> Parser:
    """One of ``options``: the members' values of a (string) Enum, which parse to the member."""
    members = {member.value: member for member in options} if isinstance(options, type) else {option: option for option in options}
    expected = ", ".join(repr(name) for name in members)

    def parse(value: Any) -> Any:
        if not isinstance(value, str) or value not in members:
            raise ValueError(f"unknown {what} {_kind(value)}: expected one of {expected}")
        return members[value]

    return parse


def strings(check: Callable[[list[str]], Any] | None = None) -> Parser:
    """An array of strings; ``check`` may refuse the whole list."""

    def parse(value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError(f"expected an array of strings, got {_kind(value)}")
        if check is not None:
            check(value)
        return list(value)

    return parse


def table() -> Parser:
    """A free-form table (a metric's params, a KPI's measure or standard), checked where it is used."""

    def parse(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValueError(f"expected a table, got {_kind(value)}")
        return value

    return parse


def text_or_table() -> Parser:
    """A query as text, or a measure as a table (a ratio KPI's numerator and denominator)."""

    def parse(value: Any) -> str | dict[str, Any]:
        if not isinstance(value, str | dict):
            raise ValueError(f"expected text (a query) or a table (a measure), got {_kind(value)}")
        return value

    return parse


def section(cls: type[T]) -> Callable[[Any], T]:
    """A nested table of type ``cls``."""
    return lambda value: parse_table(cls, value)


def sections(cls: type[T], check_key: Callable[[str], Any] | None = None) -> Callable[[Any], dict[str, T]]:
    """A table of tables of type ``cls`` (``[metrics.KEY]``); ``check_key`` may refuse a key."""

    def parse(value: Any) -> dict[str, T]:
        if not isinstance(value, dict):
            raise ValueError(f"expected a table, got {_kind(value)}")
        problems: list[tuple[str, str]] = []
        parsed = {}
        for key, item in value.items():
            # a refused key's table is not read: the key is the one problem to fix first
            if check_key is None or _read(check_key, key, key, problems) is not _INVALID:
                parsed[key] = _read(section(cls), item, key, problems)
        if problems:
            raise TableProblems(problems)
        return parsed

    return parse


_INVALID = object()


def _read(parse: Parser, value: Any, key: str, problems: list[tuple[str, str]]) -> Any:
    """``parse(value)``; or, when it refuses the value, ``_INVALID`` with its problems added
    under ``key``."""
    try:
        return parse(value)
    except ValueError as exc:
        problems.append((key, str(exc)))
    except TableProblems as exc:
        problems.extend((f"{key}.{where}" if where else key, message) for where, message in exc.problems)
    return _INVALID


def parse_table(cls: type[T], data: Any) -> T:
    """An instance of the dataclass ``cls`` from ``data``, or TableProblems naming every problem."""
    if not isinstance(data, dict):
        raise TableProblems([("", f"expected a table, got {_kind(data)}")])
    fields = {field.name: field for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    problems = [(key, "unknown key") for key in data if key not in fields]
    values = {}
    for name, field in fields.items():
        if name in data:
            values[name] = _read(field.metadata["parse"], data[name], name, problems)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            problems.append((name, "required key is missing"))
    if problems:
        raise TableProblems(problems)
    instance = cls(**values)
    check = getattr(instance, "check", None)
    if check is not None:
        try:
            check()
        except ValueError as exc:
            raise TableProblems([("", str(exc))]) from None
    return instance


def plain(value: Any) -> Any:
    """A parsed table as JSON-ready data (for `config show`): enums by value, date-times in ISO 8601."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    return value
