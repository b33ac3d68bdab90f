"""Grafana dashboards generated from the metric registry and the standards, and the provisioning
files that load them.

Nothing here is hand-written JSON: every metric panel comes from a ``MetricDefinition`` (its
name, description, formula, unit, direction and dimensions), and the metrics with a standard
are the KPIs, so a new plugin's KPIs appear on the dashboards as soon as
``crmmetrics dashboards build`` (or ``push``) runs with the plugin loaded.

The dashboards (``uid`` in brackets):

- Balanced scorecard (``crmmetrics-scorecard``): the scorecard index, target attainment, KPIs by
  status, the process x perspective matrix and the process scores, then a row per perspective
  with its score and a stat panel per KPI (its value coloured by its status, and its change on
  the previous period).
- One dashboard per CRM process (``crmmetrics-<process>``): the process score, a stat panel per
  metric, the KPIs' status over time, then each metric over time (a KPI against its target) and
  by dimension (segment, channel, ...) where it has one.
- Service health (``crmmetrics-service-health``): runs, failures, run durations and the
  freshness of every metric, per metric and plugin.

Every dashboard has a ``datasource`` variable (any Prometheus; the provisioned one by default),
the tag ``crmmetrics`` and a drop-down of links to the others. Queries (a metric's built by
crmmetrics.readers.promql) read only the families the exporter and the scorecard export (see
crmmetrics.readers.exporter and crmmetrics.readers.scorecard); statuses, scores and targets
come from Prometheus, so a standard changed in the store shows at the next scrape. Only which
metrics are KPIs is decided at build time.

Everything validates against Grafana's JSON Schemas (tests/test_dashboards.py), which admit only
object-valued override matchers and properties: hence ``byRegexpOrNames`` matchers and no
per-field units (a panel shows one unit).

Output is deterministic (sorted keys, panel ids in layout order) so that the committed files under
``dashboards/`` can be compared with a fresh build.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from crmmetrics.core.definitions import UNITS, MetricDefinition
from crmmetrics.core.vocabulary import Direction, Perspective, Process
from .families import (
    CHAIN_CORRELATION,
    CHAIN_LAG,
    CHAIN_LOWER,
    CHAIN_OBSERVATIONS,
    CHAIN_UPPER,
    anomaly_family,
    pacing_family,
    pacing_probability_family,
    status_family,
    target_family,
)
from .promql import (
    breakdown,
    change_expr,
    kpi_families,
    name_total,
    per_kpi,
    period_values,
    status_coloured_expr,
    union,
    value_expr,
    with_name,
)
from .deployment import DEFAULT_PROMETHEUS_URL, FOLDER
from .scorecard import STATUS_VALUES

DATASOURCE_UID = "crmmetrics-prometheus"
DATASOURCE_NAME = "crmmetrics Prometheus"
TAG = "crmmetrics"
SCORECARD_UID = "crmmetrics-scorecard"
HEALTH_UID = "crmmetrics-service-health"
# Grafana 11 and later read this version and migrate it forwards.
SCHEMA_VERSION = 39

# crmmetrics unit -> (Grafana unit, decimals) of its exported values, which are in base units
# (crmmetrics.core.definitions.EXPORT_UNITS): percentages as 0-1 ratios, hours and months as seconds.
# Amounts are neutral (plain numbers, K and Mil abbreviated) unless a currency code is given
# (``currency_unit``).
GRAFANA_UNITS: dict[str, tuple[str, int]] = {
    "percent": ("percentunit", 1),  # exported as 0-1 ratios
    "percent_unbounded": ("percentunit", 1),
    "ratio": ("none", 2),
    "count": ("short", 0),
    "customers": ("suffix: customers", 0),
    "currency": ("short", 2),
    "seconds": ("s", 1),
    "months": ("s", 1),  # exported in seconds; Grafana shows "1.2 year"
    "points": ("suffix: points", 1),
    "score": ("none", 1),
    "per_1000_customers": ("suffix: per customer", 4),  # exported per customer
    "hours": ("s", 1),  # exported in seconds
    "occasions": ("suffix: occasions", 2),
}
# Currencies Grafana has a unit for (``currency<CODE>``); any other code is shown as a suffix.
GRAFANA_CURRENCIES = frozenset(
    "USD GBP EUR JPY RUB UAH BRL DKK ISK NOK SEK CZK CHF PLN INR KRW IDR PHP VND TRY MYR XPF BGN PYG UYU ILS ZAR HKD".split()
)


def currency_unit(currency: str | None) -> str:
    """The Grafana unit of amounts: neutral without a currency code, else that currency."""
    if not currency:
        return GRAFANA_UNITS["currency"][0]
    return f"currency{currency}" if currency in GRAFANA_CURRENCIES else f"suffix: {currency}"

# KPI status as the scorecard exports it (crmmetrics_kpi_status), with Grafana's named colours.
STATUS_COLOURS = {"red": "red", "amber": "orange", "green": "green", "none": "text"}
# Scores run from 0 (every KPI at or beyond red) to 100 (every KPI at or beyond green): a
# red-yellow-green gradient over that range says as much as the score does, no more.
SCORE_COLOUR = {"mode": "continuous-RdYlGr"}

_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_LINK_VARS = "${__url_time_range}&${datasource:queryparam}"


def process_uid(process: Process | str) -> str:
    """The uid of a process's dashboard; the process key keeps links computable from labels."""
    return f"crmmetrics-{Process(process).value}"


