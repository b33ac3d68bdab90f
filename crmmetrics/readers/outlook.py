"""The outlook of the scorecard: pacing and forecast, anomalies and the value chain, from the store.

The methods live in :mod:`crmmetrics.readers.forecast`, :mod:`crmmetrics.readers.anomaly` and
:mod:`crmmetrics.readers.value_chain`; this module feeds them each KPI's stored history
(:func:`crmmetrics.readers.history.history_snapshots`) and turns their answers into what the exporter,
the pages and the CLI show. One place, so that ``/metrics``, ``/``, ``/kpi/KEY``,
``scorecard --json`` and ``chain`` say the same.

Per KPI on the scorecard (a standard applied to a total or a dimension value):

- **Forecast and pacing** for a KPI on a calendar period (month, quarter, year): the value of
  the period now running (the one after the KPI's latest complete period) from the last
  :data:`MAX_HISTORY` complete periods without a gap (:func:`crmmetrics.readers.forecast.forecast_next`,
  ``auto``, season 12 for months, 4 for quarters), and the probabilities of ending it green,
  amber or red under the standard in force.
- **Forecast and pacing to the period's end** for a KPI on a to-date period (month, quarter or
  year to date): its value so far, at the share of its calendar period elapsed, carried to the
  end the way earlier periods went from the same point (:func:`crmmetrics.readers.forecast.forecast_period_end`).
  The store keeps every run with its period, so for each of the last :data:`MAX_HISTORY`
  earlier periods the run nearest the same share (within :data:`TO_DATE_TOLERANCE` of the
  period) gives the value at that point, and its last run within the tolerance of its end (a
  backfilled or whole-period value ends at it) the final value; a period without both is left
  out, and :data:`MIN_EARLIER_PERIODS` are needed. Read with one query per to-date metric
  (:meth:`Store.period_points`: only the runs in those windows).
- A KPI on a trailing window gets none (its windows have no "same point" of earlier ones), nor
  does one with too little history: the reason is said, never a guess.
- **Anomaly** of the KPI's latest stored period against its own history and season
  (:func:`crmmetrics.readers.anomaly.latest`), and the flagged periods of its history for its page.
- **Value chain**: every pair of :data:`crmmetrics.readers.value_chain.CHAIN` whose KPIs have history,
  over the periods both have and, with the source's department-to-channel pairs, across units.

**Cost.** Readers compute the outlook when the store changes, not per request: the exposition
and the page are rendered once per change of :meth:`Store.history_marker`. A change usually
concerns a few metrics, so :class:`OutlookCache` remembers each KPI's and each chain pair's
answer by its inputs (the history values, the thresholds) and recomputes only those whose
inputs moved. ``benchmarks/bench_outlook.py`` measures a full computation on the demo.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from contextlib import ExitStack
from functools import lru_cache
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from prometheus_client.core import GaugeMetricFamily, Metric
from threadpoolctl import ThreadpoolController

from crmmetrics.core.definitions import EXPORT_UNITS
from crmmetrics.core.periods import TO_DATE, Period, _calendar_start, _months_back, trailing_days
from crmmetrics.core.vocabulary import PeriodLabel
from crmmetrics.store.store import Store, dimensions_key
from . import anomaly
from .families import (
    CHAIN_CORRELATION,
    CHAIN_LAG,
    CHAIN_LINKED,
    CHAIN_LOWER,
    CHAIN_OBSERVATIONS,
    CHAIN_UPPER,
    FORECAST_PERIOD_END,
    FORECAST_PERIOD_START,
    GaugeFamilies,
    anomaly_family,
    forecast_family,
    pacing_family,
    pacing_probability_family,
)
from .forecast import MIN_ERRORS, InsufficientHistory, Forecast, Pacing, forecast_next, forecast_period_end, pacing
from .scorecard import Kpi, Scorecard
from .value_chain import CHAIN, ChainLink, Linkage, link_across_units, link_over_periods

log = logging.getLogger("crmmetrics.outlook")

__all__ = [
    "MAX_HISTORY",
    "TO_DATE_TOLERANCE",
    "MIN_EARLIER_PERIODS",
    "ToDate",
    "PACING_VALUES",
    "KpiOutlook",
    "Outlook",
    "OutlookCache",
    "build_outlook",
    "outlook_families",
    "calendar_unit",
]

#: Most complete periods a forecast or an anomaly score looks back on (bounds the cost; three
#: years of months hold three seasons).
MAX_HISTORY = 36
#: The pacing status as a gauge value, worst first like the KPI status (0 red .. 2 green).
PACING_VALUES = {"off_track": 0, "at_risk": 1, "on_track": 2}
#: Seconds of one period of a chain link's lag (an average month, as EXPORT_UNITS has it).
_MONTH_SECONDS = EXPORT_UNITS["months"].to_base(1.0)
#: How far from the same point of an earlier period (as a share of that period) its nearest run
#: may be, and its last run from its end: 2 %, about 15 hours of a month, 1.8 days of a quarter,
#: 7.3 days of a year (the default schedules run hourly or every 6 hours).
TO_DATE_TOLERANCE = 0.02
#: Fewest earlier periods with both points a period-end forecast needs (its leave-one-out
#: interval needs MIN_ERRORS errors from the others).
MIN_EARLIER_PERIODS = MIN_ERRORS + 1
_SEASONS = {"month": 12, "quarter": 4, "year": None}
_UNIT_MONTHS = {"month": 1, "quarter": 3, "year": 12}


@lru_cache(maxsize=4096)  # asked for every KPI and stored period on every build
def calendar_unit(start: datetime | None, end: datetime | None) -> str | None:
    """``month``, ``quarter`` or ``year`` when ``[start, end)`` is one whole calendar unit, else None."""
    if start is None or end is None:
        return None
    if any(t.day != 1 or t.hour or t.minute or t.second or t.microsecond for t in (start, end)):
        return None
    for unit, months in _UNIT_MONTHS.items():
        aligned = months == 1 or (months == 3 and start.month % 3 == 1) or (months == 12 and start.month == 1)
        if aligned and _months_back(end, months) == start:
            return unit
    return None


def _months_ahead(moment: datetime, months: int) -> datetime:
    return _months_back(moment, -months)


@dataclass(frozen=True)
class KpiOutlook:
    """What the history says about one KPI: where it is heading and whether it moved unusually."""

    metric: str
    dimensions: Mapping[str, str]
    #: the period being forecast (the one now running), or None without a forecast
    forecast_period: Period | None = None
    pacing: Pacing | None = None
    #: why there is no forecast, in words (None when there is one)
    forecast_reason: str | None = None
    #: the anomaly score of the latest stored period, and that period
    anomaly: anomaly.Scored | None = None
    anomaly_period: Period | None = None
    anomaly_reason: str | None = None
    #: every flagged period of the history scored (oldest first): (period, score)
    flagged: tuple[tuple[Period, anomaly.Scored], ...] = ()
    #: complete periods of history the answers rest on (a to-date KPI's forecast: the earlier
    #: periods with both points)
    history: int = 0
    #: a to-date KPI's forecast: the share of its period elapsed (None: a next-period forecast)
    elapsed: float | None = None

    @property
    def forecast(self) -> Forecast | None:
        return self.pacing.forecast if self.pacing else None

    def to_json(self, unit: str) -> dict[str, Any]:
        pacing_json = None
        if self.pacing is not None:
            pacing_json = {
                **self.pacing.to_json(),
                # next_period: the period after the latest complete one; period_end: the end
                # of the to-date period now running, from its value so far
                "basis": "next_period" if self.elapsed is None else "period_end",
                "elapsed_share": self.elapsed,
                "unit": unit,
                "period": self.forecast_period.to_json() if self.forecast_period else None,
            }
        anomaly_json = None
        if self.anomaly is not None:
            anomaly_json = {
                **self.anomaly.to_json(),
                "threshold": anomaly.THRESHOLD,
                "period": self.anomaly_period.to_json() if self.anomaly_period else None,
            }
        return {
            "history_periods": self.history,
            "pacing": pacing_json,
            "pacing_reason": self.forecast_reason,
            "anomaly": anomaly_json,
            "anomaly_reason": self.anomaly_reason,
            "anomalies": [{**s.to_json(), "period": p.to_json()} for p, s in self.flagged],
        }


@dataclass(frozen=True)
class Outlook:
    """The outlook of every KPI on the scorecard, and the value chain."""

    kpis: dict[tuple[str, str], KpiOutlook] = field(default_factory=dict)
    chain: list[Linkage] = field(default_factory=list)
    #: (driver unit, outcome unit) pairs the across-unit analyses used; None: not known
    unit_pairs: list[tuple[str, str]] | None = None
    #: months in one period of each chain analysis's series, by (driver, outcome, basis)
    chain_period_months: dict[tuple[str, str, str], int] = field(default_factory=dict)
    #: metric key -> name, for the chain's diagram and statements
    names: dict[str, str] = field(default_factory=dict)

    def lag_months(self, link: Linkage) -> int | None:
        """The link's lag in months (its lag in periods times the months of a period)."""
        if link.lag is None:
            return None
        return link.lag * self.chain_period_months.get((link.driver, link.outcome, link.basis), 1)

    def of(self, kpi: Kpi) -> KpiOutlook | None:
        return self.kpis.get((kpi.metric, kpi.dimensions_key))

    def chain_statement(self) -> str:
        """One plain sentence for the whole chain."""
        if not self.chain:
            return (
                "Not enough data to say anything about the value chain: no pair of its KPIs (employee satisfaction, "
                "eNPS or engagement; CSAT, NPS or first-contact resolution; retention, share of wallet or net revenue "
                "retention) has a stored history."
            )
        linked = [link for link in self.chain if link.linked]
        judged = [link for link in self.chain if link.linked is not None]
        if linked:
            return f"{len(linked)} of {len(self.chain)} analyses find a link; {len(self.chain) - len(judged)} have too little data."
        if judged:
            return f"No link found in {len(judged)} analyses with enough data; {len(self.chain) - len(judged)} have too little data."
        return "Not enough data to say whether the value chain's KPIs are linked: every pair has too few paired observations."

    def chain_json(self) -> dict[str, Any]:
        return {
            "statement": self.chain_statement(),
            "unit_pairs": [list(p) for p in self.unit_pairs] if self.unit_pairs is not None else None,
            "links": [{**link.to_json(), "stage": _stage(link)} for link in self.chain],
        }


