"""Configuration: one TOML file, validated up front, edited in place by the CLI.

The file is the one source of truth for what runs where and when::

    [source]                      # the organisation's CRM data (read-only)
    url = "sqlite:///crm.sqlite"  # relative SQLite paths are relative to this file
    [store]                       # crmmetrics' own results
    url = "sqlite:///store.sqlite"
    [service]
    host = "127.0.0.1"
    port = 9632
    timezone = "UTC"
    standards_file = "standards.toml"  # optional: imported at start and on every reload
    [web]                              # the HTTP server (see docs/operations.md)
    config_file = "web.yml"            # optional: exporter-toolkit TLS / basic auth file
    [metrics.vc_nps]
    schedule = { cron = "0 6 * * *" }
    period = "quarter"
    params = { ... }
    [kpis.my_kpi]                      # a KPI defined here (crmmetrics.compute.config_kpis): SQL,
    name = "..."                       # or a declarative measure or ratio of measures
    sql = "SELECT ... AS value FROM orders WHERE ordered_at >= :start AND ordered_at < :end"
    [kpis.my_kpi.standard]             # optional: its default standard (admin standards override it)
    target = 100
    red = 50
    green = 90

Any string value may contain ``${NAME}`` to take an environment variable (for secrets).
Every problem is reported as one line: ``FILE: key.path: what is wrong``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .config_fields import TableProblems, boolean, choice, integer, moment, parse_table, plain, section, sections, setting, strings, table, text, text_or_table
from .definitions import KEY_PATTERN, RESERVED_LABELS, UNITS, MetricDefinition, Schedule, parse_duration
from .errors import ConfigError
from .hookspecs import PluginConfig, ServiceSettings
from .inputs import Need
from .periods import PERIOD_HELP, is_valid_period
from .vocabulary import Direction, Perspective, Process, ValueLens

CONFIG_ENV = "CRMMETRICS_CONFIG"
DEFAULT_CONFIG_NAME = "crmmetrics.toml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _database_url(value: str) -> None:
    if not is_database_url(value):
        raise ValueError(f"not a SQLAlchemy database URL: {redact_url(value)!r}")


@dataclass(kw_only=True)
class DatabaseSection:
    url: str = setting(text(_database_url))


# SQLAlchemy's own URL grammar (sqlalchemy.engine.url._parse_url), checked here without
# importing SQLAlchemy: loading a config must stay light for the admin commands that open no
# database (crmmetrics metrics list, plugins). make_url parses the URL where an engine opens.
_DATABASE_URL = re.compile(
    r"""
    (?P<name>[\w+]+)://
    (?:[^:/]*(?::[^@]*)?@)?
    (?:(?:\[[^/?]+\]|[^/:?]+)?(?::(?P<port>[^/?]*))?)?
    (?:/[^?]*)?
    (?:\?.*)?
    """,
    re.VERBOSE | re.DOTALL,
)


def is_database_url(value: str) -> bool:
    """Whether SQLAlchemy's make_url accepts ``value`` (a driver name, ``://``, an integer port)."""
    match = _DATABASE_URL.match(value)
    if match is None:
        return False
    port = match.group("port")
    if port is None:
        return True
    try:
        int(port)  # as make_url converts it ("" is refused too)
    except ValueError:
        return False
    return True


# Runs older than this are pruned (their observations with them). Every run stores the current
# and the previous period, so 731 days of runs keep at least two years of every KPI's period
# values; the standards history and each metric's latest run and latest value are never pruned.
DEFAULT_RETENTION = "731d"
MAX_RETENTION = timedelta(days=36600)


def parse_retention(value: str) -> timedelta:
    retention = parse_duration(value, maximum=MAX_RETENTION)
    if retention < timedelta(days=1):
        raise ValueError(f"retention {value!r} is shorter than a day")
    return retention


@dataclass(kw_only=True)
class StoreSection(DatabaseSection):
    retention: str = setting(text(parse_retention), DEFAULT_RETENTION)


def _currency(value: str) -> None:
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise ValueError(f"invalid currency {value!r}: expected an ISO 4217 code of three capital letters, e.g. EUR")


