"""A closed (previous) period is not computed again on every run: its stored values stand while
the tables it needs hold the same rows up to its end; a late correction, a change of parameters
or ``run --recompute`` computes it again. Backfills compute what they are asked."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import date, datetime

import pytest
from sqlalchemy import update

from crmmetrics.compute import runner as runner_module
from crmmetrics.core.config import parse_config
from crmmetrics.core.definitions import ComputeContext
from crmmetrics.data.demo import generate_demo
from crmmetrics.serve.app import App
from crmmetrics.store.store import Observation

AS_OF = datetime(2026, 11, 10)  # current: October 2026 (the last whole month); previous: September
KEY = "vc_aov"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "crm.sqlite"
    generate_demo(f"sqlite:///{path}", customers=800, seed=7, as_of=date(2026, 11, 10))
    return path


@pytest.fixture
def crm(demo, tmp_path):
    path = tmp_path / "crm.sqlite"
    shutil.copy(demo, path)
    return path


@pytest.fixture
def computed(monkeypatch):
    """The period labels compute functions were called for (a context is made only to compute)."""
    labels: list[str] = []

    class Counted(ComputeContext):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            labels.append(self.period.label)

    monkeypatch.setattr(runner_module, "ComputeContext", Counted)
    return labels


def app_on(crm, tmp_path, monkeypatch, params=None) -> App:
    monkeypatch.setenv("CRMMETRICS_LOAD_PLUGINS", "value_creation")
    metrics = {KEY: {"params": params}} if params else {}
    return App.from_config(
        parse_config(
            {"source": {"url": f"sqlite:///{crm}"}, "store": {"url": f"sqlite:///{tmp_path / 'store.sqlite'}"},
             "service": {"as_of": AS_OF}, **({"metrics": metrics} if metrics else {})},
            None,
        )
    )


def september_aov(crm) -> float:
    """By hand: net revenue per order of September 2026, anonymous orders included."""
    with sqlite3.connect(crm) as connection:
        total, orders = connection.execute(
            "SELECT sum(net_revenue), count(*) FROM orders WHERE ordered_at >= '2026-09-01' AND ordered_at < '2026-10-01'"
        ).fetchone()
    return total / orders


def stored(app: App) -> dict[str, float | None]:
    latest = {o.period_label: o.value for o in app.store.latest_observations() if o.metric_key == KEY and not o.dimensions}
    return latest


def add_september_order(crm, net_revenue: float) -> None:
    with sqlite3.connect(crm) as connection:
        connection.execute(
            "INSERT INTO orders (order_id, customer_id, ordered_at, channel_id, net_revenue, cogs) "
            "VALUES ((SELECT max(order_id) + 1 FROM orders), NULL, '2026-09-15 12:00:00.000000', NULL, ?, NULL)",
            (net_revenue,),
        )


def test_a_second_run_keeps_the_closed_period_and_a_late_correction_reaches_it(crm, tmp_path, monkeypatch, computed):
    app = app_on(crm, tmp_path, monkeypatch)
    [first] = app.runner.run_all([KEY])
    assert first.status == "success" and computed == ["current", "previous"]
    values = stored(app)
    assert values["previous"] == pytest.approx(september_aov(crm), rel=1e-12)
    assert first.previous_fingerprint is not None

    computed.clear()
    [second] = app.runner.run_all([KEY])
    assert second.status == "success" and second.id != first.id
    assert computed == ["current"]  # September was not computed again
    assert stored(app) == values  # the latest run carries September's stored value

    # A late correction: an order of September arrives after September was computed.
    before = september_aov(crm)
    add_september_order(crm, 5000.0)
    assert september_aov(crm) != pytest.approx(before)
    computed.clear()
    app.runner.run_all([KEY])
    assert computed == ["current", "previous"]
    assert stored(app)["previous"] == pytest.approx(september_aov(crm), rel=1e-12)

    # ... and from then on it is kept again.
    computed.clear()
    app.runner.run_all([KEY])
    assert computed == ["current"]
    assert stored(app)["previous"] == pytest.approx(september_aov(crm), rel=1e-12)

    # An amount corrected in place (the same rows, times and keys) reaches it too.
    corrected = september_aov(crm)
    with sqlite3.connect(crm) as connection:
        connection.execute("UPDATE orders SET net_revenue = 1000 WHERE order_id = (SELECT max(order_id) FROM orders)")
    assert september_aov(crm) != pytest.approx(corrected)
    computed.clear()
    app.runner.run_all([KEY])
    assert computed == ["current", "previous"]
    assert stored(app)["previous"] == pytest.approx(september_aov(crm), rel=1e-12)


def test_recompute_and_backfill_compute_the_closed_period(crm, tmp_path, monkeypatch, computed):
    from crmmetrics.compute.backfill import plan_backfill, run_backfill

    app = app_on(crm, tmp_path, monkeypatch)
    app.runner.run_all([KEY])
    computed.clear()
    app.runner.run_all([KEY], recompute=True)
    assert computed == ["current", "previous"]
    assert stored(app)["previous"] == pytest.approx(september_aov(crm), rel=1e-12)

    # The recompute is the latest run of the period: the next run reuses its values, not the
    # first run's (a recompute is asked for when a change escaped the fingerprint).
    [recomputed] = app.runner.run_all([KEY], recompute=True)
    assert recomputed.previous_fingerprint is not None
    with app.store.session() as session:
        session.execute(update(Observation).where(Observation.run_id == recomputed.id, Observation.period_label == "previous")
                        .values(value=-1.0))  # marks which stored run the next run takes September from
        session.commit()
    computed.clear()
    app.runner.run_all([KEY])
    assert computed == ["current"] and stored(app)["previous"] == -1.0

    computed.clear()
    run_backfill(app.runner, plan_backfill(app.runner, [KEY], datetime(2026, 10, 1), datetime(2026, 11, 1), force=True))
    assert computed == ["current", "previous"]


def test_other_parameters_compute_the_closed_period_again(crm, tmp_path, monkeypatch, computed):
    app_on(crm, tmp_path, monkeypatch).runner.run_all([KEY])
    computed.clear()
    app = app_on(crm, tmp_path, monkeypatch, params={"basis": "occasion"})  # the same store
    [run] = app.runner.run_all([KEY])
    assert run.status == "success" and computed == ["current", "previous"]


def test_the_cli_run_recompute_flag(crm, tmp_path, monkeypatch, computed):
    from click.testing import CliRunner

    from crmmetrics.cli import cli

    config = tmp_path / "crmmetrics.toml"
    config.write_text(
        f'[source]\nurl = "sqlite:///{crm}"\n[store]\nurl = "sqlite:///{tmp_path / "store.sqlite"}"\n[service]\nas_of = {AS_OF.isoformat()}\n'
    )
    monkeypatch.setenv("CRMMETRICS_LOAD_PLUGINS", "value_creation")
    for flags, expected in (([], ["current", "previous"]), ([], ["current"]), (["--recompute"], ["current", "previous"])):
        computed.clear()
        result = CliRunner().invoke(cli, ["run", "--config", str(config), "--metric", KEY, *flags])
        assert result.exit_code == 0, result.output
        assert computed == expected


def test_the_fingerprint_is_the_same_under_parallel_aggregation_on_postgresql(fresh_pg_db):
    """Integers and times only: the same on fresh connections with every sum aggregated in
    parallel workers (a float sum of the same column may differ in its last digits there)."""
    from sqlalchemy import create_engine, text

    from crmmetrics.core.inputs import Need, source_fingerprint
    from crmmetrics.core.periods import Period

    generate_demo(fresh_pg_db, customers=1000, seed=5, as_of=date(2026, 11, 10))
    engine = create_engine(fresh_pg_db)
    period = Period("previous", datetime(2026, 9, 1), datetime(2026, 10, 1))
    needs = [Need("orders"), Need("customers"), Need("order_lines")]
    fingerprints = []
    for _ in range(2):
        with engine.connect() as connection:
            for setting in ("SET parallel_setup_cost = 0", "SET parallel_tuple_cost = 0", "SET min_parallel_table_scan_size = 0",
                            "SET max_parallel_workers_per_gather = 2"):
                connection.execute(text(setting))
            fingerprints.append(source_fingerprint(connection, needs, period))
    with engine.begin() as connection:
        connection.execute(text("UPDATE orders SET net_revenue = net_revenue + 0.01 WHERE order_id = "
                                "(SELECT min(order_id) FROM orders)"))
    with engine.connect() as connection:
        corrected = source_fingerprint(connection, needs, period)
    engine.dispose()
    assert fingerprints[0] == fingerprints[1]
    assert all(isinstance(v, (int, str)) for v in fingerprints[0]) and fingerprints[0][0] == 1000  # customers, first by name
    assert corrected != fingerprints[0]  # a cent corrected in place, before the period end


def test_a_changed_computation_computes_the_closed_period_again(monkeypatch):
    """The fingerprint names how the metric is computed: the same in every process (so that a
    `crmmetrics run` reuses what the one before stored), another when the code changes."""
    import subprocess
    import sys
    from dataclasses import replace

    from crmmetrics.compute.runner import _definition_identity

    script = (
        "import os; os.environ['CRMMETRICS_LOAD_PLUGINS'] = 'value_creation'\n"
        "from crmmetrics.compute.plugins import get_plugin_manager\n"
        "from crmmetrics.compute.registry import build_registry\n"
        "from crmmetrics.compute.runner import _definition_identity\n"
        "registry = build_registry(get_plugin_manager())\n"
        "print(' '.join(_definition_identity(registry.get(k)) for k in ('vc_aov', 'vc_nps', 'vc_customer_equity')))\n"
    )
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120) for _ in range(2)]
    assert all(run.returncode == 0 for run in runs), runs[0].stderr
    first, second = (run.stdout.split() for run in runs)
    assert first == second and len(set(first)) == 3

    monkeypatch.setenv("CRMMETRICS_LOAD_PLUGINS", "value_creation")
    from crmmetrics.compute.plugins import get_plugin_manager
    from crmmetrics.compute.registry import build_registry

    aov = build_registry(get_plugin_manager()).get("vc_aov")

    def edited(ctx):  # the same name, another body
        return 1.0

    edited.__qualname__ = aov.compute.__qualname__
    assert _definition_identity(replace(aov, compute=aov.compute)) == first[0]
    assert _definition_identity(replace(aov, compute=edited)) != first[0]
