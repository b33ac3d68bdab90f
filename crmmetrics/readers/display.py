"""How the scorecard's values read for people: numbers with their unit, changes, and whether a
change went the good way. Shared by the CLI, the pages and the alert texts, so that each says
``42.1%`` or ``1,234 customers`` the same way (the exposition carries base units instead)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmmetrics.core.definitions import UNITS
from crmmetrics.core.vocabulary import Direction

if TYPE_CHECKING:
    from .scorecard import Kpi


def format_number(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:,.1f}"
    return f"{value:.2f}"


def format_value(value: float | None, unit: str) -> str:
    """A value with its unit for people: ``42.1%``, ``1,234 customers``, ``0.85``; "no data" if None."""
    if value is None:
        return "no data"
    whole = unit in ("count", "customers") and float(value).is_integer()
    number = f"{value:,.0f}" if whole else format_number(value)
    if UNITS.get(unit) == "%":
        return f"{number}%"
    suffix = UNITS.get(unit, "")
    if unit in ("ratio", "currency", "count", "score") or not suffix:
        return number
    return f"{number} {suffix}"


def format_change(change: float | None) -> str:
    """``+3.2%`` / ``-0.5%`` of the previous period, or an empty string."""
    if change is None:
        return ""
    text = f"{change * 100:+.1f}%"
    return "0.0%" if text in ("+0.0%", "-0.0%") else text  # a change too small to show has no sign


def change_is_good(kpi: Kpi) -> bool | None:
    """Whether the change against the previous period went the good way for this KPI."""
    if kpi.change is None or kpi.change == 0:
        return None
    return (kpi.change > 0) == (kpi.direction == Direction.HIGHER_IS_BETTER)
