"""Anomalies in a KPI's history: planted ones are found with their sign and period, clean
histories stay under the stated false-positive rate (seeded simulations of bounded size)."""

from __future__ import annotations

import numpy as np
import pytest

from crmmetrics.readers.anomaly import FALSE_POSITIVE_RATE, MIN_CHANGES, THRESHOLD, anomalies, latest, score_history

SEASON = np.array([0.9, 0.85, 0.95, 1.0, 1.0, 0.95, 0.9, 0.9, 1.0, 1.05, 1.25, 1.4])


def seasonal_history(rng, months=48, noise=1.0):
    """A monthly KPI with a Christmas peak, a slow trend and normal noise."""
    t = np.arange(months)
    return 100 * SEASON[t % 12] * (1 + 0.005 * t) + rng.normal(0, noise, months)


def test_planted_anomalies_are_found_with_sign_and_period():
    rng = np.random.default_rng(4)
    history = seasonal_history(rng)
    history[26] += 12.0  # a good surprise for a higher-is-better KPI
    history[31] -= 12.0  # a bad one
    found = anomalies(list(history), direction="higher_is_better", season=12)
    assert [(a.index, a.direction, a.surprise) for a in found] == [(26, "up", "good"), (31, "down", "bad")]
    assert found[0].score >= THRESHOLD and found[1].score <= -THRESHOLD
    assert found[0].expected == pytest.approx(history[26] - 12.0, abs=3.0)
    # the spikes did not come back as opposite "anomalies" a season later (38, 43)
    scores = score_history(list(history), direction="higher_is_better", season=12)
    assert abs(scores[38].score) < THRESHOLD and abs(scores[43].score) < THRESHOLD


def test_surprise_follows_the_kpi_direction():
    rng = np.random.default_rng(8)
    history = list(20 + rng.normal(0, 0.5, 20))
    history[15] += 6.0
    (found,) = anomalies(history, direction="lower_is_better")
    assert (found.index, found.direction, found.surprise) == (15, "up", "bad")


def test_detection_rate_of_planted_anomalies():
    """An anomaly of fifteen noise standard deviations (about ten standard deviations of the
    year-on-year changes the spread is measured on), at a random scored month and sign, is found
    at its month with its sign in at least 9 histories out of 10 (three years of history; the
    first scored months have only MIN_CHANGES changes to measure the spread on)."""
    rng = np.random.default_rng(12)
    hits, trials = 0, 200
    for _ in range(trials):
        history = seasonal_history(rng, months=36)
        at = int(rng.integers(12 + MIN_CHANGES, 36))
        sign = 1 if rng.random() < 0.5 else -1
        history[at] += sign * 15.0
        found = anomalies(list(history), direction="higher_is_better", season=12)
        hits += any(a.index == at and a.direction == ("up" if sign > 0 else "down") for a in found)
    assert hits / trials >= 0.9


def test_false_positive_rate_on_clean_histories():
    """Clean seasonal (monthly, three and four years) and non-seasonal histories: the share of
    scored values that are flagged stays under FALSE_POSITIVE_RATE."""
    rng = np.random.default_rng(2026)
    flagged = scored = 0
    for trial in range(600):
        if trial % 3 == 0:
            history, season = seasonal_history(rng, months=36, noise=3.0), 12
        elif trial % 3 == 1:
            history, season = seasonal_history(rng, months=48, noise=2.0), 12
        else:
            history, season = 50 + 0.1 * np.arange(30) + rng.normal(0, 2.0, 30), None
        results = [s for s in score_history(list(history), direction="higher_is_better", season=season) if s]
        scored += len(results)
        flagged += sum(s.anomalous for s in results)
    assert scored == 200 * 16 + 200 * 28 + 200 * 21
    assert flagged / scored < FALSE_POSITIVE_RATE


def test_minimum_history_and_missing_values():
    rng = np.random.default_rng(1)
    history = list(seasonal_history(rng, months=30))
    scores = score_history(history, direction="higher_is_better", season=12)
    # the first scored month needs one season plus MIN_CHANGES changes over it before it
    assert [s is None for s in scores].index(False) == 12 + MIN_CHANGES
    flat = score_history(list(rng.normal(5, 1, 12)), direction="higher_is_better")
    assert [s is None for s in flat].index(False) == 1 + MIN_CHANGES
    # no data is no data: a missing value has no score, and a value whose baseline is missing neither
    history[25] = None
    scores = score_history(history, direction="higher_is_better", season=12)
    assert scores[25] is None
    assert latest([], direction="higher_is_better") is None
    assert latest([1.0, 2.0], direction="higher_is_better") is None


def test_level_shift_is_flagged_where_it_starts():
    rng = np.random.default_rng(6)
    history = np.concatenate([50 + rng.normal(0, 1, 15), 60 + rng.normal(0, 1, 10)])
    found = anomalies(list(history), direction="higher_is_better")
    # the first values of the new level are flagged, then it is the history
    assert [a.index for a in found][:1] == [15]
    assert all(a.index <= 16 for a in found)


def test_constant_history():
    history = [100.0] * 12
    assert latest(history, direction="higher_is_better").score == 0.0
    moved = latest(history + [99.0], direction="higher_is_better")
    assert moved.anomalous and moved.surprise == "bad"
    # a KPI that moves in steps (0 most months, once 30): a step of a size seen before is not
    # unusual, although its robust score is beyond the threshold; a larger one is
    steps = [0.0] * 3 + [30.0] + [0.0] * 11
    seen = latest(steps + [30.0], direction="lower_is_better")
    assert seen.score >= THRESHOLD and not seen.anomalous
    jump = latest(steps + [31.0], direction="lower_is_better")
    assert jump.anomalous and jump.surprise == "bad"
    with pytest.raises(ValueError, match="season must be at least 2"):
        score_history(history, direction="higher_is_better", season=1)
