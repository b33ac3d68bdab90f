"""Customer-value models for the value-creation process (Payne & Frow's "customer segment
lifetime value analysis").

Everything here is plain numpy/scipy and vectorised over customers:

- simple retention CLV (Gupta & Lehmann 2003; Gupta, Lehmann & Stuart 2004);
- BG/NBD purchase-count model (Fader, Hardie & Lee 2005, Marketing Science 24(2));
- Gamma-Gamma spend model (Fader, Hardie & Lee 2005, JMR 42(4); Fader & Hardie 2013, note 025);
- CLV from BG/NBD + Gamma-Gamma;
- shifted-beta-geometric (sBG) contractual retention (Fader & Hardie 2007, JIM 21(1));
- an RFM summary (x, t_x, T, mbar) of raw transactions, for tests and small data.

The formulas, conventions and the published reference numbers are those of the project's design
note on customer-value models. ``lifetimes`` and ``pymc-marketing`` are deliberately not used:
the first is unmaintained, the second pulls in PyMC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1
from threadpoolctl import threadpool_limits

__all__ = [
    "BgNbd",
    "GammaGamma",
    "RfmSummary",
    "Sbg",
    "clv_bgnbd_gg",
    "conditional_expected_purchases",
    "conditional_expected_spend",
    "expected_purchases",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "fit_sbg",
    "horizon_purchases",
    "p_alive",
    "rfm_summary",
    "sbg_retention",
    "sbg_survival",
    "simple_clv",
]


#: Iteration limit of the maximum-likelihood search (BFGS); a fit that reaches it has not converged.
MAX_ITERATIONS = 1000
#: Largest gradient (of the log-likelihood in log-parameters) at which a search that stopped on
#: floating-point precision loss still counts as converged: a 1% change of any parameter then
#: moves the log-likelihood by at most 0.001, far below anything a model comparison could see.
GRADIENT_TOLERANCE = 0.1
#: Range of a fitted parameter relative to its start point (the search box of the analytic fits).
PARAMETER_RANGE = (1e-8, 1e4)


@dataclass(frozen=True)
class Convergence:
    """How a maximum-likelihood search ended: converged or not, why, after how many iterations."""

    converged: bool
    message: str
    iterations: int


def _fit_positive(neg_log_likelihood, start: Sequence[float], with_gradient: bool = False) -> tuple[np.ndarray, float, Convergence]:
    """Minimise ``neg_log_likelihood(params)`` over strictly positive parameters.

    With ``with_gradient``, ``neg_log_likelihood`` returns ``(value, gradient)``: the analytic
    gradient in the parameters (not their logs), computed with the value from the same terms.
    Without it the search differences numerically, one more evaluation per parameter and step.

    Returns the parameters, the maximised log-likelihood and how the search ended.
    """

    # Optimising on log-parameters keeps every parameter positive without bounds, and puts
    # parameters of very different scale (alpha ~ 4 vs r ~ 0.2) on a comparable footing.
    def objective(log_params: np.ndarray) -> float:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            value = neg_log_likelihood(np.exp(log_params))
        # Far-off trial points can overflow; a large finite value steers the search back.
        return value if np.isfinite(value) else 1e300

    def objective_and_gradient(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(log_params)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            value, grad = neg_log_likelihood(params)
            grad = grad * params  # chain rule: d/d(log p) = p d/dp
        if not np.isfinite(value):
            return 1e300, np.zeros_like(params)
        return value, np.where(np.isfinite(grad), grad, 0.0)

    log_start = np.log(np.asarray(start, dtype=float))
    # A search box around the start: on a few customers the likelihood can rise without end
    # along a ridge (r and alpha growing together towards the Poisson limit of BG/NBD), and
    # the hypergeometric function of the forecasts has no finite value that far out. At the
    # edge of the box the forecasts equal the limit's to many digits.
    bounds = [(value + np.log(PARAMETER_RANGE[0]), value + np.log(PARAMETER_RANGE[1])) for value in log_start]
    # One BLAS thread: the sums over customers are too small to share out, and waking threads on
    # a busy machine made the BG/NBD fit 4x and the Gamma-Gamma fit 15x slower (measured).
    with threadpool_limits(limits=1, user_api="blas"):
        if with_gradient:
            result = minimize(objective_and_gradient, log_start, method="L-BFGS-B", jac=True, bounds=bounds,
                              options={"gtol": 1e-7, "ftol": 1e-12, "maxiter": MAX_ITERATIONS})
        else:
            result = minimize(objective, log_start, method="BFGS", options={"gtol": 1e-7, "maxiter": MAX_ITERATIONS})
    if not np.isfinite(result.fun) or result.fun >= 1e300:
        raise RuntimeError(f"maximum-likelihood fit failed: {result.message}")
    # BFGS may report "precision loss" at an optimum it cannot improve in floating point: that
    # is converged when the gradient there is flat. Running out of iterations is not.
    jac = np.array(result.jac, dtype=float) if result.jac is not None else np.full(len(start), np.inf)
    if with_gradient:  # at the edge of the box, only the gradient along the box counts
        low, high = np.array(bounds).T
        jac[((result.x <= low) & (jac > 0)) | ((result.x >= high) & (jac < 0))] = 0.0
    largest = float(np.max(np.abs(jac)))
    converged = bool(result.success) or (result.status == 2 and largest < GRADIENT_TOLERANCE)
    message = str(result.message) + ("" if result.success else f" (largest gradient {largest:.2g})")
    return np.exp(result.x), -float(result.fun), Convergence(converged, message, int(result.nit))


# --------------------------------------------------------------------------------------------
# Simple retention CLV
# --------------------------------------------------------------------------------------------

def simple_clv(margin: ArrayLike, retention: ArrayLike, discount_rate: ArrayLike, *,
               first_margin_now: bool = False, horizon: int | None = None) -> np.ndarray:
    """Lifetime value under a constant per-period margin and retention rate.

    Default convention: the first margin arrives at the **end of period 1** and only customers
    who survived that period earn it, so ``CLV = m * r / (1 + d - r)`` (Gupta & Lehmann 2003).
    With ``first_margin_now=True`` the first margin is received now (t = 0) by every customer:
    ``CLV = m * (1 + d) / (1 + d - r)``, which is the default plus ``m``.

    ``horizon`` limits the sum to that many margins: ``sum_{t=1..H} m r^t / (1+d)^t`` by
    default, or ``sum_{t=0..H-1}`` when the first margin is received now.

    Example: r = 0.8, d = 0.10, m = 1 gives the margin multiple 0.8 / 0.3 = 2.667.
    Arguments broadcast against each other.
    """
    m, r, d = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in
                                    (margin, retention, discount_rate)))
    if np.any((r < 0) | (r > 1)):
        raise ValueError("retention must lie in [0, 1]")
    if np.any(d <= -1):
        raise ValueError("discount_rate must be greater than -1")
    ratio = r / (1.0 + d)  # survival-weighted discount factor for one period
    if horizon is None:
        if np.any(ratio >= 1):
            raise ValueError("an infinite horizon needs retention < 1 + discount_rate")
        clv = m * ratio / (1.0 - ratio)
    else:
        if horizon < 0:
            raise ValueError("horizon must be >= 0")
        t = np.arange(1, horizon + 1)
        clv = m * np.sum(ratio[..., None] ** t, axis=-1)
    # Shifting every margin one period earlier multiplies the stream by (1 + d) / r, which is
    # the same as adding the margin received now and dropping the last one.
    if first_margin_now:
        clv = m + clv - (0.0 if horizon is None else m * ratio ** horizon)
    return clv


# --------------------------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BgNbd:
    """Fitted BG/NBD parameters (Fader, Hardie & Lee 2005).

    Purchase rates are gamma(r, alpha) across customers (alpha in the fitting time unit),
    the drop-out probability after each purchase is beta(a, b).
    """

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    convergence: Convergence = Convergence(True, "", 0)


def _as_float(*arrays: ArrayLike) -> list[np.ndarray]:
    return [np.asarray(v, dtype=float) for v in arrays]


def _distinct_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The distinct rows of equal-length 1-d ``columns``: the columns of the distinct rows
    (sorted), the index of each input row's distinct row, and how many input rows each has.

    Customers share a history (x, t_x, T) far more often than not, so the models are evaluated
    once per distinct row. The rows are sorted on the columns themselves: ``np.unique(axis=0)``
    is several times slower (it sorts the rows as opaque bytes).
    """
    n = columns[0].size
    order = np.lexsort(columns[::-1])
    ordered = [column[order] for column in columns]
    new = np.ones(n, dtype=bool)
    if n:
        new[1:] = False
        for column in ordered:
            new[1:] |= column[1:] != column[:-1]
    starts = np.flatnonzero(new)
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    counts = np.diff(np.append(starts, n))
    return [column[starts] for column in ordered], inverse, counts


