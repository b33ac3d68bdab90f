"""pytest plugin for crmmetrics and its plugin authors (auto-loaded through the pytest11 entry point).

Fixtures:

- ``crm_db``: an empty source database with the canonical tables (SQLite in ``tmp_path``);
  ``crm_db.insert("orders", [{...}, ...])`` adds rows.
- ``compute``: ``compute(key, source_url, as_of=..., params=None, period=None)`` runs one metric
  through the real plugin manager, runner and store, and returns a ``ComputedMetric`` whose
  ``current(**dims)`` and ``previous(**dims)`` give the stored values.
- ``demo_db``: a small seeded demo source (400 customers, as of 2026-06-15), built once per session.
- ``metrics_exposition``: ``metrics_exposition(source_url, keys, as_of=..., **options)`` runs the
  metrics into a fresh store and returns the ``/metrics`` exposition rendered by the exporter
  and parsed back with prometheus_client's parser (``.value(sample_name, **labels)``;
  ``.metric_value(key, period, **dimensions)`` finds a metric's value in whichever family holds it).
- ``metric_history(source_url, keys, as_of=[...], store_url=..., period=None)`` (a function, not
  a fixture): the metrics' current values as of each of several moments, for histories.
- ``loaded_plugins``: ``loaded_plugins(plugins_dir=None)`` loads the plugins as the service does
  and returns their metric definitions (``.registry``) and default standards (``.standards``),
  checked against each other.
- ``crmmetrics_cli``: ``crmmetrics_cli(*args, env=None)`` runs the real ``crmmetrics`` command in
  a subprocess (with every installed plugin, and the plugins' own CLI commands) and returns
  the ``subprocess.CompletedProcess`` with text ``stdout`` and ``stderr``.

The built-in plugins' own tests use these same fixtures.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from crmmetrics.core import schema
from crmmetrics.core.config import parse_config
from crmmetrics.core.vocabulary import PeriodLabel, RunStatus
from crmmetrics.serve.app import App
from crmmetrics.store.store import Observation, Run

DEMO_AS_OF = datetime(2026, 6, 15)
DEMO_CUSTOMERS = 400
DEMO_SEED = 7


class CrmDatabase:
    """A source database with the canonical tables, for building test data by hand."""

    def __init__(self, url: str) -> None:
        self.url = url
        # DuckDB: no pooled connection kept open, since a read-write connection in this process
        # would stop the source from opening the same file read-only.
        options: dict[str, Any] = {"poolclass": NullPool} if url.startswith("duckdb") else {}
        self.engine: Engine = create_engine(url, **options)
        schema.create_tables(self.engine)

    def insert(self, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
        rows = [dict(row) for row in rows]
        with self.engine.begin() as connection:
            # One statement per run of rows with the same keys: a many-row insert takes its
            # columns from the first row and would silently drop keys only later rows have.
            for _keys, group in itertools.groupby(rows, key=lambda row: sorted(row)):
                connection.execute(schema.TABLES[table].insert(), list(group))

    def dispose(self) -> None:
        self.engine.dispose()


def _dims(dimensions: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(dimensions.items()))


@dataclass
class ComputedMetric:
    """The outcome of one run of one metric: the run record and the stored values."""

    run: Run
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float | None] = field(default_factory=dict)
    customer_values: list[dict[str, Any]] = field(default_factory=list)
    #: Period label -> why its value is missing, when an input in ``needs`` had no rows.
    missing: dict[str, str] = field(default_factory=dict)

    def current(self, **dimensions: str) -> float | None:
        return self._get(PeriodLabel.CURRENT, dimensions)

    def previous(self, **dimensions: str) -> float | None:
        return self._get(PeriodLabel.PREVIOUS, dimensions)

    def _get(self, period: str, dimensions: Mapping[str, str]) -> float | None:
        if self.run.status != RunStatus.SUCCESS:
            raise AssertionError(f"metric {self.run.metric_key} failed: {self.run.error}")
        key = (period, _dims(dimensions))
        if key not in self.values:
            known = sorted({dict(d).__repr__() for p, d in self.values if p == period})
            raise KeyError(f"no {period} value for dimensions {dict(dimensions)}; stored: {', '.join(known) or 'none'}")
        return self.values[key]

    def dimension_values(self, period: str = PeriodLabel.CURRENT) -> dict[tuple[tuple[str, str], ...], float | None]:
        return {dims: value for (p, dims), value in self.values.items() if p == period}

    def by_dimension_values(self, period: str = PeriodLabel.CURRENT) -> dict[tuple[str, ...], float | None]:
        """``{("e_commerce",): 80.0, (): 75.0}``: values keyed by their dimension values (in the
        order of the sorted dimension names), ``()`` for the undimensioned total."""
        return {tuple(value for _, value in dims): number for dims, number in self.dimension_values(period).items()}


def compute_metric(
    key: str,
    source_url: str,
    *,
    store_url: str,
    as_of: datetime | date,
    params: Mapping[str, Any] | None = None,
    period: str | None = None,
    plugins_dir: str | Path | None = None,
) -> ComputedMetric:
    """Run metric ``key`` once on ``source_url`` as of ``as_of`` and read back what was stored."""
    if not isinstance(as_of, datetime):
        as_of = datetime(as_of.year, as_of.month, as_of.day)
    metric: dict[str, Any] = {}
    if params:
        metric["params"] = dict(params)
    if period:
        metric["period"] = period
    service: dict[str, Any] = {"as_of": as_of}
    if plugins_dir is not None:
        service["plugins_dir"] = str(plugins_dir)
    config = parse_config(
        {
            "source": {"url": source_url},
            "store": {"url": store_url},
            "service": service,
            "metrics": {key: metric} if metric else {},
        },
        None,
    )
    app = App.from_config(config)
    try:
        run = app.runner.run_metric(key)
    finally:
        app.source.dispose()
    with app.store.session() as session:
        rows = session.exec(select(Observation).where(Observation.run_id == run.id)).all()
    import json

    values = {(row[0].period_label, _dims(json.loads(row[0].dimensions))): row[0].value for row in rows}
    customer_values = app.store.customer_values(key) if run.status == RunStatus.SUCCESS else []
    missing = app.store.missing_reasons(run.id)
    app.store.engine.dispose()
    return ComputedMetric(run=run, values=values, customer_values=customer_values, missing=missing)


def metric_history(
    source_url: str,
    keys: Iterable[str],
    as_of: Iterable[datetime],
    *,
    store_url: str,
    period: str | None = None,
) -> dict[str, list[dict[tuple[tuple[str, str], ...], float | None]]]:
    """Run each metric as of each moment in ``as_of`` (through the real runner and store) and
    return, per metric, one ``{dimensions: current value}`` per moment, in order. ``period``
    overrides every metric's period (e.g. ``"month"`` for a monthly history)."""
    import json

    keys = list(keys)
    metrics = {key: ({"period": period} if period else {}) for key in keys}
    config = parse_config({"source": {"url": source_url}, "store": {"url": store_url}, "metrics": metrics}, None)
    app = App.from_config(config)
    history: dict[str, list[dict[tuple[tuple[str, str], ...], float | None]]] = {key: [] for key in keys}
    try:
        for moment in as_of:
            app.runner.now = lambda moment=moment: moment
            for key in keys:
                run = app.runner.run_metric(key)
                if run.status != RunStatus.SUCCESS:
                    raise AssertionError(f"metric {key} failed as of {moment}: {run.error}")
                with app.store.session() as session:
                    rows = session.exec(select(Observation).where(Observation.run_id == run.id)).all()
                history[key].append(
                    {_dims(json.loads(row[0].dimensions)): row[0].value for row in rows if row[0].period_label == PeriodLabel.CURRENT}
                )
    finally:
        app.source.dispose()
        app.store.engine.dispose()
    return history


