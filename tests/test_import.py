"""Importing the user's own CSV exports: types, bad rows by line, mapping, atomicity, derived customers."""

from __future__ import annotations

import csv
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect, select

from crmmetrics.core.errors import ConfigError
from crmmetrics.core.schema import TABLES
from crmmetrics.data.importer import CsvImportError, import_csv, init_source
from crmmetrics.kpi.clv import rfm_summary
from crmmetrics.testing import CrmDatabase

DATA = Path(__file__).parent / "data" / "import"
TRANSACTION_LOG = {"customer": "customer_id", "date": "ordered_at", "amount": "net_revenue"}


def rows(db, table, order_by):
    t = TABLES[table]
    with db.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(select(t).order_by(t.c[order_by]))]


def messages(exc: CsvImportError) -> list[str]:
    return [line.split(":", 1)[1] for line in exc.lines()]  # without the file name


# -- a good file ------------------------------------------------------------------------------


def test_good_files_are_read_back_with_their_types(source_backend):
    db = source_backend()
    assert import_csv(db.url, "channels", DATA / "channels.csv").rows_imported == 3
    customers = import_csv(db.url, "customers", DATA / "customers.csv")
    assert (customers.rows_read, customers.rows_imported, customers.rows_rejected) == (3, 3, 0)
    assert import_csv(db.url, "orders", DATA / "orders.csv").rows_imported == 3

    channels = rows(db, "channels", "channel_id")
    assert [(c["name"], c["is_virtual"], c["is_self_service"]) for c in channels] == [
        ("Web shop", True, True),
        ("Stores, high street", False, False),
        ("Call centre", False, False),  # empty: the column's default
    ]
    ann, eve, bob = rows(db, "customers", "customer_id")
    assert ann["acquired_at"] == datetime(2025, 2, 3, 9, 15)  # ...Z
    assert eve["acquired_at"] == datetime(2025, 3, 4, 16, 0)  # 18:00+02:00 is 16:00 UTC
    assert bob["acquired_at"] == datetime(2025, 3, 5)
    assert (ann["acquisition_channel_id"], ann["contract_type"], ann["email"], ann["postcode"]) == (1, "none", "ann@example.org", "10115")
    assert (ann["category_wallet"], eve["category_wallet"], bob["category_wallet"]) == (1200.5, None, 350.0)
    assert (eve["email"], eve["postcode"], bob["master_customer_id"]) == (None, "EC1A 1BB", 1)
    orders = rows(db, "orders", "order_id")
    assert [(o["order_id"], o["customer_id"], o["ordered_at"], o["channel_id"]) for o in orders] == [
        (10, 1, datetime(2025, 2, 3, 9, 20), 1),
        (11, 2, datetime(2025, 3, 4, 16, 30), 2),
        (12, None, datetime(2025, 3, 6, 12, 0), 3),
    ]
    assert [(o["gross_revenue"], o["discount"], o["net_revenue"], o["cogs"]) for o in orders] == [
        (100.0, 10.0, 90.0, 40.25),
        (55.5, 0.0, 55.5, None),  # empty discount: default 0
        (20.0, 0.0, 20.0, 8.0),
    ]


# -- each kind of bad row ---------------------------------------------------------------------


def test_each_kind_of_bad_row_is_reported_at_its_line_and_nothing_is_written(source_backend):
    db = source_backend()
    db.insert("customers", [{"customer_id": 1, "email": "already@example.org"}])
    with pytest.raises(CsvImportError) as caught:
        import_csv(db.url, "customers", DATA / "customers_bad.csv")
    assert messages(caught.value) == [
        "5: column acquired_at: not a date-time in ISO 8601: '2025-01-32'",
        "6: column category_wallet: not a number: 'lots'",
        "7: column customer_id: missing required value",
        "8: column customer_id: duplicate key 10: also on line 2",
        "9: column customer_id: duplicate key 1: already in customers",
        "10: column segment_id: 9 not found in segments",
        "11: column postcode: longer than 20 characters (21)",
        "12: expected 7 fields, found 5",
        "13: column master_customer_id: 99 not found in customers (nor on an earlier line of the file)",
        "15: column segment_id: out of range of a 32-bit integer: '2147483648'",
        "16: column customer_id: not an integer: '1.5'",
    ]
    assert caught.value.lines()[0] == f"{DATA / 'customers_bad.csv'}:5: column acquired_at: not a date-time in ISO 8601: '2025-01-32'"
    assert str(caught.value) == f"{DATA / 'customers_bad.csv'}: 11 errors in 11 rows; nothing was imported"
    assert [(c["customer_id"], c["email"]) for c in rows(db, "customers", "customer_id")] == [(1, "already@example.org")]