class _BgNbdLikelihood:
    """The weighted BG/NBD log-likelihood of (x, t_x, T) rows, and its gradient in
    (r, alpha, a, b), computed with the value from the same terms.

    A customer base has few distinct values of each of x, t_x and T (a million customers: about a
    hundred purchase counts and a thousand ages in days), so every term that depends on one of
    them alone is evaluated once per distinct value, and its weighted sum is taken over values
    with weights summed once here. Only the term that mixes them, ``a/(b+x-1)
    ((alpha+T)/(alpha+t_x))^(r+x)`` of the customers with a repeat purchase, is computed per row.
    """

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray) -> None:
        n = x.size
        self.x_values, x_index = np.unique(x, return_inverse=True)
        x_index = x_index.reshape(-1)
        self.times, time_index = np.unique(np.concatenate([T, t_x]), return_inverse=True)
        at_T, at_t_x = time_index[:n], time_index[n:]
        self.weight = float(weights.sum())
        self.weight_by_x = np.bincount(x_index, weights, minlength=self.x_values.size)
        # sum of w (r + x) log(alpha + T) over rows = sum over ages of (r W_T + WX_T) log(alpha + T)
        self.weight_by_T = np.bincount(at_T, weights, minlength=self.times.size)
        self.weight_x_by_T = np.bincount(at_T, weights * x, minlength=self.times.size)
        repeat = x > 0
        self.repeat_weight, self.repeat_x = weights[repeat], x[repeat]
        self.repeat_x_index, self.repeat_T, self.repeat_t_x = x_index[repeat], at_T[repeat], at_t_x[repeat]

    def __call__(self, r: float, alpha: float, a: float, b: float) -> tuple[float, np.ndarray]:
        xv, w_x = self.x_values, self.weight_by_x
        psi_abx = digamma(a + b + xv)
        per_x = np.stack([
            gammaln(r + xv) - gammaln(r) + betaln(a, b + xv) - betaln(a, b),  # the log-likelihood
            digamma(r + xv) - digamma(r),  # d/dr
            digamma(a + b) - psi_abx,  # d/da
            digamma(b + xv) - psi_abx - digamma(b) + digamma(a + b),  # d/db
        ]) @ w_x
        log_time, inverse_time = np.log(alpha + self.times), 1.0 / (alpha + self.times)
        # -(r + x) log(alpha + T), the first term of every row, summed by age
        weight_rx_T = r * self.weight_by_T + self.weight_x_by_T
        # The rows with a repeat purchase add ln(1 + e^z), z = ln a - ln(b+x-1) + (r+x) D with
        # D = ln(alpha+T) - ln(alpha+t_x): the logaddexp of the two terms, as a share w2 = expit(z)
        # of the second (w1 = 1 - w2 of the first).
        with_x = r + self.repeat_x
        log_ratio = log_time[self.repeat_T] - log_time[self.repeat_t_x]
        inverse_b_x_1 = 1.0 / (b + np.maximum(xv, 1) - 1)
        z = (np.log(a) + np.log(inverse_b_x_1))[self.repeat_x_index] + with_x * log_ratio
        shared = self.repeat_weight * expit(z)  # w w2
        value = per_x[0] + self.weight * r * np.log(alpha) - weight_rx_T @ log_time + self.repeat_weight @ np.logaddexp(0.0, z)
        d_r = per_x[1] + self.weight * np.log(alpha) - self.weight_by_T @ log_time + shared @ log_ratio
        d_alpha = (self.weight * r / alpha - weight_rx_T @ inverse_time
                   - (shared * with_x) @ (inverse_time[self.repeat_t_x] - inverse_time[self.repeat_T]))
        d_a = per_x[2] + shared.sum() / a
        d_b = per_x[3] - shared @ inverse_b_x_1[self.repeat_x_index]
        return float(value), np.array([d_r, d_alpha, d_a, d_b])