def _legend(definition: MetricDefinition, suffix: str = "") -> str:
    names = " ".join(f"{{{{{dimension}}}}}" for dimension in definition.dimensions)
    return " ".join(part for part in (names, suffix) if part)


def metric_description(definition: MetricDefinition) -> str:
    """A panel description (markdown) from the metric's definition."""
    direction = "higher is better" if definition.direction == Direction.HIGHER_IS_BETTER else "lower is better"
    lines = [definition.description, "", f"**{direction}**; unit: {UNITS[definition.unit] or definition.unit}."]
    if definition.dimensions:
        lines.append(f"By {', '.join(definition.dimensions)}.")
    if definition.formula:
        lines += ["", f"Formula: `{definition.formula}`"]
    if definition.source:
        lines += ["", f"Source: {definition.source}"]
    lines += ["", f"Metric key: `{definition.key}`"]
    return "\n".join(lines)


def _target(expr: str, ref_id: str, legend: str = "", instant: bool = False, table: bool = False) -> dict[str, Any]:
    target = {
        "datasource": _DATASOURCE,
        "editorMode": "code",
        "expr": expr,
        "instant": instant,
        "range": not instant,
        "refId": ref_id,
        "format": "table" if table else "time_series",
    }
    if legend:
        target["legendFormat"] = legend
    return target


def _thresholds(steps: Iterable[tuple[float | None, str]]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"value": value, "color": colour} for value, colour in steps]}


def _link(title: str, uid: str) -> dict[str, Any]:
    """A panel or data link to another crmmetrics dashboard, keeping time range and datasource."""
    return {
        "title": title,
        "type": "link",
        "url": f"/d/{uid}?{_LINK_VARS}",
        "icon": "dashboard",
        "tooltip": "",
        "tags": [],
        "asDropdown": False,
        "targetBlank": False,
        "includeVars": False,
        "keepTime": False,
    }


def _reduce() -> dict[str, Any]:
    return {"calcs": ["lastNotNull"], "fields": "", "values": False}


def _stat_options(text_mode: str = "value", colour_mode: str = "value") -> dict[str, Any]:
    return {
        "colorMode": colour_mode,
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "percentChangeColorMode": "standard",
        "reduceOptions": _reduce(),
        "showPercentChange": False,
        "textMode": text_mode,
        "wideLayout": True,
    }


def _colour(colour: str) -> dict[str, Any]:
    return {"mode": "fixed", "fixedColor": colour}


def _names_ending(word: str) -> dict[str, Any]:
    """An override matcher for fields whose name is ``word`` or ends in `` word``.

    ``byRegexpOrNames`` rather than ``byRegexp``: Grafana honours both, and its JSON Schema
    admits only object options.
    """
    return {"id": "byRegexpOrNames", "options": {"pattern": f"/(^| ){word}$/", "names": []}}


