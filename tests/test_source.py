"""The source is opened read-only on SQLite, PostgreSQL and DuckDB."""

from __future__ import annotations

import logging
import re
from datetime import datetime

import pytest
import sqlalchemy.exc
from sqlalchemy import create_engine, func, select, text

from crmmetrics.core import schema
from crmmetrics.core.errors import ConfigError
from crmmetrics.data.source import open_source, warn_if_writable


def test_source_reads_but_refuses_writes(source_backend):
    database = source_backend()
    database.insert("segments", [{"segment_id": 1, "name": "Gold", "is_target": True}])
    engine = open_source(database.url)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(schema.segments)).scalar() == 1
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="read.only|readonly|not authorized"):
            connection.execute(schema.segments.insert().values(segment_id=2, name="Blue", is_target=False))
    engine.dispose()
    with database.engine.connect() as connection:  # nothing was written
        assert connection.execute(text("SELECT count(*) FROM segments")).scalar() == 1


def test_missing_sqlite_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="SQLite file not found: .*nothere.sqlite"):
        open_source(f"sqlite:///{tmp_path / 'nothere.sqlite'}")


def test_missing_duckdb_file_is_a_config_error_and_is_not_created(tmp_path):
    with pytest.raises(ConfigError, match="DuckDB file not found: .*nothere.duckdb"):
        open_source(f"duckdb:///{tmp_path / 'nothere.duckdb'}")
    assert list(tmp_path.iterdir()) == []


def test_naive_utc_timestamps_round_trip(source_backend):
    database = source_backend()
    moment = datetime(2026, 2, 28, 23, 59, 59)
    database.insert("employees", [{"employee_id": 1, "department": "service", "is_customer_facing": True, "fte": 1.0, "hired_at": moment}])
    with open_source(database.url).connect() as connection:
        assert connection.execute(select(schema.employees.c.hired_at)).scalar() == moment


# A plugin that tries, in each of its metrics, one way round the read-only source, then writes.
BYPASS_PLUGIN = '''
from sqlalchemy import text

from crmmetrics import MetricDefinition, hookimpl

SQLITE = {
    "plain": [],
    "attach_same_file": ["ATTACH DATABASE '{file}' AS rw"],
    "query_only_off": ["PRAGMA query_only = OFF"],
    "writable_schema": ["PRAGMA writable_schema = ON"],
}
POSTGRES = {
    "plain": [],
    "set_transaction": ["SET TRANSACTION READ WRITE"],
    "session_characteristics": ["SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "COMMIT"],
    "default_off": ["SET default_transaction_read_only = off", "COMMIT", "BEGIN"],
    "set_config": ["SELECT set_config('default_transaction_read_only', 'off', false)", "COMMIT"],
    "commit_then_begin_read_write": ["COMMIT", "BEGIN READ WRITE"],
    "reset_all": ["RESET ALL", "COMMIT"],
    "one_batch": ["COMMIT; SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; BEGIN"],
}
DUCKDB = {
    "plain": [],
    "attach_same_file": ["ATTACH '{file}' AS rw (READ_WRITE)"],
    "attach_copy": ["ATTACH '{file}.copy' AS rw"],
    "access_mode": ["SET access_mode = 'READ_WRITE'"],
    "external_access": ["SET enable_external_access = true"],
    "unlock": ["RESET lock_configuration"],
    "copy_out": ["COPY segments TO '{file}.csv'"],
}


def make(name, statements):
    def compute(ctx):
        c = ctx.connection
        file = c.engine.url.database.removeprefix("file:").split("?")[0] if c.dialect.name in ("sqlite", "duckdb") else ""
        for statement in statements:
            c.exec_driver_sql(statement.format(file=file))
        target = "rw.segments" if "attach" in name else "segments"
        c.exec_driver_sql(f"INSERT INTO {target} (segment_id, name, is_target) VALUES (99, 'hacked', false)")
        if c.dialect.name == "postgresql":
            c.exec_driver_sql("COMMIT")
        return 1.0
    return compute


@hookimpl
def crmmetrics_metrics():
    common = dict(description="d", process="value_creation", perspective="customer", value_lens="customer_value",
                  unit="count", direction="higher_is_better")
    return [
        MetricDefinition(key=f"t_{dialect}_{name}", name=name, compute=make(name, statements), **common)
        for dialect, attempts in (("sqlite", SQLITE), ("postgres", POSTGRES), ("duckdb", DUCKDB))
        for name, statements in attempts.items()
    ]
'''

SQLITE_BYPASSES = ["plain", "attach_same_file", "query_only_off", "writable_schema"]
POSTGRES_BYPASSES = ["plain", "set_transaction", "session_characteristics", "default_off", "set_config",
                     "commit_then_begin_read_write", "reset_all", "one_batch"]
DUCKDB_BYPASSES = ["plain", "attach_same_file", "attach_copy", "access_mode", "external_access", "unlock", "copy_out"]
BYPASSES = {"sqlite": ("sqlite", SQLITE_BYPASSES), "postgresql": ("postgres", POSTGRES_BYPASSES),
            "duckdb": ("duckdb", DUCKDB_BYPASSES)}
# What each engine says when it refuses (DuckDB: read-only mode, file access off, settings locked,
# the file already open).
REFUSED = (r"read.only|readonly|not authorized|prohibited|file system operations are disabled|"
           r"configuration has been locked|file handle conflict")


