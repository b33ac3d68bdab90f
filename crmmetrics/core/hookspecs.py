"""Every hook a crmmetrics plugin can implement, in one file, with the plain data they receive.

Hook signatures only grow: an implementation may accept any subset of a hook's arguments, and
arguments are never renamed or removed. Each hook is documented in docs/plugins.md.

The hooks receive frozen copies (``PluginConfig``, ``LoadedMetrics``, ``FinishedRun``,
``ObservedValue``), never the store's rows or crmmetrics' internal classes: a plugin can read
them but not change what crmmetrics holds, and they stay the same when the internals move.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .config import MetricSettings
    from .definitions import MetricDefinition
    from .vocabulary import PeriodLabel, RunStatus

hookspec = pluggy.HookspecMarker("crmmetrics")
hookimpl = pluggy.HookimplMarker("crmmetrics")


# --- what the hooks receive ------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceSettings:
    """The ``[service]`` settings of the configuration."""

    host: str
    port: int
    timezone: str
    plugins_dir: Path | None  # resolved against the configuration file's folder
    as_of: datetime | None  # a fixed "now" for reproducible runs; None: the wall clock
    misfire_grace: str
    currency: str | None


@dataclass(frozen=True)
class PluginConfig:
    """The loaded configuration, as ``crmmetrics_validate_config`` receives it."""

    path: Path | None  # the configuration file (None: built in code)
    source_url: str
    store_url: str
    service: ServiceSettings
    settings: Mapping[str, MetricSettings]  # metric key -> its effective settings

    def metric_settings(self, definition: MetricDefinition) -> MetricSettings:
        """A metric's effective ``enabled``, ``schedule``, ``period``, ``timeout_seconds`` and
        ``params``: its definition's defaults overridden by the configuration."""
        return self.settings[definition.key]


class MetricLookup:
    """Reading metric definitions by key, for ``LoadedMetrics`` and the registry it copies."""

    metrics: Mapping[str, MetricDefinition]  # metric key -> definition

    def __iter__(self) -> Iterator[MetricDefinition]:
        return iter(self.metrics.values())

    def __len__(self) -> int:
        return len(self.metrics)

    def __contains__(self, key: object) -> bool:
        return key in self.metrics

    def get(self, key: str) -> MetricDefinition:
        try:
            return self.metrics[key]
        except KeyError:
            raise KeyError(f"unknown metric {key!r}") from None


@dataclass(frozen=True)
class LoadedMetrics(MetricLookup):
    """Every loaded metric definition (plugins and the configuration's ``[kpis.*]``), as
    ``crmmetrics_validate_config`` receives it."""

    metrics: Mapping[str, MetricDefinition]  # metric key -> definition
    plugin_of: Mapping[str, str]  # metric key -> the plugin that defines it


@dataclass(frozen=True)
class FinishedRun:
    """A finished live run of one metric, as ``crmmetrics_run_finished`` receives it."""

    id: int
    metric_key: str
    plugin: str
    started_at: datetime  # naive UTC, like every time below
    finished_at: datetime
    duration_seconds: float
    status: RunStatus  # success or failed
    error: str | None  # why it failed; None for a success
    rows: int  # values stored
    period: str  # the period spec used, e.g. "month"


@dataclass(frozen=True)
class ObservedValue:
    """One value a run stored: one period, one combination of dimension values."""

    metric_key: str
    period_label: PeriodLabel
    period_start: datetime
    period_end: datetime  # exclusive
    dimensions: Mapping[str, str]  # {} for the total
    value: float | None  # None: no data
    computed_at: datetime


# --- the hooks -------------------------------------------------------------------------------


@hookspec
def crmmetrics_metrics():
    """Return an iterable of ``MetricDefinition`` that this plugin computes."""


@hookspec
def crmmetrics_standards():
    """Return an iterable of ``StandardDefault``: default targets and thresholds for metrics."""


@hookspec
def crmmetrics_validate_config(config, registry):
    """Check this plugin's part of the loaded configuration at start-up; raise ConfigError if wrong.

    ``config`` is a ``PluginConfig``, ``registry`` the ``LoadedMetrics``."""


@hookspec
def crmmetrics_cli_commands(cli):
    """Add click commands or groups to the ``crmmetrics`` command group ``cli``."""


@hookspec
def crmmetrics_run_finished(run, observations):
    """Observe a finished live run (stored already) and its observations, e.g. to send a notification.

    ``run`` is a ``FinishedRun``, ``observations`` a tuple of ``ObservedValue``. Not called for
    the runs of `crmmetrics backfill` (past periods)."""
