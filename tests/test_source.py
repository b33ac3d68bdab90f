"""The source is opened read-only on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy.exc
from sqlalchemy import func, select, text

from crmmetrics import schema
from crmmetrics.errors import ConfigError
from crmmetrics.source import open_source


def test_source_reads_but_refuses_writes(source_backend):
    database = source_backend()
    database.insert("segments", [{"segment_id": 1, "name": "Gold", "is_target": True}])
    engine = open_source(database.url)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(schema.segments)).scalar() == 1
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="read.only|readonly"):
            connection.execute(schema.segments.insert().values(segment_id=2, name="Blue", is_target=False))
    engine.dispose()
    with database.engine.connect() as connection:  # nothing was written
        assert connection.execute(text("SELECT count(*) FROM segments")).scalar() == 1


def test_missing_sqlite_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="SQLite file not found: .*nothere.sqlite"):
        open_source(f"sqlite:///{tmp_path / 'nothere.sqlite'}")


def test_naive_utc_timestamps_round_trip(source_backend):
    database = source_backend()
    moment = datetime(2026, 2, 28, 23, 59, 59)
    database.insert("employees", [{"employee_id": 1, "department": "service", "is_customer_facing": True, "fte": 1.0, "hired_at": moment}])
    with open_source(database.url).connect() as connection:
        assert connection.execute(select(schema.employees.c.hired_at)).scalar() == moment
