"""KPIs in the config file ([kpis.KEY] with a SQL query) and `crmmetrics metrics explain`.

A config KPI is validated by `config check` against the source (each bad definition: one line
naming the file and key, exit 2), computed by the runner on the read-only source, exported in
/metrics, judged by a standard and drawn in the built dashboards, like a plugin's KPI. The values
are checked against the same sums written by hand in SQL on the demo source.
"""

from __future__ import annotations

import json
import sqlite3
import textwrap

import pytest
from click.testing import CliRunner

from crmmetrics.cli import cli
from crmmetrics.testing import render_exposition

HEADER = """\
# the demo source, as of mid-June 2026
[source]
url = "{source}"
[store]
url = "sqlite:///{store}"
[service]
as_of = 2026-06-15T00:00:00
"""

KPI_FIELDS = """\
name = "{name}"
process = "value_creation"
perspective = "customer"
value_lens = "customer_value"
unit = "count"
direction = "higher_is_better"
"""

ORDERS_KPI = """
# orders placed in the period
[kpis.cfg_orders]
name = "Orders placed"
description = "Orders placed in the period, anonymous ones included."
formula = "count(orders)"
process = "value_creation"
perspective = "customer"
value_lens = "customer_value"
unit = "count"
direction = "higher_is_better"
sql = "SELECT count(*) AS value FROM orders WHERE ordered_at >= :start AND ordered_at < :end"
"""

REVENUE_KPI = """
[kpis.cfg_revenue_by_segment]
name = "Net revenue by segment"
process = "value_creation"
perspective = "financial"
value_lens = "shareholder_value"
unit = "currency"
direction = "higher_is_better"
dimensions = ["segment"]
sql = '''
SELECT COALESCE(s.name, 'unassigned') AS segment, SUM(o.net_revenue) AS value
FROM orders o
LEFT JOIN customers c ON c.customer_id = o.customer_id
LEFT JOIN segments s ON s.segment_id = c.segment_id
WHERE o.ordered_at >= :start AND o.ordered_at < :end
GROUP BY 1
UNION ALL
SELECT NULL, SUM(net_revenue) FROM orders WHERE ordered_at >= :start AND ordered_at < :end;
'''
"""

# A ratio of two SQL aggregates: the share of net revenue taken online, by segment and in total.
ONLINE_SHARE_KPI = """
[kpis.cfg_online_share]
kind = "ratio"
name = "Online share of net revenue"
process = "multichannel_integration"
perspective = "customer"
value_lens = "customer_value"
unit = "percent"
direction = "higher_is_better"
dimensions = ["segment"]
numerator = '''
SELECT s.name AS segment, SUM(o.net_revenue) AS value
FROM orders o JOIN channels ch ON ch.channel_id = o.channel_id
JOIN customers c ON c.customer_id = o.customer_id JOIN segments s ON s.segment_id = c.segment_id
WHERE ch.category IN ('e_commerce', 'm_commerce') AND o.ordered_at >= :start AND o.ordered_at < :end
GROUP BY s.name
UNION ALL
SELECT NULL, SUM(o.net_revenue) FROM orders o JOIN channels ch ON ch.channel_id = o.channel_id
WHERE ch.category IN ('e_commerce', 'm_commerce') AND o.ordered_at >= :start AND o.ordered_at < :end
'''
denominator = '''
SELECT s.name AS segment, SUM(o.net_revenue) AS value
FROM orders o JOIN customers c ON c.customer_id = o.customer_id JOIN segments s ON s.segment_id = c.segment_id
WHERE o.ordered_at >= :start AND o.ordered_at < :end
GROUP BY s.name
UNION ALL
SELECT NULL, SUM(net_revenue) FROM orders WHERE ordered_at >= :start AND ordered_at < :end
'''
"""


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def assert_one_line_exit_2(done, *expected: str) -> None:
    assert done.exit_code == 2, done.output
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr
    for text in expected:
        assert text in done.stderr, done.stderr


@pytest.fixture
def make_config(tmp_path, demo_db):
    def make(*kpis: str, name: str = "crmmetrics.toml"):
        path = tmp_path / name
        path.write_text(HEADER.format(source=demo_db.url, store=tmp_path / "store.sqlite") + "".join(kpis), encoding="utf-8")
        return path

    return make


def hand(demo_db, sql: str, *args):
    connection = sqlite3.connect(demo_db.url.removeprefix("sqlite:///"))
    try:
        return connection.execute(sql, args).fetchall()
    finally:
        connection.close()


def test_good_config_kpis_pass_config_check_and_are_listed(make_config):
    config = make_config(ORDERS_KPI, REVENUE_KPI)
    checked = invoke("config", "check", str(config))
    assert checked.exit_code == 0, checked.output
    listed = json.loads(invoke("metrics", "list", "--json", "--config", str(config)).stdout)
    mine = {row["key"]: row for row in listed if row["plugin"] == "config"}
    assert sorted(mine) == ["cfg_orders", "cfg_revenue_by_segment"]
    assert mine["cfg_revenue_by_segment"]["dimensions"] == ["segment"]
    assert mine["cfg_orders"]["schedule"] == "cron 15 0 * * *" and mine["cfg_orders"]["period"] == "month"
    builtin = len(listed) - 2
    assert f"OK ({builtin + 2} metrics" in checked.stdout
    plugins = json.loads(invoke("plugins", "--json", "--config", str(config)).stdout)
    assert [entry["metrics"] for entry in plugins if entry["name"] == "config"] == [["cfg_orders", "cfg_revenue_by_segment"]]


def _kpi(body: str, key: str = "cfg_bad") -> str:
    return f"\n[kpis.{key}]\n" + KPI_FIELDS.format(name="Bad") + textwrap.dedent(body)


