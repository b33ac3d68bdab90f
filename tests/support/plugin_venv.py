"""A fresh virtual environment beside crmmetrics, for installing a plugin package end to end.

The environment sees the system's site-packages (crmmetrics and its dependencies, pytest, the
build backend), so installing a plugin needs no network: ``pip install --no-build-isolation
--no-deps``. What it installs stays in the environment; the test process is not affected.
"""

from __future__ import annotations

import json
import site
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any


class PluginVenv:
    """``python -m venv --system-site-packages`` in ``directory``; run its Python and ``crmmetrics``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(directory)], check=True)
        self.python = str(directory / "bin" / "python")
        if sys.prefix != sys.base_prefix:
            # The tests run in a virtual environment: its packages (crmmetrics among them) are not
            # the system's, so the new environment is pointed at them too, after its own.
            own = Path(sysconfig.get_path("purelib", vars={"base": str(directory), "platbase": str(directory)}))
            lines = "".join(f"import site; site.addsitedir({path!r})\n" for path in site.getsitepackages())
            (own / "crmmetrics-test-parent.pth").write_text(lines, encoding="utf-8")

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        """Run this environment's Python with ``args``; the output is captured as text."""
        return subprocess.run([self.python, *args], cwd=cwd, capture_output=True, text=True, timeout=300)

    def install(self, package: Path) -> None:
        """pip-install the package directory (a real build of a wheel, then its installation)."""
        result = self.run("-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps", str(package))
        assert result.returncode == 0, f"pip install {package} failed:\n{result.stdout}{result.stderr}"

    def crmmetrics(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        result = self.run("-m", "crmmetrics", *args, cwd=cwd)
        assert result.returncode == 0, f"crmmetrics {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
        return result

    def crmmetrics_json(self, *args: str, cwd: Path | None = None) -> Any:
        return json.loads(self.crmmetrics(*args, "--json", cwd=cwd).stdout)

    def pytest(self, package: Path) -> subprocess.CompletedProcess:
        """Run a package's own tests, as its author would: ``pytest`` in its directory."""
        return self.run("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=package)


def dashboard_panels_of(dashboard: Path, metric: str) -> list[tuple[str, str]]:
    """(panel type, title) of every panel of a generated dashboard with a query on ``metric``."""
    found = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            if any(f'metric="{metric}"' in target.get("expr", "") for target in panel.get("targets", [])):
                found.append((panel["type"], panel["title"]))
            walk(panel.get("panels", []))

    walk(json.loads(dashboard.read_text(encoding="utf-8"))["panels"])
    return found


def write_config(directory: Path, source_url: str, as_of: str) -> Path:
    """A crmmetrics.toml on ``source_url`` with its store beside it and a fixed as-of time."""
    path = directory / "crmmetrics.toml"
    path.write_text(
        f'[source]\nurl = "{source_url}"\n[store]\nurl = "sqlite:///store.sqlite"\n[service]\nas_of = {as_of}\n',
        encoding="utf-8",
    )
    return path