def _timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {value!r}") from None


def _leader_poll(value: str) -> None:
    if parse_duration(value).total_seconds() > 60:
        raise ValueError(f"{value!r} is longer than 60s: a dead leader must be replaced within a minute")


def _period(value: str) -> None:
    if not is_valid_period(value):
        raise ValueError(f"unknown period {value!r}: expected {PERIOD_HELP}")


@dataclass(kw_only=True)
class ServiceSection:
    host: str = setting(text(), "127.0.0.1")
    port: int = setting(integer(ge=0, le=65535), 9632)
    timezone: str = setting(text(_timezone), "UTC")
    plugins_dir: str | None = setting(text(), None)
    as_of: datetime | None = setting(moment(), None)  # fixed "now" for reproducible runs; default: the wall clock
    misfire_grace: str = setting(text(parse_duration), "10m")
    # How often a standby instance tries to take over scheduling (PostgreSQL store), and the
    # leader checks it still holds the lock: a dead leader is replaced within this time.
    leader_poll: str = setting(text(_leader_poll), "15s")
    # ISO 4217 code of the reporting currency that amounts are in (dashboards, alert texts);
    # None: neutral amounts. Family names never include it (docs/operations.md).
    currency: str | None = setting(text(_currency), None)
    standards_file: str | None = setting(text(), None)  # imported by `serve` at start and on every reload


@dataclass(kw_only=True)
class WebSection:
    """The HTTP server of `crmmetrics serve` (crmmetrics.serve.server)."""

    config_file: str | None = setting(text(), None)  # exporter-toolkit web configuration: TLS, basic auth, headers
    allowed_hosts: list[str] = setting(strings(), factory=list)  # Host names answered on loopback, besides localhost
    threads: int = setting(integer(ge=1, le=512), 16)  # worker threads: requests served at once
    backlog: int = setting(integer(ge=16, le=65535), 1024)  # connections the kernel queues before accept
    timeout: str = setting(text(parse_duration), "10s")  # a connection idle (or sending a request) this long is closed


@dataclass(kw_only=True)
class LoggingSection:
    level: str = setting(choice(("DEBUG", "INFO", "WARNING", "ERROR"), "level"), "INFO")
    format: str = setting(choice(("text", "json"), "format"), "text")


@dataclass(kw_only=True)
class ScheduleSection:
    every: str | None = setting(text(), None)
    cron: str | None = setting(text(), None)

    def check(self) -> None:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of 'every' or 'cron'")
        if self.every is not None:
            parse_duration(self.every)
        if self.cron is not None:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(self.cron, timezone="UTC")
            except ValueError as exc:
                raise ValueError(f"invalid cron expression {self.cron!r}: {exc}") from None

    def to_schedule(self) -> Schedule:
        return Schedule(every=self.every, cron=self.cron)


@dataclass(kw_only=True)
class MetricSection:
    enabled: bool = setting(boolean(), True)
    schedule: ScheduleSection | None = setting(section(ScheduleSection), None)
    period: str | None = setting(text(_period), None)
    timeout: str | None = setting(text(parse_duration), None)
    params: dict[str, Any] = setting(table(), factory=dict)


# The kinds of [kpis.KEY] table: "sql" (one query), "measure" (the KPI kit's declarative measure:
# an aggregate of a column of a canonical table, with filters) and "ratio" (numerator /
# denominator: two SQL queries as text, or two measures as tables).
KPI_KINDS = ("sql", "measure", "ratio")


def _name(value: str) -> None:
    if not value.strip():
        raise ValueError("the name is empty")


def _unit(value: str) -> None:
    if value not in UNITS:
        raise ValueError(f"unknown unit {value!r}: expected one of {', '.join(UNITS)}")


def _dimensions(value: list[str]) -> None:
    for dimension in value:
        if not KEY_PATTERN.match(dimension):
            raise ValueError(f"dimension {dimension!r} must be lower_snake_case")
        if dimension in RESERVED_LABELS or dimension == "value":
            raise ValueError(
                f"dimension {dimension!r} is a name crmmetrics reserves (value, {', '.join(sorted(RESERVED_LABELS))}): "
                "rename the column"
            )
    if len(set(value)) != len(value):
        raise ValueError("a dimension is listed twice")


