"""The registry: every metric definition contributed by the loaded plugins (and the config file's
``[kpis.*]`` tables), by key."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

import pluggy

from crmmetrics.core.definitions import RESERVED_LABELS, MetricDefinition
from crmmetrics.core.errors import ConfigError, PluginError
from crmmetrics.core.hookspecs import LoadedMetrics, MetricLookup
from .plugins import call_each

if TYPE_CHECKING:
    from crmmetrics.core.config import Config


@dataclass
class Registry(MetricLookup):
    """Metric definitions by key, and which plugin contributed each."""

    metrics: dict[str, MetricDefinition] = field(default_factory=dict)
    plugin_of: dict[str, str] = field(default_factory=dict)

    def for_plugins(self) -> LoadedMetrics:
        """A frozen copy for ``crmmetrics_validate_config``."""
        return LoadedMetrics(metrics=MappingProxyType(dict(self.metrics)), plugin_of=MappingProxyType(dict(self.plugin_of)))

    def add(self, definition: MetricDefinition, plugin: str) -> None:
        if not isinstance(definition, MetricDefinition):
            raise PluginError(f"plugin {plugin} returned {definition!r} from crmmetrics_metrics, not a MetricDefinition")
        reserved = [d for d in definition.dimensions if d in RESERVED_LABELS or d.startswith("__")]
        if reserved:
            raise PluginError(
                f"plugin {plugin}: metric {definition.key!r} declares dimension {reserved[0]!r}, a label name "
                f"crmmetrics reserves ({', '.join(sorted(RESERVED_LABELS))}): rename the dimension"
            )
        if definition.key in self.metrics:
            raise PluginError(
                f"metric {definition.key!r} is defined by two plugins: {self.plugin_of[definition.key]} and {plugin}"
            )
        self.metrics[definition.key] = definition
        self.plugin_of[definition.key] = plugin


def build_registry(pm: pluggy.PluginManager, config: Config | None = None) -> Registry:
    """The plugins' metrics and, with a config, the KPIs of its ``[kpis.*]`` tables (plugin
    ``config``, crmmetrics.compute.config_kpis); a bad or colliding one is a ConfigError naming it."""
    registry = Registry()
    for plugin, definitions in call_each(pm, "crmmetrics_metrics"):
        for definition in definitions or ():
            registry.add(definition, plugin)
    if config is not None and config.model.kpis:
        from .config_kpis import add_config_kpis

        problems = add_config_kpis(registry, config, pm)  # their default standards join pm as plugin config
        if problems:
            raise ConfigError("\n".join(problems))
    return registry
