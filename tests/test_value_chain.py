"""The service-profit chain: known links are recovered with their sign and lag, shared trends are
not mistaken for links, too little data is said plainly, and on the demo the planted chain
(team mood -> CSAT on the team's channels a month later) is found, and nothing without it."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from crmmetrics.data.demo import CHAIN_LAG_MONTHS
from crmmetrics.readers.value_chain import (
    CHAIN,
    MIN_DEGREES_OF_FREEDOM,
    assess_chain,
    link_across_units,
    link_over_periods,
)
from crmmetrics.testing import metric_history


def panel(rng, *, units=4, periods=36, effect=0.8, lag=1):
    """Per unit: a driver (AR(1) around a shared trend and a unit level) and an outcome that
    follows the driver ``lag`` periods later by ``effect``, plus noise."""
    trend = np.linspace(0, 10, periods)
    driver, outcome = {}, {}
    for u in range(units):
        x = np.zeros(periods)
        for t in range(1, periods):
            x[t] = 0.3 * x[t - 1] + rng.normal()
        y = np.full(periods, np.nan)
        y[lag:] = effect * x[: periods - lag]
        y = y + rng.normal(0, 0.6, periods) + 0.5 * trend + 3 * u
        y[:lag] = rng.normal(0, 0.6, lag) + 3 * u
        driver[f"team{u}"] = list(x + trend + 10 * u)
        outcome[f"channel{u}"] = list(y)
    return driver, outcome


def test_across_units_recovers_sign_and_lag():
    rng = np.random.default_rng(1)
    driver, outcome = panel(rng, effect=0.8, lag=2)
    pairs = [(f"team{u}", f"channel{u}") for u in range(4)]
    link = link_across_units(driver, outcome, unit_pairs=pairs, keys=("pa_enps", "vc_csat"), names=("eNPS", "CSAT"))
    assert link.linked is True and link.lag == 2 and link.correlation > 0.5
    assert link.lower > 0 and link.lower < link.correlation < link.upper
    assert link.units == 4 and link.observations == 4 * (36 - 2)
    assert [lag for lag, _, _ in link.by_lag] == [0, 1, 2, 3]
    assert link.statement.startswith("When eNPS rises, CSAT rises 2 periods later (across units; r = +")
    # a negative effect has the other sign
    driver, outcome = panel(np.random.default_rng(2), effect=-0.8, lag=1)
    negative = link_across_units(driver, outcome, unit_pairs=pairs)
    assert negative.linked is True and negative.lag == 1 and negative.upper < 0
    assert "falls 1 period later" in negative.statement


def test_a_shared_trend_is_not_a_link():
    """Independent KPIs that share a trend: the levels correlate strongly, yet links are reported
    at about the nominal 5% rate only (200 seeded panels, over periods and across units)."""
    rng = np.random.default_rng(3)
    pairs = [(f"team{u}", f"channel{u}") for u in range(4)]
    driver, outcome = panel(rng, effect=0.0)
    assert np.corrcoef(driver["team0"], outcome["channel0"])[0, 1] > 0.7
    over = across = 0
    trials = 200
    for _ in range(trials):
        driver, outcome = panel(rng, effect=0.0)
        result = link_over_periods(driver["team0"], outcome["channel0"])
        over += result.linked
        across += link_across_units(driver, outcome, unit_pairs=pairs).linked
        if not result.linked:
            assert result.statement.startswith("No link found between driver and outcome over periods (strongest at lag")
            assert result.lower < 0 < result.upper
    assert over / trials <= 0.08 and across / trials <= 0.08


def test_over_periods_recovers_a_lagged_link():
    rng = np.random.default_rng(4)
    x = np.cumsum(rng.normal(0, 1, 40)) + np.linspace(0, 5, 40)
    y = np.concatenate([[0.0], 2 * x[:-1]]) + rng.normal(0, 0.5, 40)
    link = link_over_periods(list(x), list(y))
    assert link.linked is True and link.lag == 1 and link.correlation > 0.8
    assert link.observations == 38


def test_not_enough_data_is_a_plain_statement():
    short = link_over_periods([1.0, 2.0, 4.0, 3.0, 5.0, 4.0], [2.0, 3.0, 3.0, 5.0, 4.0, 6.0], names=("Employee satisfaction", "CSAT"))
    assert short.linked is None and short.correlation is None and short.lag is None
    assert short.statement.startswith("Not enough data to say whether Employee satisfaction and CSAT are linked over periods")
    assert f"at least {MIN_DEGREES_OF_FREEDOM} degrees of freedom" in short.statement
    # missing values leave too few pairs too
    gaps = [None if t % 2 else float(t) for t in range(30)]
    assert link_over_periods(gaps, list(map(float, range(30)))).linked is None
    # one unit pair only: nothing left across units once its level is taken out
    one = link_across_units({"a": list(map(float, range(30)))}, {"a": list(map(float, range(30)))})
    assert one.linked is None and one.correlation is None and one.units == 1
    # no variation at all
    flat = link_over_periods([5.0] * 30, list(np.random.default_rng(0).normal(0, 1, 30)))
    assert flat.linked is None
    assert short.to_json()["correlation"] is None


def test_chain_pairs_are_built_in_kpis(loaded_plugins):
    registry = loaded_plugins().registry
    for link in CHAIN:
        driver, outcome = registry.get(link.driver), registry.get(link.outcome)
        assert (driver.value_lens, outcome.value_lens) in (
            ("employee_value", "customer_value"),
            ("customer_value", "customer_value"),  # retention and share of wallet are customer KPIs
            ("customer_value", "shareholder_value"),
        ), link
        if link.driver_unit:
            assert link.driver_unit in driver.dimensions and link.outcome_unit in outcome.dimensions


# --- the demo ----------------------------------------------------------------------------------



def _by_unit(history, dimension):
    series = {}
    for i, values in enumerate(history):
        for dims, value in values.items():
            if len(dims) == 1 and dims[0][0] == dimension:
                series.setdefault(dims[0][1], [None] * len(history))[i] = value
    return series


@pytest.fixture(scope="module")
def chain_histories(chain_demos):
    """The two demos of tests/conftest.py (with and without the planted chain): their
    monthly history of employee satisfaction by department and CSAT by channel category."""
    return {planted: (demo.history, demo.pairs) for planted, demo in chain_demos.items()}


def test_demo_units_pair_departments_with_their_channels(chain_histories):
    _, pairs = chain_histories[True]
    assert pairs == [
        ("customer_service", "e_commerce"),
        ("customer_service", "telephony"),
        ("field_sales", "sales_force"),
        ("retail", "outlets"),
    ]


def test_demo_chain_is_recovered_with_sign_and_lag(chain_histories):
    history, pairs = chain_histories[True]
    esat = _by_unit(history["pa_employee_satisfaction"], "department")
    csat = _by_unit(history["vc_csat"], "channel_category")
    link = link_across_units(esat, csat, unit_pairs=pairs, keys=("pa_employee_satisfaction", "vc_csat"))
    assert link.linked is True
    assert link.lag == CHAIN_LAG_MONTHS and link.correlation > 0
    assert link.lower > 0
    assert link.observations > 100 and link.units == 4


def test_demo_without_chain_shows_no_link(chain_histories):
    history, pairs = chain_histories[False]
    esat = _by_unit(history["pa_employee_satisfaction"], "department")
    csat = _by_unit(history["vc_csat"], "channel_category")
    link = link_across_units(esat, csat, unit_pairs=pairs)
    assert link.linked is False
    assert link.lower < 0 < link.upper
    assert link.observations > 100


def test_assess_chain_on_the_demo(chain_histories):
    history, pairs = chain_histories[True]
    totals = {key: [values.get(()) for values in rows] for key, rows in history.items()}
    by_unit = {
        "pa_employee_satisfaction": _by_unit(history["pa_employee_satisfaction"], "department"),
        "vc_csat": _by_unit(history["vc_csat"], "channel_category"),
    }
    results = assess_chain(totals, by_unit, unit_pairs=pairs, names={"pa_employee_satisfaction": "Employee satisfaction", "vc_csat": "CSAT"})
    # only the pair with data here: employee satisfaction -> CSAT, over periods and across units
    assert [(r.driver, r.outcome, r.basis) for r in results] == [
        ("pa_employee_satisfaction", "vc_csat", "over_periods"),
        ("pa_employee_satisfaction", "vc_csat", "across_units"),
    ]
    across = results[1]
    assert across.linked is True and across.lag == 1
    assert across.statement.startswith("When Employee satisfaction rises, CSAT rises 1 period later (across units")


def test_metric_history_matches_single_runs(demo_db, compute, tmp_path):
    months = [datetime(2026, m, 1) for m in range(1, 7)]
    history = metric_history(demo_db.url, ["vc_csat"], months, store_url=f"sqlite:///{tmp_path}/h.sqlite", period="month")
    assert len(history["vc_csat"]) == 6
    for moment, values in zip(months[::5], history["vc_csat"][::5]):
        single = compute("vc_csat", demo_db.url, as_of=moment, period="month")
        assert values == single.dimension_values("current")
        assert values[()] is not None
