"""A closed period (one that ended before the run's as-of time: the previous period, and the
current one of a calendar period such as the last full month) is not computed again on every
run: its stored values stand while the tables it needs hold the same rows up to its end; a late
correction, a change of parameters or ``run --recompute`` computes it again. A period ending at
the as-of time (to date, trailing) is always computed. Backfills compute what they are asked."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import date, datetime

import pytest
from sqlalchemy import text, update

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


def app_on(crm, tmp_path, monkeypatch, params=None, period=None, as_of=AS_OF, source=None, key=KEY) -> App:
    monkeypatch.setenv("CRMMETRICS_LOAD_PLUGINS", "value_creation")
    settings = {**({"params": params} if params else {}), **({"period": period} if period else {})}
    return App.from_config(
        parse_config(
            {"source": {"url": source or f"sqlite:///{crm}"}, "store": {"url": f"sqlite:///{tmp_path / 'store.sqlite'}"},
             "service": {"as_of": as_of}, **({"metrics": {key: settings}} if settings else {})},
            None,
        )
    )


def aov(crm, start: str = "2026-09-01", end: str = "2026-10-01") -> float:
    """By hand: net revenue per order in [start, end), anonymous orders included."""
    with sqlite3.connect(crm) as connection:
        total, orders = connection.execute(
            "SELECT sum(net_revenue), count(*) FROM orders WHERE ordered_at >= ? AND ordered_at < ?", (start, end)
        ).fetchone()
    return total / orders


def september_aov(crm) -> float:
    return aov(crm)


def october_aov(crm) -> float:
    return aov(crm, "2026-10-01", "2026-11-01")


def stored(app: App, key: str = KEY) -> dict[str, float | None]:
    latest = {o.period_label: o.value for o in app.store.latest_observations() if o.metric_key == key and not o.dimensions}
    return latest


def add_order(crm, net_revenue: float, ordered_at: str = "2026-09-15 12:00:00.000000") -> None:
    with sqlite3.connect(crm) as connection:
        connection.execute(
            "INSERT INTO orders (order_id, customer_id, ordered_at, channel_id, net_revenue, cogs) "
            "VALUES ((SELECT max(order_id) + 1 FROM orders), NULL, ?, NULL, ?, NULL)",
            (ordered_at, net_revenue),
        )


def test_a_second_run_keeps_the_closed_periods_and_a_late_correction_reaches_them(crm, tmp_path, monkeypatch, computed):
    app = app_on(crm, tmp_path, monkeypatch)
    [first] = app.runner.run_all([KEY])
    assert first.status == "success" and computed == ["current", "previous"]
    values = stored(app)
    assert values["previous"] == pytest.approx(september_aov(crm), rel=1e-12)
    assert values["current"] == pytest.approx(october_aov(crm), rel=1e-12)
    assert first.previous_fingerprint is not None and first.current_fingerprint is not None

    # As of 10 November both months are over: neither is computed again.
    computed.clear()
    [second] = app.runner.run_all([KEY])
    assert second.status == "success" and second.id != first.id
    assert computed == []
    assert stored(app) == values  # the latest run carries both stored values
    assert (second.previous_fingerprint, second.current_fingerprint) == (first.previous_fingerprint, first.current_fingerprint)

    # A late correction of October: October is computed again, September (whose inputs end on
    # 1 October) is kept.
    add_order(crm, 5000.0, "2026-10-20 08:00:00.000000")
    assert october_aov(crm) != pytest.approx(values["current"])
    computed.clear()
    app.runner.run_all([KEY])
    assert computed == ["current"]
    assert stored(app) == {"current": pytest.approx(october_aov(crm), rel=1e-12), "previous": values["previous"]}

    # A late correction of September: both are computed again (October's inputs are the history
    # up to its end, which CLV and retention read).
    before = september_aov(crm)
    add_order(crm, 5000.0)
    assert september_aov(crm) != pytest.approx(before)
    computed.clear()
    app.runner.run_all([KEY])
    assert computed == ["current", "previous"]
    assert stored(app)["previous"] == pytest.approx(september_aov(crm), rel=1e-12)

    # ... and from then on both are kept again.
    computed.clear()
    app.runner.run_all([KEY])
    assert computed == []
    assert stored(app) == {"current": pytest.approx(october_aov(crm), rel=1e-12), "previous": pytest.approx(september_aov(crm), rel=1e-12)}

    # An amount corrected in place (the same rows, times and keys) reaches it too.
    corrected = september_aov(crm)
    with sqlite3.connect(crm) as connection:
        connection.execute("UPDATE orders SET net_revenue = 1000 WHERE order_id = (SELECT max(order_id) FROM orders)")
    assert september_aov(crm) != pytest.approx(corrected)
    computed.clear()
    app.runner.run_all([KEY])
    assert computed == ["current", "previous"]
    assert stored(app)["previous"] == pytest.approx(september_aov(crm), rel=1e-12)


def test_a_period_ending_at_the_as_of_time_is_always_computed(crm, tmp_path, monkeypatch, computed):
    # Month to date as of 10 November: the current period is 1-10 November, still open.
    app = app_on(crm, tmp_path, monkeypatch, period="month_to_date")
    for expected in (["current", "previous"], ["current"], ["current"]):
        computed.clear()
        [run] = app.runner.run_all([KEY])
        assert run.status == "success" and computed == expected
        assert run.current_fingerprint is None
    assert stored(app)["current"] == pytest.approx(aov(crm, "2026-11-01", "2026-11-10"), rel=1e-12)

    # The last full month as of its very end (1 November, 00:00) is not yet before the as-of
    # time: it is computed, as the open period it was a moment ago.
    (tmp_path / "midnight").mkdir()
    app = app_on(crm, tmp_path / "midnight", monkeypatch, as_of=datetime(2026, 11, 1))
    for expected in (["current", "previous"], ["current"]):
        computed.clear()
        app.runner.run_all([KEY])
        assert computed == expected
    assert stored(app)["current"] == pytest.approx(october_aov(crm), rel=1e-12)


def test_last_months_current_period_is_this_months_previous(crm, tmp_path, monkeypatch, computed):
    # As of 10 November October is the current month; as of 10 December it is the previous one,
    # kept from the November run (its inputs are unchanged), and November is computed.
    app_on(crm, tmp_path, monkeypatch).runner.run_all([KEY])
    computed.clear()
    app = app_on(crm, tmp_path, monkeypatch, as_of=datetime(2026, 12, 10))
    [run] = app.runner.run_all([KEY])
    assert run.status == "success" and computed == ["current"]
    assert stored(app) == {"current": pytest.approx(aov(crm, "2026-11-01", "2026-12-01"), rel=1e-12),
                           "previous": pytest.approx(october_aov(crm), rel=1e-12)}

    # Back to 10 November: October, the current month again, is not taken from the December run,
    # where it was the previous month (the per-customer values kept are a current period's).
    computed.clear()
    app_on(crm, tmp_path, monkeypatch).runner.run_all([KEY])
    assert computed == ["current"]


def test_a_kept_period_keeps_its_model_fits(crm, tmp_path, monkeypatch, computed):
    """A CLV KPI whose two months are kept computes nothing, and the run still shows the fits
    its values came from (``crmmetrics models show`` lists the latest run's fits) and the
    per-customer values of the run that computed the current month stand."""
    key = "vc_clv_bgnbd_gg"
    app = app_on(crm, tmp_path, monkeypatch, key=key)
    [first] = app.runner.run_all([key])
    assert first.status == "success" and computed == ["current", "previous"]
    fits = sorted((f.model, f.period_label, f.calibration_end, f.parameters, f.customers) for f in app.store.latest_model_fits())
    assert [(model, label) for model, label, *_ in fits] == [
        ("bgnbd", "current"), ("bgnbd", "previous"), ("gamma_gamma", "current"), ("gamma_gamma", "previous")]
    values = stored(app, key)
    with app.store.session() as session:
        customers = session.execute(text("SELECT run_id, count(*) FROM customer_values GROUP BY run_id")).all()

    computed.clear()
    [second] = app.runner.run_all([key])
    assert second.status == "success" and computed == []
    assert stored(app, key) == values
    assert sorted((f.model, f.period_label, f.calibration_end, f.parameters, f.customers) for f in app.store.latest_model_fits()) == fits
    assert {f.run_id for f in app.store.latest_model_fits()} == {second.id}
    with app.store.session() as session:  # the customers' values of the run that computed October stand
        assert session.execute(text("SELECT run_id, count(*) FROM customer_values GROUP BY run_id")).all() == customers
    assert customers[0][0] == first.id and customers[0][1] > 0


def test_recompute_and_backfill_compute_the_closed_period(crm, tmp_path, monkeypatch, computed):
    from crmmetrics.compute.backfill import plan_backfill, run_backfill

    app = app_on(crm, tmp_path, monkeypatch)
    app.runner.run_all([KEY])
    computed.clear()
    app.runner.run_all([KEY], recompute=True)
    assert computed == ["current", "previous"]
    assert stored(app) == {"current": pytest.approx(october_aov(crm), rel=1e-12), "previous": pytest.approx(september_aov(crm), rel=1e-12)}

    # The recompute is the latest run of the period: the next run reuses its values, not the
    # first run's (a recompute is asked for when a change escaped the fingerprint).
    [recomputed] = app.runner.run_all([KEY], recompute=True)
    assert recomputed.previous_fingerprint is not None and recomputed.current_fingerprint is not None
    with app.store.session() as session:
        session.execute(update(Observation).where(Observation.run_id == recomputed.id)
                        .values(value=-1.0))  # marks which stored run the next run takes both months from
        session.commit()
    computed.clear()
    app.runner.run_all([KEY])
    assert computed == [] and stored(app) == {"current": -1.0, "previous": -1.0}

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
    for flags, expected in (([], ["current", "previous"]), ([], []), (["--recompute"], ["current", "previous"]), ([], [])):
        computed.clear()
        result = CliRunner().invoke(cli, ["run", "--config", str(config), "--metric", KEY, *flags])
        assert result.exit_code == 0, result.output
        assert computed == expected


def test_each_table_is_fingerprinted_in_one_scan_once_per_run_and_period_end(demo):
    """The metrics of a run that read the same table up to the same end share one summary of
    it, one SELECT per table (not one scan per aggregate); its figures are the table's."""
    from sqlalchemy import create_engine, event

    from crmmetrics.core.definitions import RunCache
    from crmmetrics.core.inputs import Need, source_fingerprint
    from crmmetrics.core.periods import Period

    engine = create_engine(f"sqlite:///{demo}")
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, statement, *_rest: statements.append(statement))
    period = Period("previous", datetime(2026, 9, 1), datetime(2026, 10, 1))
    cache = RunCache()
    with engine.connect() as connection:
        orders_only = source_fingerprint(connection, [Need("orders")], period, share=cache.get)
        with_lines = source_fingerprint(connection, [Need("order_lines"), Need("orders")], period, share=cache.get)
        alone = source_fingerprint(connection, [Need("order_lines"), Need("orders")], period)
    engine.dispose()
    assert len(statements) == 2 + 2  # orders and order lines once each with the cache; both again without
    assert all(s.count("SELECT") == 1 + ("EXISTS" in s) for s in statements)  # one scan (order lines: by their order)
    with sqlite3.connect(demo) as raw:
        count, last, ids = raw.execute(
            "SELECT count(*), max(ordered_at), sum(order_id % 1000003) FROM orders WHERE ordered_at < '2026-10-01'").fetchone()
        lines = raw.execute("SELECT count(*) FROM order_lines WHERE order_id IN "
                            "(SELECT order_id FROM orders WHERE ordered_at < '2026-10-01')").fetchone()[0]
    assert orders_only[:3] == [count, datetime.fromisoformat(last).isoformat(), ids] and count > 1000
    assert with_lines == alone and with_lines[0] == lines and with_lines[-len(orders_only):] == orders_only


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


