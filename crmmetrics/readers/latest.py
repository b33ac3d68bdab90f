"""The latest values as a plugin's command or a script reads them: every latest value of every
metric, with the KPI status of those a standard judges (what ``crmmetrics values`` prints)."""

from __future__ import annotations

from pathlib import Path

from crmmetrics.core.config import load_config
from crmmetrics.store.store import Store, StoreMissing
from .scorecard import build_scorecard
from .values import MetricValue, metric_values


def judged_values(store: Store) -> list[MetricValue]:
    """Every latest value, with the KPI status and standard of those a standard judges."""
    scorecard = build_scorecard(store)
    judged = {(kpi.metric, tuple(sorted(kpi.dimensions.items()))): kpi for kpi in scorecard.kpis}
    rows = []
    for value in metric_values(store.metric_records(), store.latest_observations()):
        kpi = judged.get((value.metric, tuple(sorted(value.dimensions.items()))))
        if kpi is not None:
            value = MetricValue(**{**value.__dict__, "status": kpi.status, "standard": kpi.standard.key})
        rows.append(value)
    return rows


def latest_values(config: str | Path | None = None) -> list[MetricValue]:
    """Every latest value in the store of the configuration ``config`` (a path; by default the
    file the CLI would use), read without writing: none while nothing has been run yet (no store).
    Raises ``ConfigError`` for a bad or missing configuration, ``CrmmetricsError`` for a store
    that cannot be read."""
    try:
        store = Store(load_config(config).store_url, read_only=True)
    except StoreMissing:
        return []
    try:
        return judged_values(store)
    finally:
        store.engine.dispose()