@pytest.fixture
def crm_db(tmp_path: Path) -> Iterable[CrmDatabase]:
    """An empty canonical source database (SQLite) to fill by hand."""
    database = CrmDatabase(f"sqlite:///{tmp_path / 'crm.sqlite'}")
    yield database
    database.dispose()


@pytest.fixture
def compute(tmp_path: Path):
    """``compute(key, source_url, as_of=..., params=None, period=None)`` -> ComputedMetric."""
    store_url = f"sqlite:///{tmp_path / 'store.sqlite'}"

    def run(key: str, source_url: str, as_of: datetime | date = DEMO_AS_OF, **options: Any) -> ComputedMetric:
        return compute_metric(key, source_url, store_url=store_url, as_of=as_of, **options)

    return run


@dataclass(frozen=True)
class DemoDatabase:
    url: str
    as_of: datetime
    customers: int
    seed: int


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> DemoDatabase:
    """A seeded demo source with 400 customers as of 2026-06-15, generated once per session."""
    from crmmetrics.data.demo import generate_demo

    path = tmp_path_factory.mktemp("crmmetrics-demo") / "crm.sqlite"
    url = f"sqlite:///{path}"
    generate_demo(url, customers=DEMO_CUSTOMERS, seed=DEMO_SEED, as_of=DEMO_AS_OF.date())
    return DemoDatabase(url=url, as_of=DEMO_AS_OF, customers=DEMO_CUSTOMERS, seed=DEMO_SEED)