def _stage(link: Linkage) -> str:
    for chain_link in CHAIN:
        if (chain_link.driver, chain_link.outcome) == (link.driver, link.outcome):
            return chain_link.stage
    return ""


# --- computing ------------------------------------------------------------------------------


def _calendar_snapshots(snapshots: Sequence[Any]) -> tuple[list[Any], list[Period]]:
    """The snapshots of a metric's history on complete calendar periods, and those periods."""
    # a to-date or trailing window is not one of a series of whole periods
    kept = [s for s in snapshots if calendar_unit(s.period_start, s.period_end) is not None]
    return kept, [Period(PeriodLabel.CURRENT, s.period_start, s.period_end) for s in kept]


def _series(snapshots: Sequence[Any], dimensions: str,
            calendar: tuple[list[Any], list[Period]] | None = None) -> tuple[list[Period], list[float | None]]:
    """The complete calendar periods of a metric's history and the value of ``dimensions`` (a
    dimensions key) in each (``calendar``: ``_calendar_snapshots(snapshots)``, when already made)."""
    kept, periods = calendar if calendar is not None else _calendar_snapshots(snapshots)
    return list(periods), [s.current_values.get(dimensions) for s in kept]


@dataclass(frozen=True)
class ToDate:
    """A to-date KPI's period now running and the same point of its earlier periods."""

    spec: str  # month_to_date, quarter_to_date or year_to_date
    period: Period  # the whole calendar period now running
    elapsed: float  # share of it elapsed at the KPI's value
    #: (earlier period, value at the same point, final value), oldest first; only periods with both
    earlier: tuple[tuple[Period, float, float], ...] = ()


