"""The scorecard tests' scenario: six KPIs from tests/data/scorecard_kpis, computed for real.

``build_scenario`` writes a config that loads only the plugin file ``file:kpis``, runs every
metric with ``crmmetrics run``, and imports the admin's standards file with
``crmmetrics standards import``: the same commands an admin types. The expected figures,
worked out by hand from the values in kpis.py and standards.toml, are in test_scorecard.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "scorecard_kpis"
ENV = {"CRMMETRICS_LOAD_PLUGINS": "file:kpis", "CRMMETRICS_USER": "test-admin"}


@dataclass(frozen=True)
class Scenario:
    directory: Path
    config: Path
    store_url: str

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """``crmmetrics ARGS --config <the scenario's config>`` in a subprocess."""
        return subprocess.run(
            [sys.executable, "-m", "crmmetrics", *args, "--config", str(self.config)],
            cwd=self.directory,
            env={**os.environ, **ENV, **(env or {})},
            capture_output=True,
            text=True,
            timeout=300,
        )


def write_config(directory: Path, crm_url: str) -> Path:
    config = directory / "crmmetrics.toml"
    config.write_text(
        f'[source]\nurl = "{crm_url}"\n[store]\nurl = "sqlite:///{directory / "store.sqlite"}"\n'
        f'[service]\nplugins_dir = "{DATA / "plugins"}"\nas_of = 2026-06-15T00:00:00\n',
        encoding="utf-8",
    )
    return config


def build_scenario(directory: Path, crm_url: str, *, import_standards: bool = True) -> Scenario:
    scenario = Scenario(directory, write_config(directory, crm_url), f"sqlite:///{directory / 'store.sqlite'}")
    for args in (("run",), ("standards", "import", str(DATA / "standards.toml"))) if import_standards else (("run",),):
        done = scenario.cli(*args)
        assert done.returncode == 0, f"crmmetrics {' '.join(args)}: {done.stderr}"
    return scenario
