"""The generated Grafana dashboards: committed = built, valid against Grafana's JSON Schemas, complete.

Grafana cannot be installed here, so dashboards are checked against the JSON Schemas of Grafana's
foundation SDK (tests/data/grafana-schema, with its attribution): each dashboard against
``Dashboard``, and each panel against ``Panel`` (or ``RowPanel``), its options and custom field
config against the schema of its own type, and each query against the Prometheus query model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft7Validator

from crmmetrics import MetricDefinition, Perspective, Process, ValueLens, hookimpl
from crmmetrics.compute.plugins import LOAD_ENV, get_plugin_manager
from crmmetrics.compute.registry import build_registry
from crmmetrics.compute.standard_defaults import collect_defaults
from crmmetrics.core.definitions import UNITS
from crmmetrics.readers.dashboards import (
    DATASOURCE_UID,
    GRAFANA_UNITS,
    HEALTH_UID,
    SCORECARD_UID,
    build_dashboards,
    build_files,
    metric_over_time,
    process_uid,
)
from crmmetrics.readers.families import target_family, value_family
from crmmetrics.readers.promql import status_coloured_expr
from crmmetrics.testing import CrmDatabase

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = Path(__file__).resolve().parent / "data" / "grafana-schema"
BUILT_IN = "strategy_development,value_creation,multichannel_integration,information_management,performance_assessment"
# The committed files: the built-in plugins and their default standards, no configuration.
BUILD_ENV = {LOAD_ENV: BUILT_IN, "CRMMETRICS_CONFIG": ""}
# Panel type -> schema file (the state timeline's file drops the dash).
PANEL_SCHEMAS = {
    "stat": "stat",
    "gauge": "gauge",
    "bargauge": "bargauge",
    "timeseries": "timeseries",
    "table": "table",
    "text": "text",
    "state-timeline": "statetimeline",
}


def _schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.jsonschema.json").read_text())


def _validator(name: str, definition: str) -> Draft7Validator:
    root = _schema(name)
    return Draft7Validator({**root, "$ref": f"#/definitions/{definition}"})


def _errors(validator: Draft7Validator, instance) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]


@pytest.fixture(scope="module")
def loaded():
    """The built-in plugins only, as the committed dashboards are built: (registry, KPI keys)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(LOAD_ENV, BUILT_IN)
        pm = get_plugin_manager()
    registry = build_registry(pm)
    return registry, {metric for metric, _ in collect_defaults(pm, registry)}


@pytest.fixture(scope="module")
def registry(loaded):
    return loaded[0]


@pytest.fixture(scope="module")
def kpis(loaded):
    return loaded[1]


@pytest.fixture(scope="module")
def built(registry, kpis):
    return build_dashboards(registry, kpis)


def _panels(dashboard: dict):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def test_committed_files_are_what_build_produces(crmmetrics_cli, tmp_path):
    out = tmp_path / "dashboards"  # the provider path names the directory, as in the checkout
    done = crmmetrics_cli("dashboards", "build", "--out", str(out), env=BUILD_ENV)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("dashboards: 9 files for ")
    generated = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    committed = sorted(
        p.relative_to(ROOT / "dashboards").as_posix()
        for p in (ROOT / "dashboards").rglob("*")
        if p.is_file() and p.suffix in (".json", ".yaml")
    )
    assert committed == generated, "dashboards/ holds files build does not produce, or lacks some"
    stale = [name for name in generated if (out / name).read_text() != (ROOT / "dashboards" / name).read_text()]
    assert stale == [], f"run `CRMMETRICS_LOAD_PLUGINS={BUILT_IN} crmmetrics dashboards build` and commit: {stale}"


def test_build_is_deterministic_whatever_the_registration_order(registry, kpis):
    definitions = list(registry)
    assert build_files(definitions, kpis) == build_files(list(reversed(definitions)), sorted(kpis))


