"""The built-in plugins cover the design catalogue, and docs/kpis.md is what they generate."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from crmmetrics.compute.plugins import get_plugin_manager
from crmmetrics.compute.registry import build_registry
from crmmetrics.core.vocabulary import Perspective, Process

ROOT = Path(__file__).resolve().parent.parent
BUILTINS = "strategy_development,value_creation,multichannel_integration,information_management,performance_assessment"
# Catalogue keys built in under another key (documented in docs/kpis.md, "Coverage").
RENAMED = {
    "vc_retention_rate": "vc_active_retention_rate",
    "vc_churn_rate": "vc_active_churn_rate",
    "mci_multichannel_spend_index": "mci_multichannel_spend_uplift",
    "im_clv_forecast_accuracy": "im_clv_forecast_correlation",
}


def builtin_registry(monkeypatch):
    monkeypatch.setenv("CRMMETRICS_LOAD_PLUGINS", BUILTINS)
    return build_registry(get_plugin_manager())


def test_builtin_plugins_cover_the_catalogue(monkeypatch):
    registry = builtin_registry(monkeypatch)
    rows = list(csv.DictReader(open(ROOT / "tests" / "data" / "catalogue" / "kpi-catalogue.csv")))
    assert len(rows) == 58
    covered = [row for row in rows if RENAMED.get(row["key"], row["key"]) in registry]
    assert len(covered) == 56  # the other two are the scorecard's own index and attainment
    assert {row["key"] for row in rows} - {row["key"] for row in covered} == {"pa_kpi_target_attainment", "pa_scorecard_index"}
    for row in covered:
        definition = registry.get(RENAMED.get(row["key"], row["key"]))
        assert definition.process == row["process"], row["key"]
    assert {d.process for d in registry} == set(Process)
    assert {d.perspective for d in registry} == set(Perspective)
    for definition in registry:
        assert definition.name and definition.description and definition.formula and definition.source, definition.key


def test_docs_kpis_is_generated_from_the_plugins():
    import os

    generated = subprocess.run(
        [sys.executable, "-m", "crmmetrics", "metrics", "docs"],
        capture_output=True, text=True, env={**os.environ, "CRMMETRICS_LOAD_PLUGINS": BUILTINS}, check=True,
    ).stdout
    committed = (ROOT / "docs" / "kpis.md").read_text()
    assert committed == generated, (
        "docs/kpis.md is out of date: run CRMMETRICS_LOAD_PLUGINS=" + BUILTINS + " crmmetrics metrics docs > docs/kpis.md"
    )
    assert "| `vc_nps` | Net Promoter Score |" in committed