def _needs(value: list[str]) -> None:
    for need in value:
        Need.parse(need)


@dataclass(kw_only=True)
class KpiSection:
    """``[kpis.KEY]``: a KPI an admin defines in the config file (crmmetrics.compute.config_kpis).

    The fields of a MetricDefinition, and what the KPI computes: for ``kind = "sql"`` a query
    returning a ``value`` column and one column per declared dimension, with the period bounds
    bound as ``:start`` and ``:end`` (half-open: ``>= :start AND < :end``); for ``kind =
    "measure"`` a ``measure`` table (``crmmetrics.kpi.Measure.from_dict``: table, column, agg,
    filters, time), broken down by ``dimensions``; for ``kind = "ratio"`` a ``numerator`` and a
    ``denominator``, both queries or both measures. ``standard``: the KPI's default standard
    (the fields of a ``[standards.KEY]`` table), checked with the registry in crmmetrics.compute.config_kpis.
    """

    kind: str = setting(choice(KPI_KINDS, "kind"), "sql")
    name: str = setting(text(_name))
    description: str = setting(text(), "")
    formula: str = setting(text(), "")  # in words or symbols, for people (metrics explain, the KPI page)
    source: str = setting(text(), "")  # where the definition comes from (a book, a policy), as plugins cite theirs
    process: Process = setting(choice(Process, "process"))
    perspective: Perspective = setting(choice(Perspective, "perspective"))
    value_lens: ValueLens = setting(choice(ValueLens, "value lens"))
    unit: str = setting(text(_unit))
    direction: Direction = setting(choice(Direction, "direction"))
    period: str = setting(text(_period), "month")
    schedule: ScheduleSection | None = setting(section(ScheduleSection), None)  # None: derived from the period, as for plugin KPIs
    timeout: str | None = setting(text(parse_duration), None)
    dimensions: list[str] = setting(strings(_dimensions), factory=list)
    # Source inputs without which there is no value (the no-data rule, crmmetrics.core.inputs); None:
    # the canonical tables the query reads, found by SQLite's own parser (crmmetrics.compute.config_kpis).
    needs: list[str] | None = setting(strings(_needs), None)
    sql: str | None = setting(text(), None)  # kind "sql"
    measure: dict[str, Any] | None = setting(table(), None)  # kind "measure": {table, column, agg, filters, time}
    # kind "ratio": two queries like sql, or two measures; value = numerator / denominator
    numerator: str | dict[str, Any] | None = setting(text_or_table(), None)
    denominator: str | dict[str, Any] | None = setting(text_or_table(), None)
    standard: dict[str, Any] | None = setting(table(), None)  # the default standard: target, red, green, weight, ...

    @property
    def declarative(self) -> bool:
        """Computed by the KPI kit (a measure, or a ratio of measures), not by SQL as written."""
        return self.kind == "measure" or (self.kind == "ratio" and isinstance(self.numerator, dict))

    def check(self) -> None:
        if self.kind != "measure" and self.measure is not None:
            raise ValueError(f'measure belongs to kind "measure"; kind "{self.kind}" does not read it')
        if self.kind == "sql":
            if not (self.sql or "").strip():
                raise ValueError('kind "sql" needs sql = "SELECT ... AS value ..."')
            if self.numerator is not None or self.denominator is not None:
                raise ValueError('numerator and denominator belong to kind "ratio"; kind "sql" has one query, sql')
        if self.kind == "measure":
            if self.sql is not None or self.numerator is not None or self.denominator is not None:
                raise ValueError('kind "measure" is declared by measure = { table = ..., ... }, not by sql, numerator or denominator')
            if self.measure is None:
                raise ValueError('kind "measure" needs measure = { table = "orders", column = "net_revenue", agg = "sum" }')
        if self.kind == "ratio":
            if self.sql is not None:
                raise ValueError('kind "ratio" has two queries, numerator and denominator, not sql')
            for name in ("numerator", "denominator"):
                part = getattr(self, name)
                if part is None or (isinstance(part, str) and not part.strip()):
                    raise ValueError(
                        f'kind "ratio" needs {name} = "SELECT ... AS value ..." or {name} = {{ table = ..., column = ..., agg = ... }}'
                    )
            if isinstance(self.numerator, str) != isinstance(self.denominator, str):
                raise ValueError(
                    'kind "ratio": numerator and denominator are both SQL queries (text) or both measures (tables), not one of each'
                )


