"""TLS and basic auth from the Prometheus exporter-toolkit web configuration file.

Ops teams already write this file for node_exporter and friends (``--web.config.file``), so
crmmetrics reads the same YAML::

    tls_server_config:
      cert_file: /etc/crmmetrics/tls.crt
      key_file: /etc/crmmetrics/tls.key
      client_auth_type: RequireAndVerifyClientCert   # default NoClientCert
      client_ca_file: /etc/crmmetrics/clients-ca.crt
      min_version: TLS12                              # default TLS12; max_version default TLS13
    http_server_config:
      headers:
        X-Frame-Options: deny
    basic_auth_users:
      prometheus: $2y$10$...                          # bcrypt, e.g. htpasswd -nBC 10 "" | tr -d ':\\n'

As exporter-toolkit does, the file is read again whenever it changes: basic auth users and
headers per request, certificates per new TLS connection, so a renewed certificate or a new
password applies without a restart. Whether TLS is on at all is decided at start-up. A file
that became invalid while running is not applied: requests get 500 (as exporter-toolkit
answers) and one log line says why, until the file is fixed.

Not supported (refused with a clear error rather than ignored): inline ``cert``/``key``/
``client_ca``, ``client_allowed_sans``, ``cipher_suites``, ``curve_preferences`` and
``rate_limit``. ``http2`` is accepted and has no effect: the server speaks HTTP/1.1.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import logging
import os
import ssl
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crmmetrics.core.errors import ConfigError

log = logging.getLogger("crmmetrics.web")

CLIENT_AUTH_TYPES = {
    "NoClientCert": (ssl.CERT_NONE, False),
    "RequestClientCert": (ssl.CERT_OPTIONAL, False),
    "RequireAnyClientCert": (ssl.CERT_REQUIRED, False),
    "VerifyClientCertIfGiven": (ssl.CERT_OPTIONAL, True),
    "RequireAndVerifyClientCert": (ssl.CERT_REQUIRED, True),
}
TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# exporter-toolkit's headers and the values it accepts (None: any text).
HEADERS = {
    "Content-Security-Policy": None,
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-Content-Type-Options": ("nosniff",),
    "X-XSS-Protection": None,
    "Strict-Transport-Security": None,
}
TLS_KEYS = ("cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version")
UNSUPPORTED = {
    "cert": "inline certificates are not supported: use cert_file",
    "key": "inline keys are not supported: use key_file",
    "client_ca": "an inline client CA is not supported: use client_ca_file",
    "client_allowed_sans": "not supported",
    "cipher_suites": "not supported (Go cipher suite names; Python's defaults apply)",
    "curve_preferences": "not supported",
    "prefer_server_cipher_suites": "not supported",
    "rate_limit": "not supported",
}


@functools.cache
def _dummy_hash() -> bytes:
    """A hash checked when the user is unknown, so that both cases take the same time."""
    import bcrypt

    return bcrypt.hashpw(b"not a password", bcrypt.gensalt(10))


@dataclass(frozen=True)
class TLSSettings:
    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: str = "TLS12"
    max_version: str = "TLS13"

    def context(self) -> ssl.SSLContext:
        """A server SSLContext; ConfigError naming the file if a certificate cannot be loaded."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = TLS_VERSIONS[self.min_version]
        context.maximum_version = TLS_VERSIONS[self.max_version]
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"tls_server_config: cannot load {self.cert_file} / {self.key_file}: {exc}") from None
        verify_mode, verify = CLIENT_AUTH_TYPES[self.client_auth_type]
        if self.client_ca_file is not None:
            try:
                context.load_verify_locations(cafile=self.client_ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"tls_server_config.client_ca_file: cannot load {self.client_ca_file}: {exc}") from None
        # Python cannot request a certificate without verifying it against some CA: the
        # "any certificate" types verify against client_ca_file when one is given.
        context.verify_mode = verify_mode
        return context