def _to_date_windows(spec: str, start: datetime, now: datetime) -> tuple[Period, float, list[tuple[Period, datetime, datetime]]]:
    """The whole period now running, the share of it elapsed at ``now``, and per earlier period
    (newest first, up to MAX_HISTORY) the window of run times around the same point and the window
    before its end, both TO_DATE_TOLERANCE of that period wide."""
    months = _UNIT_MONTHS[spec.removesuffix("_to_date")]
    running = Period(PeriodLabel.CURRENT, start, _months_ahead(start, months))
    elapsed = (now - start) / (running.end - start)
    windows = []
    end = start
    for _ in range(MAX_HISTORY):
        earlier = Period(PeriodLabel.CURRENT, _months_back(end, months), end)
        length = earlier.end - earlier.start
        windows.append((earlier, earlier.start + elapsed * length, earlier.end - TO_DATE_TOLERANCE * length))
        end = earlier.start
    return running, elapsed, windows


def _store_windows(windows: Sequence[tuple[Period, datetime, datetime]]) -> list[tuple[datetime, datetime, datetime]]:
    out = []
    for earlier, point, final_from in windows:
        slack = TO_DATE_TOLERANCE * (earlier.end - earlier.start)
        out.append((earlier.start, point - slack, point + slack))
        out.append((earlier.start, final_from, earlier.end))
    return out


def _earlier_points(windows: Sequence[tuple[Period, datetime, datetime]], points: Sequence[Any]) -> tuple[tuple[Period, float, float], ...]:
    """Per earlier period: the value of the run nearest the same point (within the tolerance) and
    of its last run near its end (a whole-period value ends at it); both needed, oldest first."""
    by_start: dict[datetime, list[Any]] = defaultdict(list)
    for point in points:
        by_start[point.period_start].append(point)
    found = []
    for earlier, at, final_from in windows:
        runs = by_start.get(earlier.start, [])
        slack = TO_DATE_TOLERANCE * (earlier.end - earlier.start)
        near = [p for p in runs if abs(p.period_end - at) <= slack]
        last = [p for p in runs if final_from <= p.period_end <= earlier.end]
        if not near or not last:
            continue
        point = min(near, key=lambda p: (abs(p.period_end - at), -p.run_id))
        final = max(last, key=lambda p: (p.period_end, p.run_id))
        if point.value is not None and final.value is not None:
            found.append((earlier, float(point.value), float(final.value)))
    return tuple(reversed(found))