class _Layout:
    """Places panels left to right on Grafana's 24-column grid and numbers them in order."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = 0
        self.y = 0
        self.row_height = 0

    def add(self, panel: dict[str, Any], w: int, h: int) -> dict[str, Any]:
        if self.x + w > 24:
            self.newline()
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        panel["id"] = len(self.panels) + 1
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)
        return panel

    def newline(self) -> None:
        if self.x:
            self.y += self.row_height
        self.x, self.row_height = 0, 0

    def row(self, title: str) -> None:
        self.newline()
        self.add({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)
        self.newline()


def _panel(kind: str, title: str, description: str, targets: list[dict[str, Any]], options: dict[str, Any],
           defaults: dict[str, Any], overrides: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": _DATASOURCE,
        "targets": targets,
        "options": options,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        **extra,
    }


def _unit_defaults(definition: MetricDefinition, currency: str | None = None) -> dict[str, Any]:
    unit, decimals = GRAFANA_UNITS[definition.unit]
    if definition.unit == "currency":
        unit = currency_unit(currency)
    return {"unit": unit, "decimals": decimals}


def metric_stat(definition: MetricDefinition, kpi: bool, currency: str | None = None) -> dict[str, Any]:
    """A stat panel: a KPI's value coloured by its status (a plain metric's value in the text
    colour), and its change on the previous period, coloured by whether it went the better way."""
    better, worse = ("green", "red") if definition.direction == Direction.HIGHER_IS_BETTER else ("red", "green")
    overrides = []
    if kpi:
        overrides = [
            {"matcher": _names_ending(status), "properties": [{"id": "color", "value": _colour(colour)}]}
            for status, colour in sorted(STATUS_COLOURS.items())
        ]
        value = _target(status_coloured_expr(definition), "A", _legend(definition, "{{status}}"), instant=True)
    else:
        value = _target(value_expr(definition), "A", _legend(definition) or "current", instant=True)
    overrides.append(
        {
            "matcher": _names_ending("change"),
            "properties": [
                {"id": "color", "value": {"mode": "thresholds"}},
                {"id": "thresholds", "value": _thresholds([(None, worse), (0, better)])},
            ],
        }
    )
    return _panel(
        "stat",
        definition.name,
        metric_description(definition),
        [value, _target(change_expr(definition, kpi), "B", _legend(definition, "change"), instant=True)],
        _stat_options(text_mode="value_and_name"),
        {**_unit_defaults(definition, currency), "color": _colour(STATUS_COLOURS["none"]), "mappings": []},
        overrides,
        links=[_link(f"{Process(definition.process).title} dashboard", process_uid(definition.process))],
    )


_SCORE_DEFAULTS = {"unit": "none", "decimals": 0, "min": 0, "max": 100, "color": SCORE_COLOUR}


def score_gauge(title: str, description: str, expr: str, legend: str = "", links: list | None = None) -> dict[str, Any]:
    """A 0-100 score as a gauge, on the red-yellow-green gradient."""
    return _panel(
        "gauge",
        title,
        description,
        [_target(expr, "A", legend, instant=True)],
        {
            "minVizHeight": 75,
            "minVizWidth": 75,
            "orientation": "auto",
            "reduceOptions": _reduce(),
            "showThresholdLabels": False,
            "showThresholdMarkers": False,
            "sizing": "auto",
        },
        {**_SCORE_DEFAULTS, "links": links or []},
    )


def _bargauge(title: str, description: str, targets: list[dict[str, Any]], defaults: dict[str, Any]) -> dict[str, Any]:
    return _panel(
        "bargauge",
        title,
        description,
        targets,
        {
            "displayMode": "gradient",
            "legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": False},
            "maxVizHeight": 300,
            "minVizHeight": 16,
            "minVizWidth": 8,
            "namePlacement": "auto",
            "orientation": "horizontal",
            "reduceOptions": _reduce(),
            "showUnfilled": True,
            "sizing": "auto",
            "valueMode": "color",
        },
        defaults,
    )


def _timeseries(title: str, description: str, targets: list[dict[str, Any]], defaults: dict[str, Any],
                overrides: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    custom = {
        "drawStyle": "line",
        "fillOpacity": 10,
        "lineInterpolation": "stepAfter",  # values change only when a run completes
        "lineWidth": 2,
        "showPoints": "never",
        "spanNulls": False,
    }
    return _panel(
        "timeseries",
        title,
        description,
        targets,
        {
            "legend": {"calcs": ["lastNotNull"], "displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "none"},
        },
        {**defaults, "custom": custom, "color": {"mode": "palette-classic"}},
        overrides,
    )


def _datasource_variable() -> dict[str, Any]:
    return {
        "type": "datasource",
        "name": "datasource",
        "label": "Prometheus",
        "query": "prometheus",
        "current": {"text": DATASOURCE_NAME, "value": DATASOURCE_UID},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
    }


def _query_variable(name: str, label: str, metric: str) -> dict[str, Any]:
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": _DATASOURCE,
        "query": f"label_values({metric}, {name})",
        "current": {"text": ["All"], "value": ["$__all"]},
        "hide": 0,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "options": [],
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
    }


def _dashboard(uid: str, title: str, description: str, tags: list[str], panels: list[dict[str, Any]],
               variables: list[dict[str, Any]] | None = None, time_from: str = "now-7d", refresh: str = "5m") -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": [TAG, *tags],
        "editable": True,
        "graphTooltip": 1,
        "timezone": "browser",
        "time": {"from": time_from, "to": "now"},
        "refresh": refresh,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "templating": {"list": [_datasource_variable(), *(variables or [])]},
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "title": "crmmetrics dashboards",
                "type": "dashboards",
                "tags": [TAG],
                "asDropdown": True,
                "icon": "external link",
                "tooltip": "",
                "targetBlank": False,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "panels": panels,
    }


def _by_process(definitions: Iterable[MetricDefinition]) -> list[MetricDefinition]:
    order = {process: index for index, process in enumerate(Process)}
    return sorted(definitions, key=lambda d: (order[Process(d.process)], d.key))


def scorecard_dashboard(definitions: Iterable[MetricDefinition], kpis: Collection[str], currency: str | None = None) -> dict[str, Any]:
    """The balanced scorecard: index, attainment, process x perspective, a row per perspective.

    Only KPIs (metrics with a standard, keys in ``kpis``) are on the scorecard; a perspective
    without any has no row.
    """
    definitions = [d for d in _by_process(definitions) if d.key in kpis]
    layout = _Layout()
    layout.add(
        score_gauge(
            "Scorecard index",
            "Mean of the four perspective scores (0-100); each is the weighted mean of its KPIs' scores. "
            "A KPI scores 0 at or beyond its red threshold and 100 at or beyond its green one.",
            "crmmetrics_scorecard_index",
        ),
        4,
        8,
    )
    layout.add(
        _panel(
            "stat",
            "Target attainment",
            "Share of KPIs at or beyond the target in force (KPIs without a value or a target left out).",
            [_target("crmmetrics_scorecard_target_attainment_ratio", "A", instant=True)],
            _stat_options(colour_mode="value"),
            {"unit": "percentunit", "decimals": 0, "min": 0, "max": 1, "color": SCORE_COLOUR},
        ),
        4,
        8,
    )
    layout.add(
        _panel(
            "stat",
            "Coverage",
            "Share of the scorecard's KPIs that have a current value: the index and every score are "
            "computed over those only (a KPI without data is not scored, never counted as fine).",
            [_target("crmmetrics_scorecard_coverage_ratio", "A", instant=True)],
            _stat_options(colour_mode="value"),
            {"unit": "percentunit", "decimals": 0, "min": 0, "max": 1, "color": SCORE_COLOUR},
        ),
        4,
        8,
    )
    layout.add(status_counts(), 4, 8)
    layout.add(process_perspective_table(), 8, 8)
    layout.newline()
    process_links = [
        {**_link("${__field.labels.process} dashboard", "crmmetrics-${__field.labels.process}"), "icon": ""}
    ]
    layout.add(
        _bargauge(
            "Process scores",
            "Weighted mean score (0-100) of each CRM process's KPIs; click a bar for the process's dashboard.",
            [_target("sort_desc(crmmetrics_scorecard_process_score)", "A", "{{process}}", instant=True)],
            {**_SCORE_DEFAULTS, "links": process_links},
        ),
        24,
        6,
    )
    if definitions:
        layout.row("Outlook: pacing, anomalies and the value chain")
        for panel, w, h in outlook_panels(definitions):
            layout.add(panel, w, h)
    for perspective in Perspective:
        members = [d for d in definitions if Perspective(d.perspective) == perspective]
        if not members:
            continue
        layout.row(f"{perspective.title} perspective")
        layout.add(
            score_gauge(
                f"{perspective.title} score",
                f"Weighted mean score (0-100) of the {perspective.title.lower()} perspective's KPIs.",
                f'crmmetrics_scorecard_perspective_score{{perspective="{perspective.value}"}}',
            ),
            4,
            6,
        )
        for definition in members:
            layout.add(metric_stat(definition, kpi=True, currency=currency), 4, 6)
    return _dashboard(
        SCORECARD_UID,
        "CRM balanced scorecard",
        "Payne & Frow's five CRM processes across the four balanced-scorecard perspectives.",
        ["scorecard"],
        layout.panels,
    )


PACING_STATES = [(0, "off track", "red"), (1, "at risk", "orange"), (2, "on track", "green")]


def outlook_panels(definitions: list[MetricDefinition]) -> list[tuple[dict[str, Any], int, int]]:
    """Pacing, anomalies and the value chain (crmmetrics.readers.outlook): (panel, width, height)."""
    dimensions = sorted({dimension for d in definitions for dimension in d.dimensions})
    legend = " ".join(["{{name}}", *(f"{{{{{d}}}}}" for d in dimensions)])
    pacing = _panel(
        "bargauge",
        "Pacing: the period now running",
        "Where each KPI is heading by the end of the period now running, from a forecast on its stored history: "
        "off track (P(red) >= 50%), at risk, on track (P(green) >= 50% and P(red) < 20%). KPIs without enough "
        "history (or on a trailing window) have no forecast and are not listed; a to-date KPI's forecast is for the end of its period.",
        [_target(f"sort({with_name(kpi_families(definitions, pacing_family))})", "A", legend, instant=True)],
        {
            "displayMode": "basic", "legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": False},
            "maxVizHeight": 300, "minVizHeight": 16, "minVizWidth": 8, "namePlacement": "left", "orientation": "horizontal",
            "reduceOptions": _reduce(), "showUnfilled": True, "sizing": "auto", "valueMode": "color",
        },
        {
            "min": 0, "max": 2, "decimals": 0, "color": {"mode": "thresholds"},
            "thresholds": _thresholds([(None if i == 0 else value, colour) for i, (value, _, colour) in enumerate(PACING_STATES)]),
            "mappings": [{"type": "value", "options": {str(v): {"text": t, "color": c, "index": i} for i, (v, t, c) in enumerate(PACING_STATES)}}],
        },
    )
    red_chance = _bargauge(
        "Chance of ending red",
        "Probability that each KPI ends the period now running at or beyond its red threshold (the forecast's "
        "distribution beyond the threshold), highest first.",
        [_target("sort_desc(" + with_name(kpi_families(definitions, pacing_probability_family, '{status="red"}')) + ")", "A", legend, instant=True)],
        {"unit": "percentunit", "decimals": 0, "min": 0, "max": 1,
         "color": {"mode": "thresholds"}, "thresholds": _thresholds([(None, "green"), (0.2, "orange"), (0.5, "red")])},
    )
    flagged = _panel(
        "stat",
        "Anomalies now",
        "KPIs whose latest period is unusual against their own history and season (|robust z| >= 5), and of those "
        "the bad surprises. KPIs without enough history (a monthly KPI needs 21 months) are not scored.",
        [
            _target(f"sum({kpi_families(definitions, partial(anomaly_family, 'flagged'))})", "A", "flagged", instant=True),
            _target(f"count({kpi_families(definitions, partial(anomaly_family, 'score'))})", "B", "scored", instant=True),
        ],
        {**_stat_options(text_mode="value_and_name"), "orientation": "vertical"},
        {"unit": "short", "decimals": 0, "color": _colour("text")},
    )
    scores = _bargauge(
        "Anomaly score of the latest period",
        "Robust z-score of each KPI's latest period against its history and season: the value less the value a "
        "season earlier plus the typical change, over the spread of those changes. Beyond ±5 it is flagged.",
        [_target(f"sort_desc(abs({with_name(kpi_families(definitions, partial(anomaly_family, 'score')))}))", "A", legend, instant=True)],
        {"unit": "none", "decimals": 1, "min": 0, "max": 10,
         "color": {"mode": "thresholds"}, "thresholds": _thresholds([(None, "green"), (3.5, "orange"), (5, "red")])},
    )
    chain_targets = [
        _target(CHAIN_CORRELATION, "A", instant=True, table=True),
        _target(CHAIN_LOWER, "B", instant=True, table=True),
        _target(CHAIN_UPPER, "C", instant=True, table=True),
        _target(f"{CHAIN_LAG} / 2629800", "D", instant=True, table=True),
        _target(CHAIN_OBSERVATIONS, "E", instant=True, table=True),
    ]
    rename = {"Value #A": "r", "Value #B": "95% lower", "Value #C": "95% upper", "Value #D": "lag (months)", "Value #E": "observations"}
    chain = _panel(
        "table",
        "The value chain: links between the KPIs",
        "Employee value -> customer value -> shareholder value (Heskett et al. 1994): the correlation of each pair "
        "at its strongest lag, over periods (of the changes) or across units (team against the channels it serves, "
        "after what all share), with its 95% interval; a link is real when the interval excludes 0. Rows without r "
        "have too few observations to say anything. `crmmetrics chain` says each in words.",
        chain_targets,
        {"cellHeight": "sm", "frameIndex": 0, "showHeader": True},
        {"decimals": 2, "custom": {"align": "auto", "inspect": False}},
        [
            {"matcher": {"id": "byNames", "options": {"mode": "include", "names": ["r"]}},
             "properties": [{"id": "custom.cellOptions", "value": {"type": "color-text"}},
                            {"id": "thresholds", "value": _thresholds([(None, "red"), (0, "green")])}]},
        ],
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True, "job": True, "instance": True}, "renameByName": rename,
                                           "indexByName": {"driver": 0, "outcome": 1, "basis": 2, "stage": 3}}},
        ],
    )
    return [(pacing, 8, 10), (red_chance, 8, 10), (flagged, 4, 10), (scores, 4, 10), (chain, 24, 8)]


def status_counts() -> dict[str, Any]:
    """How many KPIs are green, amber and red now."""
    targets = [
        _target(f'crmmetrics_scorecard_kpis{{status="{status}"}}', ref_id, status.replace("_", " "), instant=True)
        for ref_id, status in zip("ABCD", ("green", "amber", "red", "no_data"))
    ]
    return _panel(
        "stat",
        "KPIs by status",
        "KPIs at or beyond green, between the thresholds (amber), at or beyond red, and without a "
        "current value (no data). A metric with a standard per dimension value counts once per value.",
        targets,
        {**_stat_options(text_mode="value_and_name"), "orientation": "vertical"},
        {"unit": "short", "decimals": 0, "color": _colour("text")},
        [
            {"matcher": _names_ending(word), "properties": [{"id": "color", "value": _colour(STATUS_COLOURS[status])}]}
            for word, status in (("green", "green"), ("amber", "amber"), ("red", "red"), ("data", "none"))
        ],
    )


def process_perspective_table() -> dict[str, Any]:
    """The process x perspective matrix of cell scores, coloured by score."""
    rename = {p.value: p.title for p in Perspective}
    return _panel(
        "table",
        "Process × perspective",
        "Weighted mean score (0-100) of the KPIs of each CRM process in each scorecard perspective.",
        [_target("crmmetrics_scorecard_cell_score", "A", instant=True, table=True)],
        {"cellHeight": "sm", "frameIndex": 0, "showHeader": True},
        {
            **_SCORE_DEFAULTS,
            "mappings": [
                {"type": "value", "options": {p.value: {"text": p.title, "index": i} for i, p in enumerate(Process)}}
            ],
            "custom": {
                "align": "auto",
                "inspect": False,
                "cellOptions": {"type": "color-background", "mode": "basic", "applyToRow": False},
            },
        },
        [
            {  # the process names are not scores
                "matcher": {"id": "byNames", "options": {"mode": "include", "names": ["Process"]}},
                "properties": [{"id": "custom.cellOptions", "value": {"type": "auto"}}],
            }
        ],
        transformations=[
            {
                "id": "groupingToMatrix",
                "options": {"columnField": "perspective", "rowField": "process", "valueField": "Value", "emptyValue": "null"},
            },
            {
                "id": "organize",
                "options": {
                    "indexByName": {"process\\perspective": 0, **{p.value: i + 1 for i, p in enumerate(Perspective)}},
                    "renameByName": {"process\\perspective": "Process", **rename},
                },
            },
        ],
    )


def process_dashboard(process: Process, definitions: Iterable[MetricDefinition], kpis: Collection[str],
                      currency: str | None = None) -> dict[str, Any]:
    """One CRM process: its score, a stat per metric (KPIs first), the KPIs' status over time,
    then each metric over time (a KPI against its target) and by dimension where it has one."""
    definitions = [d for d in _by_process(definitions) if Process(d.process) == process]
    definitions.sort(key=lambda d: d.key not in kpis)  # stable: KPIs first, each part by key
    own_kpis = [d for d in definitions if d.key in kpis]
    layout = _Layout()
    if own_kpis:
        layout.add(
            score_gauge(
                f"{process.title} score",
                f"Weighted mean score (0-100) of the {process.title.lower()} process's KPIs.",
                f'crmmetrics_scorecard_process_score{{process="{process.value}"}}',
                links=[_link("Balanced scorecard", SCORECARD_UID)],
            ),
            4,
            6,
        )
    for definition in definitions:
        layout.add(metric_stat(definition, definition.key in kpis, currency), 4, 6)
    if not definitions:
        content = "No loaded plugin defines a metric for this process."
        layout.add(_panel("text", "No metrics", "", [], {"mode": "markdown", "content": content}, {}), 24, 4)
    if own_kpis:
        layout.newline()
        # About a lane per KPI: a whole-metric standard judges the total when there is one.
        layout.add(status_timeline(process, own_kpis), 24, min(24, 4 + len(own_kpis) // 2))
    for definition in definitions:
        layout.row(definition.name)
        layout.add(metric_over_time(definition, definition.key in kpis, currency), 16 if definition.dimensions else 24, 8)
        if definition.dimensions:
            layout.add(metric_breakdown(definition, currency), 8, 8)
    return _dashboard(
        process_uid(process),
        f"CRM process: {process.title}",
        f"KPIs of the {process.title.lower()} process (Payne & Frow 2005), over time and against their targets.",
        ["process"],
        layout.panels,
    )


def status_timeline(process: Process, definitions: list[MetricDefinition]) -> dict[str, Any]:
    """The status of each of the process's KPIs over time (one lane per KPI and dimension value)."""
    dimensions = sorted({dimension for d in definitions for dimension in d.dimensions})
    families = sorted({status_family(())} | {status_family(d.dimensions) for d in definitions if d.dimensions})
    statuses = union(f'{name}{{process="{process.value}"}}' for name in families)
    expr = with_name(statuses)  # crmmetrics_metric_info's value is 1: the status is kept
    return _state_timeline(
        "KPI status over time",
        "Red, amber or green as the scorecard judged each KPI of this process at each moment; "
        "gaps: no value or no standard.",
        _target(expr, "A", " ".join(["{{name}}", *(f"{{{{{d}}}}}" for d in dimensions)])),
        [(n, status, STATUS_COLOURS[status]) for status, n in sorted(STATUS_VALUES.items(), key=lambda item: item[1])],
    )