def test_an_order_of_an_unknown_customer_is_a_foreign_key_violation(source_backend, tmp_path):
    db = source_backend()
    db.insert("customers", [{"customer_id": 7}])
    log = tmp_path / "orders.csv"
    log.write_text("customer_id,ordered_at,net_revenue\n7,2026-01-01,5\n8,2026-01-02,6\n")
    with pytest.raises(CsvImportError) as caught:
        import_csv(db.url, "orders", log)
    assert messages(caught.value) == ["3: column customer_id: 8 not found in customers"]
    assert rows(db, "orders", "order_id") == []


@pytest.mark.parametrize(
    ("table", "text", "options", "expected"),
    [
        (
            "orders",
            "customer_id,ordered_at,net_revenue,note\n",
            {},
            ["1: column note: not a column of orders (map it with --map note=COLUMN, or pass --ignore-extra)"],
        ),
        (
            "orders",
            "customer_id,net_revenue\n",
            {},
            ["1: column ordered_at: required, but the file has no such column (map one with --map THEIR=ordered_at)"],
        ),
        (
            "orders",
            "ordered_at,amount,net_revenue\n",
            {"mapping": {"amount": "net_revenue"}},
            ["1: column net_revenue: given by both 'amount' and 'net_revenue'"],
        ),
        (
            "orders",
            "ordered_at,net_revenue,ordered_at\n",
            {},
            ["1: column ordered_at: appears twice in the header"],
        ),
        (
            "orders",
            "ordered_at,net_revenue\n",
            {"mapping": {"total": "net_revenue", "ordered_at": "when"}},
            [
                "1: --map total=net_revenue: the header has no column 'total'",
                "1: --map ordered_at=when: orders has no column 'when'",
                "1: column ordered_at: required, but the file has no such column (map one with --map THEIR=ordered_at)",
            ],
        ),
        (
            "order_lines",
            "order_id,product_category,net_revenue\n",
            {},  # a composite key is never derived
            ["1: column line_no: required, but the file has no such column (map one with --map THEIR=line_no)"],
        ),
        (
            "channels",
            "name,category,is_virtual\nWeb,e_commerce,maybe\n",
            {},
            ["2: column is_virtual: not a boolean (true/false, 1/0, yes/no): 'maybe'"],
        ),
        (
            "orders",
            "ordered_at,net_revenue\n2026-01-01,nan\n2026-01-01,1_000\n2026-01-01, 12.5 \n",
            {},
            ["2: column net_revenue: not a number: 'nan'", "3: column net_revenue: not a number: '1_000'"],
        ),
        (
            "orders",
            "ordered_at,net_revenue\n01/02/2026,3\n",
            {"date_format": "%Y-%m-%d"},
            ["2: column ordered_at: not a date-time in format '%Y-%m-%d': '01/02/2026'"],
        ),
    ],
    ids=["unknown-column", "missing-required-column", "two-sources", "twice", "bad-map", "composite-key", "boolean", "number", "date-format"],
)
def test_bad_headers_and_values(crm_db, tmp_path, table, text, options, expected):
    path = tmp_path / "export.csv"
    path.write_text(text)
    with pytest.raises(CsvImportError) as caught:
        import_csv(crm_db.url, table, path, **options)
    assert messages(caught.value) == expected


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"ordered_at,net_revenue\n2026-01-01,5\n2026-01-02,caf\xe9\n", ":3: not UTF-8 text (byte 0xe9)"),
        (b'ordered_at,net_revenue\n2026-01-01,5\n2026-01-02,"5"x\n', ":3: not valid CSV: ',' expected after '\"'"),
        (b'ordered_at,net_revenue\n2026-01-01,"5\n', ":2: not valid CSV: unexpected end of data"),
        (b"", ": empty file, expected a header line"),
    ],
    ids=["encoding", "quote", "unclosed-quote", "empty"],
)
def test_a_file_that_cannot_be_read_as_csv_is_one_error(crm_db, tmp_path, content, error):
    path = tmp_path / "orders.csv"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        import_csv(crm_db.url, "orders", path)
    assert str(caught.value) == f"{path}{error}"
    assert rows(crm_db, "orders", "order_id") == []


