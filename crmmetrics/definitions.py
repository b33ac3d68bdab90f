"""What a plugin declares: metric definitions, their parameters and schedules, and results.

A plugin returns ``MetricDefinition`` objects from the ``crmmetrics_metrics`` hook. The runner
calls ``definition.compute(ctx)`` once per reporting period with a ``ComputeContext`` and expects
a number, ``None`` (explicitly missing), or an iterable of ``Result`` (one per dimension value).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .periods import Period, is_valid_period
from .vocabulary import Direction, Perspective, Process, ValueLens

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_DURATION = re.compile(r"^(\d+)(s|m|h|d|w)$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

# Units a definition may use; the exporter and dashboards know how to show each.
UNITS = {
    "percent": "%",
    "ratio": "ratio",
    "count": "",
    "customers": "customers",
    "currency": "currency",
    "seconds": "s",
    "months": "months",
    "points": "points",
    "score": "score",
    "per_1000_customers": "per 1,000 customers",
    "hours": "h",
    "occasions": "occasions",
}


# No schedule, timeout or grace time in crmmetrics is sensibly longer than a year; the bound
# also keeps numbers like 99999999999999d from overflowing timedelta.
MAX_DURATION = timedelta(days=366)


def parse_duration(text: str, maximum: timedelta = MAX_DURATION) -> timedelta:
    """``30s``, ``15m``, ``6h``, ``1d``, ``2w`` -> timedelta; ValueError on anything else."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"invalid duration {text!r}: expected a positive number and a unit s, m, h, d or w, e.g. 15m")
    number, unit = int(match.group(1)), _DURATION_UNITS[match.group(2)]
    if number > maximum / timedelta(**{unit: 1}):
        raise ValueError(f"duration {text!r} is longer than the maximum of {maximum.days} days")
    return timedelta(**{unit: number})


@dataclass(frozen=True)
class Schedule:
    """When a metric runs: every fixed interval, or on a cron expression (five fields)."""

    every: str | None = None
    cron: str | None = None

    def __post_init__(self) -> None:
        if (self.every is None) == (self.cron is None):
            raise ValueError("a schedule has exactly one of 'every' or 'cron'")
        if self.every is not None:
            parse_duration(self.every)

    def describe(self) -> str:
        return f"every {self.every}" if self.every else f"cron {self.cron}"


@dataclass(frozen=True)
class Parameter:
    """A typed, documented knob of a metric (a margin share, a discount rate, a window)."""

    name: str
    type: type
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None

    def coerce(self, value: Any) -> Any:
        """Convert ``value`` (possibly text from the CLI) to this parameter's type, or raise ValueError."""
        if self.type is bool:
            if isinstance(value, bool):
                result = value
            elif str(value).lower() in ("true", "yes", "1", "on"):
                result = True
            elif str(value).lower() in ("false", "no", "0", "off"):
                result = False
            else:
                raise ValueError(f"expected true or false, got {value!r}")
        elif self.type in (int, float):
            if isinstance(value, bool):
                raise ValueError(f"expected a number, got {value!r}")
            try:
                result = self.type(value)
            except (TypeError, ValueError):
                raise ValueError(f"expected {'an integer' if self.type is int else 'a number'}, got {value!r}") from None
            if self.type is float and result != result:
                raise ValueError("expected a number, got NaN")
            if self.minimum is not None and result < self.minimum:
                raise ValueError(f"{result} is below the minimum {self.minimum}")
            if self.maximum is not None and result > self.maximum:
                raise ValueError(f"{result} is above the maximum {self.maximum}")
        else:
            result = self.type(value)
        if self.choices is not None and result not in self.choices:
            raise ValueError(f"{result!r} is not one of {', '.join(map(str, self.choices))}")
        return result


@dataclass(frozen=True)
class Result:
    """One value of a metric, for one combination of its dimensions (empty: the total)."""

    value: float | None
    dimensions: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ComputeContext:
    """Everything a compute function may use. Plugins read the source; they never write."""

    connection: Any  # sqlalchemy.Connection, read-only
    tables: Mapping[str, Any]  # canonical sqlalchemy Tables by name (crmmetrics.schema)
    params: Mapping[str, Any]
    period: Period
    as_of: datetime
    metric: MetricDefinition
    customer_values: list[dict[str, Any]] = field(default_factory=list)

    def scalar(self, statement: Any) -> Any:
        """Run a statement and return its first column of the first row (or None)."""
        return self.connection.execute(statement).scalar()

    def record_customer_values(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Hand per-customer model outputs (e.g. P(alive), CLV) to the runner to keep in the store.

        Each row: ``customer_id`` plus numeric fields. Only the current period's rows are kept.
        """
        self.customer_values.extend(dict(row) for row in rows)


ComputeFunction = Callable[[ComputeContext], "float | int | None | Iterable[Result]"]


@dataclass(frozen=True)
class MetricDefinition:
    """A metric as a plugin declares it. ``key`` is unique across all loaded plugins."""

    key: str
    name: str
    description: str
    process: Process
    perspective: Perspective
    value_lens: ValueLens
    unit: str
    direction: Direction
    compute: ComputeFunction
    formula: str = ""
    source: str = ""
    dimensions: tuple[str, ...] = ()
    schedule: Schedule = Schedule(every="1h")
    period: str = "month"
    parameters: tuple[Parameter, ...] = ()
    timeout_seconds: float = 120.0

    def __post_init__(self) -> None:
        if not KEY_PATTERN.match(self.key):
            raise ValueError(f"metric key {self.key!r} must be lower_snake_case")
        for name in ("process", "perspective", "value_lens", "direction"):
            enum = {"process": Process, "perspective": Perspective, "value_lens": ValueLens, "direction": Direction}[name]
            object.__setattr__(self, name, enum(getattr(self, name)))
        if self.unit not in UNITS:
            raise ValueError(f"metric {self.key}: unknown unit {self.unit!r} (one of {', '.join(UNITS)})")
        if not is_valid_period(self.period):
            raise ValueError(f"metric {self.key}: unknown period {self.period!r}")
        for dimension in self.dimensions:
            if not KEY_PATTERN.match(dimension):
                raise ValueError(f"metric {self.key}: dimension {dimension!r} must be lower_snake_case")

    def parameter(self, name: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        known = ", ".join(p.name for p in self.parameters) or "none"
        raise KeyError(f"metric {self.key} has no parameter {name!r} (parameters: {known})")

    def default_params(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.parameters}