def fit_bgnbd(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> BgNbd:
    """Fit BG/NBD by maximum likelihood.

    ``x`` = repeat purchase occasions (distinct purchase days after the first), ``t_x`` = time
    of the last purchase and ``T`` = age, both measured from the first purchase in one time
    unit (weeks in the paper); see :func:`rfm_summary`.
    """
    x, t_x, T = _as_float(x, t_x, T)
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T):
        raise ValueError("need x >= 0 and 0 <= t_x <= T")
    # Customers with identical (x, t_x, T) contribute identical terms: fitting on the distinct
    # rows with counts as weights makes large customer bases cheap.
    (ux, ut_x, uT), _, counts = _distinct_rows(x, t_x, T)
    likelihood = _BgNbdLikelihood(ux, ut_x, uT, counts.astype(float))

    def nll(p: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient = likelihood(*p)
        return -value, -gradient

    # alpha is a time scale: start it at the mean age so the start point is sensible whatever
    # the time unit.
    (r, alpha, a, b), ll, convergence = _fit_positive(nll, [1.0, max(float(np.mean(T)), 1e-3), 1.0, 1.0], with_gradient=True)
    return BgNbd(float(r), float(alpha), float(a), float(b), ll, convergence)


def expected_purchases(params: BgNbd, t: ArrayLike) -> np.ndarray:
    """Population E[X(t)]: expected purchases of a new customer in a period of length ``t``."""
    (t,) = _as_float(t)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    return (a + b - 1) / (a - 1) * (
        1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def p_alive(params: BgNbd, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> np.ndarray:
    """P(alive | x, t_x, T): probability that a customer has not dropped out by age ``T``.

    Always 1 for x = 0: under BG/NBD a customer can only drop out right after a repeat purchase.
    """
    x, t_x, T = _as_float(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    # P = 1 / (1 + exp(z)); z in logs so that large x cannot overflow the power.
    z = np.where(
        x > 0,
        np.log(a) - np.log(b + np.maximum(x, 1) - 1)
        + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)),
        -np.inf,
    )
    return expit(-z)


def conditional_expected_purchases(params: BgNbd, t: ArrayLike, x: ArrayLike, t_x: ArrayLike,
                                   T: ArrayLike) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in the next ``t`` time units of a customer with
    history (x, t_x, T). Broadcasts ``t`` against the customer arrays."""
    (t,) = _as_float(t)
    x, t_x, T = _as_float(x, t_x, T)
    # The published denominator 1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x) is exactly
    # 1 / P(alive), so reuse the overflow-safe P(alive).
    if t.ndim == 0 and x.ndim == T.ndim == 1 and x.size == T.size:
        # One horizon for a customer base: the hypergeometric function once per distinct (x, T).
        (ux, uT), inverse, _ = _distinct_rows(x, T)
        if_alive = _purchases_if_alive(params, t, ux, uT)[inverse]
    else:
        if_alive = _purchases_if_alive(params, t, x, T)
    return if_alive * p_alive(params, x, t_x, T)


def _purchases_if_alive(params: BgNbd, t: np.ndarray, x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """E[Y(t) | x, T, alive at T]: the part of :func:`conditional_expected_purchases` with the
    hypergeometric function, which does not depend on t_x."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    return (a + b + x - 1) / (a - 1) * (
        1 - ((alpha + T) / (alpha + T + t)) ** (r + x)
        * hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t)))


