"""Configuration: validation with one-line errors, effective settings, and in-place edits."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from crmmetrics.compute.plugins import get_plugin_manager
from crmmetrics.compute.registry import build_registry
from crmmetrics.core.config import edit_metric, load_config, redact_url
from crmmetrics.core.errors import ConfigError
from test_config_kpis import ORDERS_KPI

GOOD = """\
# the demo's config
[source]
url = "sqlite:///crm.sqlite"   # beside this file

[store]
url = "sqlite:///store.sqlite"

[metrics.vc_nps]
period = "quarter"   # NPS is noisy month to month
"""


@pytest.fixture(scope="module")
def registry():
    return build_registry(get_plugin_manager())


def write(tmp_path, text):
    path = tmp_path / "crmmetrics.toml"
    path.write_text(text)
    return path


def test_relative_sqlite_paths_are_relative_to_the_file(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert config.source_url == f"sqlite:///{tmp_path / 'crm.sqlite'}"
    assert config.service.port == 9632 and config.service.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[source]\nurl = 'sqlite:///a'\n", "store: required key is missing"),
        (GOOD + "[service]\nport = 99999\n", "service.port: 99999 is out of range: expected an integer from 0 to 65535"),
        (GOOD + "[service]\ntimezone = 'Mars/Olympus'\n", "service.timezone: unknown timezone 'Mars/Olympus'"),
        (GOOD + "[service]\ncolour = 'red'\n", "service.colour: unknown key"),
        (GOOD + "[service]\ncurrency = 'euro'\n", "service.currency: invalid currency 'euro': expected an ISO 4217 code of three capital letters, e.g. EUR"),
        (GOOD + "[metrics.vc_aov]\nschedule = { every = '5x' }\n", "metrics.vc_aov.schedule: invalid duration '5x'"),
        (GOOD + "[metrics.vc_aov]\nschedule = { cron = '61 * * * *' }\n", "metrics.vc_aov.schedule: invalid cron expression"),
        (GOOD + "[metrics.vc_aov]\nperiod = 'fortnight'\n", "metrics.vc_aov.period: unknown period 'fortnight'"),
        ("[source\n", "not valid TOML"),
        (GOOD.replace("sqlite:///crm.sqlite", "${NO_SUCH_VARIABLE_X}"), "source.url: environment variable NO_SUCH_VARIABLE_X is not set"),
    ],
)
def test_bad_config_is_one_line_naming_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_metric_sections_are_checked_against_the_registry(tmp_path, registry):
    config = load_config(write(tmp_path, GOOD + "[metrics.vc_nope]\nenabled = false\n"))
    with pytest.raises(ConfigError, match=r"metrics\.vc_nope: unknown metric 'vc_nope'"):
        config.validate_against(registry)


def test_metric_settings_merge_definition_defaults_and_config(tmp_path, registry):
    config = load_config(write(tmp_path, GOOD))
    nps = config.metric_settings(registry.get("vc_nps"))
    # A period set in the config brings its schedule (the plugin sets none): daily at 00:15.
    assert (nps.period, nps.schedule.cron, nps.enabled) == ("quarter", "15 0 * * *", True)
    assert config.metric_settings(registry.get("sd_active_customers")).period == "trailing_365d"
    with_mtd = load_config(write(tmp_path, GOOD.replace('period = "quarter"', 'period = "month_to_date"')))
    assert with_mtd.metric_settings(registry.get("vc_nps")).schedule.cron == "15 * * * *"
    # A plugin's own schedule stays, whatever the period.
    forecast = registry.get("im_clv_forecast_error")
    assert forecast.schedule.every == "1d" and config.metric_settings(forecast).schedule.every == "1d"
    assert load_config(write(tmp_path, GOOD + "[service]\ncurrency = 'EUR'\n")).service.currency == "EUR"


def test_environment_variables_fill_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_STORE_PASSWORD", "s3cret")
    text = GOOD.replace("sqlite:///store.sqlite", "postgresql+psycopg://crm:${CRM_STORE_PASSWORD}@db/crm")
    config = load_config(write(tmp_path, text))
    assert config.store_url == "postgresql+psycopg://crm:s3cret@db/crm"
    assert redact_url(config.store_url) == "postgresql+psycopg://crm:***@db/crm"


def test_edit_keeps_comments_and_validates_before_writing(tmp_path, registry):
    path = write(tmp_path, GOOD)
    edit_metric(path, "vc_aov", {"schedule": {"cron": "0 6 * * *"}, "enabled": False}, registry)
    text = path.read_text()
    assert "# the demo's config" in text and "# NPS is noisy month to month" in text
    config = load_config(path)
    settings = config.metric_settings(registry.get("vc_aov"))
    assert settings.schedule.cron == "0 6 * * *" and settings.enabled is False
    before = path.read_text()
    with pytest.raises(ConfigError, match="invalid cron expression"):
        edit_metric(path, "vc_aov", {"schedule": {"cron": "not a cron"}}, registry)
    assert path.read_text() == before  # nothing half-written


def test_as_of_is_a_datetime(tmp_path):
    config = load_config(write(tmp_path, GOOD + "[service]\nas_of = 2026-03-10T00:00:00\n"))
    assert config.service.as_of == datetime(2026, 3, 10)
    as_text = load_config(write(tmp_path, GOOD + "[service]\nas_of = '2026-03-10T06:30:00+01:00'\n"))
    assert as_text.service.as_of == datetime(2026, 3, 10, 5, 30, tzinfo=timezone.utc)


def test_values_from_environment_variables_take_the_field_type(tmp_path, monkeypatch):
    """``${NAME}`` gives text; a number or a boolean field reads it as its own type."""
    monkeypatch.setenv("CRM_PORT", "9700")
    monkeypatch.setenv("CRM_NPS_ON", "false")
    config = load_config(write(tmp_path, GOOD.replace('period = "quarter"', 'enabled = "${CRM_NPS_ON}"') + '[service]\nport = "${CRM_PORT}"\n'))
    assert config.service.port == 9700 and config.model.metrics["vc_nps"].enabled is False


@pytest.mark.parametrize(
    ("text", "messages"),
    [
        ("service = 5\n" + GOOD, ["service: expected a table, got 5"]),
        (GOOD + "[web]\nthreads = 0\nallowed_hosts = 'crm.example'\n",
         ["web.allowed_hosts: expected an array of strings, got 'crm.example'",
          "web.threads: 0 is out of range: expected an integer from 1 to 512"]),
        (GOOD + "[logging]\nlevel = 'LOUD'\n", ["logging.level: unknown level 'LOUD': expected one of 'DEBUG', 'INFO', 'WARNING', 'ERROR'"]),
        (GOOD + "[metrics.vc_aov]\nenabled = 1\nschedule = { every = '1h', hourly = true }\n",
         ["metrics.vc_aov.enabled: expected true or false, got 1", "metrics.vc_aov.schedule.hourly: unknown key"]),
        (GOOD + "[metrics.vc_aov]\nschedule = { }\n", ["metrics.vc_aov.schedule: give exactly one of 'every' or 'cron'"]),
        (GOOD + "[service]\nas_of = 2026-03-10\n", ["service.as_of: expected a date-time such as 2026-03-10T00:00:00, got 2026-03-10"]),
    ],
)
def test_every_problem_names_its_key_and_value(tmp_path, text, messages):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).splitlines() == [f"{path}: {message}" for message in messages]


def test_the_section_defaults_are_those_shown_by_config_show(tmp_path):
    """``config show`` prints the parsed tables as JSON: enums by value, date-times in ISO 8601."""
    from crmmetrics.core.config_fields import plain

    config = load_config(write(tmp_path, GOOD + "[service]\nas_of = 2026-03-10T00:00:00\n" + ORDERS_KPI))
    shown = plain(config.model)
    assert shown["service"] == {
        "host": "127.0.0.1", "port": 9632, "timezone": "UTC", "plugins_dir": None, "as_of": "2026-03-10T00:00:00",
        "misfire_grace": "10m", "leader_poll": "15s", "currency": None, "standards_file": None,
    }
    assert shown["web"] == {"config_file": None, "allowed_hosts": [], "threads": 16, "backlog": 1024, "timeout": "10s"}
    assert shown["kpis"]["cfg_orders"]["process"] == "value_creation" and shown["kpis"]["cfg_orders"]["period"] == "month"
    assert shown["store"]["retention"] == "731d" and shown["logging"] == {"level": "INFO", "format": "text"}


@pytest.mark.parametrize("url", [
    "sqlite://", "sqlite:///crm.sqlite", "sqlite:////abs/crm.sqlite", "sqlite:///C:\\crm.sqlite",
    "postgresql+psycopg://user:pw@host:5432/crm", "postgresql://user:p@ss@host/crm", "postgresql://host/crm?sslmode=require",
    "mysql://[::1]:3306/crm", "duckdb:///crm.duckdb", "trino://user@host:8080/catalog/schema", "x://h: 12/db",
    "not a url", "", "://host", "a b://host", "x-y://host", "postgresql://user:pw@host:port/crm", "postgresql://host:/crm",
    "postgresql://host:5432a/crm",
])
def test_the_url_check_agrees_with_sqlalchemys_parser(url):
    """Loading a config checks database URLs without importing SQLAlchemy, with its grammar."""
    from sqlalchemy.engine import make_url

    from crmmetrics.core.config import is_database_url

    try:
        make_url(url)
        parsed = True
    except Exception:
        parsed = False
    assert is_database_url(url) is parsed
