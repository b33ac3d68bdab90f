"""The exporter-toolkit web configuration file: validation, TLS (rotation, client certificates),
basic auth, headers; served in-process by the real HTTP server on loopback, openssl for the
certificates."""

from __future__ import annotations

import base64
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt
import pytest

from crmmetrics.core.errors import ConfigError
from crmmetrics.serve.server import ExporterApp, HTTPService
from crmmetrics.serve.webconfig import WebConfigFile, parse_web_config
from crmmetrics.store.store import Store


def openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert))
    return cert, key


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tls_server_config:\n  cert_file: a.crt\n", "tls_server_config.key_file: required key is missing"),
        ("tls_server_config:\n  cert: '-----BEGIN'\n", "tls_server_config.cert: inline certificates are not supported: use cert_file"),
        ("rate_limit:\n  interval: 1s\n", "rate_limit: not supported"),
        ("colour: red\n", "colour: unknown key"),
        ("basic_auth_users:\n  alice: hunter2\n", "basic_auth_users.alice: expected a bcrypt hash ($2y$...)"),
        ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n", "http_server_config.headers.X-Frame-Options: expected deny or sameorigin, got 'allow'"),
        ("http_server_config:\n  headers:\n    Server: x\n", "http_server_config.headers.Server: not one of Content-Security-Policy"),
        ("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  client_auth_type: RequireAndVerifyClientCert\n",
         "tls_server_config.client_ca_file: client_auth_type RequireAndVerifyClientCert needs a client_ca_file"),
        ("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  min_version: TLS14\n", "tls_server_config.min_version: 'TLS14' is not one of"),
        ("tls_server_config: [1, 2]\n", "tls_server_config: expected a mapping, got list"),
        ("basic_auth_users: {\n", "not valid YAML"),
    ],
)
def test_a_bad_web_config_is_one_line_naming_the_key(tmp_path, text, message):
    path = tmp_path / "web.yml"
    with pytest.raises(ConfigError) as error:
        parse_web_config(text, path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)


def test_missing_certificate_files_are_reported_at_start(tmp_path):
    web = tmp_path / "web.yml"
    web.write_text("tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n")
    with pytest.raises(ConfigError, match=r"tls_server_config: cannot load .*nope\.crt / .*nope\.key"):
        WebConfigFile(web)


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    yield store
    store.engine.dispose()


def serve(store: Store, web: Path) -> HTTPService:
    config = WebConfigFile(web)
    return HTTPService(ExporterApp(store, web_config=config, allowed_hosts=None), "127.0.0.1", 0, web_config=config).start()


def peer_subject(port: int, context: ssl.SSLContext) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return dict(item[0] for item in tls.getpeercert()["subject"])["commonName"]


def test_a_renewed_certificate_is_served_on_the_next_connection_without_a_restart(tmp_path, store):
    cert, key = self_signed(tmp_path, "first")
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    server = serve(store, web)
    try:
        trust = ssl.create_default_context(cafile=str(cert))
        assert peer_subject(server.port, trust) == "first"
        renewed, renewed_key = self_signed(tmp_path, "second")
        time.sleep(0.01)  # a new mtime
        web.write_text(f"tls_server_config:\n  cert_file: {renewed}\n  key_file: {renewed_key}\n")
        assert peer_subject(server.port, ssl.create_default_context(cafile=str(renewed))) == "second"
        # A file broken while running is not applied: requests get 500, TLS keeps the last good certificate.
        web.write_text("tls_server_config:\n  cert_file: [\n")
        context = ssl.create_default_context(cafile=str(renewed))
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(f"{server.url}/-/healthy", context=context, timeout=5)
        assert error.value.code == 500
        web.write_text(f"tls_server_config:\n  cert_file: {renewed}\n  key_file: {renewed_key}\n")
        assert urllib.request.urlopen(f"{server.url}/-/healthy", context=context, timeout=5).status == 200
    finally:
        server.stop()


def test_silent_tls_connections_do_not_hold_the_workers(tmp_path, store):
    cert, key = self_signed(tmp_path, "server")
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    server = serve(store, web)
    silent = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(40)]  # > 16 threads
    try:
        start = time.monotonic()
        context = ssl.create_default_context(cafile=str(cert))
        assert urllib.request.urlopen(f"{server.url}/-/healthy", context=context, timeout=3).read() == b"crmmetrics is healthy\n"
        assert time.monotonic() - start < 1
    finally:
        for sock in silent:
            sock.close()
        server.stop()


def test_client_certificates_when_required(tmp_path, store):
    cert, key = self_signed(tmp_path, "server")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=clients-ca",
            "-keyout", str(tmp_path / "ca.key"), "-out", str(tmp_path / "ca.crt"))
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=prometheus",
            "-keyout", str(tmp_path / "client.key"), "-out", str(tmp_path / "client.csr"))
    openssl("x509", "-req", "-in", str(tmp_path / "client.csr"), "-CA", str(tmp_path / "ca.crt"), "-CAkey", str(tmp_path / "ca.key"),
            "-CAcreateserial", "-days", "2", "-out", str(tmp_path / "client.crt"))
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {cert.name}\n  key_file: {key.name}\n"
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"
        "http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=31536000\n"
        f"basic_auth_users:\n  prom: {hashed}\n"
    )
    server = serve(store, web)
    auth = {"Authorization": "Basic " + base64.b64encode(b"prom:pw").decode()}
    try:
        anonymous = ssl.create_default_context(cafile=str(cert))
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(urllib.request.Request(f"{server.url}/-/healthy", headers=auth), context=anonymous, timeout=5).read()
        identified = ssl.create_default_context(cafile=str(cert))
        identified.load_cert_chain(tmp_path / "client.crt", tmp_path / "client.key")
        response = urllib.request.urlopen(urllib.request.Request(f"{server.url}/-/healthy", headers=auth), context=identified, timeout=5)
        assert response.status == 200 and response.headers["Strict-Transport-Security"] == "max-age=31536000"
        with pytest.raises(urllib.error.HTTPError) as error:  # the certificate does not replace the password
            urllib.request.urlopen(f"{server.url}/-/healthy", context=identified, timeout=5)
        assert error.value.code == 401
    finally:
        server.stop()
