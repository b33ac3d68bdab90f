"""Standards: validation, the standard in force, plugin defaults, history, the standards file and
the ``crmmetrics standards`` commands (one-line errors, exit 2, nothing half-written)."""

from __future__ import annotations

import getpass
import json
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

from crmmetrics.cli import cli
from crmmetrics.compute.plugins import get_plugin_manager
from crmmetrics.compute.registry import build_registry
from crmmetrics.compute.standard_defaults import collect_defaults
from crmmetrics.core.errors import PluginError
from crmmetrics.core.periods import utcnow
from crmmetrics.core.resources import config_dir
from crmmetrics.core.standard import (
    ADMIN,
    DEFAULT,
    AdminStandard,
    StandardDefault,
    check_against,
    format_key,
    parse_key,
    parse_target,
)
from crmmetrics.core.standards_file import load_standards_file
from crmmetrics.store.standards import (
    StandardChange,
    apply_admin_standards,
    record_defaults,
    resolve,
    standard_history,
    standards_in_force,
)
from crmmetrics.store.store import Store, dimensions_key
from support.plugin_files import write_plugin_file
from support.scorecard_scenario import DATA, ENV, write_config

# --- the StandardDefault a plugin returns -----------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"target": 30, "red": 10, "green": 10}, "red and green thresholds are both 10; they must differ"),
        ({"target": 20, "red": 0, "green": 30}, "target 20 must be at or above the green threshold 30 (red 0)"),
        ({"target": 15, "red": 20, "green": 12}, "target 15 must be at or below the green threshold 12 (red 20)"),
        ({"target": "x", "red": 0, "green": 1}, "target must be a number, got 'x'"),
        ({"target": 1, "red": float("nan"), "green": 1}, "red must be a finite number"),
        ({"target": 1, "red": 0, "green": 1, "weight": -1}, "weight must be 0 or more, got -1"),
        ({"target": None, "red": 0, "green": 1}, "a fixed target needs a number"),
        ({"target": 5, "red": 0, "green": 1, "target_rule": "previous"}, "takes no fixed target"),
        ({"target": None, "red": 0, "green": 1, "target_rule": "benchmark"}, "needs the benchmark number"),
        ({"target": None, "red": 0, "green": 10, "target_rule": "benchmark", "benchmark": 5}, "target 5 must be at or above"),
        ({"target": None, "red": 0, "green": 1, "target_rule": "guess"}, "target_rule must be one of fixed, previous, benchmark"),
    ],
)
def test_a_standard_default_checks_itself(fields, message):
    with pytest.raises(ValueError, match="^standard for m: |must be") as raised:
        StandardDefault("m", **fields)
    assert message in str(raised.value)


def test_thresholds_must_agree_with_the_metrics_direction():
    higher = StandardDefault("m", 30, red=0, green=20)
    assert higher.problem("higher_is_better") is None
    assert higher.problem("lower_is_better") == "red 0 must be above green 20 for a metric that is lower is better"
    assert StandardDefault("m", 8, red=20, green=12).problem("higher_is_better") == (
        "red 20 must be below green 12 for a metric that is higher is better"
    )


@pytest.mark.parametrize(
    ("red", "green", "improvement", "previous", "target"),
    [
        (0, 10, 0.05, 100.0, 105.0),  # higher is better: 5% more
        (150, 100, 0.05, 100.0, 95.0),  # lower is better: 5% less
        (-50, 0, 0.10, -10.0, -9.0),  # a negative previous value improves towards zero
        (0, 10, 0.0, 7.0, 7.0),  # "previous": hold the line
        (0, 10, 0.05, None, None),  # no previous value, no target
    ],
)
def test_a_target_derived_from_the_previous_period(red, green, improvement, previous, target):
    spec = StandardDefault("m", None, red=red, green=green, target_rule="previous", improvement=improvement)
    assert spec.target_for(previous) == target


def test_a_benchmark_target():
    spec = StandardDefault("m", None, red=24, green=12, target_rule="benchmark", benchmark=12, source="a study")
    assert spec.target_for(None) == 12.0 and spec.fixed_target == 12.0


