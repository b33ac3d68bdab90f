"""A non-editable install carries the built-in plugins, the default config and the dashboards."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_installs_with_plugins_config_and_dashboards(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("crmmetrics-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for process in ("strategy_development", "value_creation", "multichannel_integration", "information_management", "performance_assessment"):
        assert f"crmmetrics_plugins/{process}.py" in names
    assert "crmmetrics/bundled/config/crmmetrics.toml" in names
    shipped_dashboards = {p.relative_to(ROOT / "dashboards").as_posix() for p in (ROOT / "dashboards").rglob("*.json")}
    assert {f"crmmetrics/bundled/dashboards/{name}" for name in shipped_dashboards} <= names

    # Installed into a fresh environment (dependencies from this one), the console script finds
    # the plugins through their entry points and the demo config through the bundled data.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)], check=True, capture_output=True)
    where = subprocess.run(
        [python, "-c", "import crmmetrics, crmmetrics_plugins, crmmetrics.resources as r; print(crmmetrics.__file__); print(r.config_dir()); print(crmmetrics_plugins.__file__)"],
        capture_output=True, text=True, cwd=tmp_path, check=True,
    ).stdout.split()
    assert all(str(venv) in line for line in where), where
    assert (Path(where[1]) / "crmmetrics.toml").is_file()
    listed = subprocess.run([venv / "bin" / "crmmetrics", "plugins", "--json"], capture_output=True, text=True, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    plugins = {entry["name"]: entry for entry in json.loads(listed.stdout)}
    assert str(venv) in plugins["value_creation"]["file"]
    demo = subprocess.run(
        [venv / "bin" / "crmmetrics", "demo", "--dir", str(tmp_path / "demo"), "--customers", "100", "--once", "--history-months", "0"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert demo.returncode == 0, demo.stderr
    assert "# crmmetrics configuration." in (tmp_path / "demo" / "crmmetrics.toml").read_text()