@dataclass
class ParsedExposition:
    """A ``/metrics`` exposition as Prometheus reads it: the text and its parsed families."""

    text: str
    families: list[Any]

    def samples(self, name: str, **labels: str) -> list[Any]:
        """Samples named ``name`` (e.g. ``crmmetrics_runs_total``) whose labels include ``labels``.

        As in PromQL, a label a sample does not have matches ``""``: ``segment=""`` selects the
        total of a metric broken down by segment.
        """
        return [
            sample
            for family in self.families
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k, "") == v for k, v in labels.items())
        ]

    def metric_value(self, metric: str, period: str = PeriodLabel.CURRENT, **dimensions: str) -> float | None:
        """The exported value of ``metric`` for ``period`` and exactly these dimension values (none:
        its total), whichever value family holds it (``crmmetrics_metric[_by_...]_<unit>``), in
        that family's base unit (a percent as a 0-1 ratio); None when it is not exported."""
        own = ("metric", "process", "perspective", "period")
        matches = [
            sample
            for family in self.families
            for sample in family.samples
            if sample.name.startswith("crmmetrics_metric_")
            and not sample.name.endswith("_timestamp_seconds")  # the period bounds
            and sample.labels.get("metric") == metric
            and sample.labels.get("period") == period
            and {k: v for k, v in sample.labels.items() if k not in own} == dimensions
        ]
        assert len(matches) <= 1, f"{metric} {period} {dimensions} is exported {len(matches)} times"
        return matches[0].value if matches else None

    def value(self, name: str, **labels: str) -> float:
        """The value of the one sample that matches; AssertionError naming the candidates otherwise."""
        matches = self.samples(name, **labels)
        if len(matches) != 1:
            candidates = "; ".join(str(sample.labels) for sample in self.samples(name)) or "none"
            raise AssertionError(f"{len(matches)} samples of {name} match {labels}; samples of {name}: {candidates}")
        return matches[0].value


def render_exposition(store_url: str) -> ParsedExposition:
    """Render ``/metrics`` over the store at ``store_url`` with the real exporter and parse it."""
    from prometheus_client.parser import text_string_to_metric_families

    from crmmetrics.readers.exporter import Exposition
    from crmmetrics.store.store import Store

    store = Store(store_url)
    try:
        text = Exposition(store).body().decode()
    finally:
        store.engine.dispose()
    return ParsedExposition(text=text, families=list(text_string_to_metric_families(text)))


@pytest.fixture
def metrics_exposition(tmp_path: Path):
    """``metrics_exposition(source_url, keys, as_of=..., **options)`` -> ParsedExposition.

    Runs each metric in ``keys`` through the real runner into one fresh store (``options`` as
    for ``compute``: params, period, plugins_dir), then renders and parses ``/metrics``. A failed
    run is exported too (``crmmetrics_run_up`` 0), so check it rather than assume success.
    """
    counter = itertools.count()

    def run(source_url: str, keys: Iterable[str], as_of: datetime | date = DEMO_AS_OF, **options: Any) -> ParsedExposition:
        store_url = f"sqlite:///{tmp_path / f'exposition-{next(counter)}.sqlite'}"
        for key in keys:
            compute_metric(key, source_url, store_url=store_url, as_of=as_of, **options)
        return render_exposition(store_url)

    return run


@dataclass
class LoadedPlugins:
    """What the plugin manager loaded: the plugins, their metrics and their default standards."""

    pm: Any
    registry: Any  # crmmetrics.compute.registry.Registry: .get(key), .plugin_of[key]
    standards: dict[str, tuple[Any, str]]  # standard label -> (StandardDefault, plugin name)


@pytest.fixture
def loaded_plugins():
    """``loaded_plugins(plugins_dir=None)`` -> LoadedPlugins, loaded exactly as the service loads them.

    A default standard that contradicts its metric (wrong direction, unknown dimension) raises
    PluginError here, as it would when the service starts.
    """
    from crmmetrics.compute.plugins import get_plugin_manager
    from crmmetrics.compute.registry import build_registry
    from crmmetrics.compute.standard_defaults import collect_defaults

    def load(plugins_dir: str | Path | None = None) -> LoadedPlugins:
        pm = get_plugin_manager(plugins_dir)
        registry = build_registry(pm)
        defaults = collect_defaults(pm, registry)
        return LoadedPlugins(pm=pm, registry=registry, standards={spec.label: (spec, plugin) for spec, plugin in defaults.values()})

    return load


@pytest.fixture
def crmmetrics_cli(tmp_path: Path):
    """``crmmetrics_cli(*args, env=None)`` runs ``python -m crmmetrics ARGS`` in ``tmp_path``."""
    import os
    import subprocess
    import sys

    def run(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "crmmetrics", *args],
            cwd=tmp_path,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=300,
        )

    return run