def test_a_second_build_rewrites_nothing(crmmetrics_cli, tmp_path):
    out = tmp_path / "dashboards"
    assert crmmetrics_cli("dashboards", "build", "--out", str(out), env=BUILD_ENV).returncode == 0
    again = crmmetrics_cli("dashboards", "build", "--out", str(out), env=BUILD_ENV)
    assert again.returncode == 0
    assert again.stdout.strip().endswith("(0 changed)")


def test_build_into_a_file_is_a_one_line_error(crmmetrics_cli, tmp_path):
    (tmp_path / "taken").write_text("not a directory")
    done = crmmetrics_cli("dashboards", "build", "--out", "taken")
    assert done.returncode == 2
    assert done.stderr.strip() == "Error: --out: taken is a file, not a directory"


@pytest.mark.parametrize("name", ["scorecard.json", "service-health.json", *(f"process-{p.value.replace('_', '-')}.json" for p in Process)])
def test_dashboard_validates_against_grafana_schema(built, name):
    dashboard = built[name]
    # Each panel against the definition of its own type (errors that name the right branch) ...
    panel_schema, row_schema = _validator("dashboard", "Panel"), _validator("dashboard", "RowPanel")
    query_schema = _validator("prometheus", "Dataquery")
    units = {d["const"] for d in _schema("units")["definitions"].values() if "const" in d}
    problems = []
    for panel in _panels(dashboard):
        where = f"{name}: panel {panel['id']} {panel.get('title')!r}"
        if panel["type"] == "row":
            problems += [f"{where}: {e}" for e in _errors(row_schema, panel)]
            continue
        problems += [f"{where}: {e}" for e in _errors(panel_schema, panel)]
        kind = PANEL_SCHEMAS[panel["type"]]
        problems += [f"{where}: options/{e}" for e in _errors(_validator(kind, "Options"), panel["options"])]
        custom = panel["fieldConfig"]["defaults"].get("custom")
        if custom is not None:
            problems += [f"{where}: custom/{e}" for e in _errors(_validator(kind, "FieldConfig"), custom)]
        for target in panel["targets"]:
            problems += [f"{where}: target {target['refId']}/{e}" for e in _errors(query_schema, target)]
        unit = panel["fieldConfig"]["defaults"].get("unit")
        if unit is not None and unit not in units and not re.match(r"^(suffix|prefix|count|currency):", unit):
            problems.append(f"{where}: unit {unit!r} is not a Grafana unit")
    assert problems == []
    # ... then the whole dashboard, panels included through the schema's own oneOf.
    assert _errors(_validator("dashboard", "Dashboard"), dashboard) == []


def test_every_crmmetrics_unit_has_a_grafana_unit():
    assert set(GRAFANA_UNITS) == set(UNITS)
    assert GRAFANA_UNITS["percent"] == ("percentunit", 1)  # exported as 0-1 ratios
    assert GRAFANA_UNITS["seconds"][0] == GRAFANA_UNITS["hours"][0] == GRAFANA_UNITS["months"][0] == "s"  # exported in seconds


def test_currency_is_neutral_unless_configured(registry, kpis):
    clv = registry.get("vc_clv_simple")
    assert clv.unit == "currency"
    assert metric_over_time(clv, True)["fieldConfig"]["defaults"]["unit"] == "short"
    assert metric_over_time(clv, True, "EUR")["fieldConfig"]["defaults"]["unit"] == "currencyEUR"
    assert metric_over_time(clv, True, "CAD")["fieldConfig"]["defaults"]["unit"] == "suffix: CAD"  # no Grafana unit for it
    euro = build_dashboards(registry, kpis, "EUR")["process-value-creation.json"]
    units = {p["fieldConfig"]["defaults"].get("unit") for p in _panels(euro) if p["type"] != "row" and p["title"].startswith(clv.name)}
    assert units == {"currencyEUR"}


