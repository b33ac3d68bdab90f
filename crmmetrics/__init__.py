"""crmmetrics: standards, metrics and KPIs for Payne & Frow's five CRM processes.

A plugin writes ``from crmmetrics import hookimpl, MetricDefinition, StandardDefault`` and needs
nothing else from the package's internals.

The names below are imported when first used (PEP 562), so that ``import crmmetrics`` (and with
it every CLI command that computes nothing) does not pay for SQLAlchemy, numpy or scipy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# public name -> the module that defines it
_PUBLIC = {
    "ComputeContext": "definitions",
    "MetricDefinition": "definitions",
    "Parameter": "definitions",
    "Result": "definitions",
    "Schedule": "definitions",
    "hookimpl": "hookspecs",
    "FinishedRun": "hookspecs",
    "LoadedMetrics": "hookspecs",
    "ObservedValue": "hookspecs",
    "PluginConfig": "hookspecs",
    "ServiceSettings": "hookspecs",
    "StandardDefault": "standard",
    "ChannelCategory": "vocabulary",
    "Direction": "vocabulary",
    "PeriodLabel": "vocabulary",
    "Perspective": "vocabulary",
    "Process": "vocabulary",
    "RunStatus": "vocabulary",
    "ValueLens": "vocabulary",
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


if TYPE_CHECKING:  # for type checkers and editors
    from .definitions import ComputeContext, MetricDefinition, Parameter, Result, Schedule
    from .hookspecs import FinishedRun, LoadedMetrics, ObservedValue, PluginConfig, ServiceSettings, hookimpl
    from .standard import StandardDefault
    from .vocabulary import ChannelCategory, Direction, PeriodLabel, Perspective, Process, RunStatus, ValueLens