BAD = [
    pytest.param('sql = "SELECT count(*) AS n FROM orders"', "kpis.cfg_bad.sql: the query returns no column 'value'", id="no-value-column"),
    pytest.param('sql = "SELECT count(*) AS value, 1 AS extra FROM orders"', "returns column 'extra', which is neither value nor a declared dimension", id="undeclared-column"),
    pytest.param('dimensions = ["segment"]\nsql = "SELECT count(*) AS value FROM orders"', "kpis.cfg_bad.sql: the query returns no column 'segment'", id="missing-dimension-column"),
    pytest.param('sql = "SELECT email AS value FROM customers WHERE email IS NOT NULL LIMIT 1"', "the value column returned", id="value-not-a-number"),
    pytest.param('sql = "SELECT net_revenue AS value FROM orders"', "rows; without dimensions it returns one", id="many-rows-without-dimensions"),
    pytest.param('sql = "DELETE FROM orders"', "kpis.cfg_bad.sql: the source is read-only: the query would delete on orders", id="delete"),
    pytest.param('sql = "INSERT INTO segments (name) VALUES (\'x\')"', "the source is read-only: the query would insert on segments", id="insert"),
    pytest.param('sql = "CREATE TABLE t AS SELECT 1 AS value"', "the source is read-only: the query would change the schema", id="create"),
    pytest.param('sql = "SELECT 1 AS value; DELETE FROM orders"', "You can only execute one statement at a time", id="two-statements"),
    pytest.param('sql = "SELECT count(*) AS value FROM orders WHERE ordered_at >= :since"', "unknown bound parameter :since", id="unknown-parameter"),
    pytest.param('sql = "SELEC count(*) AS value FROM orders"', 'kpis.cfg_bad.sql: SQLite\'s parser refuses the query (near "SELEC": syntax error)', id="syntax-error"),
    pytest.param('sql = "SELECT count(*) AS value FROM no_such_table"', "no such table: no_such_table", id="unknown-table"),
    pytest.param('sql = "SELECT count(*) AS value FROM orders"\nneeds = ["ordres"]', "kpis.cfg_bad.needs: needs 'ordres': no canonical table 'ordres'", id="needs-unknown-table"),
    pytest.param('dimensions = ["period"]\nsql = "SELECT 1 AS value, 2 AS period"', "kpis.cfg_bad.dimensions: dimension 'period' is a name crmmetrics reserves", id="reserved-dimension"),
    pytest.param('dimensions = ["value"]\nsql = "SELECT 1 AS value"', "dimension 'value' is a name crmmetrics reserves", id="dimension-named-value"),
    pytest.param('kind = "measure"', 'kpis.cfg_bad: kind "measure" needs measure = {', id="measure-without-measure"),
    pytest.param('kind = "measure"\nmeasure = { table = "ordres", column = "net_revenue" }', "kpis.cfg_bad.measure: no canonical table 'ordres'", id="measure-unknown-table"),
    pytest.param('kind = "measure"\nmeasure = { table = "orders", column = "amount" }', "kpis.cfg_bad.measure: table orders has no column 'amount'", id="measure-unknown-column"),
    pytest.param('kind = "measure"\nmeasure = { table = "orders", column = "net_revenue", agg = "median" }', "kpis.cfg_bad.measure: unknown aggregate 'median'", id="measure-unknown-aggregate"),
    pytest.param('kind = "measure"\nmeasure = { table = "orders", colum = "net_revenue" }', "kpis.cfg_bad.measure: unknown keys colum", id="measure-unknown-key"),
    pytest.param('kind = "measure"\nmeasure = { table = "orders", agg = "count", filters = [["net_revenue", "~", 1]] }', "kpis.cfg_bad.measure: filter on 'net_revenue': unknown operator '~'", id="measure-unknown-operator"),
    pytest.param('kind = "measure"\nmeasure = { table = "orders", agg = "count", filters = [["colour", "=", "red"]] }', "kpis.cfg_bad.measure: table orders has no column 'colour'", id="measure-filter-unknown-column"),
    pytest.param('kind = "measure"\nmeasure = { table = "orders", agg = "count", filters = [["net_revenue", ">", { param = "floor" }]] }', "kpis.cfg_bad.measure: filter on 'net_revenue': a KPI of the config file has no parameters", id="measure-parameter"),
    pytest.param('kind = "measure"\nmeasure = { table = "orders", agg = "count" }\ndimensions = ["objective"]', "kpis.cfg_bad.dimensions: cannot break down by 'objective' (not a column of orders)", id="measure-unknown-dimension"),
    pytest.param('kind = "measure"\nmeasure = { table = "orders", agg = "count" }\nsql = "SELECT 1 AS value"', 'kind "measure" is declared by measure = { table = ..., ... }, not by sql', id="measure-with-sql"),
    pytest.param('measure = { table = "orders", agg = "count" }\nsql = "SELECT 1 AS value"', 'kpis.cfg_bad: measure belongs to kind "measure"', id="sql-with-measure"),
    pytest.param('kind = "ratio"\nnumerator = { table = "orders", agg = "count" }\ndenominator = "SELECT 1 AS value"', 'both SQL queries (text) or both measures (tables), not one of each', id="ratio-mixed"),
    pytest.param('kind = "ratio"\nnumerator = { table = "orders", agg = "count" }\ndenominator = { table = "orders", agg = "sum" }', "kpis.cfg_bad.denominator: sum needs a column", id="ratio-bad-denominator-measure"),
    pytest.param('sql = "SELECT 1 AS value"\n[kpis.cfg_bad.standard]\ntarget = 10\nred = 1', "kpis.cfg_bad.standard.green: required key is missing", id="standard-without-green"),
    pytest.param('sql = "SELECT 1 AS value"\n[kpis.cfg_bad.standard]\ntarget = 10\nred = 9\ngreen = 1', "kpis.cfg_bad.standard: ", id="standard-against-the-direction"),
    pytest.param('sql = "SELECT 1 AS value"\n[kpis.cfg_bad.standard]\ntarget = 10\nred = 1\ngreen = 5\ncolour = "red"', "kpis.cfg_bad.standard.colour: unknown key", id="standard-unknown-key"),
    pytest.param('sql = "SELECT 1 AS value"\n[kpis.cfg_bad.standard]\ntarget = "lots"\nred = 1\ngreen = 5', "kpis.cfg_bad.standard.target: ", id="standard-bad-target"),
    pytest.param('sql = "SELECT 1 AS value"\n[kpis.cfg_bad.standard]\ntarget = 10\nred = 1\ngreen = 5\nvalid_from = 2026-01-01', "kpis.cfg_bad.standard.valid_from: a default standard applies from when it is recorded", id="standard-dated"),
    pytest.param('kind = "ratio"\nnumerator = "SELECT 1 AS value"', 'kpis.cfg_bad: kind "ratio" needs denominator', id="ratio-without-denominator"),
    pytest.param('kind = "ratio"\nsql = "SELECT 1 AS value"\nnumerator = "SELECT 1 AS value"\ndenominator = "SELECT 1 AS value"', 'kind "ratio" has two queries, numerator and denominator, not sql', id="ratio-with-sql"),
    pytest.param('kind = "ratio"\nnumerator = "SELECT 1 AS value"\ndenominator = "SELECT count(*) AS n FROM orders"', "kpis.cfg_bad.denominator: the query returns no column 'value'", id="ratio-bad-denominator"),
    pytest.param('kind = "ratio"\nnumerator = "DELETE FROM orders"\ndenominator = "SELECT 1 AS value"', "kpis.cfg_bad.numerator: the source is read-only: the query would delete on orders", id="ratio-writing-numerator"),
    pytest.param('kind = "histogram"\nsql = "SELECT 1 AS value"', "kpis.cfg_bad.kind: unknown kind 'histogram'", id="unknown-kind"),
    pytest.param("", 'kpis.cfg_bad: kind "sql" needs sql =', id="no-sql"),
    pytest.param('sql = "SELECT 1 AS value"\ncolour = "red"', "kpis.cfg_bad.colour: unknown key", id="unknown-key"),
    pytest.param('sql = "SELECT 1 AS value"\nperiod = "fortnight"', "kpis.cfg_bad.period: unknown period 'fortnight'", id="unknown-period"),
]


