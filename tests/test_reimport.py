"""Imports are idempotent: rows are identified by their key (given, or derived from their
content), a re-import is refused unless --mode says what to do, and implausible rows are refused."""

from __future__ import annotations

import hashlib
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crmmetrics.core.schema import TABLES
from crmmetrics.data.importer import CsvImportError, ReimportError, import_csv

DATA = Path(__file__).parent / "data" / "import"
TRANSACTION_LOG = {"customer": "customer_id", "date": "ordered_at", "amount": "net_revenue"}
LOG_ARGS = ("--map", "customer=customer_id", "--map", "date=ordered_at", "--map", "amount=net_revenue", "--derive-customers")


def count(db, table):
    with db.engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(TABLES[table]))


def revenue(db):
    with db.engine.connect() as connection:
        return connection.scalar(select(func.sum(TABLES["orders"].c.net_revenue)))


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_refuses_a_second_import_of_the_same_file_in_one_line(crmmetrics_cli, tmp_path):
    assert crmmetrics_cli("source", "init", "sqlite:///crm.sqlite").returncode == 0
    shutil.copy(DATA / "transactions.csv", tmp_path)
    first = crmmetrics_cli("import", "orders", "transactions.csv", "--source", "sqlite:///crm.sqlite", *LOG_ARGS)
    assert first.returncode == 0, first.stderr
    before = checksum(tmp_path / "crm.sqlite")

    again = crmmetrics_cli("import", "orders", "transactions.csv", "--source", "sqlite:///crm.sqlite", *LOG_ARGS)
    assert again.returncode == 2
    assert again.stdout == ""
    assert len(again.stderr.splitlines()) == 1
    assert again.stderr.startswith("Error: transactions.csv:2: this row is already in orders (key ")
    assert "Nothing was imported; use --mode append (only new rows), upsert or replace" in again.stderr
    assert checksum(tmp_path / "crm.sqlite") == before  # the source is byte for byte unchanged

    upsert = crmmetrics_cli("import", "orders", "transactions.csv", "--source", "sqlite:///crm.sqlite", "--mode", "upsert", *LOG_ARGS)
    assert upsert.returncode == 0, upsert.stderr
    assert upsert.stdout == "orders: imported 0 of 9 rows from transactions.csv; updated 9 rows already there\n"
    append = crmmetrics_cli("import", "orders", "transactions.csv", "--source", "sqlite:///crm.sqlite", "--mode", "append", *LOG_ARGS)
    assert append.stdout == "orders: imported 0 of 9 rows from transactions.csv; skipped 9 rows already there\n"

    shorter = tmp_path / "shorter.csv"
    shorter.write_text("".join((DATA / "transactions.csv").read_text().splitlines(keepends=True)[:6]))
    replace = crmmetrics_cli("import", "orders", "shorter.csv", "--source", "sqlite:///crm.sqlite", "--mode", "replace", *LOG_ARGS)
    assert replace.returncode == 0, replace.stderr
    assert replace.stdout == "orders: imported 5 of 5 rows from shorter.csv (replacing 9 rows)\n"


def test_modes_on_both_databases(source_backend, tmp_path):
    db = source_backend()
    first = import_csv(db.url, "orders", DATA / "transactions.csv", mapping=TRANSACTION_LOG, derive_customers=True, chunk_size=4)
    assert (first.rows_imported, count(db, "orders"), revenue(db)) == (9, 9, pytest.approx(335.49))

    with pytest.raises(ReimportError, match=r"transactions.csv:2: this row is already in orders"):
        import_csv(db.url, "orders", DATA / "transactions.csv", mapping=TRANSACTION_LOG, derive_customers=True, chunk_size=4)
    assert (count(db, "orders"), count(db, "customers"), revenue(db)) == (9, 4, pytest.approx(335.49))  # not doubled

    upsert = import_csv(db.url, "orders", DATA / "transactions.csv", mapping=TRANSACTION_LOG, mode="upsert", chunk_size=4)
    assert (upsert.rows_imported, upsert.rows_updated, count(db, "orders")) == (0, 9, 9)

    # An overlapping later export: two old lines and one new one; append adds only the new one.
    later = tmp_path / "later.csv"
    later.write_text("customer,date,amount\n101,2026-06-02,20.00\n102,2026-05-20,30.00\n104,2026-06-10,15.00\n")
    append = import_csv(db.url, "orders", later, mapping=TRANSACTION_LOG, mode="append")
    assert (append.rows_imported, append.rows_skipped, count(db, "orders")) == (1, 2, 10)
    assert revenue(db) == pytest.approx(350.49)

    replace = import_csv(db.url, "orders", later, mapping=TRANSACTION_LOG, mode="replace")
    assert (replace.rows_replaced, replace.rows_imported, count(db, "orders"), revenue(db)) == (10, 3, 3, pytest.approx(65.0))