@pytest.mark.parametrize(
    ("text", "metric", "dimensions"),
    [
        ("vc_nps", "vc_nps", {}),
        ("vc_nps{channel_category=telephony}", "vc_nps", {"channel_category": "telephony"}),
        ("x{segment=Premium households, channel=web}", "x", {"segment": "Premium households", "channel": "web"}),
        ('x{segment="A, B {1}"}', "x", {"segment": "A, B {1}"}),
    ],
)
def test_keys_name_a_metric_and_dimension_values(text, metric, dimensions):
    assert parse_key(text) == (metric, dimensions)
    assert parse_key(format_key(metric, dimensions)) == (metric, dimensions)


@pytest.mark.parametrize("text", ["Vc_nps", "vc nps", "vc_nps{segment}", "vc_nps{a=1,a=2}", "vc_nps{"])
def test_bad_keys(text):
    with pytest.raises(ValueError):
        parse_key(text)


def test_target_text():
    assert parse_target(40) == {"target": 40.0, "target_rule": "fixed", "improvement": 0.0}
    assert parse_target("12.5") == {"target": 12.5, "target_rule": "fixed", "improvement": 0.0}
    assert parse_target("previous+5%") == {"target": None, "target_rule": "previous", "improvement": 0.05}
    assert parse_target("previous - 2.5%") == {"target": None, "target_rule": "previous", "improvement": -0.025}
    assert parse_target("benchmark")["target_rule"] == "benchmark"
    with pytest.raises(ValueError, match="expected a number, 'previous', 'previous\\+N%'"):
        parse_target("lots")


# --- which standard is in force ---------------------------------------------------------------

T0 = datetime(2026, 1, 1)


def change(id, origin, green, valid_from=T0, retired=False, metric="m", dimensions="{}"):
    return StandardChange(
        id=id, metric_key=metric, dimensions=dimensions, origin=origin, target=green, red=0, green=green,
        retired=retired, valid_from=valid_from, changed_by="t", changed_at=valid_from, via="t",
    )


def greens(changes, at):
    return {s.key: s.spec.green for s in resolve(changes, at)}


def test_the_admins_standard_beats_the_plugin_default():
    assert greens([change(1, DEFAULT, 10)], T0) == {"m": 10}
    assert greens([change(1, DEFAULT, 10), change(2, ADMIN, 20)], T0) == {"m": 20}
    # A newer default does not undo the admin's choice.
    assert greens([change(1, DEFAULT, 10), change(2, ADMIN, 20), change(3, DEFAULT, 30)], T0) == {"m": 20}


def test_valid_from_decides_among_the_admins_versions():
    july = datetime(2026, 7, 1)
    changes = [change(1, ADMIN, 10), change(2, ADMIN, 20, valid_from=july), change(3, ADMIN, 30, valid_from=T0 + timedelta(days=1))]
    assert greens(changes, T0) == {"m": 10}
    assert greens(changes, datetime(2026, 3, 1)) == {"m": 30}
    assert greens(changes, july) == {"m": 20}  # set before change 3, but applies from later
    assert greens([change(1, ADMIN, 20, valid_from=july)], T0) == {}


def test_a_retired_default_is_no_longer_in_force():
    assert greens([change(1, DEFAULT, 10), change(2, DEFAULT, 10, retired=True)], T0) == {}
    assert greens([change(1, DEFAULT, 10), change(2, DEFAULT, 10, retired=True), change(3, DEFAULT, 15)], T0) == {"m": 15}


def test_standards_are_listed_whole_metric_first():
    changes = [change(1, ADMIN, 10, dimensions=dimensions_key({"segment": "A"})), change(2, ADMIN, 20)]
    assert [s.key for s in resolve(changes, T0)] == ["m", "m{segment=A}"]


# --- plugin defaults and admin changes in a real store ---------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """A fresh store on SQLite and, in a second run, on PostgreSQL."""
    url = f"sqlite:///{tmp_path / 'store.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("fresh_pg_db")
    store = Store(url)
    yield store
    store.engine.dispose()


@pytest.fixture
def registry():
    return build_registry(get_plugin_manager())


