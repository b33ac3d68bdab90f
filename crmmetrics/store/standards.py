"""Standards: what good looks like for a metric (target, red/green thresholds, weight, owner).

A metric with a standard is a KPI and has a place on the scorecard.

Where standards live
    Plugins ship defaults through the ``crmmetrics_standards`` hook (``StandardDefault``). The
    admin overrides them with ``crmmetrics standards set`` or by importing a standards file
    (``crmmetrics standards import config/standards.toml``). Both end up in one append-only
    store table, ``standard_changes``: every version of every standard, with who changed it,
    when, through what, and from when it applies (``valid_from``). Nothing is ever updated or
    deleted there, so the standard in force at any past moment can be reconstructed and a past
    scorecard explained; a second "current standards" table would only repeat the newest rows.
    Plugin defaults are recorded there too (``changed_by="plugin:NAME"``) whenever the service
    starts with a default that differs from the one last recorded, so a default that changes
    with a plugin upgrade is explained the same way.

Which standard is in force for a metric (or one dimension value)
    The admin's latest version whose ``valid_from`` has passed (latest ``valid_from``, then
    latest change); if the admin never set one, the plugin default last recorded (unless the
    plugin stopped shipping it). The store file is the one source of truth: the standards file
    is only read by ``standards import``.

Key of a standard
    The metric key, or the metric key with dimension values in Prometheus label style for a
    standard narrowed to them: ``vc_nps`` or ``sd_segment_revenue_share{segment=Premium}``
    (quote values containing commas or braces: ``{segment="A, B"}``).
"""

from __future__ import annotations

import getpass
import json
import logging
import math
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pluggy
from pydantic import NaiveDatetime
from sqlalchemy import func
from sqlmodel import Field, SQLModel, select

from crmmetrics.compute.plugins import call_each
from crmmetrics.core.errors import ConfigError, PluginError
from crmmetrics.core.periods import utcnow
from crmmetrics.core.vocabulary import Direction
from .store import CHANGE_MARKERS, Store, dimensions_key

log = logging.getLogger("crmmetrics.standards")

USER_ENV = "CRMMETRICS_USER"

# How a standard's target is set: a fixed number, derived from the metric's previous-period
# value (``improvement`` better, e.g. 0.05 = 5% better), or a published benchmark the plugin
# ships (``benchmark`` with its ``source``).
TARGET_RULES = ("fixed", "previous", "benchmark")


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def threshold_direction(red: float, green: float) -> Direction:
    """The direction a pair of thresholds implies: green above red means higher is better."""
    return Direction.HIGHER_IS_BETTER if green > red else Direction.LOWER_IS_BETTER


def direction_problem(red: float, green: float, direction: Direction | str) -> str | None:
    """What is wrong with thresholds red and green for a metric of ``direction``, or None."""
    direction = Direction(direction)
    if red == green or threshold_direction(red, green) == direction:
        return None
    wanted = "below" if direction == Direction.HIGHER_IS_BETTER else "above"
    return f"red {red:g} must be {wanted} green {green:g} for a metric that is {direction.value.replace('_', ' ')}"


def better_or_equal(a: float, b: float, direction: Direction) -> bool:
    """Is ``a`` at least as good as ``b`` for this direction?"""
    return a >= b if direction == Direction.HIGHER_IS_BETTER else a <= b


