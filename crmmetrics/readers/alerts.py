"""Prometheus alerting rules generated from the standards in force and the metric registry.

Two audiences, told apart by ``severity`` (config/alertmanager.yml routes on it):

- **KPI owners** (``severity="ticket"``): ``CrmmetricsKpiRed``, one rule per standard, fires
  when the KPI's status is red (``crmmetrics_kpi..._status == 0``) for ``for_red``. The
  expression returns the KPI's *value* (in the base unit of its family), so the annotations
  show it humanised in its unit next to its thresholds, target and owner. A standard for a
  whole metric excludes the dimension values that have a standard of their own (``unless``),
  so each red KPI fires under the rule of the standard that judges it, with that standard's
  owner. Amber and green never fire: they are the scorecard's business, not an alert's.
  ``CrmmetricsKpiOffTrack``, one rule per standard, fires when the forecast of the period now
  running says the KPI will likely end red (pacing off track) while that period is in its first
  half, with the forecast as its value; ``CrmmetricsKpiBadSurprise`` when the KPI's latest
  period is an anomaly the bad way (crmmetrics.readers.outlook), with the anomaly score as its value.
- **crmmetrics' operators** (``severity="warning"``): ``CrmmetricsDown`` (the scrape fails),
  ``CrmmetricsAbsent`` (Prometheus has no crmmetrics target at all), ``CrmmetricsMetricFailing``
  (a metric's last run failed, ``crmmetrics_run_up == 0``) and ``CrmmetricsMetricStale`` (one
  rule per enabled metric: its last successful computation is older than twice the metric's
  schedule interval, the longest gap between two cron firings, plus the misfire grace time).

Every rule has ``summary``, ``description``, ``runbook_url`` (the operations guide's section
on the alert) and ``dashboard_url`` (the KPI's process dashboard, or the service health
dashboard). The rules are written as YAML by ``dump_rules``; regenerate them after changing
standards.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from crmmetrics.core.config import Config
from crmmetrics.core.definitions import MetricDefinition, Schedule, parse_duration
from crmmetrics.core.standard import Standard, describe_target
from crmmetrics.core.vocabulary import Direction, PeriodLabel
from .dashboards import HEALTH_UID, process_uid
from .deployment import DEFAULT_GRAFANA_URL, DEFAULT_JOB, DEFAULT_RUNBOOK_URL
from .display import format_value
from .families import (
    FORECAST_PERIOD_END,
    FORECAST_PERIOD_START,
    anomaly_family,
    forecast_family,
    pacing_family,
    status_family,
    value_family,
)

KPI_SEVERITY = "ticket"
HEALTH_SEVERITY = "warning"


@dataclass(frozen=True)
class Links:
    """Where the alert texts point: Grafana (dashboard links) and the operations guide (runbooks)."""

    grafana_url: str = DEFAULT_GRAFANA_URL
    runbook_url: str = DEFAULT_RUNBOOK_URL

    def dashboard(self, uid: str) -> str:
        return f"{self.grafana_url.rstrip('/')}/d/{uid}"

    def runbook(self, alert: str) -> str:
        return f"{self.runbook_url}#{alert.lower()}"


def schedule_interval(schedule: Schedule, timezone: str = "UTC") -> timedelta:
    """How long a metric may wait between two runs: the interval, or the longest cron gap."""
    if schedule.every:
        return parse_duration(schedule.every)
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(schedule.cron, timezone=timezone)
    # Look at a year of firings from a fixed start so that the rules do not depend on today.
    moment = previous = trigger.get_next_fire_time(None, datetime(2024, 1, 1, tzinfo=trigger.timezone))
    longest = timedelta(0)
    end = moment + timedelta(days=366)
    while moment is not None and moment < end:
        moment = trigger.get_next_fire_time(previous, previous + timedelta(seconds=1))
        if moment is not None:
            longest = max(longest, moment - previous)
            previous = moment
    return longest


def _matchers(metric: str, dimensions: Mapping[str, str], extra: Mapping[str, str] | None = None) -> str:
    labels = {"metric": metric, **(extra or {}), **dict(sorted(dimensions.items()))}
    return "{" + ",".join(f"{name}={json.dumps(value)}" for name, value in labels.items()) + "}"


def _either(selectors: list[str]) -> str:
    return selectors[0] if len(selectors) == 1 else "(" + " or ".join(selectors) + ")"


def _judged_values(definition: MetricDefinition, standard: Standard) -> str:
    """The current values a standard may judge: its dimension values, or the metric's total and
    breakdown for a whole-metric standard (the status decides which of them it judges)."""
    matchers = _matchers(definition.key, standard.dimensions, {"period": PeriodLabel.CURRENT})
    names = [value_family(definition.unit, definition.dimensions)] if standard.dimensions else [value_family(definition.unit)]
    if definition.dimensions and not standard.dimensions:
        names.append(value_family(definition.unit, definition.dimensions))
    return _either([name + matchers for name in names])


def _statuses(definition: MetricDefinition, standard: Standard) -> str:
    """The statuses of the KPIs a standard may judge (the KPI status families by dimension set)."""
    matchers = _matchers(definition.key, standard.dimensions)
    sets = [tuple(definition.dimensions)] if standard.dimensions else [()] + ([tuple(definition.dimensions)] if definition.dimensions else [])
    return _either([status_family(dims) + matchers for dims in sets])


def _outranks(other: Standard, standard: Standard) -> bool:
    """Would ``other`` judge some observation that ``standard`` could judge (see scorecard docs)?"""
    if other.key == standard.key or other.metric != standard.metric:
        return False
    if any(standard.dimensions.get(k, v) != v for k, v in other.dimensions.items()):
        return False  # they never apply to the same observation
    return (-len(other.dimensions), other.key) < (-len(standard.dimensions), standard.key)


def _comparison(direction: Direction) -> str:
    return "at or above" if direction == Direction.LOWER_IS_BETTER else "at or below"


def humanized_value(unit: str, currency: str | None = None) -> str:
    """A template for ``$value`` (the exported value, in its family's base unit) in the unit
    people read: 0.42 of a percent KPI as ``42%``, seconds as ``1h 2m``, amounts with the
    currency code."""
    if unit in ("percent", "percent_unbounded"):
        return "{{ $value | humanizePercentage }}"
    if unit in ("seconds", "hours", "months"):
        return "{{ $value | humanizeDuration }}"
    if unit == "ratio":
        return '{{ $value | printf "%.2f" }}'
    if unit == "per_1000_customers":
        return '{{ $value | printf "%.4f" }} per customer'
    if unit == "currency":
        return "{{ $value | humanize }}" + (f" {currency}" if currency else "")
    suffix = {"count": "", "score": ""}.get(unit, f" {unit}")
    return "{{ $value | humanize }}" + suffix


def _people(value: float, unit: str, currency: str | None) -> str:
    """A threshold or target (in the metric's own unit) as people read it."""
    text = format_value(value, unit)
    return f"{text} {currency}" if unit == "currency" and currency else text


def _target_text(standard: Standard, unit: str, currency: str | None) -> str:
    spec = standard.spec
    fixed = spec.fixed_target
    if fixed is not None:
        return _people(fixed, unit, currency)
    rule = describe_target(spec)
    return "the previous period's value" if rule == "previous" else f"the previous period's value {str(rule)[len('previous'):]}"


def kpi_red_rule(standard: Standard, standards: list[Standard], definition: MetricDefinition, for_red: str,
                 links: Links, currency: str | None) -> dict[str, Any]:
    spec = standard.spec
    expr = f"{_judged_values(definition, standard)} and ignoring(period) ({_statuses(definition, standard)} == 0)"
    for other in standards:
        if _outranks(other, standard):
            expr += f" unless ignoring(period) {_statuses(definition, other)}"
    # Dimension labels only where the series has them (a total has none).
    where = "".join(f"{{{{ with $labels.{name} }}}} {name}={{{{ . }}}}{{{{ end }}}}" for name in definition.dimensions)
    value = humanized_value(definition.unit, currency)
    owner = spec.owner or "no owner set"
    labels = {
        "severity": KPI_SEVERITY,
        "standard": standard.key,  # tells apart the rules of one metric's standards
        "process": str(definition.process),
        "perspective": str(definition.perspective),
    }
    if spec.owner:
        labels["owner"] = spec.owner
    return {
        "alert": "CrmmetricsKpiRed",
        "expr": expr,
        "for": for_red,
        "labels": labels,
        "annotations": {
            "summary": f"KPI {definition.name} is red: {value}",
            "description": (
                f"{definition.name} ({standard.metric}{where}) is {value} for the current period, "
                f"{_comparison(definition.direction)} its red threshold {_people(spec.red, definition.unit, currency)} "
                f"(green {_people(spec.green, definition.unit, currency)}, target {_target_text(standard, definition.unit, currency)}). "
                f"Owner: {owner}; standard {standard.key}."
            ),
            "runbook_url": links.runbook("CrmmetricsKpiRed"),
            "dashboard_url": links.dashboard(process_uid(definition.process)),
        },
    }


#: "Early in a period": the first half of the period being forecast. Later, an off-track forecast
#: leaves little time to act and the red alert will follow soon enough if it comes true.
EARLY_SHARE = 0.5


def _kpi_labels(standard: Standard, definition: MetricDefinition) -> dict[str, str]:
    labels = {
        "severity": KPI_SEVERITY,
        "standard": standard.key,
        "process": str(definition.process),
        "perspective": str(definition.perspective),
    }
    if standard.spec.owner:
        labels["owner"] = standard.spec.owner
    return labels


def _kpi_families(definition: MetricDefinition, standard: Standard, name: Any) -> str:
    """The families ``name(dimensions)`` of the KPIs a standard may judge, as one selector."""
    matchers = _matchers(definition.key, standard.dimensions)
    sets = [tuple(definition.dimensions)] if standard.dimensions else [()] + ([tuple(definition.dimensions)] if definition.dimensions else [])
    return _either([name(dims) + matchers for dims in sets])


def _unless_outranked(definition: MetricDefinition, standard: Standard, standards: list[Standard], name: Any) -> str:
    return "".join(
        f" unless {_kpi_families(definition, other, name)}" for other in standards if _outranks(other, standard)
    )


def kpi_off_track_rule(standard: Standard, standards: list[Standard], definition: MetricDefinition, for_red: str,
                       links: Links, currency: str | None) -> dict[str, Any]:
    """Fires while the forecast of the period now running says the KPI will likely end red
    (pacing off track) and that period is in its first half (:data:`EARLY_SHARE`): time to act."""
    spec = standard.spec
    start = f"{FORECAST_PERIOD_START}{_matchers(definition.key, {})}"
    end = f"{FORECAST_PERIOD_END}{_matchers(definition.key, {})}"
    early = f"(time() - {start}) < {EARLY_SHARE} * ({end} - {start})"
    forecasts = _kpi_families(definition, standard, lambda dims: forecast_family(definition.unit, dims))
    expr = (
        f"{forecasts} and ({_kpi_families(definition, standard, pacing_family)} == 0) and on(metric) ({early})"
        + _unless_outranked(definition, standard, standards, pacing_family)
    )
    where = "".join(f"{{{{ with $labels.{name} }}}} {name}={{{{ . }}}}{{{{ end }}}}" for name in definition.dimensions)
    value = humanized_value(definition.unit, currency)
    return {
        "alert": "CrmmetricsKpiOffTrack",
        "expr": expr,
        "for": for_red,
        "labels": _kpi_labels(standard, definition),
        "annotations": {
            "summary": f"KPI {definition.name} is off track: forecast {value}",
            "description": (
                f"{definition.name} ({standard.metric}{where}) is forecast at {value} for the period now running, which is in "
                f"its first half: ending red ({_comparison(definition.direction)} {_people(spec.red, definition.unit, currency)}; "
                f"green {_people(spec.green, definition.unit, currency)}) is at least as likely as not. "
                f"Owner: {spec.owner or 'no owner set'}; standard {standard.key}."
            ),
            "runbook_url": links.runbook("CrmmetricsKpiOffTrack"),
            "dashboard_url": links.dashboard(process_uid(definition.process)),
        },
    }


def kpi_bad_surprise_rule(standard: Standard, standards: list[Standard], definition: MetricDefinition, for_red: str,
                          links: Links) -> dict[str, Any]:
    """Fires while the KPI's latest period is an anomaly the bad way for its direction."""
    scores = _kpi_families(definition, standard, lambda dims: anomaly_family("score", dims))
    surprise = _kpi_families(definition, standard, lambda dims: anomaly_family("surprise", dims))
    expr = f"{scores} and ({surprise} == -1)" + _unless_outranked(definition, standard, standards, lambda dims: anomaly_family("surprise", dims))
    where = "".join(f"{{{{ with $labels.{name} }}}} {name}={{{{ . }}}}{{{{ end }}}}" for name in definition.dimensions)
    return {
        "alert": "CrmmetricsKpiBadSurprise",
        "expr": expr,
        "for": for_red,
        "labels": _kpi_labels(standard, definition),
        "annotations": {
            "summary": f"KPI {definition.name} moved unusually the bad way (score {{{{ $value | printf \"%.1f\" }}}})",
            "description": (
                f"The latest period of {definition.name} ({standard.metric}{where}) lies {{{{ $value | printf \"%.1f\" }}}} robust "
                f"standard deviations from what its own history and season lead to expect, the bad way for a KPI where "
                f"{str(definition.direction).replace('_', ' ')}. Owner: {standard.spec.owner or 'no owner set'}; standard {standard.key}."
            ),
            "runbook_url": links.runbook("CrmmetricsKpiBadSurprise"),
            "dashboard_url": links.dashboard(process_uid(definition.process)),
        },
    }


def alert_rules(
    standards: Iterable[Standard],
    registry: Any,
    config: Config,
    *,
    for_red: str = "15m",
    for_failing: str = "15m",
    links: Links = Links(),
    job: str = DEFAULT_JOB,
) -> dict[str, Any]:
    """The rule groups (as a dict ready for YAML) for the standards of loaded metrics."""
    standards = [s for s in standards if s.metric in registry]
    currency = config.service.currency
    red_rules = [kpi_red_rule(s, standards, registry.get(s.metric), for_red, links, currency) for s in standards]
    outlook_rules = [kpi_off_track_rule(s, standards, registry.get(s.metric), for_red, links, currency) for s in standards]
    outlook_rules += [kpi_bad_surprise_rule(s, standards, registry.get(s.metric), for_red, links) for s in standards]
    health_dashboard = links.dashboard(HEALTH_UID)
    stale_rules = []
    grace = parse_duration(config.service.misfire_grace)
    for definition in sorted(registry, key=lambda d: d.key):
        settings = config.metric_settings(definition)
        if not settings.enabled:
            continue
        limit = 2 * schedule_interval(settings.schedule, config.service.timezone) + grace
        seconds = int(limit.total_seconds())
        stale_rules.append(
            {
                "alert": "CrmmetricsMetricStale",
                "expr": f"time() - crmmetrics_run_last_success_timestamp_seconds{_matchers(definition.key, {})} > {seconds}",
                "labels": {
                    "severity": HEALTH_SEVERITY,
                    "metric": definition.key,
                    "process": str(definition.process),
                    "perspective": str(definition.perspective),
                },
                "annotations": {
                    "summary": f"{definition.name} ({definition.key}) is stale: last computed {{{{ $value | humanizeDuration }}}} ago",
                    "description": (
                        f"{definition.name} ({definition.key}, plugin {{{{ $labels.plugin }}}}) was last computed successfully "
                        f"{{{{ $value | humanizeDuration }}}} ago; it runs {settings.schedule.describe()}, so it is expected "
                        f"within {seconds} s (two runs and the misfire grace time). Owner: the crmmetrics operators; "
                        f"'crmmetrics run --metric {definition.key}' computes it now."
                    ),
                    "runbook_url": links.runbook("CrmmetricsMetricStale"),
                    "dashboard_url": health_dashboard,
                },
            }
        )
    up = f'up{{job="{job}"}}'
    health = [
        {
            "alert": "CrmmetricsDown",
            "expr": f"{up} == 0",
            "for": "5m",
            "labels": {"severity": HEALTH_SEVERITY},
            "annotations": {
                "summary": "crmmetrics on {{ $labels.instance }} is down",
                "description": (
                    "Prometheus cannot scrape crmmetrics on {{ $labels.instance }} (job {{ $labels.job }}, up = {{ $value }}, "
                    "expected 1): KPI values, statuses and their alerts are not updated. Owner: the crmmetrics operators."
                ),
                "runbook_url": links.runbook("CrmmetricsDown"),
                "dashboard_url": health_dashboard,
            },
        },
        {
            "alert": "CrmmetricsAbsent",
            "expr": f"absent({up})",
            "for": "15m",
            "labels": {"severity": HEALTH_SEVERITY},
            "annotations": {
                "summary": f"No crmmetrics target in Prometheus (job {job})",
                "description": (
                    f"Prometheus has no target of job {job!r} (absent = {{{{ $value }}}}, expected one target or more): "
                    "crmmetrics is not scraped at all, so no KPI alert can fire. Owner: the crmmetrics operators."
                ),
                "runbook_url": links.runbook("CrmmetricsAbsent"),
                "dashboard_url": health_dashboard,
            },
        },
        {
            "alert": "CrmmetricsMetricFailing",
            "expr": "crmmetrics_run_up == 0",
            "for": for_failing,
            "labels": {"severity": HEALTH_SEVERITY},
            "annotations": {
                "summary": "Metric {{ $labels.metric }} fails to compute",
                "description": (
                    "The last run of {{ $labels.metric }} (plugin {{ $labels.plugin }}) failed (run_up = {{ $value }}, "
                    "expected 1); its exported value is the last one computed. Owner: the crmmetrics operators; "
                    "'crmmetrics run --metric {{ $labels.metric }}' shows why."
                ),
                "runbook_url": links.runbook("CrmmetricsMetricFailing"),
                "dashboard_url": health_dashboard,
            },
        },
    ]
    groups = [
        {"name": "crmmetrics-kpi-status", "rules": red_rules},
        {"name": "crmmetrics-kpi-outlook", "rules": outlook_rules},
        {"name": "crmmetrics-health", "rules": health},
        {"name": "crmmetrics-metric-freshness", "rules": stale_rules},
    ]
    return {"groups": [group for group in groups if group["rules"]]}


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block-style YAML for dicts, lists, text and numbers (text is written as JSON strings,
    which YAML reads as double-quoted scalars)."""
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:")
                lines.append(to_yaml(item, indent + 2))
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                block = to_yaml(item, indent + 2)
                lines.append(f"{pad}- {block[indent + 2:]}")
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    return "\n".join(lines)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return json.dumps(str(value), ensure_ascii=False)


def dump_rules(rules: Mapping[str, Any]) -> str:
    """The rule file's text."""
    header = (
        "# Prometheus alerting rules generated by `crmmetrics alerts export` from the standards in force.\n"
        "# Regenerate after changing standards; check with `promtool check rules FILE`.\n"
    )
    return header + to_yaml(dict(rules)) + "\n"