def test_a_byte_order_mark_crlf_and_quoted_line_breaks_are_read(crm_db, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_bytes(b'\xef\xbb\xbfcustomer_id,contract_type\r\n1,"a ""b""\r\nc"\r\n\r\n2,x\r\n')
    import_csv(crm_db.url, "customers", path)
    assert [(c["customer_id"], c["contract_type"]) for c in rows(crm_db, "customers", "customer_id")] == [(1, 'a "b"\r\nc'), (2, "x")]


def test_the_error_lists_twenty_problems_then_counts_the_rest(crm_db, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("ordered_at,net_revenue\n" + "".join(f"2026-01-01,x{n}\n" for n in range(25)))
    with pytest.raises(CsvImportError) as caught:
        import_csv(crm_db.url, "orders", path)
    lines = caught.value.lines()
    assert len(lines) == 21 and lines[19].endswith(":21: column net_revenue: not a number: 'x19'")
    assert lines[20] == "... and 5 more"


def test_a_record_across_chunks_repeating_a_key_is_already_in_the_table(crm_db, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("customer_id\n1\n2\n3\n1\n")
    with pytest.raises(CsvImportError) as caught:
        import_csv(crm_db.url, "customers", path, chunk_size=2)
    assert messages(caught.value) == ["5: column customer_id: duplicate key 1: already in customers"]
    assert rows(crm_db, "customers", "customer_id") == []


# -- mapping, date format, time zone ----------------------------------------------------------


def test_another_systems_export_maps_onto_orders_with_a_date_format(crm_db):
    crm_db.insert("customers", [{"customer_id": 1}, {"customer_id": 2}])
    crm_db.insert("orders", [{"order_id": 41, "ordered_at": datetime(2024, 1, 1), "net_revenue": 1.0}])
    result = import_csv(
        crm_db.url,
        "orders",
        DATA / "shop_export.csv",
        mapping={"Client": "customer_id", "Date": "ordered_at", "Total": "net_revenue"},
        date_format="%d/%m/%Y %H:%M",
        ignore_extra=True,  # 'Order No' (not an integer key) and 'Note'
    )
    assert result.rows_imported == 3
    stored = rows(crm_db, "orders", "ordered_at")
    assert [(o["customer_id"], o["ordered_at"], o["net_revenue"]) for o in stored] == [
        (None, datetime(2024, 1, 1), 1.0),
        (1, datetime(2025, 2, 3, 9, 20), 90.0),
        (1, datetime(2025, 2, 28, 23, 59), 12.25),
        (2, datetime(2025, 3, 4, 16, 30), 55.5),
    ]
    # order_id is derived from each row's content: distinct, and the same on every import
    derived = [o["order_id"] for o in stored[1:]]
    assert 41 not in derived and len(set(derived)) == 3 and all(0 < key < 2**63 for key in derived)


def test_local_times_are_stored_as_utc(crm_db, tmp_path):
    path = tmp_path / "orders.csv"
    # winter (UTC+1), summer (UTC+2), and an explicit offset that wins over the zone
    path.write_text("ordered_at,net_revenue\n2026-01-15 10:00,1\n2026-07-15 10:00,2\n2026-07-15T10:00:00-05:00,3\n")
    import_csv(crm_db.url, "orders", path, timezone="Europe/Berlin")
    assert [o["ordered_at"] for o in rows(crm_db, "orders", "net_revenue")] == [
        datetime(2026, 1, 15, 9, 0),
        datetime(2026, 7, 15, 8, 0),
        datetime(2026, 7, 15, 15, 0),
    ]


# -- atomicity and the reject file ------------------------------------------------------------


def test_one_bad_row_at_the_end_of_a_long_file_writes_nothing(source_backend, tmp_path):
    db = source_backend()
    db.insert("orders", [{"order_id": 1, "ordered_at": datetime(2025, 1, 1), "net_revenue": 9.5}])
    path = tmp_path / "orders.csv"
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["order_id", "ordered_at", "net_revenue"])
        writer.writerows([n, "2026-01-01", n] for n in range(2, 2502))  # lines 2-2501: two full chunks and part of a third
        writer.writerow([2502, "2026-01-01", "twelve"])
    with pytest.raises(CsvImportError) as caught:
        import_csv(db.url, "orders", path)
    assert messages(caught.value) == ["2502: column net_revenue: not a number: 'twelve'"]
    assert rows(db, "orders", "order_id") == [
        {
            "order_id": 1,
            "customer_id": None,
            "ordered_at": datetime(2025, 1, 1),
            "channel_id": None,
            "campaign_id": None,
            "gross_revenue": None,
            "discount": 0.0,
            "net_revenue": 9.5,
            "cogs": None,
            "returned_amount": 0.0,
        }
    ]


def _orders_indexes(db) -> list[tuple[str, str]]:
    with db.engine.connect() as connection:
        return sorted(connection.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'orders' AND sql IS NOT NULL"
        ).all())


@pytest.mark.parametrize("bad_last_line", [False, True])
def test_a_large_import_builds_the_indexes_at_its_end_and_a_failed_one_keeps_them(crm_db, tmp_path, bad_last_line):
    """SQLite: an import of 10,000 lines or more drops the plain indexes of its table and builds them
    again at its end, in its transaction: afterwards they are there, the same, and used."""
    crm_db.insert("customers", [{"customer_id": c, "acquired_at": datetime(2024, 1, 1)} for c in range(1, 101)])
    before = _orders_indexes(crm_db)
    assert len(before) == 4  # orders: ordered_at, (customer_id, ordered_at), channel_id, campaign_id
    path = tmp_path / "orders.csv"
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["order_id", "customer_id", "ordered_at", "net_revenue"])
        writer.writerows([n, n % 100 + 1, f"2025-{n % 12 + 1:02d}-01", n / 4] for n in range(1, 12_001))
        if bad_last_line:
            writer.writerow([12_001, 7, "2025-01-01", "twelve"])
    if bad_last_line:
        with pytest.raises(CsvImportError):
            import_csv(crm_db.url, "orders", path)
    else:
        assert import_csv(crm_db.url, "orders", path).rows_imported == 12_000
    assert _orders_indexes(crm_db) == before
    with crm_db.engine.connect() as connection:
        count, total = connection.exec_driver_sql("SELECT count(*), sum(net_revenue) FROM orders").one()
        plan = " ".join(row[3] for row in connection.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM orders WHERE customer_id = 7 AND ordered_at >= '2025-03-01'"
        ))
        integrity = connection.exec_driver_sql("PRAGMA integrity_check").scalar()
    assert integrity == "ok"
    if bad_last_line:
        assert (count, total) == (0, None)
    else:
        assert (count, total) == (12_000, sum(n / 4 for n in range(1, 12_001)))
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan


def test_a_reject_file_takes_the_bad_rows_and_the_good_ones_are_imported(source_backend, tmp_path):
    db = source_backend()
    db.insert("customers", [{"customer_id": 1}])
    rejects = tmp_path / "rejects.csv"
    result = import_csv(db.url, "customers", DATA / "customers_bad.csv", reject_file=rejects)
    assert (result.rows_read, result.rows_imported, result.rows_rejected, result.reject_file) == (14, 3, 11, rejects)
    assert [(c["customer_id"], c["contract_type"], c["master_customer_id"]) for c in rows(db, "customers", "customer_id")] == [
        (1, None, None),
        (10, "none", None),
        (11, "two\nlines", None),
        (18, None, 11),
    ]
    with rejects.open(newline="") as stream:
        written = list(csv.reader(stream))
    assert written[0] == ["line", "error", "customer_id", "acquired_at", "segment_id", "contract_type", "postcode", "category_wallet", "master_customer_id"]
    assert written[1] == ["5", "column acquired_at: not a date-time in ISO 8601: '2025-01-32'", "12", "2025-01-32", "", "", "", "", ""]
    assert written[8] == ["12", "expected 7 fields, found 5", "16", "2025-01-09", "", "", ""]
    assert [line for line, *_ in written[1:]] == ["5", "6", "7", "8", "9", "10", "11", "12", "13", "15", "16"]