def _no_forecast_reason(spec: str | None) -> str:
    if spec is not None and trailing_days(spec) is not None:
        return ("no forecast for a trailing period: a forecast needs calendar periods (a month, quarter or year, or one to date) "
                "to compare with the same point of earlier ones")
    return "no forecast: the KPI's period is neither a whole calendar period nor one to date"


def _kpi_outlook(kpi: Kpi, periods: list[Period], values: list[float | None], to_date: ToDate | None = None,
                 spec: str | None = None) -> KpiOutlook:
    unit = calendar_unit(kpi.period_start, kpi.period_end)
    key = dict(kpi.dimensions)
    # history of the KPI's own unit up to its current period (a later backfilled period is not
    # "before" it), on every period in between: a period never computed is a gap, not skipped
    if unit is not None and kpi.period_end is not None:
        stored = {p.start: v for p, v in zip(periods, values) if p.end <= kpi.period_end and calendar_unit(p.start, p.end) == unit}
        periods, values = [], []
        months = _UNIT_MONTHS[unit]
        start = _months_back(kpi.period_end, months * MAX_HISTORY)
        first = min(stored, default=kpi.period_end)
        start = max(start, first)
        while start < kpi.period_end:
            end = _months_ahead(start, months)
            periods.append(Period(PeriodLabel.CURRENT, start, end))
            values.append(stored.get(start))
            start = end
    else:
        periods, values = [], []
    season = _SEASONS.get(unit or "")
    # forecast and pacing
    forecast_period = pace = None
    reason = None
    if kpi.value is None:
        reason = "no forecast without a current value"
    elif to_date is not None:
        # the value so far carried to the period's end the way earlier periods went from the same point
        try:
            forecast = forecast_period_end(kpi.value, [(a, b) for _, a, b in to_date.earlier])
            standard = kpi.standard.spec
            pace = pacing(forecast, standard.red, standard.green)
            forecast_period = to_date.period
        except InsufficientHistory:
            reason = (
                f"no forecast: a period-end forecast needs at least {MIN_EARLIER_PERIODS} earlier periods with a stored run "
                f"near the same point ({to_date.elapsed:.0%} elapsed, within {TO_DATE_TOLERANCE:.0%} of the period) and one at "
                f"their end; {len(to_date.earlier)} {'has' if len(to_date.earlier) == 1 else 'have'} both"
            )
    elif unit is None:
        reason = _no_forecast_reason(spec)
    else:
        run: list[float] = []
        for value in reversed(values):  # the latest stretch without a gap
            if value is None:
                break
            run.append(value)
        run.reverse()
        try:
            forecast = forecast_next(run, season=season)
            spec = kpi.standard.spec
            pace = pacing(forecast, spec.red, spec.green)
            months = _UNIT_MONTHS[unit]
            forecast_period = Period(PeriodLabel.CURRENT, kpi.period_end, _months_ahead(kpi.period_end, months))
        except InsufficientHistory as exc:
            reason = f"no forecast: {exc}"
    # anomaly of the latest period, and every flagged one
    scored_at = score = None
    anomaly_reason = None
    flagged = []
    if values:
        scores = anomaly.score_history(values, direction=kpi.direction, season=season if unit else None)
        flagged = [(periods[s.index], s) for s in scores if s is not None and s.anomalous]
        if periods[-1].end == kpi.period_end and scores[-1] is not None:
            score, scored_at = scores[-1], periods[-1]
    if score is None and kpi.value is None:
        anomaly_reason = "no anomaly score without a current value"
    elif score is None:
        anomaly_reason = (
            f"no anomaly score: it needs the value one {'season' if season else 'period'} earlier and "
            f"{anomaly.MIN_CHANGES} earlier changes over that lag ({len([v for v in values if v is not None])} periods stored)"
            if unit else "no anomaly score for a to-date or trailing period"
        )
    history = len(to_date.earlier) if to_date is not None else len([v for v in values if v is not None])
    return KpiOutlook(kpi.metric, key, forecast_period, pace, reason, score, scored_at, anomaly_reason, tuple(flagged),
                      history, to_date.elapsed if to_date is not None and pace is not None else None)


def _period_months(bounds: Sequence[tuple[datetime, datetime]]) -> int:
    units = {calendar_unit(a, b) for a, b in bounds}
    return min((_UNIT_MONTHS[u] for u in units if u), default=1)