def test_plugin_defaults_are_recorded_once_changed_and_retired(store, registry):
    nps = StandardDefault("vc_nps", 30, red=0, green=30, owner="marketing")
    aov = StandardDefault("vc_aov", 120, red=80, green=110)
    assert record_defaults(store, {("vc_nps", "{}"): (nps, "value_creation"), ("vc_aov", "{}"): (aov, "value_creation")}) == 2
    assert record_defaults(store, {("vc_nps", "{}"): (nps, "value_creation"), ("vc_aov", "{}"): (aov, "value_creation")}) == 0
    stricter = StandardDefault("vc_nps", 40, red=10, green=40, owner="marketing")
    assert record_defaults(store, {("vc_nps", "{}"): (stricter, "value_creation")}) == 2  # nps changed, aov retired
    history = standard_history(store, "vc_nps", {})
    assert [(c.green, c.changed_by, c.origin) for c in history] == [(30, "plugin:value_creation", DEFAULT), (40, "plugin:value_creation", DEFAULT)]
    assert [(c.retired, c.via) for c in standard_history(store, "vc_aov", {})] == [(False, "plugin value_creation"), (True, "no longer shipped")]
    assert {s.key: s.origin for s in standards_in_force(store)} == {"vc_nps": DEFAULT}


def test_admin_changes_are_kept_with_who_and_when_and_move_the_change_marker(store, registry):
    marker = store.change_marker()
    spec = StandardDefault("vc_nps", 30, red=0, green=20)
    written = apply_admin_standards(store, registry, [AdminStandard(spec)], changed_by="alice", via="test")
    assert len(written) == 1 and store.change_marker() != marker
    marker = store.change_marker()
    # The same standard again changes nothing.
    assert apply_admin_standards(store, registry, [AdminStandard(spec)], changed_by="bob", via="test") == []
    # A standard that applies only from tomorrow is history now, but not yet in force.
    later = StandardDefault("vc_nps", 40, red=0, green=30)
    tomorrow = utcnow().replace(microsecond=0) + timedelta(days=1)
    apply_admin_standards(store, registry, [AdminStandard(later, tomorrow)], changed_by="bob", via="test")
    assert store.change_marker() == marker
    assert standards_in_force(store)[0].spec.green == 20
    assert standards_in_force(store, tomorrow)[0].spec.green == 30
    history = standard_history(store, "vc_nps", {})
    assert [(c.changed_by, c.green, c.valid_from == tomorrow) for c in history] == [("alice", 20, False), ("bob", 30, True)]
    assert all(c.changed_at <= utcnow() for c in history)


def test_a_default_that_contradicts_its_metric_fails_loudly(tmp_path, loaded_plugins):
    write_plugin_file(
        tmp_path, "wrong",
        "from crmmetrics import StandardDefault, hookimpl\n\n@hookimpl\ndef crmmetrics_standards():\n"
        "    return [StandardDefault('vc_complaint_rate', 50, red=10, green=40)]\n",
    )
    with pytest.raises(PluginError, match="plugin file:wrong: default standard for vc_complaint_rate: red 10 must be above green 40"):
        loaded_plugins(tmp_path)


def test_two_plugins_with_a_default_for_the_same_standard(tmp_path):
    source = (
        "from crmmetrics import StandardDefault, hookimpl\n\n@hookimpl\ndef crmmetrics_standards():\n"
        "    return [StandardDefault('sc_nps', 40, red=10, green=30)]\n"
    )
    write_plugin_file(tmp_path, "again", source)
    for file in (DATA / "plugins").glob("*.py"):
        (tmp_path / file.name).write_text(file.read_text())
    pm = get_plugin_manager(tmp_path)
    with pytest.raises(PluginError, match="default standard for sc_nps is given by two plugins: file:(again|kpis) and file:(again|kpis)"):
        collect_defaults(pm, build_registry(pm))


def test_the_shipped_standards_file_fits_the_built_in_metrics(registry):
    wanted = load_standards_file(config_dir() / "standards.toml")
    assert len(wanted) >= 15
    assert [check_against(item.spec, registry) for item in wanted] == [None] * len(wanted)
    processes = {str(registry.get(item.spec.metric).process) for item in wanted}
    assert {"multichannel_integration", "information_management", "performance_assessment"} <= processes


# --- the commands -----------------------------------------------------------------------------


