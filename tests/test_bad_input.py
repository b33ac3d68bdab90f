"""Bad input of every family gets one line naming what is wrong, exit 2, no traceback and no
change; secrets in URLs are never printed (config show, errors, logs, stored runs)."""

from __future__ import annotations

import json
import logging

import pytest
from click.testing import CliRunner

from crmmetrics.cli import cli
from crmmetrics.core.config import redact_text, redact_url
from crmmetrics.testing import CrmDatabase


@pytest.fixture
def setup(tmp_path):
    crm = CrmDatabase(f"sqlite:///{tmp_path / 'crm.sqlite'}")
    crm.dispose()
    config = tmp_path / "crmmetrics.toml"
    config.write_text('[source]\nurl = "sqlite:///crm.sqlite"\n[store]\nurl = "sqlite:///store.sqlite"\n')
    return tmp_path, config


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def assert_one_line_exit_2(done, expected: str) -> None:
    assert done.exit_code == 2, done.output
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert expected in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("metrics", "schedule", "vc_nps", "--every", "99999999999999d"), "--every: duration '99999999999999d' is longer than the maximum of 366 days"),
        (("metrics", "schedule", "vc_nps", "--every", "367d"), "is longer than the maximum of 366 days"),
        (("metrics", "schedule", "vc_nps", "--every", "99999999999999999999s"), "is longer than the maximum"),
        (("metrics", "schedule", "vc_nps", "--every", "0m"), "invalid duration '0m'"),
        (("metrics", "set", "im_data_completeness", "required_fields=email,no_such_column"),
         "metrics.im_data_completeness.params.required_fields: not a column of customers: 'no_such_column'"),
        (("alerts", "export", "--for-red", "99999999999999d"), "99999999999999d"),
    ],
)
def test_admin_commands_refuse_bad_values_and_leave_the_file_alone(setup, args, expected):
    directory, config = setup
    before = config.read_bytes()
    assert_one_line_exit_2(invoke(*args, "--config", str(config)), expected)
    assert config.read_bytes() == before
    assert not (directory / "store.sqlite").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[metrics.vc_nps]\ntimeout = "99999999999999d"\n', "metrics.vc_nps.timeout: duration '99999999999999d' is longer than the maximum of 366 days"),
        ('[metrics.vc_nps]\nschedule = { every = "99999999999999d" }\n', "metrics.vc_nps.schedule: Value error, duration"),
        ('[metrics.vc_nps]\nperiod = "trailing_99999999999d"\n', "metrics.vc_nps.period: unknown period 'trailing_99999999999d'"),
        ('[metrics.vc_nps]\nperiod = "trailing_0d"\n', "unknown period 'trailing_0d'"),
        ('[service]\nmisfire_grace = "99999999999999d"\n', "service.misfire_grace: duration"),
        ('[service]\nport = 99999\n', "service.port: 99999 is out of range: expected an integer from 0 to 65535"),
    ],
)
def test_config_values_out_of_bounds(setup, text, expected):
    directory, config = setup
    config.write_text(config.read_text() + text)
    done = invoke("config", "check", str(config))
    assert done.exit_code == 2 and expected.replace("Value error, ", "") in done.stderr, done.stderr
    assert "Traceback" not in done.output


def test_every_config_problem_is_reported_at_once(setup):
    _directory, config = setup
    config.write_text(config.read_text() + '[service]\nport = -1\ncolour = "red"\n[metrics.vc_nps]\nperiod = "fortnight"\n[metrics.vc_nope]\n')
    done = invoke("config", "check", str(config))
    assert done.exit_code == 2
    lines = done.stderr.splitlines()
    assert lines[0].startswith("Error: ") and len(lines) == 3, done.stderr
    assert any("service.port" in line for line in lines) and any("service.colour: unknown key" in line for line in lines)
    assert any("metrics.vc_nps.period: unknown period 'fortnight'" in line for line in lines)


