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
    # Every module of every layer's subpackage, the migrations' template and the scaffold's.
    sources = {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "crmmetrics").rglob("*")
        if p.suffix in (".py", ".mako", ".tmpl") and "__pycache__" not in p.parts
    }
    assert "crmmetrics/cli/scaffold_template/plugin.py.tmpl" in sources and "crmmetrics/core/schema.py" in sources
    assert sorted(sources - names) == []

    # Installed into a fresh environment (dependencies from this one), the console script finds
    # the plugins through their entry points and the demo config through the bundled data.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    # --system-site-packages gives the base interpreter's packages; the test's own environment
    # (a virtualenv, perhaps) is where the dependencies are: put its site-packages on the path.
    import site

    venv_site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True).stdout.strip()
    (Path(venv_site) / "test-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)], check=True, capture_output=True)
    where = subprocess.run(
        [python, "-c", "import crmmetrics, crmmetrics_plugins, crmmetrics.core.resources as r; print(crmmetrics.__file__); print(r.config_dir()); print(crmmetrics_plugins.__file__)"],
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
    scaffold = subprocess.run(
        [venv / "bin" / "crmmetrics", "plugins", "new", "acme-churn", "--dir", str(tmp_path / "scaffold")],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert scaffold.returncode == 0, scaffold.stderr
    assert "crmmetrics_acme_churn" in next((tmp_path / "scaffold").rglob("pyproject.toml")).read_text()

    # The store's migrations ship inside the package and run without an alembic.ini.
    migrations_files = {name for name in names if name.startswith("crmmetrics/store/migrations/")}
    assert {"crmmetrics/store/migrations/env.py", "crmmetrics/store/migrations/script.py.mako", "crmmetrics/store/migrations/versions/0001_baseline.py"} <= migrations_files
    history = subprocess.run([venv / "bin" / "crmmetrics", "store", "history"], capture_output=True, text=True, cwd=tmp_path)
    assert history.returncode == 0 and history.stdout.startswith("0001_baseline"), history.stderr
    current = subprocess.run(
        [venv / "bin" / "crmmetrics", "store", "current", "--config", str(tmp_path / "demo" / "crmmetrics.toml")],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert current.returncode == 0 and current.stdout.strip().endswith("(head)"), current.stderr


def test_wheel_and_sdist_carry_the_licence_and_keep_optional_parts_in_extras(tmp_path):
    import email
    import tarfile

    built = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "-o", str(tmp_path), str(ROOT)],
        capture_output=True, text=True,
    )
    if built.returncode != 0 and "No module named build" in built.stderr:
        built = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
            capture_output=True, text=True,
        )
        subprocess.run([sys.executable, "-c", f"import setuptools.build_meta as b, os; os.chdir({str(ROOT)!r}); b.build_sdist({str(tmp_path)!r})"],
                       check=True, capture_output=True)
    assert built.returncode == 0, built.stderr
    wheel = zipfile.ZipFile(next(tmp_path.glob("crmmetrics-*.whl")))
    info = next(name for name in wheel.namelist() if name.endswith(".dist-info/METADATA"))
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in wheel.namelist())
    metadata = email.message_from_bytes(wheel.read(info))
    assert metadata["License-Expression"] == "Apache-2.0"
    assert "Topic :: System :: Monitoring" in metadata.get_all("Classifier")
    requires = metadata.get_all("Requires-Dist")
    core = [r for r in requires if "extra ==" not in r]
    assert not any(r.startswith(("psycopg", "grafana-client", "niquests", "jsonschema", "pytest")) for r in core), core
    assert any(r.startswith("psycopg[binary]") and 'extra == "postgres"' in r for r in requires)
    assert any(r.startswith("grafana-client") and 'extra == "grafana"' in r for r in requires)
    assert any(r.startswith("duckdb-engine") and 'extra == "duckdb"' in r for r in requires)
    assert any(r.startswith("chdb-sqlalchemy==") and 'extra == "clickhouse"' in r for r in requires)
    assert any(r.startswith("jsonschema") and 'extra == "test"' in r for r in requires)
    sdist = tarfile.open(next(tmp_path.glob("crmmetrics-*.tar.gz")))
    assert any(name.endswith("/LICENSE") for name in sdist.getnames())
    assert "Apache License" in (ROOT / "LICENSE").read_text()[:200]


def test_a_command_needing_an_extra_names_it(tmp_path):
    # Grafana's client hidden as if the extra were not installed.
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "grafana_client.py").write_text("raise ImportError('not installed', name='grafana_client')\n")
    import os

    done = subprocess.run(
        [sys.executable, "-m", "crmmetrics", "dashboards", "push", "--url", "http://127.0.0.1:9"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(blocker)}, cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "Error: dashboards push needs the grafana extra (grafana_client is not installed): pip install 'crmmetrics[grafana]'"