@pytest.mark.parametrize(("body", "expected"), BAD)
def test_each_kind_of_bad_definition_is_one_line_exit_2(make_config, tmp_path, body, expected):
    config = make_config(ORDERS_KPI, _kpi(body))
    assert_one_line_exit_2(invoke("config", "check", str(config)), f"{config}: ", expected)
    assert not (tmp_path / "store.sqlite").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(_kpi('sql = "SELECT 1 AS value"').replace('unit = "count"', 'unit = "parsecs"'), "kpis.cfg_bad.unit: unknown unit 'parsecs'", id="unit"),
        pytest.param(_kpi('sql = "SELECT 1 AS value"').replace('process = "value_creation"', 'process = "sales"'), "kpis.cfg_bad.process: unknown process 'sales': expected one of 'strategy_development'", id="process"),
        pytest.param(_kpi('sql = "SELECT 1 AS value"').replace('name = "Bad"\n', ""), "kpis.cfg_bad.name: required key is missing", id="no-name"),
        pytest.param(_kpi('sql = "SELECT 1 AS value"', key="vc_aov"), "kpis.vc_aov: 'vc_aov' is already a metric of plugin value_creation", id="collides-with-builtin"),
        pytest.param(_kpi('sql = "SELECT 1 AS value"', key="Cfg"), "kpis.Cfg: KPI key 'Cfg' must be lower_snake_case", id="key"),
    ],
)
def test_bad_fields_and_keys_are_one_line_exit_2(make_config, text, expected):
    config = make_config(text)
    assert_one_line_exit_2(invoke("config", "check", str(config)), f"{config}: ", expected)


def test_a_key_that_collides_with_a_plugin_file_metric_is_refused(make_config, tmp_path):
    from support.plugin_files import ORDERS_METRIC, write_plugin_file

    write_plugin_file(tmp_path / "plugins", "orders", ORDERS_METRIC)
    config = make_config(_kpi('sql = "SELECT 1 AS value"', key="t_orders"))
    config.write_text(config.read_text().replace("[service]\n", '[service]\nplugins_dir = "plugins"\n'))
    assert_one_line_exit_2(invoke("config", "check", str(config)), "kpis.t_orders: 't_orders' is already a metric of plugin file:orders")


def test_computed_exported_and_judged_like_a_plugin_kpi(make_config, tmp_path, demo_db):
    config = make_config(ORDERS_KPI, REVENUE_KPI)
    ran = invoke("run", "--config", str(config), "--metric", "cfg_orders", "--metric", "cfg_revenue_by_segment")
    assert ran.exit_code == 0, ran.output
    set_standard = invoke("standards", "set", "cfg_orders", "--target", "80", "--red", "40", "--green", "70", "--config", str(config))
    assert set_standard.exit_code == 0, set_standard.output
    exposition = render_exposition(f"sqlite:///{tmp_path / 'store.sqlite'}")

    bounds = {"current": ("2026-05-01", "2026-06-01"), "previous": ("2026-04-01", "2026-05-01")}
    for label, (start, end) in bounds.items():
        (orders,), = hand(demo_db, "SELECT count(*) FROM orders WHERE ordered_at >= ? AND ordered_at < ?", start, end)
        assert orders > 0
        assert exposition.metric_value("cfg_orders", label) == orders
        by_segment = dict(hand(
            demo_db,
            "SELECT s.name, SUM(o.net_revenue) FROM orders o JOIN customers c ON c.customer_id = o.customer_id "
            "JOIN segments s ON s.segment_id = c.segment_id WHERE o.ordered_at >= ? AND o.ordered_at < ? GROUP BY s.name",
            start, end,
        ))
        assert len(by_segment) >= 3
        for segment, revenue in by_segment.items():
            assert exposition.metric_value("cfg_revenue_by_segment", label, segment=segment) == pytest.approx(revenue)
        (total,), = hand(demo_db, "SELECT SUM(net_revenue) FROM orders WHERE ordered_at >= ? AND ordered_at < ?", start, end)
        assert exposition.metric_value("cfg_revenue_by_segment", label) == pytest.approx(total)
    # the families named by the unit and the dimension, as for a plugin's metric
    assert exposition.samples("crmmetrics_metric_items", metric="cfg_orders", period="current")
    assert exposition.samples("crmmetrics_metric_by_segment_currency", metric="cfg_revenue_by_segment", period="current")
    # judged: the current value (count of May's orders) against red 40 / green 70
    (current,), = hand(demo_db, "SELECT count(*) FROM orders WHERE ordered_at >= '2026-05-01' AND ordered_at < '2026-06-01'")
    expected_status = 2.0 if current >= 70 else 0.0 if current <= 40 else 1.0
    assert exposition.value("crmmetrics_kpi_status", metric="cfg_orders") == expected_status
    assert exposition.value("crmmetrics_kpi_red_threshold_items", metric="cfg_orders") == 40