def horizon_purchases(params: BgNbd, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, *, horizon_periods: int,
                      period_length: float, discount_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Per customer, the purchases expected over ``horizon_periods`` periods of length
    ``period_length``, E[Y(H L) | x, t_x, T], and the same discounted at ``discount_rate`` per
    period with cash at the end of each, ``sum_{k=1..H} (E[Y(kL)] - E[Y((k-1)L)]) / (1 + d)^k``.

    E[Y(t) | x, t_x, T] = P(alive | x, t_x, T) E[Y(t) | x, T, alive]: the horizons' hypergeometric
    functions are evaluated once per distinct (x, T), far fewer than the customers or their
    distinct (x, t_x, T), and each customer's P(alive) scales them.
    """
    if horizon_periods < 1:
        raise ValueError("horizon_periods must be >= 1")
    x, t_x, T = np.broadcast_arrays(*_as_float(x, t_x, T))
    shape = x.shape
    (ux, uT), inverse, _ = _distinct_rows(x.ravel(), T.ravel())
    k = np.arange(horizon_periods + 1, dtype=float)
    # Row k holds E[Y(kL) | alive] of every distinct (x, T); row 0 is 0.
    cumulative = _purchases_if_alive(params, (k * period_length)[:, None], ux, uT)
    with threadpool_limits(limits=1, user_api="blas"):  # as in the fits
        discounted = ((1.0 + discount_rate) ** -k[1:]) @ np.diff(cumulative, axis=0)
    alive = p_alive(params, x, t_x, T)
    return (cumulative[-1][inverse].reshape(shape) * alive, discounted[inverse].reshape(shape) * alive)


# --------------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GammaGamma:
    """Fitted Gamma-Gamma spend parameters (Fader, Hardie & Lee 2005 JMR; Fader & Hardie 2013).

    A transaction's value is gamma(p, nu) with nu ~ gamma(q, gamma) across customers.
    """

    p: float
    q: float
    gamma: float
    log_likelihood: float
    convergence: Convergence = Convergence(True, "", 0)

    @property
    def population_mean(self) -> float:
        """Mean transaction value across customers, E[M] = p * gamma / (q - 1)."""
        if self.q <= 1:
            raise ValueError("q <= 1: the spend distribution has no finite mean")
        return self.p * self.gamma / (self.q - 1)


def fit_gamma_gamma(x: ArrayLike, mbar: ArrayLike) -> GammaGamma:
    """Fit Gamma-Gamma by maximum likelihood.

    ``x`` = repeat purchase occasions, ``mbar`` = mean value of those x repeat transactions.
    Only customers with x > 0 are used (their mbar is observed); others are ignored, so the
    arrays may hold the whole customer base.
    """
    x, mbar = _as_float(x, mbar)
    keep = x > 0
    x, mbar = x[keep], mbar[keep]
    if x.size == 0:
        raise ValueError("no customer with a repeat purchase")
    if np.any(mbar <= 0):
        raise ValueError("mbar must be > 0 for customers with x > 0")

    log_mbar, spend = np.log(mbar), x * mbar
    # x takes few distinct values: the gamma-type functions are evaluated once per value.
    x_values, x_index = np.unique(x, return_inverse=True)
    x_index = x_index.reshape(-1)
    x_counts = np.bincount(x_index).astype(float)
    n = float(x.size)
    fixed = float(np.dot(x_counts, x_values * np.log(x_values)))  # sum of x ln x, times p below
    sum_x_log_mbar, sum_log_mbar = float(np.sum(x * log_mbar)), float(np.sum(log_mbar))
    # Every per-customer sum below is x or 1 times ln(gamma + x mbar) or 1 / (gamma + x mbar):
    # one matrix product gives the four.
    x_and_one = np.stack([x, np.ones_like(x)])

    def nll(params: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, gamma = params
        pxv = p * x_values
        total = gamma + spend
        (x_log, x_inverse), (sum_log, sum_inverse) = x_and_one @ np.stack([np.log(total), 1.0 / total], axis=1)
        value = (np.dot(x_counts, gammaln(pxv + q) - gammaln(pxv)) - n * gammaln(q) + n * q * np.log(gamma)
                 + p * sum_x_log_mbar - sum_log_mbar + p * fixed - (p * x_log + q * sum_log))
        psi_pxq = digamma(pxv + q)
        d_p = np.dot(x_counts * x_values, psi_pxq - digamma(pxv)) + sum_x_log_mbar + fixed - x_log
        d_q = np.dot(x_counts, psi_pxq) - n * digamma(q) + n * np.log(gamma) - sum_log
        d_gamma = n * q / gamma - (p * x_inverse + q * sum_inverse)
        return -float(value), -np.array([d_p, d_q, d_gamma])

    # gamma is on the money scale: start it at the mean spend.
    (p, q, gamma), ll, convergence = _fit_positive(nll, [1.0, 2.0, float(np.mean(mbar))], with_gradient=True)
    return GammaGamma(float(p), float(q), float(gamma), ll, convergence)


def conditional_expected_spend(params: GammaGamma, x: ArrayLike, mbar: ArrayLike) -> np.ndarray:
    """E[M | x, mbar]: expected value of a customer's future transaction.

    A weighted mean of the population mean and the customer's own ``mbar`` with weight
    ``w = (q-1)/(p x + q - 1)`` on the population; for x = 0 it is the population mean and
    ``mbar`` is ignored.
    """
    x, mbar = _as_float(x, mbar)
    p, q, gamma = params.p, params.q, params.gamma
    # w p gamma/(q-1) + (1-w) mbar == (p gamma + p x mbar) / (p x + q - 1): no division by q-1.
    own = np.where(x > 0, mbar, 0.0)  # mbar of a customer without repeats may be 0 or NaN
    return (p * gamma + p * x * own) / (p * x + q - 1)


def clv_bgnbd_gg(bg: BgNbd, gg: GammaGamma, x: ArrayLike, t_x: ArrayLike, T: ArrayLike,
                 mbar: ArrayLike, *, horizon_periods: int, period_length: float,
                 discount_rate: float, margin_share: float) -> np.ndarray:
    """Per-customer CLV from BG/NBD and Gamma-Gamma.

    ``CLV = margin_share * E[M] * sum_{k=1..H} (E[Y(kL)] - E[Y((k-1)L)]) / (1 + d)^k``:
    the purchases expected in period k (length L = ``period_length`` in the BG/NBD time unit)
    are valued at E[M | x, mbar] and discounted at ``discount_rate`` per period, with cash
    arriving at the end of each period. ``margin_share`` turns revenue into margin.
    """
    x, t_x, T, mbar = np.broadcast_arrays(*_as_float(x, t_x, T, mbar))
    _, purchases = horizon_purchases(bg, x, t_x, T, horizon_periods=horizon_periods, period_length=period_length,
                                     discount_rate=discount_rate)
    return margin_share * conditional_expected_spend(gg, x, mbar) * purchases


# --------------------------------------------------------------------------------------------
# sBG (contractual retention)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sbg:
    """Fitted shifted-beta-geometric parameters (Fader & Hardie 2007): each customer churns at
    the end of a period with probability theta, theta ~ beta(gamma, delta) across customers."""

    gamma: float
    delta: float
    log_likelihood: float


def fit_sbg(survivors: Sequence[int]) -> Sbg:
    """Fit sBG to a cohort: ``survivors[t]`` customers still under contract at t = 0, 1, ..., n.

    The first entry is the cohort size; the counts must not increase.
    """
    n = np.asarray(survivors, dtype=float)
    if n.ndim != 1 or n.size < 2 or n[0] <= 0 or np.any(np.diff(n) > 0) or n[-1] < 0:
        raise ValueError("survivors must be a non-increasing sequence of >= 2 counts, n[0] > 0")
    churned = n[:-1] - n[1:]  # churned in period t = 1..N
    t = np.arange(1, n.size)
    last = n.size - 1

    def nll(params: np.ndarray) -> float:
        g, d = params
        log_p_churn = betaln(g + 1, d + t - 1) - betaln(g, d)    # P(T = t)
        log_survive = betaln(g, d + last) - betaln(g, d)           # S(N), right-censored
        return -float(np.dot(churned, log_p_churn) + n[-1] * log_survive)

    (g, d), ll, _convergence = _fit_positive(nll, [1.0, 1.0])
    return Sbg(float(g), float(d), ll)


def sbg_survival(params: Sbg, t: ArrayLike) -> np.ndarray:
    """S(t) = B(gamma, delta + t) / B(gamma, delta): share of a cohort still active at t."""
    (t,) = _as_float(t)
    return np.exp(betaln(params.gamma, params.delta + t) - betaln(params.gamma, params.delta))


def sbg_retention(params: Sbg, t: ArrayLike) -> np.ndarray:
    """Retention rate in period t = S(t)/S(t-1) = (delta + t - 1) / (gamma + delta + t - 1).

    It rises with t: the customers who churn easily leave first.
    """
    (t,) = _as_float(t)
    return (params.delta + t - 1) / (params.gamma + params.delta + t - 1)


# --------------------------------------------------------------------------------------------
# RFM summary
# --------------------------------------------------------------------------------------------

class RfmSummary(NamedTuple):
    """Per-customer BG/NBD and Gamma-Gamma inputs, one entry per customer (ids sorted)."""

    ids: np.ndarray
    x: np.ndarray      # repeat purchase occasions (distinct days after the first)
    t_x: np.ndarray    # first to last purchase day, in units
    T: np.ndarray      # first purchase day to calibration end, in units
    mbar: np.ndarray   # mean day total of the repeat occasions; 0 when x = 0


def rfm_summary(customer_ids: ArrayLike, timestamps: ArrayLike, amounts: ArrayLike, *,
                calibration_end: dt.date | np.datetime64 | str,
                unit_days: float = 7.0) -> RfmSummary:
    """Summarise raw transactions into (x, t_x, T, mbar) per customer.

    Follows the design's pitfalls: a purchase occasion is a distinct purchase *day*
    (same-day transactions are summed), x counts the occasions after the first, t_x and T are
    measured from the first purchase day, T up to ``calibration_end`` (inclusive), and mbar is
    the mean of the repeat day totals, the first day excluded (0 when x = 0, as in the
    published CDNOW summary). Transactions after ``calibration_end`` are ignored; so are
    customers whose first purchase is after it. Times are in units of ``unit_days`` days
    (weeks by default).

    The production plugins compute the same in SQL; this helper is for tests and small data.
    """
    ids = np.asarray(customer_ids)
    days = np.asarray(timestamps, dtype="datetime64[D]").astype(np.int64)
    amounts = np.asarray(amounts, dtype=float)
    if not ids.shape == days.shape == amounts.shape or ids.ndim != 1:
        raise ValueError("customer_ids, timestamps and amounts must be 1-d and of equal length")
    end = np.datetime64(calibration_end, "D").astype(np.int64)

    keep = days <= end
    ids, days, amounts = ids[keep], days[keep], amounts[keep]
    uids, cust = np.unique(ids, return_inverse=True)
    if uids.size == 0:
        empty = np.zeros(0)
        return RfmSummary(uids, empty, empty, empty, empty)

    # Sort by (customer, day), then collapse runs of equal (customer, day) into occasions.
    order = np.lexsort((days, cust))
    cust, days, amounts = cust[order], days[order], amounts[order]
    starts = np.flatnonzero(np.r_[True, (cust[1:] != cust[:-1]) | (days[1:] != days[:-1])])
    occ_cust, occ_day = cust[starts], days[starts]
    occ_value = np.add.reduceat(amounts, starts)

    # Occasions are sorted by day within each customer: the first one is the birth.
    n_customers = uids.size
    first_occ = np.flatnonzero(np.r_[True, occ_cust[1:] != occ_cust[:-1]])
    last_occ = np.r_[first_occ[1:] - 1, occ_cust.size - 1]
    occasions = np.bincount(occ_cust, minlength=n_customers)
    total_value = np.bincount(occ_cust, weights=occ_value, minlength=n_customers)

    x = (occasions - 1).astype(float)
    repeat_value = total_value - occ_value[first_occ]
    mbar = np.divide(repeat_value, x, out=np.zeros(n_customers), where=x > 0)
    first_day = occ_day[first_occ]
    t_x = (occ_day[last_occ] - first_day) / unit_days
    T = (end - first_day) / unit_days
    return RfmSummary(uids, x, t_x, T, mbar)
