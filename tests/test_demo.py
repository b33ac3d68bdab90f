"""The synthetic CRM data set: deterministic, complete, and telling the stories the KPIs need."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import DateTime, create_engine, func, select, text

from crmmetrics.compute.plugins import LOAD_ENV
from crmmetrics.core import schema
from crmmetrics.core.config import parse_config
from crmmetrics.data import demo
from crmmetrics.data.demo import generator as demo_generator
from crmmetrics.data.demo import shop as demo_shop
from crmmetrics.data.demo import writer as demo_writer
from crmmetrics.data.demo import generate_demo
from crmmetrics.serve.app import App

N = 500
AS_OF = dt.date(2025, 6, 1)
AS_OF_TS = dt.datetime(2025, 6, 1)


def _url(path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def dbs(tmp_path_factory):
    """Three demo databases: seed 42 twice and seed 7, plus the progress calls of the first."""
    d = tmp_path_factory.mktemp("demo")
    calls: list[tuple[int, int]] = []
    out = {}
    for key, seed in (("a", 42), ("b", 42), ("c", 7)):
        path = d / f"{key}.db"
        counts = generate_demo(_url(path), customers=N, seed=seed, as_of=AS_OF,
                               progress=(lambda done, total: calls.append((done, total)))
                               if key == "a" else None)
        engine = create_engine(_url(path))
        out[key] = (engine, counts, path)
    yield out, calls
    for engine, _, _ in out.values():
        engine.dispose()


@pytest.fixture(scope="module")
def db(dbs):
    return dbs[0]["a"][0]


def _scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def _rows(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def _dump(engine) -> dict[str, list]:
    with engine.connect() as conn:
        return {name: conn.execute(select(t).order_by(*t.primary_key.columns)).all()
                for name, t in schema.TABLES.items()}


# ---- determinism -----------------------------------------------------------------------------


def test_same_seed_gives_identical_data(dbs):
    out, _ = dbs
    (ea, ca, pa), (eb, cb, pb) = out["a"], out["b"]
    assert ca == cb
    assert _dump(ea) == _dump(eb)
    assert pa.read_bytes() == pb.read_bytes()


def test_different_seed_gives_different_data(dbs):
    out, _ = dbs
    (ea, ca, _), (ec, cc, _) = out["a"], out["c"]
    rev_a = _scalar(ea, "SELECT SUM(net_revenue) FROM orders")
    rev_c = _scalar(ec, "SELECT SUM(net_revenue) FROM orders")
    assert rev_a != rev_c
    assert ca["orders"] != cc["orders"]
    assert ca["customers"] == cc["customers"] == N


def test_counts_match_database_and_every_table_is_filled(dbs):
    out, _ = dbs
    engine, counts, _ = out["a"]
    assert list(counts) == list(schema.TABLES)
    for name in schema.TABLES:
        n = _scalar(engine, f'SELECT COUNT(*) FROM "{name}"')
        assert n == counts[name], name
        assert n > 0, f"{name} is empty"
    assert counts["customers"] == N
    assert counts["orders"] > 2 * N
    assert counts["order_lines"] > counts["orders"]


def test_progress_reports_rows_up_to_the_total(dbs):
    out, calls = dbs
    counts = out["a"][1]
    total = sum(counts.values())
    assert calls[0] == (0, total)
    assert calls[-1] == (total, total)
    done = [c[0] for c in calls]
    assert done == sorted(done)


def test_bulk_sqlite_path_equals_sqlalchemy_core_path(db, tmp_path, monkeypatch):
    """The raw-DBAPI fast path writes exactly what SQLAlchemy Core inserts would, and chunks
    that do not divide a table change nothing."""
    monkeypatch.setattr(demo_writer, "WRITE_CHUNK_ROWS", 777)
    gen = demo._Demo(N, 42, AS_OF)
    data = gen.build()
    engine = create_engine(_url(tmp_path / "core.db"))
    try:
        demo._write(engine, data, gen.start_epoch, None, loader="core")
        assert _dump(engine) == _dump(db)
    finally:
        engine.dispose()


@pytest.mark.parametrize("engine_name", ["postgresql", "duckdb"])
def test_every_engine_holds_the_same_demo(engine_name, db, tmp_path, request, monkeypatch):
    """COPY into PostgreSQL and the numpy scan into DuckDB write the rows the SQLite path does
    (read back through SQLAlchemy's types), in chunks, and the database numbers new rows after them."""
    monkeypatch.setattr(demo_writer, "WRITE_CHUNK_ROWS", 777)
    if engine_name == "postgresql":
        url = request.getfixturevalue("fresh_pg_db")
    else:
        url = f"duckdb:///{tmp_path / 'demo.duckdb'}"
    counts = generate_demo(url, customers=N, seed=42, as_of=AS_OF)
    engine = create_engine(url)
    try:
        assert counts == request.getfixturevalue("dbs")[0]["a"][1]
        assert _dump(engine) == _dump(db)
        with engine.begin() as conn:
            new_id = conn.execute(schema.segments.insert().values(name="New", is_target=False)
                                  .returning(schema.segments.c.segment_id)).scalar()
        assert new_id == counts["segments"] + 1
        # PostgreSQL gets every canonical index, DuckDB none (its ART indexes serve no KPI scan)
        expected = {ix.name for t in schema.metadata.sorted_tables for ix in t.indexes} if engine_name == "postgresql" else set()
        assert _secondary_indexes(engine) == expected
    finally:
        engine.dispose()


def test_a_failed_duckdb_demo_leaves_no_row(tmp_path, monkeypatch):
    """DuckDB is loaded a table at a time (one transaction held the whole demo in memory): a
    failure after some tables committed deletes what was written, and the error is the cause's."""
    monkeypatch.setattr(demo_writer, "WRITE_CHUNK_ROWS", 777)

    def fail(_conn):
        raise OSError("disk full")

    monkeypatch.setattr(demo_writer, "_reset_sequences", fail)  # after every table has committed
    url = f"duckdb:///{tmp_path / 'demo.duckdb'}"
    with pytest.raises(OSError, match="disk full"):
        generate_demo(url, customers=N, seed=42, as_of=AS_OF)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            assert {name: connection.scalar(select(func.count()).select_from(t)) for name, t in schema.TABLES.items()} == dict.fromkeys(schema.TABLES, 0)
    finally:
        engine.dispose()
    monkeypatch.undo()
    assert generate_demo(url, customers=N, seed=42, as_of=AS_OF)["customers"] == N  # and the demo can be made again


def _secondary_indexes(engine) -> set[str]:
    """The indexes created on the canonical tables, those of their unique constraints left out."""
    from sqlalchemy import inspect

    if engine.dialect.name == "duckdb":  # duckdb-engine does not reflect indexes
        with engine.connect() as connection:
            return set(connection.exec_driver_sql("SELECT index_name FROM duckdb_indexes()").scalars())
    inspector = inspect(engine)
    return {ix["name"] for name in schema.TABLES for ix in inspector.get_indexes(name) if "duplicates_constraint" not in ix}


# ---- refusing and arguments ------------------------------------------------------------------


def test_refuses_a_database_with_crm_rows_and_changes_nothing(dbs):
    out, _ = dbs
    engine, counts, path = out["c"]
    before = path.read_bytes()
    with pytest.raises(ValueError, match="not empty"):
        generate_demo(_url(path), customers=N, seed=1, as_of=AS_OF)
    assert path.read_bytes() == before


def test_fills_existing_empty_tables(tmp_path):
    url = _url(tmp_path / "empty.db")
    engine = create_engine(url)
    schema.create_tables(engine)
    assert _secondary_indexes(engine) == {ix.name for t in schema.metadata.sorted_tables for ix in t.indexes}
    counts = generate_demo(url, customers=60, seed=3, as_of=AS_OF)
    assert _scalar(engine, "SELECT COUNT(*) FROM customers") == counts["customers"] == 60
    engine.dispose()


@pytest.mark.parametrize("bad", [0, 5, -1, 2.5, True, "100"])
def test_rejects_bad_customer_numbers(tmp_path, bad):
    with pytest.raises(ValueError):
        generate_demo(_url(tmp_path / "x.db"), customers=bad)


def test_default_as_of_is_today_utc(tmp_path):
    url = _url(tmp_path / "today.db")
    generate_demo(url, customers=40, seed=1)
    engine = create_engine(url)
    with engine.connect() as conn:
        newest = conn.execute(select(func.max(schema.orders.c.ordered_at))).scalar()
    engine.dispose()
    today = dt.datetime.now(dt.timezone.utc).date()
    assert newest.date() < today + dt.timedelta(days=1)
    assert newest.date() >= today - dt.timedelta(days=60)


# ---- shape of the data -----------------------------------------------------------------------


def test_values_read_back_through_sqlalchemy_types(db):
    with db.connect() as conn:
        ts = conn.execute(select(schema.orders.c.ordered_at).limit(1)).scalar()
        flag = conn.execute(select(schema.segments.c.is_target).limit(1)).scalar()
    assert isinstance(ts, dt.datetime) and ts.tzinfo is None
    assert isinstance(flag, bool)


def test_all_timestamps_before_as_of(db):
    assert db.dialect.name == "sqlite"
    earliest = AS_OF_TS - dt.timedelta(days=demo.HISTORY_DAYS)
    with db.connect() as conn:
        for name, t in schema.TABLES.items():
            for col in t.columns:
                if not isinstance(col.type, DateTime):
                    continue
                lo, hi = conn.execute(select(func.min(col), func.max(col))).one()
                if hi is None:
                    continue
                if (name, col.name) == ("cost_entries", "period_end"):
                    assert hi <= AS_OF_TS  # exclusive end of the last (partial) month
                else:
                    assert hi < AS_OF_TS, f"{name}.{col.name}: {hi}"
                if name != "employees":  # staff were hired before the history starts
                    assert lo >= earliest, f"{name}.{col.name}: {lo}"


def test_foreign_keys_hold(db):
    with db.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_key_check")).all() == []


def test_segments_and_channels(db):
    cats = {r[0] for r in _rows(db, "SELECT DISTINCT category FROM channels")}
    assert cats == {"sales_force", "outlets", "telephony", "direct_marketing", "e_commerce",
                    "m_commerce"}
    assert _scalar(db, "SELECT COUNT(*) FROM channels WHERE is_self_service") >= 2
    assert _scalar(db, "SELECT COUNT(*) FROM channels WHERE NOT is_virtual") >= 2
    assert 5 <= _scalar(db, "SELECT COUNT(*) FROM segments") <= 6
    assert 1 <= _scalar(db, "SELECT COUNT(*) FROM segments WHERE is_target") <= 2
    assert _scalar(db, "SELECT MIN(market_size_customers) FROM segments") > 0
    # segments differ in value
    rev = [r[1] for r in _rows(db, """
        SELECT c.segment_id, SUM(o.net_revenue) / COUNT(DISTINCT c.customer_id)
        FROM orders o JOIN customers c USING (customer_id)
        WHERE c.segment_id IS NOT NULL GROUP BY 1""")]
    assert max(rev) > 2 * min(rev)
    # every order channel category carries revenue
    used = {r[0] for r in _rows(db, """
        SELECT DISTINCT ch.category FROM orders o JOIN channels ch USING (channel_id)""")}
    assert used == cats


def test_duplicates_point_at_existing_masters(db):
    dups = _rows(db, """
        SELECT d.customer_id, d.created_at, d.email, m.customer_id, m.created_at, m.email,
               m.master_customer_id
        FROM customers d LEFT JOIN customers m ON m.customer_id = d.master_customer_id
        WHERE d.master_customer_id IS NOT NULL""")
    assert 0.01 * N <= len(dups) <= 0.04 * N
    for did, dcreated, demail, mid, mcreated, memail, mmaster in dups:
        assert mid is not None and mid != did
        assert mmaster is None  # the master is itself a master record
        assert dcreated > mcreated
        if demail and memail:
            assert demail.lower() == memail.lower()


def test_contact_data_is_imperfect(db):
    n = _scalar(db, "SELECT COUNT(*) FROM customers")
    for col in ("email", "phone", "postcode"):
        missing = _scalar(db, f"SELECT COUNT(*) FROM customers WHERE {col} IS NULL") / n
        assert 0.002 < missing < 0.15, col
    assert _scalar(db, "SELECT COUNT(*) FROM customers WHERE email NOT LIKE '%_@_%._%'") >= 1
    contract = _scalar(db, "SELECT COUNT(*) FROM customers WHERE contract_type = 'contract'")
    churned = _scalar(db, "SELECT COUNT(*) FROM customers WHERE churned_at IS NOT NULL")
    assert 0 < churned < contract
    assert _scalar(db, "SELECT COUNT(*) FROM customers WHERE churned_at IS NOT NULL "
                       "AND contract_type <> 'contract'") == 0
    # freshness is meaningful: some records recently updated, some stale
    fresh = _scalar(db, "SELECT AVG(updated_at >= :t) FROM customers",
                    t=str(AS_OF_TS - dt.timedelta(days=365)))
    assert 0.3 < fresh < 0.95
    assert _scalar(db, "SELECT COUNT(*) FROM customers WHERE updated_at < created_at") == 0
    assert _scalar(db, "SELECT COUNT(*) FROM customers WHERE category_wallet IS NOT NULL") > 0


def test_orders(db):
    n = _scalar(db, "SELECT COUNT(*) FROM orders")
    anon = _scalar(db, "SELECT COUNT(*) FROM orders WHERE customer_id IS NULL") / n
    assert 0.02 <= anon <= 0.07
    no_cogs = _scalar(db, "SELECT COUNT(*) FROM orders WHERE cogs IS NULL") / n
    assert 0.05 <= no_cogs <= 0.15
    assert _scalar(db, "SELECT COUNT(*) FROM orders WHERE returned_amount > 0") > 0
    assert _scalar(db, "SELECT COUNT(*) FROM orders WHERE campaign_id IS NOT NULL") > 0
    assert _scalar(db, "SELECT COUNT(*) FROM orders WHERE net_revenue <= 0 "
                       "OR net_revenue > gross_revenue OR cogs < 0 "
                       "OR returned_amount > net_revenue") == 0
    assert _scalar(db, "SELECT MAX(ABS(gross_revenue - discount - net_revenue)) FROM orders") \
        < 0.006
    # nobody buys before being acquired or after the contract ended
    assert _scalar(db, """SELECT COUNT(*) FROM orders o JOIN customers c USING (customer_id)
                          WHERE o.ordered_at < c.acquired_at
                             OR (c.churned_at IS NOT NULL AND o.ordered_at >= c.churned_at)""") \
        == 0
    # same-day multiple orders exist
    assert _scalar(db, """SELECT COUNT(*) FROM (SELECT customer_id, date(ordered_at)
                          FROM orders WHERE customer_id IS NOT NULL
                          GROUP BY 1, 2 HAVING COUNT(*) > 1)""") > 0
    # some customers buy in several channels
    multi = _scalar(db, """SELECT AVG(n >= 2) FROM (SELECT customer_id, COUNT(DISTINCT channel_id) n
                           FROM orders WHERE customer_id IS NOT NULL GROUP BY 1)""")
    assert 0.1 < multi < 0.8


def test_order_lines_add_up_and_cross_sell(db):
    assert _scalar(db, """SELECT COUNT(*) FROM orders o JOIN
                          (SELECT order_id, SUM(net_revenue) s, SUM(cogs) k FROM order_lines
                           GROUP BY 1) l USING (order_id)
                          WHERE ABS(o.net_revenue - l.s) > 0.005
                             OR ABS(COALESCE(o.cogs, 0) - COALESCE(l.k, 0)) > 0.02""") == 0
    assert _scalar(db, "SELECT COUNT(DISTINCT product_category) FROM order_lines") >= 5
    cross = _scalar(db, """SELECT AVG(n >= 2) FROM (
                           SELECT o.customer_id, COUNT(DISTINCT l.product_category) n
                           FROM orders o JOIN order_lines l USING (order_id)
                           WHERE o.customer_id IS NOT NULL GROUP BY 1)""")
    assert 0.2 < cross < 0.9


def test_repeat_buying_tails_off_as_in_bgnbd(db):
    # x = repeat purchase occasions (distinct days after the first) of master customers
    xs = [r[0] for r in _rows(db, """
        SELECT COUNT(DISTINCT date(o.ordered_at)) - 1 FROM orders o
        JOIN customers c USING (customer_id) WHERE c.master_customer_id IS NULL
        GROUP BY c.customer_id""")]
    repeaters = sum(x >= 1 for x in xs) / len(xs)
    assert 0.3 <= repeaters <= 0.8
    # the oldest cohort buys less in its second year than in its first (dropout)
    y1, y2, cohort = _rows(db, """
        SELECT SUM(o.ordered_at > c.acquired_at
                   AND o.ordered_at < datetime(c.acquired_at, '+365 days')),
               SUM(o.ordered_at >= datetime(c.acquired_at, '+365 days')
                   AND o.ordered_at < datetime(c.acquired_at, '+730 days')),
               COUNT(DISTINCT c.customer_id)
        FROM customers c LEFT JOIN orders o USING (customer_id)
        WHERE c.master_customer_id IS NULL AND c.acquired_at < :cut""",
                             cut=str(AS_OF_TS - dt.timedelta(days=730)))[0]
    assert cohort >= 50
    assert y2 < 0.8 * y1
    # and the share of customers still buying falls with customer age
    active = _rows(db, """
        SELECT CAST((julianday(:as_of) - julianday(c.acquired_at)) / 365 AS INTEGER) AS age,
               AVG(EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id
                           AND o.ordered_at >= datetime(:as_of, '-180 days')))
        FROM customers c WHERE c.master_customer_id IS NULL
          AND c.acquired_at < datetime(:as_of, '-180 days')
        GROUP BY age HAVING COUNT(*) >= 20 ORDER BY age""", as_of=str(AS_OF_TS))
    shares = [r[1] for r in active]
    assert len(shares) >= 2 and shares == sorted(shares, reverse=True)


def test_campaigns(db):
    objectives = {r[0] for r in _rows(db, "SELECT DISTINCT objective FROM campaigns")}
    assert objectives == {"acquisition", "retention", "cross_sell", "win_back", "brand"}
    assert _scalar(db, "SELECT COUNT(*) FROM campaigns WHERE responses > contacts_sent "
                       "OR responses < 0 OR starts_at >= ends_at") == 0
    # attributed orders never exceed the campaign's responses
    assert _scalar(db, """SELECT COUNT(*) FROM campaigns c JOIN
                          (SELECT campaign_id, COUNT(*) n FROM orders
                           WHERE campaign_id IS NOT NULL GROUP BY 1) o USING (campaign_id)
                          WHERE o.n > c.responses""") == 0
    assert _scalar(db, "SELECT COUNT(*) FROM customers "
                       "WHERE acquisition_campaign_id IS NOT NULL") > 0


def test_interactions(db):
    kinds = {r[0] for r in _rows(db, "SELECT DISTINCT kind FROM interactions")}
    assert {"inquiry", "complaint", "service", "sales"} <= kinds
    # self-service: no employee, no handle time; assisted inbound: mostly an employee
    assert _scalar(db, """SELECT COUNT(*) FROM interactions i JOIN channels c USING (channel_id)
                          WHERE c.is_self_service AND (i.employee_id IS NOT NULL
                                OR COALESCE(i.handle_seconds, 0) <> 0)""") == 0
    staffed = _scalar(db, """SELECT AVG(i.employee_id IS NOT NULL) FROM interactions i
                             JOIN channels c USING (channel_id) WHERE NOT c.is_self_service""")
    assert staffed > 0.9
    # the handling employee was employed at the time
    assert _scalar(db, """SELECT COUNT(*) FROM interactions i JOIN employees e USING (employee_id)
                          WHERE i.started_at < e.hired_at
                             OR (e.left_at IS NOT NULL AND i.started_at >= e.left_at)""") == 0
    cases = _rows(db, """SELECT case_id, COUNT(*), COUNT(DISTINCT channel_id),
                         MAX(s.is_self_service), MIN(s.is_self_service)
                         FROM interactions i JOIN channels s USING (channel_id)
                         WHERE case_id IS NOT NULL GROUP BY 1""")
    assert any(n > 1 for _, n, *_ in cases)
    assert any(nch > 1 for _, _, nch, *_ in cases)
    assert any(mx == 1 and mn == 0 for *_, mx, mn in cases)  # self-service then assisted
    single = sum(n == 1 for _, n, *_ in cases) / len(cases)
    assert 0.5 < single < 0.95
    assert _scalar(db, "SELECT COUNT(*) FROM interactions WHERE direction = 'outbound'") > 0


def test_survey_scales(db):
    scales = {r[0]: (r[1], r[2], r[3], r[4], r[5])
              for r in _rows(db, """SELECT instrument, MIN(scale_min), MAX(scale_min),
                                    MIN(scale_max), MAX(scale_max), COUNT(*)
                                    FROM survey_responses GROUP BY 1""")}
    assert set(scales) == {"nps", "csat", "ces", "fcr", "sow"}
    expected = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7), "fcr": (0, 1), "sow": (0, 100)}
    for inst, (lo, hi) in expected.items():
        assert scales[inst][:4] == (lo, lo, hi, hi), inst
    assert _scalar(db, "SELECT COUNT(*) FROM survey_responses WHERE score < scale_min "
                       "OR score > scale_max OR score <> ROUND(score)") == 0
    nps = _scalar(db, "SELECT 100.0 * (AVG(score >= 9) - AVG(score <= 6)) FROM survey_responses "
                      "WHERE instrument = 'nps'")
    assert -50 < nps < 80
    # post-contact surveys refer to an earlier interaction
    assert _scalar(db, """SELECT COUNT(*) FROM survey_responses s
                          JOIN interactions i USING (interaction_id)
                          WHERE s.responded_at <= i.started_at""") == 0