def test_a_ratio_kpi_is_computed_exported_and_judged(make_config, tmp_path, demo_db):
    config = make_config(ONLINE_SHARE_KPI)
    assert invoke("config", "check", str(config)).exit_code == 0
    ran = invoke("run", "--config", str(config), "--metric", "cfg_online_share")
    assert ran.exit_code == 0, ran.output
    assert invoke("standards", "set", "cfg_online_share", "--target", "60", "--red", "20", "--green", "50", "--config", str(config)).exit_code == 0
    exposition = render_exposition(f"sqlite:///{tmp_path / 'store.sqlite'}")
    online = "SELECT {group} SUM(o.net_revenue) FROM orders o JOIN channels ch ON ch.channel_id = o.channel_id {join} " \
        "WHERE ch.category IN ('e_commerce', 'm_commerce') AND o.ordered_at >= ? AND o.ordered_at < ? {by}"
    every = "SELECT {group} SUM(o.net_revenue) FROM orders o {join} WHERE o.ordered_at >= ? AND o.ordered_at < ? {by}"
    join = "JOIN customers c ON c.customer_id = o.customer_id JOIN segments s ON s.segment_id = c.segment_id"
    for label, (start, end) in {"current": ("2026-05-01", "2026-06-01"), "previous": ("2026-04-01", "2026-05-01")}.items():
        (top,), = hand(demo_db, online.format(group="", join="", by=""), start, end)
        (bottom,), = hand(demo_db, every.format(group="", join="", by=""), start, end)
        assert 0 < top < bottom
        # exported as a 0-1 ratio (the family of a percent)
        assert exposition.metric_value("cfg_online_share", label) == pytest.approx(top / bottom)
        tops = dict(hand(demo_db, online.format(group="s.name,", join=join, by="GROUP BY s.name"), start, end))
        bottoms = dict(hand(demo_db, every.format(group="s.name,", join=join, by="GROUP BY s.name"), start, end))
        assert len(bottoms) >= 3
        for segment, revenue in bottoms.items():  # a segment without online orders has a share of 0
            assert exposition.metric_value("cfg_online_share", label, segment=segment) == pytest.approx(tops.get(segment, 0.0) / revenue)
    assert exposition.samples("crmmetrics_metric_by_segment_ratio", metric="cfg_online_share", period="current")
    (top,), = hand(demo_db, online.format(group="", join="", by=""), "2026-05-01", "2026-06-01")
    (bottom,), = hand(demo_db, every.format(group="", join="", by=""), "2026-05-01", "2026-06-01")
    share = 100 * top / bottom
    assert exposition.value("crmmetrics_kpi_status", metric="cfg_online_share") == (2.0 if share >= 50 else 0.0 if share <= 20 else 1.0)
    data = explain(config, "cfg_online_share")
    assert sorted(data["sql_as_written"]) == ["denominator", "numerator"] and len(data["sql_run"]) == 2
    assert data["needs"] == ["segments", "channels", "customers", "orders"]  # both queries' tables
    assert data["current_value"] == pytest.approx(share)


def test_a_ratio_without_a_denominator_has_no_value(make_config, tmp_path):
    kpi = _kpi('''
        kind = "ratio"
        unit = "ratio"
        needs = []
        numerator = "SELECT count(*) AS value FROM orders WHERE ordered_at >= :start AND ordered_at < :end"
        denominator = "SELECT count(*) AS value FROM orders WHERE ordered_at >= :start AND ordered_at < :end AND 1 = 0"
        ''', key="cfg_zero").replace('unit = "count"\n', "")
    config = make_config(kpi)
    assert invoke("run", "--config", str(config), "--metric", "cfg_zero").exit_code == 0
    (row,) = [r for r in json.loads(invoke("values", "--json", "--config", str(config)).stdout) if r["metric"] == "cfg_zero"]
    assert row["value"] is None and row["status"] == "no data"  # never a 0 or an infinity


def test_no_data_rule_applies_to_the_tables_the_query_reads(make_config, tmp_path):
    """Interactions are read (found by SQLite's parser), and the demo has none before 2019: the
    value is missing with the reason, not a count of 0."""
    kpi = _kpi('period = "year"\nsql = "SELECT count(*) AS value FROM interactions WHERE started_at >= :start AND started_at < :end"', key="cfg_contacts")
    config = make_config(kpi)
    ran = invoke("run", "--config", str(config), "--metric", "cfg_contacts", "--as-of", "2001-03-01", "--json")
    assert ran.exit_code == 0, ran.output
    (run,) = json.loads(ran.stdout)
    assert run["periods"]["current"]["missing_reason"] == "no rows in interactions for 2000"
    values = json.loads(invoke("values", "--json", "--config", str(config)).stdout)
    (mine,) = [row for row in values if row["metric"] == "cfg_contacts"]
    assert (mine["value"], mine["status"]) == (None, "no data")


def test_the_built_dashboards_draw_config_kpis(make_config, tmp_path):
    config = make_config(ORDERS_KPI, REVENUE_KPI, ONLINE_SHARE_KPI)
    assert invoke("standards", "set", "cfg_orders", "--target", "80", "--red", "40", "--green", "70", "--config", str(config)).exit_code == 0
    built = invoke("dashboards", "build", "--out", str(tmp_path / "dashboards"), "--config", str(config))
    assert built.exit_code == 0, built.output
    texts = {path.name: path.read_text() for path in (tmp_path / "dashboards").glob("*.json")}
    value_creation = next(text for name, text in texts.items() if "value" in name and "creation" in name.replace("-", "_"))
    assert 'metric=\\"cfg_orders\\"' in value_creation
    assert "Orders placed" in value_creation
    assert 'metric=\\"cfg_revenue_by_segment\\"' in value_creation
    multichannel = next(text for name, text in texts.items() if "multichannel" in name)
    assert 'metric=\\"cfg_online_share\\"' in multichannel


