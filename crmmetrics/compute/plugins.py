"""The plugin manager: the one place that finds, loads and calls plugins.

Load order: plugins registered through the entry-point group ``crmmetrics`` (the built-in process
plugins are registered exactly like third-party ones), then one-off ``*.py`` files from the
configured plugins directory. Environment variables:

- ``CRMMETRICS_LOAD_PLUGINS``: comma-separated names; only these plugins load (empty: none).
- ``CRMMETRICS_BLOCK_PLUGINS``: comma-separated names that never load.
- ``CRMMETRICS_TRACE_PLUGINS``: set to 1 to trace every hook call to stderr.

A plugin's name is its entry-point name, or ``file:<stem>`` for a file from the plugins directory.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy

from crmmetrics.core import hookspecs
from crmmetrics.core.errors import PluginError

ENTRY_POINT_GROUP = "crmmetrics"
LOAD_ENV = "CRMMETRICS_LOAD_PLUGINS"
BLOCK_ENV = "CRMMETRICS_BLOCK_PLUGINS"
TRACE_ENV = "CRMMETRICS_TRACE_PLUGINS"


def _names(env: str) -> set[str] | None:
    value = os.environ.get(env)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _wanted(name: str, load: set[str] | None, block: set[str]) -> bool:
    return name not in block and (load is None or name in load)


def get_plugin_manager(plugins_dir: str | Path | None = None, builtin: bool = True) -> pluggy.PluginManager:
    """A plugin manager with every wanted plugin registered and all implementations checked.

    ``builtin=False`` leaves out the process plugins shipped with crmmetrics itself (the CLI asks
    only the other distributions for commands, so that start-up does not import the KPIs).
    """
    pm = pluggy.PluginManager("crmmetrics")
    pm.add_hookspecs(hookspecs)
    load, block = _names(LOAD_ENV), _names(BLOCK_ENV) or set()
    for name in sorted(block):
        pm.set_blocked(name)
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if not _wanted(entry_point.name, load, block) or pm.has_plugin(entry_point.name):
            continue
        if not builtin and _is_builtin(entry_point):
            continue
        try:
            plugin = entry_point.load()
        except Exception as exc:  # a broken third-party plugin is named, not a traceback
            raise PluginError(f"plugin {entry_point.name} ({entry_point.value}) failed to load: {exc}") from exc
        _register(pm, plugin, entry_point.name)
        dist = getattr(entry_point, "dist", None)
        pm._plugin_distinfo.append((plugin, dist))  # shows up in list_plugin_distinfo()
    if plugins_dir is not None:
        for path in sorted(Path(plugins_dir).glob("*.py")):
            name = f"file:{path.stem}"
            if _wanted(name, load, block):
                _register(pm, _load_file(path), name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:  # a misspelled hook name
        message = str(exc).replace(repr(exc.plugin), pm.get_name(exc.plugin) or repr(exc.plugin))
        known = ", ".join(sorted(name for name, caller in vars(pm.hook).items() if caller.has_spec()))
        raise PluginError(f"{message} (the hooks are: {known})") from None
    if os.environ.get(TRACE_ENV, "") not in ("", "0"):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm


def _is_builtin(entry_point: importlib.metadata.EntryPoint) -> bool:
    dist = getattr(entry_point, "dist", None)
    return dist is not None and dist.name == "crmmetrics"


def _register(pm: pluggy.PluginManager, plugin: Any, name: str) -> None:
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:  # e.g. an argument that the hook does not have
        raise PluginError("; ".join(str(exc).splitlines())) from None


def _load_file(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"crmmetrics_plugin_file_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise PluginError(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise PluginError(f"{path}: plugin file failed to load: {type(exc).__name__}: {exc}") from exc
    return module


def call_each(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> Iterator[tuple[str, Any]]:
    """Call one hook on each plugin separately, yielding (plugin name, result).

    The registry needs to know which plugin returned what (to name both plugins when two define
    the same metric), which a plain ``pm.hook.x()`` call does not tell.
    """
    caller = getattr(pm.hook, hook_name)
    for impl in reversed(caller.get_hookimpls()):  # pluggy's own call order
        name = pm.get_name(impl.plugin) or repr(impl.plugin)
        subset = pm.subset_hook_caller(hook_name, remove_plugins=[p for p in pm.get_plugins() if p is not impl.plugin])
        results = subset(**kwargs)
        if results:
            yield name, results[0]


def plugin_info(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """What is loaded: name, module or file, version and the hooks each plugin implements."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    info = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:  # blocked
            continue
        dist = dists.get(id(plugin))
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        info.append(
            {
                "name": name,
                "module": getattr(plugin, "__name__", repr(plugin)),
                "file": getattr(plugin, "__file__", None),
                "package": dist.metadata["Name"] if dist else None,
                "version": dist.version if dist else None,
                "hooks": hooks,
            }
        )
    return info
