"""The plugins' default standards: collected through the ``crmmetrics_standards`` hook, checked
against the loaded metrics, and recorded in the store's standard history when they change
(``crmmetrics.standards.record_defaults``)."""

from __future__ import annotations

import logging
from typing import Any

import pluggy

from crmmetrics.core.errors import PluginError
from crmmetrics.core.standard import StandardDefault, check_against
from crmmetrics.store.standards import record_defaults
from crmmetrics.store.store import Store, dimensions_key
from .plugins import call_each

log = logging.getLogger("crmmetrics.standards")


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


def record_plugin_defaults(store: Store, pm: pluggy.PluginManager, registry: Any) -> int:
    """``record_defaults`` for the loaded plugins (called when the app opens its store)."""
    return record_defaults(store, collect_defaults(pm, registry))

