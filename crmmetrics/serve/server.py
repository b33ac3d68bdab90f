"""The HTTP surface of ``crmmetrics serve``: a WSGI app served by cheroot.

Endpoints (GET and HEAD unless said otherwise):

- ``/metrics``: the store's exposition (pre-rendered bytes per encoding, see
  ``crmmetrics.readers.exporter.Exposition``) followed by the live self-metrics (``crmmetrics.compute.health``).
  Content negotiation as prometheus_client does it: OpenMetrics (ending in ``# EOF``) when the
  Accept header asks for ``application/openmetrics-text``, else the text format 0.0.4; gzip when
  Accept-Encoding allows it. While the store cannot be read it serves the last good exposition
  (``crmmetrics_exposition_stale`` 1) and never fails: one log line when the store goes away,
  one when it is back.
- ``/``: the scorecard page (``crmmetrics.readers.page``); 503 while the store cannot be read.
- ``/kpi/KEY``: the page of one metric (``crmmetrics.readers.kpi_page``): history chart, breakdown, standard, runs.
- ``/-/healthy``: 200 while the process serves (liveness). ``/healthz`` is an alias of it.
- ``/-/ready``: 200 when the store answers and the scheduler runs; 503 with the reason if not.
- ``POST /-/reload`` (or PUT, as Prometheus accepts): re-read the configuration and the
  standards file (``crmmetrics.serve.service``); 200, or 500 with the reason the old one is kept.

Why cheroot: it is the maintained, pure-Python server of CherryPy with TLS built in, bounded
worker threads, a per-connection socket timeout, and idle keep-alive connections parked in a
selector rather than holding a thread. Measured against waitress in
``benchmarks/bench_serving.py`` (figures in docs/operations.md); waitress has no TLS.

Security: TLS and basic auth come from the exporter-toolkit web configuration file
(``crmmetrics.serve.webconfig``). Bound to a loopback address, the server answers only requests whose
Host header is an allowed name (loopback names and ``[web] allowed_hosts``), so that a web page
cannot reach it through DNS rebinding.
"""

from __future__ import annotations

import gzip as gzip_module
import ipaddress
import logging
import select
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cheroot import errors as cheroot_errors
from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from prometheus_client import generate_latest
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from crmmetrics.compute.health import ServiceHealth, one_line, self_metrics_registry
from crmmetrics.core.errors import ConfigError
from crmmetrics.readers.exporter import CONTENT_TYPES, OPENMETRICS, TEXT, Exposition
from crmmetrics.store.store import Store
from .webconfig import WebConfigFile

log = logging.getLogger("crmmetrics.server")

TEXT_PLAIN = "text/plain; charset=utf-8"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The host of a Host header, without port or IPv6 brackets, lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


@dataclass
class Response:
    status: str
    body: bytes
    content_type: str = TEXT_PLAIN
    headers: tuple[tuple[str, str], ...] = ()


