"""What a plugin declares: metric definitions, their parameters and schedules, and results.

A plugin returns ``MetricDefinition`` objects from the ``crmmetrics_metrics`` hook. The runner
calls ``definition.compute(ctx)`` once per reporting period with a ``ComputeContext`` and expects
a number, ``None`` (explicitly missing), or an iterable of ``Result`` (one per dimension value).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .inputs import Need
from .periods import CALENDAR, TO_DATE, Period, is_valid_period, trailing_days
from .vocabulary import Direction, Perspective, Process, ValueLens

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_DURATION = re.compile(r"^(\d+)(s|m|h|d|w)$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

# Units a definition may use (values are stored and shown to people in these); the exporter
# converts each to a Prometheus base unit (EXPORT_UNITS) and the dashboards know how to show each.
UNITS = {
    "percent": "%",  # a share of a whole, 0-100 (exported as a 0-1 ratio)
    "percent_unbounded": "%",  # a percentage of a base that may be below 0 or above 100 (a margin, an uplift)
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


@dataclass(frozen=True)
class ExportUnit:
    """How a unit is exported: the unit suffix of its families, and the factor to that base unit."""

    suffix: str
    multiply: float = 1.0
    divide: float = 1.0  # division by 100 rounds 57 to 0.57 exactly; multiplying by 0.01 would not

    def to_base(self, value: float) -> float:
        return value * self.multiply / self.divide


# One unit per Prometheus family, in base units (https://prometheus.io/docs/practices/naming/):
# shares and percentages as 0-1 ratios, durations in seconds, events per 1,000 customers as
# events per customer; amounts stay in the organisation's reporting currency (the family suffix
# is ``currency`` whatever the configured code, so that a configuration change renames nothing).
# A generic count is ``items`` (``_count`` is reserved for histograms and summaries).
SECONDS_PER_MONTH = 365.25 / 12 * 86400  # an average Gregorian month
EXPORT_UNITS: dict[str, ExportUnit] = {
    "percent": ExportUnit("ratio", divide=100),
    "percent_unbounded": ExportUnit("ratio", divide=100),
    "ratio": ExportUnit("ratio"),
    "count": ExportUnit("items"),
    "customers": ExportUnit("customers"),
    "currency": ExportUnit("currency"),
    "seconds": ExportUnit("seconds"),
    "months": ExportUnit("seconds", multiply=SECONDS_PER_MONTH),
    "points": ExportUnit("points"),
    "score": ExportUnit("score"),
    "per_1000_customers": ExportUnit("per_customer", divide=1000),
    "hours": ExportUnit("seconds", multiply=3600.0),
    "occasions": ExportUnit("occasions"),
}

# Label names the exposition and the alert rules use themselves (or Prometheus does): a
# dimension by one of these names would overwrite or collide with them, so a plugin declaring
# one is refused at load (crmmetrics.compute.registry).
RESERVED_LABELS = frozenset(
    {
        "metric", "kpi", "period", "process", "perspective", "plugin", "name", "unit", "value_lens",
        "direction", "standard", "status", "threshold", "owner", "severity", "alertname", "currency",
        "job", "instance", "le", "quantile",
    }
)


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


def default_schedule(period: str) -> Schedule:
    """The schedule a metric gets from its period unless its plugin or the config sets one.

    Cron times (in the service's timezone), so that runs line up with period ends instead of
    the moment the service started:

    - a calendar period (the last *complete* month, quarter or year) changes when a period
      closes: daily at 00:15, so the closed period is computed 15 minutes after it closes and
      late corrections to it are picked up the next night;
    - a month to date every hour at :15; a quarter or year to date every 6 hours;
    - a trailing window of up to 7 days every hour, up to 90 days every 6 hours, longer ones
      daily at 00:15 (one more day moves a long window little).
    """
    daily, six_hourly, hourly = Schedule(cron="15 0 * * *"), Schedule(cron="15 */6 * * *"), Schedule(cron="15 * * * *")
    if period in CALENDAR:
        return daily
    if period == "month_to_date":
        return hourly
    if period in TO_DATE:
        return six_hourly
    days = trailing_days(period)
    if days is None:
        raise ValueError(f"unknown period {period!r}")
    return hourly if days <= 7 else six_hourly if days <= 90 else daily


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


class RunCache:
    """Values computed once per run and shared by the metrics of that run (one RFM table for
    the two RFM shares, one holdout fit for the two forecast KPIs). A failed build is not kept:
    the next metric that asks builds again and gets its own error. One lock per key, so that a
    second metric asking while the first builds waits for that value instead of building it."""

    def __init__(self) -> None:
        self._values: dict[Hashable, Any] = {}
        self._lock = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self._earlier: RunCache | None = None  # the step before, in a backfill (see following)

    def following(self) -> RunCache:
        """The cache of the next step of a backfill (the next as-of time): it takes over, when
        asked, what this step computed (this step's current period is the next one's previous),
        and drops everything older, so that a backfill holds at most two steps' values."""
        step = RunCache()
        step._earlier, self._earlier = self, None
        return step

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._values:
                return self._values[key]
            earlier = self._earlier
            if earlier is not None and key in earlier._values:
                self._values[key] = earlier._values[key]
                return self._values[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._values:
                    return self._values[key]
            value = build()
            with self._lock:
                self._values[key] = value
            return value


@dataclass
class ComputeContext:
    """Everything a compute function may use. Plugins read the source; they never write."""

    connection: Any  # sqlalchemy.Connection, read-only
    tables: Mapping[str, Any]  # canonical sqlalchemy Tables by name (crmmetrics.core.schema)
    params: Mapping[str, Any]
    period: Period
    as_of: datetime
    metric: MetricDefinition
    customer_values: list[dict[str, Any]] = field(default_factory=list)
    model_fits: list[dict[str, Any]] = field(default_factory=list)
    run_cache: RunCache = field(default_factory=RunCache)

    def scalar(self, statement: Any) -> Any:
        """Run a statement and return its first column of the first row (or None)."""
        return self.connection.execute(statement).scalar()

    def shared(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """``build()``, computed once per run for ``key`` and shared with every metric of the run
        that asks for the same key. The key names everything the value depends on (what it is,
        the period bounds, the parameters it reads); the value must not be changed by its users.
        A run is one ``crmmetrics run`` (or ``demo``) over all its metrics; in a backfill, the
        metrics of one period kind at one as-of time (which also see the previous step's values);
        under ``serve``, the scheduled runs that start within the same minute."""
        return self.run_cache.get(key, build)

    def record_customer_values(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Hand per-customer model outputs (e.g. P(alive), CLV) to the runner to keep in the store.

        Each row: ``customer_id`` plus numeric fields. Only the current period's rows are kept.
        """
        self.customer_values.extend(dict(row) for row in rows)

    def record_model_fit(
        self,
        model: str,
        parameters: Mapping[str, float],
        *,
        log_likelihood: float | None,
        customers: int,
        converged: bool,
        message: str = "",
        calibration_end: datetime | None = None,
    ) -> None:
        """Hand a fitted model (its parameters, log-likelihood, the customers it was fitted on
        and whether the search converged) to the runner to keep in the store, failed run or not;
        ``crmmetrics models show`` lists them."""
        self.model_fits.append(
            {
                "model": model,
                "period_label": self.period.label,
                "calibration_end": calibration_end or self.period.end,
                "parameters": {name: float(value) for name, value in parameters.items()},
                "log_likelihood": None if log_likelihood is None else float(log_likelihood),
                "customers": int(customers),
                "converged": bool(converged),
                "message": message,
            }
        )


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
    schedule: Schedule | None = None  # None: derived from the period (default_schedule)
    period: str = "month"
    parameters: tuple[Parameter, ...] = ()
    timeout_seconds: float = 120.0
    schedule_from_period: bool = field(init=False, default=False, repr=False, compare=False)
    #: Source inputs without which the metric has no value: canonical tables (``"interactions"``)
    #: or columns (``"interactions.handle_seconds"``). The runner checks them for each period and
    #: stores a missing value with the reason instead of calling ``compute`` (crmmetrics.core.inputs).
    #: A function of the parameters when the inputs depend on them (a method read from surveys).
    needs: tuple[str, ...] | Callable[[Mapping[str, Any]], tuple[str, ...]] = ()

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
        if self.schedule is None:
            object.__setattr__(self, "schedule", default_schedule(self.period))
            object.__setattr__(self, "schedule_from_period", True)
        if isinstance(self.needs, str):
            object.__setattr__(self, "needs", (self.needs,))
        self.inputs(self.default_params())  # a misspelt table or column fails at load time

    def schedule_for(self, period: str) -> Schedule:
        """The schedule when the metric runs over ``period`` (the config may change the period):
        the plugin's own schedule if it set one, else the one that fits the period."""
        return default_schedule(period) if self.schedule_from_period else self.schedule  # type: ignore[return-value]

    @property
    def export_unit(self) -> ExportUnit:
        return EXPORT_UNITS[self.unit]

    def inputs(self, params: Mapping[str, Any] | None = None) -> tuple[Need, ...]:
        """``needs`` parsed (for these parameters): the tables and columns checked before computing."""
        needs = self.needs(params if params is not None else self.default_params()) if callable(self.needs) else self.needs
        try:
            return tuple(Need.parse(need) for need in needs)
        except ValueError as exc:
            raise ValueError(f"metric {self.key}: {exc}") from None

    def parameter(self, name: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        known = ", ".join(p.name for p in self.parameters) or "none"
        raise KeyError(f"metric {self.key} has no parameter {name!r} (parameters: {known})")

    def default_params(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.parameters}