def test_kpis_add_writes_the_table_keeping_comments_and_refuses_a_bad_one(make_config):
    config = make_config(ORDERS_KPI)
    added = invoke(
        "kpis", "add", "cfg_buyers", "--name", "Buyers", "--process", "strategy_development", "--perspective", "customer",
        "--value-lens", "customer_value", "--unit", "customers", "--direction", "higher_is_better", "--period", "quarter",
        "--sql", "SELECT count(DISTINCT customer_id) AS value\nFROM orders WHERE ordered_at >= :start AND ordered_at < :end",
        "--config", str(config),
    )
    assert added.exit_code == 0, added.output
    text = config.read_text()
    assert "# the demo source, as of mid-June 2026" in text and "# orders placed in the period" in text
    assert "[kpis.cfg_buyers]" in text and "sql = '''\nSELECT count(DISTINCT customer_id) AS value\nFROM orders" in text
    listed = json.loads(invoke("metrics", "list", "--json", "--config", str(config)).stdout)
    assert {row["key"]: row["period"] for row in listed if row["plugin"] == "config"} == {"cfg_orders": "month", "cfg_buyers": "quarter"}

    before = config.read_bytes()
    for sql, expected in [("SELECT 1 AS n", "kpis.cfg_two.sql: the query returns no column 'value'"),
                          ("UPDATE orders SET net_revenue = 0", "the source is read-only: the query would update on orders")]:
        done = invoke(
            "kpis", "add", "cfg_two", "--name", "Two", "--process", "strategy_development", "--perspective", "customer",
            "--value-lens", "customer_value", "--unit", "count", "--direction", "higher_is_better", "--sql", sql, "--config", str(config),
        )
        assert_one_line_exit_2(done, expected)
    assert_one_line_exit_2(
        invoke("kpis", "add", "cfg_orders", "--name", "Again", "--process", "strategy_development", "--perspective", "customer",
               "--value-lens", "customer_value", "--unit", "count", "--direction", "higher_is_better", "--sql", "SELECT 1 AS value",
               "--config", str(config)),
        "kpis.cfg_orders: already defined in the file",
    )
    assert config.read_bytes() == before


def test_a_config_kpi_can_be_set_like_a_plugin_metric(make_config):
    config = make_config(ORDERS_KPI)
    assert invoke("metrics", "disable", "cfg_orders", "--config", str(config)).exit_code == 0
    assert invoke("metrics", "set", "cfg_orders", "--period", "quarter", "--config", str(config)).exit_code == 0
    row = next(r for r in json.loads(invoke("metrics", "list", "--json", "--config", str(config)).stdout) if r["key"] == "cfg_orders")
    assert (row["enabled"], row["period"]) == (False, "quarter")


# --- metrics explain -------------------------------------------------------------------------


def explain(config, key: str) -> dict:
    done = invoke("metrics", "explain", key, "--json", "--config", str(config))
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def test_explain_a_config_kpi(make_config, demo_db):
    config = make_config(REVENUE_KPI)
    data = explain(config, "cfg_revenue_by_segment")
    assert data["plugin"] == "config" and data["dimensions"] == ["segment"]
    assert data["needs"] == ["segments", "customers", "orders"]  # what SQLite's parser saw the query read
    assert data["periods"][0] == {"label": "current", "name": "2026-05", "start": "2026-05-01T00:00:00", "end": "2026-06-01T00:00:00"}
    assert data["sql_as_written"]["sql"].startswith("SELECT COALESCE(s.name, 'unassigned') AS segment")
    (statement,) = data["sql_run"]
    assert "WHERE o.ordered_at >= ? AND o.ordered_at < ?" in statement["sql"]  # SQLite's placeholders
    assert statement["parameters"] == ["2026-05-01 00:00:00.000000", "2026-06-01 00:00:00.000000"] * 2
    (total,), = hand(demo_db, "SELECT SUM(net_revenue) FROM orders WHERE ordered_at >= '2026-05-01' AND ordered_at < '2026-06-01'")
    assert data["current_value"] == pytest.approx(total)
    assert data["standards"] == [] and data["error"] is None
    text = invoke("metrics", "explain", "cfg_revenue_by_segment", "--config", str(config)).stdout
    assert "SQL as written in the config file (sql):" in text and "current      2026-05: [2026-05-01T00:00:00, 2026-06-01T00:00:00)" in text


def test_explain_a_builtin_kpi_with_its_standard(make_config, demo_db):
    config = make_config()
    data = explain(config, "vc_aov")
    assert data["plugin"] == "value_creation" and data["computed_by"] == "crmmetrics_plugins.value_creation.average_order_value"
    assert data["needs"] == ["orders"]
    assert [p["name"] for p in data["parameters"]] == ["basis"] and data["parameters"][0]["value"] == "order"
    (statement,) = data["sql_run"]
    assert "FROM orders" in statement["sql"] and "orders.ordered_at >= ? AND orders.ordered_at < ?" in statement["sql"]
    assert statement["parameters"] == ["2026-05-01 00:00:00.000000", "2026-06-01 00:00:00.000000"]
    (revenue, orders), = hand(demo_db, "SELECT SUM(net_revenue), count(*) FROM orders WHERE ordered_at >= '2026-05-01' AND ordered_at < '2026-06-01'")
    assert data["current_value"] == pytest.approx(revenue / orders)
    with_default = explain(config, "vc_nps")
    assert with_default["standards"], "the value creation plugin ships a default standard for NPS"
    assert with_default["standards"][0]["label"] == "vc_nps"
    assert invoke("metrics", "explain", "vc_nps", "--config", str(config)).stdout.count("\n  standard     vc_nps: target") == 1
    assert not (config.parent / "store.sqlite").exists()  # explaining writes nothing