def test_scorecard_has_a_row_per_perspective_with_a_stat_per_kpi(built, registry, kpis):
    panels = built["scorecard.json"]["panels"]
    titles = [p["title"] for p in panels[:6]]
    assert titles == ["Scorecard index", "Target attainment", "Coverage", "KPIs by status", "Process × perspective", "Process scores"]
    assert [p["targets"][0]["expr"] for p in panels[:3]] == [
        "crmmetrics_scorecard_index",
        "crmmetrics_scorecard_target_attainment_ratio",
        "crmmetrics_scorecard_coverage_ratio",
    ]
    rows = [i for i, p in enumerate(panels) if p["type"] == "row"]
    assert [panels[i]["title"] for i in rows] == [
        "Outlook: pacing, anomalies and the value chain",
        "Financial perspective", "Customer perspective", "Internal process perspective", "Learning & growth perspective",
    ]
    outlook, rows = panels[rows[0] + 1 : rows[1]], rows[1:]
    assert [p["title"] for p in outlook] == [
        "Pacing: the period now running", "Chance of ending red", "Anomalies now", "Anomaly score of the latest period",
        "The value chain: links between the KPIs",
    ]
    # every family the KPIs are judged in: the totals and each breakdown of a KPI
    pacing = outlook[0]["targets"][0]["expr"]
    assert "crmmetrics_kpi_pacing_status" in pacing and "crmmetrics_kpi_by_channel_category_pacing_status" in pacing
    assert [t["expr"] for t in outlook[4]["targets"]] == [
        "crmmetrics_value_chain_correlation_ratio", "crmmetrics_value_chain_correlation_lower_ratio",
        "crmmetrics_value_chain_correlation_upper_ratio", "crmmetrics_value_chain_lag_seconds / 2629800",
        "crmmetrics_value_chain_observations",
    ]
    for perspective, start, end in zip(Perspective, rows, [*rows[1:], len(panels)]):
        in_row = panels[start + 1 : end]
        assert in_row[0]["targets"][0]["expr"] == f'crmmetrics_scorecard_perspective_score{{perspective="{perspective.value}"}}'
        shown = [p["title"] for p in in_row[1:]]
        expected = [d for d in registry if d.perspective == perspective and d.key in kpis]
        assert sorted(shown) == sorted(d.name for d in expected)
        assert len(shown) == len(expected) > 0


def test_kpi_stat_shows_value_by_status_unit_description_and_change(built, registry, kpis):
    enps = registry.get("pa_enps")
    assert "pa_enps" in kpis and enps.dimensions == ()
    panel = next(p for p in built["scorecard.json"]["panels"] if p["title"] == enps.name)
    assert panel["type"] == "stat"
    assert panel["description"].startswith(enps.description)
    assert f"Formula: `{enps.formula}`" in panel["description"]
    assert panel["fieldConfig"]["defaults"]["unit"] == "suffix: points"
    value, change = panel["targets"]
    assert value["expr"] == status_coloured_expr(enps)
    assert value["legendFormat"] == "{{status}}"
    current = 'crmmetrics_metric_points{metric="pa_enps", period="current"}'
    previous = 'crmmetrics_metric_points{metric="pa_enps", period="previous"}'
    status = 'crmmetrics_kpi_status{metric="pa_enps"}'
    # The judged value's change; without a status yet, the value's change all the same.
    assert change["expr"] == (
        f"(({current} - ignoring(period) {previous}) and ignoring(period) {status}) "
        f"or (({current} - ignoring(period) {previous}) unless on(metric) {status})"
    )
    assert change["legendFormat"] == "change"
    colours = {o["matcher"]["options"]["pattern"]: o["properties"][0]["value"] for o in panel["fieldConfig"]["overrides"]}
    assert colours["/(^| )green$/"] == {"mode": "fixed", "fixedColor": "green"}
    assert colours["/(^| )red$/"] == {"mode": "fixed", "fixedColor": "red"}
    assert colours["/(^| )amber$/"] == {"mode": "fixed", "fixedColor": "orange"}
    assert colours["/(^| )none$/"] == {"mode": "fixed", "fixedColor": "text"}
    # NPS is higher-is-better: a fall is red, a rise green.
    change_override = panel["fieldConfig"]["overrides"][-1]
    assert change_override["matcher"]["options"]["pattern"] == "/(^| )change$/"
    assert change_override["properties"][1]["value"]["steps"] == [{"value": None, "color": "red"}, {"value": 0, "color": "green"}]
    assert panel["links"][0]["url"] == "/d/crmmetrics-performance_assessment?${__url_time_range}&${datasource:queryparam}"


