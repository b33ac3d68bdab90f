"""Does employee value drive customer value, and customer value shareholder value?

The service-profit chain (Heskett et al. 1994, HBR 72(2):164-174) in Payne & Frow's terms:
employee value (satisfaction, eNPS, engagement) feeds customer value (CSAT, NPS, first-contact
resolution), which feeds shareholder value (retention, share of wallet, revenue). :data:`CHAIN`
lists the pairs of built-in KPIs along it; for each pair this module measures the strength and
the lag of the relation, with its uncertainty and the number of observations.

Two ways to look, and what each removes so that a shared trend or a shared season does not pass
for a link (two rising series always correlate; Granger & Newbold 1974):

* **over periods** (:func:`link_over_periods`): the KPIs' totals, one value per period. The
  correlation of the driver's change from one period to the next with the outcome's change
  ``lag`` periods later.
* **across units** (:func:`link_across_units`): the KPIs by unit (team, channel), one series
  per unit, paired by ``unit_pairs`` (a team and the channel it serves). The partial
  correlation of the driver at ``t - lag`` and the outcome at ``t`` after removing what every
  unit shares in a period (period effects: trend, season, company-wide shocks) and what a unit
  always is (unit effects: a channel's usual level). What is left is: when this team was more
  satisfied than usual, was its channel's CSAT higher than usual ``lag`` periods later?

**Uncertainty**: Fisher's z interval for the correlation, with the degrees of freedom left after
the effects removed (``n - controls - 3``); over periods, ``n`` is Bartlett's effective number
of pairs, as period-to-period changes are autocorrelated. The lag with the strongest correlation is chosen
among ``0 .. max_lag``; to pay for that choice the interval is widened by Bonferroni over the
lags tried. A link is reported only when that interval excludes 0.

**Not enough data** is a plain statement, not a number: fewer than :data:`MIN_DEGREES_OF_FREEDOM`
degrees of freedom at every lag, or no variation left to correlate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats
from sqlalchemy import func, select

__all__ = [
    "CHAIN",
    "ChainLink",
    "Linkage",
    "MIN_DEGREES_OF_FREEDOM",
    "link_over_periods",
    "link_across_units",
    "assess_chain",
    "unit_pairs_from_interactions",
]

#: Fewest degrees of freedom (paired observations less the effects removed, less 3) for a correlation.
MIN_DEGREES_OF_FREEDOM = 10
DEFAULT_MAX_LAG = 3
DEFAULT_LEVEL = 0.95


@dataclass(frozen=True)
class ChainLink:
    """A pair of KPIs along the service-profit chain, and the dimensions that name their units."""

    driver: str
    outcome: str
    stage: str  # employee_to_customer, customer_to_shareholder
    #: dimension of the driver and of the outcome that name comparable units (None: totals only)
    driver_unit: str | None = None
    outcome_unit: str | None = None


_EMPLOYEE = ("pa_employee_satisfaction", "pa_enps", "pa_employee_engagement")
_CUSTOMER = ("vc_csat", "vc_nps", "mci_fcr")
_SHAREHOLDER = ("vc_active_retention_rate", "vc_share_of_wallet", "vc_net_revenue_retention")

#: The chain pairs of the built-in KPIs. Employee satisfaction by ``department`` pairs with
#: customer KPIs by ``channel_category`` (the channels a department serves); the customer-to-shareholder pairs
#: have no common unit (retention is by segment) and are looked at over periods only.
CHAIN: tuple[ChainLink, ...] = tuple(
    [
        ChainLink(e, c, "employee_to_customer", *(("department", "channel_category") if e == "pa_employee_satisfaction" else (None, None)))
        for e in _EMPLOYEE
        for c in _CUSTOMER
    ]
    + [ChainLink(c, s, "customer_to_shareholder") for c in _CUSTOMER for s in _SHAREHOLDER]
)


@dataclass(frozen=True)
class Linkage:
    """What the data say about one pair of KPIs, looked at one way."""

    driver: str
    outcome: str
    basis: str  # over_periods, across_units
    #: True: a link (the interval excludes 0); False: no link found; None: not enough data
    linked: bool | None
    statement: str
    lag: int | None = None
    correlation: float | None = None
    lower: float | None = None
    upper: float | None = None
    level: float = DEFAULT_LEVEL
    #: paired observations at the chosen lag (periods, or unit-periods)
    observations: int = 0
    units: int = 0
    p_value: float | None = None
    #: every lag tried: (lag, correlation or None, paired observations)
    by_lag: list[tuple[int, float | None, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "driver": self.driver,
            "outcome": self.outcome,
            "basis": self.basis,
            "linked": self.linked,
            "statement": self.statement,
            "lag": self.lag,
            "correlation": self.correlation,
            "lower": self.lower,
            "upper": self.upper,
            "level": self.level,
            "observations": self.observations,
            "units": self.units,
            "p_value": self.p_value,
            "by_lag": [{"lag": lag, "correlation": r, "observations": n} for lag, r, n in self.by_lag],
        }


def _values(series: Sequence[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else float(v) for v in series], dtype=float)


def _residuals(values: np.ndarray, controls: np.ndarray | None) -> np.ndarray:
    """``values`` less their least-squares fit on ``controls`` (and a constant)."""
    design = np.ones((values.size, 1)) if controls is None else np.column_stack([np.ones(values.size), controls])
    coefficients, *_ = np.linalg.lstsq(design, values, rcond=None)
    return values - design @ coefficients


def _autocorrelations(values: np.ndarray, lags: int) -> np.ndarray:
    centred = values - values.mean()
    denominator = float(centred @ centred)
    if denominator == 0:
        return np.zeros(lags)
    return np.array([float(centred[k:] @ centred[:-k]) / denominator for k in range(1, lags + 1)])


def _effective_size(x: np.ndarray, y: np.ndarray) -> float:
    """Bartlett's effective number of independent pairs of two autocorrelated series:
    ``n / (1 + 2 sum_k r_x(k) r_y(k))`` over lags up to n / 5, never more than n (Pyper &
    Peterman 1998). Period-to-period changes are autocorrelated, and without this their
    correlation would look surer than it is."""
    lags = x.size // 5
    if lags < 1:
        return float(x.size)
    inflation = 1 + 2 * float(_autocorrelations(x, lags) @ _autocorrelations(y, lags))
    return x.size / max(inflation, 1.0)


def _partial_correlation(
    x: np.ndarray, y: np.ndarray, controls: np.ndarray | None, serial: bool = False
) -> tuple[float | None, int]:
    """(correlation of x and y after the controls, degrees of freedom for Fisher's z).

    ``serial``: x and y are time series; their autocorrelation lowers the degrees of freedom."""
    rank = 1 if controls is None else np.linalg.matrix_rank(np.column_stack([np.ones(x.size), controls]))
    dof = x.size - rank - 2  # n - (controls + constant) - 2: Fisher's n - 3 for a plain correlation
    if dof < 1:
        return None, dof
    rx, ry = _residuals(x, controls), _residuals(y, controls)
    if serial:
        dof = int(math.floor(_effective_size(rx, ry))) - rank - 2
    scale = math.sqrt(float(rx @ rx) * float(ry @ ry))
    if scale <= 1e-12 * max(1.0, float(x @ x), float(y @ y)):
        return None, dof
    return float(rx @ ry) / scale, dof


def _judge(
    driver: str,
    outcome: str,
    basis: str,
    tried: list[tuple[int, float | None, int, int]],
    level: float,
    units: int,
    names: tuple[str, str],
) -> Linkage:
    """Pick the strongest lag, give it a Bonferroni-widened Fisher interval, and say it plainly."""
    by_lag = [(lag, r, n) for lag, r, n, _ in tried]
    usable = [(lag, r, n, dof) for lag, r, n, dof in tried if r is not None and dof >= MIN_DEGREES_OF_FREEDOM]
    driver_name, outcome_name = names
    where = "across units" if basis == "across_units" else "over periods"
    if not usable:
        most = max((n for _, _, n, _ in tried), default=0)
        return Linkage(
            driver,
            outcome,
            basis,
            None,
            f"Not enough data to say whether {driver_name} and {outcome_name} are linked {where}: "
            f"at most {most} paired observations, too few once trends and unit levels are taken out "
            f"(at least {MIN_DEGREES_OF_FREEDOM} degrees of freedom are needed).",
            level=level,
            units=units,
            by_lag=by_lag,
        )
    lag, r, n, dof = max(usable, key=lambda t: (abs(t[1]), -t[0]))
    tests = len(tried)
    alpha = (1 - level) / tests
    z, se = math.atanh(max(min(r, 0.999999), -0.999999)), 1 / math.sqrt(dof)
    q = float(stats.norm.ppf(1 - alpha / 2))
    lower, upper = math.tanh(z - q * se), math.tanh(z + q * se)
    p_value = min(1.0, tests * 2 * float(stats.norm.sf(abs(z) / se)))
    linked = lower > 0 or upper < 0
    interval = f"r = {r:+.2f}, {round(level * 100)}% interval {lower:+.2f} to {upper:+.2f}, {n} observations"
    later = "in the same period" if lag == 0 else f"{lag} period{'s' if lag > 1 else ''} later"
    if linked:
        how = "rises" if r > 0 else "falls"
        statement = f"When {driver_name} rises, {outcome_name} {how} {later} ({where}; {interval})."
    else:
        statement = f"No link found between {driver_name} and {outcome_name} {where} (strongest at lag {lag}: {interval})."
    return Linkage(driver, outcome, basis, linked, statement, lag, r, lower, upper, level, n, units, p_value, by_lag)


def _check(max_lag: int, level: float) -> None:
    if max_lag < 0:
        raise ValueError(f"max_lag must be 0 or more, not {max_lag!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie between 0 and 1, not {level!r}")


def link_over_periods(
    driver: Sequence[float | None],
    outcome: Sequence[float | None],
    *,
    max_lag: int = DEFAULT_MAX_LAG,
    level: float = DEFAULT_LEVEL,
    keys: tuple[str, str] = ("driver", "outcome"),
    names: tuple[str, str] | None = None,
) -> Linkage:
    """The link between two KPIs' totals, one value per period (same periods, oldest first;
    None for no data): the correlation of the driver's period-to-period change with the
    outcome's change ``lag`` periods later, for the strongest lag in ``0 .. max_lag``."""
    _check(max_lag, level)
    x, y = np.diff(_values(driver)), np.diff(_values(outcome))
    if x.size != y.size:
        raise ValueError("the driver and the outcome must cover the same periods")
    tried = []
    for lag in range(max_lag + 1):
        xs, ys = x[: x.size - lag], y[lag:]
        ok = np.isfinite(xs) & np.isfinite(ys)
        r, dof = _partial_correlation(xs[ok], ys[ok], None, serial=True) if ok.sum() >= 3 else (None, int(ok.sum()) - 3)
        tried.append((lag, r, int(ok.sum()), dof))
    return _judge(*keys, "over_periods", tried, level, 1, names or keys)