def test_employees_and_their_surveys(db):
    assert _scalar(db, "SELECT COUNT(DISTINCT department) FROM employees") >= 4
    assert _scalar(db, "SELECT COUNT(*) FROM employees WHERE is_customer_facing") > 0
    types = {r[0] for r in _rows(db, "SELECT DISTINCT leave_type FROM employees "
                                     "WHERE left_at IS NOT NULL")}
    assert types == {"voluntary", "involuntary"}
    assert _scalar(db, "SELECT COUNT(*) FROM employees WHERE (left_at IS NULL) <> "
                       "(leave_type IS NULL) OR left_at <= hired_at OR fte <= 0 OR fte > 1") == 0
    rows = {r[0]: r[1:] for r in _rows(db, """SELECT instrument, MIN(score), MAX(score),
                                           MIN(scale_min), MAX(scale_max),
                                           SUM(employee_id IS NULL), COUNT(*)
                                           FROM employee_survey_responses GROUP BY 1""")}
    assert set(rows) == {"enps", "esat", "engagement"}
    assert rows["enps"][2:4] == (0, 10) and rows["esat"][2:4] == (1, 5)
    for lo, hi, smin, smax, anon, n in rows.values():
        assert smin <= lo <= hi <= smax
        assert 0 < anon < n


def test_cost_ledger(db):
    combos = {(r[0], r[1]) for r in _rows(db, "SELECT DISTINCT cost_type, purpose "
                                              "FROM cost_entries")}
    assert ("marketing", "acquisition") in combos and ("marketing", "retention") in combos
    assert {"service", "fulfilment", "it", "sales"} <= {c for c, _ in combos}
    for col in ("channel_id", "segment_id", "campaign_id", "customer_id"):
        assert _scalar(db, f"SELECT COUNT(*) FROM cost_entries WHERE {col} IS NOT NULL") > 0, col
    assert _scalar(db, "SELECT COUNT(*) FROM cost_entries WHERE amount < 0 "
                       "OR period_end <= period_start") == 0
    months = _scalar(db, "SELECT COUNT(DISTINCT period_start) FROM cost_entries")
    assert 35 <= months <= 38