def test_status_expression_labels_judged_values_and_else_shows_the_total_or_each_value():
    defn = MetricDefinition(
        key="x_share", name="Share", description="d", process=Process.VALUE_CREATION, perspective=Perspective.CUSTOMER,
        value_lens=ValueLens.CUSTOMER_VALUE, unit="percent", direction="higher_is_better", compute=lambda ctx: None,
        dimensions=("segment",),
    )
    # The total and the breakdown are families of their own, and so are the statuses of KPIs
    # judging the total and those judging a segment.
    total = 'crmmetrics_metric_ratio{metric="x_share", period="current"}'
    value = f'({total} or crmmetrics_metric_by_segment_ratio{{metric="x_share", period="current"}})'
    status = '(crmmetrics_kpi_status{metric="x_share"} or crmmetrics_kpi_by_segment_status{metric="x_share"})'
    expr = status_coloured_expr(defn)
    head, tail = 'label_replace(', ', "segment", "total", "segment", "")'
    assert expr.startswith(head) and expr.endswith(tail)
    assert expr[len(head) : -len(tail)].split("\n  or ") == [
        f'label_replace({value} and ignoring(period) ({status} == 2), "status", "green", "metric", ".*")',
        f'label_replace({value} and ignoring(period) ({status} == 1), "status", "amber", "metric", ".*")',
        f'label_replace({value} and ignoring(period) ({status} == 0), "status", "red", "metric", ".*")',
        f'label_replace(({total} or ({value} unless on(metric) {total})) unless on(metric) {status}, "status", "none", "metric", ".*")',
    ]


def test_process_dashboards_show_each_kpi_against_target_and_by_dimension(built, registry, kpis):
    for process in Process:
        dashboard = built[f"process-{process.value.replace('_', '-')}.json"]
        assert dashboard["uid"] == process_uid(process) == f"crmmetrics-{process.value}"
        panels = list(_panels(dashboard))
        for definition in (d for d in registry if d.process == process):
            kpi = definition.key in kpis
            over_time = next(p for p in panels if p["title"] == f"{definition.name} {'against target' if kpi else 'over time'}")
            assert over_time["type"] == "timeseries"
            exprs = [t["expr"] for t in over_time["targets"]]
            assert f'{value_family(definition.unit)}{{metric="{definition.key}", period="current"}}' in exprs[0]
            assert len(exprs) == 2 if kpi else len(exprs) == 1
            if kpi:
                assert f'{target_family(definition.unit)}{{metric="{definition.key}"}}' in exprs[1]
            assert over_time["fieldConfig"]["defaults"]["unit"] == GRAFANA_UNITS[definition.unit][0]
            breakdowns = [p for p in panels if p["title"].startswith(f"{definition.name} by ")]
            assert len(breakdowns) == (1 if definition.dimensions else 0)
            if definition.dimensions:
                assert breakdowns[0]["targets"][0]["legendFormat"] == " ".join(f"{{{{{d}}}}}" for d in definition.dimensions)
    panels = list(_panels(built["process-value-creation.json"]))
    nps = next(p for p in panels if p["title"] == "Net Promoter Score by channel_category")
    assert nps["targets"][0]["expr"] == 'sort_desc(crmmetrics_metric_by_channel_category_points{metric="vc_nps", period="current"})'
    over_time = next(p for p in panels if p["title"] == "Net Promoter Score against target")
    # The total (no channel_category) is named "total" in the legend.
    assert [(t["expr"], t["legendFormat"]) for t in over_time["targets"]] == [
        ('label_replace((crmmetrics_metric_points{metric="vc_nps", period="current"} '
         'or crmmetrics_metric_by_channel_category_points{metric="vc_nps", period="current"}), '
         '"channel_category", "total", "channel_category", "")', "{{channel_category}}"),
        ('label_replace((crmmetrics_kpi_target_points{metric="vc_nps"} or crmmetrics_kpi_by_channel_category_target_points{metric="vc_nps"}), '
         '"channel_category", "total", "channel_category", "")',
         "{{channel_category}} target"),
    ]