def _kpi_key(key: str) -> None:
    if not KEY_PATTERN.match(key):
        raise ValueError(f"KPI key {key!r} must be lower_snake_case (a letter, then letters, digits, _)")


@dataclass(kw_only=True)
class ConfigModel:
    """The whole file, as parsed (crmmetrics.core.config_fields): one table per section."""

    source: DatabaseSection = setting(section(DatabaseSection))
    store: StoreSection = setting(section(StoreSection))
    service: ServiceSection = setting(section(ServiceSection), factory=ServiceSection)
    logging: LoggingSection = setting(section(LoggingSection), factory=LoggingSection)
    web: WebSection = setting(section(WebSection), factory=WebSection)
    metrics: dict[str, MetricSection] = setting(sections(MetricSection), factory=dict)
    kpis: dict[str, KpiSection] = setting(sections(KpiSection, _kpi_key), factory=dict)


@dataclass(frozen=True)
class MetricSettings:
    """The effective settings of one metric: its definition's defaults overridden by config."""

    enabled: bool
    schedule: Schedule
    period: str
    timeout_seconds: float
    params: dict[str, Any]


@dataclass
class Config:
    """A validated configuration and the file it came from."""

    path: Path | None
    model: ConfigModel

    @property
    def source_url(self) -> str:
        return self.model.source.url

    @property
    def store_url(self) -> str:
        return self.model.store.url

    @property
    def retention(self) -> timedelta:
        return parse_retention(self.model.store.retention)

    @property
    def service(self) -> ServiceSection:
        return self.model.service

    @property
    def plugins_dir(self) -> Path | None:
        if self.service.plugins_dir is None:
            return None
        return self._relative(self.service.plugins_dir)

    @property
    def standards_file(self) -> Path | None:
        return None if self.service.standards_file is None else self._relative(self.service.standards_file)

    @property
    def web_config_file(self) -> Path | None:
        return None if self.model.web.config_file is None else self._relative(self.model.web.config_file)

    def _relative(self, value: str) -> Path:
        path = Path(value).expanduser()
        if not path.is_absolute() and self.path is not None:
            path = self.path.parent / path
        return path

    def metric_settings(self, definition: MetricDefinition) -> MetricSettings:
        section = self.model.metrics.get(definition.key, MetricSection())
        params = definition.default_params()
        for name, value in section.params.items():
            params[name] = definition.parameter(name).coerce(value)
        return MetricSettings(
            enabled=section.enabled,
            schedule=section.schedule.to_schedule() if section.schedule else definition.schedule_for(section.period or definition.period),
            period=section.period or definition.period,
            timeout_seconds=(
                parse_duration(section.timeout).total_seconds() if section.timeout else definition.timeout_seconds
            ),
            params=params,
        )

    def for_plugins(self, definitions: Iterable[MetricDefinition]) -> PluginConfig:
        """A frozen copy for ``crmmetrics_validate_config``, with the settings of ``definitions``
        (a metric whose parameters do not coerce is left out: that problem is reported already)."""
        settings = {}
        for definition in definitions:
            try:
                settings[definition.key] = self.metric_settings(definition)
            except ValueError:
                continue
        service = self.service
        return PluginConfig(
            path=self.path,
            source_url=self.source_url,
            store_url=self.store_url,
            service=ServiceSettings(
                host=service.host,
                port=service.port,
                timezone=service.timezone,
                plugins_dir=self.plugins_dir,
                as_of=service.as_of,
                misfire_grace=service.misfire_grace,
                currency=service.currency,
            ),
            settings=MappingProxyType(settings),
        )

    def validate_against(self, registry: Any) -> None:
        """Check the [metrics.*] tables against the loaded metric definitions (every problem at once)."""
        raise_all(self.problems_against(registry))

    def problems_against(self, registry: Any) -> list[str]:
        where = self.path or "<config>"
        problems = []
        for key, section in self.model.metrics.items():
            if key not in registry:
                problems.append(f"{where}: metrics.{key}: unknown metric {key!r} (see 'crmmetrics metrics list')")
                continue
            definition = registry.get(key)
            for name, value in section.params.items():
                try:
                    definition.parameter(name).coerce(value)
                except KeyError as exc:
                    problems.append(f"{where}: metrics.{key}.params.{name}: {exc.args[0]}")
                except ValueError as exc:
                    problems.append(f"{where}: metrics.{key}.params.{name}: {exc}")
        return problems