def test_explain_a_plugin_file_kpi(make_config, tmp_path, demo_db):
    from support.plugin_files import ORDERS_METRIC, write_plugin_file

    write_plugin_file(tmp_path / "plugins", "orders", ORDERS_METRIC)
    config = make_config()
    config.write_text(config.read_text().replace("[service]\n", '[service]\nplugins_dir = "plugins"\n'))
    data = explain(config, "t_orders")
    assert data["plugin"] == "file:orders" and data["computed_by"].endswith(".orders_in_period")
    (statement,) = data["sql_run"]
    assert statement["sql"].startswith("SELECT count(*) AS count_1") and "FROM orders" in statement["sql"]
    (orders,), = hand(demo_db, "SELECT count(*) FROM orders WHERE ordered_at >= '2026-05-01' AND ordered_at < '2026-06-01'")
    assert data["current_value"] == orders


def test_explain_an_unknown_metric(make_config):
    assert_one_line_exit_2(invoke("metrics", "explain", "no_such", "--config", str(make_config())), "unknown metric 'no_such'")


# --- PostgreSQL: types from the source, writes refused by the read-only session ----------------


def test_on_postgresql_types_are_checked_and_a_writing_query_is_refused_by_the_read_only_session(pg_databases, tmp_path):
    from sqlalchemy import create_engine, text

    from crmmetrics.data.demo import generate_demo

    url = pg_databases.create()
    generate_demo(url, customers=60, seed=3, as_of=__import__("datetime").date(2026, 6, 15))
    header = HEADER.format(source=url, store=tmp_path / "store.sqlite")
    config = tmp_path / "crmmetrics.toml"
    # PostgreSQL-only SQL (SQLite's parser does not know date_trunc): needs listed by hand
    good = _kpi('needs = ["orders"]\nsql = "SELECT count(*)::bigint AS value FROM orders WHERE date_trunc(\'day\', ordered_at) >= :start AND ordered_at < :end"', key="cfg_pg")
    config.write_text(header + good)
    assert invoke("config", "check", str(config)).exit_code == 0
    config.write_text(header + _kpi('needs = ["customers"]\nsql = "SELECT max(email) AS value FROM customers WHERE created_at < :end OR true"'))
    assert_one_line_exit_2(invoke("config", "check", str(config)), "kpis.cfg_bad.sql: the value column is not a number")

    engine = create_engine(url)
    with engine.connect() as connection:
        before = connection.execute(text("SELECT count(*) FROM orders")).scalar()
    # SQLite cannot parse a data-modifying CTE, so it gets to the source: PostgreSQL refuses it.
    writing = _kpi('needs = ["orders"]\nsql = "WITH gone AS (DELETE FROM orders RETURNING 1) SELECT count(*) AS value FROM gone"', key="cfg_delete")
    config.write_text(header + good + writing)
    assert_one_line_exit_2(invoke("config", "check", str(config)), "kpis.cfg_delete.sql: the source refused the query")
    ran = invoke("run", "--config", str(config), "--metric", "cfg_delete", "--json")
    assert ran.exit_code == 1
    (run,) = json.loads(ran.stdout)
    assert run["status"] == "failed" and "ReadOnlySqlTransaction" in run["error"] and "in a read-only transaction" in run["error"]
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM orders")).scalar() == before > 0
    engine.dispose()
    # computed on PostgreSQL: the value is the count written by hand
    config.write_text(header + good)
    assert invoke("run", "--config", str(config), "--metric", "cfg_pg").exit_code == 0
    engine = create_engine(url)
    with engine.connect() as connection:
        may = connection.execute(text("SELECT count(*) FROM orders WHERE ordered_at >= '2026-05-01' AND ordered_at < '2026-06-01'")).scalar()
    engine.dispose()
    assert may > 0
    assert render_exposition(f"sqlite:///{tmp_path / 'store.sqlite'}").metric_value("cfg_pg") == may
    data = explain(config, "cfg_pg")
    assert data["dialect"] == "postgresql" and "%(start)s" in data["sql_run"][0]["sql"]
    assert data["sql_run"][0]["parameters"] == {"start": "2026-05-01T00:00:00", "end": "2026-06-01T00:00:00"}
    assert data["current_value"] == may


def test_kpis_add_a_ratio(make_config, demo_db):
    config = make_config()
    added = invoke(
        "kpis", "add", "cfg_discounted", "--name", "Discounted orders", "--process", "value_creation", "--perspective", "financial",
        "--value-lens", "shareholder_value", "--unit", "percent", "--direction", "lower_is_better",
        "--numerator", "SELECT count(*) AS value FROM orders WHERE discount > 0 AND ordered_at >= :start AND ordered_at < :end",
        "--denominator", "SELECT count(*) AS value FROM orders WHERE ordered_at >= :start AND ordered_at < :end",
        "--config", str(config),
    )
    assert added.exit_code == 0, added.output
    assert '[kpis.cfg_discounted]\nkind = "ratio"\nname = "Discounted orders"' in config.read_text()
    data = explain(config, "cfg_discounted")
    (discounted, orders), = hand(
        demo_db,
        "SELECT sum(discount > 0), count(*) FROM orders WHERE ordered_at >= '2026-05-01' AND ordered_at < '2026-06-01'",
    )
    assert data["current_value"] == pytest.approx(100 * discounted / orders)
    assert_one_line_exit_2(
        invoke("kpis", "add", "cfg_half", "--name", "Half", "--process", "value_creation", "--perspective", "financial",
               "--value-lens", "shareholder_value", "--unit", "percent", "--direction", "lower_is_better",
               "--numerator", "SELECT 1 AS value", "--config", str(config)),
        "a ratio KPI takes --numerator and --denominator",
    )


def test_a_reload_that_changes_the_kpis_is_refused(make_config):
    from types import SimpleNamespace

    from crmmetrics.core.config import load_config
    from crmmetrics.core.errors import ConfigError
    from crmmetrics.serve.app import App
    from crmmetrics.serve.service import Service

    config = make_config(ORDERS_KPI)
    app = App.from_config(load_config(config))
    config.write_text(config.read_text().replace('name = "Orders placed"', 'name = "Orders"'))
    with pytest.raises(ConfigError, match=r"kpis changed: restart crmmetrics serve to apply"):
        Service._validated(SimpleNamespace(app=app), app.config)


