"""Reporting periods: every metric is computed for the current period and the previous one.

A period spec names a calendar period (the last *complete* month, quarter or year before the
as-of time, so values do not wobble while a month fills up), a period-to-date, or a trailing
window ending at the as-of time. Periods are half-open: ``start <= t < end``; times are naive UTC,
like the canonical tables (an aware as-of time is converted to UTC first).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from .vocabulary import PeriodLabel


CALENDAR = ("month", "quarter", "year")
TO_DATE = ("month_to_date", "quarter_to_date", "year_to_date")
_TRAILING = re.compile(r"^trailing_(\d+)d$")
MAX_TRAILING_DAYS = 3660  # ten years: the previous period then starts twenty years back
PERIOD_HELP = f"month, quarter, year, month_to_date, quarter_to_date, year_to_date or trailing_<N>d (N from 1 to {MAX_TRAILING_DAYS})"


@dataclass(frozen=True)
class Period:
    """A half-open reporting window ``[start, end)`` with a label ``current`` or ``previous``."""

    label: str  # a PeriodLabel
    start: datetime
    end: datetime

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400

    def describe(self) -> str:
        """For people: ``2026-11``, ``2026-Q4``, ``2026``, else ``2026-11-01 to 2026-11-15`` (inclusive)."""
        start, end = self.start, self.end
        if end <= start:
            return f"{start:%Y-%m-%d %H:%M} UTC (empty)"
        midnight = all(t.hour == t.minute == t.second == t.microsecond == 0 for t in (start, end))
        if midnight and start.day == 1 and end.day == 1:
            for months, text in (
                (1, f"{start:%Y-%m}"),
                (3, f"{start.year}-Q{(start.month - 1) // 3 + 1}"),
                (12, f"{start.year}"),
            ):
                aligned = months == 1 or (months == 3 and start.month % 3 == 1) or (months == 12 and start.month == 1)
                if aligned and _months_back(end, months) == start:
                    return text
        if midnight:
            return f"{start:%Y-%m-%d} to {end - timedelta(days=1):%Y-%m-%d}"
        length = end - start
        if length % timedelta(days=1) == timedelta(0):  # a trailing window ending at the as-of time
            return f"{length.days} days to {end:%Y-%m-%d %H:%M} UTC"
        return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"

    def to_json(self) -> dict[str, str]:
        """Start (inclusive) and end (exclusive) as ISO 8601 UTC, and the period for people."""
        return {"start": self.start.isoformat() + "Z", "end": self.end.isoformat() + "Z", "label": self.describe()}


def utcnow() -> datetime:
    """Now as a naive UTC time (how the canonical tables and the store keep times)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def to_naive_utc(moment: datetime) -> datetime:
    """A naive UTC time (how the canonical tables and the store keep times); aware times are converted."""
    if moment.tzinfo is not None:
        return moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def trailing_days(spec: str) -> int | None:
    """N of ``trailing_<N>d``, else None."""
    match = _TRAILING.match(spec)
    return int(match.group(1)) if match else None


def is_valid_period(spec: str) -> bool:
    match = _TRAILING.match(spec)
    return spec in CALENDAR or spec in TO_DATE or bool(match and 1 <= int(match.group(1)) <= MAX_TRAILING_DAYS)


def _months_back(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + (moment.month - 1) - months
    return moment.replace(year=index // 12, month=index % 12 + 1)


def _same_moment_months_back(moment: datetime, months: int) -> datetime:
    """``moment`` ``months`` calendar months earlier; a day the month lacks (31 March -> February)
    becomes the first instant of the month after, so the stretch ends with that month."""
    index = moment.year * 12 + (moment.month - 1) - months
    year, month = index // 12, index % 12 + 1
    try:
        return moment.replace(year=year, month=month)
    except ValueError:  # day out of range for that month
        return _months_back(moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0), months - 1)


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
    as_of = to_naive_utc(as_of)
    if spec in CALENDAR:
        months = _UNIT_MONTHS[spec]
        end = _calendar_start(as_of, spec)
        start = _months_back(end, months)
        return Period(PeriodLabel.CURRENT, start, end), Period(PeriodLabel.PREVIOUS, _months_back(start, months), start)
    if spec in TO_DATE:
        unit = spec.removesuffix("_to_date")
        start = _calendar_start(as_of, unit)
        months = _UNIT_MONTHS[unit]
        # The previous period is the same stretch of the previous calendar period: up to the same
        # day and time, or to its end when it has no such day (as of 31 March: all of February).
        prev_start = _months_back(start, months)
        prev_end = min(_same_moment_months_back(as_of, months), start)
        return Period(PeriodLabel.CURRENT, start, as_of), Period(PeriodLabel.PREVIOUS, prev_start, prev_end)
    match = _TRAILING.match(spec)
    if not match or not 1 <= int(match.group(1)) <= MAX_TRAILING_DAYS:
        raise ValueError(f"unknown period {spec!r}: expected {PERIOD_HELP}")
    length = timedelta(days=int(match.group(1)))
    return Period(PeriodLabel.CURRENT, as_of - length, as_of), Period(PeriodLabel.PREVIOUS, as_of - 2 * length, as_of - length)
