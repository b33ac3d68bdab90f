"""Fixtures that start real servers on loopback (see tests/support/servers.py).

The fixtures for plugin authors (crm_db, compute, demo_db) come from the pytest plugin
crmmetrics.testing, which the project's own tests use too.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from crmmetrics.testing import CrmDatabase
from support.servers import PostgresServer, PrometheusServer, ServiceProcess

_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL from the Debian package, started once per session on loopback."""
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_url(pg_server: PostgresServer) -> str:
    """URL of the server's maintenance database (for creating databases)."""
    return pg_server.url()


class _PgDatabases:
    """Creates empty databases on the session's PostgreSQL and drops them afterwards."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.admin = create_engine(server.url(), isolation_level="AUTOCOMMIT")
        self.names: list[str] = []

    def create(self) -> str:
        name = f"test_{next(_database_numbers)}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        self.names.append(name)
        return self.server.url(name)

    def drop_all(self) -> None:
        with self.admin.connect() as connection:
            for name in self.names:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture
def pg_databases(pg_server: PostgresServer):
    databases = _PgDatabases(pg_server)
    yield databases
    databases.drop_all()


@pytest.fixture
def fresh_pg_db(pg_databases: _PgDatabases) -> str:
    """URL of a new, empty PostgreSQL database, dropped after the test."""
    return pg_databases.create()


#: The engines a source is tested on (the docs' "tested engines").
SOURCE_BACKENDS = ["sqlite", "postgresql", "duckdb"]


@pytest.fixture(params=SOURCE_BACKENDS)
def source_backend(request: pytest.FixtureRequest, tmp_path: Path):
    """A factory ``make_source() -> CrmDatabase`` on SQLite and, in further runs, PostgreSQL and DuckDB."""
    created: list[CrmDatabase] = []

    def make_source() -> CrmDatabase:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / f'crm-{len(created)}.sqlite'}"
        elif request.param == "duckdb":
            url = f"duckdb:///{tmp_path / f'crm-{len(created)}.duckdb'}"
        else:
            url = request.getfixturevalue("pg_databases").create()
        database = CrmDatabase(url)
        created.append(database)
        return database

    make_source.backend = request.param  # type: ignore[attr-defined]
    yield make_source
    for database in created:
        database.dispose()


@pytest.fixture
def prometheus(tmp_path_factory: pytest.TempPathFactory):
    """A real Prometheus (not yet started): call ``.start(targets=[...])``."""
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"))
    yield server
    server.stop()


@pytest.fixture
def crmmetrics_service():
    """A factory ``start(config_path) -> ServiceProcess`` running ``crmmetrics serve``; stopped after."""
    started: list[ServiceProcess] = []

    def start(config_path: Path, **options) -> ServiceProcess:
        service = ServiceProcess(config_path, **options)
        service.start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()
