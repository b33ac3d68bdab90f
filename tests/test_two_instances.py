"""Two `serve` processes on one store: on PostgreSQL one schedules, both serve, and the other
takes over when the leader is killed; on SQLite the second is refused."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from crmmetrics.testing import CrmDatabase
from support.servers import ServiceProcess, free_port, poll

QUICK_PLUGIN = '''
from crmmetrics import MetricDefinition, Schedule, hookimpl


@hookimpl
def crmmetrics_metrics():
    return [MetricDefinition(key="t_tick", name="Tick", description="d", process="value_creation", perspective="customer",
                             value_lens="customer_value", unit="count", direction="higher_is_better",
                             schedule=Schedule(every="2s"), compute=lambda ctx: 1.0)]
'''


def write_config(directory: Path, store_url: str) -> Path:
    CrmDatabase(f"sqlite:///{directory / 'crm.sqlite'}").dispose()
    (directory / "plugins").mkdir(exist_ok=True)
    (directory / "plugins" / "tick.py").write_text(QUICK_PLUGIN)
    config = directory / "crmmetrics.toml"
    disabled = "".join(
        f"[metrics.{key}]\nenabled = false\n"
        for key in subprocess.run(
            [sys.executable, "-c", "from crmmetrics.compute.plugins import get_plugin_manager as g; from crmmetrics.compute.registry import build_registry as b; print(' '.join(d.key for d in b(g())))"],
            capture_output=True, text=True, check=True,
        ).stdout.split()
    )
    config.write_text(
        f'[source]\nurl = "sqlite:///crm.sqlite"\n[store]\nurl = "{store_url}"\n'
        f'[service]\nplugins_dir = "plugins"\nleader_poll = "1s"\n{disabled}'
    )
    return config


def owners(store_url: str) -> list[str]:
    engine = create_engine(store_url)
    try:
        with engine.connect() as connection:
            return [row[0] for row in connection.execute(text("SELECT owner FROM runs WHERE metric_key = 't_tick' ORDER BY id")).all()]
    finally:
        engine.dispose()


def test_on_postgres_one_leader_schedules_all_serve_and_a_standby_takes_over(tmp_path, fresh_pg_db):
    config = write_config(tmp_path, fresh_pg_db)
    first, second = ServiceProcess(config), ServiceProcess(config)
    first.start()
    try:
        poll(lambda: owners(fresh_pg_db), 30, "the first instance's runs")
        second.start()
        assert 'crmmetrics_run_up{metric="t_tick"' in second.metrics()  # the standby serves the leader's results
        time.sleep(5)  # a few schedules: all computed by the leader alone
        hosts_pids = {owner.rsplit(":", 1)[0] for owner in owners(fresh_pg_db)}
        assert hosts_pids == {f"{owner_host()}:{first.process.pid}"}, hosts_pids
        assert "standby: another instance schedules" in second.log_path.read_text()

        first.process.send_signal(signal.SIGKILL)
        first.process.wait(10)
        killed_at = time.monotonic()
        poll(lambda: any(f":{second.process.pid}:" in owner for owner in owners(fresh_pg_db)), 60, "the standby to take over")
        assert time.monotonic() - killed_at < 60
        assert "leader: this instance schedules the metrics" in second.log_path.read_text()
        assert 'crmmetrics_run_up{metric="t_tick",plugin="file:tick"} 1.0' in second.metrics()
    finally:
        second.stop()
        first.stop()


def owner_host() -> str:
    import socket

    return socket.gethostname()


def test_on_sqlite_a_second_scheduler_is_refused_with_one_line(tmp_path):
    store = tmp_path / "store.sqlite"
    config = write_config(tmp_path, f"sqlite:///{store}")
    first = ServiceProcess(config)
    first.start()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "crmmetrics", "serve", "--config", str(config), "--port", str(free_port())],
            capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
        assert done.stderr.strip() == (
            f"Error: store sqlite:///{store}: another crmmetrics (pid {first.process.pid}) is already scheduling metrics on it; "
            "a SQLite store has one scheduler: stop the other one, or use a PostgreSQL store for several instances"
        )
    finally:
        assert first.stop() == 0
    # Once the first has stopped, the next one may schedule.
    again = ServiceProcess(config)
    again.start()
    assert again.stop() == 0