def raise_all(problems: list[str]) -> None:
    """One ConfigError carrying every problem, one per line (the first line stands alone)."""
    if problems:
        raise ConfigError("\n".join(problems))


_URL_PASSWORD = re.compile(r"(://[^:/@?]*:).*@(?=[^@]*$)", re.DOTALL)
_QUERY_SECRET = re.compile(r"([?&][^=&]*(?:password|passwd|pwd|secret|token)[^=&]*=)[^&]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """A database URL with every password in it replaced by ***.

    Covers ``user:pw@``, a user-less ``:pw@`` and query parameters such as ``password=``,
    ``sslpassword=`` (anything named like a password, secret or token). Works on text that is
    not a valid URL too, since it is used on what the user typed. The part between ``:`` and
    the last ``@`` is taken as the password: a raw ``@`` inside it is hidden with it.
    """
    url = _URL_PASSWORD.sub(r"\1***@", url)
    return _QUERY_SECRET.sub(r"\1***", url)


# In free text a URL ends at white space; a query value may be followed by ": message".
_TEXT_URL_PASSWORD = re.compile(r"([a-z][a-z0-9+.-]*://[^\s:/@]*:)\S*@", re.IGNORECASE)
_TEXT_QUERY_SECRET = re.compile(r"([?&][^=&\s]*(?:password|passwd|pwd|secret|token)[^=&\s]*=)[^&\s]*?(?=:?(?:\s|$|&))", re.IGNORECASE)


def redact_text(text: str) -> str:
    """Free text (an error, a log line) with the passwords of any URLs in it replaced by ***."""
    return _TEXT_QUERY_SECRET.sub(r"\1***", _TEXT_URL_PASSWORD.sub(r"\1***@", text))


def _interpolate(value: Any, where: str, key: str) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"{where}: {key}: environment variable {name} is not set")
            return os.environ[name]

        return _ENV_REF.sub(replace, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, where, f"{key}.{k}" if key else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, where, key) for v in value]
    return value


#: URL prefixes of the file-based databases, whose relative paths are relative to the config file.
_FILE_URL_PREFIXES = ("sqlite:///", "duckdb:///", "chdb:///")


def resolve_file_url(url: str, base: Path) -> str:
    """Make a relative SQLite, DuckDB or chdb path relative to ``base`` (the config file's folder, so a
    config works from any cwd)."""
    for prefix in _FILE_URL_PREFIXES:
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url[len(prefix) :] not in ("", ":memory:"):
            return prefix + str((base / url[len(prefix) :]).resolve())
    return url


def parse_config(data: dict[str, Any], path: Path | None) -> Config:
    where = str(path) if path else "<config>"
    data = _interpolate(data, where, "")
    try:
        model = parse_table(ConfigModel, data)
    except TableProblems as exc:
        raise_all([f"{where}: {key}: {message}" for key, message in exc.problems])
    if path is not None:
        base = path.parent
        model.source.url = resolve_file_url(model.source.url, base)
        model.store.url = resolve_file_url(model.store.url, base)
    return Config(path=path, model=model)


def find_config_path(option: str | Path | None) -> Path:
    """The config file named by --config, else $CRMMETRICS_CONFIG, else ./crmmetrics.toml."""
    value = option or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_NAME
    return Path(value)


def load_config(option: str | Path | None = None) -> Config:
    path = find_config_path(option)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); save the file as UTF-8") from None
    except FileNotFoundError:
        hint = "" if option or os.environ.get(CONFIG_ENV) else f" (pass --config or set {CONFIG_ENV})"
        raise ConfigError(f"{path}: config file not found{hint}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, path)


def effective_config(config: Config, registry: Any) -> dict[str, Any]:
    """Everything that is in force, defaults included, secrets redacted (for `config show`)."""
    data = plain(config.model)
    data["source"]["url"] = redact_url(data["source"]["url"])
    data["store"]["url"] = redact_url(data["store"]["url"])
    metrics = {}
    for definition in registry:
        settings = config.metric_settings(definition)
        metrics[definition.key] = {
            "enabled": settings.enabled,
            "schedule": {"every": settings.schedule.every} if settings.schedule.every else {"cron": settings.schedule.cron},
            "period": settings.period,
            "timeout_seconds": settings.timeout_seconds,
            "params": settings.params,
        }
    data["metrics"] = metrics
    return data


def _multiline(value: str) -> Any:
    """A multi-line TOML string starting on its own line (TOML drops that first newline)."""
    import tomlkit

    if "'''" in value:
        return tomlkit.string(value, multiline=True)
    from tomlkit.items import String, StringType, Trivia

    return String(StringType.MLL, value, "\n" + value, Trivia())


def add_kpi(path: Path, key: str, fields: dict[str, Any], validate: Callable[[Config], Any] | None = None) -> None:
    """Write ``[kpis.KEY]`` with ``fields`` into the config file, keeping its comments and layout.

    The edited text is validated in full (with ``validate``, e.g. crmmetrics.serve.app.check_config,
    which runs the query against the source) before it replaces the file, atomically.
    """
    import tomlkit  # only the commands that edit the file need it

    text = path.read_text(encoding="utf-8")
    document = tomlkit.parse(text)
    kpis = document.setdefault("kpis", tomlkit.table(is_super_table=True))
    if key in kpis:
        raise ConfigError(f"{path}: kpis.{key}: already defined in the file: edit it there")
    table = tomlkit.table()
    for name, value in fields.items():
        if isinstance(value, str) and "\n" in value:
            value = _multiline(value.strip("\n") + "\n")
        elif isinstance(value, dict):
            inline = tomlkit.inline_table()
            inline.update(value)
            value = inline
        table[name] = value
    kpis[key] = table
    new_text = tomlkit.dumps(document)
    config = parse_config(tomllib.loads(new_text), path)
    if validate is not None:
        validate(config)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(new_text, encoding="utf-8")
    os.replace(temporary, path)


def edit_metric(
    path: Path, key: str, changes: dict[str, Any], registry: Any, validate: Callable[[Config], Any] | None = None
) -> None:
    """Apply ``changes`` to ``[metrics.KEY]`` keeping the file's comments and layout.

    ``changes`` maps a dotted name under the metric (``enabled``, ``schedule``, ``params.NAME``)
    to its new value. The edited text is validated in full before it replaces the file (with
    ``validate``, e.g. crmmetrics.serve.app.check_config: exactly as ``config check``), and the
    replacement is atomic, so a bad change leaves the file as it was.
    """
    import tomlkit  # only the commands that edit the file need it

    text = path.read_text(encoding="utf-8")
    document = tomlkit.parse(text)
    metrics = document.setdefault("metrics", tomlkit.table(is_super_table=True))
    if key not in metrics:
        metrics[key] = tomlkit.table()
    table = metrics[key]
    for name, value in changes.items():
        *parents, leaf = name.split(".")
        target = table
        for parent in parents:
            if parent not in target:
                target[parent] = tomlkit.inline_table()
            target = target[parent]
        if isinstance(value, dict):
            inline = tomlkit.inline_table()
            inline.update(value)
            value = inline
        target[leaf] = value
    new_text = tomlkit.dumps(document)
    config = parse_config(tomllib.loads(new_text), path)
    config.validate_against(registry)
    if key in config.model.metrics:
        config.metric_settings(registry.get(key))
    if validate is not None:
        validate(config)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(new_text, encoding="utf-8")
    os.replace(temporary, path)