def _state_timeline(title: str, description: str, target: dict[str, Any], states: list[tuple[int, str, str]]) -> dict[str, Any]:
    """Lanes of states over time; ``states`` are (value, text, colour), every field being a state."""
    return _panel(
        "state-timeline",
        title,
        description,
        [target],
        {
            "alignValue": "left",
            "legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": False},
            "mergeValues": True,
            "rowHeight": 0.9,
            "showValue": "never",
            "tooltip": {"mode": "single", "sort": "none"},
        },
        {
            "color": {"mode": "thresholds"},
            "thresholds": _thresholds([(None if i == 0 else value, colour) for i, (value, _, colour) in enumerate(states)]),
            "mappings": [
                {"type": "value", "options": {str(value): {"text": text, "color": colour, "index": i}
                                              for i, (value, text, colour) in enumerate(states)}}
            ],
            "custom": {"fillOpacity": 80, "lineWidth": 0},
        },
    )


def metric_over_time(definition: MetricDefinition, kpi: bool, currency: str | None = None) -> dict[str, Any]:
    """The metric's current-period values over time; a KPI's target in force as a dashed line."""
    targets = [_target(name_total(definition, period_values(definition)), "A", _legend(definition) or "value")]
    if kpi:
        target = per_kpi(definition, partial(target_family, definition.unit))
        targets.append(_target(name_total(definition, target), "B", _legend(definition, "target")))
    return _timeseries(
        f"{definition.name} {'against target' if kpi else 'over time'}",
        metric_description(definition),
        targets,
        _unit_defaults(definition, currency),
        [
            {
                "matcher": _names_ending("target"),
                "properties": [
                    {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                    {"id": "color", "value": _colour("text")},
                ],
            }
        ],
    )


def metric_breakdown(definition: MetricDefinition, currency: str | None = None) -> dict[str, Any]:
    """The metric's current value per dimension value (segment, channel, ...), total left out."""
    return _bargauge(
        f"{definition.name} by {', '.join(definition.dimensions)}",
        metric_description(definition),
        [_target(f"sort_desc({breakdown(definition)})", "A", _legend(definition), instant=True)],
        {**_unit_defaults(definition, currency), "color": {"mode": "palette-classic"}},
    )


def health_dashboard(metrics: int) -> dict[str, Any]:
    """The service's own health: runs, failures, durations and freshness per metric and plugin.

    ``metrics`` (how many there are) sizes the panels with a lane or bar per metric.
    """
    selector = 'plugin=~"$plugin"'
    per_metric_height = max(8, 3 + metrics // 3)  # a bar or table row per metric
    layout = _Layout()

    def stat(title: str, description: str, expr: str, defaults: dict[str, Any]) -> None:
        layout.add(
            _panel("stat", title, description, [_target(expr, "A", instant=True)], _stat_options(colour_mode="value"), defaults),
            4,
            4,
        )

    count = {"unit": "short", "decimals": 0, "color": _colour("text")}
    stat("Metrics", "Metrics with at least one run.", f"count(crmmetrics_run_up{{{selector}}})", count)
    stat(
        "Failing now",
        "Metrics whose last run failed.",
        f"count(crmmetrics_run_up{{{selector}}} == 0) or vector(0)",
        {**count, "color": {"mode": "thresholds"}, "thresholds": _thresholds([(None, "green"), (1, "red")])},
    )
    stat(
        "Runs in range",
        "Runs completed in the dashboard's time range.",
        f"sum(increase(crmmetrics_runs_total{{{selector}}}[$__range]))",
        count,
    )
    stat(
        "Failures in range",
        "Failed runs in the dashboard's time range.",
        f"sum(increase(crmmetrics_run_failures_total{{{selector}}}[$__range]))",
        {**count, "color": {"mode": "thresholds"}, "thresholds": _thresholds([(None, "green"), (1, "red")])},
    )
    stat(
        "Oldest success",
        "Time since the least recent successful run of any metric.",
        f"max(time() - crmmetrics_run_last_success_timestamp_seconds{{{selector}}})",
        {"unit": "s", "decimals": 0, "color": _colour("text")},
    )
    stat(
        "Slowest last run",
        "Duration of the slowest last run of any metric.",
        f"max(crmmetrics_run_duration_seconds{{{selector}}})",
        {"unit": "s", "decimals": 2, "color": _colour("text")},
    )
    layout.newline()
    layout.add(
        _timeseries(
            "Runs",
            "Runs completed per interval, by plugin.",
            [_target(f"sum by (plugin) (increase(crmmetrics_runs_total{{{selector}}}[$__rate_interval]))", "A", "{{plugin}}")],
            {"unit": "short", "decimals": 0},
        ),
        12,
        8,
    )
    layout.add(
        _timeseries(
            "Failures",
            "Failed runs per interval, by metric and plugin.",
            [
                _target(
                    f"sum by (metric, plugin) (increase(crmmetrics_run_failures_total{{{selector}}}[$__rate_interval]))",
                    "A",
                    "{{metric}} ({{plugin}})",
                )
            ],
            {"unit": "short", "decimals": 0},
        ),
        12,
        8,
    )
    layout.add(
        _timeseries(
            "Run duration",
            "Duration of the last run of each metric.",
            [_target(f"crmmetrics_run_duration_seconds{{{selector}}}", "A", "{{metric}} ({{plugin}})")],
            {"unit": "s", "decimals": 2},
        ),
        12,
        8,
    )
    layout.add(
        _timeseries(
            "Time since last success",
            "Freshness: seconds since each metric's last successful run.",
            [_target(f"time() - crmmetrics_run_last_success_timestamp_seconds{{{selector}}}", "A", "{{metric}} ({{plugin}})")],
            {"unit": "s", "decimals": 0},
        ),
        12,
        8,
    )
    layout.add(
        _state_timeline(
            "Last run status",
            "Whether each metric's last run succeeded, over time.",
            _target(f"crmmetrics_run_up{{{selector}}}", "A", "{{metric}} ({{plugin}})"),
            [(0, "failed", "red"), (1, "ok", "green")],
        ),
        24,
        max(6, 3 + metrics // 2),
    )
    layout.add(
        _bargauge(
            "Age of exported values",
            "Seconds since the value each metric exports was computed.",
            [_target("sort_desc(time() - crmmetrics_metric_computed_timestamp_seconds)", "A", "{{metric}}", instant=True)],
            {"unit": "s", "decimals": 0, "color": {"mode": "continuous-GrYlRd"}},
        ),
        12,
        per_metric_height,
    )
    layout.add(
        _panel(
            "table",
            "Runs and failures per metric",
            "Runs and failed runs kept in the store, per metric and plugin.",
            [
                _target(f"crmmetrics_runs_total{{{selector}}}", "A", instant=True, table=True),
                _target(f"crmmetrics_run_failures_total{{{selector}}}", "B", instant=True, table=True),
            ],
            {"cellHeight": "sm", "frameIndex": 0, "showHeader": True, "sortBy": [{"displayName": "failures", "desc": True}]},
            {"unit": "short", "decimals": 0, "custom": {"align": "auto", "inspect": False}},
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True, "__name__": True, "instance": True, "job": True},
                        "indexByName": {"metric": 0, "plugin": 1, "Value #A": 2, "Value #B": 3},
                        "renameByName": {"Value #A": "runs", "Value #B": "failures"},
                    },
                },
            ],
        ),
        12,
        per_metric_height,
    )
    return _dashboard(
        HEALTH_UID,
        "crmmetrics service health",
        "Runs, failures, durations and freshness of every metric, per metric and plugin.",
        ["service-health"],
        layout.panels,
        [_query_variable("plugin", "Plugin", "crmmetrics_runs_total")],
        time_from="now-24h",
        refresh="1m",
    )