@pytest.fixture
def admin(tmp_path, monkeypatch, crm_db):
    """``admin(*args)`` runs ``crmmetrics ARGS --config ...`` in-process on a fresh store."""
    config = write_config(tmp_path, crm_db.url)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()

    def run(*args, env=None):
        return runner.invoke(cli, [*args, "--config", str(config)], env=env, catch_exceptions=False)

    run.directory = tmp_path
    return run


def history(admin, key):
    done = admin("standards", "history", key, "--json")
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def test_set_list_and_history(admin):
    done = admin("standards", "set", "sc_complaints", "--target", "10", "--red", "20", "--green", "12", "--owner", "Service", "--by", "alice")
    assert done.exit_code == 0, done.output
    assert done.stdout == "sc_complaints: target 10, red 20, green 12, weight 1, owner Service\n"
    # Options left out keep the values in force; who changed it comes from $CRMMETRICS_USER here.
    done = admin("standards", "set", "sc_complaints", "--weight", "3")
    assert done.stdout == "sc_complaints: target 10, red 20, green 12, weight 3, owner Service\n"
    assert admin("standards", "set", "sc_complaints", "--weight", "3").stdout.endswith("(unchanged)\n")
    # Without --by or $CRMMETRICS_USER it is the operating-system user.
    admin("standards", "set", "sc_complaints", "--target", "previous+5%", env={"CRMMETRICS_USER": ""})
    admin("standards", "set", "sc_fcr_by_channel{channel_category=outlets}", "--target", "60", "--red", "40", "--green", "60")
    changes = history(admin, "sc_complaints")
    assert [(c["changed_by"], c["target"], c["weight"]) for c in changes] == [
        ("alice", 10.0, 1.0),
        ("test-admin", 10.0, 3.0),
        (getpass.getuser(), "previous+5%", 3.0),
    ]
    assert changes[0]["changed_at"] <= changes[1]["changed_at"] <= changes[2]["changed_at"]
    listed = {row["key"]: row for row in json.loads(admin("standards", "list", "--json").stdout)}
    assert set(listed) == {"sc_complaints", "sc_fcr_by_channel{channel_category=outlets}", "sc_nps"}
    assert listed["sc_nps"]["origin"] == "default" and listed["sc_nps"]["changed_by"] == "plugin:file:kpis"
    assert listed["sc_complaints"]["target"] == "previous+5%" and listed["sc_complaints"]["origin"] == "admin"
    assert listed["sc_fcr_by_channel{channel_category=outlets}"]["dimensions"] == {"channel_category": "outlets"}
    text = admin("standards", "history", "sc_complaints").stdout.splitlines()
    assert len(text) == 3 and "alice  (standards set)  target 10, red 20, green 12, weight 1, owner Service" in text[0]