@dataclass(frozen=True)
class WebSettings:
    """One valid reading of the web configuration file."""

    tls: TLSSettings | None = None
    headers: dict[str, str] = field(default_factory=dict)
    users: dict[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash


def _where(path: Path, key: str) -> str:
    return f"{path}: {key}"


def _mapping(value: Any, path: Path, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{_where(path, key)}: expected a mapping, got {type(value).__name__}")
    return value


def parse_web_config(text: str, path: Path) -> WebSettings:
    """Validate the YAML text of a web configuration file; ConfigError on the first problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    data = _mapping(data, path, "(top level)")
    for key in data:
        if key not in ("tls_server_config", "http_server_config", "basic_auth_users"):
            raise ConfigError(f"{_where(path, key)}: {UNSUPPORTED.get(key, 'unknown key')}")
    base = path.parent

    def file(value: Any, key: str) -> Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{_where(path, key)}: expected a file name")
        resolved = Path(value).expanduser()
        return resolved if resolved.is_absolute() else base / resolved

    tls = None
    section = _mapping(data.get("tls_server_config"), path, "tls_server_config")
    if section:
        for key in section:
            if key not in TLS_KEYS:
                raise ConfigError(f"{_where(path, 'tls_server_config.' + key)}: {UNSUPPORTED.get(key, 'unknown key')}")
        for key in ("cert_file", "key_file"):
            if key not in section:
                raise ConfigError(f"{_where(path, 'tls_server_config.' + key)}: required key is missing")
        auth_type = section.get("client_auth_type", "NoClientCert")
        if auth_type not in CLIENT_AUTH_TYPES:
            raise ConfigError(
                f"{_where(path, 'tls_server_config.client_auth_type')}: {auth_type!r} is not one of {', '.join(CLIENT_AUTH_TYPES)}"
            )
        for key in ("min_version", "max_version"):
            if key in section and section[key] not in TLS_VERSIONS:
                raise ConfigError(f"{_where(path, 'tls_server_config.' + key)}: {section[key]!r} is not one of {', '.join(TLS_VERSIONS)}")
        ca = file(section["client_ca_file"], "tls_server_config.client_ca_file") if section.get("client_ca_file") else None
        if CLIENT_AUTH_TYPES[auth_type][1] and ca is None:
            raise ConfigError(f"{_where(path, 'tls_server_config.client_ca_file')}: client_auth_type {auth_type} needs a client_ca_file")
        tls = TLSSettings(
            cert_file=file(section["cert_file"], "tls_server_config.cert_file"),
            key_file=file(section["key_file"], "tls_server_config.key_file"),
            client_auth_type=auth_type,
            client_ca_file=ca,
            min_version=section.get("min_version", "TLS12"),
            max_version=section.get("max_version", "TLS13"),
        )
        tls.context()  # certificates that cannot be loaded are a configuration error now, not per connection

    http = _mapping(data.get("http_server_config"), path, "http_server_config")
    headers: dict[str, str] = {}
    for key, value in http.items():
        if key == "http2":
            if not isinstance(value, bool):
                raise ConfigError(f"{_where(path, 'http_server_config.http2')}: expected true or false")
            continue
        if key != "headers":
            raise ConfigError(f"{_where(path, 'http_server_config.' + key)}: unknown key")
        for name, header_value in _mapping(value, path, "http_server_config.headers").items():
            if name not in HEADERS:
                raise ConfigError(f"{_where(path, 'http_server_config.headers.' + str(name))}: not one of {', '.join(HEADERS)}")
            if header_value in (None, ""):
                continue
            allowed = HEADERS[name]
            if not isinstance(header_value, str) or (allowed and header_value.lower() not in allowed):
                expected = " or ".join(allowed) if allowed else "text"
                raise ConfigError(f"{_where(path, 'http_server_config.headers.' + name)}: expected {expected}, got {header_value!r}")
            headers[name] = header_value

    users: dict[str, bytes] = {}
    for user, hashed in _mapping(data.get("basic_auth_users"), path, "basic_auth_users").items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ConfigError(f"{_where(path, 'basic_auth_users.' + str(user))}: expected a bcrypt hash ($2y$...)")
        users[str(user)] = hashed.encode()
    return WebSettings(tls=tls, headers=headers, users=users)


class WebConfigFile:
    """The web configuration file, read again whenever it changes (checked by stat per use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._settings: WebSettings | None = None
        self._context: ssl.SSLContext | None = None
        self._error: str | None = None
        self._auth_cache: OrderedDict[bytes, bool] = OrderedDict()
        self.settings()  # raises ConfigError: a bad file at start-up stops the service

    def _read(self) -> None:
        """Re-read if the file changed; keep the last good settings and set ``_error`` if invalid."""
        try:
            stat = os.stat(self.path)
            stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except OSError as exc:
            stamp, problem = None, f"{self.path}: cannot read web config file: {exc.strerror}"
        else:
            problem = None
        if stamp is not None and stamp == self._stamp:
            return
        if problem is None:
            try:
                settings = parse_web_config(self.path.read_text(encoding="utf-8"), self.path)
                context = settings.tls.context() if settings.tls else None
            except ConfigError as exc:
                problem = str(exc)
            except OSError as exc:
                problem = f"{self.path}: cannot read web config file: {exc.strerror}"
        if problem is not None:
            if problem != self._error:
                log.error("web config not applied: %s", problem)
            self._error, self._stamp = problem, stamp
            return
        if self._settings is not None:
            log.info("web config %s re-read", self.path)
        self._settings, self._context, self._error, self._stamp = settings, context, None, stamp
        self._auth_cache.clear()

    def settings(self) -> WebSettings:
        """The settings in force; ConfigError if the file is invalid now."""
        with self._lock:
            self._read()
            if self._error is not None:
                raise ConfigError(self._error)
            assert self._settings is not None
            return self._settings

    def ssl_context(self) -> ssl.SSLContext:
        """The SSLContext for a new connection (the last good one if the file is invalid now)."""
        with self._lock:
            self._read()
            if self._context is None:
                raise ConfigError(self._error or f"{self.path}: tls_server_config is gone; restart to serve plain HTTP")
            return self._context

    def authorised(self, settings: WebSettings, header: str | None) -> bool:
        """Whether an Authorization header names a user of ``settings`` with the right password."""
        import bcrypt

        if not header or not header.startswith("Basic "):
            return False
        try:
            user, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if not sep:
            return False
        hashed = settings.users.get(user)
        # bcrypt costs ~70 ms at cost 10: cache the outcome per (user, password, hash), as
        # exporter-toolkit does, keyed by a digest so that no password is kept in memory.
        key = hashlib.sha256(b"\0".join([user.encode(), password.encode(), hashed or b""])).digest()
        with self._lock:
            if key in self._auth_cache:
                self._auth_cache.move_to_end(key)
                return self._auth_cache[key]
        ok = bcrypt.checkpw(password.encode(), hashed if hashed else _dummy_hash()) and hashed is not None
        with self._lock:
            self._auth_cache[key] = ok
            while len(self._auth_cache) > 256:
                self._auth_cache.popitem(last=False)
        return ok