def test_a_failed_import_leaves_no_reject_file(crm_db, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("ordered_at,net_revenue,extra\n2026-01-01,1,x\n")
    with pytest.raises(CsvImportError):
        import_csv(crm_db.url, "orders", path, reject_file=tmp_path / "rejects.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crm.sqlite", "orders.csv"]


# -- a transaction log is enough for the value KPIs and the CLV inputs -------------------------


def test_a_transaction_log_with_derived_customers_feeds_the_value_kpis(source_backend, compute):
    db = source_backend()
    # chunks of two rows: the first orders of 101 and 102 come in later chunks than their others
    result = import_csv(db.url, "orders", DATA / "transactions.csv", mapping=TRANSACTION_LOG, derive_customers=True, chunk_size=2)
    assert (result.rows_imported, result.customers_derived) == (9, 4)
    customers = rows(db, "customers", "customer_id")
    assert [(c["customer_id"], c["acquired_at"]) for c in customers] == [
        (101, datetime(2024, 9, 10)),
        (102, datetime(2025, 3, 2)),
        (103, datetime(2026, 4, 12)),
        (104, datetime(2026, 5, 31, 23, 30)),
    ]
    assert all(c["created_at"] == c["updated_at"] and c["created_at"] > datetime(2026, 1, 1) for c in customers)
    orders = rows(db, "orders", "order_id")
    assert len({o["order_id"] for o in orders}) == 9
    assert [o["customer_id"] for o in orders].count(None) == 1  # the anonymous order creates no customer

    # as of 2026-06-15: May 2026 has 101: 80, 102: 30, 104: 10 and anonymous 50 -> 170 / 4;
    # April 2026 has 103: 19.99 only.
    aov = compute("vc_aov", db.url, as_of=datetime(2026, 6, 15))
    assert aov.current() == pytest.approx(42.5) and aov.previous() == pytest.approx(19.99)
    # trailing 365 days [2025-06-15, 2026-06-15): 101, 102, 103, 104; the year before: 101, 102
    active = compute("sd_active_customers", db.url, as_of=datetime(2026, 6, 15))
    assert (active.current(), active.previous()) == (4, 2)
    # simple CLV over the trailing year: m = 30% default margin x 219.99 of identified revenue / 4
    # active customers; r = 2 of the 2 customers active the year before; d = 10% a year over 365 days
    clv = compute("vc_clv_simple", db.url, as_of=datetime(2026, 6, 15))
    m, r, d = 0.3 * 219.99 / 4, 1.0, 1.1 ** (365 / 365.25) - 1
    assert clv.current() == pytest.approx(m * r / (1 + d - r))  # 165.11

    # CLV inputs (x, t_x, T in weeks, mbar) to 2026-06-14, counted by hand:
    # 101 buys on 2024-09-10, 2025-07-01, 2026-05-03, 2026-06-02: x 3, t_x 630 d, T 642 d, mbar 160/3
    # 102 on 2025-03-02 and 2026-05-20: x 1, t_x 444 d, T 469 d, mbar 30; 103: T 63 d; 104: T 14 d
    identified = [o for o in orders if o["customer_id"] is not None]
    summary = rfm_summary(
        [o["customer_id"] for o in identified],
        np.array([o["ordered_at"] for o in identified], dtype="datetime64[D]"),
        [o["net_revenue"] for o in identified],
        calibration_end="2026-06-14",
    )
    assert summary.ids.tolist() == [101, 102, 103, 104]
    assert summary.x.tolist() == [3, 1, 0, 0]
    assert summary.t_x * 7 == pytest.approx([630, 444, 0, 0])
    assert summary.T * 7 == pytest.approx([642, 469, 63, 14])
    assert summary.mbar == pytest.approx([160 / 3, 30, 0, 0])


def test_derived_customers_leave_existing_ones_alone(crm_db):
    crm_db.insert("customers", [{"customer_id": 102, "acquired_at": datetime(2020, 1, 1), "email": "b@example.org"}])
    result = import_csv(crm_db.url, "orders", DATA / "transactions.csv", mapping=TRANSACTION_LOG, derive_customers=True)
    assert result.customers_derived == 3
    assert [(c["customer_id"], c["acquired_at"], c["email"]) for c in rows(crm_db, "customers", "customer_id")] == [
        (101, datetime(2024, 9, 10), None),
        (102, datetime(2020, 1, 1), "b@example.org"),
        (103, datetime(2026, 4, 12), None),
        (104, datetime(2026, 5, 31, 23, 30), None),
    ]


def test_derive_customers_applies_to_orders_only(crm_db):
    with pytest.raises(ConfigError, match="^--derive-customers: applies to orders only, not to interactions$"):
        import_csv(crm_db.url, "interactions", DATA / "orders.csv", derive_customers=True)


# -- the target database ----------------------------------------------------------------------


def test_init_creates_the_canonical_tables_and_refuses_a_database_with_data(tmp_path, fresh_pg_db):
    for url in (f"sqlite:///{tmp_path / 'new.sqlite'}", fresh_pg_db):
        assert init_source(url).created == list(TABLES)
        assert sorted(inspect(create_engine(url)).get_table_names()) == sorted(TABLES)
        again = init_source(url)  # empty tables: nothing to do, nothing refused
        assert (again.created, again.existing) == ([], list(TABLES))
        import_csv(url, "channels", DATA / "channels.csv")
        with pytest.raises(ConfigError, match=r": canonical tables already hold data \(channels: 3 rows\); nothing changed$"):
            init_source(url)


def test_importing_needs_an_existing_database_with_the_table(tmp_path):
    missing = f"sqlite:///{tmp_path / 'none.sqlite'}"
    with pytest.raises(ConfigError, match="SQLite file not found"):
        import_csv(missing, "orders", DATA / "orders.csv")
    assert not (tmp_path / "none.sqlite").exists()
    empty = tmp_path / "empty.sqlite"
    create_engine(f"sqlite:///{empty}").connect().close()
    with pytest.raises(ConfigError, match=r"no table orders \(create the canonical tables with 'crmmetrics source init URL'\)$"):
        import_csv(f"sqlite:///{empty}", "orders", DATA / "orders.csv")


# -- the command line -------------------------------------------------------------------------


def test_cli_imports_a_transaction_log_into_the_configs_source(crmmetrics_cli, tmp_path):
    init = crmmetrics_cli("source", "init", "sqlite:///crm.sqlite")
    assert (init.returncode, init.stdout) == (0, "sqlite:///crm.sqlite: created 12 canonical tables\n")
    (tmp_path / "crmmetrics.toml").write_text('[source]\nurl = "sqlite:///crm.sqlite"\n[store]\nurl = "sqlite:///store.sqlite"\n')
    shutil.copy(DATA / "transactions.csv", tmp_path)
    done = crmmetrics_cli(
        "import", "orders", "transactions.csv", "--map", "customer=customer_id", "--map", "date=ordered_at",
        "--map", "amount=net_revenue", "--derive-customers",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "orders: imported 9 of 9 rows from transactions.csv; derived 4 customers\n"
    refused = crmmetrics_cli("source", "init", "sqlite:///crm.sqlite")
    assert refused.returncode == 2
    assert refused.stderr == "Error: sqlite:///crm.sqlite: canonical tables already hold data (customers: 4 rows, orders: 9 rows); nothing changed\n"


def test_cli_lists_bad_rows_one_per_line_and_exits_2(crmmetrics_cli, crm_db, tmp_path):
    shutil.copy(DATA / "customers_bad.csv", tmp_path)
    done = crmmetrics_cli("import", "customers", "customers_bad.csv", "--source", crm_db.url)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0] == "customers_bad.csv:5: column acquired_at: not a date-time in ISO 8601: '2025-01-32'"
    assert lines[6] == "customers_bad.csv:12: expected 7 fields, found 5"
    # customer 1 of line 9 is not in this database: 10 bad rows, not 11
    assert lines[-1] == "Error: customers_bad.csv: 10 errors in 10 rows; nothing was imported"
    assert len(lines) == 11 and "Traceback" not in done.stderr
    assert rows(crm_db, "customers", "customer_id") == []

    kept = crmmetrics_cli("import", "customers", "customers_bad.csv", "--source", crm_db.url, "--reject-file", "rejects.csv")
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout == "customers: imported 4 of 14 rows from customers_bad.csv; rejected 10 rows (listed in rejects.csv)\n"


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (["--map", "amount"], "Error: --map 'amount': expected THEIR_COLUMN=OUR_COLUMN\n"),
        (["--timezone", "Mars/Olympus"], "Error: --timezone: unknown timezone 'Mars/Olympus'\n"),
        (["--source", "sqlite:///absent.sqlite"], "Error: sqlite:///absent.sqlite: SQLite file not found (create it with 'crmmetrics source init URL')\n"),
    ],
    ids=["map", "timezone", "source"],
)
def test_cli_bad_options_are_one_line(crmmetrics_cli, crm_db, args, stderr):
    args = args if "--source" in args else [*args, "--source", crm_db.url]
    done = crmmetrics_cli("import", "orders", str(DATA / "orders.csv"), *args)
    assert (done.returncode, done.stderr) == (2, stderr)


