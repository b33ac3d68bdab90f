"""What moved unusually? Robust anomaly scores for a KPI's history (a total or one breakdown).

The method, for each value in turn, looking only at the values before it (so a value is judged
as it would have been when it arrived, and an anomaly cannot hide itself):

1. **Baseline**: the value one season earlier (12 months, 4 quarters; the previous value for a
   KPI without a season), plus the median change over that lag in
   the history so far (the typical year-on-year change: a trend).
2. **Spread**: the median absolute deviation (MAD) of those changes, times 1.4826 (so it
   estimates a standard deviation for normal noise; Iglewicz & Hoaglin 1993). When more than
   half the changes are equal (MAD 0) the mean absolute deviation times 1.2533 stands in.
3. **Score**: ``(value - baseline) / spread``, a robust z-score. ``|score| >= 5`` flags the
   value, provided it also lies further from its baseline than any change seen before: a KPI
   that moves in steps (a few leavers a month: 0, 10, 20 % annualised) has a small spread
   between its steps, and a step of a size it has taken before is not unusual. Iglewicz & Hoaglin's cut-off for large samples is 3.5, but a KPI's history is short
   (8 to a few dozen changes) and the MAD of so few is itself uncertain: on clean simulated
   monthly histories of three years, 3.5 flagged about 3 % of the values, 5 about 1 %.
4. **Cleaning**: a flagged value is replaced by its baseline where later values look back at
   it, and left out of the changes later spreads are measured on, so a spike does not come
   back as an opposite "anomaly" one season later nor widen the spread. A second flagged value
   in a row in the same direction is kept as it is: a shift to a new level is flagged where it
   starts and then becomes the history.

**Minimum history**: a value is scored only when the history before it holds the value one lag
earlier and at least :data:`MIN_CHANGES` changes over that lag (with a season of 12: from the
21st month on; without a season: from the 10th value on). Values before that, and values
without data, have no score: no data is no data.

**Direction**: ``up`` or ``down``; with the KPI's direction, a ``good`` or ``bad`` surprise.

The false-positive rate on histories without anomalies (normal noise around a trend and a
season) is measured by ``tests/test_anomaly.py``: under :data:`FALSE_POSITIVE_RATE` of the
scored values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from crmmetrics.core.vocabulary import Direction

__all__ = ["THRESHOLD", "MIN_CHANGES", "FALSE_POSITIVE_RATE", "Scored", "score_history", "anomalies", "latest"]

#: |robust z| at or above which a value is flagged (see the module docs for why not 3.5).
THRESHOLD = 5.0
#: fewest changes over the lag the history before a value must hold for it to be scored.
MIN_CHANGES = 8
#: upper bound of the share of values flagged on a history without anomalies (measured in the tests).
FALSE_POSITIVE_RATE = 0.02

_MAD_TO_SD = 1.4826
_MEAN_AD_TO_SD = 1.2533


@dataclass(frozen=True)
class Scored:
    """One value of a history with its anomaly score."""

    index: int
    value: float
    #: the value expected from the history before it (baseline)
    expected: float
    #: the robust spread (a standard deviation) of the changes the baseline is built from
    spread: float
    score: float
    #: lag (periods) the baseline looked back: the season, or 1
    lag: int
    anomalous: bool
    direction: str  # up, down (or flat when the value equals its baseline)
    #: good or bad surprise for the KPI's direction; None when not anomalous
    surprise: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "value": self.value,
            "expected": self.expected,
            "spread": self.spread,
            "score": self.score,
            "lag": self.lag,
            "anomalous": self.anomalous,
            "direction": self.direction,
            "surprise": self.surprise,
        }


def _spread(changes: np.ndarray) -> tuple[float, float]:
    """(robust spread of the changes, largest deviation of a change from their median)."""
    centre = np.median(changes)
    deviations = np.abs(changes - centre)
    mad = float(np.median(deviations)) * _MAD_TO_SD
    spread = mad if mad > 0 else float(np.mean(deviations)) * _MEAN_AD_TO_SD
    return spread, float(deviations.max())


def score_history(
    history: Sequence[float | None],
    *,
    direction: str | Direction,
    season: int | None = None,
    threshold: float = THRESHOLD,
) -> list[Scored | None]:
    """Score every value of ``history`` (one per period, oldest first; None for no data).

    Returns one entry per value: a :class:`Scored`, or None where the value is missing or the
    history before it is too short (see the module docs). ``season``: periods per year (12, 4),
    or None for a KPI without a season (the baseline is then the previous value). A seasonal
    KPI is never judged against the previous value: its seasonal swings would look unusual.
    """
    better_up = Direction(direction) == Direction.HIGHER_IS_BETTER
    if threshold <= 0:
        raise ValueError(f"anomaly threshold must be positive, not {threshold!r}")
    if season is not None and season < 2:
        raise ValueError(f"season must be at least 2 periods, not {season!r}")
    y = np.array([math.nan if v is None else float(v) for v in history], dtype=float)
    clean = y.copy()  # the baselines of later values: spikes replaced by their baseline
    masked = y.copy()  # the changes later spreads are measured on: spikes left out
    results: list[Scored | None] = []
    previous_flag = 0  # +1 / -1: the previous value was flagged up / down
    for k in range(len(y)):
        scored = None
        if math.isfinite(y[k]):
            lag = season or 1
            changes = masked[lag:k] - masked[: k - lag] if k > lag else np.zeros(0)
            changes = changes[np.isfinite(changes)]
            if k - lag >= 0 and math.isfinite(clean[k - lag]) and changes.size >= MIN_CHANGES:
                expected = float(clean[k - lag] + np.median(changes))
                spread, largest = _spread(changes)
                deviation = float(y[k] - expected)
                if spread > 0:
                    score = deviation / spread
                else:  # a history without any variation: any change is extreme
                    score = 0.0 if deviation == 0 else math.copysign(1e9, deviation)
                flagged = abs(score) >= threshold and abs(deviation) > largest
                moved = "up" if deviation > 0 else "down" if deviation < 0 else "flat"
                surprise = None
                if flagged:
                    surprise = "good" if (deviation > 0) == better_up else "bad"
                scored = Scored(k, float(y[k]), expected, spread, score, lag, flagged, moved, surprise)
        results.append(scored)
        flag = (1 if scored.score > 0 else -1) if scored is not None and scored.anomalous else 0
        if flag and flag != previous_flag:
            clean[k] = scored.expected  # a spike: keep it out of later baselines
            masked[k] = math.nan
        previous_flag = flag
    return results


def anomalies(
    history: Sequence[float | None],
    *,
    direction: str | Direction,
    season: int | None = None,
    threshold: float = THRESHOLD,
) -> list[Scored]:
    """The flagged values of ``history`` (see :func:`score_history`)."""
    return [s for s in score_history(history, direction=direction, season=season, threshold=threshold) if s and s.anomalous]


def latest(
    history: Sequence[float | None],
    *,
    direction: str | Direction,
    season: int | None = None,
    threshold: float = THRESHOLD,
) -> Scored | None:
    """The score of the last value of ``history`` (None without data or enough history)."""
    if not history:
        return None
    return score_history(history, direction=direction, season=season, threshold=threshold)[-1]