def _coarsen(series: tuple[list[Period], list[float | None]], unit: str) -> dict[tuple[datetime, datetime], float | None]:
    """A series on ``unit`` periods: each whole ``unit`` period whose finer periods are all
    stored gets the mean of their values (None if none has one)."""
    months = _UNIT_MONTHS[unit]
    groups: dict[tuple[datetime, datetime], list[tuple[Period, float | None]]] = defaultdict(list)
    for period, value in zip(*series):
        start = _calendar_start(period.start, unit)
        groups[(start, _months_ahead(start, months))].append((period, value))
    out = {}
    for (start, end), members in groups.items():
        covered = sum(_UNIT_MONTHS[calendar_unit(p.start, p.end) or "month"] for p, _ in members)
        if covered == months:
            values = [v for _, v in members if v is not None]
            out[(start, end)] = sum(values) / len(values) if values else None
    return out


def _aligned(
    series: Mapping[Any, tuple[list[Period], list[float | None]]], keys: Sequence[Any]
) -> tuple[list[tuple[datetime, datetime]], dict[Any, list[float | None]]]:
    """The series of ``keys`` on the union of their periods (None where one has no value). Series
    on different calendar units (a quarterly employee survey, a monthly CSAT) are compared on the
    coarser one: a finer series' value for a quarter is the mean of its months."""
    units = {calendar_unit(p.start, p.end) for key in keys for p in series[key][0]} - {None}
    coarsest = max(units, key=lambda u: _UNIT_MONTHS[u]) if units else "month"
    by_key = {key: _coarsen(series[key], coarsest) for key in keys}
    bounds = sorted({b for values in by_key.values() for b in values})
    return bounds, {key: [by_key[key].get(b) for b in bounds] for key in keys}


def _link_analyses(
    link: ChainLink,
    totals: Mapping[str, tuple[list[Period], list[float | None]]],
    by_unit: Mapping[str, Mapping[str, tuple[list[Period], list[float | None]]]],
    unit_pairs: list[tuple[str, str]] | None,
    names: Mapping[str, str],
) -> list[tuple[Linkage, int]]:
    keys = (link.driver, link.outcome)
    label = (names.get(link.driver, link.driver), names.get(link.outcome, link.outcome))
    results = []
    if link.driver in totals and link.outcome in totals:
        bounds, aligned = _aligned(totals, keys)
        results.append((link_over_periods(aligned[link.driver], aligned[link.outcome], keys=keys, names=label), _period_months(bounds)))
    driver_units, outcome_units = by_unit.get(link.driver), by_unit.get(link.outcome)
    same_units = link.driver_unit == link.outcome_unit
    if link.driver_unit and driver_units and outcome_units and (same_units or unit_pairs is not None):
        flat = {("d", u): s for u, s in driver_units.items()} | {("o", u): s for u, s in outcome_units.items()}
        bounds, aligned = _aligned(flat, list(flat))
        driver = {u: aligned[("d", u)] for u in driver_units}
        outcome = {u: aligned[("o", u)] for u in outcome_units}
        pairs = None if same_units else unit_pairs
        results.append((link_across_units(driver, outcome, unit_pairs=pairs, keys=keys, names=label), _period_months(bounds)))
    return results


def _frozen(series: tuple[list[Period], list[float | None]]) -> tuple:
    periods, values = series
    return tuple((p.start, p.end, v) for p, v in zip(periods, values))


_CONTROLLER: list[ThreadpoolController] = []


