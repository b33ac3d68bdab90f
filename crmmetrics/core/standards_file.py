"""The standards file: ``[standards.KEY]`` tables an admin writes, read by ``standards import``
(and at start and on every reload when ``service.standards_file`` names one), written by
``standards export``.

It is a configuration file like crmmetrics.toml and lives beside it: reading and writing it
needs only the standards' values (``crmmetrics.standard``), no store, so ``config check`` and a
reload validate it before anything is recorded.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from . import periods
from .errors import ConfigError
from .standard import ADMIN, DEFAULT, AdminStandard, Standard, StandardDefault, describe_target, direction_problem, finite_number, parse_key, parse_target

FILE_FIELDS = ("target", "red", "green", "weight", "owner", "source", "benchmark", "valid_from")


def to_naive_utc(value: date | datetime) -> datetime:
    """A TOML date (its midnight) or datetime (or an ISO text parsed to one) as naive UTC."""
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    return periods.to_naive_utc(value)


def parse_standard(key: str, table: Mapping[str, Any], where: str, registry: Any = None) -> AdminStandard:
    """One ``[standards.KEY]`` table -> AdminStandard; ConfigError naming ``where`` and the key.

    With the ``registry``, thresholds on the wrong side for the metric's direction are named
    as such (rather than as a target on the wrong side of them).
    """
    prefix = f"{where}standards.{key}"
    try:
        metric, dimensions = parse_key(key)
    except ValueError as exc:
        raise ConfigError(f"{prefix}: {exc}") from None
    if not isinstance(table, Mapping):
        raise ConfigError(f"{prefix}: expected a table with target, red and green")
    for name in table:
        if name not in FILE_FIELDS:
            raise ConfigError(f"{prefix}.{name}: unknown key (known: {', '.join(FILE_FIELDS)})")
    for name in ("target", "red", "green"):
        if name not in table:
            raise ConfigError(f"{prefix}.{name}: required key is missing")
    values: dict[str, Any] = {"metric": metric, "dimensions": dimensions}
    try:
        values.update(parse_target(table["target"]))
    except ValueError as exc:
        raise ConfigError(f"{prefix}.target: {exc}") from None
    for name in ("red", "green", "weight", "benchmark"):
        if name in table:
            try:
                values[name] = finite_number(name, table[name])
            except ValueError as exc:
                raise ConfigError(f"{prefix}.{name}: {exc}") from None
    for name in ("owner", "source"):
        if name in table:
            if not isinstance(table[name], str):
                raise ConfigError(f"{prefix}.{name}: expected text, got {table[name]!r}")
            values[name] = table[name]
    valid_from = table.get("valid_from")
    if valid_from is not None and not isinstance(valid_from, (date, datetime)):
        raise ConfigError(f"{prefix}.valid_from: expected a TOML date or date-time (e.g. 2026-07-01), got {valid_from!r}")
    if registry is not None and metric in registry:
        wrong = direction_problem(values["red"], values["green"], registry.get(metric).direction)
        if wrong:
            raise ConfigError(f"{prefix}: {wrong}")
    try:
        spec = StandardDefault(**values)
    except ValueError as exc:
        raise ConfigError(f"{prefix}: {str(exc).split(': ', 1)[-1]}") from None
    return AdminStandard(spec=spec, valid_from=to_naive_utc(valid_from) if valid_from is not None else None)


def load_standards_file(path: str | Path, registry: Any = None) -> list[AdminStandard]:
    """Read a standards file (``[standards.KEY]`` tables); ConfigError on the first problem."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: standards file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read standards file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = [name for name in data if name != "standards"]
    if unknown:
        raise ConfigError(f"{path}: {unknown[0]}: unknown key (a standards file has only [standards.KEY] tables)")
    tables = data.get("standards", {})
    return [parse_standard(key, table, f"{path}: ", registry) for key, table in tables.items()]


def dump_standards_file(standards: Iterable[Standard], titles: Mapping[str, str] | None = None) -> str:
    """A standards file with every standard given (``standards export``); importable as is."""
    import tomlkit

    document = tomlkit.document()
    document.add(tomlkit.comment("crmmetrics standards: edit, then `crmmetrics standards import FILE`."))
    document.add(tomlkit.comment("target: a number, \"previous\", \"previous+N%\" (N% better than the previous period) or"))
    document.add(tomlkit.comment("\"benchmark\" (with benchmark = N); red/green: thresholds; weight: in the scorecard."))
    def number(value: float) -> float | int:
        return int(value) if value.is_integer() else value

    container = tomlkit.table(is_super_table=True)
    for standard in standards:
        spec = standard.spec
        table = tomlkit.table()
        title = (titles or {}).get(spec.metric, "")
        origin = f"default from {standard.changed_by.removeprefix('plugin:')}" if standard.origin == DEFAULT else f"set by {standard.changed_by}"
        table.comment(f"{title + ', ' if title else ''}{origin}")
        target = describe_target(spec)
        table.add("target", number(target) if isinstance(target, float) else target)
        if spec.benchmark is not None:
            table.add("benchmark", number(spec.benchmark))
        table.add("red", number(spec.red))
        table.add("green", number(spec.green))
        table.add("weight", number(spec.weight))
        if spec.owner:
            table.add("owner", spec.owner)
        if spec.source:
            table.add("source", spec.source)
        if standard.origin == ADMIN:
            table.add("valid_from", standard.valid_from)
        container.add(standard.key, table)
    document.add("standards", container)
    return tomlkit.dumps(document)
