"""The balanced scorecard: status and score arithmetic on hand-computed cases, which observation a
standard judges, roll-ups and attainment, and the scorecard of a real run (CLI, /metrics)."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from crmmetrics.core.standard import Standard, StandardDefault
from crmmetrics.readers.display import format_value
from crmmetrics.readers.exporter import Exposition
from crmmetrics.readers.scorecard import change_ratio, evaluate, kpi_score, kpi_status, weighted_mean
from crmmetrics.store.store import LatestObservation, MetricRecord, Store
from crmmetrics.testing import render_exposition
from support.scorecard_scenario import build_scenario

T0 = datetime(2026, 6, 15, 6, 0)


@pytest.mark.parametrize(
    ("value", "red", "green", "score", "status"),
    [
        # higher is better: red 0, green 20
        (10, 0, 20, 50.0, "amber"),  # 100 * (10 - 0) / (20 - 0)
        (5, 0, 20, 25.0, "amber"),
        (20, 0, 20, 100.0, "green"),  # on the green threshold
        (25, 0, 20, 100.0, "green"),  # beyond it: clamped
        (0, 0, 20, 0.0, "red"),  # on the red threshold is red
        (-5, 0, 20, 0.0, "red"),
        # lower is better: red 20, green 12 (red above green)
        (16, 20, 12, 50.0, "amber"),  # 100 * (16 - 20) / (12 - 20)
        (18, 20, 12, 25.0, "amber"),  # 100 * (-2) / (-8)
        (12, 20, 12, 100.0, "green"),
        (10, 20, 12, 100.0, "green"),
        (20, 20, 12, 0.0, "red"),
        (25, 20, 12, 0.0, "red"),
    ],
)
def test_score_and_status(value, red, green, score, status):
    assert kpi_score(value, red, green) == score
    assert kpi_status(value, red, green) == status


@pytest.mark.parametrize(
    ("current", "previous", "expected"),
    [(12, 10, 0.2), (9, 12, -0.25), (-5, -10, 0.5), (8, 0, None), (None, 10, None), (10, None, None)],
)
def test_change_against_the_previous_period(current, previous, expected):
    assert change_ratio(current, previous) == expected


def test_weighted_mean_ignores_missing_scores_and_needs_weight():
    assert weighted_mean([(50, 1), (100, 3)]) == 87.5  # (50 + 300) / 4
    assert weighted_mean([(50, 1), (None, 5), (100, 1)]) == 75.0
    assert weighted_mean([(50, 0), (None, 1)]) is None
    assert weighted_mean([]) is None


def test_values_are_shown_with_their_units():
    assert format_value(42.123, "percent") == "42.1%"
    assert format_value(1234.5, "customers") == "1,234 customers"
    assert format_value(0.853, "ratio") == "0.85"
    assert format_value(-17.8, "points") == "-17.8 points"
    assert format_value(8.0, "count") == "8" and format_value(8.5, "count") == "8.50"
    assert format_value(None, "percent") == "no data"


# --- evaluate() on objects built by hand -----------------------------------------------------


def record(key, process="value_creation", perspective="customer", direction="higher_is_better", unit="percent"):
    return MetricRecord(
        key=key, plugin="t", name=key.title(), description="", process=process, perspective=perspective,
        value_lens="customer_value", unit=unit, direction=direction, dimensions="[]",
    )


def obs(key, value, period="current", **dimensions):
    return LatestObservation(key, dimensions, period, T0, T0, value, T0)


def standard(metric, red, green, target=None, weight=1.0, dimensions=None, **extra):
    spec = StandardDefault(metric, target if target is not None or extra else green, red=red, green=green,
                           weight=weight, dimensions=dimensions or {}, **extra)
    return Standard(spec, "admin", T0, "t", T0, "t", 1)


def by_key(scorecard):
    return {kpi.key: kpi for kpi in scorecard.kpis}


def test_a_whole_metric_standard_judges_the_total_when_there_is_one():
    records = {"m": record("m")}
    observations = [obs("m", 70), obs("m", 10, channel="a"), obs("m", 90, channel="b")]
    card = evaluate([standard("m", red=50, green=80)], records, observations)
    assert list(by_key(card)) == ["m"]
    assert by_key(card)["m"].score == pytest.approx(100 * 20 / 30)  # (70 - 50) / (80 - 50)
    assert by_key(card)["m"].status == "amber"


def test_without_a_total_it_judges_each_dimension_value_sharing_its_weight():
    records = {"m": record("m")}
    observations = [obs("m", 10, channel="a"), obs("m", 90, channel="b")]
    card = evaluate([standard("m", red=50, green=80, weight=4)], records, observations)
    kpis = by_key(card)
    assert kpis["m{channel=a}"].status == "red" and kpis["m{channel=b}"].status == "green"
    assert kpis["m{channel=a}"].weight == 2.0 and kpis["m{channel=b}"].weight == 2.0
    assert card.cells[("value_creation", "customer")] == 50.0  # (0 * 2 + 100 * 2) / 4

    # A dimension value with a standard of its own leaves the whole-metric standard the others.
    card = evaluate(
        [standard("m", red=50, green=80, weight=4), standard("m", red=95, green=99, weight=1, dimensions={"channel": "b"})],
        records,
        observations,
    )
    kpis = by_key(card)
    assert kpis["m{channel=a}"].weight == 4.0 and kpis["m{channel=a}"].standard.key == "m"
    assert kpis["m{channel=b}"].standard.key == "m{channel=b}" and kpis["m{channel=b}"].status == "red"
    assert card.cells[("value_creation", "customer")] == 0.0


def test_the_most_specific_standard_wins_then_the_first_key():
    records = {"m": record("m")}
    observations = [
        obs("m", 1, segment="P", channel="web"),
        obs("m", 2, segment="P", channel="shop"),
        obs("m", 3, segment="Q", channel="web"),
        obs("m", 4, segment="Q", channel="shop"),
    ]
    standards = [
        standard("m", red=0, green=10),
        standard("m", red=0, green=20, dimensions={"segment": "P"}),
        standard("m", red=0, green=30, dimensions={"channel": "web"}),
        standard("m", red=0, green=40, dimensions={"segment": "P", "channel": "web"}),
    ]
    judged = {kpi.key: kpi.standard.key for kpi in evaluate(standards, records, observations).kpis}
    assert judged == {
        "m{channel=web,segment=P}": "m{channel=web,segment=P}",
        "m{channel=shop,segment=P}": "m{segment=P}",
        "m{channel=web,segment=Q}": "m{channel=web}",  # ties with nothing: only it matches
        "m{channel=shop,segment=Q}": "m",
    }
    # Without the two-dimension standard, P/web is matched by two one-dimension standards:
    # the first key in sort order (channel before segment) wins.
    judged = {kpi.key: kpi.standard.key for kpi in evaluate(standards[:3], records, observations).kpis}
    assert judged["m{channel=web,segment=P}"] == "m{channel=web}"


def test_missing_values_have_no_status_and_stay_out_of_the_roll_ups():
    records = {
        "a": record("a", perspective="customer"),
        "b": record("b", perspective="customer"),
        "c": record("c", perspective="financial"),
    }
    observations = [obs("a", 15), obs("a", 10, "previous"), obs("b", None)]  # c: never computed
    card = evaluate(
        [standard("a", red=0, green=20, target=20), standard("b", red=0, green=20, weight=9), standard("c", red=0, green=1)],
        records,
        observations,
    )
    kpis = by_key(card)
    assert kpis["b"].status is None and kpis["b"].score is None and kpis["b"].attained is None
    assert kpis["c"].value is None and kpis["c"].status is None  # one "no data" KPI for a metric never computed
    assert card.cells[("value_creation", "customer")] == 75.0  # a alone: b's weight 9 does not count
    assert card.perspectives["financial"] is None
    assert card.index == 75.0  # the mean of the perspectives that have a score
    assert card.attainment == 0.0  # a: 15 < 20; b and c have no value
    assert card.status_counts() == {"green": 0, "amber": 1, "red": 0, "no data": 2}


def test_weight_zero_kpis_show_but_do_not_count():
    card = evaluate([standard("a", red=0, green=20, weight=0)], {"a": record("a")}, [obs("a", 20)])
    assert by_key(card)["a"].status == "green"
    assert card.cells[("value_creation", "customer")] is None and card.index is None
    assert card.attainment == 1.0  # attainment counts KPIs, not weights


def test_a_target_from_the_previous_period_needs_a_previous_value():
    records = {"a": record("a"), "l": record("l", direction="lower_is_better")}
    rule = {"target_rule": "previous", "improvement": 0.05}
    observations = [obs("a", 104), obs("a", 100, "previous"), obs("l", 94), obs("l", 100, "previous")]
    card = evaluate([standard("a", red=50, green=100, **rule), standard("l", red=150, green=100, **rule)], records, observations)
    assert by_key(card)["a"].target == 105.0 and by_key(card)["a"].attained is False  # 5% more than 100
    assert by_key(card)["l"].target == 95.0 and by_key(card)["l"].attained is True  # 5% less: lower is better
    card = evaluate([standard("a", red=50, green=100, **rule)], records, [obs("a", 104)])
    assert by_key(card)["a"].target is None and card.attainment is None


def test_a_standard_for_a_metric_no_plugin_defines_is_not_on_the_scorecard():
    card = evaluate([standard("gone", red=0, green=1)], {}, [obs("gone", 5)])
    assert card.kpis == [] and card.index is None


# --- the scorecard of a real run -------------------------------------------------------------
#
# tests/data/scorecard_kpis: the values each metric returns (plugins/kpis.py) and the admin's
# standards (standards.toml; sc_nps keeps its plugin default). Worked out by hand:
#
# KPI                          value prev  red green target wt  score status attained change
# sc_nps (sd, financial)          30   25   10   30    40   1   100   green  no       +0.2
# sc_new_customers (sd, cust.)     8   -    10   30    40   1     0   red    no       -
# sc_complaints (vc, cust., low)  16   20   20   12    10   3    50   amber  no       -0.2
# sc_missing (vc, cust.)           -   -     1    4     5   2     -   -      -        -
# sc_fcr e_commerce (mci, int.)   80   70   50   80    80  2/2  100   green  yes      +1/7
# sc_fcr telephony                65   60   50   80    80  2/2   50   amber  no       +1/12
# sc_fcr outlets (own standard)   70   75   40   60    60   1   100   green  yes      -1/15
# sc_engagement (pa, l&g)         55   50   40   60  50*1.1 1    75   amber  yes      +0.1
#
# perspectives: financial 100; customer (50*3 + 0*1) / 4 = 37.5; internal (100+50+100)/3;
# learning & growth 75; index = (100 + 37.5 + 83.333 + 75) / 4 = 73.958;
# attainment = 3 of the 7 KPIs with a value (e_commerce, outlets, engagement).


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    from crmmetrics.testing import CrmDatabase

    directory = tmp_path_factory.mktemp("scorecard")
    source = CrmDatabase(f"sqlite:///{directory / 'crm.sqlite'}")
    source.dispose()
    return build_scenario(directory, source.url)


def test_scorecard_json_of_a_real_run(scenario):
    done = scenario.cli("scorecard", "--json")
    assert done.returncode == 0, done.stderr
    card = json.loads(done.stdout)
    assert card["index"] == pytest.approx((100 + 37.5 + 250 / 3 + 75) / 4)
    assert card["target_attainment_ratio"] == pytest.approx(3 / 7)
    assert card["statuses"] == {"green": 3, "amber": 3, "red": 1, "no data": 1}
    assert card["perspectives"] == pytest.approx(
        {"financial": 100.0, "customer": 37.5, "internal_process": 250 / 3, "learning_growth": 75.0}
    )
    assert card["processes"]["strategy_development"] == 50.0  # (100 + 0) / 2
    assert card["processes"]["information_management"] is None
    # Coverage: every roll-up says how many of its KPIs it rests on.
    assert card["coverage"] == {"kpis_with_data": 7, "kpis": 8, "ratio": 7 / 8}
    assert card["perspective_rollups"]["customer"]["coverage"] == {"kpis_with_data": 2, "kpis": 3, "ratio": 2 / 3}
    assert card["process_rollups"]["information_management"] == {
        "score": None, "status": "no data", "coverage": {"kpis_with_data": 0, "kpis": 0, "ratio": None},
    }
    coverage = {(c["process"], c["perspective"]): c["coverage"]["kpis_with_data"] for c in card["cells"]}
    assert coverage[("value_creation", "customer")] == 1  # sc_complaints; sc_missing has no data
    cells = {(c["process"], c["perspective"]): c["score"] for c in card["cells"]}
    assert len(cells) == 20 and cells[("strategy_development", "customer")] == 0.0
    kpis = {k["key"]: k for k in card["kpis"]}
    assert set(kpis) == {
        "sc_nps", "sc_new_customers", "sc_complaints", "sc_missing", "sc_engagement",
        "sc_fcr_by_channel{channel_category=e_commerce}", "sc_fcr_by_channel{channel_category=telephony}",
        "sc_fcr_by_channel{channel_category=outlets}",
    }
    complaints = kpis["sc_complaints"]
    assert (complaints["value"], complaints["status"], complaints["score"], complaints["weight"]) == (16.0, "amber", 50.0, 3.0)
    assert complaints["change_ratio"] == pytest.approx(-0.2) and complaints["attained"] is False
    assert kpis["sc_nps"]["standard_origin"] == "default" and kpis["sc_nps"]["owner"] == "Marketing"
    assert kpis["sc_engagement"]["target"] == 55.0 and kpis["sc_engagement"]["attained"] is True
    assert kpis["sc_missing"]["status"] is None and kpis["sc_missing"]["value"] is None
    telephony = kpis["sc_fcr_by_channel{channel_category=telephony}"]
    assert telephony["weight"] == 1.0 and telephony["standard"] == "sc_fcr_by_channel"
    assert telephony["change_ratio"] == pytest.approx(5 / 60)
    assert kpis["sc_fcr_by_channel{channel_category=outlets}"]["standard"] == "sc_fcr_by_channel{channel_category=outlets}"


def test_scorecard_in_the_terminal(scenario):
    done = scenario.cli("scorecard")
    assert done.returncode == 0, done.stderr
    assert "index 74/100" in done.stdout and "target attainment 43%" in done.stdout
    assert "3 green 3 amber 1 red 1 no data" in done.stdout
    for title in ("Strategy", "Value creation", "Multichannel", "Information", "Performance", "Financial 100", "Customer 38"):
        assert title in done.stdout
    assert "Complaint rate  16.0%" in done.stdout


def test_scorecard_families_on_metrics(scenario):
    exposition = render_exposition(scenario.store_url)
    value = exposition.value
    labels = {"metric": "sc_complaints", "process": "value_creation", "perspective": "customer"}
    assert value("crmmetrics_kpi_status", **labels) == 1  # amber
    assert value("crmmetrics_kpi_score", **labels) == 50.0
    # Targets and thresholds in the unit of the KPI's family: 10% as the ratio 0.1.
    assert value("crmmetrics_kpi_target_ratio", **labels) == pytest.approx(0.10)
    assert value("crmmetrics_kpi_red_threshold_ratio", **labels) == pytest.approx(0.20)
    assert value("crmmetrics_kpi_green_threshold_ratio", **labels) == pytest.approx(0.12)
    assert value("crmmetrics_kpi_target_items", metric="sc_new_customers") == 40.0  # a count stays a count
    assert value("crmmetrics_kpi_weight", **labels) == 3.0
    assert value("crmmetrics_kpi_change_ratio", **labels) == pytest.approx(-0.2)
    assert value("crmmetrics_kpi_status", metric="sc_new_customers") == 0  # red
    # KPIs judging a dimension value are in the families by that dimension.
    assert value("crmmetrics_kpi_by_channel_category_status", metric="sc_fcr_by_channel", channel_category="e_commerce") == 2  # green
    assert value("crmmetrics_kpi_by_channel_category_weight", metric="sc_fcr_by_channel", channel_category="telephony") == 1.0
    assert exposition.samples("crmmetrics_kpi_status", metric="sc_fcr_by_channel") == []
    # A KPI without a value has thresholds and weight but no status, score or change.
    assert exposition.samples("crmmetrics_kpi_status", metric="sc_missing") == []
    assert exposition.samples("crmmetrics_kpi_score", metric="sc_missing") == []
    assert value("crmmetrics_kpi_weight", metric="sc_missing") == 2.0
    assert value("crmmetrics_scorecard_cell_score", process="strategy_development", perspective="customer") == 0.0
    assert exposition.samples("crmmetrics_scorecard_cell_score", process="information_management") == []
    assert value("crmmetrics_scorecard_process_score", process="strategy_development") == 50.0
    assert value("crmmetrics_scorecard_perspective_score", perspective="customer") == 37.5
    assert value("crmmetrics_scorecard_index") == pytest.approx(73.958333, abs=1e-5)
    assert value("crmmetrics_scorecard_target_attainment_ratio") == pytest.approx(3 / 7)
    # KPIs by status: 3 green, 3 amber, 1 red, 1 without data (n of m with data: 7 of 8).
    counts = {status: value("crmmetrics_scorecard_kpis", status=status) for status in ("green", "amber", "red", "no_data")}
    assert counts == {"green": 3, "amber": 3, "red": 1, "no_data": 1}
    assert value("crmmetrics_scorecard_process_kpis", process="value_creation", status="no_data") == 1  # sc_missing
    assert value("crmmetrics_scorecard_cell_kpis", process="value_creation", perspective="customer", status="amber") == 1
    assert sum(s.value for s in exposition.samples("crmmetrics_scorecard_perspective_kpis")) == 8
    checked = subprocess.run(["promtool", "check", "metrics"], input=exposition.text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_standards_change_re_renders_the_exposition(scenario):
    store = Store(scenario.store_url)
    exposition = Exposition(store)
    before = exposition.body()
    assert exposition.body() is before and exposition.renders == 1  # nothing changed: the same bytes
    done = scenario.cli("standards", "set", "sc_complaints", "--target", "11")
    assert done.returncode == 0, done.stderr
    families = {f.name: f for f in text_string_to_metric_families(exposition.body().decode())}
    assert exposition.renders == 2
    targets = {s.labels["metric"]: s.value for s in families["crmmetrics_kpi_target_ratio"].samples}
    assert targets["sc_complaints"] == pytest.approx(0.11)
    assert scenario.cli("standards", "set", "sc_complaints", "--target", "10").returncode == 0
    store.engine.dispose()


def test_change_is_shown_with_a_sign_only_when_it_shows():
    from crmmetrics.readers.display import format_change

    assert [format_change(c) for c in (0.0321, -0.005, -0.0004, 0.0, None)] == ["+3.2%", "-0.5%", "0.0%", "0.0%", ""]
