"""Standards: what good looks like for a metric (target, red/green thresholds, weight, owner).

A metric with a standard is a KPI and has a place on the scorecard. This module is the store's
side: the table of every version, which one is in force, and the admin's changes. What a
standard says and how its key is written is ``crmmetrics.standard``; the standards file is
``crmmetrics.standards_file``; the plugins' defaults are collected by
``crmmetrics.standard_defaults``.

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
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import NaiveDatetime
from sqlalchemy import func
from sqlmodel import Field, SQLModel, select

from crmmetrics.core.errors import ConfigError
from crmmetrics.core.periods import utcnow
from crmmetrics.core.standard import ADMIN, DEFAULT, AdminStandard, Standard, StandardDefault, check_against
from .store import Store, dimensions_key

USER_ENV = "CRMMETRICS_USER"


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

    def in_force(self) -> Standard:
        """This version as the standard in force."""
        return Standard(
            spec=self.spec(),
            origin=self.origin,
            valid_from=self.valid_from,
            changed_by=self.changed_by,
            changed_at=self.changed_at,
            via=self.via,
            change_id=self.id or 0,
        )


def in_force_count() -> Any:
    """A scalar subquery (made fresh per call) for ``store.shown_table_markers``: it moves when a
    change is written that is already in force, and when a scheduled one comes into force;
    either can change what the exporter and the page show."""
    return (
        select(func.count(StandardChange.id)).where(StandardChange.valid_from <= utcnow()).scalar_subquery()
    )


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
    return [chosen[key].in_force() for key in order]


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


# --- admin changes ----------------------------------------------------------------------------


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
