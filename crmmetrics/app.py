"""Wires one configuration into the running parts: plugins, registry, store, source, runner."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import pluggy
from sqlalchemy.engine import Engine

from .config import Config
from .plugins import get_plugin_manager
from .registry import Registry, build_registry
from .runner import Runner
from .source import open_source
from .standards import record_plugin_defaults
from .store import Store


@dataclass
class App:
    config: Config
    pm: pluggy.PluginManager
    registry: Registry

    @classmethod
    def from_config(cls, config: Config) -> App:
        pm = get_plugin_manager(config.plugins_dir)
        registry = build_registry(pm)
        config.validate_against(registry)
        pm.hook.crmmetrics_validate_config(config=config, registry=registry)
        return cls(config=config, pm=pm, registry=registry)

    @cached_property
    def store(self) -> Store:
        store = Store(self.config.store_url)
        store.record_definitions(self.registry, self.registry.plugin_of)
        record_plugin_defaults(store, self.pm, self.registry)
        return store

    @cached_property
    def source(self) -> Engine:
        return open_source(self.config.source_url)

    @cached_property
    def runner(self) -> Runner:
        return Runner(self.registry, self.config, self.store, self.source, self.pm)