@dataclass(frozen=True)
class StandardDefault:
    """A plugin's default standard for one metric (optionally one dimension value).

    ``target`` is the fixed target, or None when the target is derived:
    ``target_rule="previous"`` sets it ``improvement`` better than the previous period's
    value (0.05 = 5% better; for a lower-is-better metric that is 5% lower);
    ``target_rule="benchmark"`` sets it to ``benchmark`` (cite it in ``source``).
    ``red`` and ``green`` are the thresholds: a value at or beyond ``green`` is green, at or
    beyond ``red`` is red, amber in between. Their order gives the direction (green above red:
    higher is better) and must agree with the metric's direction; both lie at or before the
    target (a target is never easier than green).
    ``dimensions`` narrows the standard to one dimension value, e.g. ``{"segment": "Premium"}``.
    """

    metric: str
    target: float | None
    red: float
    green: float
    weight: float = 1.0
    owner: str = ""
    dimensions: Mapping[str, str] = field(default_factory=dict)
    target_rule: str = "fixed"
    improvement: float = 0.0
    benchmark: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "dimensions", dict(self.dimensions))
        object.__setattr__(self, "red", _number("red", self.red))
        object.__setattr__(self, "green", _number("green", self.green))
        object.__setattr__(self, "weight", _number("weight", self.weight))
        object.__setattr__(self, "improvement", _number("improvement", self.improvement))
        if self.target is not None:
            object.__setattr__(self, "target", _number("target", self.target))
        if self.benchmark is not None:
            object.__setattr__(self, "benchmark", _number("benchmark", self.benchmark))
        problem = self.problem()
        if problem:
            raise ValueError(f"standard for {self.label}: {problem}")

    @property
    def label(self) -> str:
        """The metric key, with the dimension value if the standard is narrowed to one."""
        if not self.dimensions:
            return self.metric
        return self.metric + "{" + ",".join(f"{k}={v}" for k, v in sorted(self.dimensions.items())) + "}"

    @property
    def direction(self) -> Direction:
        return threshold_direction(self.red, self.green)

    def problem(self, direction: Direction | str | None = None) -> str | None:
        """What is wrong with this standard (for a metric of ``direction``, if given), or None."""
        if self.red == self.green:
            return f"red and green thresholds are both {self.red:g}; they must differ"
        if self.weight < 0:
            return f"weight must be 0 or more, got {self.weight:g}"
        if direction is not None and (wrong := direction_problem(self.red, self.green, direction)):
            return wrong
        if self.target_rule not in TARGET_RULES:
            return f"target_rule must be one of {', '.join(TARGET_RULES)}, got {self.target_rule!r}"
        if self.target_rule == "fixed" and self.target is None:
            return "a fixed target needs a number (or set target_rule to previous or benchmark)"
        if self.target_rule == "previous":
            if self.target is not None:
                return "a target derived from the previous period takes no fixed target"
            if self.improvement <= -1:
                return f"improvement must be above -1 (a fraction, 0.05 = 5% better), got {self.improvement:g}"
        if self.target_rule == "benchmark":
            if self.benchmark is None:
                return "a benchmark target needs the benchmark number"
            if self.target is not None:
                return "a benchmark target takes no fixed target"
        fixed = self.fixed_target
        if fixed is not None and not better_or_equal(fixed, self.green, self.direction):
            side = "above" if self.direction == Direction.HIGHER_IS_BETTER else "below"
            return f"target {fixed:g} must be at or {side} the green threshold {self.green:g} (red {self.red:g})"
        return None

    @property
    def fixed_target(self) -> float | None:
        """The target when it does not depend on the data (fixed or benchmark), else None."""
        if self.target_rule == "benchmark":
            return self.benchmark
        return self.target if self.target_rule == "fixed" else None

    def target_for(self, previous: float | None) -> float | None:
        """The target in force, given the metric's previous-period value (None: no target)."""
        if self.target_rule != "previous":
            return self.fixed_target
        if previous is None:
            return None
        step = abs(previous) * self.improvement
        return previous + step if self.direction == Direction.HIGHER_IS_BETTER else previous - step


# --- keys and target text ---------------------------------------------------------------------

_KEY = re.compile(r"^([a-z][a-z0-9_]*)(?:\{(.*)\})?$", re.DOTALL)
_LABEL = re.compile(r'\s*([a-z][a-z0-9_]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,"]*?)\s*(?:,|$)')
_TARGET = re.compile(r"^previous\s*(?:([+-])\s*(\d+(?:\.\d+)?)\s*%)?$")


def parse_key(text: str) -> tuple[str, dict[str, str]]:
    """``vc_nps`` -> ("vc_nps", {}); ``x{segment=Premium}`` -> ("x", {"segment": "Premium"})."""
    match = _KEY.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a standard key: expected METRIC or METRIC{{dimension=value}}")
    metric, body = match.group(1), match.group(2)
    dimensions: dict[str, str] = {}
    position = 0
    body = (body or "").strip()
    while position < len(body):
        label = _LABEL.match(body, position)
        if not label or label.end() == position:
            raise ValueError(f"{text!r}: cannot read the dimensions {body!r}: expected name=value, ...")
        name, value = label.group(1), label.group(2)
        if value.startswith('"'):
            value = json.loads(value)
        if name in dimensions:
            raise ValueError(f"{text!r}: dimension {name!r} given twice")
        dimensions[name] = value
        position = label.end()
    return metric, dimensions


