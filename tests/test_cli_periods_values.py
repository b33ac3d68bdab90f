"""Every value says its period, from the command line: run --json, run --as-of, metrics set
--period, scorecard (--json) and values (--json), on the scorecard tests' scenario."""

from __future__ import annotations

import json

import pytest

from support.scorecard_scenario import build_scenario

MAY = {"start": "2026-05-01T00:00:00Z", "end": "2026-06-01T00:00:00Z", "label": "2026-05"}
APRIL = {"start": "2026-04-01T00:00:00Z", "end": "2026-05-01T00:00:00Z", "label": "2026-04"}


@pytest.fixture
def scenario(tmp_path):
    from crmmetrics.testing import CrmDatabase

    source = CrmDatabase(f"sqlite:///{tmp_path / 'crm.sqlite'}")
    source.dispose()
    return build_scenario(tmp_path, source.url)


def test_run_json_carries_the_periods_and_missing_reasons(scenario):
    done = scenario.cli("run", "--json", "--metric", "sc_nps", "--metric", "sc_missing")
    assert done.returncode == 0, done.stderr
    runs = {run["metric"]: run for run in json.loads(done.stdout)}
    assert runs["sc_nps"]["period"] == "month"
    assert runs["sc_nps"]["periods"] == {
        "current": {**MAY, "missing_reason": None},
        "previous": {**APRIL, "missing_reason": None},
    }
    assert runs["sc_missing"]["periods"]["current"]["missing_reason"] == "no rows in orders for 2026-05"
    text = scenario.cli("run", "--metric", "sc_missing")
    assert "2026-05" in text.stdout and "current: no data (no rows in orders for 2026-05)" in text.stdout


def test_run_as_of_another_date_and_timezone(scenario):
    # 2026-03-01 00:30 in Berlin is still February in UTC: the last complete month is January.
    done = scenario.cli("run", "--json", "--metric", "sc_nps", "--as-of", "2026-03-01T00:30:00+01:00")
    assert done.returncode == 0, done.stderr
    periods = json.loads(done.stdout)[0]["periods"]
    assert (periods["current"]["label"], periods["previous"]["label"]) == ("2026-01", "2025-12")
    bad = scenario.cli("run", "--as-of", "yesterday")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr == "Error: --as-of: 'yesterday' is not an ISO 8601 date or date-time, e.g. 2026-11-30T18:00\n"


def test_metrics_set_period_keeps_comments_and_validates(scenario):
    config = scenario.config
    config.write_text("# our settings\n" + config.read_text() + "\n[metrics.sc_nps]  # marketing's NPS\nenabled = true\n")
    done = scenario.cli("metrics", "set", "sc_nps", "--period", "quarter")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "sc_nps: period=quarter\n"
    text = config.read_text()
    assert text.startswith("# our settings\n") and "[metrics.sc_nps]  # marketing's NPS" in text and 'period = "quarter"' in text
    again = json.loads(scenario.cli("run", "--json", "--metric", "sc_nps").stdout)[0]
    assert again["periods"]["current"]["label"] == "2026-Q1"
    before = config.read_text()
    bad = scenario.cli("metrics", "set", "sc_nps", "--period", "fortnight")
    assert bad.returncode == 2
    assert bad.stderr.startswith("Error: --period: unknown period 'fortnight': expected month, quarter, year")
    assert config.read_text() == before


def test_scorecard_json_lists_unjudged_metrics_with_their_values(tmp_path):
    from crmmetrics.testing import CrmDatabase

    source = CrmDatabase(f"sqlite:///{tmp_path / 'crm.sqlite'}")
    source.dispose()
    only_defaults = build_scenario(tmp_path, source.url, import_standards=False)  # sc_nps has a default standard
    card = json.loads(only_defaults.cli("scorecard", "--json").stdout)
    assert [kpi["key"] for kpi in card["kpis"]] == ["sc_nps"]
    listed = {(v["metric"], tuple(v["dimensions"].values())): v for v in card["unjudged_metrics"]}
    assert set(listed) == {
        ("sc_new_customers", ()), ("sc_complaints", ()), ("sc_missing", ()), ("sc_engagement", ()),
        ("sc_fcr_by_channel", ("e_commerce",)), ("sc_fcr_by_channel", ("outlets",)), ("sc_fcr_by_channel", ("telephony",)),
    }
    complaints = listed[("sc_complaints", ())]
    assert (complaints["value"], complaints["previous_value"], complaints["period"], complaints["judged"]) == (16.0, 20.0, MAY, False)
    assert listed[("sc_missing", ())]["missing_reason"] == "no rows in orders for 2026-05"


def test_scorecard_json_and_values_say_the_period(scenario):
    card = json.loads(scenario.cli("scorecard", "--json").stdout)
    assert card["reporting_date"] == "2026-06-01T00:00:00Z"
    assert card["periods"] == [{**MAY, "kpis": 8}]
    assert all(kpi["period"] == MAY for kpi in card["kpis"])
    assert card["unjudged_metrics"] == []

    values = json.loads(scenario.cli("values", "--json").stdout)
    by_key = {(v["metric"], tuple(sorted(v["dimensions"].items()))): v for v in values}
    assert len(by_key) == 8  # 6 metrics, one of them with 3 channel categories and no total
    nps = by_key[("sc_nps", ())]
    assert (nps["value"], nps["previous_value"], nps["status"], nps["standard"], nps["judged"]) == (30.0, 25.0, "green", "sc_nps", True)
    assert (nps["period"], nps["previous_period"]) == (MAY, APRIL)
    assert by_key[("sc_complaints", ())]["status"] == "amber"
    missing = by_key[("sc_missing", ())]
    assert (missing["value"], missing["status"], missing["missing_reason"]) == (None, "no data", "no rows in orders for 2026-05")
    one = json.loads(scenario.cli("values", "--json", "--metric", "sc_fcr_by_channel").stdout)
    assert sorted(v["dimensions"]["channel_category"] for v in one) == ["e_commerce", "outlets", "telephony"]
    text = scenario.cli("values").stdout.splitlines()
    assert any(line.startswith("sc_missing ") and "2026-05" in line and "no rows in orders for 2026-05" in line for line in text)
    # The terminal scorecard states coverage and periods.
    terminal = scenario.cli("scorecard").stdout
    assert "(7 of 8 KPIs with data)" in terminal and "periods: 2026-05 (8 KPIs)" in terminal


def test_latest_values_gives_a_plugin_what_values_json_prints(scenario, tmp_path):
    """crmmetrics.latest_values, the public way for a plugin's command to read the store."""
    import crmmetrics

    printed = json.loads(scenario.cli("values", "--json").stdout)
    store = tmp_path / "store.sqlite"
    before = store.read_bytes()
    rows = crmmetrics.latest_values(scenario.config)
    assert [row.to_json() for row in rows] == printed
    nps = next(row for row in rows if row.metric == "sc_nps")
    assert (nps.value, nps.previous_value, nps.status, nps.current.to_json()) == (30.0, 25.0, "green", MAY)
    assert store.read_bytes() == before  # read without writing
    # Nothing run yet (no store): no values, not an error.
    other = tmp_path / "empty"
    other.mkdir()
    config = other / "crmmetrics.toml"
    config.write_text(scenario.config.read_text().replace(str(store), str(other / "store.sqlite")))
    assert crmmetrics.latest_values(config) == []
    assert not (other / "store.sqlite").exists()