def test_config_check_reads_the_web_config_and_standards_files_that_serve_reads(setup):
    directory, config = setup
    config.write_text(config.read_text() + '[service]\nstandards_file = "standards.toml"\n[web]\nconfig_file = "web.yml"\n')
    (directory / "standards.toml").write_text("[standards.vc_nope]\ntarget = 1\n")
    (directory / "web.yml").write_text("basic_auth_users: [not, a, mapping]\n")
    done = invoke("config", "check", str(config))
    assert done.exit_code == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    assert any(str(directory / "web.yml") in line and "basic_auth_users" in line for line in lines), done.stderr
    assert any(str(directory / "standards.toml") in line and "vc_nope" in line for line in lines), done.stderr
    (directory / "standards.toml").write_text('[standards.vc_nps]\ntarget = 40\nred = 0\ngreen = 30\n')
    (directory / "web.yml").write_text("http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    assert invoke("config", "check", str(config)).exit_code == 0
    assert not (directory / "store.sqlite").exists()


def test_a_config_file_that_is_not_utf8(setup):
    _directory, config = setup
    config.write_bytes(b'[source]\nurl = "sqlite:///caf\xe9.sqlite"\n')
    assert_one_line_exit_2(invoke("config", "check", str(config)), f"{config}: line 2: not UTF-8 text (byte 0xe9)")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://u:pw@db/crm", "store.url: mysql://u:***@db/crm: the database driver is not installed (MySQLdb): install mysqlclient"),
        ("foodb://x", "store.url: unknown database dialect 'foodb' in foodb://x"),
        ("not a url", "store.url: not a SQLAlchemy database URL: 'not a url'"),
        ("sqlite:///no/such/directory/store.sqlite", "/no/such/directory/store.sqlite: the directory"),
        ("postgresql+psycopg://:pw@127.0.0.1:9/x?sslpassword=zz", "store postgresql+psycopg://:***@127.0.0.1:9/x?sslpassword=***: cannot open: "),
    ],
)
def test_store_urls_that_cannot_work(setup, url, expected):
    directory, config = setup
    config.write_text(config.read_text().replace("sqlite:///store.sqlite", url))
    done = invoke("run", "--metric", "vc_aov", "--config", str(config))
    assert_one_line_exit_2(done, expected)
    assert "pw" not in done.stderr and "zz" not in done.stderr


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://bob:s3cret@db/crm", "postgresql://bob:***@db/crm"),
        ("postgresql://:s3cret@db/crm", "postgresql://:***@db/crm"),
        ("postgresql://db/crm?password=s3cret&sslmode=require", "postgresql://db/crm?password=***&sslmode=require"),
        ("postgresql://bob@db/crm?sslmode=verify-full&sslpassword=s3cret", "postgresql://bob@db/crm?sslmode=verify-full&sslpassword=***"),
        ("postgresql://bob:s3c@ret@db/crm", "postgresql://bob:***@db/crm"),
    ],
)
def test_passwords_are_redacted_in_every_form(setup, url, shown):
    assert redact_url(url) == shown
    assert redact_text(f"OperationalError: cannot reach {url} now") == f"OperationalError: cannot reach {shown} now"
    _directory, config = setup
    config.write_text(config.read_text().replace("sqlite:///crm.sqlite", url))
    done = invoke("config", "show", "--config", str(config))
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["source"]["url"] == shown and "s3c" not in done.stdout


def test_logs_and_stored_run_errors_hide_passwords(setup, tmp_path, capsys):
    from crmmetrics.serve.logs import configure_logging

    for fmt in ("text", "json"):
        configure_logging("INFO", fmt)
        logging.getLogger("crmmetrics.plugin").warning("connecting to postgresql://bob:s3cret@db/crm?sslpassword=s3cret")
        assert "s3cret" not in capsys.readouterr().err
    directory, config = setup
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "leaky.py").write_text(
        "from crmmetrics import MetricDefinition, hookimpl\n"
        "def boom(ctx):\n    raise RuntimeError('cannot reach postgresql://bob:s3cret@db/crm')\n"
        "@hookimpl\ndef crmmetrics_metrics():\n    return [MetricDefinition(key='t_leaky', name='Leaky', description='d', process='value_creation',"
        " perspective='customer', value_lens='customer_value', unit='count', direction='higher_is_better', compute=boom)]\n"
    )
    config.write_text(config.read_text() + '[service]\nplugins_dir = "plugins"\n')
    done = invoke("run", "--metric", "t_leaky", "--json", "--config", str(config))
    assert done.exit_code == 1
    assert json.loads(done.stdout)[0]["error"] == "RuntimeError: cannot reach postgresql://bob:***@db/crm"


def test_an_edit_repairs_a_file_broken_by_hand(setup):
    directory, config = setup
    config.write_text(config.read_text() + '[metrics.im_data_completeness]\nparams = { required_fields = "email,no_such_column" }\n')
    assert invoke("config", "check", str(config)).exit_code == 2
    done = invoke("metrics", "set", "im_data_completeness", "required_fields=email,phone", "--config", str(config))
    assert done.exit_code == 0, done.output
    assert invoke("config", "check", str(config)).exit_code == 0


def test_a_standards_edit_on_a_source_without_the_canonical_tables_writes_nothing(tmp_path):
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{tmp_path / 'crm.sqlite'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE customers (customer_id INTEGER)")
    engine.dispose()
    config = tmp_path / "crmmetrics.toml"
    config.write_text('[source]\nurl = "sqlite:///crm.sqlite"\n[store]\nurl = "sqlite:///store.sqlite"\n')
    done = invoke("standards", "set", "vc_nps", "--target", "50", "--red", "10", "--green", "30", "--config", str(config))
    assert_one_line_exit_2(done, "source.url: sqlite:///")
    assert "has no table or view segments" in done.stderr
    assert not (tmp_path / "store.sqlite").exists()