def format_key(metric: str, dimensions: Mapping[str, str]) -> str:
    """The inverse of ``parse_key``."""
    if not dimensions:
        return metric
    parts = []
    for name, value in sorted(dimensions.items()):
        plain = value and value == value.strip() and not any(c in value for c in ',{}"=\\')
        parts.append(f"{name}={value if plain else json.dumps(value)}")
    return metric + "{" + ",".join(parts) + "}"


def parse_target(value: object) -> dict[str, Any]:
    """A target as written by the admin: a number, ``previous``, ``previous+5%`` or ``benchmark``.

    Returns the StandardDefault fields it sets (target, target_rule, improvement).
    """
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "benchmark":
            return {"target": None, "target_rule": "benchmark", "improvement": 0.0}
        match = _TARGET.match(text)
        if match:
            improvement = float(match.group(2) or 0) / 100
            return {"target": None, "target_rule": "previous", "improvement": -improvement if match.group(1) == "-" else improvement}
        try:
            value = float(text)
        except ValueError:
            raise ValueError(
                f"expected a number, 'previous', 'previous+N%' (N% better than the previous period) or 'benchmark', got {value!r}"
            ) from None
    return {"target": _number("target", value), "target_rule": "fixed", "improvement": 0.0}


def describe_target(spec: StandardDefault) -> float | str:
    """The target as the admin writes it (the inverse of ``parse_target``)."""
    if spec.target_rule == "previous":
        if spec.improvement == 0:
            return "previous"
        return f"previous{'+' if spec.improvement > 0 else '-'}{abs(spec.improvement) * 100:g}%"
    if spec.target_rule == "benchmark":
        return "benchmark"
    assert spec.target is not None
    return spec.target


