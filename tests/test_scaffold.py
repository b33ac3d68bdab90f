"""``crmmetrics plugins new``: the package it writes installs, passes its own tests, and its metric
reaches every reader: ``plugins --json``, ``metrics list --json``, ``/metrics`` and the dashboards."""

from __future__ import annotations

from datetime import datetime

from crmmetrics.testing import render_exposition
from support.plugin_venv import PluginVenv, dashboard_panels_of, write_config

KEY = "e2e_shop_repeat_customer_rate"


def test_plugins_new_writes_a_package(crmmetrics_cli, tmp_path):
    result = crmmetrics_cli("plugins", "new", "crmmetrics-e2e-shop", "--dir", str(tmp_path / "work"))
    assert result.returncode == 0, result.stderr
    root = tmp_path / "work" / "crmmetrics-e2e-shop"
    assert result.stdout.splitlines()[:5] == [
        f"Created {root}:",
        "  pyproject.toml",
        "  README.md",
        "  crmmetrics_e2e_shop/__init__.py",
        "  tests/test_e2e_shop.py",
    ]
    assert sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()) == [
        "README.md",
        "crmmetrics_e2e_shop/__init__.py",
        "pyproject.toml",
        "tests/test_e2e_shop.py",
    ]
    pyproject = (root / "pyproject.toml").read_text()
    assert '[project.entry-points.crmmetrics]\ne2e_shop = "crmmetrics_e2e_shop"' in pyproject
    assert 'name = "crmmetrics-e2e-shop"' in pyproject
    assert f'REPEAT_CUSTOMER_RATE = "{KEY}"' in (root / "crmmetrics_e2e_shop" / "__init__.py").read_text()
    assert "$" not in "".join(path.read_text() for path in root.rglob("*") if path.is_file())  # every name filled in


def test_plugins_new_refuses_bad_names_and_existing_directories(crmmetrics_cli, tmp_path):
    bad = crmmetrics_cli("plugins", "new", "Loyalty Points", "--dir", str(tmp_path))
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == (
        "Error: plugin name 'Loyalty Points': use lower-case letters, digits and single hyphens, "
        "starting with a letter (e.g. loyalty or loyalty-points)\n"
    )
    (tmp_path / "crmmetrics-taken").mkdir()
    (tmp_path / "crmmetrics-taken" / "notes.txt").write_text("mine")
    taken = crmmetrics_cli("plugins", "new", "taken", "--dir", str(tmp_path))
    assert (taken.returncode, taken.stderr) == (2, f"Error: {tmp_path / 'crmmetrics-taken'}: already exists; choose another name or --dir\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["crmmetrics-taken"]  # nothing else written
    assert [path.name for path in (tmp_path / "crmmetrics-taken").iterdir()] == ["notes.txt"]


def test_scaffold_end_to_end(crm_db, tmp_path):
    venv = PluginVenv(tmp_path / "venv")
    venv.crmmetrics("plugins", "new", "e2e-shop", "--dir", str(tmp_path))
    package = tmp_path / "crmmetrics-e2e-shop"
    venv.install(package)

    # The generated tests pass, run as the author runs them.
    tests = venv.pytest(package)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout

    plugins = {plugin["name"]: plugin for plugin in venv.crmmetrics_json("plugins", cwd=tmp_path)}
    assert {key: plugins["e2e_shop"][key] for key in ("module", "package", "version", "hooks", "metrics")} == {
        "module": "crmmetrics_e2e_shop",
        "package": "crmmetrics-e2e-shop",
        "version": "0.1.0",
        "hooks": ["crmmetrics_metrics", "crmmetrics_standards"],
        "metrics": [KEY],
    }

    [metric] = [m for m in venv.crmmetrics_json("metrics", "list", cwd=tmp_path) if m["key"] == KEY]
    assert (metric["plugin"], metric["process"], metric["perspective"], metric["unit"]) == (
        "e2e_shop", "value_creation", "customer", "percent",
    )
    assert metric["parameters"] == [
        {"name": "min_orders", "type": "int", "default": 2, "description": "Orders in the period that make a customer a repeat customer"}
    ]

    # /metrics after a run: May 2026 has customers 1 (two orders) and 2 (one): 50 %.
    crm_db.insert("customers", [{"customer_id": 1}, {"customer_id": 2}])
    crm_db.insert(
        "orders",
        [
            {"customer_id": 1, "ordered_at": datetime(2026, 5, 1), "net_revenue": 10.0},
            {"customer_id": 1, "ordered_at": datetime(2026, 5, 30), "net_revenue": 10.0},
            {"customer_id": 2, "ordered_at": datetime(2026, 5, 15), "net_revenue": 10.0},
        ],
    )
    service = tmp_path / "service"
    service.mkdir()
    config = write_config(service, crm_db.url, "2026-06-15T00:00:00")
    venv.crmmetrics("run", "--config", str(config), "--metric", KEY, cwd=tmp_path)
    exposition = render_exposition(f"sqlite:///{service / 'store.sqlite'}")
    assert exposition.value("crmmetrics_metric_ratio", metric=KEY, period="current") == 0.5  # 50 percent, as a ratio
    assert exposition.metric_value(KEY, "previous") is None  # April: nobody ordered
    assert exposition.value("crmmetrics_run_up", metric=KEY, plugin="e2e_shop") == 1.0
    # The default standard arrived with the plugin: a KPI with target 30 and a status (red < 15 <= amber < 25 <= green).
    assert exposition.value("crmmetrics_kpi_target_ratio", metric=KEY) == 0.3
    assert exposition.value("crmmetrics_kpi_status", metric=KEY) == 2.0

    venv.crmmetrics("dashboards", "build", "--out", str(tmp_path / "dashboards"), cwd=tmp_path)
    panels = dashboard_panels_of(tmp_path / "dashboards" / "process-value-creation.json", KEY)
    assert panels and all("Repeat customer rate" in title for _, title in panels)
