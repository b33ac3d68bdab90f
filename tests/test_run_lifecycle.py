"""Runs that die are visible: recorded as ``running`` before computing, completed with their
observations in one transaction, and marked ``interrupted`` by the next start after a SIGKILL
(real processes, SQLite and PostgreSQL stores)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from crmmetrics.testing import CrmDatabase
from support.servers import poll

# Ten metrics that each take a random moment and return three values: a kill lands before,
# during or after any of them.
SLOW_PLUGIN = '''
import random
import time

from crmmetrics import MetricDefinition, Result, hookimpl


def slow(ctx):
    time.sleep(random.uniform(0.05, 0.4))
    return [Result(1.0, {"part": "a"}), Result(2.0, {"part": "b"}), Result(3.0, {"part": "c"})]


def quick(ctx):
    return 1.0


@hookimpl
def crmmetrics_metrics():
    common = dict(description="d", process="value_creation", perspective="customer", value_lens="customer_value",
                  unit="count", direction="higher_is_better")
    return [MetricDefinition(key=f"t_slow_{n}", name=f"Slow {n}", dimensions=("part",), compute=slow, **common) for n in range(10)] + [
        MetricDefinition(key="t_quick", name="Quick", compute=quick, **common)
    ]
'''

KILLS_PER_STORE = 3


@pytest.fixture(params=["sqlite", "postgresql"])
def setup(request, tmp_path):
    store_url = f"sqlite:///{tmp_path / 'store.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("fresh_pg_db")
    CrmDatabase(f"sqlite:///{tmp_path / 'crm.sqlite'}").dispose()
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "slow.py").write_text(SLOW_PLUGIN)
    config = tmp_path / "crmmetrics.toml"
    metrics = "".join(f"[metrics.t_slow_{n}]\nenabled = true\n" for n in range(10))
    config.write_text(
        f'[source]\nurl = "sqlite:///crm.sqlite"\n[store]\nurl = "{store_url}"\n[service]\nplugins_dir = "plugins"\n{metrics}'
    )
    return config, store_url


def rows(store_url: str, sql: str) -> list[tuple]:
    engine = create_engine(store_url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql)).all()]
    finally:
        engine.dispose()


def crmmetrics(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "crmmetrics", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_sigkill_mid_run_leaves_no_partial_observations_and_the_next_start_finalises_every_run(setup):
    config, store_url = setup
    keys = ",".join(f"'t_slow_{n}'" for n in range(10))
    chance = random.Random(12)
    interrupted_total = 0
    for _ in range(3 * KILLS_PER_STORE):  # bounded: a kill that lands between two runs is tried again
        if interrupted_total == KILLS_PER_STORE:
            break
        process = crmmetrics("run", "--config", str(config), *sum((["--metric", f"t_slow_{n}"] for n in range(10)), []))
        # Wait until a computation is under way, then kill at a random moment in it.
        poll(lambda: rows(store_url, "SELECT id FROM runs WHERE status = 'running'") if Path(store_url.removeprefix("sqlite:///")).exists() or not store_url.startswith("sqlite") else None,
             timeout=60, what="a running run", interval=0.02)
        time.sleep(chance.uniform(0.0, 0.5))
        # The random moment may fall between one run's commit and the next one's start: kill as
        # soon as a computation is under way again (each takes 0.1-0.8 s, the check 20 ms).
        poll(lambda: rows(store_url, "SELECT id FROM runs WHERE status = 'running'"), timeout=60, what="a running run", interval=0.005)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL
        running = rows(store_url, f"SELECT id, finished_at FROM runs WHERE status = 'running' AND metric_key IN ({keys})")
        assert len(running) <= 1, running  # one computation at a time
        # No observation of a run that did not finish, and every finished run has all its values.
        assert rows(store_url, "SELECT count(*) FROM observations o JOIN runs r ON r.id = o.run_id WHERE r.status <> 'success'") == [(0,)]
        assert rows(
            store_url,
            "SELECT r.id FROM runs r LEFT JOIN observations o ON o.run_id = r.id "
            f"WHERE r.status = 'success' AND r.metric_key IN ({keys}) GROUP BY r.id HAVING count(o.id) <> 6",
        ) == []

        if not running:
            # The run seen computing committed between the check and the kill (the check's own
            # connection takes a while under load), and the next had not started: nothing was
            # cut off this time. Kill again.
            continue
        assert running[0][1] is None, running
        # The next start (here a one-off run of another metric) marks the dead run interrupted.
        done = subprocess.run(
            [sys.executable, "-m", "crmmetrics", "run", "--metric", "t_quick", "--config", str(config)], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert "status=interrupted" in done.stderr
        assert rows(store_url, "SELECT count(*) FROM runs WHERE status = 'running'") == [(0,)]
        (status, finished, error), = rows(store_url, f"SELECT status, finished_at, error FROM runs WHERE id = {running[0][0]}")
        assert status == "interrupted" and finished is not None
        assert error == "interrupted: the process computing it stopped before the run finished"
        interrupted_total += 1
    statuses = dict(rows(store_url, "SELECT status, count(*) FROM runs GROUP BY status"))
    assert statuses["interrupted"] == interrupted_total == KILLS_PER_STORE
    assert set(statuses) <= {"success", "interrupted"}


def test_a_run_another_live_process_is_computing_is_left_alone(setup):
    config, store_url = setup
    process = crmmetrics("run", "--config", str(config), "--metric", "t_slow_0", "--metric", "t_slow_1", "--metric", "t_slow_2")
    try:
        poll(lambda: rows(store_url, "SELECT id FROM runs WHERE status = 'running'") if not store_url.startswith("sqlite") or Path(store_url.removeprefix("sqlite:///")).exists() else None,
             timeout=60, what="a running run", interval=0.02)
        done = subprocess.run(
            [sys.executable, "-m", "crmmetrics", "run", "--metric", "t_quick", "--config", str(config)], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert "interrupted" not in done.stderr
    finally:
        assert process.wait(timeout=60) == 0
    assert dict(rows(store_url, "SELECT status, count(*) FROM runs GROUP BY status")) == {"success": 4}


def test_the_exporter_counts_an_interrupted_run_as_a_failed_last_run(tmp_path):
    from crmmetrics.core.periods import utcnow
    from crmmetrics.readers.exporter import Exposition
    from crmmetrics.store.store import Run, Store

    store = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    try:
        run = store.start_run(Run(metric_key="t_x", plugin="p", started_at=utcnow(), status="running"))
        body = Exposition(store).body().decode()
        assert 'crmmetrics_run_up{metric="t_x"' not in body  # a run still computing has no outcome yet
        assert store.mark_interrupted([run], "interrupted: test") == [run]
        assert store.runs("t_x")[0].status == "interrupted"
        body = Exposition(store).body().decode()
        assert 'crmmetrics_run_up{metric="t_x",plugin="p"} 0.0' in body
        assert 'crmmetrics_run_failures_total{metric="t_x",plugin="p"} 1.0' in body
    finally:
        store.engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_customer_values_are_stored_as_computed_and_replaced_by_the_next_run(backend, tmp_path, request):
    """The per-customer model outputs go in with one executemany on the DBAPI cursor: the
    values (to 12 significant digits), the customer, the run and its finish time as SQLAlchemy
    would have written them."""
    import json
    from datetime import datetime

    from sqlalchemy import select

    from crmmetrics.core.vocabulary import RunStatus
    from crmmetrics.store.store import CustomerValue, Run, Store

    url = f"sqlite:///{tmp_path / 'store.sqlite'}" if backend == "sqlite" else request.getfixturevalue("fresh_pg_db")
    store = Store(url)

    def finish(rows, finished_at):
        run = store.start_run(Run(metric_key="vc_clv_bgnbd_gg", plugin="value_creation", started_at=finished_at,
                                  status=RunStatus.RUNNING, period="month"))
        run.finished_at, run.status = finished_at, RunStatus.SUCCESS
        return store.finish_run(run, [], rows)

    def stored():
        with store.engine.connect() as connection:
            table = CustomerValue.__table__
            return [(r.run_id, r.metric_key, r.customer_id, json.loads(r.values), r.computed_at)
                    for r in connection.execute(select(table).order_by(table.c.customer_id))]

    at = datetime(2026, 11, 10, 4, 30, 15, 123456)
    first = finish([{"customer_id": 9, "p_alive": 1.0, "clv": 0.1 + 0.2}, {"customer_id": 7, "p_alive": 0.25, "clv": 1234.5}], at)
    assert stored() == [(first.id, "vc_clv_bgnbd_gg", 7, {"p_alive": 0.25, "clv": 1234.5}, at),
                        (first.id, "vc_clv_bgnbd_gg", 9, {"p_alive": 1.0, "clv": 0.3}, at)]
    later = datetime(2026, 12, 1)
    second = finish([{"customer_id": 8, "p_alive": 0.5, "clv": 2.0}], later)
    assert stored() == [(second.id, "vc_clv_bgnbd_gg", 8, {"p_alive": 0.5, "clv": 2.0}, later)]
    store.engine.dispose()


def test_customer_values_json_holds_each_number_to_twelve_significant_digits():
    """The model outputs' JSON is written by a template for rows of finite floats with the same
    fields, and by json.dumps otherwise: in every case it reads back as the row with each finite
    float rounded to 12 significant digits, and everything else as given."""
    import json
    import math

    from crmmetrics.store.store import _outputs_json

    floats = [{"customer_id": i, "p_alive": v, "clv": -v, 'odd "%s" %% name': v / 3}
              for i, v in enumerate([0.0, -0.0, 1.0, 0.1 + 0.2, 1e-300, 5e-324, 1.7976931348623157e308, 123456789.125, 1e16,
                                     2 / 3, 1234.56789012345678])]
    mixed = [{"customer_id": 1, "p_alive": 0.5, "clv": 3}, {"customer_id": 2, "p_alive": None, "clv": True},
             {"customer_id": 3, "p_alive": math.nan, "clv": math.inf}, {"customer_id": 4, "p_alive": 0.1 + 0.2, "clv": 7}]
    other_fields = [{"customer_id": 1, "p_alive": 0.5}, {"customer_id": 2, "clv": 2 / 3}]

    def rounded(value):
        return float(f"{value:.12g}") if isinstance(value, float) and math.isfinite(value) and not isinstance(value, bool) else value

    for rows in (floats, mixed, other_fields, []):
        texts = _outputs_json(rows)
        assert len(texts) == len(rows)
        for text, row in zip(texts, rows):
            back = json.loads(text)
            assert list(back) == [k for k in row if k != "customer_id"]
            for name, value in back.items():
                want = rounded(row[name])
                assert value is want or value == want or (math.isnan(value) and math.isnan(want)), (name, value, want)
    assert _outputs_json(floats)[3] == '{"p_alive": 0.3, "clv": -0.3, "odd \\"%s\\" %% name": 0.1}'
    assert _outputs_json(floats)[9] == '{"p_alive": 0.666666666667, "clv": -0.666666666667, "odd \\"%s\\" %% name": 0.222222222222}'
    assert json.loads(_outputs_json(mixed)[3]) == {"p_alive": 0.3, "clv": 7}
