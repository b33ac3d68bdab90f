"""Reporting periods at every edge: month ends (28, 29, 30, 31), quarter and year ends, leap
days, and as-of times in a zone with a DST change (converted to UTC first)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crmmetrics.core.periods import Period, reporting_periods, to_naive_utc

D = datetime


@pytest.mark.parametrize("spec, as_of, current, previous", [
    # month to date at month ends: the previous period is the same days of the previous month,
    # or all of it when it has no such day; it never reaches into the current month
    ("month_to_date", D(2024, 3, 31, 12), (D(2024, 3, 1), D(2024, 3, 31, 12)), (D(2024, 2, 1), D(2024, 3, 1))),
    ("month_to_date", D(2024, 3, 30, 12), (D(2024, 3, 1), D(2024, 3, 30, 12)), (D(2024, 2, 1), D(2024, 3, 1))),
    ("month_to_date", D(2024, 3, 29, 12), (D(2024, 3, 1), D(2024, 3, 29, 12)), (D(2024, 2, 1), D(2024, 2, 29, 12))),
    ("month_to_date", D(2023, 3, 29, 12), (D(2023, 3, 1), D(2023, 3, 29, 12)), (D(2023, 2, 1), D(2023, 3, 1))),
    ("month_to_date", D(2024, 2, 29, 18), (D(2024, 2, 1), D(2024, 2, 29, 18)), (D(2024, 1, 1), D(2024, 1, 29, 18))),
    ("month_to_date", D(2023, 2, 28, 6), (D(2023, 2, 1), D(2023, 2, 28, 6)), (D(2023, 1, 1), D(2023, 1, 28, 6))),
    ("month_to_date", D(2024, 4, 30, 9), (D(2024, 4, 1), D(2024, 4, 30, 9)), (D(2024, 3, 1), D(2024, 3, 30, 9))),
    ("month_to_date", D(2024, 5, 31, 9), (D(2024, 5, 1), D(2024, 5, 31, 9)), (D(2024, 4, 1), D(2024, 5, 1))),
    ("month_to_date", D(2024, 1, 31, 9), (D(2024, 1, 1), D(2024, 1, 31, 9)), (D(2023, 12, 1), D(2023, 12, 31, 9))),
    # quarter to date at quarter ends and in a quarter's second month
    ("quarter_to_date", D(2024, 3, 31, 12), (D(2024, 1, 1), D(2024, 3, 31, 12)), (D(2023, 10, 1), D(2023, 12, 31, 12))),
    ("quarter_to_date", D(2024, 6, 30, 12), (D(2024, 4, 1), D(2024, 6, 30, 12)), (D(2024, 1, 1), D(2024, 3, 30, 12))),
    ("quarter_to_date", D(2024, 5, 31, 12), (D(2024, 4, 1), D(2024, 5, 31, 12)), (D(2024, 1, 1), D(2024, 3, 1))),
    ("quarter_to_date", D(2024, 12, 31, 23), (D(2024, 10, 1), D(2024, 12, 31, 23)), (D(2024, 7, 1), D(2024, 10, 1))),  # no 31 September: all of Q3
    # year to date on leap days and at year end
    ("year_to_date", D(2024, 2, 29, 12), (D(2024, 1, 1), D(2024, 2, 29, 12)), (D(2023, 1, 1), D(2023, 3, 1))),
    ("year_to_date", D(2025, 2, 28, 12), (D(2025, 1, 1), D(2025, 2, 28, 12)), (D(2024, 1, 1), D(2024, 2, 28, 12))),
    ("year_to_date", D(2024, 12, 31, 12), (D(2024, 1, 1), D(2024, 12, 31, 12)), (D(2023, 1, 1), D(2023, 12, 31, 12))),
    # calendar periods: the last complete one before the as-of time
    ("month", D(2024, 3, 31, 23, 59), (D(2024, 2, 1), D(2024, 3, 1)), (D(2024, 1, 1), D(2024, 2, 1))),
    ("month", D(2024, 3, 1), (D(2024, 2, 1), D(2024, 3, 1)), (D(2024, 1, 1), D(2024, 2, 1))),
    ("quarter", D(2024, 3, 31, 12), (D(2023, 10, 1), D(2024, 1, 1)), (D(2023, 7, 1), D(2023, 10, 1))),
    ("quarter", D(2024, 4, 1), (D(2024, 1, 1), D(2024, 4, 1)), (D(2023, 10, 1), D(2024, 1, 1))),
    ("year", D(2024, 12, 31, 12), (D(2023, 1, 1), D(2024, 1, 1)), (D(2022, 1, 1), D(2023, 1, 1))),
    ("year", D(2025, 1, 1), (D(2024, 1, 1), D(2025, 1, 1)), (D(2023, 1, 1), D(2024, 1, 1))),
    # trailing windows across a leap day
    ("trailing_30d", D(2024, 3, 15), (D(2024, 2, 14), D(2024, 3, 15)), (D(2024, 1, 15), D(2024, 2, 14))),
    ("trailing_365d", D(2024, 3, 1), (D(2023, 3, 2), D(2024, 3, 1)), (D(2022, 3, 2), D(2023, 3, 2))),
])  # fmt: skip
def test_periods_at_the_edges(spec, as_of, current, previous):
    now, before = reporting_periods(spec, as_of)
    assert (now.start, now.end) == current
    assert (before.start, before.end) == previous
    assert before.end <= now.start  # never overlapping
    assert before.start < before.end


@pytest.mark.parametrize("local, utc", [
    # Europe/Berlin: CET (UTC+1) until 2024-03-31 02:00, CEST (UTC+2) after; back on 2024-10-27 03:00
    (D(2024, 3, 31, 1, 30), D(2024, 3, 31, 0, 30)),
    (D(2024, 3, 31, 3, 30), D(2024, 3, 31, 1, 30)),
    (D(2024, 4, 1, 0, 30), D(2024, 3, 31, 22, 30)),  # local April, UTC still March
    (D(2024, 10, 27, 2, 30, fold=0), D(2024, 10, 27, 0, 30)),
    (D(2024, 10, 27, 2, 30, fold=1), D(2024, 10, 27, 1, 30)),
    (D(2025, 1, 1, 0, 30), D(2024, 12, 31, 23, 30)),  # local new year, UTC still the old one
])  # fmt: skip
def test_an_aware_as_of_is_converted_to_utc_across_dst(local, utc):
    aware = local.replace(tzinfo=ZoneInfo("Europe/Berlin"))
    assert to_naive_utc(aware) == utc
    for spec in ("month", "quarter", "year", "month_to_date", "quarter_to_date", "year_to_date", "trailing_7d"):
        assert reporting_periods(spec, aware) == reporting_periods(spec, utc)
    # A local midnight on the first of a month is still the previous month in UTC.
    if aware.date() != utc.date() and local.day == 1:
        current, _ = reporting_periods("month_to_date", aware)
        assert current.start.month == utc.month and current.end == utc


def test_periods_describe_themselves():
    assert Period("current", D(2026, 11, 1), D(2026, 12, 1)).describe() == "2026-11"
    assert Period("current", D(2026, 10, 1), D(2027, 1, 1)).describe() == "2026-Q4"
    assert Period("current", D(2026, 1, 1), D(2027, 1, 1)).describe() == "2026"
    assert Period("current", D(2026, 2, 1), D(2026, 5, 1)).describe() == "2026-02-01 to 2026-04-30"
    assert Period("current", D(2026, 3, 1), D(2026, 3, 31, 12)).describe() == "2026-03-01 00:00 to 2026-03-31 12:00 UTC"
    assert Period("current", D(2026, 3, 1, 6), D(2026, 3, 31, 6)).describe() == "30 days to 2026-03-31 06:00 UTC"
    assert Period("current", D(2026, 3, 1), D(2026, 3, 1)).describe() == "2026-03-01 00:00 UTC (empty)"
    assert Period("current", D(2026, 3, 1), D(2026, 3, 1) + timedelta(days=1)).to_json() == {
        "start": "2026-03-01T00:00:00Z", "end": "2026-03-02T00:00:00Z", "label": "2026-03-01 to 2026-03-01",
    }
