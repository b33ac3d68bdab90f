"""Will the KPI meet its standard? Forecasts to the end of the period, intervals and pacing.

Two questions, two inputs:

* **Next period** (complete periods: month, quarter, year): from the history of the KPI's
  values, one per period, oldest first, :func:`forecast_next` forecasts the next period's value
  with one of a few well-known methods (Hyndman & Athanasopoulos, *Forecasting: Principles and
  Practice*, chapters 5 and 8):

  - ``naive``: the last value;
  - ``seasonal_naive``: the value one season ago (12 months, 4 quarters);
  - ``mean``: the mean of the history (a KPI that wobbles around a level);
  - ``drift``: the last value plus the average change so far;
  - ``ses``: simple exponential smoothing (a level that moves), smoothing factor fitted to the
    history by least squares of the one-step errors;
  - ``holt``: Holt's linear trend (a level and a trend that move), both factors fitted the same way.

  ``method="auto"`` (the default) picks the method whose rolling-origin back-test on this
  KPI's own history has the lowest mean absolute scaled error: the method that would have
  forecast this KPI best in its own past.

* **End of the running period** (to-date and partial periods): from the value so far and the
  same point of earlier periods (the value at that point and the period's final value),
  :func:`forecast_period_end` carries the value so far to the end the way earlier periods went
  from that point: ``unchanged`` (the period ends where it stands: a rate or a score whose
  second half is like its first), ``additive`` (final = now + the earlier change from that
  point) or ``proportional`` (final = now × the earlier ratio, for sums that accumulate like
  revenue or new customers), the one with the lowest leave-one-out error.

**Prediction interval**: from the back-tested errors, not from model assumptions: the errors
the method made forecasting the KPI's own past (one step ahead from every origin, or leaving
each earlier period out). Their root mean square is the forecast's standard error; the interval
and the probabilities use a Student t distribution with (errors - 1) degrees of freedom, so a
short history gives a wide interval. A history without any error (a flat series, an exact
trend) gives a zero-width interval.

**Pacing**: the probability that the period ends green, amber or red is the probability mass
of the forecast distribution on each side of the standard's thresholds, each stretch judged by
the scorecard's own status rule (:func:`crmmetrics.readers.scorecard.kpi_status`). Then:

- ``off_track``: ending red is at least as likely as not (P(red) >= 0.5);
- ``on_track``: ending green is at least as likely as not and red unlikely (P(green) >= 0.5 and
  P(red) < 0.2);
- ``at_risk``: anything else.

Too little history is no forecast: :class:`InsufficientHistory` says how much is needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

from crmmetrics.core.vocabulary import Direction, KpiStatus
from .scorecard import kpi_status

__all__ = [
    "METHODS",
    "PATH_METHODS",
    "Forecast",
    "Pacing",
    "BacktestResult",
    "InsufficientHistory",
    "forecast_next",
    "forecast_period_end",
    "backtest",
    "pacing",
    "status_probabilities",
]

#: Pacing thresholds on the probabilities of the period's final status.
OFF_TRACK_MIN_RED = 0.5
ON_TRACK_MIN_GREEN = 0.5
ON_TRACK_MAX_RED = 0.2

#: Default level of the prediction interval (80 %, as forecasting tools usually show with 95 %).
DEFAULT_LEVEL = 0.8

#: Fewest back-tested errors a forecast needs for its interval.
MIN_ERRORS = 2


class InsufficientHistory(ValueError):
    """Too little history for a forecast; the message says how much is needed."""


@dataclass(frozen=True)
class Forecast:
    """A point forecast with its prediction interval."""

    method: str
    value: float
    lower: float
    upper: float
    level: float
    #: standard error of the forecast: root mean square of the back-tested errors
    sigma: float
    #: number of back-tested errors behind ``sigma`` (the t distribution has errors - 1 df)
    errors: int
    #: number of history values (or earlier periods) the forecast used
    observations: int

    def distribution(self) -> Any:
        """The forecast's distribution (scipy frozen t), or None when sigma is 0."""
        if self.sigma <= 0:
            return None
        return stats.t(df=max(self.errors - 1, 1), loc=self.value, scale=self.sigma)

    def contains(self, value: float) -> bool:
        return self.lower <= value <= self.upper

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "value": self.value,
            "lower": self.lower,
            "upper": self.upper,
            "level": self.level,
            "sigma": self.sigma,
            "errors": self.errors,
            "observations": self.observations,
        }