def test_health_dashboard_covers_runs_failures_durations_freshness_per_metric_and_plugin(built):
    dashboard = built["service-health.json"]
    exprs = " ".join(t["expr"] for p in _panels(dashboard) for t in p.get("targets", []))
    for family in (
        "crmmetrics_runs_total", "crmmetrics_run_failures_total", "crmmetrics_run_duration_seconds",
        "crmmetrics_run_last_success_timestamp_seconds", "crmmetrics_metric_computed_timestamp_seconds", "crmmetrics_run_up",
    ):
        assert family in exprs
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource", "plugin"]
    assert dashboard["templating"]["list"][1]["query"] == "label_values(crmmetrics_runs_total, plugin)"


def test_every_dashboard_uses_the_datasource_variable_links_the_others_and_lays_out_cleanly(built):
    uids = {d["uid"] for d in built.values()}
    assert {SCORECARD_UID, HEALTH_UID, *(process_uid(p) for p in Process)} == uids
    for name, dashboard in built.items():
        assert "crmmetrics" in dashboard["tags"]
        variable = dashboard["templating"]["list"][0]
        assert (variable["type"], variable["name"], variable["query"]) == ("datasource", "datasource", "prometheus")
        assert variable["current"]["value"] == DATASOURCE_UID
        assert dashboard["links"][0]["type"] == "dashboards" and dashboard["links"][0]["tags"] == ["crmmetrics"]
        ids = [p["id"] for p in _panels(dashboard)]
        assert ids == list(range(1, len(ids) + 1)), name
        cells = set()
        for panel in _panels(dashboard):
            if panel["type"] != "row":
                assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, name
                assert all(t["datasource"] == panel["datasource"] for t in panel["targets"])
                assert panel["description"] or panel["type"] == "text", (name, panel["title"])
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24
            mine = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
            assert not cells & mine, f"{name}: panel {panel['id']} overlaps another"
            cells |= mine
            for link in panel.get("links", []):
                uid = link["url"].removeprefix("/d/").split("?")[0]
                assert uid in uids, f"{name}: panel {panel['title']!r} links to unknown dashboard {uid}"


def test_provisioning_points_grafana_at_the_dashboards_and_the_datasource_the_panels_use():
    files = build_files([], set())
    source = files["provisioning/datasources/crmmetrics.yaml"]
    assert f"uid: {DATASOURCE_UID}\n" in source and "type: prometheus\n" in source
    assert 'url: "http://127.0.0.1:9090"' in source
    provider = files["provisioning/dashboards/crmmetrics.yaml"]
    assert "type: file\n" in provider
    # <dir>/provisioning/../../dashboards is <dir> when <dir> is named dashboards (the checkout's).
    assert "path: ${GF_PATHS_PROVISIONING}/../../dashboards\n" in provider
    assert build_files([], set(), directory_name="grafana")["provisioning/dashboards/crmmetrics.yaml"].count("/../../grafana\n") == 1


class _ChannelPlugin:
    """A third-party plugin defined here: its KPI must appear without any dashboard editing."""

    @hookimpl
    def crmmetrics_metrics(self):
        return [
            MetricDefinition(
                key="zz_callback_rate",
                name="Callback rate",
                description="Share of contacts that needed a callback.",
                process=Process.MULTICHANNEL_INTEGRATION,
                perspective=Perspective.INTERNAL_PROCESS,
                value_lens=ValueLens.COST_REDUCTION,
                unit="percent",
                direction="lower_is_better",
                dimensions=("channel",),
                formula="callbacks / contacts",
                compute=lambda ctx: None,
            )
        ]