def build_dashboards(definitions: Iterable[MetricDefinition], kpis: Collection[str],
                     currency: str | None = None) -> dict[str, dict[str, Any]]:
    """Every dashboard, by file name, from the loaded plugins' metric definitions.

    ``kpis``: keys of the metrics that have a standard (plugin default or set by an admin); they
    are the KPIs on the scorecard and get status colours, scores and target lines.
    """
    definitions = list(definitions)
    dashboards = {
        "scorecard.json": scorecard_dashboard(definitions, kpis, currency),
        "service-health.json": health_dashboard(len(definitions)),
    }
    for process in Process:
        dashboards[f"process-{process.value.replace('_', '-')}.json"] = process_dashboard(process, definitions, kpis, currency)
    return dashboards


def datasource(prometheus_url: str = DEFAULT_PROMETHEUS_URL) -> dict[str, Any]:
    """The Prometheus datasource the dashboards default to (same uid in provisioning and push)."""
    return {
        "name": DATASOURCE_NAME,
        "uid": DATASOURCE_UID,
        "type": "prometheus",
        "access": "proxy",
        "url": prometheus_url,
        "isDefault": False,
        "jsonData": {"httpMethod": "POST", "timeInterval": "60s"},
    }


def provisioning_files(prometheus_url: str = DEFAULT_PROMETHEUS_URL, directory_name: str = "dashboards") -> dict[str, str]:
    """Grafana provisioning files (datasource and dashboard provider), by path under the output directory.

    ``directory_name`` is the name of that output directory: the provider finds the dashboards
    relative to the provisioning directory Grafana was given, by climbing out of the output
    directory and naming it, so that an unset variable points at a missing "/NAME" rather than
    at the root of the file system (which Grafana would scan).
    """
    source = datasource(prometheus_url)
    datasources = f"""\
# Generated by `crmmetrics dashboards build`: the Prometheus that scrapes crmmetrics.
# The dashboards select it by uid; change url (or rebuild with --prometheus-url) to yours.
apiVersion: 1
datasources:
  - name: {source["name"]}
    uid: {source["uid"]}
    type: prometheus
    access: proxy
    url: {json.dumps(source["url"])}
    isDefault: false
    editable: false
    jsonData:
      httpMethod: {source["jsonData"]["httpMethod"]}
      timeInterval: {source["jsonData"]["timeInterval"]}   # the scrape interval of config/prometheus.yml
"""
    dashboards = f"""\
# Generated by `crmmetrics dashboards build`: loads the dashboards next to provisioning/.
# Start Grafana with GF_PATHS_PROVISIONING=<this directory>/provisioning (the official
# container image reads the same variable). The path climbs out of the dashboards directory
# and names it, so that an unset variable points nowhere ("/{directory_name}") rather than at the
# root of the file system.
apiVersion: 1
providers:
  - name: crmmetrics
    orgId: 1
    folder: {FOLDER}
    folderUid: {FOLDER}
    type: file
    disableDeletion: false
    allowUiUpdates: false
    updateIntervalSeconds: 60
    options:
      path: ${{GF_PATHS_PROVISIONING}}/../../{directory_name}
      foldersFromFilesStructure: false
"""
    return {"provisioning/datasources/crmmetrics.yaml": datasources, "provisioning/dashboards/crmmetrics.yaml": dashboards}


