"""The engines a source is tested on, as a user meets them on the command line: ``source init``,
``demo --source`` and a config pointing at a DuckDB file."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, func, select

from crmmetrics.core import schema
from crmmetrics.core.config import load_config


def crmmetrics(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "crmmetrics", *args], capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ))


def test_source_init_creates_the_canonical_tables_in_a_new_duckdb_file(tmp_path):
    done = crmmetrics("source", "init", "duckdb:///crm.duckdb", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "duckdb:///crm.duckdb: created 12 canonical tables"
    engine = create_engine(f"duckdb:///{tmp_path / 'crm.duckdb'}")
    with engine.begin() as connection:  # keys are numbered by the database, as on SQLite and PostgreSQL
        first = connection.execute(schema.segments.insert().values(name="Gold", is_target=True).returning(schema.segments.c.segment_id)).scalar()
        second = connection.execute(schema.segments.insert().values(name="Blue", is_target=False).returning(schema.segments.c.segment_id)).scalar()
        connection.execute(schema.orders.insert().values(ordered_at="2026-01-01 10:00:00", net_revenue=0.1 + 0.2))
        revenue = connection.execute(select(schema.orders.c.net_revenue)).scalar()
    engine.dispose()
    assert (first, second) == (1, 2)
    assert revenue == 0.1 + 0.2  # money is stored as a double (DuckDB's FLOAT has 4 bytes)
    # no secondary (ART) indexes: DuckDB's scans do not use them (the canonical tables have 27)
    with engine.connect() as connection:
        indexes = connection.exec_driver_sql("SELECT index_name FROM duckdb_indexes()").scalars().all()
    engine.dispose()
    assert indexes == [] and sum(len(t.indexes) for t in schema.metadata.sorted_tables) == 27


def test_a_relative_duckdb_path_is_relative_to_the_config_file(tmp_path):
    config = tmp_path / "conf" / "crmmetrics.toml"
    config.parent.mkdir()
    config.write_text('[source]\nurl = "duckdb:///data/crm.duckdb"\n[store]\nurl = "sqlite:///store.sqlite"\n')
    assert load_config(config).source_url == f"duckdb:///{tmp_path / 'conf' / 'data' / 'crm.duckdb'}"


def test_a_missing_duckdb_source_is_one_line_exit_2_and_is_not_created(tmp_path):
    config = tmp_path / "crmmetrics.toml"
    config.write_text('[source]\nurl = "duckdb:///crm.duckdb"\n[store]\nurl = "sqlite:///store.sqlite"\n')
    done = crmmetrics("run", "--config", str(config), "--metric", "vc_aov", cwd=tmp_path.parent)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"Error: source.url: DuckDB file not found: {tmp_path / 'crm.duckdb'}"
    assert not (tmp_path / "crm.duckdb").exists()


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql", "duckdb", "chdb"])
def test_demo_generates_into_any_tested_engine_and_computes_every_metric(engine_name, tmp_path, request):
    url = {
        "sqlite": "sqlite:///crm-elsewhere.sqlite",  # relative to the working directory, not to --dir
        "duckdb": "duckdb:///crm-elsewhere.duckdb",
        "chdb": "chdb:///crm-elsewhere.chdb",
        "postgresql": request.getfixturevalue("fresh_pg_db") if engine_name == "postgresql" else None,
    }[engine_name]
    done = crmmetrics("demo", "--dir", "d", "--customers", "150", "--once", "--history-months", "0", "--source", url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "crmmetrics: computed 61 of 61 metrics" in done.stderr
    source_url = load_config(tmp_path / "d" / "crmmetrics.toml").source_url
    if engine_name != "postgresql":
        assert source_url == url.replace(":///", f":///{tmp_path}/")
        assert not (tmp_path / "d" / "crm.sqlite").exists()
    engine = create_engine(source_url)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(schema.customers)).scalar() == 150
    engine.dispose()
    # A second demo into the same database is refused in one line, and changes nothing.
    again = crmmetrics("demo", "--dir", "d", "--customers", "150", "--once", "--source", url, cwd=tmp_path)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert again.stderr.strip().splitlines()[-1].startswith("Error: --source: ") and "already holds CRM data" in again.stderr


# Functions of SQLite (or of PostgreSQL's own syntax) that Trino does not have.
NOT_TRINO = ("julianday(", "strftime(", "extract(epoch", "double precision", " date(", "datetime(", "::")


def test_every_kpi_statement_compiles_for_trino(demo_db, tmp_path, monkeypatch):
    """Every statement the whole catalogue sends to the source compiles with the trino package's
    SQLAlchemy dialect, with Trino's own date arithmetic (crmmetrics.kpi.sql), not SQLite's."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from trino.sqlalchemy.dialect import TrinoDialect

    from crmmetrics.compute.plugins import LOAD_ENV
    from crmmetrics.core.config import parse_config
    from crmmetrics.serve.app import App

    monkeypatch.setenv(LOAD_ENV, "strategy_development,value_creation,multichannel_integration,information_management,performance_assessment")
    source_file = demo_db.url.removeprefix("sqlite:///")
    statements, cursor_calls = [], []

    def on_source(conn):
        return source_file in (conn.engine.url.database or "")

    def statement(conn, element, *_args):
        if on_source(conn):
            statements.append(element)

    def cursor(conn, *_args):
        if on_source(conn):
            cursor_calls.append(1)

    event.listen(Engine, "before_execute", statement)
    event.listen(Engine, "before_cursor_execute", cursor)
    try:
        config = parse_config({"source": {"url": demo_db.url}, "store": {"url": f"sqlite:///{tmp_path / 'store.sqlite'}"},
                               "service": {"as_of": demo_db.as_of}}, None)
        app = App.from_config(config)
        runs = app.runner.run_all()
        app.source.dispose()
        app.store.engine.dispose()
    finally:
        event.remove(Engine, "before_execute", statement)
        event.remove(Engine, "before_cursor_execute", cursor)
    assert len(runs) == 61 and all(run.status == "success" for run in runs)
    assert len(statements) == len(cursor_calls) > 300  # every statement is a SQLAlchemy construct, none raw text
    dialect = TrinoDialect()
    compiled = [str(element.compile(dialect=dialect)) for element in statements]
    assert [text for text in compiled if any(word in text.lower() for word in NOT_TRINO)] == []
    assert sum("date_diff('millisecond', TIMESTAMP '1970-01-01 00:00:00'" in text for text in compiled) > 10


def test_demo_into_an_unknown_engine_is_one_line_and_writes_nothing(tmp_path):
    done = crmmetrics("demo", "--dir", "d", "--once", "--source", "foo://x", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("Error: --source: unknown database dialect 'foo' in foo://x")
    assert not (tmp_path / "d").exists()
