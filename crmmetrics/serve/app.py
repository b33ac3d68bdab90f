"""Wires one configuration into the running parts: plugins, registry, store, source, runner.

Each part is made when first used, so a command that only reads never opens the store for
writing (``reader_store``) and ``config check`` opens no store at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pluggy
from sqlalchemy.engine import Engine

from crmmetrics.compute.plugins import get_plugin_manager
from crmmetrics.compute.registry import Registry, build_registry
from crmmetrics.core.config import Config
from crmmetrics.data.source import open_source, warn_if_writable

if TYPE_CHECKING:
    from crmmetrics.compute.runner import Runner
    from crmmetrics.store.store import Store


@dataclass
class App:
    config: Config
    pm: pluggy.PluginManager
    registry: Registry

    @classmethod
    def from_config(cls, config: Config) -> App:
        pm = get_plugin_manager(config.plugins_dir)
        registry = build_registry(pm, config)
        config.validate_against(registry)
        pm.hook.crmmetrics_validate_config(**validate_config_arguments(config, registry))
        return cls(config=config, pm=pm, registry=registry)

    @cached_property
    def store(self) -> Store:
        """The store for commands that write (serve, run, standards edits): created or checked
        at the newest revision, with the plugins' definitions and default standards recorded."""
        # Imported here: `config check` and the listing commands never open a store, and the
        # store's tables (SQLModel) are a third of their start-up.
        from crmmetrics.compute.standard_defaults import record_plugin_defaults
        from crmmetrics.store.store import Store

        store = Store(self.config.store_url)
        store.record_definitions(self.registry, self.registry.plugin_of)
        record_plugin_defaults(store, self.pm, self.registry)
        return store

    @cached_property
    def reader_store(self) -> Store:
        """The store for commands that only read (scorecard, standards list, alerts export):
        opened read-only, never created or written."""
        from crmmetrics.store.store import Store

        return Store(self.config.store_url, read_only=True)

    @cached_property
    def source(self) -> Engine:
        engine = open_source(self.config.source_url)
        warn_if_writable(engine)
        return engine

    @cached_property
    def runner(self) -> Runner:
        from crmmetrics.compute.runner import Runner

        runner = Runner(self.registry, self.config, self.store, self.source, self.pm)
        runner.recover_interrupted()  # runs a killed process left behind, before computing anew
        return runner


def validate_config_arguments(config: Config, registry: Registry) -> dict[str, Any]:
    """The arguments of ``crmmetrics_validate_config``: frozen copies, not the config and the
    registry themselves (a plugin reads them; it cannot change them)."""
    return {"config": config.for_plugins(registry), "registry": registry.for_plugins()}


def check_config(config: Config) -> App:
    """Everything ``config check`` verifies, every problem reported at once; opens no store.

    The file's keys and values (already parsed), the [metrics.*] tables against the loaded
    plugins and each plugin's own checks, the store URL's dialect and driver, and the source:
    reachable, with the canonical tables. Admin edits run this on the edited file before it
    replaces the old one.
    """
    from crmmetrics.compute.config_kpis import add_config_kpis
    from crmmetrics.core.config import raise_all
    from crmmetrics.core.errors import ConfigError
    from crmmetrics.data.engines import check_driver

    pm = get_plugin_manager(config.plugins_dir)
    registry = build_registry(pm)
    problems = add_config_kpis(registry, config, pm, check_standards=True)  # a bad [kpis.*] table is left out, reported with the rest
    problems += config.problems_against(registry)
    caller = pm.hook.crmmetrics_validate_config
    arguments = validate_config_arguments(config, registry)
    for impl in reversed(caller.get_hookimpls()):
        others = [p for p in pm.get_plugins() if p is not impl.plugin]
        try:
            pm.subset_hook_caller("crmmetrics_validate_config", remove_plugins=others)(**arguments)
        except ConfigError as exc:
            problems.append(str(exc))
    for check in (lambda: check_driver(config.store_url, "store"), lambda: problems.extend(_check_source(config, registry))):
        try:
            check()
        except ConfigError as exc:
            problems.append(f"{config.path or '<config>'}: {exc}")
    # The files `serve` reads at start and on reload: a bad one is found here, not at a restart.
    # Their errors already name the file.
    for check in (lambda: _check_web_config(config), lambda: _check_standards_file(config, registry)):
        try:
            check()
        except ConfigError as exc:
            problems.append(str(exc))
    raise_all(problems)
    return App(config=config, pm=pm, registry=registry)


def _check_web_config(config: Config) -> None:
    if config.web_config_file is not None:
        from crmmetrics.core.errors import ConfigError
        from .webconfig import parse_web_config

        path = config.web_config_file
        try:
            settings = parse_web_config(path.read_text(encoding="utf-8"), path)  # as serve reads it
            if settings.tls:
                settings.tls.context()  # the certificate and key files load
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read web config file: {exc.strerror}") from None


def _check_standards_file(config: Config, registry: Registry) -> None:
    if config.standards_file is not None:
        from crmmetrics.core.standards_file import load_standards_file

        load_standards_file(config.standards_file, registry)


def _check_source(config: Config, registry: Registry) -> list[str]:
    """The source reachable with the canonical tables (ConfigError), and then the problems of
    the config file's KPIs' queries run against it (crmmetrics.compute.config_kpis)."""
    import sqlalchemy.exc
    from sqlalchemy import inspect

    from crmmetrics.core import schema
    from crmmetrics.core.config import redact_url
    from crmmetrics.core.errors import ConfigError
    from crmmetrics.data.engines import connection_problem

    engine = open_source(config.source_url)
    try:
        with engine.connect() as connection:
            inspector = inspect(connection)
            present = set(inspector.get_table_names()) | set(inspector.get_view_names())
            missing = [name for name in schema.TABLES if name not in present]
    except sqlalchemy.exc.DBAPIError as exc:
        raise ConfigError(f"source.url: {redact_url(config.source_url)}: cannot connect: {connection_problem(exc)}") from None
    finally:
        engine.dispose()
    if missing:
        raise ConfigError(
            f"source.url: {redact_url(config.source_url)} has no table or view {', '.join(missing)} "
            "(the canonical tables: 'crmmetrics source init URL', or views; see docs/data-model.md)"
        )
    if not config.model.kpis:
        return []
    from crmmetrics.compute.config_kpis import PLUGIN, source_problems

    valid = {key for key in config.model.kpis if registry.plugin_of.get(key) == PLUGIN}
    engine = open_source(config.source_url)
    try:
        return source_problems(config, engine, keys=valid)
    finally:
        engine.dispose()