@pytest.fixture
def bypass_plugins(tmp_path):
    directory = tmp_path / "bypass-plugins"
    directory.mkdir()
    (directory / "bypass.py").write_text(BYPASS_PLUGIN)
    return directory


def test_a_plugin_cannot_write_to_the_source_by_any_bypass(source_backend, tmp_path, compute, bypass_plugins):
    database = source_backend()
    database.insert("segments", [{"segment_id": 1, "name": "Gold", "is_target": True}])
    dialect, attempts = BYPASSES[source_backend.backend]
    for name in attempts:
        computed = compute(f"t_{dialect}_{name}", database.url, plugins_dir=bypass_plugins)
        assert computed.run.status == "failed", name
        assert re.search(REFUSED, computed.run.error), (name, computed.run.error)
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT segment_id, name FROM segments")).all() == [(1, "Gold")]
    if source_backend.backend == "duckdb":  # nothing written beside the database either
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("crm-0.duckdb")) == ["crm-0.duckdb"]


def test_reading_still_works_on_a_guarded_source(source_backend):
    database = source_backend()
    database.insert("segments", [{"segment_id": 1, "name": "Gold", "is_target": True}])
    engine = open_source(database.url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM segments WHERE name LIKE 'G%'")).scalar() == 1
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET statement_timeout = 5000")  # the runner's own setting stays allowed
        else:
            assert connection.exec_driver_sql("PRAGMA table_info(segments)").all()
    engine.dispose()


def test_start_up_warns_when_the_postgres_role_can_write(pg_databases, caplog, monkeypatch):
    # An earlier CLI test in this process may have configured crmmetrics' logging, which stops
    # its records at the "crmmetrics" logger: let them reach caplog's handler again.
    monkeypatch.setattr(logging.getLogger("crmmetrics"), "propagate", True)
    url = pg_databases.create()
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        schema.metadata.create_all(connection)
        connection.exec_driver_sql("DROP ROLE IF EXISTS crm_reader")
        connection.exec_driver_sql("CREATE ROLE crm_reader LOGIN")
        connection.exec_driver_sql("GRANT USAGE ON SCHEMA public TO crm_reader")
        connection.exec_driver_sql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO crm_reader")
    admin.dispose()
    with caplog.at_level(logging.WARNING, logger="crmmetrics.source"):
        owner = open_source(url)
        assert warn_if_writable(owner) == list(schema.TABLES)
        owner.dispose()
        assert "the source's database role can write to segments, channels" in caplog.text
        caplog.clear()
        reader = open_source(url.replace("postgres@", "crm_reader@"))
        assert warn_if_writable(reader) == []
        with reader.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM customers")).scalar() == 0
        reader.dispose()
        assert caplog.text == ""


def test_missing_chdb_database_is_a_config_error_and_is_not_created(tmp_path):
    with pytest.raises(ConfigError, match="chdb file not found: .*nothere.chdb"):
        open_source(f"chdb:///{tmp_path / 'nothere.chdb'}")
    assert list(tmp_path.iterdir()) == []


# Ways round a read-only ClickHouse session: each must be refused.
CHDB_BYPASSES = [
    "INSERT INTO segments (segment_id, name, is_target) VALUES (99, 'hacked', false)",
    "SET readonly = 0",
    "SET join_use_nulls = 0",
    "CREATE TABLE hacked (x Int64) ENGINE = Memory",
    "DROP TABLE segments",
    "TRUNCATE TABLE segments",
    "INSERT INTO FUNCTION file('{folder}/out.csv', 'CSV') SELECT * FROM segments",
]


def test_chdb_source_reads_with_standard_nulls_and_refuses_writes(tmp_path):
    from crmmetrics.data.demo import generate_demo

    folder = tmp_path / "crm.chdb"
    generate_demo(f"chdb:///{folder}", customers=20, seed=3, as_of=datetime(2026, 6, 1).date())
    engine = open_source(f"chdb:///{folder}")
    with engine.connect() as connection:
        segments = connection.execute(select(func.count()).select_from(schema.segments)).scalar()
        assert segments > 0
        # the settings that make ClickHouse's SQL standard are on, and the session is read-only
        settings = dict(connection.exec_driver_sql(
            "SELECT name, value FROM system.settings WHERE name IN "
            "('join_use_nulls', 'cast_keep_nullable', 'readonly', 'session_timezone')").all())
        assert settings == {"join_use_nulls": "1", "cast_keep_nullable": "1", "readonly": "1", "session_timezone": "UTC"}
        # an outer join's unmatched side is NULL, as on the other engines (not 0 or '')
        unmatched = connection.execute(text(
            "SELECT s.name FROM customers c LEFT JOIN segments s ON s.segment_id = c.segment_id + 1000 LIMIT 1")).scalar()
        assert unmatched is None
        for statement in CHDB_BYPASSES:
            with pytest.raises(sqlalchemy.exc.DBAPIError, match="readonly|READONLY|Cannot execute query in readonly mode"):
                connection.exec_driver_sql(statement.format(folder=tmp_path))
        assert connection.execute(select(func.count()).select_from(schema.segments)).scalar() == segments
    engine.dispose()
    assert not (tmp_path / "out.csv").exists()