def test_cli_a_missing_file_is_one_line(crmmetrics_cli, crm_db):
    done = crmmetrics_cli("import", "orders", "absent.csv", "--source", crm_db.url)
    assert (done.returncode, done.stderr) == (2, "Error: absent.csv: cannot read: No such file or directory\n")


def test_typing_column_by_column_gives_what_typing_line_by_line_does(tmp_path, monkeypatch):
    """The column parsers (fast path) and the line-by-line parser agree on every good file,
    including padded fields, UTC offsets, exponents, defaults and booleans."""
    from crmmetrics.data import importer

    padded = tmp_path / "orders_padded.csv"
    padded.write_text(
        "order_id,customer_id,ordered_at,channel_id,gross_revenue,discount,net_revenue,cogs\n"
        "20, 1,2025-02-03T09:20:00+01:00,1,1e2, ,90,4.025E1\n"
        "21,2,2025-03-04 16:30:00,2,.5,,0.5,\n"
    )

    def load(directory, line_by_line):
        if line_by_line:
            def slow(*_args):
                def parse(_texts):
                    raise importer._Slow
                return parse
            monkeypatch.setattr(importer, "_column_parser", slow)
        db = CrmDatabase(f"sqlite:///{directory / 'crm.sqlite'}")
        for table, path in (("channels", DATA / "channels.csv"), ("customers", DATA / "customers.csv"),
                            ("orders", DATA / "orders.csv"), ("orders", padded)):
            import_csv(db.url, table, path)
        dump = {name: rows(db, name, key) for name, key in (("channels", "channel_id"), ("customers", "customer_id"), ("orders", "order_id"))}
        db.dispose()
        monkeypatch.undo()
        return dump

    (tmp_path / "fast").mkdir()
    (tmp_path / "slow").mkdir()
    fast, slow = load(tmp_path / "fast", False), load(tmp_path / "slow", True)
    assert fast == slow
    assert [(o["order_id"], o["customer_id"], o["ordered_at"], o["gross_revenue"], o["discount"], o["cogs"]) for o in fast["orders"][-2:]] == [
        (20, 1, datetime(2025, 2, 3, 8, 20), 100.0, 0.0, 40.25),
        (21, 2, datetime(2025, 3, 4, 16, 30), 0.5, 0.0, None),
    ]


