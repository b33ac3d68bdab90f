"""Errors that reach the user as one line (the CLI prints them without a traceback)."""


class CrmmetricsError(Exception):
    """Base of every error crmmetrics reports to a user. ``exit_code`` is the CLI's."""

    exit_code = 1


class ConfigError(CrmmetricsError):
    """Bad configuration or bad input: names the file, the key and what is wrong."""

    exit_code = 2


class PluginError(CrmmetricsError):
    """A plugin could not be loaded or contradicts another plugin."""

    exit_code = 2


class MetricError(CrmmetricsError):
    """A metric's computation failed or returned something the runner refuses."""


class StoreError(CrmmetricsError):
    """The store cannot be used as it is: unreachable, not a crmmetrics store, or at another
    schema revision. Names the store by its (redacted) URL and the command that fixes it."""

    exit_code = 2


class StoreMissing(StoreError):
    """The store does not exist yet (no file, or no crmmetrics tables): nothing has run."""
