"""The store's schema revisions: a 0.1.0 store upgraded with its history intact, on SQLite and
PostgreSQL; older and newer revisions refused by the commands that use the store; the revisions
in step with the tables the code declares."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from crmmetrics.core.errors import StoreError
from crmmetrics.store import migrations
from crmmetrics.store.migrations.__main__ import differences
from crmmetrics.store.store import Store

DATA = Path(__file__).parent / "data" / "store"


def crmmetrics(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crmmetrics", *args], capture_output=True, text=True, timeout=300)


def one_line(done: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    return done.stderr.strip()


def test_the_revisions_form_one_line_and_create_exactly_the_declared_tables():
    # A table or column added to the code without a revision (or a fork left by a merge) fails here.
    assert migrations.head() == [r for r, _, _ in migrations.history()][-1]
    # The revisions are read from their files without Alembic: Alembic reads the same.
    walked = list(migrations.script().walk_revisions())[::-1]
    assert migrations.history() == tuple((r.revision, r.down_revision, r.doc.strip().splitlines()[0]) for r in walked)
    assert migrations.head() == migrations.script().get_current_head() == "0009_customer_values_index"
    assert [parent for _, parent, _ in migrations.history()][0] is None
    assert differences() == []
    # alembic_version.version_num is VARCHAR(32): a longer id fails the upgrade on PostgreSQL.
    assert [r for r, _, _ in migrations.history() if len(r) > 32] == []


def revision_file(folder: Path, revision: str, parent: str | None) -> None:
    (folder / f"{revision}.py").write_text(f'"""{revision} does a thing.\n\nMore."""\nrevision = {revision!r}\ndown_revision = {parent!r}\n')


def test_revisions_that_fork_or_do_not_follow_from_the_baseline_are_refused(tmp_path):
    for revision, parent in (("0001_a", None), ("0002_b", "0001_a"), ("0003_c", "0002_b")):
        revision_file(tmp_path, revision, parent)
    assert migrations.read_revisions(tmp_path) == (
        ("0001_a", None, "0001_a does a thing."),
        ("0002_b", "0001_a", "0002_b does a thing."),
        ("0003_c", "0002_b", "0003_c does a thing."),
    )
    forked, stray = tmp_path / "forked", tmp_path / "stray"
    for folder, extra in ((forked, ("0003_d", "0002_b")), (stray, ("0004_e", "0009_gone"))):
        folder.mkdir()
        for path in tmp_path.glob("*.py"):
            (folder / path.name).write_text(path.read_text())
        revision_file(folder, *extra)
    with pytest.raises(StoreError, match=r"^crmmetrics' migrations fork after 0002_b: 0003_c, 0003_d; they must form one line$"):
        migrations.read_revisions(forked)
    with pytest.raises(StoreError, match=r"^crmmetrics' migrations 0004_e do not follow from the baseline; they must form one line$"):
        migrations.read_revisions(stray)
    annotated = tmp_path / "annotated"
    annotated.mkdir()
    (annotated / "0001_a.py").write_text('"""A."""\nrevision: str = "0001_a"\ndown_revision: str | None = None\n')
    assert migrations.read_revisions(annotated) == (("0001_a", None, "A."),)
    (annotated / "0002_b.py").write_text('"""B."""\nrevision = make_id()\ndown_revision = "0001_a"\n')
    with pytest.raises(StoreError, match=r"0002_b.py: not a revision: it needs the constants revision = '...' and down_revision$"):
        migrations.read_revisions(annotated)


def load_0_1_0_store(url: str) -> None:
    """A store as crmmetrics 0.1.0 left it: its exact DDL (create_all) and some history."""
    engine = create_engine(url)
    dialect = engine.dialect.name
    statements = (DATA / f"schema-0.1.0-{dialect}.sql").read_text() + (DATA / "rows-0.1.0.sql").read_text()
    with engine.begin() as connection:
        for statement in statements.split(";\n"):
            lines = [line for line in statement.splitlines() if not line.startswith("--")]
            if "".join(lines).strip():
                connection.exec_driver_sql("\n".join(lines))
        if dialect == "postgresql":  # as if the rows had been inserted by SERIAL
            for table in ("runs", "observations", "standard_changes"):
                connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    engine.dispose()


def standards_rows(url: str) -> list[tuple]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, metric_key, origin, target, red, green, weight, owner, valid_from, changed_by, via FROM standard_changes WHERE id <= 3 ORDER BY id")
        ).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def version(url: str) -> list[str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = [r[0] for r in connection.execute(text("SELECT version_num FROM alembic_version")).all()]
    engine.dispose()
    return rows


@pytest.fixture(scope="module")
def crm(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("crm")
    done = crmmetrics("source", "init", f"sqlite:///{directory / 'crm.sqlite'}")
    assert done.returncode == 0, done.stderr
    return directory / "crm.sqlite"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    return request.getfixturevalue("fresh_pg_db")


def write_config(directory: Path, crm: Path, store_url: str) -> Path:
    config = directory / "crmmetrics.toml"
    config.write_text(f'[source]\nurl = "sqlite:///{crm}"\n[store]\nurl = "{store_url}"\n')
    return config


def test_a_0_1_0_store_is_stamped_refused_until_upgraded_then_keeps_its_history(tmp_path, crm, store_url):
    load_0_1_0_store(store_url)
    before = standards_rows(store_url)
    assert [row[9] for row in before] == ["plugin:value_creation", "alice", "bob"]
    config = str(write_config(tmp_path, crm, store_url))

    # A reader neither stamps nor reads a store it does not understand.
    done = crmmetrics("scorecard", "--config", config)
    assert done.returncode == 2
    assert one_line(done).endswith("was created by crmmetrics 0.1.0 and has no revision: run 'crmmetrics store upgrade' (back up the store first)")
    assert crmmetrics("store", "current", "--config", config).stdout.strip().endswith(
        "unversioned (created by crmmetrics 0.1.0; 'store upgrade' stamps it at 0001_baseline)"
    )

    # A writer stamps it at the baseline, then refuses to use it until it is upgraded.
    done = crmmetrics("run", "--metric", "vc_nps", "--config", config)
    assert done.returncode == 2
    assert one_line(done) == (
        f"Error: store {store_url} is at revision 0001_baseline, this crmmetrics needs {migrations.head()}: "
        "run 'crmmetrics store upgrade' (back up the store first)"
    )
    assert version(store_url) == ["0001_baseline"]
    done = crmmetrics("serve", "--config", config, "--port", "0")
    assert done.returncode == 2 and "run 'crmmetrics store upgrade'" in one_line(done)

    done = crmmetrics("store", "upgrade", "--config", config)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"store {store_url}: 0001_baseline -> {migrations.head()}"
    assert crmmetrics("store", "upgrade", "--config", config).stdout.strip() == f"store {store_url}: already at {migrations.head()} (head)"
    assert version(store_url) == [migrations.head()]
    assert standards_rows(store_url) == before

    done = crmmetrics("standards", "history", "vc_nps", "--json", "--config", config)
    assert done.returncode == 0, done.stderr
    assert [(c["changed_by"], c["target"], c["valid_from"][:10]) for c in json.loads(done.stdout)][:3] == [
        ("plugin:value_creation", 50.0, "2026-01-01"), ("alice", 45.0, "2026-03-01"), ("bob", 55.0, "2027-01-01"),
    ]
    # The old runs are still there and new ones go on from them.
    done = crmmetrics("run", "--metric", "vc_nps", "--json", "--config", config)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["id"] == 3
    store = Store(store_url, read_only=True)
    try:
        assert [(r.id, r.status, r.duration_seconds) for r in store.runs("vc_nps")] == [(3, "success", pytest.approx(json.loads(done.stdout)[0]["duration_seconds"])), (2, "failed", 2.0), (1, "success", 1.0)]
    finally:
        store.engine.dispose()


def test_a_store_at_a_revision_newer_than_this_code_is_refused_by_every_command(tmp_path, crm, store_url):
    config = str(write_config(tmp_path, crm, store_url))
    assert crmmetrics("store", "upgrade", "--config", config).returncode == 0
    engine = create_engine(store_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    engine.dispose()
    expected = (
        f"Error: store {store_url} is at revision 0099_from_the_future, which this crmmetrics does not know "
        "(it was upgraded by a newer crmmetrics; run that version)"
    )
    for command in (("run",), ("scorecard",), ("store", "upgrade"), ("standards", "list")):
        done = crmmetrics(*command, "--config", config)
        assert done.returncode == 2, (command, done.stderr)
        assert one_line(done) == expected, command
    assert version(store_url) == ["0099_from_the_future"]


def test_a_new_store_is_created_at_the_head_and_downgrades_and_upgrades_cleanly(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    Store(url).engine.dispose()
    assert version(url) == [migrations.head()]
    from alembic import command

    engine = create_engine(url)
    with engine.begin() as connection:
        command.downgrade(migrations.alembic_config(connection), migrations.BASELINE)
    assert version(url) == [migrations.BASELINE]
    before, after = migrations.upgrade(engine, url)
    assert (before.kind, after.kind, after.revision) == ("old", "current", migrations.head())
    engine.dispose()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_readers_never_write_to_the_store(tmp_path, crm):
    store_file = tmp_path / "store.sqlite"
    config = str(write_config(tmp_path, crm, f"sqlite:///{store_file}"))
    assert crmmetrics("config", "check", config).returncode == 0
    assert not store_file.exists(), "config check created the store"
    assert crmmetrics("run", "--metric", "vc_aov", "--config", config).returncode == 0
    before = (digest(store_file), store_file.stat().st_mtime_ns)
    readers = [
        ("config", "check", config),
        ("config", "show", "--config", config),
        ("metrics", "list", "--config", config),
        ("scorecard", "--config", config),
        ("scorecard", "--json", "--config", config),
        ("standards", "list", "--config", config),
        ("standards", "export", "--config", config),
        ("standards", "history", "vc_nps", "--config", config),
        ("alerts", "export", "--config", config),
        ("store", "current", "--config", config),
    ]
    for args in readers:
        done = crmmetrics(*args)
        assert done.returncode == 0, (args, done.stderr)
        assert (digest(store_file), store_file.stat().st_mtime_ns) == before, args
    # Failing commands write nothing either.
    for args in (
        ("standards", "set", "vc_nps", "--target", "10", "--red", "50", "--green", "60", "--config", config),
        ("metrics", "set", "vc_nps", "nothing=1", "--config", config),
        ("run", "--metric", "vc_nope", "--config", config),
    ):
        done = crmmetrics(*args)
        assert done.returncode == 2, (args, done.stderr)
        one_line(done)
        assert (digest(store_file), store_file.stat().st_mtime_ns) == before, args


def test_the_page_and_metrics_render_from_a_read_only_store(tmp_path, crm):
    from crmmetrics.readers.exporter import Exposition
    from crmmetrics.readers.page import landing_page

    store_file = tmp_path / "store.sqlite"
    config = str(write_config(tmp_path, crm, f"sqlite:///{store_file}"))
    assert crmmetrics("run", "--metric", "vc_aov", "--config", config).returncode == 0
    before = digest(store_file)
    store = Store(f"sqlite:///{store_file}", read_only=True)  # SQLite itself refuses any write
    try:
        assert "crmmetrics_run_up" in Exposition(store).body().decode()
        assert "<html" in landing_page(store).lower()
    finally:
        store.engine.dispose()
    assert digest(store_file) == before


def test_config_check_needs_no_store_and_checks_the_source_tables(tmp_path, crm):
    # The store's server is down (nothing listens there): config check does not care.
    config = write_config(tmp_path, crm, "postgresql+psycopg://crm:secret@127.0.0.1:9/store")
    done = crmmetrics("config", "check", str(config))
    assert done.returncode == 0, done.stderr
    empty = tmp_path / "empty.sqlite"
    create_engine(f"sqlite:///{empty}").connect().exec_driver_sql("CREATE TABLE customers (customer_id INTEGER)")
    config = write_config(tmp_path, empty, f"sqlite:///{tmp_path / 'store.sqlite'}")
    done = crmmetrics("config", "check", str(config))
    assert done.returncode == 2
    line = one_line(done)
    assert line.startswith(f"Error: {config}: source.url: sqlite:///{empty} has no table or view segments, channels, campaigns, orders,")
    assert "customers," not in line


def test_0008_fills_the_history_periods_as_new_runs_write_them(store_url):
    """An upgraded store's history_periods equal what Store.finish_run wrote for the same runs;
    the pruned counts start at 0."""
    from alembic import command

    from support.history_runs import fill

    store = Store(store_url)
    fill(store)
    query = text("SELECT metric_key, period_start, period_end, run_id FROM history_periods ORDER BY 1, 2, 3")
    with store.engine.connect() as connection:
        written = connection.execute(query).all()
    assert [row[0] for row in written] == ["cal"] * 4 + ["mtd", "switch"]  # calendar and backfilled periods
    with store.engine.begin() as connection:
        command.downgrade(migrations.alembic_config(connection), "0007_runs_current_fingerprint")
    before, after = migrations.upgrade(store.engine, store_url)
    assert (before.revision, after.revision) == ("0007_runs_current_fingerprint", migrations.head())
    with store.engine.connect() as connection:
        assert connection.execute(query).all() == written
        assert connection.execute(text("SELECT DISTINCT pruned FROM metric_run_totals")).all() == [(0,)]
    store.engine.dispose()