def test_a_file_of_fast_and_slow_chunks_stores_what_a_line_by_line_import_does(source_backend, tmp_path, monkeypatch):
    """Chunks of columns (fast path) and chunks decided line by line (a padded field, a bad line,
    rows already in the table) give the same rows, derived keys (repeated lines), derived
    customers and reject file as an import forced line by line."""
    from crmmetrics.data import importer

    log = tmp_path / "log.csv"
    lines = [f"{100 + n % 7},2025-0{1 + n % 9}-{10 + n % 17} 0{n % 10}:15:00.{n:06d},{n * 1.25:.2f}" for n in range(40)]
    lines[9] = lines[8]  # an identical purchase: a second row with its own derived key
    lines[17] = " 101,2025-03-04,12.5"  # padded: its chunk is typed line by line
    lines[25] = "102,2025-03-04,abc"  # bad: rejected, its chunk written line by line
    log.write_text("customer,date,amount\n" + "\n".join(lines) + "\n")
    longer = tmp_path / "longer.csv"  # the log again with 6 more lines, imported with --mode append
    longer.write_text(log.read_text() + "".join(f"{103 + n},2025-10-0{1 + n} 12:00:00,{n}.5\n" for n in range(6)))
    seen: list[str] = []

    def load(line_by_line):
        if line_by_line:
            def slow(*_args):
                def parse(_texts):
                    raise importer._Slow
                return parse
            monkeypatch.setattr(importer, "_column_parser", slow)
        else:
            write_columns = importer._Import._write_columns
            write_rows = importer._Import._write_rows

            def spy_columns(job, values):
                done = write_columns(job, values)
                seen.append("columns" if done else "columns then lines")
                return done

            def spy_rows(job, chunk):
                seen.append("lines")
                return write_rows(job, chunk)

            monkeypatch.setattr(importer._Import, "_write_columns", spy_columns)
            monkeypatch.setattr(importer._Import, "_write_rows", spy_rows)
        db = source_backend()
        db.insert("customers", [{"customer_id": 100, "acquired_at": datetime(2024, 1, 1)}])
        rejects = tmp_path / f"rejects-{line_by_line}.csv"
        result = import_csv(db.url, "orders", log, mapping=TRANSACTION_LOG, derive_customers=True, reject_file=rejects, chunk_size=4)
        first = rows(db, "orders", "order_id")
        appended = import_csv(db.url, "orders", longer, mapping=TRANSACTION_LOG, derive_customers=True, mode="append",
                              reject_file=rejects.with_suffix(".2"), chunk_size=4)
        monkeypatch.undo()
        stored = {
            "orders": (first, rows(db, "orders", "order_id")),
            "customers": [(c["customer_id"], c["acquired_at"], c["created_at"] is not None and c["created_at"] == c["updated_at"])
                      for c in rows(db, "customers", "customer_id")],
            "rejects": rejects.read_text(),
            "result": (result.rows_read, result.rows_imported, result.rows_rejected, result.customers_derived),
            "appended": (appended.rows_read, appended.rows_imported, appended.rows_skipped, appended.rows_rejected, appended.customers_derived),
        }
        return stored

    fast, slow = load(False), load(True)
    assert fast == slow
    # the import: 10 chunks, 2 of them typed line by line (the padded field, the bad line); the
    # append: the same 10 chunks, now in the table, then 2 new ones
    assert seen == ["columns"] * 4 + ["lines", "columns", "lines"] + ["columns"] * 3 \
        + ["columns then lines", "lines"] * 4 + ["lines", "columns then lines", "lines"] * 2 + ["columns then lines", "lines"] * 2 + ["columns"] * 2
    assert fast["result"] == (40, 39, 1, 6) and fast["appended"] == (46, 6, 39, 1, 2)
    assert fast["rejects"] == "line,error,customer,date,amount\n27,column net_revenue: not a number: 'abc',102,2025-03-04,abc\n"
    imported, after_append = fast["orders"]
    assert len({o["order_id"] for o in after_append}) == 45 and all(order in after_append for order in imported)
    assert fast["customers"][:2] == [(100, datetime(2024, 1, 1), False), (101, datetime(2025, 1, 12, 6, 15, 0, 36), True)]


