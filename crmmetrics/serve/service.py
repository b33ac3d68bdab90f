"""The running service of ``crmmetrics serve``: scheduler, HTTP server, readiness and reload.

Reload (SIGHUP or ``POST /-/reload``) re-reads the configuration file and the standards file
(``service.standards_file``), validates both in full, and only then applies them: the standards
are recorded in the store (unchanged ones are skipped), the runner takes the new settings
(parameters, periods, timeouts), and the scheduler's jobs follow the new enabled metrics and
schedules. If anything is wrong, nothing changes: the service keeps running on the previous
configuration, logs one line, sets ``crmmetrics_config_last_reload_successful`` to 0 and answers
the HTTP reload with the reason. What only a restart can change (the databases, the plugins,
the listening address and the HTTP server's settings other than ``allowed_hosts``) is refused
by a reload with that reason rather than half applied.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING

from crmmetrics.compute.health import ServiceHealth, one_line
from crmmetrics.compute.scheduler import claim_leadership, run_until_signalled, sync_jobs
from crmmetrics.core.config import Config, load_config
from crmmetrics.core.definitions import parse_duration
from crmmetrics.core.errors import ConfigError
from crmmetrics.core.standards_file import load_standards_file
from crmmetrics.readers.outlook import SourceUnitPairs
from crmmetrics.store.standards import apply_admin_standards, current_user
from .app import App, validate_config_arguments
from .logs import configure_logging
from .server import LOOPBACK_NAMES, ExporterApp, HTTPService, is_loopback
from .webconfig import WebConfigFile

log = logging.getLogger("crmmetrics.service")

# Settings that a running service cannot change: a reload that changes them is refused.
RESTART_ONLY = (
    ("source.url", lambda c: c.source_url),
    ("store.url", lambda c: c.store_url),
    ("service.host", lambda c: c.service.host),
    ("service.port", lambda c: c.service.port),
    ("service.plugins_dir", lambda c: c.plugins_dir),
    ("kpis", lambda c: c.model.kpis),  # the metrics themselves, like the plugins' (crmmetrics.compute.config_kpis)
    ("web.config_file", lambda c: c.web_config_file),
    ("web.threads", lambda c: c.model.web.threads),
    ("web.backlog", lambda c: c.model.web.backlog),
    ("web.timeout", lambda c: c.model.web.timeout),
)


def allowed_hosts(config: Config, host: str) -> list[str] | None:
    """The Host names answered when bound to loopback; None (any) when bound elsewhere."""
    if not is_loopback(host):
        return None
    return [*LOOPBACK_NAMES, host, *config.model.web.allowed_hosts]


def import_standards_file(app: App, config: Config, when: str) -> str:
    """Record the standards of ``config.standards_file`` (ConfigError if invalid; nothing written)."""
    path = config.standards_file
    if path is None:
        return "no standards file"
    wanted = load_standards_file(path, app.registry)
    written = apply_admin_standards(
        app.store, app.registry, wanted, changed_by=current_user(), via=f"serve {when} {Path(path).name}", where=f"{path}: "
    )
    return f"{path.name}: {len(wanted)} standards, {len(written)} changed"


class Service:
    """Everything ``crmmetrics serve`` runs, bound and ready to start."""

    def __init__(self, app: App, host: str | None = None, port: int | None = None, web_config_file: str | Path | None = None) -> None:
        self.app = app
        self.health = ServiceHealth()
        config = app.config
        self.host = host or config.service.host
        port = port if port is not None else config.service.port
        path = web_config_file or config.web_config_file
        self.web_config = WebConfigFile(path) if path else None
        if config.standards_file is not None:
            log.info("standards at start-up: %s", import_standards_file(app, config, "start"))
        self._reload_lock = threading.Lock()
        # One scheduler per store: on SQLite a second one is refused here, before anything is
        # served; on PostgreSQL a standby serves and takes over when the leader goes.
        self.leadership, self.leader = claim_leadership(app.runner)
        self.scheduler: BackgroundScheduler | None = None  # while this instance schedules
        self.standby = not self.leader
        self.exporter = ExporterApp(
            app.store,
            self.health,
            ready=self.ready,
            reload=self.reload,
            web_config=self.web_config,
            allowed_hosts=allowed_hosts(config, self.host),
            unit_pairs=SourceUnitPairs(app),
        )
        web = config.model.web
        try:
            self.http = HTTPService(
                self.exporter,
                self.host,
                port,
                threads=web.threads,
                backlog=web.backlog,
                timeout=parse_duration(web.timeout).total_seconds(),
                web_config=self.web_config,
            )
        except OSError as exc:
            self.leadership.release()
            raise ConfigError(f"service: cannot listen on {self.host}:{port}: {exc.strerror or exc}") from None
        if not is_loopback(self.host) and (self.web_config is None or not self.web_config.settings().users):
            log.warning("listening on %s without basic auth: anyone who reaches the port sees the scorecard", self.host)

    def ready(self) -> str | None:
        """None when ready; else why not (the /-/ready answer). A standby instance (another one
        schedules on this store) is ready: it serves the same store."""
        if not self.standby and (self.scheduler is None or self.scheduler.state != STATE_RUNNING):
            return "the scheduler is not running"
        try:
            self.app.store.change_marker()
        except Exception as exc:  # noqa: BLE001
            if self.health.store_failed(exc):
                log.warning("store cannot be read: %s", one_line(exc))
            return f"the store cannot be read ({one_line(exc)})"
        if self.health.store_answered():
            log.info("store answers again")
        return None

    def reload(self) -> str | None:
        """Re-read, validate and apply the configuration; None if applied, else the reason it was not."""
        with self._reload_lock:
            old = self.app.config
            try:
                new = self._validated(old)
                standards = import_standards_file(self.app, new, "reload")
            except ConfigError as exc:
                return self._refused(str(exc))
            except Exception as exc:  # noqa: BLE001 - e.g. the store is down while recording standards
                return self._refused(f"cannot apply: {one_line(exc)}")
            self.app.config = new
            self.app.runner.config = new
            scheduler = self.scheduler
            # A standby has no jobs: it schedules from the configuration in force when it leads.
            changes = sync_jobs(scheduler, self.app.runner, self.health, old) if scheduler is not None else []
            self.exporter.allowed_hosts = (
                None if (hosts := allowed_hosts(new, self.host)) is None else {h.lower().strip("[]") for h in hosts}
            )
            configure_logging(new.model.logging.level, new.model.logging.format)
            self.health.reloaded(None)
            log.info("configuration reloaded from %s (%s; %s)", new.path, "; ".join(changes) or "schedules unchanged", standards)
            return None

    def _validated(self, old: Config) -> Config:
        new = load_config(old.path)
        changed = [name for name, value in RESTART_ONLY if value(new) != value(old)]
        if changed:
            raise ConfigError(f"{new.path}: {', '.join(changed)} changed: restart crmmetrics serve to apply")
        registry = self.app.registry
        new.validate_against(registry)
        self.app.pm.hook.crmmetrics_validate_config(**validate_config_arguments(new, registry))
        for definition in registry:
            new.metric_settings(definition)  # parameters coerce, or ValueError
        if new.standards_file is not None:
            load_standards_file(new.standards_file, registry)
        return new

    def _refused(self, reason: str) -> str:
        self.health.reloaded(reason)
        log.error("configuration reload refused, the previous configuration stays in force: %s", reason)
        return reason

    def run(self, announce=None) -> None:  # noqa: ANN001
        """Serve and run the schedule until SIGTERM or SIGINT; SIGHUP reloads."""
        self.http.start()
        log.info("serving %s/ and /metrics", self.http.url)
        if announce:
            announce(self.http.url)
        run_until_signalled(
            self.app.runner,
            self.leadership,
            self.leader,
            health=self.health,
            on_stop=[self.http.stop],
            on_reload=self.reload,
            on_scheduler=self._scheduling,
            poll_seconds=parse_duration(self.app.config.service.leader_poll).total_seconds(),
        )

    def _scheduling(self, scheduler: BackgroundScheduler | None) -> None:
        self.scheduler = scheduler
        self.standby = scheduler is None
