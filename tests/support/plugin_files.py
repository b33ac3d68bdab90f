"""Real plugins for the tests: one-off plugin files, and installed distributions with entry points.

``install_distribution`` writes what pip writes for a package (the module and a ``.dist-info``
directory with ``entry_points.txt``) into a directory that a subprocess gets on PYTHONPATH, so
``importlib.metadata`` finds the plugin exactly as it finds a pip-installed one.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

# A plugin file defining metric t_orders: the number of orders in the period.
ORDERS_METRIC = '''
from sqlalchemy import func, select

from crmmetrics import MetricDefinition, hookimpl
from crmmetrics.kpi.sql import in_period


def orders_in_period(ctx):
    orders = ctx.tables["orders"]
    return ctx.scalar(select(func.count()).where(in_period(orders.c.ordered_at, ctx.period)))


@hookimpl
def crmmetrics_metrics():
    return [
        MetricDefinition(
            key="t_orders", name="Orders", description="Orders in the period", process="value_creation",
            perspective="customer", value_lens="customer_value", unit="count", direction="higher_is_better",
            compute=orders_in_period,
        )
    ]
'''


def write_plugin_file(directory: Path, stem: str, source: str) -> Path:
    """Write ``directory/stem.py`` (the plugin ``file:stem`` when directory is the plugins_dir)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def install_distribution(site: Path, distribution: str, module: str, source: str, entry_point: str) -> Path:
    """Install module ``module`` into ``site`` as distribution ``distribution`` with a crmmetrics entry point."""
    write_plugin_file(site, module, source)
    info = site / f"{distribution.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[crmmetrics]\n{entry_point} = {module}\n", encoding="utf-8")
    return site