def render(dashboard: Mapping[str, Any]) -> str:
    """A dashboard as the committed file: sorted keys, two-space indent, final newline."""
    return json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@dataclass
class BuildResult:
    """What ``write_dashboards`` wrote: relative paths of the files, and which of them changed."""

    written: list[str]
    changed: list[str]


def build_files(definitions: Iterable[MetricDefinition], kpis: Collection[str], prometheus_url: str = DEFAULT_PROMETHEUS_URL,
                directory_name: str = "dashboards", currency: str | None = None) -> dict[str, str]:
    """Every generated file (dashboards and provisioning) by relative path, as text."""
    files = {name: render(dashboard) for name, dashboard in build_dashboards(definitions, kpis, currency).items()}
    files.update(provisioning_files(prometheus_url, directory_name))
    return dict(sorted(files.items()))


def write_dashboards(out_dir: str | Path, definitions: Iterable[MetricDefinition], kpis: Collection[str],
                     prometheus_url: str = DEFAULT_PROMETHEUS_URL, currency: str | None = None) -> BuildResult:
    """Write every generated file under ``out_dir``; files whose text is unchanged are left alone."""
    out = Path(out_dir)
    written, changed = [], []
    for relative, text in build_files(definitions, kpis, prometheus_url, out.resolve().name, currency).items():
        path = out / relative
        written.append(relative)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)  # never a half-written dashboard for Grafana to pick up
        changed.append(relative)
    return BuildResult(written, changed)
