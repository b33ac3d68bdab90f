"""crmmetrics: standards, metrics and KPIs for Payne & Frow's five CRM processes.

A plugin writes ``from crmmetrics import hookimpl, MetricDefinition, StandardDefault`` and needs
nothing else from the package's internals.
"""

from .definitions import ComputeContext, MetricDefinition, Parameter, Result, Schedule
from .hookspecs import hookimpl
from .standards import StandardDefault
from .vocabulary import ChannelCategory, Direction, Perspective, Process, ValueLens

__version__ = "0.2.0"

__all__ = [
    "ChannelCategory",
    "ComputeContext",
    "Direction",
    "MetricDefinition",
    "Parameter",
    "Perspective",
    "Process",
    "Result",
    "Schedule",
    "StandardDefault",
    "ValueLens",
    "hookimpl",
]
