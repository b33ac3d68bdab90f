"""KPIs defined in the config file: ``[kpis.KEY]`` tables that become MetricDefinitions.

An admin writes a KPI as SQL over the canonical tables (docs/operations.md, "KPIs in the config
file")::

    [kpis.cfg_web_revenue]
    name = "Web revenue"
    process = "multichannel_integration"
    perspective = "financial"
    value_lens = "shareholder_value"
    unit = "currency"
    direction = "higher_is_better"
    dimensions = ["segment"]            # optional: one column per dimension
    sql = '''
    SELECT s.name AS segment, SUM(o.net_revenue) AS value
    FROM orders o JOIN customers c ON c.customer_id = o.customer_id
    JOIN segments s ON s.segment_id = c.segment_id
    WHERE o.ordered_at >= :start AND o.ordered_at < :end
    GROUP BY s.name
    '''

The query returns a ``value`` column and one column per declared dimension; ``:start`` and
``:end`` are bound to the period's bounds (half-open). Without dimensions it returns at most
one row; with dimensions each row is one breakdown value, and a row whose dimension columns are
all NULL is the total (``UNION ALL`` it, or ``GROUP BY ROLLUP``); a NULL in some dimension
columns only is an error (``COALESCE`` it to a label).

A ratio is two such queries, ``numerator`` and ``denominator`` (``kind = "ratio"``): its
value is numerator / denominator (times 100 in percent, 1,000 per 1,000 customers), for the
total and each breakdown value; a denominator that is missing, NULL or 0 gives no value.

A KPI may also be declared, without SQL, with the KPI kit (crmmetrics.kpi): ``kind =
"measure"`` and a ``measure`` table, an aggregate of a column of a canonical table over the
period (``Measure.from_dict``: ``table``, ``column``, ``agg`` one of sum, count, customers,
mean, max, min, ``filters`` as ``[column, op, value]`` lists, ``time``), broken down by
``dimensions`` (``segment``, ``channel``, ``channel_category`` or a column of the table); or
``kind = "ratio"`` with ``numerator`` and ``denominator`` tables. The kit applies the period,
the master-record rule and the ``unassigned`` rule of every built-in KPI, and derives ``needs``::

    [kpis.cfg_web_share]
    kind = "ratio"
    name = "Web share of net revenue"
    ...
    unit = "percent"
    dimensions = ["segment"]
    numerator = { table = "orders", column = "net_revenue", filters = [["channel.category", "=", "e_commerce"]] }
    denominator = { table = "orders", column = "net_revenue" }

A ``[kpis.KEY.standard]`` table gives the KPI a default standard, with the fields and checks of a
``[standards.KEY]`` table of the standards file (``target``, ``red``, ``green``, ``weight``,
``benchmark``, ``owner``, ``source``): recorded like a plugin's default (by ``plugin:config``),
and overridden by an admin standard (``standards set``, ``standards import``).

Such a KPI is registered under the plugin name ``config`` and runs exactly like a plugin's: in
the runner, on the read-only source (crmmetrics.data.source), with the no-data rule applied to its
``needs``. When ``needs`` is not given, it is the canonical tables the query reads, found by
SQLite's own parser: the statement is prepared (not run) on an empty in-memory copy of the
canonical schema under the same authorizer that makes a SQLite source read-only, which reports
every table the statement reads and refuses a statement that would write. A query SQLite cannot
parse (a PostgreSQL-only function) needs an explicit ``needs = [...]``.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from crmmetrics.core import sa
from crmmetrics.core.canonical import DATA_MODEL
from crmmetrics.core.config import Config, KpiSection, MetricSection
from crmmetrics.core.definitions import MetricDefinition, Result, parse_duration
from crmmetrics.core.errors import ConfigError, MetricError
from crmmetrics.core.hookspecs import hookimpl
from crmmetrics.core.periods import reporting_periods

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import TextClause

#: The plugin name that KPIs from the config file are registered under.
PLUGIN = "config"
BOUNDS = ("start", "end")


def _where(config: Config) -> str:
    return str(config.path or "<config>")


def statement_sql(sql: str) -> str:
    """The query as it is run: the text as written, without a trailing ``;``."""
    return sql.strip().rstrip(";").rstrip()


# How sa.text finds its bound parameters (sqlalchemy.sql.elements.TextClause._bind_params_regex):
# ":name", not "::cast" nor "\\:escaped". Defining a KPI checks them without importing SQLAlchemy.
_BIND_PARAM = re.compile(r"(?<![:\w\x5c]):(\w+)(?![:\w])", re.UNICODE)


def bound_parameters(sql: str) -> set[str]:
    """The names of the bound parameters of a query, as sa.text reads them (ValueError for
    any but ``:start`` and ``:end``)."""
    names = set(_BIND_PARAM.findall(statement_sql(sql)))
    unknown = sorted(names - set(BOUNDS))
    if unknown:
        raise ValueError(f"unknown bound parameter :{unknown[0]} (a KPI's query may use :start and :end only)")
    return names


def statement(sql: str) -> TextClause:
    """The query as a SQLAlchemy text clause, ``:start`` and ``:end`` typed as DateTime (so that
    each dialect binds them as it stores the canonical timestamps)."""
    names = bound_parameters(sql)
    clause = sa.text(statement_sql(sql))
    return clause.bindparams(*(sa.bindparam(name, type_=sa.DateTime()) for name in BOUNDS if name in names))


# --- what a query reads, from SQLite's parser -----------------------------------------------


# SQLite's names for the data model's column types: preparing a query needs the tables and
# their columns, not their constraints, so the declaration is enough (no SQLAlchemy import).
_SQLITE_TYPES = {"integer": "INTEGER", "big_integer": "INTEGER", "id": "INTEGER", "float": "REAL",
                 "boolean": "BOOLEAN", "string": "VARCHAR", "text": "TEXT", "timestamp": "DATETIME"}


@lru_cache(maxsize=1)
def _canonical_ddl() -> tuple[str, ...]:
    return tuple(
        f'CREATE TABLE "{spec.name}" ('
        + ", ".join(f'"{column.name}" {_SQLITE_TYPES[column.type]}' for column in spec.columns.values())
        + ")"
        for spec in DATA_MODEL.values()
    )


class WritingQuery(ValueError):
    """A query that would write to the source (or change its schema)."""


class SqliteCannotParse(ValueError):
    """A query SQLite cannot prepare (an error, or another dialect's SQL)."""


def tables_read(sql: str) -> tuple[str, ...]:
    """The canonical tables ``sql`` reads, in schema order; ValueError if SQLite cannot prepare
    it or if it would write (refused by the read-only source's authorizer)."""
    from crmmetrics.data.sqlite_read_only import sqlite_authorizer

    connection = sqlite3.connect(":memory:")
    try:
        for ddl in _canonical_ddl():
            connection.execute(ddl)
        read: set[str] = set()
        refused: list[str] = []

        def authorizer(action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None) -> int:
            verdict = sqlite_authorizer(action, arg1, arg2, db, trigger)
            if verdict != sqlite3.SQLITE_OK:
                if (arg1 or "").startswith("sqlite_"):  # CREATE/DROP first write the schema table
                    refused.append("change the schema")
                else:
                    refused.append(_ACTIONS.get(action, f"action {action}") + (f" on {arg1}" if arg1 else ""))
            elif action == sqlite3.SQLITE_READ and arg1 in DATA_MODEL:
                read.add(arg1)
            return verdict

        connection.set_authorizer(authorizer)
        names = {name: None for name in BOUNDS}
        try:
            connection.execute("EXPLAIN " + statement_sql(sql), names).fetchall()
        except sqlite3.Error as exc:
            if refused:
                raise WritingQuery(f"the source is read-only: the query would {refused[0]}; a KPI only reads") from None
            raise SqliteCannotParse(f"SQLite's parser refuses the query ({exc})") from None
    finally:
        connection.close()
    return tuple(name for name in DATA_MODEL if name in read)


_ACTIONS = {
    getattr(sqlite3, f"SQLITE_{name}"): name.lower().replace("_", " ")
    for name in ("INSERT", "UPDATE", "DELETE", "CREATE_TABLE", "DROP_TABLE", "ALTER_TABLE", "ATTACH", "DETACH",
                 "CREATE_INDEX", "DROP_INDEX", "CREATE_VIEW", "DROP_VIEW", "CREATE_TRIGGER", "PRAGMA",
                 "CREATE_TEMP_TABLE", "REINDEX", "ANALYZE")
}


# --- the compute function -------------------------------------------------------------------


def _number(label: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise MetricError(f"{label}: the value column returned {value!r}, not a number")
    return float(value)


def rows_to_results(label: str, dimensions: tuple[str, ...], columns: Iterable[str], rows: list[Any]) -> list[Result]:
    """The Results of one period from a query's rows (see the module docstring); ``label``
    names the query in errors (``kpis.KEY.sql``)."""
    check_columns(label, dimensions, columns)
    if not dimensions:
        if len(rows) > 1:
            raise MetricError(f"{label}: the query returned {len(rows)} rows; without dimensions it returns one")
        return [Result(_number(label, rows[0]._mapping["value"]) if rows else None)]
    results = []
    for row in rows:
        mapping = row._mapping
        labels = {name: mapping[name] for name in dimensions}
        nulls = [name for name, value in labels.items() if value is None]
        if len(nulls) == len(dimensions):
            results.append(Result(_number(label, mapping["value"])))  # the total
            continue
        if nulls:
            raise MetricError(
                f"{label}: a row has NULL in dimension {nulls[0]} only: label rows without a value, "
                f"e.g. COALESCE({nulls[0]}, 'unassigned')"
            )
        results.append(Result(_number(label, mapping["value"]), {name: str(value) for name, value in labels.items()}))
    return results or [Result(None)]


def check_columns(label: str, dimensions: tuple[str, ...], columns: Iterable[str]) -> None:
    columns = list(columns)
    expected = ["value", *dimensions]
    missing = [name for name in expected if name not in columns]
    if missing:
        raise MetricError(
            f"{label}: the query returns no column {missing[0]!r} (it returns {', '.join(columns) or 'nothing'}; "
            f"expected {', '.join(expected)})"
        )
    extra = [name for name in columns if name not in expected]
    if extra:
        raise MetricError(
            f"{label}: the query returns column {extra[0]!r}, which is neither value nor a declared dimension "
            f"(dimensions: {', '.join(dimensions) or 'none'}): declare it in dimensions or leave it out"
        )


# A ratio in percent is shown 0-100 (the unit's convention), per 1,000 customers per thousand.
RATIO_SCALE = {"percent": 100.0, "percent_unbounded": 100.0, "per_1000_customers": 1000.0}


def ratio_results(numerators: list[Result], denominators: list[Result], scale: float) -> list[Result]:
    """numerator / denominator for the total and each breakdown value, times ``scale``.

    A value of the breakdown the numerator has no row (or NULL) for is 0 of its denominator (a
    SUM or COUNT over no rows of that group); a denominator that is missing, NULL or 0 gives no
    value, never a 0 or an infinity.
    """
    def identity(result: Result) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(result.dimensions.items()))

    top = {identity(r): r.value for r in numerators}
    bottom = {identity(r): r.value for r in denominators}
    results = []
    for group in dict.fromkeys([*bottom, *top]):
        denominator = bottom.get(group)
        if denominator is None or denominator == 0:
            value = None
        else:
            value = (top.get(group) or 0.0) / denominator * scale
        results.append(Result(value, dict(group)))
    return results


def queries(section: KpiSection) -> dict[str, str]:
    """The queries of a KPI by their key in its table: ``sql``, or ``numerator`` and ``denominator``
    (none for a KPI declared with the kit)."""
    if section.declarative:
        return {}
    if section.kind == "ratio":
        return {"numerator": section.numerator or "", "denominator": section.denominator or ""}
    return {"sql": section.sql or ""}


def _compute_function(key: str, section: KpiSection, unit: str):
    sqls = queries(section)
    statements: dict[str, TextClause] = {}  # built on first use: defining a KPI imports no SQLAlchemy
    dimensions = tuple(section.dimensions)

    def run(ctx: Any, name: str) -> list[Result]:
        if name not in statements:
            statements[name] = statement(sqls[name])
        result = ctx.connection.execute(statements[name], {"start": ctx.period.start, "end": ctx.period.end})
        return rows_to_results(f"kpis.{key}.{name}", dimensions, result.keys(), result.all())

    def compute(ctx: Any) -> list[Result]:
        if section.kind == "ratio":
            return ratio_results(run(ctx, "numerator"), run(ctx, "denominator"), RATIO_SCALE.get(unit, 1.0))
        return run(ctx, "sql")

    compute.__doc__ = f"The SQL of [kpis.{key}] in the config file."
    return compute


def _inputs(key: str, section: KpiSection) -> tuple[str, ...]:
    """``needs`` as given, or the canonical tables the queries read (ValueError naming the query)."""
    read: list[str] = []
    for name, sql in queries(section).items():
        try:
            bound_parameters(sql)  # unknown ones
            read.extend(tables_read(sql))
        except WritingQuery as exc:
            raise ValueError(f"{name}: {exc}") from None
        except SqliteCannotParse as exc:  # a dialect SQLite does not know: the source checks it (config check)
            if section.needs is None:
                raise ValueError(
                    f"{name}: {exc}: fix the query or, if it is valid in the source's own dialect, list the tables it "
                    "reads in needs = [\"orders\", ...]"
                ) from None
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    if section.needs is not None:
        return tuple(section.needs)
    return tuple(table for table in DATA_MODEL if table in read)


def _measure(name: str, data: Any) -> Any:
    """The kit's Measure of the ``name`` table (``measure``, ``numerator``, ``denominator``)."""
    from crmmetrics.kpi import Filter, Measure, Param

    try:
        for field_name in ("column", "time"):
            if field_name in data and not isinstance(data[field_name], str):
                raise ValueError(f"{field_name} is a column name, not {data[field_name]!r}")
        if not isinstance(data.get("filters", []), list):
            raise ValueError('filters is a list of [column, op, value] lists, e.g. [["kind", "=", "complaint"]]')
        measure = Measure.from_dict(data)
    except (TypeError, ValueError) as exc:
        # the kit names "measure of TABLE"; here the key of the table in the file says which
        message = str(exc).removeprefix("measure: ").removeprefix(f"measure of {data.get('table')}: ")
        raise ValueError(f"{name}: {message}") from None
    for condition in measure.filters:
        if isinstance(condition, Filter) and isinstance(condition.value, Param):
            raise ValueError(f"{name}: filter on {condition.column!r}: a KPI of the config file has no parameters: write the value")
    return measure


def kit_value(section: KpiSection) -> Any:
    """The kit value of a declared KPI: its measure, or the ratio of its two measures (scaled
    like a SQL ratio: x 100 in percent, x 1,000 per 1,000 customers)."""
    from crmmetrics.kpi import Ratio

    if section.kind == "measure":
        return _measure("measure", section.measure)
    return Ratio(_measure("numerator", section.numerator), _measure("denominator", section.denominator),
                 RATIO_SCALE.get(section.unit, 1.0))


def definition_from_section(key: str, section: KpiSection) -> MetricDefinition:
    """The MetricDefinition of ``[kpis.KEY]``; ValueError with what is wrong (starting with the
    key of the table it is about: ``sql: ...``)."""
    fields: dict[str, Any] = dict(
        key=key,
        name=section.name,
        description=section.description,
        process=section.process,
        perspective=section.perspective,
        value_lens=section.value_lens,
        unit=section.unit,
        direction=section.direction,
        source=section.source,
        schedule=section.schedule.to_schedule() if section.schedule else None,
        period=section.period,
        timeout_seconds=parse_duration(section.timeout).total_seconds() if section.timeout else 120.0,
    )
    if section.declarative:
        from crmmetrics.kpi import define

        value = kit_value(section)
        try:
            return define(value=value, by=tuple(section.dimensions), needs=section.needs and tuple(section.needs),
                          formula=section.formula or str(value), **fields)
        except ValueError as exc:  # a dimension the measured table does not have
            raise ValueError(f"dimensions: {str(exc).split(': ', 1)[-1]}") from None
    return MetricDefinition(
        compute=_compute_function(key, section, section.unit),
        formula=section.formula or (
            f"numerator / denominator{'' if section.unit not in RATIO_SCALE else f' x {RATIO_SCALE[section.unit]:g}'}, "
            f"the SQL queries of [kpis.{key}] in the config file"
            if section.kind == "ratio" else f"the SQL query of [kpis.{key}] in the config file"
        ),
        dimensions=tuple(section.dimensions),
        needs=_inputs(key, section),
        **fields,
    )


# --- default standards: [kpis.KEY.standard] ---------------------------------------------------


class ConfigStandards:
    """The plugin ``config`` in the plugin manager: it gives the default standards of the config
    file's KPIs, so that they are collected, recorded (by ``plugin:config``) and overridden by
    admin standards exactly like a plugin's defaults. They are read when collected: listing the
    metrics does not import the standards module (and SQLModel with it)."""

    def __init__(self, config: Config, registry: Any) -> None:
        self.config, self.registry = config, registry

    @hookimpl
    def crmmetrics_standards(self) -> list[Any]:
        defaults, problems = config_standards(self.config, self.registry)
        if problems:
            raise ConfigError("\n".join(problems))
        return defaults


def config_standards(config: Config, registry: Any) -> tuple[list[Any], list[str]]:
    """The default standards of the config file's KPIs in ``registry``, and one problem line for
    each bad ``[kpis.KEY.standard]`` table."""
    defaults, problems = [], []
    for key, section in config.model.kpis.items():
        if section.standard is None or registry.plugin_of.get(key) != PLUGIN:
            continue
        try:
            defaults.append(default_standard(key, section, registry))
        except ValueError as exc:
            problems.append(f"{_where(config)}: kpis.{key}.{exc}")
    return defaults, problems


def default_standard(key: str, section: KpiSection, registry: Any) -> Any:
    """The StandardDefault of ``[kpis.KEY.standard]`` (None without one); ValueError naming the
    field (``standard.red: ...``). Read as a ``[standards.KEY]`` table of the standards file is."""
    if section.standard is None:
        return None
    from crmmetrics.core.standards_file import parse_standard

    if "valid_from" in section.standard:
        raise ValueError("standard.valid_from: a default standard applies from when it is recorded; "
                         "date an admin standard instead (crmmetrics standards set --valid-from)")
    try:
        return parse_standard(key, section.standard, "", registry).spec
    except ConfigError as exc:
        raise ValueError(str(exc).replace(f"standards.{key}", "standard", 1)) from None


def add_config_kpis(registry: Any, config: Config, pm: Any = None, check_standards: bool = False) -> list[str]:
    """Add the config file's KPIs to ``registry`` (plugin ``config``); one problem line for each
    bad one (left out), e.g. one whose key is already a plugin's metric. With the plugin manager
    ``pm``, their default standards are registered in it as plugin ``config`` (ConfigStandards);
    ``check_standards`` reads them now, a bad one a problem line too (``config check``)."""
    problems = []
    for key, section in config.model.kpis.items():
        if key in registry:
            problems.append(
                f"{_where(config)}: kpis.{key}: {key!r} is already a metric of plugin {registry.plugin_of[key]}: "
                "choose another key"
            )
            continue
        try:
            registry.add(definition_from_section(key, section), PLUGIN)
        except ValueError as exc:
            problems.append(f"{_where(config)}: kpis.{key}.{exc}")
    if check_standards:
        problems += config_standards(config, registry)[1]
    if pm is not None:
        if pm.has_plugin(PLUGIN):
            pm.unregister(name=PLUGIN)
        if any(section.standard is not None for section in config.model.kpis.values()):
            pm.register(ConfigStandards(config, registry), name=PLUGIN)
    return problems


def sql_of(key: str, config: Config) -> dict[str, str] | None:
    """The queries of config KPI ``key`` as written (by their key in the table), or None."""
    section = config.model.kpis.get(key)
    return None if section is None else {name: statement_sql(sql) for name, sql in queries(section).items()}


# --- config check: the queries against the source -------------------------------------------

# PostgreSQL type OIDs of numbers: int2, int4, int8, float4, float8, numeric
_PG_NUMERIC_TYPES = {20, 21, 23, 700, 701, 1700}


def source_problems(config: Config, engine: Any, keys: Iterable[str] | None = None, as_of: datetime | None = None) -> list[str]:
    """Each config KPI's queries compiled and run against the source: with ``LIMIT 0`` for
    their column names (and, on PostgreSQL, their types); on SQLite, whose columns have no fixed
    type, also once for the current period, checking that the values are numbers. A declared KPI
    is computed once for the current period (the kit's SQL for the source's dialect). Nothing is
    written: the source is read-only and every transaction is rolled back."""
    from crmmetrics.core.periods import to_naive_utc

    where = _where(config)
    problems = []
    moment = to_naive_utc(as_of or config.service.as_of or datetime.now(timezone.utc))
    for key, section in config.model.kpis.items():
        if keys is not None and key not in keys:
            continue  # a bad definition, already reported
        settings = config.model.metrics.get(key, MetricSection())
        period = reporting_periods(settings.period or section.period, moment)[0]
        if section.declarative:
            problem = _declared_problem(engine, key, section, period, moment)
            if problem:
                problems.append(f"{where}: {problem}")
            continue
        for name, sql in queries(section).items():
            problem = _query_problem(engine, f"kpis.{key}.{name}", sql, tuple(section.dimensions), period)
            if problem:
                problems.append(f"{where}: {problem}")
                break
    return problems


def _declared_problem(engine: Any, key: str, section: KpiSection, period: Any, as_of: datetime) -> str | None:
    """A declared KPI computed once for ``period`` on the source and rolled back: the source has
    the columns the kit reads (a view may lack one) and runs its SQL."""
    import sqlalchemy.exc

    from crmmetrics.core.definitions import ComputeContext
    from crmmetrics.core.schema import TABLES
    from crmmetrics.data.engines import connection_problem

    definition = definition_from_section(key, section)
    try:
        with engine.connect() as connection:
            ctx = ComputeContext(connection=connection, tables=TABLES, params={}, period=period, as_of=as_of, metric=definition)
            definition.compute(ctx)
            connection.rollback()
    except sqlalchemy.exc.DBAPIError as exc:
        return f"kpis.{key}: the source refused the SQL of {section.kind} {kit_value(section)}: {connection_problem(exc)}"
    except PermissionError as exc:
        return f"kpis.{key}: {exc}"
    return None


def _query_problem(engine: Any, label: str, sql: str, dimensions: tuple[str, ...], period: Any) -> str | None:
    import sqlalchemy.exc

    from crmmetrics.data.engines import connection_problem

    bounds = {"start": period.start, "end": period.end}
    query = statement(sql)
    probe = sa.text(f"SELECT * FROM ({statement_sql(sql)}) AS kpi_query LIMIT 0").bindparams(
        *(sa.bindparam(name, type_=sa.DateTime()) for name in BOUNDS if name in query.compile().params)
    )
    try:
        with engine.connect() as connection:
            result = connection.execute(probe, bounds)
            columns = list(result.keys())
            description = result.cursor.description if result.cursor is not None else None
            result.close()
            check_columns(label, dimensions, columns)
            if connection.dialect.name == "postgresql" and description:
                type_of = {column.name: column.type_code for column in description}
                if type_of.get("value") not in _PG_NUMERIC_TYPES:
                    return f"{label}: the value column is not a number (PostgreSQL type oid {type_of.get('value')})"
            elif connection.dialect.name == "sqlite":
                run = connection.execute(query, bounds)
                rows_to_results(label, dimensions, run.keys(), run.fetchmany(1000))
            connection.rollback()
    except MetricError as exc:
        return str(exc)
    except sqlalchemy.exc.DBAPIError as exc:
        return f"{label}: the source refused the query: {connection_problem(exc)}"
    except sqlalchemy.exc.StatementError as exc:
        return f"{label}: the source refused the query: {exc.orig}"
    except PermissionError as exc:
        return f"{label}: {exc}"
    return None