# --- declared KPIs: the KPI kit's measures in the config file, and default standards -------------

DECLARED_KPIS = """
[kpis.cfg_big_orders]
kind = "measure"
name = "Orders over 100"
process = "value_creation"
perspective = "customer"
value_lens = "customer_value"
unit = "count"
direction = "higher_is_better"
measure = { table = "orders", agg = "count", filters = [["net_revenue", ">", 100]] }

[kpis.cfg_revenue_by_channel]
kind = "measure"
name = "Net revenue by channel category"
process = "multichannel_integration"
perspective = "financial"
value_lens = "shareholder_value"
unit = "currency"
direction = "higher_is_better"
dimensions = ["channel_category"]
measure = { table = "orders", column = "net_revenue", agg = "sum" }

# the share of net revenue taken online, per segment of the customer's master record
[kpis.cfg_web_share]
kind = "ratio"
name = "Web share of net revenue"
process = "multichannel_integration"
perspective = "customer"
value_lens = "customer_value"
unit = "percent"
direction = "higher_is_better"
dimensions = ["segment"]
numerator = { table = "orders", column = "net_revenue", filters = [["channel.category", "in", ["e_commerce", "m_commerce"]]] }
denominator = { table = "orders", column = "net_revenue" }
[kpis.cfg_web_share.standard]
target = 60
red = 20
green = 50
owner = "e-commerce"
"""

BY_CHANNEL = (
    "SELECT COALESCE(ch.category, 'unassigned'), SUM(o.net_revenue) FROM orders o LEFT JOIN channels ch ON ch.channel_id = o.channel_id "
    "WHERE o.ordered_at >= ? AND o.ordered_at < ? GROUP BY 1"
)
# the segment of the master record; anonymous orders are 'unassigned'
WEB_BY_SEGMENT = (
    "SELECT COALESCE(s.name, 'unassigned'), SUM(CASE WHEN ch.category IN ('e_commerce', 'm_commerce') THEN o.net_revenue ELSE 0 END), "
    "SUM(o.net_revenue) FROM orders o LEFT JOIN channels ch ON ch.channel_id = o.channel_id "
    "LEFT JOIN customers c ON c.customer_id = o.customer_id "
    "LEFT JOIN customers m ON m.customer_id = COALESCE(c.master_customer_id, c.customer_id) "
    "LEFT JOIN segments s ON s.segment_id = m.segment_id WHERE o.ordered_at >= ? AND o.ordered_at < ? GROUP BY 1"
)


def _status(value: float, red: float, green: float) -> float:  # higher is better
    return 2.0 if value >= green else 0.0 if value <= red else 1.0


def test_declared_kpis_are_computed_exported_and_judged_by_their_default_standard_until_an_admin_sets_one(make_config, tmp_path, demo_db):
    config = make_config(DECLARED_KPIS)
    checked = invoke("config", "check", str(config))
    assert checked.exit_code == 0, checked.output
    listed = {row["key"]: row for row in json.loads(invoke("metrics", "list", "--json", "--config", str(config)).stdout)}
    assert listed["cfg_web_share"]["plugin"] == "config" and listed["cfg_web_share"]["dimensions"] == ["segment"]
    assert listed["cfg_revenue_by_channel"]["dimensions"] == ["channel_category"]
    keys = ("cfg_big_orders", "cfg_revenue_by_channel", "cfg_web_share")
    ran = invoke("run", "--config", str(config), *(arg for key in keys for arg in ("--metric", key)))
    assert ran.exit_code == 0, ran.output
    exposition = render_exposition(f"sqlite:///{tmp_path / 'store.sqlite'}")

    bounds = {"current": ("2026-05-01", "2026-06-01"), "previous": ("2026-04-01", "2026-05-01")}
    for label, (start, end) in bounds.items():
        (big,), = hand(demo_db, "SELECT count(*) FROM orders WHERE net_revenue > 100 AND ordered_at >= ? AND ordered_at < ?", start, end)
        assert 0 < big and exposition.metric_value("cfg_big_orders", label) == big
        by_channel = dict(hand(demo_db, BY_CHANNEL, start, end))
        assert len(by_channel) >= 3
        for category, revenue in by_channel.items():
            assert exposition.metric_value("cfg_revenue_by_channel", label, channel_category=category) == pytest.approx(revenue)
        assert exposition.metric_value("cfg_revenue_by_channel", label) == pytest.approx(sum(by_channel.values()))
        rows = hand(demo_db, WEB_BY_SEGMENT, start, end)
        assert len(rows) >= 3 and any(segment == "unassigned" for segment, _, _ in rows)
        for segment, web, revenue in rows:  # percent: exported as a ratio (0-1)
            assert exposition.metric_value("cfg_web_share", label, segment=segment) == pytest.approx(web / revenue)
        total = sum(web for _, web, _ in rows) / sum(revenue for _, _, revenue in rows)
        assert exposition.metric_value("cfg_web_share", label) == pytest.approx(total)

    # judged by the default standard of its [kpis.cfg_web_share.standard] table, recorded by plugin:config
    rows = hand(demo_db, WEB_BY_SEGMENT, *bounds["current"])
    share = 100 * sum(web for _, web, _ in rows) / sum(revenue for _, _, revenue in rows)
    assert exposition.value("crmmetrics_kpi_status", metric="cfg_web_share") == _status(share, 20, 50)
    assert exposition.value("crmmetrics_kpi_red_threshold_ratio", metric="cfg_web_share") == pytest.approx(0.20)
    (standard,) = [s for s in json.loads(invoke("standards", "list", "--json", "--config", str(config)).stdout) if s["metric"] == "cfg_web_share"]
    assert (standard["origin"], standard["changed_by"], standard["owner"], standard["green"]) == ("default", "plugin:config", "e-commerce", 50)

    # an admin standard overrides it
    admin_red, admin_green = share + 5, share + 10  # the value is now below red
    assert invoke("standards", "set", "cfg_web_share", "--target", f"{share + 20:.3f}", "--red", f"{admin_red:.3f}",
                  "--green", f"{admin_green:.3f}", "--config", str(config)).exit_code == 0
    exposition = render_exposition(f"sqlite:///{tmp_path / 'store.sqlite'}")
    assert exposition.value("crmmetrics_kpi_status", metric="cfg_web_share") == 0.0
    assert exposition.value("crmmetrics_kpi_red_threshold_ratio", metric="cfg_web_share") == pytest.approx(admin_red / 100, abs=1e-5)
    scorecard = json.loads(invoke("scorecard", "--json", "--config", str(config)).stdout)
    (kpi,) = [k for k in scorecard["kpis"] if k["metric"] == "cfg_web_share"]
    assert (kpi["status"], kpi["standard_origin"]) == ("red", "admin")
    # drawn by the built dashboards, like a plugin's KPI
    assert invoke("dashboards", "build", "--out", str(tmp_path / "dashboards"), "--config", str(config)).exit_code == 0
    multichannel = next((tmp_path / "dashboards").glob("*multichannel*.json")).read_text()
    assert 'metric=\\"cfg_web_share\\"' in multichannel and 'metric=\\"cfg_revenue_by_channel\\"' in multichannel