def _blas() -> ThreadpoolController:
    """The BLAS libraries, found once (numpy's and scipy's are loaded with this module): finding
    them reads the process's libraries, which took longer than a build whose answers are remembered."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


class OutlookCache:
    """Remembers each KPI's and each chain pair's answer by its inputs, so that a change of the
    store recomputes only what it touched (see the module docs). Thread-safe enough for the
    readers' use: each answer is a pure function of its key."""

    def __init__(self, unit_pairs: Callable[[], list[tuple[str, str]] | None] | list[tuple[str, str]] | None = None) -> None:
        self._unit_pairs = unit_pairs
        self._kpis: dict[Any, KpiOutlook] = {}
        # (metric, dimensions key) -> the KPI, its history, its answer: found without building its memo key
        self._recent: dict[tuple[str, str], Any] = {}
        self._links: dict[Any, list[Linkage]] = {}
        from .history import HistoryCache

        self.history = HistoryCache()  # each metric's history, read again when it moved
        self.computed = 0  # answers computed (not remembered): for the tests and the benchmark

    def unit_pairs(self) -> list[tuple[str, str]] | None:
        pairs = self._unit_pairs() if callable(self._unit_pairs) else self._unit_pairs
        return None if pairs is None else [tuple(p) for p in pairs]

    @staticmethod
    def history_keys(scorecard: Scorecard, chain: bool = True) -> set[str]:
        """The metrics whose history the outlook of ``scorecard`` reads."""
        chain_keys = {k for link in CHAIN for k in (link.driver, link.outcome)} if chain else set()
        return {kpi.metric for kpi in scorecard.kpis} | chain_keys

    def build(self, store: Store, scorecard: Scorecard, snapshots: Sequence[Any] | None = None, *, chain: bool = True,
              partial: bool = False) -> Outlook:
        """The outlook of ``scorecard`` from the store's history (``snapshots``: already read).

        ``chain=False`` leaves the value chain out; ``partial``: ``scorecard`` holds only some
        KPIs (one KPI's page), so the answers remembered for the others are kept."""
        # The fits are thousands of optimisations of a few dozen numbers: BLAS threads only get
        # in each other's way (measured: 15 s instead of 1.6 s on two busy cores). Limited when
        # the first answer is computed: finding the BLAS libraries costs more than a build whose
        # answers are all remembered.
        with ExitStack() as stack:
            limited: list[bool] = []

            def one_blas_thread() -> None:
                if not limited:
                    stack.enter_context(_blas().limit(limits=1))
                    limited.append(True)

            return self._build(store, scorecard, snapshots, chain, partial, one_blas_thread)

    def _build(self, store: Store, scorecard: Scorecard, snapshots: Sequence[Any] | None, chain: bool, partial: bool,
               computing: Callable[[], None]) -> Outlook:
        if snapshots is None:
            snapshots = self.history.snapshots(store, self.history_keys(scorecard, chain))
        by_metric: dict[str, list[Any]] = defaultdict(list)
        for snapshot in snapshots:
            by_metric[snapshot.metric_key].append(snapshot)
        kpis, used_kpis = {}, {}
        specs, to_date = self._to_date(store, scorecard)
        calendars = {metric: _calendar_snapshots(snapshots) for metric, snapshots in by_metric.items()}
        recent: dict[tuple[str, str], Any] = {}
        for kpi in scorecard.kpis:
            place = (kpi.metric, kpi.dimensions_key)
            running = to_date.get(place)
            history = by_metric.get(kpi.metric, [])
            # the same KPI on the same history (the same snapshot objects) as last time: its answer
            last = self._recent.get(place)
            if (last is not None and (last[0] is kpi or last[0] == kpi) and last[2] == (running, specs.get(kpi.metric))
                    and len(last[1]) == len(history) and all(a is b for a, b in zip(last[1], history))):
                memo, result = last[3], last[4]
                recent[place] = last
                used_kpis[memo] = result
                kpis[place] = result
                continue
            periods, values = _series(history, kpi.dimensions_key, calendars.get(kpi.metric))
            spec = kpi.standard.spec
            memo = (kpi.metric, kpi.dimensions_key, kpi.direction, kpi.value, kpi.period_start, kpi.period_end,
                    spec.red, spec.green, tuple((p.start, p.end, v) for p, v in zip(periods, values)), running,
                    specs.get(kpi.metric))
            result = self._kpis.get(memo)
            if result is None:
                computing()
                try:
                    result = _kpi_outlook(kpi, periods, values, running, specs.get(kpi.metric))
                except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:  # one KPI's odd history
                    log.warning("outlook of %s: %s; no forecast or anomaly score for it", kpi.key, exc)
                    result = KpiOutlook(kpi.metric, dict(kpi.dimensions), forecast_reason=f"no forecast: {exc}",
                                        anomaly_reason=f"no anomaly score: {exc}")
                self.computed += 1
            used_kpis[memo] = result
            kpis[place] = result
            recent[place] = (kpi, history, (running, specs.get(kpi.metric)), memo, result)
        if partial:
            self._kpis.update(used_kpis)
            self._recent = {**self._recent, **recent}
        else:
            self._kpis = used_kpis  # forget answers no KPI asks for any more: the memory stays bounded
            self._recent = recent
        if not chain:
            return Outlook(kpis, [], self.unit_pairs() if self._unit_pairs is not None else None)
        records = scorecard.value_source[0] if scorecard.value_source is not None else store.metric_records()
        analyses, used_links = self._chain(records, by_metric, computing)
        self._links = used_links
        chain = [link for link, _ in analyses]
        months = {(link.driver, link.outcome, link.basis): m for link, m in analyses}
        names = {key: record.name for key, record in records.items()}
        return Outlook(kpis, chain, self.unit_pairs(), months, names)

    def _to_date(self, store: Store, scorecard: Scorecard) -> tuple[dict[str, str], dict[tuple[str, str], ToDate]]:
        """The period spec of each KPI's metric not on a whole calendar period, and for each
        to-date KPI with a value the same point of its earlier periods: one query for the specs,
        one per to-date metric for the points (whatever the number of runs kept)."""
        pending = [k for k in scorecard.kpis if k.value is not None and k.period_start is not None and k.period_end is not None
                   and calendar_unit(k.period_start, k.period_end) is None]
        if not pending:
            return {}, {}
        specs = store.latest_run_periods()
        by_metric: dict[str, list[Kpi]] = defaultdict(list)
        for kpi in pending:
            if specs.get(kpi.metric) in TO_DATE:
                by_metric[kpi.metric].append(kpi)
        found = {}
        for metric, kpis in by_metric.items():
            spec = specs[metric]
            unit = spec.removesuffix("_to_date")
            # the KPIs of one metric come from its latest run: one period now running
            start, now = kpis[0].period_start, kpis[0].period_end
            if _calendar_start(start, unit) != start or not start < now:
                continue
            running, elapsed, windows = _to_date_windows(spec, start, now)
            if now > running.end:
                continue
            # runs of the to-date spec, and of the whole unit (a complete-period value)
            points = store.period_points(metric, [spec, unit], _store_windows(windows),
                                         sorted({k.dimensions_key for k in kpis}))
            by_dims: dict[str, list[Any]] = defaultdict(list)
            for point in points:
                by_dims[point.dimensions].append(point)
            for kpi in kpis:
                if (kpi.period_start, kpi.period_end) != (start, now):
                    continue
                key = kpi.dimensions_key
                found[(metric, key)] = ToDate(spec, running, elapsed, _earlier_points(windows, by_dims.get(key, [])))
        return specs, found

    def _chain(self, records: Mapping[str, Any], by_metric: Mapping[str, list[Any]],
               computing: Callable[[], None]) -> tuple[list[tuple[Linkage, int]], dict[Any, Any]]:
        names = {key: record.name for key, record in records.items()}
        totals: dict[str, tuple[list[Period], list[float | None]]] = {}
        by_unit: dict[str, dict[str, tuple[list[Period], list[float | None]]]] = {}
        unit_dims = {d for link in CHAIN for d in (link.driver_unit, link.outcome_unit) if d}
        for key in {k for link in CHAIN for k in (link.driver, link.outcome)}:
            snapshots = by_metric.get(key)
            if not snapshots:
                continue
            periods, values = _series(snapshots, dimensions_key({}))
            if any(v is not None for v in values):
                totals[key] = (periods, values)
            units: dict[str, list[float | None]] = {}
            for i, snapshot in enumerate(s for s in snapshots if calendar_unit(s.period_start, s.period_end)):
                for o in snapshot.observations:
                    if o.period_label == PeriodLabel.CURRENT and len(o.dimensions) == 1 and next(iter(o.dimensions)) in unit_dims:
                        units.setdefault(next(iter(o.dimensions.values())), [None] * len(periods))[i] = o.value
            if units:
                by_unit[key] = {u: (periods, v) for u, v in units.items()}
        pairs = self.unit_pairs()
        chain, used = [], {}
        for link in CHAIN:
            involved = [totals[k] for k in (link.driver, link.outcome) if k in totals]
            units = [sorted((u, _frozen(s)) for u, s in by_unit.get(k, {}).items()) for k in (link.driver, link.outcome)]
            memo = (link, tuple(_frozen(s) for s in involved), tuple(tuple(u) for u in units), tuple(pairs or ()),
                    pairs is None, names.get(link.driver), names.get(link.outcome))
            result = self._links.get(memo)
            if result is None:
                computing()
                try:
                    result = _link_analyses(link, totals, by_unit, pairs, names)
                except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
                    log.warning("value chain %s -> %s: %s; left out", link.driver, link.outcome, exc)
                    result = []
                self.computed += 1
            used[memo] = result
            chain.extend(result)
        return chain, used