def parse_number(name: str, value: object) -> float:
    """A finite number from text or a number; ValueError naming ``name`` otherwise."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"{name} must be a number, got {value!r}") from None
    return _number(name, value)


def current_user(by: str | None = None) -> str:
    """Who is making a change: ``--by``, else $CRMMETRICS_USER, else the operating-system user."""
    if by:
        return by
    if os.environ.get(USER_ENV):
        return os.environ[USER_ENV]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (e.g. an anonymous container user)
        return f"uid:{os.getuid()}"


# --- the store table --------------------------------------------------------------------------

ADMIN = "admin"
DEFAULT = "default"


class StandardChange(SQLModel, table=True):
    """One version of one standard: what it says, from when, who set it, when and how.

    Append-only (see the module docs). ``origin`` is ``admin`` (CLI or standards file) or
    ``default`` (a plugin's crmmetrics_standards); ``retired`` marks a plugin default that its
    plugin no longer ships.
    """

    __tablename__ = "standard_changes"
    id: int | None = Field(default=None, primary_key=True)
    metric_key: str = Field(index=True)
    dimensions: str = "{}"  # canonical JSON, as in observations
    origin: str
    target: float | None = None
    target_rule: str = "fixed"
    improvement: float = 0.0
    benchmark: float | None = None
    red: float
    green: float
    weight: float = 1.0
    owner: str = ""
    source: str = ""
    retired: bool = False
    valid_from: NaiveDatetime
    changed_by: str
    changed_at: NaiveDatetime
    via: str = ""

    def spec(self) -> StandardDefault:
        return StandardDefault(
            metric=self.metric_key,
            dimensions=json.loads(self.dimensions),
            target=self.target,
            target_rule=self.target_rule,
            improvement=self.improvement,
            benchmark=self.benchmark,
            red=self.red,
            green=self.green,
            weight=self.weight,
            owner=self.owner,
            source=self.source,
        )


def _in_force_count() -> Any:
    # Moves when a change is written that is already in force, and when a scheduled one comes
    # into force: either can change what the exporter and the page show.
    return (
        select(func.count(StandardChange.id)).where(StandardChange.valid_from <= utcnow()).scalar_subquery()
    )


CHANGE_MARKERS.append(_in_force_count)


def _change_row(spec: StandardDefault, **provenance: Any) -> StandardChange:
    return StandardChange(
        metric_key=spec.metric,
        dimensions=dimensions_key(spec.dimensions),
        target=spec.target,
        target_rule=spec.target_rule,
        improvement=spec.improvement,
        benchmark=spec.benchmark,
        red=spec.red,
        green=spec.green,
        weight=spec.weight,
        owner=spec.owner,
        source=spec.source,
        **provenance,
    )


@dataclass(frozen=True)
class Standard:
    """A standard in force: its specification and where it came from."""

    spec: StandardDefault
    origin: str  # ADMIN or DEFAULT
    valid_from: datetime
    changed_by: str
    changed_at: datetime
    via: str
    change_id: int

    @property
    def metric(self) -> str:
        return self.spec.metric

    @property
    def dimensions(self) -> dict[str, str]:
        return dict(self.spec.dimensions)

    @property
    def key(self) -> str:
        return format_key(self.spec.metric, self.spec.dimensions)

    @classmethod
    def from_change(cls, change: StandardChange) -> Standard:
        return cls(
            spec=change.spec(),
            origin=change.origin,
            valid_from=change.valid_from,
            changed_by=change.changed_by,
            changed_at=change.changed_at,
            via=change.via,
            change_id=change.id or 0,
        )


def _all_changes(store: Store) -> list[StandardChange]:
    with store.session() as session:
        return list(session.exec(select(StandardChange).order_by(StandardChange.id)).all())


def resolve(changes: Iterable[StandardChange], at: datetime) -> list[Standard]:
    """The standards in force at ``at`` (naive UTC), given every recorded change, sorted by key."""
    admin: dict[tuple[str, str], StandardChange] = {}
    default: dict[tuple[str, str], StandardChange] = {}
    for change in changes:
        key = (change.metric_key, change.dimensions)
        if change.origin == DEFAULT:
            if key not in default or change.id > default[key].id:
                default[key] = change
        elif change.valid_from <= at:
            best = admin.get(key)
            if best is None or (change.valid_from, change.id) > (best.valid_from, best.id):
                admin[key] = change
    chosen = {key: change for key, change in default.items() if not change.retired}
    chosen.update(admin)
    # The whole-metric standard first, then its dimension values.
    order = sorted(chosen, key=lambda key: (key[0], key[1] != "{}", key[1]))
    return [Standard.from_change(chosen[key]) for key in order]


def standards_in_force(store: Store, at: datetime | None = None) -> list[Standard]:
    """The standards in force now (or at ``at``, naive UTC), sorted by key."""
    return resolve(_all_changes(store), at or utcnow())


def standard_history(store: Store, metric: str, dimensions: Mapping[str, str]) -> list[StandardChange]:
    """Every recorded change of one standard, oldest first."""
    with store.session() as session:
        statement = (
            select(StandardChange)
            .where(StandardChange.metric_key == metric, StandardChange.dimensions == dimensions_key(dimensions))
            .order_by(StandardChange.id)
        )
        return list(session.exec(statement).all())


# --- validation against the registry ---------------------------------------------------------


def check_against(spec: StandardDefault, registry: Any) -> str | None:
    """What is wrong with ``spec`` for the loaded metric definitions, or None."""
    if spec.metric not in registry:
        return f"unknown metric {spec.metric!r} (see 'crmmetrics metrics list')"
    definition = registry.get(spec.metric)
    for name in spec.dimensions:
        if name not in definition.dimensions:
            known = ", ".join(definition.dimensions) or "none"
            return f"metric {spec.metric} has no dimension {name!r} (its dimensions: {known})"
    return spec.problem(definition.direction)


# --- plugin defaults --------------------------------------------------------------------------


def collect_defaults(pm: pluggy.PluginManager, registry: Any) -> dict[tuple[str, str], tuple[StandardDefault, str]]:
    """The plugins' default standards by (metric, dimensions key), with the plugin of each.

    A default for a metric that no loaded plugin defines is skipped (its plugin may be blocked);
    anything else wrong fails loudly with a PluginError naming the plugin.
    """
    found: dict[tuple[str, str], tuple[StandardDefault, str]] = {}
    for plugin, defaults in call_each(pm, "crmmetrics_standards"):
        for default in defaults or ():
            if not isinstance(default, StandardDefault):
                raise PluginError(f"plugin {plugin} returned {default!r} from crmmetrics_standards, not a StandardDefault")
            if default.metric not in registry:
                log.debug("plugin %s: skipping the default standard for %s: no such metric is loaded", plugin, default.label)
                continue
            problem = check_against(default, registry)
            if problem:
                raise PluginError(f"plugin {plugin}: default standard for {default.label}: {problem}")
            key = (default.metric, dimensions_key(default.dimensions))
            if key in found:
                raise PluginError(f"default standard for {default.label} is given by two plugins: {found[key][1]} and {plugin}")
            found[key] = (default, plugin)
    return found


def record_defaults(store: Store, defaults: Mapping[tuple[str, str], tuple[StandardDefault, str]]) -> int:
    """Record plugin defaults that differ from the ones last recorded; retire those gone.

    Returns the number of changes written (0 when nothing changed, the usual case).
    """
    latest: dict[tuple[str, str], StandardChange] = {}
    for change in _all_changes(store):
        if change.origin == DEFAULT:
            latest[(change.metric_key, change.dimensions)] = change
    now = utcnow()
    rows = []
    for key, (spec, plugin) in sorted(defaults.items()):
        last = latest.get(key)
        if last is None or last.retired or last.spec() != spec:
            rows.append(_change_row(spec, origin=DEFAULT, valid_from=now, changed_by=f"plugin:{plugin}", changed_at=now, via=f"plugin {plugin}"))
    for key, last in sorted(latest.items()):
        if key not in defaults and not last.retired:
            by = last.changed_by
            rows.append(_change_row(last.spec(), origin=DEFAULT, retired=True, valid_from=now, changed_by=by, changed_at=now, via="no longer shipped"))
    if rows:
        with store.session() as session:
            session.add_all(rows)
            session.commit()
    return len(rows)


def record_plugin_defaults(store: Store, pm: pluggy.PluginManager, registry: Any) -> int:
    """``record_defaults`` for the loaded plugins (called when the app opens its store)."""
    return record_defaults(store, collect_defaults(pm, registry))


# --- admin changes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AdminStandard:
    """A standard the admin asks for (from the CLI or a standards file)."""

    spec: StandardDefault
    valid_from: datetime | None = None  # None: from the moment it is recorded


def validate_admin_standards(wanted: Sequence[AdminStandard], registry: Any, where: str = "") -> None:
    """Refuse (ConfigError) a wanted standard the loaded metrics contradict; reads no store."""
    for item in wanted:
        problem = check_against(item.spec, registry)
        if problem:
            prefix = f"{where}standards.{item.spec.label}" if where else f"standard for {item.spec.label}"
            raise ConfigError(f"{prefix}: {problem}")


def apply_admin_standards(
    store: Store, registry: Any, wanted: Sequence[AdminStandard], *, changed_by: str, via: str, where: str = ""
) -> list[StandardChange]:
    """Validate every wanted standard, then record those that change something, in one transaction.

    A standard identical to the admin's one in force (same values, and the same ``valid_from``
    if one is given) is skipped. A version dated before the admin's version in force is refused:
    it could never apply. Nothing is written if any standard is invalid (ConfigError).
    Returns the changes written.
    """
    validate_admin_standards(wanted, registry, where)
    now = utcnow().replace(microsecond=0)  # whole seconds: what an exported file can say
    in_force = {(s.metric, dimensions_key(s.dimensions)): s for s in standards_in_force(store, now)}
    rows = []
    for item in wanted:
        current = in_force.get((item.spec.metric, dimensions_key(item.spec.dimensions)))
        unchanged = (
            current is not None
            and current.origin == ADMIN
            and current.spec == item.spec
            and (item.valid_from is None or item.valid_from == current.valid_from)
        )
        if (
            not unchanged
            and current is not None
            and current.origin == ADMIN
            and item.valid_from is not None
            and item.valid_from < current.valid_from
        ):
            # Effective dating: the latest valid_from that has passed wins, so this version could
            # only ever apply to the past, which would rewrite how past scorecards are explained.
            prefix = f"{where}standards.{item.spec.label}" if where else f"standard for {item.spec.label}"
            raise ConfigError(
                f"{prefix}: valid from {item.valid_from:%Y-%m-%d %H:%M:%S} is before the version in force "
                f"(valid from {current.valid_from:%Y-%m-%d %H:%M:%S}), so it would never apply"
            )
        if not unchanged:
            rows.append(
                _change_row(
                    item.spec, origin=ADMIN, valid_from=item.valid_from or now, changed_by=changed_by, changed_at=now, via=via
                )
            )
    if rows:
        with store.session() as session:
            session.add_all(rows)
            session.commit()
    return rows


# --- the standards file -----------------------------------------------------------------------

FILE_FIELDS = ("target", "red", "green", "weight", "owner", "source", "benchmark", "valid_from")


def to_naive_utc(value: date | datetime) -> datetime:
    """A TOML date or datetime (or an ISO text parsed to one) as naive UTC."""
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def parse_standard(key: str, table: Mapping[str, Any], where: str, registry: Any = None) -> AdminStandard:
    """One ``[standards.KEY]`` table -> AdminStandard; ConfigError naming ``where`` and the key.

    With the ``registry``, thresholds on the wrong side for the metric's direction are named
    as such (rather than as a target on the wrong side of them).
    """
    prefix = f"{where}standards.{key}"
    try:
        metric, dimensions = parse_key(key)
    except ValueError as exc:
        raise ConfigError(f"{prefix}: {exc}") from None
    if not isinstance(table, Mapping):
        raise ConfigError(f"{prefix}: expected a table with target, red and green")
    for name in table:
        if name not in FILE_FIELDS:
            raise ConfigError(f"{prefix}.{name}: unknown key (known: {', '.join(FILE_FIELDS)})")
    for name in ("target", "red", "green"):
        if name not in table:
            raise ConfigError(f"{prefix}.{name}: required key is missing")
    values: dict[str, Any] = {"metric": metric, "dimensions": dimensions}
    try:
        values.update(parse_target(table["target"]))
    except ValueError as exc:
        raise ConfigError(f"{prefix}.target: {exc}") from None
    for name in ("red", "green", "weight", "benchmark"):
        if name in table:
            try:
                values[name] = _number(name, table[name])
            except ValueError as exc:
                raise ConfigError(f"{prefix}.{name}: {exc}") from None
    for name in ("owner", "source"):
        if name in table:
            if not isinstance(table[name], str):
                raise ConfigError(f"{prefix}.{name}: expected text, got {table[name]!r}")
            values[name] = table[name]
    valid_from = table.get("valid_from")
    if valid_from is not None and not isinstance(valid_from, (date, datetime)):
        raise ConfigError(f"{prefix}.valid_from: expected a TOML date or date-time (e.g. 2026-07-01), got {valid_from!r}")
    if registry is not None and metric in registry:
        wrong = direction_problem(values["red"], values["green"], registry.get(metric).direction)
        if wrong:
            raise ConfigError(f"{prefix}: {wrong}")
    try:
        spec = StandardDefault(**values)
    except ValueError as exc:
        raise ConfigError(f"{prefix}: {str(exc).split(': ', 1)[-1]}") from None
    return AdminStandard(spec=spec, valid_from=to_naive_utc(valid_from) if valid_from is not None else None)


def load_standards_file(path: str | Path, registry: Any = None) -> list[AdminStandard]:
    """Read a standards file (``[standards.KEY]`` tables); ConfigError on the first problem."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: standards file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read standards file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = [name for name in data if name != "standards"]
    if unknown:
        raise ConfigError(f"{path}: {unknown[0]}: unknown key (a standards file has only [standards.KEY] tables)")
    tables = data.get("standards", {})
    return [parse_standard(key, table, f"{path}: ", registry) for key, table in tables.items()]