@dataclass(frozen=True)
class Pacing:
    """Where a KPI is heading against its standard."""

    status: str  # on_track, at_risk, off_track
    #: probability of ending the period green, amber and red
    probabilities: dict[str, float]
    red: float
    green: float
    forecast: Forecast

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "probabilities": dict(self.probabilities),
            "red": self.red,
            "green": self.green,
            "forecast": self.forecast.to_json(),
        }


@dataclass(frozen=True)
class BacktestResult:
    """The one-step-ahead errors of one method on a history (rolling origin)."""

    method: str
    #: number of forecasts made (origins)
    n: int
    mae: float
    #: mean absolute percentage error, percent; None when an actual value is 0
    mape: float | None
    #: mean absolute scaled error (Hyndman & Koehler 2006): MAE over the in-sample MAE of the
    #: (seasonal) naive method; None when that is 0
    mase: float | None
    rmse: float

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "n": self.n, "mae": self.mae, "mape": self.mape, "mase": self.mase, "rmse": self.rmse}


# --- the methods: history (oldest first) -> next value ------------------------------------


def _naive(y: np.ndarray, season: int | None) -> float:
    return float(y[-1])


def _seasonal_naive(y: np.ndarray, season: int | None) -> float:
    return float(y[-season])


def _mean(y: np.ndarray, season: int | None) -> float:
    return float(y.mean())


def _drift(y: np.ndarray, season: int | None) -> float:
    return float(y[-1] + (y[-1] - y[0]) / (len(y) - 1))


def _ses_run(y: np.ndarray, alpha: float) -> tuple[float, float]:
    """(sum of squared one-step errors, next value) of simple exponential smoothing."""
    level, sse = y[0], 0.0
    for value in y[1:]:
        error = value - level
        sse += error * error
        level += alpha * error
    return sse, level


def _ses(y: np.ndarray, season: int | None) -> float:
    fit = optimize.minimize_scalar(lambda a: _ses_run(y, a)[0], bounds=(0.01, 0.99), method="bounded")
    return float(_ses_run(y, fit.x)[1])


def _holt_run(y: np.ndarray, alpha: float, beta: float) -> tuple[float, float]:
    """(sum of squared one-step errors, next value) of Holt's linear trend method."""
    level, trend, sse = y[1], y[1] - y[0], 0.0
    for value in y[2:]:
        error = value - (level + trend)
        sse += error * error
        new_level = level + trend + alpha * error
        trend += beta * (new_level - level - trend)
        level = new_level
    return sse, level + trend


def _holt(y: np.ndarray, season: int | None) -> float:
    if len(y) < 4:  # too few errors to fit: smooth with middling factors
        return float(_holt_run(y, 0.5, 0.5)[1])
    fit = optimize.minimize(
        lambda p: _holt_run(y, p[0], p[1])[0], x0=[0.5, 0.1], bounds=[(0.01, 0.99), (0.01, 0.99)], method="L-BFGS-B"
    )
    return float(_holt_run(y, fit.x[0], fit.x[1])[1])


# name -> (function, fewest history values it needs, whether it needs a season)
METHODS: dict[str, tuple[Callable[[np.ndarray, int | None], float], int, bool]] = {
    "naive": (_naive, 1, False),
    "seasonal_naive": (_seasonal_naive, 0, True),  # needs one season: checked with the season
    "mean": (_mean, 1, False),
    "drift": (_drift, 2, False),
    "ses": (_ses, 2, False),
    "holt": (_holt, 2, False),
}


def _needs(method: str, season: int | None) -> int:
    function, minimum, seasonal = METHODS[method]
    return season if seasonal else minimum


def _usable(methods: Sequence[str] | None, season: int | None) -> list[str]:
    if methods is None:
        methods = [m for m in METHODS if not METHODS[m][2] or season]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown forecast method {unknown[0]!r}: expected one of {', '.join(METHODS)}")
    for method in methods:
        if METHODS[method][2] and not season:
            raise ValueError(f"forecast method {method!r} needs a season length (periods per year)")
    return list(methods)


def _history(history: Sequence[float]) -> np.ndarray:
    try:
        y = np.asarray([float(v) for v in history], dtype=float)
    except (TypeError, ValueError):
        y = np.array([math.nan])
    if not np.all(np.isfinite(y)):
        raise ValueError("a forecast history must be numbers without gaps (no None, NaN or inf)")
    return y


def _one_step_errors(y: np.ndarray, method: str, season: int | None, start: int) -> np.ndarray:
    """Errors (actual - forecast) forecasting y[k] from y[:k], for k = start .. len(y) - 1."""
    function = METHODS[method][0]
    return np.array([y[k] - function(y[:k], season) for k in range(start, len(y))], dtype=float)