def _state(admin):
    return admin("standards", "list", "--json").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set", "sc_nope", "--target", "1", "--red", "0", "--green", "1"), "Error: sc_nope: unknown metric 'sc_nope' (see 'crmmetrics metrics list')"),
        (("set", "sc_complaints", "--target", "10", "--red", "12", "--green", "20"),
         "Error: standard for sc_complaints: red 12 must be above green 20 for a metric that is lower is better"),
        (("set", "sc_nps", "--target", "20"), "Error: standard for sc_nps: target 20 must be at or above the green threshold 30 (red 10)"),
        (("set", "sc_complaints", "--target", "10", "--red", "abc", "--green", "12"), "Error: --red must be a number, got 'abc'"),
        (("set", "sc_complaints", "--target", "soon", "--red", "20", "--green", "12"), "Error: --target: expected a number, 'previous'"),
        (("set", "sc_complaints", "--target", "10"), "Error: sc_complaints: no standard yet, so --red, --green are needed"),
        (("set", "sc_complaints{segment=A}", "--target", "10", "--red", "20", "--green", "12"),
         "Error: standard for sc_complaints{segment=A}: metric sc_complaints has no dimension 'segment' (its dimensions: none)"),
        (("set", "sc_complaints{", "--target", "10", "--red", "20", "--green", "12"), "Error: 'sc_complaints{' is not a standard key"),
        (("set", "sc_nps", "--weight", "-2"), "Error: standard for sc_nps: weight must be 0 or more, got -2"),
        (("set", "sc_nps", "--valid-from", "next week"), "Error: --valid-from: expected an ISO date or date-time"),
        (("history", "sc_nope"), "Error: sc_nope: unknown metric 'sc_nope'"),
        (("import", "missing.toml"), "Error: missing.toml: standards file not found"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(admin, args, message):
    before = _state(admin)
    done = admin("standards", *args)
    assert done.exit_code == 2, done.output
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr
    assert done.stdout == ""
    assert _state(admin) == before


def test_a_version_dated_before_the_one_in_force_is_refused(admin):
    assert admin("standards", "set", "sc_complaints", "--target", "10", "--red", "20", "--green", "12",
                 "--valid-from", "2026-06-01").exit_code == 0
    before = _state(admin)
    done = admin("standards", "set", "sc_complaints", "--target", "8", "--valid-from", "2026-01-01")
    assert done.exit_code == 2
    assert done.stderr == (
        "Error: standard for sc_complaints: valid from 2026-01-01 00:00:00 is before the version in force "
        "(valid from 2026-06-01 00:00:00), so it would never apply\n"
    )
    assert _state(admin) == before
    # Dated after it (or undated: from now) it applies.
    assert admin("standards", "set", "sc_complaints", "--target", "8", "--valid-from", "2026-07-01").exit_code == 0
    listed = {row["key"]: row for row in json.loads(_state(admin))}
    assert listed["sc_complaints"]["target"] == 8


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[standards.sc_complaints]\ntarget = 10\nred = 20\ngreen = 12\n[standards.sc_engagement]\ntarget = 50\nred = 60\ngreen = 40\n",
         "standards.sc_engagement: red 60 must be below green 40 for a metric that is higher is better"),
        ("[standards.sc_complaints]\ntarget = 10\nred = 20\ngreen = 12\n[standards.sc_nope]\ntarget = 1\nred = 0\ngreen = 1\n",
         "standards.sc_nope: unknown metric 'sc_nope'"),
        ("[standards.sc_complaints]\ntarget = 10\nred = 20\ngreen = 12\ncolour = 'red'\n", "standards.sc_complaints.colour: unknown key"),
        ("[standards.sc_complaints]\ntarget = 10\nred = 'high'\ngreen = 12\n", "standards.sc_complaints.red: red must be a number, got 'high'"),
        ("[standards.sc_complaints]\ntarget = 10\ngreen = 12\n", "standards.sc_complaints.red: required key is missing"),
        ("[standards.sc_complaints]\ntarget = 10\nred = 20\ngreen = 12\nvalid_from = 'July'\n", "standards.sc_complaints.valid_from: expected a TOML date"),
        ("[standard.sc_complaints]\ntarget = 10\n", "standard: unknown key (a standards file has only [standards.KEY] tables)"),
        ("[standards.sc_complaints\n", "not valid TOML"),
    ],
)
def test_a_bad_standards_file_imports_nothing(admin, text, message):
    path = admin.directory / "bad.toml"
    path.write_text(text)
    before = _state(admin)
    done = admin("standards", "import", str(path))
    assert done.exit_code == 2, done.output
    assert done.stderr.startswith(f"Error: {path}: {message}") and done.stderr.count("\n") == 1, done.stderr
    assert _state(admin) == before


def test_import_export_round_trip(admin):
    done = admin("standards", "import", str(DATA / "standards.toml"))
    assert done.exit_code == 0, done.output
    assert done.stdout.endswith("6 standards, 6 changed, 0 unchanged\n")
    exported = admin.directory / "exported.toml"
    assert admin("standards", "export", "-o", str(exported)).exit_code == 0
    text = exported.read_text()
    assert '[standards."sc_fcr_by_channel{channel_category=outlets}"]' in text
    assert 'target = "previous+10%"' in text and "# Net Promoter Score, default from file:kpis" in text
    # Importing what was exported pins the plugin default as the admin's; nothing else changes.
    done = admin("standards", "import", str(exported))
    assert done.stdout.endswith("7 standards, 1 changed, 6 unchanged\n")
    assert admin("standards", "import", str(exported)).stdout.endswith("7 standards, 0 changed, 7 unchanged\n")
    assert history(admin, "sc_nps")[-1]["origin"] == "admin"
    assert history(admin, "sc_engagement")[0]["via"] == "standards import standards.toml"
