"""Every hook a crmmetrics plugin can implement, in one file.

Hook signatures only grow: an implementation may accept any subset of a hook's arguments, and
arguments are never renamed or removed. Each hook is documented in docs/plugins.md.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("crmmetrics")
hookimpl = pluggy.HookimplMarker("crmmetrics")


@hookspec
def crmmetrics_metrics():
    """Return an iterable of ``MetricDefinition`` that this plugin computes."""


@hookspec
def crmmetrics_standards():
    """Return an iterable of ``StandardDefault``: default targets and thresholds for metrics."""


@hookspec
def crmmetrics_validate_config(config, registry):
    """Check this plugin's part of the loaded configuration at start-up; raise ConfigError if wrong."""


@hookspec
def crmmetrics_cli_commands(cli):
    """Add click commands or groups to the ``crmmetrics`` command group ``cli``."""


@hookspec
def crmmetrics_run_finished(run, observations):
    """Observe a finished live run (stored already) and its observations, e.g. to send a notification.

    Not called for the runs of `crmmetrics backfill` (past periods)."""