class SourceUnitPairs:
    """The value chain's (department, channel category) pairs, read from the source once
    (:func:`crmmetrics.readers.value_chain.unit_pairs_from_interactions`: one aggregate query) and kept.
    A source that cannot be read gives None (the across-unit analyses are left out) and is
    asked again at the next change of the store."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._pairs: list[tuple[str, str]] | None = None

    def __call__(self) -> list[tuple[str, str]] | None:
        if self._pairs is None:
            from crmmetrics.core import schema
            from .value_chain import unit_pairs_from_interactions

            try:
                with self.app.source.connect() as connection:
                    self._pairs = unit_pairs_from_interactions(connection, schema.TABLES)
            except Exception as exc:  # noqa: BLE001 - the chain says it has no unit pairs
                log.warning("value chain: cannot read which departments serve which channels from the source (%s)", exc)
                return None
        return self._pairs


def build_outlook(store: Store, scorecard: Scorecard, unit_pairs: list[tuple[str, str]] | None = None) -> Outlook:
    """The outlook, computed afresh (the CLI's way; readers that render often keep an OutlookCache)."""
    return OutlookCache(unit_pairs).build(store, scorecard)


# --- Prometheus families ----------------------------------------------------------------------


CHAIN_LABELS = ["driver", "outcome", "stage", "basis"]


def outlook_families(outlook: Outlook, scorecard: Scorecard) -> Iterator[Metric]:
    """The outlook's Prometheus families (docs/operations.md). A KPI without a forecast or an
    anomaly score has no sample in those families: no data is no data."""
    families = GaugeFamilies()
    start = GaugeMetricFamily(FORECAST_PERIOD_START, "Unix time at which the period a KPI's forecast is for starts", labels=["metric"])
    end = GaugeMetricFamily(FORECAST_PERIOD_END, "Unix time at which the period a KPI's forecast is for ends (exclusive)", labels=["metric"])
    bounds: dict[str, Period] = {}
    for kpi in scorecard.kpis:
        result = outlook.of(kpi)
        if result is None:
            continue
        dims = list(kpi.dimensions)
        labels = {"metric": kpi.metric, "process": kpi.process, "perspective": kpi.perspective, **kpi.dimensions}
        base = EXPORT_UNITS[kpi.unit]
        if result.pacing is not None:
            forecast = result.pacing.forecast
            suffix = base.suffix
            families.add(forecast_family(kpi.unit, dims), f"Forecast of a KPI for the period now running, in {suffix}", labels,
                         base.to_base(forecast.value))
            families.add(forecast_family(kpi.unit, dims, "lower"),
                         f"Lower bound of the 80% prediction interval of a KPI's forecast, in {suffix}", labels, base.to_base(forecast.lower))
            families.add(forecast_family(kpi.unit, dims, "upper"),
                         f"Upper bound of the 80% prediction interval of a KPI's forecast, in {suffix}", labels, base.to_base(forecast.upper))
            families.add(pacing_family(dims), "Pacing of a KPI to the end of the period now running: 0 off track, 1 at risk, 2 on track",
                         labels, PACING_VALUES[result.pacing.status])
            for status, probability in result.pacing.probabilities.items():
                families.add(pacing_probability_family(dims), "Probability (0-1) that a KPI ends the period now running with this status",
                             {**labels, "status": status}, probability)
            if result.forecast_period is not None:
                bounds[kpi.metric] = result.forecast_period
        if result.anomaly is not None:
            scored = result.anomaly
            families.add(anomaly_family("score", dims),
                         "Robust z-score of a KPI's latest period against its history and season (sign: up or down)", labels,
                         max(min(scored.score, 1e9), -1e9))
            families.add(anomaly_family("flagged", dims), f"1 if a KPI's latest period is an anomaly (|score| >= {anomaly.THRESHOLD:g}), else 0",
                         labels, 1.0 if scored.anomalous else 0.0)
            surprise = {"good": 1.0, "bad": -1.0, None: 0.0}[scored.surprise]
            families.add(anomaly_family("surprise", dims), "Direction of a KPI's anomaly for its owner: 1 good surprise, -1 bad, 0 none",
                         labels, surprise)
    yield from families
    from .exporter import timestamp

    for key, period in sorted(bounds.items()):
        start.add_metric([key], timestamp(period.start))
        end.add_metric([key], timestamp(period.end))
    yield from (start, end)
    yield from chain_families(outlook)


def chain_families(outlook: Outlook) -> Iterator[Metric]:
    correlation = GaugeMetricFamily(CHAIN_CORRELATION, "Correlation of a value-chain link at its strongest lag (over periods: of the changes; across units: partial)", labels=CHAIN_LABELS)
    lower = GaugeMetricFamily(CHAIN_LOWER, "Lower bound of the 95% interval (Fisher z, Bonferroni over the lags) of a value-chain correlation", labels=CHAIN_LABELS)
    upper = GaugeMetricFamily(CHAIN_UPPER, "Upper bound of the 95% interval of a value-chain correlation", labels=CHAIN_LABELS)
    lag = GaugeMetricFamily(CHAIN_LAG, "Lag of a value-chain link: the outcome follows the driver this long later (one period = its length; months as 2,629,800 s)", labels=CHAIN_LABELS)
    linked = GaugeMetricFamily(CHAIN_LINKED, "1 if a value-chain link is found (its interval excludes 0), 0 if not; absent with too little data", labels=CHAIN_LABELS)
    observations = GaugeMetricFamily(CHAIN_OBSERVATIONS, "Paired observations of a value-chain analysis at its chosen lag (the most at any lag when there is too little data)", labels=CHAIN_LABELS)
    for link in outlook.chain:
        values = [link.driver, link.outcome, _stage(link), link.basis]
        observations.add_metric(values, link.observations if link.linked is not None else max((n for _, _, n in link.by_lag), default=0))
        if link.linked is None or link.correlation is None:
            continue
        correlation.add_metric(values, link.correlation)
        lower.add_metric(values, link.lower)
        upper.add_metric(values, link.upper)
        lag.add_metric(values, outlook.lag_months(link) * _MONTH_SECONDS)
        linked.add_metric(values, 1.0 if link.linked else 0.0)
    yield from (correlation, lower, upper, lag, linked, observations)