def _scale(y: np.ndarray, season: int | None) -> float:
    """In-sample MAE of the seasonal naive method (naive without a season): the MASE unit."""
    lag = season if season and len(y) > season else 1
    return float(np.mean(np.abs(y[lag:] - y[:-lag]))) if len(y) > lag else 0.0


def backtest(
    history: Sequence[float],
    *,
    season: int | None = None,
    methods: Sequence[str] | None = None,
    start: int | None = None,
) -> list[BacktestResult]:
    """Rolling-origin one-step-ahead back-test of each method on ``history`` (oldest first).

    Every method forecasts the same points, ``history[start:]``, each from all values before it;
    ``start`` defaults to (and is at least) the most values any method needs. ``season``: periods per year (12 monthly, 4 quarterly) for the seasonal
    method and the MASE scale. Methods that need more history than there is are left out.
    """
    y = _history(history)
    candidates = _usable(methods, season)
    candidates = [m for m in candidates if _needs(m, season) < len(y)]
    needed = max((_needs(m, season) for m in candidates), default=1)
    start = needed if start is None else max(start, needed)
    if start >= len(y) or not candidates:
        raise InsufficientHistory(f"a back-test needs more than {start} values, the history has {len(y)}")
    scale = _scale(y, season)
    actual = y[start:]
    results = []
    for method in candidates:
        errors = _one_step_errors(y, method, season, start)
        mae = float(np.mean(np.abs(errors)))
        results.append(
            BacktestResult(
                method=method,
                n=len(errors),
                mae=mae,
                mape=float(100 * np.mean(np.abs(errors / actual))) if np.all(actual != 0) else None,
                mase=mae / scale if scale > 0 else None,
                rmse=float(np.sqrt(np.mean(errors**2))),
            )
        )
    return results


def _interval(method: str, value: float, errors: np.ndarray, level: float, observations: int) -> Forecast:
    sigma = float(np.sqrt(np.mean(errors**2)))
    half = float(stats.t.ppf(0.5 + level / 2, df=max(len(errors) - 1, 1))) * sigma if sigma > 0 else 0.0
    return Forecast(method, value, value - half, value + half, level, sigma, len(errors), observations)


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"prediction interval level must lie between 0 and 1, not {level!r}")


def forecast_next(
    history: Sequence[float],
    *,
    season: int | None = None,
    method: str = "auto",
    level: float = DEFAULT_LEVEL,
) -> Forecast:
    """Forecast the value of the period after ``history`` (one value per complete period, oldest
    first) with its prediction interval at ``level`` (see the module docs).

    ``method``: one of :data:`METHODS` or ``"auto"`` (the lowest back-tested MASE, then MAE; ties
    go to the simpler method, in the order of :data:`METHODS`). The interval comes from the
    method's one-step back-test errors on the history, so it needs at least
    ``MIN_ERRORS`` forecastable points beyond what the method needs; otherwise
    :class:`InsufficientHistory`.
    """
    _check_level(level)
    y = _history(history)
    if method == "auto":
        candidates = [m for m in _usable(None, season) if _needs(m, season) + MIN_ERRORS <= len(y)]
        if not candidates:
            raise InsufficientHistory(f"a forecast needs at least {1 + MIN_ERRORS} periods of history, it has {len(y)}")
        start = max(_needs(m, season) for m in candidates)
        scored = backtest(y, season=season, methods=candidates, start=start)
        best = min(scored, key=lambda r: (r.mase if r.mase is not None else r.mae, r.mae, candidates.index(r.method)))
        method = best.method
    else:
        _usable([method], season)
        start = _needs(method, season)
        if start + MIN_ERRORS > len(y):
            raise InsufficientHistory(
                f"forecast method {method!r} needs at least {start + MIN_ERRORS} periods of history, it has {len(y)}"
            )
    errors = _one_step_errors(y, method, season, start)
    return _interval(method, METHODS[method][0](y, season), errors, level, len(y))


# --- the end of the running period ---------------------------------------------------------

PATH_METHODS = ("unchanged", "additive", "proportional")


def _path(method: str, now: float, earlier: np.ndarray) -> float:
    at_point, final = earlier[:, 0], earlier[:, 1]
    if method == "unchanged":
        return float(now)
    if method == "additive":
        return float(now + np.mean(final - at_point))
    return float(now * np.mean(final / at_point))


