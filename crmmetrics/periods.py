"""Reporting periods: every metric is computed for the current period and the previous one.

A period spec names a calendar period (the last *complete* month, quarter or year before the
as-of time, so values do not wobble while a month fills up), a period-to-date, or a trailing
window ending at the as-of time. Periods are half-open: ``start <= t < end``; times are naive UTC,
like the canonical tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

CALENDAR = ("month", "quarter", "year")
TO_DATE = ("month_to_date", "quarter_to_date", "year_to_date")
_TRAILING = re.compile(r"^trailing_(\d+)d$")
MAX_TRAILING_DAYS = 3660  # ten years: the previous period then starts twenty years back
PERIOD_HELP = f"month, quarter, year, month_to_date, quarter_to_date, year_to_date or trailing_<N>d (N from 1 to {MAX_TRAILING_DAYS})"


@dataclass(frozen=True)
class Period:
    """A half-open reporting window ``[start, end)`` with a label ``current`` or ``previous``."""

    label: str
    start: datetime
    end: datetime

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400


def is_valid_period(spec: str) -> bool:
    match = _TRAILING.match(spec)
    return spec in CALENDAR or spec in TO_DATE or bool(match and 1 <= int(match.group(1)) <= MAX_TRAILING_DAYS)


def _months_back(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + (moment.month - 1) - months
    return moment.replace(year=index // 12, month=index % 12 + 1)


def _calendar_start(as_of: datetime, unit: str) -> datetime:
    """Start of the calendar month/quarter/year containing ``as_of``."""
    first = as_of.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "quarter":
        return first.replace(month=(first.month - 1) // 3 * 3 + 1)
    if unit == "year":
        return first.replace(month=1)
    return first


_UNIT_MONTHS = {"month": 1, "quarter": 3, "year": 12}


def reporting_periods(spec: str, as_of: datetime) -> tuple[Period, Period]:
    """The (current, previous) periods for ``spec`` as seen at ``as_of``."""
    as_of = as_of.replace(tzinfo=None)
    if spec in CALENDAR:
        months = _UNIT_MONTHS[spec]
        end = _calendar_start(as_of, spec)
        start = _months_back(end, months)
        return Period("current", start, end), Period("previous", _months_back(start, months), start)
    if spec in TO_DATE:
        unit = spec.removesuffix("_to_date")
        start = _calendar_start(as_of, unit)
        months = _UNIT_MONTHS[unit]
        # The previous period is the same stretch of the previous calendar period.
        prev_start = _months_back(start, months)
        return Period("current", start, as_of), Period("previous", prev_start, prev_start + (as_of - start))
    match = _TRAILING.match(spec)
    if not match or not 1 <= int(match.group(1)) <= MAX_TRAILING_DAYS:
        raise ValueError(f"unknown period {spec!r}: expected {PERIOD_HELP}")
    length = timedelta(days=int(match.group(1)))
    return Period("current", as_of - length, as_of), Period("previous", as_of - 2 * length, as_of - length)