def test_data_quality_facts(db):
    dims = {r[0] for r in _rows(db, "SELECT DISTINCT dimension FROM data_quality_facts")}
    assert {"completeness", "uniqueness", "validity", "timeliness"} <= dims
    assert {r[0] for r in _rows(db, "SELECT DISTINCT source_system FROM data_quality_facts")} \
        >= {"crm", "erp", "web"}
    assert _scalar(db, "SELECT COUNT(*) FROM data_quality_facts "
                       "WHERE records_failed > records_checked OR records_failed < 0") == 0
    assert _scalar(db, "SELECT COUNT(*) FROM data_quality_facts WHERE dimension = 'timeliness' "
                       "AND (max_age_hours IS NULL OR max_age_hours <= 0)") == 0
    # the latest completeness check agrees with the customers table
    latest = _scalar(db, """SELECT records_failed FROM data_quality_facts
                            WHERE table_name = 'customers' AND column_name = 'email'
                              AND dimension = 'completeness'
                            ORDER BY checked_at DESC LIMIT 1""")
    checked = _scalar(db, "SELECT MAX(checked_at) FROM data_quality_facts")
    assert latest == _scalar(db, "SELECT COUNT(*) FROM customers WHERE email IS NULL "
                                 "AND created_at <= :t", t=checked)


