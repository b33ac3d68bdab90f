"""crmmetrics: standards, metrics and KPIs for Payne & Frow's five CRM processes.

A plugin writes ``from crmmetrics import hookimpl, MetricDefinition, StandardDefault`` (and builds
its KPIs with ``crmmetrics.kpi``) and needs nothing else from the package's internals, which are
private and may move (docs/plugins.md, "Package layout").

The names below are imported when first used (PEP 562), so that ``import crmmetrics`` (and with
it every CLI command that computes nothing) does not pay for SQLAlchemy, numpy or scipy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# public name -> the module that defines it
_PUBLIC = {
    "ConfigError": "core.errors",
    "CrmmetricsError": "core.errors",
    "MetricError": "core.errors",
    "ComputeContext": "core.definitions",
    "MetricDefinition": "core.definitions",
    "Parameter": "core.definitions",
    "Result": "core.definitions",
    "Schedule": "core.definitions",
    "Period": "core.periods",
    "hookimpl": "core.hookspecs",
    "FinishedRun": "core.hookspecs",
    "LoadedMetrics": "core.hookspecs",
    "ObservedValue": "core.hookspecs",
    "PluginConfig": "core.hookspecs",
    "ServiceSettings": "core.hookspecs",
    "StandardDefault": "core.standard",
    "MetricValue": "readers.values",
    "latest_values": "readers.latest",
    "ChannelCategory": "core.vocabulary",
    "Direction": "core.vocabulary",
    "PeriodLabel": "core.vocabulary",
    "Perspective": "core.vocabulary",
    "Process": "core.vocabulary",
    "RunStatus": "core.vocabulary",
    "ValueLens": "core.vocabulary",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'crmmetrics' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


if TYPE_CHECKING:  # for type checkers and editors (not latest_values and MetricValue: the layers
    # below readers import this package for __version__, and import-linter follows these imports)
    from crmmetrics.core.definitions import ComputeContext, MetricDefinition, Parameter, Result, Schedule
    from crmmetrics.core.errors import ConfigError, CrmmetricsError, MetricError
    from crmmetrics.core.hookspecs import FinishedRun, LoadedMetrics, ObservedValue, PluginConfig, ServiceSettings, hookimpl
    from crmmetrics.core.periods import Period
    from crmmetrics.core.standard import StandardDefault
    from crmmetrics.core.vocabulary import ChannelCategory, Direction, PeriodLabel, Perspective, Process, RunStatus, ValueLens