def link_across_units(
    driver: Mapping[str, Sequence[float | None]],
    outcome: Mapping[str, Sequence[float | None]],
    *,
    unit_pairs: Sequence[tuple[str, str]] | None = None,
    max_lag: int = DEFAULT_MAX_LAG,
    level: float = DEFAULT_LEVEL,
    keys: tuple[str, str] = ("driver", "outcome"),
    names: tuple[str, str] | None = None,
) -> Linkage:
    """The link between two KPIs by unit: ``driver`` and ``outcome`` map a unit to its series
    (all series over the same periods, oldest first; None for no data). ``unit_pairs``: (driver
    unit, outcome unit) pairs, a driver unit may serve several outcome units; default: the units
    both have. The partial correlation after period and unit-pair effects (see module docs)."""
    _check(max_lag, level)
    if unit_pairs is None:
        unit_pairs = [(u, u) for u in sorted(set(driver) & set(outcome))]
    pairs = [(d, o) for d, o in unit_pairs if d in driver and o in outcome]
    lengths = {len(driver[d]) for d, _ in pairs} | {len(outcome[o]) for _, o in pairs}
    if len(lengths) > 1:
        raise ValueError("every unit's series must cover the same periods")
    periods = lengths.pop() if lengths else 0
    tried = []
    for lag in range(max_lag + 1):
        xs, ys, pair_of, period_of = [], [], [], []
        for index, (d, o) in enumerate(pairs):
            x, y = _values(driver[d]), _values(outcome[o])
            for t in range(lag, periods):
                if math.isfinite(x[t - lag]) and math.isfinite(y[t]):
                    xs.append(x[t - lag])
                    ys.append(y[t])
                    pair_of.append(index)
                    period_of.append(t)
        n = len(xs)
        if n < 3 or len(set(pair_of)) < 2:
            tried.append((lag, None, n, n - 3))
            continue
        pair_codes = np.unique(pair_of, return_inverse=True)[1]
        period_codes = np.unique(period_of, return_inverse=True)[1]
        # one column per pair and per period, less one of each (the constant stands for them)
        controls = np.column_stack(
            [(pair_codes == k).astype(float) for k in range(1, pair_codes.max() + 1)]
            + [(period_codes == k).astype(float) for k in range(1, period_codes.max() + 1)]
        )
        r, dof = _partial_correlation(np.array(xs), np.array(ys), controls)
        tried.append((lag, r, n, dof))
    return _judge(*keys, "across_units", tried, level, len(pairs), names or keys)


