"""The draws every generator of the demo makes the same way from its own random stream.
"""

from __future__ import annotations

import numpy as np

from .shop import _HOUR_CDF, _ORDER_CH, _ORDER_MIX0, _ORDER_MIX1, _ORDER_SEG


class _Draws:
    """The calendar of the history (computed once by :class:`_Demo`, shared by its blocks) and
    the draws every generator makes the same way from its own stream ``rng``."""

    rng: np.random.Generator
    D: int
    END: int
    day_p: np.ndarray
    months: np.ndarray

    def choose_rows(self, p: np.ndarray) -> np.ndarray:
        """One draw per row of a (n, k) weight matrix."""
        cdf = np.cumsum(p, axis=1)
        cdf /= cdf[:, -1:]
        u = self.rng.random(p.shape[0])[:, None]
        return np.minimum((u > cdf).sum(axis=1), p.shape[1] - 1)

    def tod(self, channel: np.ndarray) -> np.ndarray:
        """Seconds after midnight, following the opening hours of each channel."""
        u = self.rng.random(channel.shape[0])[:, None]
        hour = np.minimum((u > _HOUR_CDF[channel]).sum(axis=1), 23)
        return hour * 3600 + self.rng.integers(0, 3600, channel.shape[0])

    def order_channel(self, day: np.ndarray, seg: np.ndarray) -> np.ndarray:
        frac = (day / self.D)[:, None]
        p = (_ORDER_MIX0 * (1 - frac) + _ORDER_MIX1 * frac) * _ORDER_SEG[seg]
        return _ORDER_CH[self.choose_rows(p)]

    def month_of(self, sec: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.months[:, 0], sec, side="right") - 1

    def sample_monthly(self, at: np.ndarray, p: float, floor: int) -> np.ndarray:
        """Indices of the candidates (at times ``at``) who answer a survey: each with
        probability ``p``, and at least ``floor`` a month where there are that many candidates
        (the survey programme keeps a minimum sample per month, per block of customers)."""
        u = self.rng.random(at.size)
        month = self.month_of(at)
        order = np.lexsort((u, month))
        rank = np.empty(at.size, dtype=np.int64)
        rank[order] = np.arange(at.size) - np.searchsorted(month[order], month[order])
        return np.nonzero((u < p) | (rank < floor))[0]