def test_identical_lines_are_two_rows_and_their_keys_do_not_change(crm_db, tmp_path):
    twice = tmp_path / "twice.csv"
    twice.write_text("ordered_at,net_revenue\n2026-01-05,10\n2026-01-05,10\n")
    import_csv(crm_db.url, "orders", twice)
    with crm_db.engine.connect() as connection:
        keys = sorted(connection.scalars(select(TABLES["orders"].c.order_id)))
    assert len(set(keys)) == 2  # two purchases of the same amount on the same day
    with pytest.raises(ReimportError):
        import_csv(crm_db.url, "orders", twice)
    # The same content gives the same keys in another database too.
    other = type(crm_db)(f"sqlite:///{tmp_path / 'other.sqlite'}")
    import_csv(other.url, "orders", twice)
    with other.engine.connect() as connection:
        assert sorted(connection.scalars(select(TABLES["orders"].c.order_id))) == keys
    other.dispose()


def test_given_keys_with_other_values_are_a_conflict_unless_upserted(crm_db, tmp_path):
    first = tmp_path / "customers.csv"
    first.write_text("customer_id,email\n1,ann@example.org\n2,bob@example.org\n")
    import_csv(crm_db.url, "customers", first)
    changed = tmp_path / "changed.csv"
    changed.write_text("customer_id,email\n1,ann@example.com\n3,cy@example.org\n")
    with pytest.raises(CsvImportError) as caught:
        import_csv(crm_db.url, "customers", changed)
    assert [e.describe(changed) for e in caught.value.errors] == [f"{changed}:2: column customer_id: duplicate key 1: already in customers"]
    result = import_csv(crm_db.url, "customers", changed, mode="upsert")
    assert (result.rows_imported, result.rows_updated) == (1, 1)
    with crm_db.engine.connect() as connection:
        customers = TABLES["customers"]
        emails = dict(connection.execute(select(customers.c.customer_id, customers.c.email)).all())
    assert emails == {1: "ann@example.com", 2: "bob@example.org", 3: "cy@example.org"}


def test_implausible_rows_are_refused_at_their_lines(crm_db, tmp_path):
    bad = tmp_path / "orders.csv"
    bad.write_text("ordered_at,net_revenue,returned_amount\n2026-01-05,10,0\n2999-01-01,5,0\n2026-01-06,-5,0\n2026-01-07,5,-1\n")
    with pytest.raises(CsvImportError) as caught:
        import_csv(crm_db.url, "orders", bad)
    lines = [e.describe("orders.csv") for e in caught.value.errors]
    assert lines[0].startswith("orders.csv:3: column ordered_at: 2999-01-01 00:00:00 is after the import time (")
    assert lines[1:] == [
        "orders.csv:4: column net_revenue: negative (-5): orders does not hold returns or credits as negative values (only order_lines and cost_entries do)",
        "orders.csv:5: column returned_amount: negative (-1): orders does not hold returns or credits as negative values (only order_lines and cost_entries do)",
    ]
    assert count(crm_db, "orders") == 0
    # A returned order line and a credit note are negative amounts where the tables allow them.
    crm_db.insert("orders", [{"order_id": 7, "ordered_at": datetime(2026, 1, 5), "net_revenue": 10.0}])
    lines_file = tmp_path / "lines.csv"
    lines_file.write_text("order_id,line_no,product_category,quantity,net_revenue\n7,1,books,1,10\n7,2,books,-1,-10\n")
    assert import_csv(crm_db.url, "order_lines", lines_file).rows_imported == 2
    credit = tmp_path / "costs.csv"
    credit.write_text("period_start,period_end,cost_type,amount\n2026-01-01,2026-02-01,service,-120\n")
    assert import_csv(crm_db.url, "cost_entries", credit).rows_imported == 1
