"""The serving surface of ``crmmetrics serve`` under the loads and faults ops teams meet.

Real servers on loopback: ``crmmetrics serve`` in a subprocess, a real PostgreSQL stopped and
started under it, a real Prometheus scraping over TLS with basic auth, openssl for the
certificate. Every load loop is bounded in count and time.
"""

from __future__ import annotations

import base64
import gzip
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from crmmetrics.compute.plugins import get_plugin_manager
from crmmetrics.compute.registry import build_registry
from crmmetrics.core.config import load_config
from crmmetrics.data.demo import generate_demo
from crmmetrics.serve.app import App
from crmmetrics.serve.server import make_server
from support.servers import PostgresServer, free_port, poll

KEYS = [definition.key for definition in build_registry(get_plugin_manager())]


@pytest.fixture(scope="module")
def demo_source(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("serving-source") / "crm.sqlite"
    generate_demo(f"sqlite:///{path}", customers=300, seed=3)
    return path


def write_config(
    directory: Path, source: Path, store_url: str, enabled: dict[str, str], extra: str = "", params: dict[str, str] | None = None
) -> Path:
    """A config running only the metrics of ``enabled`` (key -> every), the others disabled.

    ``params``: key -> the inline table of its parameters, e.g. ``{ max_age_days = 30 }``.
    """
    lines = [f'[source]\nurl = "sqlite:///{source}"', f'[store]\nurl = "{store_url}"', extra]
    for key in KEYS:
        if key in enabled:
            lines.append(f'[metrics.{key}]\nschedule = {{ every = "{enabled[key]}" }}')
            if params and key in params:
                lines.append(f"params = {params[key]}")
        else:
            lines.append(f"[metrics.{key}]\nenabled = false")
    path = directory / "crmmetrics.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def sample(exposition: str, name: str, **labels: str) -> float | None:
    """The value of the first sample of ``name`` with ``labels`` in a text exposition."""
    for family in parse_text(exposition):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def poll_metrics(service, predicate, timeout: float, what: str) -> str:
    """Scrape until ``predicate(exposition)`` holds; returns that exposition."""
    def check():
        exposition = service.metrics()
        return exposition if predicate(exposition) else None

    return poll(check, timeout, what)


def status_of(url: str, method: str = "GET", headers: dict | None = None, context=None, timeout: float = 5) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def proc_status(pid: int) -> tuple[int, int, int]:
    """Threads, resident memory (kB) and open file descriptors of a process."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0]), fds


# --- the HTTP surface in-process --------------------------------------------------------------


@pytest.fixture(scope="module")
def served(demo_source, tmp_path_factory):
    directory = tmp_path_factory.mktemp("served")
    config = write_config(directory, demo_source, "sqlite:///store.sqlite", {"vc_aov": "1h", "mci_channel_revenue_mix": "1h"})
    app = App.from_config(load_config(config))
    app.runner.run_all()
    server = make_server(app.store, "127.0.0.1", 0).start()
    yield server
    server.stop()
    app.store.engine.dispose()


def test_text_is_the_default_and_carries_the_store_and_the_live_self_metrics(served):
    status, body, headers = status_of(served.url + "/metrics")
    assert status == 200 and headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = body.decode()
    assert sample(text, "crmmetrics_metric_currency", metric="vc_aov", period="current") > 0
    assert sample(text, "crmmetrics_build_info")  == 1.0
    assert sample(text, "process_resident_memory_bytes") > 10_000_000
    assert sample(text, "python_gc_collections_total", generation="0") >= 0
    assert sample(text, "crmmetrics_store_up") == 1.0 and sample(text, "crmmetrics_exposition_stale") == 0.0
    assert sample(text, "crmmetrics_scheduled_runs_unstored_total", reason="store_unreachable") == 0.0
    assert "# EOF" not in text


def test_openmetrics_when_asked_ends_in_one_eof_and_parses(served):
    accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    status, body, headers = status_of(served.url + "/metrics", headers={"Accept": accept})  # what Prometheus 2.42 sends
    assert status == 200 and headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    text = body.decode()
    assert text.endswith("\n# EOF\n") and text.count("# EOF") == 1
    families = {family.name: family for family in parse_openmetrics(text)}  # strict: fails on a misplaced EOF
    assert families["crmmetrics_runs"].type == "counter" and families["process_cpu_seconds"].type == "counter"
    assert any(s.labels.get("metric") == "vc_aov" for s in families["crmmetrics_metric_currency"].samples)


def test_gzip_when_accepted_is_the_same_exposition_in_a_tenth_of_the_bytes(served):
    _, plain, _ = status_of(served.url + "/metrics")
    status, body, headers = status_of(served.url + "/metrics", headers={"Accept-Encoding": "gzip, deflate"})
    assert status == 200 and headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in headers["Vary"]
    unzipped = gzip.decompress(body).decode()
    assert len(body) < len(plain) / 5
    # Same families and store samples; the live self-metrics move between two scrapes.
    assert [f.name for f in parse_text(unzipped)] == [f.name for f in parse_text(plain.decode())]
    store_part = plain.decode().split("# HELP process_")[0]
    assert unzipped.startswith(store_part)
    status, body, headers = status_of(
        served.url + "/metrics", headers={"Accept-Encoding": "gzip", "Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert gzip.decompress(body).decode().endswith("# EOF\n")


def test_head_answers_the_headers_without_a_body(served):
    for path in ("/metrics", "/", "/-/healthy"):
        status, body, headers = status_of(served.url + path, method="HEAD")
        assert status == 200 and body == b"" and int(headers["Content-Length"]) > 10, path


def test_health_endpoints_and_errors(served):
    assert status_of(served.url + "/-/healthy")[:2] == (200, b"crmmetrics is healthy\n")
    assert status_of(served.url + "/healthz")[:2] == (200, b"crmmetrics is healthy\n")  # the documented alias
    assert status_of(served.url + "/-/ready")[:2] == (200, b"crmmetrics is ready\n")
    assert status_of(served.url + "/nope")[0] == 404
    status, _, headers = status_of(served.url + "/metrics", method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    assert status_of(served.url + "/-/reload", method="POST")[0] == 404  # only `serve` can reload
    page = status_of(served.url + "/")
    assert page[0] == 200 and page[2]["Content-Type"] == "text/html; charset=utf-8" and b"vc_aov" in page[1]


def test_on_loopback_only_allowed_host_names_are_answered(served):
    port = served.port
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "LOCALHOST", f"[::1]:{port}"):
        assert status_of(served.url + "/-/healthy", headers={"Host": host})[0] == 200, host
    # A page on attacker.example whose name was rebound to 127.0.0.1 sends its own name.
    status, body, _ = status_of(served.url + "/metrics", headers={"Host": f"attacker.example:{port}"})
    assert status == 403 and b"attacker.example" in body and b"crmmetrics_metric_currency" not in body
    assert status_of(served.url + "/", headers={"Host": "127.0.0.1.attacker.example"})[0] == 403


# --- idle connections and time-outs -----------------------------------------------------------


def test_1100_idle_connections_do_not_stop_anyone_being_answered(demo_source, tmp_path, crmmetrics_service):
    # An idle timeout longer than the hold, so that the server really holds all 1,100 for 20 s.
    config = write_config(tmp_path, demo_source, "sqlite:///store.sqlite", {"vc_aov": "1h"}, '[web]\ntimeout = "30s"')
    service = crmmetrics_service(config)
    poll(lambda: sample(service.metrics(), "crmmetrics_runs_total", metric="vc_aov"), 60, "the first run")
    for _ in range(5):
        service.metrics()
    pid = service.process.pid
    threads_before, rss_before, fds_before = proc_status(pid)

    connections = [socket.create_connection(("127.0.0.1", service.port), timeout=5) for _ in range(1100)]
    try:
        slowest, probes, held = 0.0, 0, []
        end = time.monotonic() + 20
        while time.monotonic() < end:
            for path in ("/metrics", "/-/healthy"):
                start = time.monotonic()
                body = service.get(path, timeout=3)  # raises on a time-out or an error status
                slowest = max(slowest, time.monotonic() - start)
                probes += 1
                assert body
            held.append(proc_status(pid))
            time.sleep(0.5)
    finally:
        for connection in connections:
            connection.close()
    assert probes >= 30 and slowest < 3
    # The server held every connection (one descriptor each) without a thread for any of them.
    # A few descriptors besides them come and go (the store's connection, a probe's socket), so
    # the count may be a handful short of before + 1,100; a server dropping idle connections
    # would be hundreds short.
    assert min(fds for _, _, fds in held) >= fds_before + 1100 - 8
    assert max(threads for threads, _, _ in held) <= threads_before + 2

    def settled():
        threads, rss, fds = proc_status(pid)
        return threads <= threads_before + 2 and fds <= fds_before + 5 and (threads, rss, fds)

    threads, rss, fds = poll(settled, 15, "the server to close the connections")
    assert rss < rss_before + 30_000, f"resident memory {rss_before} -> {rss} kB"


def test_a_half_sent_request_is_dropped_after_the_idle_timeout(demo_source, tmp_path, crmmetrics_service):
    config = write_config(tmp_path, demo_source, "sqlite:///store.sqlite", {"vc_aov": "1h"}, '[web]\ntimeout = "2s"')
    service = crmmetrics_service(config)
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as connection:
        connection.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n")  # never finished
        start = time.monotonic()
        while connection.recv(65536):  # cheroot may answer 408 before closing
            pass
        assert time.monotonic() - start < 5
    assert service.get("/-/healthy") == b"crmmetrics is healthy\n"


# --- TLS and basic auth -----------------------------------------------------------------------


def make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "tls.crt", directory / "tls.key"
    done = subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return cert, key


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.prometheus
def test_tls_and_basic_auth_with_a_real_prometheus(demo_source, tmp_path, crmmetrics_service, prometheus):
    import bcrypt

    cert, key = make_certificate(tmp_path)
    web = tmp_path / "web.yml"
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(6)).decode().replace("$2b$", "$2y$", 1)  # as htpasswd writes it
    web.write_text(
        f"tls_server_config:\n  cert_file: {cert.name}\n  key_file: {key.name}\n"
        f"http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    config = write_config(tmp_path, demo_source, "sqlite:///store.sqlite", {"vc_aov": "1h"})
    context = ssl.create_default_context(cafile=str(cert))
    service = crmmetrics_service(
        config, args=("--web.config.file", str(web)), scheme="https", headers=basic("prometheus", "s3cret"), context=context
    )
    url = service.url + "/metrics"
    status, _, headers = status_of(url, context=context)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert status_of(url, headers=basic("prometheus", "wrong"), context=context)[0] == 401
    assert status_of(url, headers=basic("nobody", "s3cret"), context=context)[0] == 401
    status, body, headers = status_of(url, headers=basic("prometheus", "s3cret"), context=context)
    assert status == 200 and b"crmmetrics_build_info" in body and headers["X-Frame-Options"] == "deny"
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):  # plain HTTP is not served
        status = status_of(f"http://127.0.0.1:{service.port}/metrics")[0]
        if status == 400:
            raise OSError("plain HTTP refused")

    # The file is read again when it changes: a new user works without a restart.
    extra = bcrypt.hashpw(b"other", bcrypt.gensalt(6)).decode()
    web.write_text(web.read_text() + f"  grafana: '{extra}'\n")
    assert status_of(url, headers=basic("grafana", "other"), context=context)[0] == 200

    prometheus.start(
        targets=[f"127.0.0.1:{service.port}"],
        scrape={
            "scheme": "https",
            "tls_config": {"ca_file": str(cert)},
            "basic_auth": {"username": "prometheus", "password": "s3cret"},
        },
    )
    prometheus.wait_for('up{job="crmmetrics"} == 1')
    build = prometheus.wait_for('crmmetrics_build_info{job="crmmetrics"}')
    assert build[0]["metric"]["version"]
    assert prometheus.wait_for('crmmetrics_metric_currency{metric="vc_aov", period="current"}')


def test_an_invalid_web_config_stops_serve_with_one_line(demo_source, tmp_path):
    config = write_config(tmp_path, demo_source, "sqlite:///store.sqlite", {"vc_aov": "1h"})
    web = tmp_path / "web.yml"
    web.write_text("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n  client_auth_type: Sometimes\n")
    done = subprocess.run(
        [sys.executable, "-m", "crmmetrics", "serve", "--config", str(config), "--port", str(free_port()), "--web.config.file", str(web)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].endswith(
        "tls_server_config.client_auth_type: 'Sometimes' is not one of NoClientCert, RequestClientCert, "
        "RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
    )


# --- a store outage ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_store_outage_serves_the_last_exposition_counts_runs_and_recovers(demo_source, tmp_path, crmmetrics_service):
    pg = PostgresServer()  # its own server: this test stops it
    pg.start()
    try:
        config = write_config(tmp_path, demo_source, pg.url(), {"vc_aov": "2s", "sd_active_customers": "2s"})
        service = crmmetrics_service(config)
        before = poll_metrics(service, lambda m: (sample(m, "crmmetrics_runs_total", metric="vc_aov") or 0) >= 2, 60, "runs")
        value = sample(before, "crmmetrics_metric_currency", metric="vc_aov", period="current")
        log_start = service.log_path.stat().st_size

        pg.pause()
        outage_end = time.monotonic() + 12
        scrapes = 0
        while time.monotonic() < outage_end:
            exposition = service.metrics()  # raises unless 200
            assert sample(exposition, "crmmetrics_metric_currency", metric="vc_aov", period="current") == value
            scrapes += 1
            time.sleep(0.5)
        assert sample(exposition, "crmmetrics_store_up") == 0.0 and sample(exposition, "crmmetrics_exposition_stale") == 1.0
        assert sample(exposition, "crmmetrics_scheduled_runs_unstored_total", reason="store_unreachable") >= 6
        status, body, _ = status_of(service.url + "/-/ready")
        assert status == 503 and body.startswith(b"not ready: the store cannot be read (OperationalError")
        assert status_of(service.url + "/-/healthy")[0] == 200

        pg.resume()
        poll(lambda: service.get("/-/ready") == b"crmmetrics is ready\n", 30, "ready again")
        runs_before = sample(service.metrics(), "crmmetrics_runs_total", metric="vc_aov")
        after = poll_metrics(service, lambda m: sample(m, "crmmetrics_runs_total", metric="vc_aov") > runs_before, 30, "new runs")
        assert sample(after, "crmmetrics_store_up") == 1.0 and sample(after, "crmmetrics_exposition_stale") == 0.0
        unstored = sample(after, "crmmetrics_scheduled_runs_unstored_total", reason="store_unreachable")
        log = service.log_path.read_bytes()[log_start:].decode()
        assert "Traceback" not in log
        failures = [line for line in log.splitlines() if "could not be stored" in line]
        assert len(failures) == unstored  # one line per failed run
        # And little else: besides the stored runs' own lines, the store going away and coming back.
        others = [line for line in log.splitlines() if "status=success" not in line and "could not be stored" not in line]
        assert len(others) <= 4, others
        assert not any("standing by" in line for line in others)  # the lock is taken back, scheduling goes on
    finally:
        pg.stop()


# --- reload -----------------------------------------------------------------------------------


STANDARD = "[standards.vc_aov]\ntarget = {target}\nred = 10.0\ngreen = 50.0\nowner = 'Sales'\n"


def kpi_target(exposition: str) -> float | None:
    return sample(exposition, "crmmetrics_kpi_target_currency", metric="vc_aov")


def freshness(exposition: str) -> float | None:
    """The share of records updated within ``max_age_days`` (a parameter, 365 by default), 0-1."""
    return sample(exposition, "crmmetrics_metric_ratio", metric="im_data_freshness", period="current")


def test_reload_applies_a_good_config_and_keeps_the_old_one_on_a_bad_one(demo_source, tmp_path, crmmetrics_service):
    standards = tmp_path / "standards.toml"
    standards.write_text(STANDARD.format(target=100.0))
    service_section = '[service]\nstandards_file = "standards.toml"'
    config = write_config(tmp_path, demo_source, "sqlite:///store.sqlite", {"vc_aov": "1h", "im_data_freshness": "1s"}, service_section)
    service = crmmetrics_service(config)
    first = poll_metrics(
        service,
        lambda m: kpi_target(m) is not None and freshness(m) is not None and sample(m, "crmmetrics_runs_total", metric="vc_aov"),
        60,
        "the standard, a freshness value and the start-up run of vc_aov",
    )
    fresh_within_365_days = freshness(first)
    assert kpi_target(first) == 100.0 and sample(first, "crmmetrics_runs_total", metric="sd_active_customers") is None
    assert sample(first, "crmmetrics_config_last_reload_successful") == 1.0

    # A page on another site cannot make the operator's browser trigger a reload.
    status, body, _ = status_of(service.url + "/-/reload", method="POST", headers={"Origin": "https://attacker.example"})
    assert status == 403 and b"attacker.example" in body

    assert status_of(service.url + "/-/healthy", headers={"Host": "crm.internal"})[0] == 403

    # A good change: a metric enabled, a schedule, a standard, a host name.
    web_section = '\n[web]\nallowed_hosts = ["crm.internal"]'
    write_config(
        tmp_path,
        demo_source,
        "sqlite:///store.sqlite",
        {"vc_aov": "1s", "sd_active_customers": "1h", "im_data_freshness": "1s"},
        service_section + web_section,
        params={"im_data_freshness": "{ max_age_days = 30 }"},
    )
    standards.write_text(STANDARD.format(target=120.0))
    assert status_of(service.url + "/-/reload", method="POST")[:2] == (200, b"configuration reloaded\n")
    assert status_of(service.url + "/-/healthy", headers={"Host": "crm.internal:9632"})[0] == 200
    runs_then = sample(service.metrics(), "crmmetrics_runs_total", metric="vc_aov")
    applied = poll_metrics(
        service,
        lambda m: sample(m, "crmmetrics_runs_total", metric="sd_active_customers")
        and sample(m, "crmmetrics_runs_total", metric="vc_aov") >= runs_then + 3
        and freshness(m) < fresh_within_365_days,
        30,
        "the new schedule, the enabled metric and the new parameter",
    )
    assert kpi_target(applied) == 120.0 and sample(applied, "crmmetrics_config_last_reload_successful") == 1.0

    # A bad change is refused over HTTP with the reason; the old configuration keeps running.
    good_text = config.read_text()
    config.write_text(good_text.replace("[service]", "[service]\ncolour = 'red'"))
    status, body, _ = status_of(service.url + "/-/reload", method="POST")
    assert status == 500 and body.decode().endswith(f"{config}: service.colour: unknown key\n")
    refused = service.metrics()
    assert sample(refused, "crmmetrics_config_last_reload_successful") == 0.0
    runs_refused = sample(refused, "crmmetrics_runs_total", metric="vc_aov")
    poll(lambda: sample(service.metrics(), "crmmetrics_runs_total", metric="vc_aov") >= runs_refused + 2, 20, "vc_aov still every 1s")

    # SIGHUP: a bad standards file is refused the same way, then a good one is applied.
    config.write_text(good_text)
    standards.write_text(STANDARD.format(target="'lots'"))
    service.process.send_signal(signal.SIGHUP)
    poll(lambda: b"reload refused" in service.log_path.read_bytes() and b"standards.vc_aov.target" in service.log_path.read_bytes(), 20, "the refusal")
    assert sample(service.metrics(), "crmmetrics_config_last_reload_successful") == 0.0
    assert kpi_target(service.metrics()) == 120.0
    standards.write_text(STANDARD.format(target=130.0))
    service.process.send_signal(signal.SIGHUP)
    done = poll_metrics(service, lambda m: kpi_target(m) == 130.0, 20, "the SIGHUP reload")
    assert sample(done, "crmmetrics_config_last_reload_successful") == 1.0
    assert re.search(r"configuration reloaded from .*standards\.toml: 1 standards, 1 changed", service.log_path.read_text())
