"""Real servers for the tests, started on loopback: PostgreSQL, Prometheus, crmmetrics serve.

Each comes from its Debian package (scripts/install-test-deps.sh installs them). A missing
server fails the test with the command that installs it; nothing is skipped.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

INSTALL_HINT = "run scripts/install-test-deps.sh (installs prometheus, postgresql and chromium from Debian)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def poll(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - the server may not be up yet
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


def http_get(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None, context: Any = None) -> bytes:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
        return response.read()


class PostgresServer:
    """A throw-away PostgreSQL cluster in a temporary directory, listening on 127.0.0.1."""

    def __init__(self) -> None:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not binaries:
            raise AssertionError(f"PostgreSQL is not installed: {INSTALL_HINT}")
        self.bin = Path(binaries[-1]).parent
        # Its own directory, not pytest's: pytest's is private to root, and the server runs as postgres.
        self.directory = Path(tempfile.mkdtemp(prefix="crmmetrics-pg-"))
        self.data = self.directory / "data"
        self.socket_dir = self.directory / "socket"
        self.port = free_port()
        self.user = "postgres"
        self._as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            pwd.getpwnam("postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command: str) -> None:
        done = subprocess.run([*self._as_user, *command], capture_output=True, text=True)
        if done.returncode != 0:
            raise AssertionError(f"{Path(command[0]).name} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> None:
        self.socket_dir.mkdir(parents=True)
        if self._as_user:
            shutil.chown(self.directory, "postgres")
            shutil.chown(self.socket_dir, "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8")
        self._run(
            str(self.bin / "pg_ctl"),
            "-D", str(self.data),
            "-l", str(self.directory / "server.log"),
            "-o", f"-k {self.socket_dir} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off",
            "-w", "start",
        )

    def pause(self) -> None:
        """Stop the server, keeping its data (an outage); resume() starts it again on the same port."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        self._run(
            str(self.bin / "pg_ctl"),
            "-D", str(self.data),
            "-l", str(self.directory / "server.log"),
            "-o", f"-k {self.socket_dir} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off",
            "-w", "start",
        )

    def stop(self) -> None:
        subprocess.run([*self._as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(self.directory, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"


class PrometheusServer:
    """A real Prometheus in the foreground on loopback with a temporary data directory."""

    def __init__(self, directory: Path) -> None:
        self.binary = shutil.which("prometheus")
        if self.binary is None:
            raise AssertionError(f"Prometheus is not installed: {INSTALL_HINT}")
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(
        self, targets: list[str], rule_files: list[str] | None = None, scrape_interval: str = "1s", scrape: dict[str, Any] | None = None,
        flags: list[str] | None = None,
    ) -> None:
        """``scrape``: more keys of the scrape config (scheme, tls_config, basic_auth); ``flags``: more command-line flags."""
        config = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
            "rule_files": rule_files or [],
            "scrape_configs": [{"job_name": "crmmetrics", "static_configs": [{"targets": targets}], **(scrape or {})}],
        }
        config_path = self.directory / "prometheus.yml"
        config_path.write_text(json.dumps(config))  # JSON is YAML
        self.log = open(self.directory / "prometheus.log", "wb")
        self.process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={self.directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                *(flags or []),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        poll(lambda: http_get(f"{self.url}/-/ready"), 30, "Prometheus to be ready")

    @property
    def data_dir(self) -> Path:
        """The TSDB directory (blocks made by promtool go here before start())."""
        return self.directory / "data"

    def query(self, promql: str, time: float | None = None) -> list[dict[str, Any]]:
        """An instant query, now or at ``time`` (Unix seconds)."""
        params = {"query": promql, **({"time": repr(time)} if time is not None else {})}
        body = http_get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode(params))
        answer = json.loads(body)
        if answer["status"] != "success":
            raise AssertionError(f"query {promql!r} failed: {answer}")
        return answer["data"]["result"]

    def wait_for(self, promql: str, timeout: float = 60) -> list[dict[str, Any]]:
        """Poll until the query returns at least one series (the first scrape takes ~5 s)."""
        return poll(lambda: self.query(promql), timeout, f"Prometheus to return data for {promql}", interval=0.25)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.log.close()


class ServiceProcess:
    """``crmmetrics serve`` in a subprocess on a free loopback port."""

    def __init__(
        self,
        config_path: Path,
        port: int | None = None,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        scheme: str = "http",
        headers: dict[str, str] | None = None,
        context: Any = None,
    ) -> None:
        """``args``: more options of ``serve``; ``headers``/``context``: what this class's own requests send."""
        self.config_path = config_path
        self.port = port or free_port()
        self.env = {**os.environ, **(env or {})}
        self.args = args
        self.scheme = scheme
        self.headers = headers
        self.context = context
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log_path = self.config_path.parent / f"serve-{self.port}.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crmmetrics", "serve", "--config", str(self.config_path), "--port", str(self.port), *self.args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        poll(self._ready, 60, f"crmmetrics serve on port {self.port}")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"crmmetrics serve exited with {self.process.returncode}: {self.log_path.read_text()}")
        return self.get("/-/ready") == b"crmmetrics is ready\n"

    def get(self, path: str, timeout: float = 5.0) -> bytes:
        return http_get(f"{self.url}{path}", timeout=timeout, headers=self.headers, context=self.context)

    def metrics(self) -> str:
        return self.get("/metrics").decode()

    def stop(self) -> int:
        if self.process is None:
            return 0
        self.process.terminate()
        try:
            code = self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.log.close()
        return code
