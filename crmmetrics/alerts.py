"""Prometheus alerting rules generated from the standards in force.

Three kinds of alert, all on families the exporter serves:

- ``CrmmetricsKpiRed`` (one rule per standard): the KPI's status is red
  (``crmmetrics_kpi_status == 0``) for ``for_red``. A standard for a whole metric excludes the
  dimension values that have a standard of their own (``unless``), so each red KPI fires under
  the rule of the standard that judges it, with that standard's owner as a label.
- ``CrmmetricsKpiStale`` (one rule per KPI metric): the last successful computation is older
  than twice the metric's schedule interval (the longest gap between two cron firings) plus the
  misfire grace time.
- ``CrmmetricsMetricFailing`` (one rule for every metric): the last run failed
  (``crmmetrics_run_up == 0``) for ``for_failing``.

The rules are written as YAML by ``dump_rules``; regenerate them after changing standards.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from .config import Config
from .definitions import Schedule, parse_duration
from .standards import Standard
from .vocabulary import Direction


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


def _matchers(metric: str, dimensions: Mapping[str, str]) -> str:
    labels = {"metric": metric, **dict(sorted(dimensions.items()))}
    return "{" + ",".join(f"{name}={json.dumps(value)}" for name, value in labels.items()) + "}"


def _outranks(other: Standard, standard: Standard) -> bool:
    """Would ``other`` judge some observation that ``standard`` could judge (see scorecard docs)?"""
    if other.key == standard.key or other.metric != standard.metric:
        return False
    if any(standard.dimensions.get(k, v) != v for k, v in other.dimensions.items()):
        return False  # they never apply to the same observation
    return (-len(other.dimensions), other.key) < (-len(standard.dimensions), standard.key)


def _comparison(direction: Direction) -> str:
    return "at or above" if direction == Direction.LOWER_IS_BETTER else "at or below"


def alert_rules(
    standards: Iterable[Standard],
    registry: Any,
    config: Config,
    *,
    for_red: str = "15m",
    for_failing: str = "15m",
) -> dict[str, Any]:
    """The rule groups (as a dict ready for YAML) for the standards of loaded metrics."""
    standards = [s for s in standards if s.metric in registry]
    red_rules = []
    for standard in standards:
        definition = registry.get(standard.metric)
        spec = standard.spec
        expr = f"crmmetrics_kpi_status{_matchers(standard.metric, standard.dimensions)} == 0"
        for other in standards:
            if _outranks(other, standard):
                expr += f" unless crmmetrics_kpi_status{_matchers(other.metric, other.dimensions)}"
        # Dimension labels only where the series has them (a total has none).
        where = "".join(f"{{{{ with $labels.{name} }}}} {name}={{{{ . }}}}{{{{ end }}}}" for name in definition.dimensions)
        target = f", target {spec.fixed_target:g}" if spec.fixed_target is not None else ""
        labels = {
            "severity": "warning",
            "standard": standard.key,  # tells apart the rules of one metric's standards
            "process": str(definition.process),
            "perspective": str(definition.perspective),
        }
        if spec.owner:
            labels["owner"] = spec.owner
        red_rules.append(
            {
                "alert": "CrmmetricsKpiRed",
                "expr": expr,
                "for": for_red,
                "labels": labels,
                "annotations": {
                    "summary": f"KPI {definition.name} is red",
                    "description": (
                        f"{definition.name} ({standard.metric}{where}) is {_comparison(definition.direction)} "
                        f"its red threshold {spec.red:g} (green {spec.green:g}{target}); standard {standard.key}."
                    ),
                },
            }
        )
    stale_rules = []
    grace = parse_duration(config.service.misfire_grace)
    for metric in sorted({s.metric for s in standards}):
        definition = registry.get(metric)
        settings = config.metric_settings(definition)
        limit = 2 * schedule_interval(settings.schedule, config.service.timezone) + grace
        seconds = int(limit.total_seconds())
        stale_rules.append(
            {
                "alert": "CrmmetricsKpiStale",
                "expr": f"time() - crmmetrics_run_last_success_timestamp_seconds{_matchers(metric, {})} > {seconds}",
                "labels": {
                    "severity": "warning",
                    "metric": metric,
                    "process": str(definition.process),
                    "perspective": str(definition.perspective),
                },
                "annotations": {
                    "summary": f"KPI {definition.name} is stale",
                    "description": (
                        f"{definition.name} ({metric}) has not been computed successfully for more than {seconds} s "
                        f"(it runs {settings.schedule.describe()})."
                    ),
                },
            }
        )
    failing = {
        "alert": "CrmmetricsMetricFailing",
        "expr": "crmmetrics_run_up == 0",
        "for": for_failing,
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "Metric {{ $labels.metric }} fails to compute",
            "description": (
                "The last run of {{ $labels.metric }} (plugin {{ $labels.plugin }}) failed; "
                "'crmmetrics run --metric {{ $labels.metric }}' shows why."
            ),
        },
    }
    groups = [
        {"name": "crmmetrics-kpi-status", "rules": red_rules},
        {"name": "crmmetrics-kpi-freshness", "rules": stale_rules},
        {"name": "crmmetrics-metric-runs", "rules": [failing]},
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