def test_a_new_plugins_kpi_appears_on_the_scorecard_and_its_process_dashboard(monkeypatch, kpis):
    monkeypatch.setenv(LOAD_ENV, BUILT_IN)
    pm = get_plugin_manager()
    pm.register(_ChannelPlugin(), name="callbacks")
    registry = build_registry(pm)
    # Without a standard it is a metric: on its process dashboard, not on the scorecard.
    plain = build_dashboards(registry, kpis)
    assert "Callback rate" not in [p["title"] for p in plain["scorecard.json"]["panels"]]
    titles = [p["title"] for p in _panels(plain["process-multichannel-integration.json"])]
    assert {"Callback rate", "Callback rate over time", "Callback rate by channel"} <= set(titles)
    # With one (a plugin default, or an admin's) it is a KPI on the scorecard.
    dashboards = build_dashboards(registry, {*kpis, "zz_callback_rate"})
    stat = next(p for p in dashboards["scorecard.json"]["panels"] if p["title"] == "Callback rate")
    assert stat["fieldConfig"]["defaults"]["unit"] == "percentunit"
    assert stat["targets"][0]["legendFormat"] == "{{channel}} {{status}}"
    # Lower is better: a rise is red.
    change = stat["fieldConfig"]["overrides"][-1]
    assert change["properties"][1]["value"]["steps"] == [{"value": None, "color": "green"}, {"value": 0, "color": "red"}]
    titles = [p["title"] for p in _panels(dashboards["process-multichannel-integration.json"])]
    assert {"Callback rate", "Callback rate against target", "Callback rate by channel"} <= set(titles)
    assert _errors(_validator("dashboard", "Dashboard"), dashboards["scorecard.json"]) == []


def test_with_a_config_the_standards_in_its_store_decide_the_kpis(crmmetrics_cli, tmp_path):
    config = tmp_path / "crmmetrics.toml"
    config.write_text('[source]\nurl = "sqlite:///crm.sqlite"\n[store]\nurl = "sqlite:///store.sqlite"\n')
    CrmDatabase(f"sqlite:///{tmp_path / 'crm.sqlite'}").dispose()  # standards edits check the source as config check does
    env = {**BUILD_ENV, "CRMMETRICS_USER": "test"}
    # vc_aov has no default standard: a metric, until an admin gives it one.
    before = crmmetrics_cli("dashboards", "build", "--config", str(config), "--out", "before", env=env)
    assert before.returncode == 0, before.stderr
    done = crmmetrics_cli(
        "standards", "set", "vc_aov", "--target", "60", "--red", "40", "--green", "55", "--config", str(config), env=env
    )
    assert done.returncode == 0, done.stderr
    after = crmmetrics_cli("dashboards", "build", "--config", str(config), "--out", "after", env=env)
    assert after.returncode == 0, after.stderr
    kpis = re.search(r"\((\d+) KPIs\)", before.stdout).group(1), re.search(r"\((\d+) KPIs\)", after.stdout).group(1)
    assert int(kpis[1]) == int(kpis[0]) + 1

    def scorecard_titles(directory: str) -> set[str]:
        return {p["title"] for p in json.loads((tmp_path / directory / "scorecard.json").read_text())["panels"]}

    assert "Average order value" in scorecard_titles("after") - scorecard_titles("before")


def test_with_no_plugins_every_dashboard_is_still_valid():
    dashboards = build_dashboards([], set())
    process = dashboards["process-value-creation.json"]
    assert [(p["type"], p["title"]) for p in process["panels"]] == [("text", "No metrics")]
    assert [p["type"] for p in dashboards["scorecard.json"]["panels"]] == ["gauge", "stat", "stat", "stat", "table", "bargauge"]
    text = _validator("text", "Options")
    assert _errors(text, process["panels"][0]["options"]) == []
    for dashboard in dashboards.values():
        assert _errors(_validator("dashboard", "Dashboard"), dashboard) == []
