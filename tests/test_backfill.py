"""Backfill on a hand-built source with known monthly values: every period equals the
hand-computed value, a rerun stores nothing new, and a backfill killed half-way and resumed
leaves the same store as one uninterrupted run."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime

import pytest
from click.testing import CliRunner

from crmmetrics.cli import cli
from crmmetrics.compute.backfill import backfill_as_ofs
from crmmetrics.readers.history import history_snapshots
from crmmetrics.store.store import Store
from support.monthly_shop import MONTHS, build_shop, expected_aov, expected_identified_share, month_start
from support.servers import poll

@pytest.fixture
def shop(tmp_path):
    build_shop(f"sqlite:///{tmp_path / 'crm.sqlite'}")
    return tmp_path


def write_config(directory, store_name="store.sqlite"):
    path = directory / f"{store_name}.toml"
    path.write_text(
        f'[source]\nurl = "sqlite:///{directory / "crm.sqlite"}"\n'
        f'[store]\nurl = "sqlite:///{directory / store_name}"\n'
        '[logging]\nlevel = "WARNING"\n'
        '[metrics.im_identified_revenue_share]\nperiod = "quarter"\n'
    )
    return path


ARGS = ["--metric", "vc_aov", "--metric", "im_identified_revenue_share", "--from", "2020-01-01", "--to", "2025-01-01"]
TOTAL = MONTHS + MONTHS // 3  # 60 months of vc_aov, 20 quarters of the identified share


def backfill(config, *extra):
    return CliRunner().invoke(cli, ["backfill", "--config", str(config), *ARGS, *extra], catch_exceptions=False)


def store_rows(path):
    """What a backfill stored, without ids and times: (metric, label, start, end, dimensions, value)."""
    with sqlite3.connect(path) as connection:
        return sorted(connection.execute(
            "SELECT o.metric_key, o.period_label, o.period_start, o.period_end, o.dimensions, o.value "
            "FROM observations o JOIN backfilled_runs b ON b.run_id = o.run_id"
        ).fetchall(), key=repr)


def backfilled_count(path):
    """Backfilled periods stored: runs that finished (one being computed is marked at its start)."""
    with sqlite3.connect(path, timeout=30) as connection:
        try:
            return connection.execute(
                "SELECT count(*) FROM backfilled_runs b JOIN runs r ON r.id = b.run_id WHERE r.status = 'success'"
            ).fetchone()[0]
        except sqlite3.OperationalError:  # the store is not created yet
            return 0


def test_periods_step_by_their_grain():
    assert backfill_as_ofs("month", datetime(2024, 1, 15), datetime(2024, 4, 1)) == [
        datetime(2024, 2, 1), datetime(2024, 3, 1), datetime(2024, 4, 1)
    ]
    assert backfill_as_ofs("quarter", datetime(2024, 1, 1), datetime(2024, 12, 31)) == [
        datetime(2024, 4, 1), datetime(2024, 7, 1), datetime(2024, 10, 1)
    ]
    assert backfill_as_ofs("month_to_date", datetime(2024, 1, 1), datetime(2024, 3, 1)) == [
        datetime(2024, 1, 31, 23, 59, 59, 999999), datetime(2024, 2, 29, 23, 59, 59, 999999)
    ]
    assert backfill_as_ofs("trailing_30d", datetime(2024, 1, 1, 8), datetime(2024, 3, 1)) == [
        datetime(2024, 1, 31), datetime(2024, 3, 1)
    ]


def test_every_period_equals_the_hand_computed_value_and_a_rerun_stores_nothing(shop):
    config = write_config(shop)
    done = backfill(config)
    assert done.exit_code == 0, done.output
    assert f"backfilling {TOTAL} periods (0 already stored)" in done.output

    store = Store(f"sqlite:///{shop / 'store.sqlite'}")
    aov = {s.period_start: s for s in history_snapshots(store, keys=["vc_aov"])}
    assert len(aov) == MONTHS
    for i in range(MONTHS):
        snapshot = aov[month_start(i)]
        assert snapshot.period_end == month_start(i + 1)
        if expected_aov(i) is None:
            assert snapshot.current() is None
            assert snapshot.observations[0].reason  # stored with why, never as 0
        else:
            assert snapshot.current() == pytest.approx(expected_aov(i)), month_start(i)
    assert aov[datetime(2020, 1, 1)].current() == pytest.approx(20.0)  # (10 + 20 + 30) / 3
    assert aov[datetime(2024, 12, 1)].current() == pytest.approx(900.0)  # (600 + 1200) / 2

    share = {s.period_start: s for s in history_snapshots(store, keys=["im_identified_revenue_share"])}
    assert sorted(share) == [month_start(3 * q) for q in range(MONTHS // 3)]
    for q in range(MONTHS // 3):
        assert share[month_start(3 * q)].period_end == month_start(3 * q + 3)
        assert share[month_start(3 * q)].current() == pytest.approx(expected_identified_share(q))
    # The live view is not replaced by history: no latest values without a live run.
    assert store.latest_observations() == []
    store.engine.dispose()

    before = store_rows(shop / "store.sqlite")
    again = backfill(config)
    assert again.exit_code == 0 and f"backfilling 0 periods ({TOTAL} already stored)" in again.output
    assert store_rows(shop / "store.sqlite") == before
    assert backfilled_count(shop / "store.sqlite") == TOTAL

    forced = CliRunner().invoke(
        cli, ["backfill", "--config", str(config), "--metric", "vc_aov", "--from", "2024-11-01", "--to", "2025-01-01", "--force"]
    )
    assert forced.exit_code == 0 and "backfilling 2 periods (0 already stored)" in forced.output
    assert backfilled_count(shop / "store.sqlite") == TOTAL + 2


def test_killed_half_way_and_resumed_equals_one_uninterrupted_run(shop):
    whole = write_config(shop, "whole.sqlite")
    assert backfill(whole).exit_code == 0

    halves = write_config(shop, "halves.sqlite")
    command = [sys.executable, "-m", "crmmetrics", "backfill", "--config", str(halves), *ARGS]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        poll(lambda: backfilled_count(shop / "halves.sqlite") >= 10, 120, "ten backfilled periods", interval=0.02)
        process.send_signal(signal.SIGKILL)  # no chance to clean up: only whole runs may be stored
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    stopped_at = backfilled_count(shop / "halves.sqlite")
    assert 10 <= stopped_at < TOTAL, "the backfill finished before it could be killed"

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"backfilling {TOTAL - stopped_at} periods ({stopped_at} already stored)" in resumed.stderr
    assert store_rows(shop / "halves.sqlite") == store_rows(shop / "whole.sqlite")
    assert backfilled_count(shop / "halves.sqlite") == backfilled_count(shop / "whole.sqlite") == TOTAL


def test_the_demo_backfills_its_history(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "crmmetrics", "demo", "--dir", str(tmp_path), "--customers", "200", "--seed", "5", "--once",
         "--history-months", "3"],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "backfilling 3 months of history" in done.stderr
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    aov = history_snapshots(store, keys=["vc_aov"])
    live = [o for o in store.latest_observations() if o.metric_key == "vc_aov" and o.period_label == "current"]
    store.engine.dispose()
    # The last three complete months: two backfilled, the newest the live run's own (not computed twice).
    ends = [s.period_end for s in aov]
    assert len(ends) == 3 and ends[-1] == live[0].period_end
    assert all(s.current() is not None and s.current() > 0 for s in aov)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--from", "January"], "Error: --from: 'January' is not an ISO 8601 date or date-time, e.g. 2024-01-01"),
        (["--from", "2024-01-01", "--to", "2023-01-01"], "Error: --from 2024-01-01 is not before --to 2023-01-01"),
        (["--from", "2024-01-01", "--metric", "vc_nope"], "Error: --metric: unknown metric 'vc_nope'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_stores_nothing(shop, args, message):
    config = write_config(shop)
    done = CliRunner().invoke(cli, ["backfill", "--config", str(config), *args])
    assert done.exit_code == 2
    assert done.output.startswith(message) and done.output.count("\n") == 1 and "Traceback" not in done.output
    assert backfilled_count(shop / "store.sqlite") == 0


def test_sigterm_stops_between_periods_and_says_how_to_resume(shop):
    config = write_config(shop)
    process = subprocess.Popen(
        [sys.executable, "-m", "crmmetrics", "backfill", "--config", str(config), *ARGS],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        poll(lambda: backfilled_count(shop / "store.sqlite") >= 5, 120, "five backfilled periods", interval=0.02)
        process.terminate()
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    stored = backfilled_count(shop / "store.sqlite")
    assert process.returncode == 130, err
    # The count the message gives may miss the period whose run was being logged when the signal came.
    said = re.search(rf"interrupted after (\d+) of {TOTAL} periods; run the same command to resume", err)
    assert said and int(said.group(1)) in (stored - 1, stored), err
    again = backfill(config)
    assert f"backfilling {TOTAL - stored} periods ({stored} already stored)" in again.output


def test_a_backfill_leaves_the_live_values_and_the_run_health_alone(shop):
    from crmmetrics.testing import render_exposition

    config = write_config(shop)
    live = CliRunner().invoke(cli, ["run", "--config", str(config), "--metric", "vc_aov", "--as-of", "2024-06-10"])
    assert live.exit_code == 0, live.output
    assert backfill(config).exit_code == 0
    exposition = render_exposition(f"sqlite:///{shop / 'store.sqlite'}")
    # Still the live run's May 2024 (i = 52, k = 53: 15 x 53), not the newest backfilled December.
    assert exposition.metric_value("vc_aov") == pytest.approx(15.0 * 53)
    assert exposition.value("crmmetrics_runs_total", metric="vc_aov", plugin="value_creation") == 1.0
    assert exposition.value("crmmetrics_run_up", metric="vc_aov", plugin="value_creation") == 1.0


def test_history_exports_as_csv_and_json(shop):
    import csv
    import io
    import json

    config = write_config(shop)
    runner = CliRunner()
    args = ["backfill", "--config", str(config), "--metric", "vc_aov", "--from", "2020-01-01", "--to", "2020-07-01"]
    assert runner.invoke(cli, args).exit_code == 0
    exported = runner.invoke(cli, ["history", "export", "--config", str(config), "--format", "json", "--metric", "vc_aov"])
    assert exported.exit_code == 0, exported.output
    rows = json.loads(exported.output)
    assert [(r["period_start"], r["value"]) for r in rows] == [
        (f"{month_start(i).isoformat()}Z", expected_aov(i)) for i in range(6)
    ]
    assert rows[4]["value"] is None and rows[4]["missing_reason"] and rows[0]["unit"] == "currency"
    table = runner.invoke(cli, ["history", "export", "--config", str(config), "--format", "csv", "--to", "2020-04-01"])
    records = list(csv.DictReader(io.StringIO(table.output)))
    assert [(r["metric"], r["period_end"], float(r["value"])) for r in records] == [
        ("vc_aov", "2020-02-01T00:00:00Z", 20.0), ("vc_aov", "2020-03-01T00:00:00Z", 30.0), ("vc_aov", "2020-04-01T00:00:00Z", 45.0)
    ]
