"""Forecasts to the period's end, their intervals and the pacing status, on histories whose
answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from crmmetrics.readers.forecast import (
    Forecast,
    InsufficientHistory,
    backtest,
    forecast_next,
    forecast_period_end,
    pacing,
    status_probabilities,
)


def test_exact_linear_trend_is_carried_on():
    history = [10 + 2 * t for t in range(12)]
    forecast = forecast_next(history)
    assert forecast.method in ("drift", "holt")
    assert forecast.value == pytest.approx(34.0)
    assert forecast.contains(34.0)
    assert forecast.upper - forecast.lower == pytest.approx(0.0, abs=1e-6)


def test_noisy_linear_trend_interval_contains_the_true_value():
    rng = np.random.default_rng(3)
    t = np.arange(30)
    history = 100 + 1.5 * t + rng.normal(0, 1.0, t.size)
    forecast = forecast_next(history)
    truth = 100 + 1.5 * 30
    assert forecast.contains(truth)
    assert abs(forecast.value - truth) < 2.0
    # the interval reflects the noise (sd 1): neither zero nor absurdly wide
    assert 0.5 < forecast.sigma < 3.0
    assert forecast.lower < forecast.value < forecast.upper


def test_seasonal_pattern_is_repeated():
    pattern = [5.0, 3.0, 8.0, 6.0]
    forecast = forecast_next(pattern * 4, season=4)
    assert forecast.method == "seasonal_naive"
    assert forecast.value == 5.0 and forecast.contains(5.0)
    # the next one after that
    assert forecast_next(pattern * 4 + [5.0], season=4).value == 3.0


def test_seasonal_pattern_with_noise():
    rng = np.random.default_rng(11)
    season = np.array([0.0, -4.0, 6.0, 2.0, -1.0, 3.0, 8.0, -6.0, 1.0, 0.0, 4.0, -3.0])
    t = np.arange(36)
    history = 50 + season[t % 12] + rng.normal(0, 0.5, t.size)
    forecast = forecast_next(history, season=12, level=0.95)
    assert forecast.method == "seasonal_naive"
    assert forecast.contains(50 + season[0])


def test_interval_coverage_matches_its_level():
    """Over many series of one process, the 80% interval holds the next value about 80% of the
    time (back-tested errors are an honest measure of the spread)."""
    rng = np.random.default_rng(21)
    season = np.array([0.0, -4.0, 6.0, 2.0, -1.0, 3.0, 8.0, -6.0, 1.0, 0.0, 4.0, -3.0])
    hits, trials = 0, 300
    for _ in range(trials):
        series = 50 + season[np.arange(37) % 12] + rng.normal(0, 1.0, 37)
        forecast = forecast_next(series[:36], season=12, method="seasonal_naive")
        hits += forecast.contains(series[36])
    assert 0.72 <= hits / trials <= 0.88


def test_flat_series():
    forecast = forecast_next([42.0] * 10)
    assert forecast.value == 42.0
    assert (forecast.lower, forecast.upper) == (42.0, 42.0)
    rng = np.random.default_rng(5)
    noisy = 42 + rng.normal(0, 2.0, 24)
    forecast = forecast_next(noisy, season=12)
    assert forecast.contains(42.0)
    assert forecast.sigma > 1.0


def test_named_method_and_errors():
    forecast = forecast_next([1.0, 2.0, 4.0, 7.0], method="naive")
    # one-step naive errors: 1, 2, 3 -> rms sqrt(14/3)
    assert forecast.value == 7.0 and forecast.errors == 3
    assert forecast.sigma == pytest.approx(np.sqrt(14 / 3))
    half = stats.t.ppf(0.9, df=2) * np.sqrt(14 / 3)
    assert (forecast.lower, forecast.upper) == pytest.approx((7.0 - half, 7.0 + half))


def test_too_little_history_is_no_forecast():
    with pytest.raises(InsufficientHistory, match="at least 3 periods of history, it has 2"):
        forecast_next([1.0, 2.0])
    with pytest.raises(InsufficientHistory, match="'seasonal_naive' needs at least 14"):
        forecast_next(list(range(13)), season=12, method="seasonal_naive")
    with pytest.raises(ValueError, match="without gaps"):
        forecast_next([1.0, None, 3.0, 4.0])
    with pytest.raises(ValueError, match="unknown forecast method 'arima'"):
        forecast_next([1.0, 2.0, 3.0, 4.0], method="arima")
    with pytest.raises(InsufficientHistory, match="at least 3 earlier periods, it has 2"):
        forecast_period_end(5.0, [(1.0, 2.0), (2.0, 3.0)])


def test_backtest_errors_by_hand():
    history = [10.0, 12.0, 11.0, 15.0, 14.0]
    results = {r.method: r for r in backtest(history, methods=["naive", "mean"], start=2)}
    naive = results["naive"]
    # forecasts of 11, 15, 14: 12, 11, 15 -> errors -1, 4, -1
    assert naive.n == 3 and naive.mae == pytest.approx(2.0)
    assert naive.mape == pytest.approx(100 * (1 / 11 + 4 / 15 + 1 / 14) / 3)
    # MASE scale: in-sample naive MAE over the whole history (2 + 1 + 4 + 1) / 4 = 2
    assert naive.mase == pytest.approx(1.0)
    # mean: forecasts 11, 11, 12 -> errors 0, 4, 2
    assert results["mean"].mae == pytest.approx(2.0)
    assert results["mean"].rmse == pytest.approx(np.sqrt(20 / 3))
    assert backtest([1.0, 0.0, 2.0, 3.0], methods=["naive"])[0].mape is None


def test_period_end_additive_and_proportional():
    # a score: earlier periods gained 32 points from this point on
    additive = forecast_period_end(30.0, [(28.0, 60.0), (31.0, 63.0), (29.0, 61.0), (30.0, 62.0)])
    assert additive.method == "additive" and additive.value == pytest.approx(62.0)
    assert additive.contains(62.0)
    # a sum: earlier periods ended at three times the value at this point
    proportional = forecast_period_end(30.0, [(10.0, 30.0), (20.0, 60.0), (15.0, 45.0)])
    assert proportional.method == "proportional" and proportional.value == pytest.approx(90.0)
    # noisy: leave-one-out errors give the interval, and it holds the true final value
    rng = np.random.default_rng(2)
    at_point = rng.uniform(40, 60, 8)
    final = 2 * at_point + rng.normal(0, 2, 8)
    forecast = forecast_period_end(50.0, list(zip(at_point, final)))
    assert forecast.method == "proportional"
    assert forecast.contains(100.0)
    assert forecast.errors == 8
    # a rate whose second half is like its first: it ends where it stands
    at_point = rng.uniform(40, 60, 8)
    steady = forecast_period_end(45.0, list(zip(at_point, at_point + rng.normal(0, 1, 8))))
    assert steady.method == "unchanged" and steady.value == 45.0 and steady.contains(45.0)


def _forecast(value: float, sigma: float, errors: int = 11) -> Forecast:
    return Forecast("test", value, value, value, 0.8, sigma, errors, errors + 1)


def test_pacing_by_hand_higher_is_better():
    red, green = 40.0, 55.0
    # value 52, sigma 2, t with 10 df
    expected_green = stats.t.sf((55 - 52) / 2, df=10)
    expected_red = stats.t.cdf((40 - 52) / 2, df=10)
    result = pacing(_forecast(52.0, 2.0), red, green, "higher_is_better")
    assert result.probabilities["green"] == pytest.approx(expected_green)
    assert result.probabilities["red"] == pytest.approx(expected_red)
    assert result.probabilities["amber"] == pytest.approx(1 - expected_green - expected_red)
    assert result.status == "at_risk"  # P(green) about 0.08
    assert pacing(_forecast(60.0, 2.0), red, green).status == "on_track"  # P(green) 0.98
    assert pacing(_forecast(39.0, 2.0), red, green).status == "off_track"  # P(red) 0.69
    # likely green, but a 1-in-4 chance of red is not on track
    wide = pacing(_forecast(56.0, 20.0), red, green)
    assert wide.probabilities["green"] >= 0.5 and wide.probabilities["red"] >= 0.2
    assert wide.status == "at_risk"


def test_pacing_lower_is_better_and_exact():
    red, green = 10.0, 5.0  # a churn rate: lower is better
    result = pacing(_forecast(4.0, 1.0), red, green, "lower_is_better")
    assert result.probabilities["green"] == pytest.approx(stats.t.cdf(1.0, df=10))
    assert result.status == "on_track"
    assert pacing(_forecast(12.0, 1.0), red, green).status == "off_track"
    # no spread: the status of the point forecast, by the scorecard's rule (on red is red)
    assert status_probabilities(_forecast(10.0, 0.0), red, green) == {"green": 0.0, "amber": 0.0, "red": 1.0}
    assert pacing(_forecast(5.0, 0.0), red, green).status == "on_track"
    with pytest.raises(ValueError, match="disagree with the direction"):
        pacing(_forecast(4.0, 1.0), red, green, "higher_is_better")
