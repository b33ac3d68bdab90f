"""Retention: old runs go with their observations; the standards history, each metric's last run
and latest value, and the exported counters stay (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func
from sqlmodel import select

from crmmetrics.cli import cli
from crmmetrics.core.periods import utcnow
from crmmetrics.readers.exporter import Exposition
from crmmetrics.store.standards import StandardChange
from crmmetrics.store.store import CustomerValue, MissingValue, ModelFit, Observation, Run, Store
from crmmetrics.testing import CrmDatabase


def finished_run(store: Store, key: str, started: datetime, status: str = "success", values: int = 2) -> Run:
    run = Run(metric_key=key, plugin="p", started_at=started, finished_at=started + timedelta(seconds=1),
              duration_seconds=1.0, status=status, period="month")
    observations = [
        Observation(run_id=0, metric_key=key, dimensions="{}", period_label=label, period_start=started, period_end=started,
                    value=float(started.day), computed_at=started)
        for label in ("current", "previous")[:values]
    ] if status == "success" else []
    if status != "success":
        return store.write_run(run, observations)
    # A success with everything that refers to its run: model outputs, a model fit and a
    # missing value's reason (PostgreSQL refuses to delete a run they still refer to).
    fit = {"period_label": "current", "model": "bgnbd", "calibration_end": started, "parameters": {"r": 0.2},
           "log_likelihood": -1.0, "customers": 10, "converged": True, "message": ""}
    return store.finish_run(run, observations, [{"customer_id": 1, "p_alive": 0.5}], {"previous": "no rows in orders"}, [fit])


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("fresh_pg_db")
    store = Store(url)
    yield store
    store.engine.dispose()


def count(store: Store, model) -> int:
    with store.session() as session:
        return session.exec(select(func.count()).select_from(model)).one()


def test_prune_keeps_the_latest_run_and_value_of_every_metric_and_the_standards(store):
    now = utcnow()
    old = now - timedelta(days=800)
    a = [finished_run(store, "m_a", old + timedelta(days=n)) for n in range(5)]
    a_failed = finished_run(store, "m_a", old + timedelta(days=6), status="failed")
    a_recent = finished_run(store, "m_a", now - timedelta(days=3))
    # m_b ran long ago only: its last success and the failure after it are its latest state.
    b_success = finished_run(store, "m_b", old)
    b_failed = finished_run(store, "m_b", old + timedelta(days=1), status="failed")
    running = store.start_run(Run(metric_key="m_c", plugin="p", started_at=old, status="running"))
    with store.session() as session:
        session.add(StandardChange(metric_key="m_a", origin="admin", target=1, red=0, green=1, valid_from=old,
                                   changed_by="alice", changed_at=old, via="standards set"))
        session.commit()
    before = Exposition(store).body().decode()
    latest_before = store.latest_observations()

    planned = store.prune(now - timedelta(days=731), dry_run=True)
    assert (planned.runs, planned.observations) == (6, 10)  # m_a's five old successes and its old failure
    assert count(store, Run) == 10

    done = store.prune(now - timedelta(days=731))
    assert (done.runs, done.observations) == (6, 10)
    with store.session() as session:
        kept = {run.id for run in session.exec(select(Run)).all()}
    assert kept == {a_recent.id, b_success.id, b_failed.id, running.id}
    assert not kept & {run.id for run in a} and a_failed.id not in kept
    assert count(store, Observation) == 4 and count(store, StandardChange) == 1
    assert count(store, CustomerValue) == 2  # the latest model outputs of m_a and m_b (a snapshot per metric)
    assert count(store, MissingValue) == count(store, ModelFit) == 2  # those of the kept successes
    assert store.latest_observations() == latest_before
    after = Exposition(store).body().decode()
    # Counters are totals since the store began: pruning does not lower them.
    for line in ('crmmetrics_runs_total{metric="m_a",plugin="p"} 7.0', 'crmmetrics_run_failures_total{metric="m_a",plugin="p"} 1.0',
                 'crmmetrics_runs_total{metric="m_b",plugin="p"} 2.0', 'crmmetrics_run_up{metric="m_b",plugin="p"} 0.0'):
        assert line in before and line in after, line
    assert store.prune(now - timedelta(days=731)).runs == 0


def test_store_prune_command(tmp_path):
    CrmDatabase(f"sqlite:///{tmp_path / 'crm.sqlite'}").dispose()
    config = tmp_path / "crmmetrics.toml"
    config.write_text('[source]\nurl = "sqlite:///crm.sqlite"\n[store]\nurl = "sqlite:///store.sqlite"\nretention = "400d"\n')
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    for days in (500, 450, 300, 10):
        finished_run(store, "m_a", utcnow() - timedelta(days=days))
    store.engine.dispose()
    runner = CliRunner()
    done = runner.invoke(cli, ["store", "prune", "--dry-run", "--config", str(config)], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith(f"store sqlite:///{tmp_path / 'store.sqlite'}: would delete 2 runs and 4 observations started before ")
    done = runner.invoke(cli, ["store", "prune", "--older-than", "200d", "--config", str(config)], catch_exceptions=False)
    assert " deleted 3 runs and 6 observations" in done.stdout
    for bad, message in (("12h", "--older-than: retention '12h' is shorter than a day"),
                         ("99999999999d", "--older-than: duration '99999999999d' is longer than the maximum of 36600 days")):
        done = runner.invoke(cli, ["store", "prune", "--older-than", bad, "--config", str(config)], catch_exceptions=False)
        assert done.exit_code == 2 and done.stderr.strip() == f"Error: {message}", done.stderr
    config.write_text(config.read_text().replace('retention = "400d"', 'retention = "forever"'))
    done = runner.invoke(cli, ["config", "check", str(config)], catch_exceptions=False)
    assert done.exit_code == 2 and "store.retention: invalid duration 'forever'" in done.stderr


def test_serve_schedules_daily_pruning_in_the_leader(tmp_path):
    from crmmetrics.compute.scheduler import PRUNE_JOB, build_scheduler
    from crmmetrics.core.config import parse_config
    from crmmetrics.serve.app import App

    CrmDatabase(f"sqlite:///{tmp_path / 'crm.sqlite'}").dispose()
    config = parse_config({"source": {"url": f"sqlite:///{tmp_path / 'crm.sqlite'}"},
                           "store": {"url": f"sqlite:///{tmp_path / 'store.sqlite'}", "retention": "30d"}}, None)
    app = App.from_config(config)
    scheduler = build_scheduler(app.runner)
    try:
        job = scheduler.get_job(PRUNE_JOB)
        assert job.trigger.interval == timedelta(days=1)
        finished_run(app.store, "m_a", utcnow() - timedelta(days=40))
        finished_run(app.store, "m_a", utcnow() - timedelta(days=1))
        job.func(*job.args)
        assert [r.started_at > utcnow() - timedelta(days=2) for r in app.store.runs("m_a")] == [True]
    finally:
        scheduler.shutdown(wait=False)
        app.store.engine.dispose()
        app.source.dispose()
