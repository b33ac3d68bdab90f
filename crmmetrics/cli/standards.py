"""``crmmetrics standards``: list, set, import, export and the history of the standards.

Every change is recorded in the store with who made it (``--by``, else $CRMMETRICS_USER, else
the operating-system user) and when. Bad input is one line and exit code 2; nothing is written
unless everything asked for is valid.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import click

from crmmetrics.core.errors import ConfigError, StoreMissing
from . import cli
from .core import _app, config_option

# The standards module (and with it the store and SQLModel) is imported by the commands that use
# it: `crmmetrics standards --help` needs none of it.
if TYPE_CHECKING:
    from crmmetrics.core.standard import Standard, StandardDefault
    from crmmetrics.store.standards import StandardChange

by_option = click.option("--by", metavar="NAME", help="Who makes the change (default: $CRMMETRICS_USER, else the OS user).")


def _standard_json(standard: Standard, titles: dict[str, str]) -> dict[str, Any]:
    from crmmetrics.core.standard import describe_target

    spec = standard.spec
    return {
        "key": standard.key,
        "metric": spec.metric,
        "name": titles.get(spec.metric, ""),
        "dimensions": dict(spec.dimensions),
        "target": describe_target(spec),
        "benchmark": spec.benchmark,
        "red": spec.red,
        "green": spec.green,
        "weight": spec.weight,
        "owner": spec.owner,
        "source": spec.source,
        "origin": standard.origin,
        "valid_from": standard.valid_from.isoformat() + "Z",
        "changed_by": standard.changed_by,
        "changed_at": standard.changed_at.isoformat() + "Z",
    }


def _describe(spec: StandardDefault) -> str:
    from crmmetrics.core.standard import describe_target

    target = describe_target(spec)
    text = f"target {target:g}" if isinstance(target, float) else f"target {target}"
    if spec.benchmark is not None:
        text += f" ({spec.benchmark:g})"
    text += f", red {spec.red:g}, green {spec.green:g}, weight {spec.weight:g}"
    return text + (f", owner {spec.owner}" if spec.owner else "")


def _key(text: str) -> tuple[str, dict[str, str]]:
    from crmmetrics.core.standard import parse_key

    try:
        return parse_key(text)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


@cli.group()
def standards() -> None:
    """Targets, thresholds and weights that make metrics KPIs on the scorecard."""


@standards.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@config_option
def standards_list(as_json: bool, config_path: str | None) -> None:
    """List the standards in force (the admin's, else the plugins' defaults)."""
    from crmmetrics.core.standard import DEFAULT
    from crmmetrics.store.standards import standards_in_force

    app = _app(config_path)
    titles = {d.key: d.name for d in app.registry}
    in_force = [s for s in standards_in_force(app.reader_store) if s.metric in app.registry]
    if as_json:
        click.echo(json.dumps([_standard_json(s, titles) for s in in_force], indent=2))
        return
    if not in_force:
        click.echo("No standards: set one with 'crmmetrics standards set KEY --target X --red R --green G'.")
        return
    width = max(len(s.key) for s in in_force)
    for standard in in_force:
        origin = f"default ({standard.changed_by.removeprefix('plugin:')})" if standard.origin == DEFAULT else f"set by {standard.changed_by}"
        click.echo(f"{standard.key:{width}}  {_describe(standard.spec)}  [{origin}, {standard.changed_at:%Y-%m-%d}]")


@standards.command("set")
@click.argument("key")
@click.option("--target", metavar="X", help="A number, 'previous', 'previous+N%' (N% better than the previous period) or 'benchmark'.")
@click.option("--red", metavar="R", help="Red threshold: at or beyond it the KPI is red.")
@click.option("--green", metavar="G", help="Green threshold: at or beyond it the KPI is green.")
@click.option("--weight", metavar="W", help="Weight in the scorecard roll-ups (default 1).")
@click.option("--owner", metavar="NAME", help="Who answers for this KPI.")
@click.option("--source", metavar="TEXT", help="Where the target comes from (a benchmark, a plan).")
@click.option("--valid-from", metavar="DATE", help="When the standard applies from, ISO date or date-time in UTC (default: now).")
@by_option
@config_option
def standards_set(
    key: str,
    target: str | None,
    red: str | None,
    green: str | None,
    weight: str | None,
    owner: str | None,
    source: str | None,
    valid_from: str | None,
    by: str | None,
    config_path: str | None,
) -> None:
    """Set the standard of KEY: a metric key, or METRIC{dimension=value} for one dimension value.

    Options left out keep the values of the standard in force; a new standard needs at least
    --target, --red and --green.
    """
    from crmmetrics.serve.app import check_config
    from crmmetrics.core.standard import (
        AdminStandard,
        StandardDefault,
        direction_problem,
        format_key,
        parse_number,
        parse_target,
    )
    from crmmetrics.core.standards_file import to_naive_utc
    from crmmetrics.store.standards import apply_admin_standards, current_user, validate_admin_standards

    metric, dimensions = _key(key)
    values: dict[str, Any] = {}
    try:
        if target is not None:
            values.update(parse_target(target))
        for name, text in (("red", red), ("green", green), ("weight", weight)):
            if text is not None:
                values[name] = parse_number(f"--{name}", text)
    except ValueError as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith("--") else f"--target: {message}") from None
    if owner is not None:
        values["owner"] = owner
    if source is not None:
        values["source"] = source
    since = None
    if valid_from is not None:
        try:
            since = to_naive_utc(datetime.fromisoformat(valid_from))
        except ValueError:
            raise ConfigError(f"--valid-from: expected an ISO date or date-time (e.g. 2026-07-01), got {valid_from!r}") from None

    app = _app(config_path)
    if metric not in app.registry:
        raise ConfigError(f"{key}: unknown metric {metric!r} (see 'crmmetrics metrics list')")
    base = in_force_without_writing(app).get(format_key(metric, dimensions))
    if base is None:
        missing = [f"--{name}" for name in ("target", "red", "green") if name not in values]
        if missing:
            raise ConfigError(f"{key}: no standard yet, so {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} needed")
        fields: dict[str, Any] = {"metric": metric, "dimensions": dimensions}
    else:
        old = base.spec
        fields = {name: getattr(old, name) for name in StandardDefault.__dataclass_fields__}
        if "target_rule" in values and values["target_rule"] != "benchmark":
            fields["benchmark"] = None
            if source is None and old.target_rule == "benchmark":
                fields["source"] = ""  # the benchmark's citation no longer explains the target
    fields.update(values)
    wrong = direction_problem(fields["red"], fields["green"], app.registry.get(metric).direction)
    if wrong:
        raise ConfigError(f"standard for {format_key(metric, dimensions)}: {wrong}")
    try:
        spec = StandardDefault(**fields)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    wanted = [AdminStandard(spec, since)]
    validate_admin_standards(wanted, app.registry)  # before the store is opened for writing
    check_config(app.config)  # an edit is refused on a configuration config check refuses
    written = apply_admin_standards(app.store, app.registry, wanted, changed_by=current_user(by), via="standards set")
    click.echo(f"{spec.label}: {_describe(spec)}{'' if written else ' (unchanged)'}")


def in_force_without_writing(app: Any) -> dict[str, Any]:
    """The standards in force by key, read without writing: the store's (if it exists yet), and
    for keys it has none the plugins' defaults that opening it for writing will record. A
    refused edit then leaves the store as it was (or absent)."""
    from crmmetrics.compute.standard_defaults import collect_defaults
    from crmmetrics.core.standard import format_key
    from crmmetrics.store.standards import standards_in_force

    try:
        stored = {s.key: s for s in standards_in_force(app.reader_store)}
    except StoreMissing:
        stored = {}
    for (metric, _dims), (spec, _plugin) in collect_defaults(app.pm, app.registry).items():
        stored.setdefault(format_key(metric, spec.dimensions), SimpleNamespace(spec=spec))
    return stored


@standards.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@by_option
@config_option
def standards_import(file: str, by: str | None, config_path: str | None) -> None:
    """Import the standards of FILE (e.g. config/standards.toml): all of them or none."""
    from crmmetrics.serve.app import check_config
    from crmmetrics.core.standards_file import load_standards_file
    from crmmetrics.store.standards import apply_admin_standards, current_user, validate_admin_standards

    app = _app(config_path)
    wanted = load_standards_file(file, app.registry)
    validate_admin_standards(wanted, app.registry, where=f"{file}: ")  # before the store is opened for writing
    check_config(app.config)
    written = apply_admin_standards(
        app.store, app.registry, wanted, changed_by=current_user(by), via=f"standards import {Path(file).name}", where=f"{file}: "
    )
    click.echo(f"{file}: {len(wanted)} standards, {len(written)} changed, {len(wanted) - len(written)} unchanged")


@standards.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file instead of standard output.")
@config_option
def standards_export(output: str | None, config_path: str | None) -> None:
    """Write the standards in force as a standards file (importable with 'standards import')."""
    from crmmetrics.core.standards_file import dump_standards_file
    from crmmetrics.store.standards import standards_in_force

    app = _app(config_path)
    titles = {d.key: d.name for d in app.registry}
    text = dump_standards_file([s for s in standards_in_force(app.reader_store) if s.metric in app.registry], titles)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"{output}: written", err=True)
    else:
        click.echo(text, nl=False)


def _change_json(change: StandardChange) -> dict[str, Any]:
    from crmmetrics.core.standard import describe_target

    spec = change.spec()
    return {
        "id": change.id,
        "changed_at": change.changed_at.isoformat() + "Z",
        "changed_by": change.changed_by,
        "via": change.via,
        "origin": change.origin,
        "retired": change.retired,
        "valid_from": change.valid_from.isoformat() + "Z",
        "target": describe_target(spec),
        "benchmark": spec.benchmark,
        "red": spec.red,
        "green": spec.green,
        "weight": spec.weight,
        "owner": spec.owner,
        "source": spec.source,
    }


@standards.command("history")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@config_option
def standards_history(key: str, as_json: bool, config_path: str | None) -> None:
    """Every change of the standard of KEY, oldest first: what, who, when, from when."""
    from crmmetrics.core.standard import format_key
    from crmmetrics.store.standards import standard_history

    metric, dimensions = _key(key)
    app = _app(config_path)
    if metric not in app.registry:
        raise ConfigError(f"{key}: unknown metric {metric!r} (see 'crmmetrics metrics list')")
    changes = standard_history(app.reader_store, metric, dimensions)
    if as_json:
        click.echo(json.dumps([_change_json(c) for c in changes], indent=2))
        return
    if not changes:
        click.echo(f"{format_key(metric, dimensions)}: no standard has ever been set")
        return
    for change in changes:
        what = "retired (no longer shipped)" if change.retired else _describe(change.spec())
        since = "" if change.valid_from == change.changed_at else f", valid from {change.valid_from:%Y-%m-%d %H:%M}"
        click.echo(f"{change.changed_at:%Y-%m-%d %H:%M:%S}  {change.changed_by}  ({change.via})  {what}{since}")
