"""Within one run, metrics that need the same per-customer work share one computation through
the compute context (``ctx.shared``): the two RFM shares one RFM query, the two CLV forecast KPIs
one holdout fit; each metric's values are those it gets when computed alone."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import event

from crmmetrics.app import App
from crmmetrics.config import parse_config
from crmmetrics.demo import generate_demo

AS_OF = date(2026, 11, 1)
RFM = ["sd_rfm_champion_share", "sd_rfm_at_risk_share"]
FORECAST = ["im_clv_forecast_correlation", "im_clv_forecast_error"]


@pytest.fixture(scope="module")
def crm(tmp_path_factory):
    path = tmp_path_factory.mktemp("crm") / "crm.sqlite"
    generate_demo(f"sqlite:///{path}", customers=1500, seed=11, as_of=AS_OF)
    return path


def app_on(crm, tmp_path, monkeypatch) -> tuple[App, list[str]]:
    monkeypatch.setenv("CRMMETRICS_LOAD_PLUGINS", "strategy_development,information_management")
    config = parse_config(
        {
            "source": {"url": f"sqlite:///{crm}"},
            "store": {"url": f"sqlite:///{tmp_path / f'store-{len(list(tmp_path.iterdir()))}.sqlite'}"},
            "service": {"as_of": datetime(AS_OF.year, AS_OF.month, AS_OF.day)},
        },
        None,
    )
    app = App.from_config(config)
    statements: list[str] = []
    event.listen(app.runner.source, "before_cursor_execute", lambda c, cur, statement, *rest: statements.append(statement))
    return app, statements


def values(app: App) -> dict[str, dict]:
    """The stored values of the latest run of each metric."""
    latest: dict[str, dict] = {}
    for o in app.store.latest_observations():
        latest.setdefault(o.metric_key, {})[(o.period_label, tuple(sorted(o.dimensions.items())))] = o.value
    return latest


def test_one_rfm_query_and_one_holdout_fit_per_period_in_a_run(crm, tmp_path, monkeypatch):
    app, statements = app_on(crm, tmp_path, monkeypatch)
    runs = app.runner.run_all(RFM + FORECAST)
    assert [run.status for run in runs] == ["success"] * 4, [run.error for run in runs]
    # current and previous period: one RFM query and one holdout summary each, not two
    assert sum("rfm_scores" in s for s in statements) == 2
    assert sum("ranked_days" in s for s in statements) == 2
    shared = values(app)
    # each forecast KPI keeps the fit it used with its own run, current and previous period
    fits = [fit.metric_key for fit in app.store.latest_model_fits()]
    assert sorted(fits) == sorted(FORECAST * 2)

    alone = {}
    for key in RFM + FORECAST:
        app_alone, _ = app_on(crm, tmp_path, monkeypatch)
        app_alone.runner.run_all([key])
        alone.update(values(app_alone))
    assert shared == alone
    assert any(v is not None for v in shared["im_clv_forecast_error"].values())