def test_the_closed_current_period_is_kept_on_postgresql(fresh_pg_db, tmp_path, monkeypatch, computed):
    from sqlalchemy import create_engine

    generate_demo(fresh_pg_db, customers=800, seed=7, as_of=date(2026, 11, 10))
    engine = create_engine(fresh_pg_db)

    def october() -> float:  # by hand, on the server
        with engine.connect() as connection:
            return connection.execute(text(
                "SELECT sum(net_revenue) / count(*) FROM orders WHERE ordered_at >= '2026-10-01' AND ordered_at < '2026-11-01'"
            )).scalar()

    app = app_on(None, tmp_path, monkeypatch, source=fresh_pg_db)
    for expected in (["current", "previous"], []):
        computed.clear()
        [run] = app.runner.run_all([KEY])
        assert run.status == "success" and computed == expected
    assert stored(app)["current"] == pytest.approx(float(october()), rel=1e-12)

    with engine.begin() as connection:  # a late order of October
        connection.execute(text(
            "INSERT INTO orders (order_id, customer_id, ordered_at, channel_id, net_revenue, cogs) "
            "SELECT max(order_id) + 1, NULL, '2026-10-20 08:00:00', NULL, 5000, NULL FROM orders"
        ))
    computed.clear()
    app.runner.run_all([KEY])
    assert computed == ["current"]
    assert stored(app)["current"] == pytest.approx(float(october()), rel=1e-12)
    engine.dispose()