def dump_standards_file(standards: Iterable[Standard], titles: Mapping[str, str] | None = None) -> str:
    """A standards file with every standard given (``standards export``); importable as is."""
    import tomlkit

    document = tomlkit.document()
    document.add(tomlkit.comment("crmmetrics standards: edit, then `crmmetrics standards import FILE`."))
    document.add(tomlkit.comment("target: a number, \"previous\", \"previous+N%\" (N% better than the previous period) or"))
    document.add(tomlkit.comment("\"benchmark\" (with benchmark = N); red/green: thresholds; weight: in the scorecard."))
    def number(value: float) -> float | int:
        return int(value) if value.is_integer() else value

    container = tomlkit.table(is_super_table=True)
    for standard in standards:
        spec = standard.spec
        table = tomlkit.table()
        title = (titles or {}).get(spec.metric, "")
        origin = f"default from {standard.changed_by.removeprefix('plugin:')}" if standard.origin == DEFAULT else f"set by {standard.changed_by}"
        table.comment(f"{title + ', ' if title else ''}{origin}")
        target = describe_target(spec)
        table.add("target", number(target) if isinstance(target, float) else target)
        if spec.benchmark is not None:
            table.add("benchmark", number(spec.benchmark))
        table.add("red", number(spec.red))
        table.add("green", number(spec.green))
        table.add("weight", number(spec.weight))
        if spec.owner:
            table.add("owner", spec.owner)
        if spec.source:
            table.add("source", spec.source)
        if standard.origin == ADMIN:
            table.add("valid_from", standard.valid_from)
        container.add(standard.key, table)
    document.add("standards", container)
    return tomlkit.dumps(document)