def assess_chain(
    totals: Mapping[str, Sequence[float | None]],
    by_unit: Mapping[str, Mapping[str, Sequence[float | None]]] | None = None,
    *,
    unit_pairs: Sequence[tuple[str, str]] | None = None,
    chain: Sequence[ChainLink] = CHAIN,
    max_lag: int = DEFAULT_MAX_LAG,
    level: float = DEFAULT_LEVEL,
    names: Mapping[str, str] | None = None,
) -> list[Linkage]:
    """Every pair of ``chain`` whose KPIs have data: over periods from ``totals`` (KPI key ->
    series of totals) and, for pairs with units, across units from ``by_unit`` (KPI key -> unit
    -> series). ``unit_pairs``: (driver unit, outcome unit) pairs for pairs whose units are named
    by different dimensions (a department and the channel category it serves). ``names``: KPI
    key -> name for the statements. A pair whose KPIs have no series here is left out."""
    names = names or {}
    by_unit = by_unit or {}
    results = []
    for link in chain:
        keys = (link.driver, link.outcome)
        label = (names.get(link.driver, link.driver), names.get(link.outcome, link.outcome))
        if link.driver in totals and link.outcome in totals:
            results.append(
                link_over_periods(totals[link.driver], totals[link.outcome], max_lag=max_lag, level=level, keys=keys, names=label)
            )
        if link.driver_unit and link.driver in by_unit and link.outcome in by_unit:
            pairs = unit_pairs if link.driver_unit != link.outcome_unit else None
            results.append(
                link_across_units(
                    by_unit[link.driver], by_unit[link.outcome], unit_pairs=pairs, max_lag=max_lag, level=level, keys=keys, names=label
                )
            )
    return results


def unit_pairs_from_interactions(connection: Any, tables: Mapping[str, Any], *, min_share: float = 0.5) -> list[tuple[str, str]]:
    """(department, channel category) pairs from the canonical data: a channel category is
    served by the department of the employees who handle at least ``min_share`` of its assisted
    interactions (those with an employee)."""
    interactions, employees, channels = tables["interactions"], tables["employees"], tables["channels"]
    rows = connection.execute(
        select(employees.c.department, channels.c.category, func.count())
        .select_from(interactions)
        .join(employees, employees.c.employee_id == interactions.c.employee_id)
        .join(channels, channels.c.channel_id == interactions.c.channel_id)
        .group_by(employees.c.department, channels.c.category)
    ).all()
    per_category: dict[str, int] = {}
    for _, category, count in rows:
        per_category[category] = per_category.get(category, 0) + count
    return sorted(
        (department, category)
        for department, category, count in rows
        if department is not None and category is not None and count >= min_share * per_category[category]
    )