def test_sqlite_date_times_are_stored_in_sqlalchemys_format():
    """The importer writes SQLite date-times itself; they are the text SQLAlchemy's bind processor writes."""
    from sqlalchemy.dialects import sqlite

    from crmmetrics.data.importer import _sqlite_values

    column, dialect = TABLES["orders"].c.ordered_at, sqlite.dialect()
    process = column.type._cached_bind_processor(dialect)
    awkward = [datetime(2025, 1, 2, 3, 4, 5, 678901), datetime(2025, 1, 2), datetime(2024, 2, 29, 23, 59, 59, 999999),
               datetime(2025, 6, 7, 8, 9, 10, 1), datetime(1, 1, 1), datetime(999, 12, 31, 0, 0, 0, 100000), datetime(9999, 12, 31, 23, 59, 59)]
    for values in (awkward, [None, *awkward, None], [None, None]):
        assert _sqlite_values(column, values, dialect) == [process(value) for value in values]
    assert _sqlite_values(column, [None, *awkward[:2], *awkward[-3:]], dialect) == [
        None, "2025-01-02 03:04:05.678901", "2025-01-02 00:00:00.000000", "0001-01-01 00:00:00.000000",
        "0999-12-31 00:00:00.100000", "9999-12-31 23:59:59.000000",
    ]


@pytest.mark.parametrize("column", ["customer_id", "net_revenue"])
def test_the_column_parsers_vouch_only_for_what_the_line_parser_reads_alike(column):
    """A column of fields is typed at once only where each field alone would give the same value."""
    from crmmetrics.data import importer

    target = TABLES["orders"].c[column]
    line, whole = importer._parser(target, None, None), importer._column_parser(target, None, None, required=False)
    texts = ["7", "+7", "-7", "007", "1.5", "1.", ".5", ".", "1.2.3", "1e3", "1E-2", "e3", "1e", "١٢", "²", "1_000", " 7", "7 ",
             "nan", "inf", "0x1f", "9223372036854775808", "7\n8", ""]
    vouched = []
    for text in texts:
        try:
            expected = line(text) if text else None
        except ValueError:
            expected = ValueError
        try:
            got = whole(["1", text, "2"])
        except importer._Slow:
            assert expected is ValueError or text.strip() != text, text  # refused, or padded
            continue
        assert got == [line("1"), expected, line("2")], text
        vouched.append(text)
    # Unicode digits are digits to the line parser too (its pattern's \d)
    assert vouched == (["7", "+7", "-7", "007", "١٢", ""] if column == "customer_id" else
                       ["7", "+7", "-7", "007", "1.5", "1.", ".5", "1e3", "1E-2", "١٢", "9223372036854775808", ""])


def test_lines_are_counted_across_quoted_line_breaks_and_blank_lines(crm_db, tmp_path):
    """Records are read in blocks; a record with quoted line breaks (any of CR LF, LF, CR) still
    moves the line numbers of the records after it."""
    path = tmp_path / "customers.csv"
    path.write_bytes(b'customer_id,contract_type\n1,"a\nb"\n\n2,"c\r\nd\re"\nx,ok\n3,fine\ny,"z\nw"\n\n\n4,"\n"\nz,last\n')
    with pytest.raises(CsvImportError) as caught:
        import_csv(crm_db.url, "customers", path, chunk_size=2)
    assert messages(caught.value) == [f"{line}: column customer_id: not an integer: '{value}'" for line, value in ((8, "x"), (10, "y"), (16, "z"))]