def text(status: str, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response(status, (message.rstrip("\n") + "\n").encode(), TEXT_PLAIN, headers)


class CachedPage:
    """The scorecard page, rendered once per change of what it shows, like /metrics: its
    sparklines read the stored history, which a request must not pay for again and again."""

    def __init__(self, store: Store, outlook: Any = None) -> None:
        self.store = store
        self.outlook = outlook  # the OutlookCache shared with /metrics (crmmetrics.readers.outlook)
        self._lock = threading.Lock()
        self._marker: Any = object()
        self._html = ""

    def __call__(self) -> str:
        from crmmetrics.readers.page import landing_page

        marker = self.store.history_marker()
        with self._lock:
            if marker != self._marker:
                self._html = landing_page(self.store, self.outlook)
                self._marker = marker
            return self._html


class ExporterApp:
    """The WSGI application. ``ready`` and ``reload`` come from the running service."""

    def __init__(
        self,
        store: Store,
        health: ServiceHealth | None = None,
        *,
        landing: Callable[[], str] | None = None,
        ready: Callable[[], str | None] | None = None,
        reload: Callable[[], str | None] | None = None,
        web_config: WebConfigFile | None = None,
        allowed_hosts: Iterable[str] | None = None,
        recheck_after: float = 1.0,
        unit_pairs: Any = None,
    ) -> None:
        from crmmetrics.readers.outlook import OutlookCache

        self.store = store
        self.health = health or ServiceHealth()
        # Forecasts, anomalies and the value chain: computed once per change, for /metrics and /.
        # ``unit_pairs``: the source's department-to-channel pairs (or a callable giving them).
        self.outlook = OutlookCache(unit_pairs)
        # At most one look at the store's change marker per second, however many scrapers.
        self.exposition = Exposition(store, recheck_after, self.outlook)
        self.self_metrics = self_metrics_registry(self.health)
        self.landing = landing or CachedPage(store, self.outlook)
        self.ready = ready or (lambda: None)
        self.reload = reload
        self.web_config = web_config
        # None: every Host is answered (the server is not bound to loopback).
        self.allowed_hosts = None if allowed_hosts is None else {h.lower().strip("[]") for h in allowed_hosts}
        self.routes: dict[str, Callable[[dict[str, Any]], Response]] = {
            "/metrics": self.metrics,
            "/": self.page,
            "/-/healthy": self.healthy,
            "/healthz": self.healthy,
            "/-/ready": self.readiness,
            "/-/reload": self.reload_config,
        }

    # --- WSGI -------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> list[bytes]:
        extra: dict[str, str] = {}
        response = self.check(environ, extra)
        if response is None:
            path = environ.get("PATH_INFO") or "/"
            route = self.routes.get(path) or (self.kpi if path.startswith("/kpi/") else None)
            method = environ["REQUEST_METHOD"]
            if route is None:
                response = text("404 Not Found", "not found")
            elif route == self.reload_config:
                response = route(environ) if method in ("POST", "PUT") else text(
                    "405 Method Not Allowed", "use POST", (("Allow", "POST, PUT"),)
                )
            elif method not in ("GET", "HEAD"):
                response = text("405 Method Not Allowed", "use GET or HEAD", (("Allow", "GET, HEAD"),))
            else:
                try:
                    response = route(environ)
                except Exception:  # a bug in a handler answers 500 and is logged with its traceback
                    log.exception("error serving %s", environ.get("PATH_INFO"))
                    response = text("500 Internal Server Error", "internal error")
        headers = [("Content-Type", response.content_type), ("Content-Length", str(len(response.body)))]
        headers += list(response.headers) + list(extra.items())
        start_response(response.status, headers)
        return [b""] if environ["REQUEST_METHOD"] == "HEAD" else [response.body]

    def check(self, environ: dict[str, Any], extra: dict[str, str]) -> Response | None:
        """Host allow-list, web config and basic auth; None if the request may proceed."""
        if self.allowed_hosts is not None:
            host = environ.get("HTTP_HOST")
            if host is not None and host_name(host) not in self.allowed_hosts:
                return text("403 Forbidden", f"host {host_name(host)!r} is not allowed (see [web] allowed_hosts)")
        if self.web_config is None:
            return None
        try:
            settings = self.web_config.settings()
        except ConfigError:  # logged once by WebConfigFile; exporter-toolkit answers 500 too
            return text("500 Internal Server Error", "web configuration file is invalid (see the log)")
        extra.update(settings.headers)
        if settings.users and not self.web_config.authorised(settings, environ.get("HTTP_AUTHORIZATION")):
            return text("401 Unauthorized", "unauthorized", (("WWW-Authenticate", 'Basic realm="crmmetrics"'),))
        return None

    # --- endpoints --------------------------------------------------------------------------

    def metrics(self, environ: dict[str, Any]) -> Response:
        _, content_type = choose_encoder(environ.get("HTTP_ACCEPT", ""))
        encoding = OPENMETRICS if content_type.startswith("application/openmetrics-text") else TEXT
        try:
            rendered = self.exposition.encodings(encoding)
        except Exception:  # noqa: BLE001 - the store is down or broken: serve the last good bytes
            rendered = self.exposition.last
        error = self.exposition.error  # the last look at the store, by this scrape or another
        if error is not None:
            if self.health.store_failed(error):
                log.warning("cannot read the store (%s): /metrics serves the last good exposition", one_line(error))
                log.debug("store read failed", exc_info=error)
            self.health.stale = True
        else:
            if self.health.store_answered():
                log.info("store answers again: /metrics serves a fresh exposition")
            self.health.stale = False
        # The live part ends the body: in OpenMetrics its own "# EOF" is the body's only one.
        live = openmetrics_latest(self.self_metrics) if encoding == OPENMETRICS else generate_latest(self.self_metrics)
        part = rendered[encoding] if rendered else None  # None: the store was never readable
        headers: tuple[tuple[str, str], ...] = (("Vary", "Accept, Accept-Encoding"),)
        content = CONTENT_TYPES[encoding]
        if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
            body = part.gzip(live) if part else gzip_module.compress(live)
            headers += (("Content-Encoding", "gzip"),)
        else:
            body = part.body + live if part else live
        return Response("200 OK", body, content, headers)

    def page(self, environ: dict[str, Any]) -> Response:
        try:
            html = self.landing()
        except Exception as exc:  # noqa: BLE001
            if self.health.store_failed(exc):
                log.warning("store cannot be read (%s): the scorecard page is unavailable", one_line(exc))
            return text("503 Service Unavailable", f"the scorecard is unavailable: the store cannot be read ({one_line(exc)})")
        self.health.store_answered()
        return Response("200 OK", html.encode(), "text/html; charset=utf-8")

    def kpi(self, environ: dict[str, Any]) -> Response:
        """``/kpi/KEY``: the page of one metric (crmmetrics.readers.kpi_page); 404 for a metric no plugin defines."""
        from urllib.parse import unquote

        from crmmetrics.readers.kpi_page import kpi_page

        key = unquote(environ["PATH_INFO"].removeprefix("/kpi/")).strip("/")
        try:
            html = kpi_page(self.store, key, self.outlook)
        except Exception as exc:  # noqa: BLE001
            if self.health.store_failed(exc):
                log.warning("store cannot be read (%s): the KPI page is unavailable", one_line(exc))
            return text("503 Service Unavailable", f"the KPI page is unavailable: the store cannot be read ({one_line(exc)})")
        self.health.store_answered()
        if html is None:
            return text("404 Not Found", f"no metric {key!r}")
        return Response("200 OK", html.encode(), "text/html; charset=utf-8")

    def healthy(self, environ: dict[str, Any]) -> Response:
        return text("200 OK", "crmmetrics is healthy")

    def readiness(self, environ: dict[str, Any]) -> Response:
        reason = self.ready()
        if reason:
            return text("503 Service Unavailable", f"not ready: {reason}")
        return text("200 OK", "crmmetrics is ready")

    def reload_config(self, environ: dict[str, Any]) -> Response:
        if self.reload is None:
            return text("404 Not Found", "reload is available under crmmetrics serve")
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and host_name(urlsplit(origin).netloc) != host_name(environ.get("HTTP_HOST", "")):
            # A browser sends Origin with a cross-site POST: a page on another site must not
            # trigger reloads (curl, systemd and Prometheus-style tooling send none).
            return text("403 Forbidden", f"reload from a page of {origin} is not allowed")
        error = self.reload()
        if error:
            return text("500 Internal Server Error", f"reload refused, the previous configuration stays in force: {error}")
        return text("200 OK", "configuration reloaded")


class ReloadingSSLAdapter(BuiltinSSLAdapter):
    """cheroot's TLS adapter with two changes.

    The SSLContext comes from the web configuration file for every new connection, so renewed
    certificates apply at once (as exporter-toolkit does). And the handshake is left to the worker
    thread's first read instead of cheroot's accept loop, where a client that connects and says
    nothing would block every other connection until the socket timeout.
    """

    def __init__(self, web_config: WebConfigFile) -> None:
        # The base class loads the files given; the context is replaced per connection anyway.
        tls = web_config.settings().tls
        assert tls is not None
        super().__init__(str(tls.cert_file), str(tls.key_file))
        self.web_config = web_config

    def wrap(self, sock):  # noqa: ANN001, ANN201 - cheroot's API
        try:
            context = self.web_config.ssl_context()
            wrapped = context.wrap_socket(sock, do_handshake_on_connect=False, server_side=True)
        except (ConfigError, ssl.SSLError, OSError) as exc:
            raise cheroot_errors.FatalSSLAlert(str(exc)) from exc
        return wrapped, {"HTTPS": "on", "wsgi.url_scheme": "https"}

    def get_environ(self, sock):  # noqa: ANN001, ANN201
        return {"HTTPS": "on", "wsgi.url_scheme": "https"}


def _readable(sock: Any) -> bool:
    """Whether a socket has something to read now (poll: any descriptor number, TLS or not)."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class _Server(wsgi.Server):
    # Idle keep-alive connections wait in a selector, not in a thread: keep plenty of them.
    keep_alive_conn_limit = 1000

    def process_conn(self, conn: Any) -> None:
        # cheroot hands every new connection straight to a worker thread, which then waits up to
        # the timeout for a request: 16 connections that say nothing would stop everyone else
        # being answered. A new connection with nothing to read yet waits in cheroot's selector
        # instead (as keep-alive connections do) and reaches a worker once it sends something;
        # the selector closes it after the timeout.
        if not getattr(conn, "crmmetrics_seen", False):
            conn.crmmetrics_seen = True
            if not _readable(conn.socket):
                self.put_conn(conn)
                return
        super().process_conn(conn)

    def error_log(self, msg: str = "", level: int = 20, traceback: bool = False) -> None:
        # cheroot reports every dropped connection; those are routine for a scrape target.
        log.debug("cheroot: %s", msg, exc_info=traceback)


class HTTPService:
    """The cheroot server for an app: bind in the constructor, serve in a thread."""

    def __init__(
        self,
        app: ExporterApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        threads: int = 16,
        backlog: int = 1024,
        timeout: float = 10.0,
        web_config: WebConfigFile | None = None,
    ) -> None:
        self.app = app
        self.server = _Server(
            (host, port),
            app,
            numthreads=threads,
            max=threads,
            request_queue_size=backlog,
            timeout=timeout,
            shutdown_timeout=5,
            server_name="crmmetrics",
        )
        self.tls = web_config is not None and web_config.settings().tls is not None
        if self.tls:
            self.server.ssl_adapter = ReloadingSSLAdapter(web_config)
        self.server.prepare()  # binds now, so that a busy port is reported before anything runs
        self.host = host
        self.port = self.server.bind_addr[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def start(self) -> HTTPService:
        self._thread = threading.Thread(target=self.server.serve, name="http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        if self._thread is not None:
            self._thread.join(10)


def make_server(store: Store, host: str = "127.0.0.1", port: int = 0, unit_pairs: Any = None, **options: Any) -> HTTPService:
    """An HTTP server for the exporter endpoints over ``store`` (call start() to serve);
    ``unit_pairs``: the value chain's department-to-channel pairs (crmmetrics.readers.outlook)."""
    allowed = [*LOOPBACK_NAMES, host] if is_loopback(host) else None
    return HTTPService(ExporterApp(store, allowed_hosts=allowed, unit_pairs=unit_pairs), host, port, **options)