def test_every_month_has_campaigns_and_survey_answers(db):
    """What the monthly KPIs read exists in every complete month of the history."""
    # the history starts on 2022-06-01 (1096 days before AS_OF): June 2022 to May 2025
    assert AS_OF - dt.timedelta(days=demo.HISTORY_DAYS) == dt.date(2022, 6, 1)
    months = {(2022 + (5 + i) // 12, (5 + i) % 12 + 1) for i in range(36)}
    assert min(months) == (2022, 6) and max(months) == (2025, 5)

    def months_of(sql):
        return {(int(m[:4]), int(m[5:7])) for (m,) in _rows(db, sql)}

    # a direct-response campaign with contacts starts in each month (response rate and ROMI)
    assert months <= months_of("SELECT DISTINCT substr(starts_at, 1, 7) FROM campaigns "
                               "WHERE objective <> 'brand' AND contacts_sent > 0")
    for instrument in ("nps", "csat", "ces", "fcr"):
        assert months <= months_of(f"SELECT DISTINCT substr(responded_at, 1, 7) "
                                   f"FROM survey_responses WHERE instrument = '{instrument}'")
    for instrument in ("enps", "esat", "engagement"):
        assert months <= months_of(f"SELECT DISTINCT substr(responded_at, 1, 7) "
                                   f"FROM employee_survey_responses WHERE instrument = '{instrument}'")
    # the pulse rota asks each employee at most once a quarter
    assert _scalar(db, """SELECT COUNT(*) FROM (
                          SELECT employee_id, strftime('%Y', responded_at) y,
                                 (CAST(strftime('%m', responded_at) AS INTEGER) + 2) / 3 q
                          FROM employee_survey_responses
                          WHERE employee_id IS NOT NULL AND instrument = 'enps'
                          GROUP BY 1, 2, 3 HAVING COUNT(*) > 1)""") == 0


# ---- a demo of several blocks ---------------------------------------------------------------

BLOCKED = 1200  # with blocks of at most 500 customers: three blocks of 400


@pytest.fixture(scope="module")
def blocked(tmp_path_factory):
    """A demo of three blocks made twice with the same seed, and a one-block demo of the same
    size, seed and date (blocks of at most BLOCKED customers), with their progress calls."""
    d = tmp_path_factory.mktemp("blocks")
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        for key, block in (("a", 500), ("b", 500), ("one", BLOCKED)):
            mp.setattr(demo_generator, "BLOCK_CUSTOMERS", block)
            calls: list[tuple[int, int]] = []
            counts = generate_demo(_url(d / f"{key}.db"), customers=BLOCKED, seed=42, as_of=AS_OF,
                                   progress=lambda done, total: calls.append((done, total)))
            out[key] = (create_engine(_url(d / f"{key}.db")), counts, calls)
    yield out
    for engine, _, _ in out.values():
        engine.dispose()


def test_a_demo_is_cut_into_near_equal_blocks():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(demo_generator, "BLOCK_CUSTOMERS", 500)
        assert demo._Demo(BLOCKED, 42, AS_OF).block_sizes == [400, 400, 400]
        assert demo._Demo(1001, 42, AS_OF).block_sizes == [334, 334, 333]
        assert demo._Demo(500, 42, AS_OF).block_sizes == [500]
        assert demo._Demo(500, 42, AS_OF).block_seeds is None  # one block: the seed's own stream


def test_blocks_are_deterministic_and_differ_from_one_block(blocked):
    (ea, ca, _), (eb, cb, _), (eo, co, _) = blocked["a"], blocked["b"], blocked["one"]
    assert ca == cb
    assert _dump(ea) == _dump(eb)
    assert ca["customers"] == co["customers"] == BLOCKED
    assert _dump(ea)["orders"] != _dump(eo)["orders"]


def test_blocks_number_every_table_once(blocked):
    engine, counts, calls = blocked["a"]
    for table, key in (("customers", "customer_id"), ("orders", "order_id"),
                       ("interactions", "interaction_id"), ("survey_responses", "response_id"),
                       ("cost_entries", "cost_id"), ("campaigns", "campaign_id")):
        n, distinct, lo, hi = _rows(engine, f"SELECT COUNT(*), COUNT(DISTINCT {key}), MIN({key}), "
                                            f"MAX({key}) FROM {table}")[0]
        assert (n, distinct, lo, hi) == (counts[table], counts[table], 1, counts[table]), table
    # a case belongs to one customer; order lines are numbered 1.. within their order
    assert _scalar(engine, "SELECT COUNT(*) FROM (SELECT case_id FROM interactions WHERE case_id "
                           "IS NOT NULL GROUP BY 1 HAVING COUNT(DISTINCT COALESCE(customer_id, 0)) > 1)") == 0
    assert _scalar(engine, "SELECT COUNT(*) FROM (SELECT order_id FROM order_lines GROUP BY 1 "
                           "HAVING MIN(line_no) <> 1 OR MAX(line_no) <> COUNT(*))") == 0
    assert _scalar(engine, "SELECT COUNT(*) FROM orders WHERE order_id NOT IN "
                           "(SELECT order_id FROM order_lines)") == 0
    # progress: from 0 up to the exact total, never past it
    total = sum(counts.values())
    assert calls[0][0] == 0 and calls[-1] == (total, total)
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)
    assert all(done <= of for done, of in calls)


def test_blocks_keep_every_reference(blocked):
    engine = blocked["a"][0]
    test_foreign_keys_hold(engine)
    for sql in (
        # every order's, contact's, answer's and cost's customer exists
        "SELECT COUNT(*) FROM orders o LEFT JOIN customers c USING (customer_id) "
        "WHERE o.customer_id IS NOT NULL AND c.customer_id IS NULL",
        "SELECT COUNT(*) FROM interactions i LEFT JOIN customers c USING (customer_id) "
        "WHERE i.customer_id IS NOT NULL AND c.customer_id IS NULL",
        "SELECT COUNT(*) FROM survey_responses s LEFT JOIN customers c USING (customer_id) "
        "WHERE s.customer_id IS NOT NULL AND c.customer_id IS NULL",
        "SELECT COUNT(*) FROM cost_entries e LEFT JOIN customers c USING (customer_id) "
        "WHERE e.customer_id IS NOT NULL AND c.customer_id IS NULL",
        # a post-contact answer comes from the customer of its contact
        "SELECT COUNT(*) FROM survey_responses s JOIN interactions i USING (interaction_id) "
        "WHERE s.customer_id IS NOT i.customer_id",
        # no order before its customer was acquired; outbound contacts reach acquired customers
        "SELECT COUNT(*) FROM orders o JOIN customers c USING (customer_id) WHERE o.ordered_at < c.acquired_at",
        "SELECT COUNT(*) FROM interactions i JOIN customers c USING (customer_id) "
        "WHERE i.direction = 'outbound' AND i.started_at < c.acquired_at",
        # an acquisition campaign is the campaign of the customer's first order
        "SELECT COUNT(*) FROM customers c WHERE acquisition_campaign_id IS NOT NULL AND "
        "acquisition_campaign_id <> (SELECT campaign_id FROM orders o WHERE o.customer_id = c.customer_id "
        "ORDER BY ordered_at LIMIT 1)",
    ):
        assert _scalar(engine, sql) == 0, sql
    # every block's customers are reached by the outbound campaigns
    assert _scalar(engine, "SELECT MAX(customer_id) FROM interactions WHERE direction = 'outbound'") > 800
    assert _scalar(engine, "SELECT MIN(customer_id) FROM interactions WHERE direction = 'outbound'") <= 400
    # the one-block demo's checks hold on the blocked one too
    for check in (test_all_timestamps_before_as_of, test_campaigns, test_interactions, test_survey_scales,
                  test_employees_and_their_surveys, test_cost_ledger, test_data_quality_facts):
        check(engine)


def test_blocks_keep_the_shops_proportions(blocked):
    """Each block follows the one-block parameters: its duplicates and anonymous orders exactly
    (2 % of its records, 4 % of its orders), and per customer about as many orders, lines,
    contacts and costs as one block of the same size."""
    (ea, ca, _), (eo, co, _) = blocked["a"], blocked["one"]
    assert _scalar(ea, "SELECT COUNT(*) FROM customers WHERE master_customer_id IS NOT NULL") == 3 * round(0.02 * 400)
    anonymous = _scalar(ea, "SELECT AVG(customer_id IS NULL) FROM orders")
    assert abs(anonymous - 0.04) < 0.002
    # the duplicates of a block point at a master of the same block (ids 1-400, 401-800, 801-1200)
    assert _scalar(ea, "SELECT COUNT(*) FROM customers WHERE (customer_id - 1) / 400 "
                       "<> (master_customer_id - 1) / 400") == 0
    for table in ("orders", "order_lines"):
        assert 0.85 < ca[table] / co[table] < 1.15, (table, ca[table], co[table])
    # at least as many answers: each block keeps its own monthly minimum of answers
    assert ca["survey_responses"] > co["survey_responses"]
    # service contacts per customer (the outbound ones follow the campaigns, drawn differently)
    inbound = "SELECT COUNT(*) FROM interactions WHERE direction = 'inbound'"
    assert 0.8 < _scalar(ea, inbound) / _scalar(eo, inbound) < 1.2
    for table in ("segments", "channels", "campaigns", "data_quality_facts"):
        assert ca[table] == co[table], table  # sized by the whole demo, as before
    share = {r[0]: r[1] for r in _rows(ea, "SELECT segment_id, AVG(1.0) * COUNT(*) / :n FROM customers "
                                          "WHERE segment_id IS NOT NULL GROUP BY 1", n=BLOCKED)}
    for i, s in enumerate(demo_shop._SEGMENTS):
        assert abs(share[i + 1] - s[2]) < 0.04, (s[0], share[i + 1])


@pytest.mark.parametrize("engine_name", ["postgresql", "duckdb"])
def test_blocks_load_into_every_engine(engine_name, blocked, tmp_path, request, monkeypatch):
    """Written block by block, each table in several parts, the demo's references hold on the
    engines that check them as the rows arrive, and the rows are SQLite's."""
    monkeypatch.setattr(demo_generator, "BLOCK_CUSTOMERS", 500)
    monkeypatch.setattr(demo_writer, "WRITE_CHUNK_ROWS", 777)
    if engine_name == "postgresql":
        url = request.getfixturevalue("fresh_pg_db")
    else:
        url = f"duckdb:///{tmp_path / 'demo.duckdb'}"
    counts = generate_demo(url, customers=BLOCKED, seed=42, as_of=AS_OF)
    engine = create_engine(url)
    try:
        assert counts == blocked["a"][1]
        assert _dump(engine) == _dump(blocked["a"][0])
    finally:
        engine.dispose()


# ---- every built-in KPI has a current and a previous value ------------------------------------

BUILT_IN = ("strategy_development,value_creation,multichannel_integration,information_management,"
            "performance_assessment")


def _kpis_lacking_a_period(source_url: str, store_url: str, as_of: dt.date) -> dict[str, list]:
    """Run every built-in metric once as of ``as_of``; the metrics without a dimension
    combination that has both a current and a previous value, with what they do have."""
    config = parse_config({"source": {"url": source_url}, "store": {"url": store_url},
                           "service": {"as_of": dt.datetime(as_of.year, as_of.month, as_of.day)}},
                          None)
    app = App.from_config(config)
    try:
        runs = app.runner.run_all()
        assert [(r.metric_key, r.error) for r in runs if r.status != "success"] == []
        assert len(runs) == len(app.registry) > 50
        periods: dict[str, dict[str, set]] = {d.key: {} for d in app.registry}
        for o in app.store.latest_observations():
            if o.value is not None:
                dims = tuple(sorted(o.dimensions.items()))
                periods[o.metric_key].setdefault(dims, set()).add(o.period_label)
    finally:
        app.source.dispose()
        app.store.engine.dispose()
    return {key: sorted((dims, sorted(labels)) for dims, labels in combos.items())
            for key, combos in periods.items()
            if not any(labels == {"current", "previous"} for labels in combos.values())}


@pytest.fixture
def built_in_only(monkeypatch):
    monkeypatch.setenv(LOAD_ENV, BUILT_IN)


def test_every_kpi_has_both_periods_on_the_demo_fixture(demo_db, built_in_only, tmp_path):
    """The 400-customer demo every KPI test uses (seed 7, as of 2026-06-15)."""
    lacking = _kpis_lacking_a_period(demo_db.url, _url(tmp_path / "store.db"), demo_db.as_of.date())
    assert lacking == {}


@pytest.mark.parametrize("customers, seed, as_of", [
    # the demo of tests/test_dashboard_queries.py (generated as of the day the tests run) on the
    # first day of a year, the last day of a quarter's first month and mid-quarter
    (300, 3, dt.date(2026, 1, 1)),
    (300, 3, dt.date(2026, 4, 30)),
    (300, 3, dt.date(2026, 8, 17)),
    # what `crmmetrics demo` generates by default
    (5000, 42, dt.date(2026, 3, 9)),
])
def test_every_kpi_has_both_periods_on_other_demos(customers, seed, as_of, built_in_only, tmp_path):
    source = _url(tmp_path / "crm.db")
    generate_demo(source, customers=customers, seed=seed, as_of=as_of)
    assert _kpis_lacking_a_period(source, _url(tmp_path / "store.db"), as_of) == {}


def _catalogue_values(source_url: str, store_url: str, as_of: dt.datetime) -> dict:
    """Every built-in metric's stored values: {(metric, period, dimensions): value}."""
    config = parse_config({"source": {"url": source_url}, "store": {"url": store_url}, "service": {"as_of": as_of}}, None)
    app = App.from_config(config)
    try:
        runs = app.runner.run_all()
        assert [(r.metric_key, r.error) for r in runs if r.status != "success"] == []
        return {(o.metric_key, o.period_label, tuple(sorted(o.dimensions.items()))): o.value
                for o in app.store.latest_observations()}
    finally:
        app.source.dispose()
        app.store.engine.dispose()


# ClickHouse in-process (chdb) is opened with the settings of crmmetrics.data.engines.CHDB_SETTINGS.
@pytest.mark.parametrize("url", ["duckdb:///{folder}/crm.duckdb", "chdb:///{folder}/crm.chdb"], ids=["duckdb", "chdb"])
def test_the_whole_catalogue_gives_the_same_values_on_another_engine(demo_db, built_in_only, tmp_path, url):
    """The demo fixture generated into DuckDB or chdb: every built-in KPI runs and agrees with SQLite."""
    other = url.format(folder=tmp_path)
    generate_demo(other, customers=demo_db.customers, seed=demo_db.seed, as_of=demo_db.as_of.date())
    on_sqlite = _catalogue_values(demo_db.url, _url(tmp_path / "store-sqlite.db"), demo_db.as_of)
    on_other = _catalogue_values(other, _url(tmp_path / "store-other.db"), demo_db.as_of)
    assert len(on_sqlite) > 500 and sum(v is not None for v in on_sqlite.values()) > 400
    assert on_other.keys() == on_sqlite.keys()
    differing = {key: (on_sqlite[key], on_other[key]) for key in on_sqlite
                 if on_other[key] != pytest.approx(on_sqlite[key], rel=1e-9, abs=1e-9)}
    assert differing == {}