def forecast_period_end(
    to_date: float,
    earlier: Sequence[tuple[float, float]],
    *,
    method: str = "auto",
    level: float = DEFAULT_LEVEL,
) -> Forecast:
    """Forecast the final value of the running period from its value so far, ``to_date``.

    ``earlier``: for earlier periods, ``(value at the same point of the period, final value)``.
    ``method``: ``unchanged``, ``additive``, ``proportional`` (only when no earlier value at the
    point is 0 and all have the sign of ``to_date``) or ``"auto"`` (the lowest leave-one-out mean
    absolute error; ties go to the simpler method, in that order). The interval comes from the leave-one-out errors: each earlier period's final value
    forecast from the others. Needs at least ``MIN_ERRORS + 1`` earlier periods.
    """
    _check_level(level)
    pairs = np.asarray([(float(a), float(b)) for a, b in earlier], dtype=float).reshape(-1, 2)
    if not np.all(np.isfinite(pairs)) or not math.isfinite(float(to_date)):
        raise ValueError("period-to-date values must be numbers (no None, NaN or inf)")
    if len(pairs) < MIN_ERRORS + 1:
        raise InsufficientHistory(
            f"a period-end forecast needs at least {MIN_ERRORS + 1} earlier periods, it has {len(pairs)}"
        )
    proportional_ok = bool(np.all(pairs[:, 0] != 0) and (np.all(pairs[:, 0] > 0) if to_date >= 0 else np.all(pairs[:, 0] < 0)))
    if method == "auto":
        candidates = ["unchanged", "additive", "proportional"] if proportional_ok else ["unchanged", "additive"]
    elif method in PATH_METHODS:
        if method == "proportional" and not proportional_ok:
            raise ValueError("the proportional method needs earlier values at the point that are not 0 and share the sign of the value so far")
        candidates = [method]
    else:
        raise ValueError(f"unknown period-end method {method!r}: expected unchanged, additive, proportional or auto")

    def loo(m: str) -> np.ndarray:
        rest = lambda i: np.delete(pairs, i, axis=0)  # noqa: E731
        return np.array([pairs[i, 1] - _path(m, pairs[i, 0], rest(i)) for i in range(len(pairs))])

    errors = {m: loo(m) for m in candidates}
    best = min(candidates, key=lambda m: (float(np.mean(np.abs(errors[m]))), candidates.index(m)))
    return _interval(best, _path(best, float(to_date), pairs), errors[best], level, len(pairs))


# --- pacing -------------------------------------------------------------------------------


def status_probabilities(forecast: Forecast, red: float, green: float) -> dict[str, float]:
    """P(the period ends green / amber / red) under the forecast's distribution.

    The thresholds cut the line into three stretches; each stretch's probability mass goes to
    the status the scorecard's rule gives a value inside it (values exactly on a threshold have
    no mass). Without spread (sigma 0) the status of the point forecast has probability 1.
    """
    if red == green:
        raise ValueError("red and green thresholds must differ")
    probabilities = {KpiStatus.GREEN: 0.0, KpiStatus.AMBER: 0.0, KpiStatus.RED: 0.0}
    distribution = forecast.distribution()
    if distribution is None:
        probabilities[kpi_status(forecast.value, red, green)] = 1.0
        return probabilities
    low, high = sorted((red, green))
    stretches = ((-math.inf, low, low - 1.0), (low, high, (low + high) / 2), (high, math.inf, high + 1.0))
    for start, end, inside in stretches:
        mass = float(distribution.cdf(end) - distribution.cdf(start))
        probabilities[kpi_status(inside, red, green)] += mass
    return probabilities


def pacing(forecast: Forecast, red: float, green: float, direction: str | Direction | None = None) -> Pacing:
    """The pacing status of a KPI from its forecast and its standard's thresholds.

    ``direction`` (optional) is checked against the thresholds: a higher-is-better KPI has red
    below green, a lower-is-better one red above green.
    """
    if direction is not None:
        higher = Direction(direction) == Direction.HIGHER_IS_BETTER
        if (red < green) != higher:
            raise ValueError(f"red {red} and green {green} disagree with the direction {Direction(direction)}")
    probabilities = status_probabilities(forecast, red, green)
    if probabilities["red"] >= OFF_TRACK_MIN_RED:
        status = "off_track"
    elif probabilities["green"] >= ON_TRACK_MIN_GREEN and probabilities["red"] < ON_TRACK_MAX_RED:
        status = "on_track"
    else:
        status = "at_risk"
    return Pacing(status, probabilities, red, green, forecast)