def test_explain_a_declared_kpi(make_config, demo_db):
    config = make_config(DECLARED_KPIS)
    data = explain(config, "cfg_web_share")
    assert data["computed_by"].startswith(f"[kpis.cfg_web_share] in {config} (the KPI kit: 100 * sum(orders.net_revenue) where channel.category in")
    assert data["needs"] == ["orders"] and data["sql_as_written"] == {}
    assert [s["label"] for s in data["standards"]] == ["cfg_web_share"] and data["standards"][0]["green"] == 50
    (statement,) = data["sql_run"]
    assert "FROM orders LEFT OUTER JOIN channels AS row_channel" in statement["sql"] and "GROUP BY" in statement["sql"]
    rows = hand(demo_db, WEB_BY_SEGMENT, "2026-05-01", "2026-06-01")
    assert data["current_value"] == pytest.approx(100 * sum(w for _, w, _ in rows) / sum(v for _, _, v in rows))


def test_kpis_add_writes_a_declared_measure_and_a_ratio_of_measures(make_config, demo_db):
    config = make_config()
    common = ["--process", "value_creation", "--perspective", "customer", "--value-lens", "customer_value",
              "--direction", "higher_is_better", "--config", str(config)]
    added = invoke("kpis", "add", "cfg_buyers", "--name", "Buyers", "--unit", "customers",
                   "--measure", '{ table = "orders", agg = "customers" }', "--standard", "{ target = 50, red = 10, green = 40 }", *common)
    assert added.exit_code == 0, added.output
    text = config.read_text()
    assert '[kpis.cfg_buyers]\nkind = "measure"\nname = "Buyers"' in text
    assert 'measure = {table = "orders", agg = "customers"}' in text and "standard = {target = 50, red = 10, green = 40}" in text
    (buyers,), = hand(
        demo_db,
        "SELECT count(DISTINCT COALESCE(c.master_customer_id, c.customer_id)) FROM orders o JOIN customers c ON c.customer_id = o.customer_id "
        "WHERE o.ordered_at >= '2026-05-01' AND o.ordered_at < '2026-06-01'",
    )
    data = explain(config, "cfg_buyers")
    assert data["current_value"] == buyers and data["standards"][0]["red"] == 10
    added = invoke("kpis", "add", "cfg_discount_share", "--name", "Discounted orders", "--unit", "percent",
                   "--numerator", '{ table = "orders", agg = "count", filters = [["discount", ">", 0]] }',
                   "--denominator", '{ table = "orders", agg = "count" }', *common)
    assert added.exit_code == 0, added.output
    (discounted, orders), = hand(
        demo_db, "SELECT sum(discount > 0), count(*) FROM orders WHERE ordered_at >= '2026-05-01' AND ordered_at < '2026-06-01'"
    )
    assert explain(config, "cfg_discount_share")["current_value"] == pytest.approx(100 * discounted / orders)
    before = config.read_text()
    assert_one_line_exit_2(
        invoke("kpis", "add", "cfg_bad", "--name", "Bad", "--unit", "count", "--measure", '{ table = "orders", column = "amount" }', *common),
        "kpis.cfg_bad.measure: table orders has no column 'amount'",
    )
    assert_one_line_exit_2(
        invoke("kpis", "add", "cfg_bad", "--name", "Bad", "--unit", "count", "--measure", "{ table = orders }", *common),
        "--measure: '{ table = orders }' is not a TOML inline table",
    )
    assert config.read_text() == before


def test_config_check_computes_a_declared_kpi_on_the_source_once(tmp_path, crm_db):
    """A source whose orders are a view without the discount column (an admin's mapping): the
    kit's query for the measure is refused by the source, one line naming the KPI."""
    connection = sqlite3.connect(crm_db.url.removeprefix("sqlite:///"))
    connection.executescript(
        "ALTER TABLE orders RENAME TO orders_table;"
        "CREATE VIEW orders AS SELECT order_id, customer_id, ordered_at, channel_id, campaign_id, gross_revenue, "
        "net_revenue, cogs, returned_amount FROM orders_table;"
    )
    connection.close()
    config = tmp_path / "crmmetrics.toml"
    good = _kpi('kind = "measure"\nmeasure = { table = "orders", column = "net_revenue" }', key="cfg_revenue")
    config.write_text(HEADER.format(source=crm_db.url, store=tmp_path / "store.sqlite") + good, encoding="utf-8")
    assert invoke("config", "check", str(config)).exit_code == 0
    bad = _kpi('kind = "measure"\nmeasure = { table = "orders", column = "discount" }', key="cfg_discounts")
    config.write_text(config.read_text() + bad, encoding="utf-8")
    assert_one_line_exit_2(
        invoke("config", "check", str(config)),
        f"{config}: kpis.cfg_discounts: the source refused the SQL of measure sum(orders.discount): no such column",
    )
