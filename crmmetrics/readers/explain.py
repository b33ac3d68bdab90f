"""``crmmetrics metrics explain KEY``: what a metric is, what it reads and the SQL it runs.

The definition (name, description, formula, dimensions, unit), the source tables and columns
it needs (the no-data rule, crmmetrics.core.inputs), its parameters and period with the concrete
bounds of the current and previous period, its standards, and the SQL it runs for the current
period as the source's driver receives it.

The SQL is captured, not reconstructed: the metric is computed once for the current period on
the read-only source, exactly as the runner would call it, with a SQLAlchemy
``before_cursor_execute`` listener on that one connection collecting every statement and its
parameters; the transaction is then rolled back and nothing is stored. This is the only honest
way for a plugin's ``compute=`` function, which builds its statements in Python (and may run
several, or none when it reads a shared per-run value); for a KPI of the config file the query
as written is shown too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event

from crmmetrics.compute.config_kpis import PLUGIN as CONFIG_PLUGIN
from crmmetrics.compute.config_kpis import sql_of
from crmmetrics.core import schema
from crmmetrics.core.definitions import ComputeContext, RunCache
from crmmetrics.core.inputs import missing_reason
from crmmetrics.core.periods import Period, reporting_periods


@dataclass
class Statement:
    sql: str
    parameters: Any

    def to_json(self) -> dict[str, Any]:
        return {"sql": self.sql, "parameters": _jsonable(self.parameters)}


@dataclass
class Explanation:
    key: str
    plugin: str
    data: dict[str, Any]  # the definition, settings and periods, as JSON
    statements: list[Statement] = field(default_factory=list)
    error: str | None = None  # the computation failed (the statements up to then are kept)

    def to_json(self) -> dict[str, Any]:
        return {**self.data, "sql_run": [s.to_json() for s in self.statements], "error": self.error}



def _computed_by(compute) -> str:
    """What computes a plugin metric: its kit value (declared KPIs) or its compute function."""
    value = getattr(compute, "value", None)
    if value is not None:  # crmmetrics.kpi.KitCompute: the declared value is the formula
        by = getattr(compute, "by", ())
        return f"the KPI kit: {value}" + (f", by {', '.join(by)}" if by else "")
    return f"{compute.__module__}.{compute.__qualname__}"

def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _period_json(period: Period) -> dict[str, Any]:
    return {"label": period.label, "name": period.describe(), "start": period.start.isoformat(), "end": period.end.isoformat()}


def explain(app: Any, key: str, as_of: datetime, standards: list[Any] = ()) -> Explanation:
    """Explain metric ``key`` of ``app`` (crmmetrics.serve.app.App) as of ``as_of``; ``standards``: the
    StandardDefault specs in force for it."""
    definition = app.registry.get(key)
    plugin = app.registry.plugin_of.get(key, "")
    settings = app.config.metric_settings(definition)
    periods = reporting_periods(settings.period, as_of)
    inputs = definition.inputs(settings.params)
    compute = definition.compute
    data: dict[str, Any] = {
        "key": key,
        "name": definition.name,
        "plugin": plugin,
        "description": definition.description,
        "formula": definition.formula,
        "source": definition.source,
        "process": str(definition.process),
        "perspective": str(definition.perspective),
        "value_lens": str(definition.value_lens),
        "unit": definition.unit,
        "base_unit": definition.export_unit.suffix,
        "direction": str(definition.direction),
        "dimensions": list(definition.dimensions),
        "needs": [str(need) for need in inputs],
        "computed_by": (
            f"[kpis.{key}] in {app.config.path}" if plugin == CONFIG_PLUGIN else _computed_by(compute)
        ),
        "sql_as_written": sql_of(key, app.config) if plugin == CONFIG_PLUGIN else None,
        "parameters": [
            {
                "name": p.name,
                "type": p.type.__name__,
                "default": _jsonable(p.default),
                "value": _jsonable(settings.params.get(p.name)),
                "description": p.description,
            }
            for p in definition.parameters
        ],
        "period": settings.period,
        "as_of": as_of.isoformat(),
        "periods": [_period_json(period) for period in periods],
        "enabled": settings.enabled,
        "schedule": settings.schedule.describe(),
        "timeout_seconds": settings.timeout_seconds,
        "standards": [_standard_json(spec) for spec in standards],
    }
    explanation = Explanation(key=key, plugin=plugin, data=data)
    current = periods[0]
    engine = app.source
    data["dialect"] = engine.dialect.name
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SET statement_timeout = {int(settings.timeout_seconds * 1000)}")
        data["no_data"] = missing_reason(connection, inputs, current) if inputs else None

        def collect(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
            explanation.statements.append(Statement(statement, parameters))

        event.listen(connection, "before_cursor_execute", collect)
        ctx = ComputeContext(
            connection=connection,
            tables=schema.TABLES,
            params=dict(settings.params),
            period=current,
            as_of=as_of,
            metric=definition,
            run_cache=RunCache(),
        )
        try:
            from crmmetrics.compute.runner import normalise

            results = normalise(definition, compute(ctx))
            total = next((r.value for r in results if not r.dimensions), None)
            data["current_value"] = None if total is None else float(total)
            data["current_results"] = len(results)
        except Exception as exc:  # noqa: BLE001 - shown, as a run would store it
            explanation.error = f"{type(exc).__name__}: {exc}"
        finally:
            event.remove(connection, "before_cursor_execute", collect)
            connection.rollback()
    return explanation


def _standard_json(spec: Any) -> dict[str, Any]:
    return {
        "label": spec.label,
        "target": spec.fixed_target,
        "target_rule": spec.target_rule,
        "improvement": spec.improvement,
        "red": spec.red,
        "green": spec.green,
        "weight": spec.weight,
        "owner": spec.owner,
    }


def explanation_text(explanation: Explanation) -> str:
    d = explanation.to_json()
    lines = [f"{d['key']}: {d['name']}"]

    def row(label: str, value: Any) -> None:
        if value not in (None, "", []):
            lines.append(f"  {label:12} {value}")

    row("plugin", d["plugin"])
    row("computed by", d["computed_by"])
    row("framework", f"process {d['process']}, perspective {d['perspective']}, value lens {d['value_lens']}")
    row("unit", f"{d['unit']} (exported in {d['base_unit']}), {d['direction'].replace('_', ' ')}")
    row("description", d["description"])
    row("formula", d["formula"])
    row("dimensions", ", ".join(d["dimensions"]))
    row("needs", ", ".join(d["needs"]) or "nothing declared (the no-data rule checks no input)")
    row("source", d["source"])
    for p in d["parameters"]:
        row("parameter", f"{p['name']} = {p['value']!r} ({p['type']}, default {p['default']!r}): {p['description']}")
    current, previous = d["periods"][0], d["periods"][1] if len(d["periods"]) > 1 else None
    row("period", f"{d['period']} as of {d['as_of']}")
    row("current", f"{current['name']}: [{current['start']}, {current['end']})")
    if previous:
        row("previous", f"{previous['name']}: [{previous['start']}, {previous['end']})")
    row("schedule", f"{d['schedule']}, timeout {d['timeout_seconds']:g}s, {'enabled' if d['enabled'] else 'disabled'}")
    if not d["standards"]:
        row("standard", "none (a metric, not a KPI on the scorecard)")
    for s in d["standards"]:
        target = f"{s['target']:g}" if s["target"] is not None else f"previous {s['improvement']:+.0%}" if s["target_rule"] == "previous" else s["target_rule"]
        row("standard", f"{s['label']}: target {target}, red {s['red']:g}, green {s['green']:g}, weight {s['weight']:g}"
            + (f", owner {s['owner']}" if s["owner"] else ""))
    for name, sql in (d["sql_as_written"] or {}).items():
        lines.append(f"  SQL as written in the config file ({name}):")
        lines.extend(f"    {line}" for line in sql.splitlines())
    if d["no_data"]:
        row("no data", f"the current period has no value ({d['no_data']}): a run stores it as missing without computing")
    lines.append(
        f"  SQL run for the current period ({d['dialect']}; {len(d['sql_run'])} statement{'' if len(d['sql_run']) == 1 else 's'}, "
        "captured from one computation "
        "on the read-only source, rolled back, nothing stored):"
    )
    for number, statement in enumerate(d["sql_run"], 1):
        lines.append(f"    -- {number}, parameters: {statement['parameters']}")
        lines.extend(f"    {line}" for line in statement["sql"].strip().splitlines())
    if d["error"]:
        row("error", f"the computation failed: {d['error']}")
    elif d.get("current_value") is not None:
        row("value", f"{d['current_value']:g} for {current['name']} (not stored)")
    return "\n".join(lines)
