"""The store: crmmetrics' own memory of definitions, runs, observations and model outputs.

SQLModel tables on any SQLAlchemy URL (a SQLite file by default, PostgreSQL in production).
Only the runner writes runs and observations; readers (exporter, scorecard, dashboards) read.
Times are naive UTC (``NaiveDatetime`` fields: SQLite would drop a timezone anyway). Dimensions are kept as canonical JSON text (sorted keys) so that the
same combination always compares equal.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from datetime import datetime
from types import MappingProxyType
from typing import Any

import sqlalchemy.exc
from pydantic import NaiveDatetime
from sqlalchemy import Index, and_, case, func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

from crmmetrics.core.config import redact_url
from crmmetrics.core.definitions import MetricDefinition
from crmmetrics.core.errors import StoreError, StoreMissing
from crmmetrics.core.hookspecs import FinishedRun, ObservedValue
from crmmetrics.core.periods import CALENDAR, Period, utcnow
from crmmetrics.core.vocabulary import PeriodLabel, RunStatus
from crmmetrics.data.engines import connection_problem

from .engine import open_store_engine


def shown_table_markers() -> tuple[Any, ...]:
    """Scalar subqueries (fresh per call) for the store's other tables that readers show, each
    moving when what the table holds in force changes; ``Store.change_marker`` adds them to its
    single query. Declared here, the one place: a table whose changes should re-render the
    exposition and the page is added to this tuple."""
    from .standards import in_force_count  # standards builds on this module

    return (in_force_count(),)


def dimensions_key(dimensions: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(dimensions.items())), separators=(",", ":"))


class MetricRecord(SQLModel, table=True):
    """A metric definition as last seen from a plugin (so readers know names and units)."""

    __tablename__ = "metric_definitions"
    key: str = Field(primary_key=True)
    plugin: str
    name: str
    description: str
    process: str
    perspective: str
    value_lens: str
    unit: str
    direction: str
    dimensions: str  # JSON list
    formula: str = ""
    source: str = ""
    seen_at: NaiveDatetime = Field(default_factory=utcnow)


class Run(SQLModel, table=True):
    """One computation of one metric: when, how long, and whether it worked.

    Written when it starts (``running``, no finish yet) and completed when it ends
    (``success`` or ``failed``). A run still ``running`` when its process died is marked
    ``interrupted`` by the next process that starts on the store.
    """

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_metric_id", "metric_key", "id"),
        Index("ix_runs_metric_status_id", "metric_key", "status", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    metric_key: str = Field(index=True)
    plugin: str
    started_at: NaiveDatetime
    finished_at: NaiveDatetime | None = None
    duration_seconds: float | None = None
    status: str  # a RunStatus: running, then success or failed; interrupted if its process died
    error: str | None = None
    rows: int = 0
    period: str = ""  # the period spec used, e.g. "month"
    owner: str = Field(default="", sa_column_kwargs={"server_default": ""})  # host:pid:token of the process
    # What the inputs held up to the end of each closed period when this run computed it (or
    # reused it): crmmetrics.core.inputs.source_fingerprint with the parameters, JSON. A later run
    # with the same fingerprint reuses that period's stored values instead of computing them
    # again. The current period has one only when it had ended before the run's as-of time.
    previous_fingerprint: str | None = None
    current_fingerprint: str | None = None

    def for_plugins(self) -> FinishedRun:
        """A frozen copy of this finished run for ``crmmetrics_run_finished``."""
        assert self.id is not None and self.finished_at is not None and self.duration_seconds is not None
        return FinishedRun(
            id=self.id,
            metric_key=self.metric_key,
            plugin=self.plugin,
            started_at=self.started_at,
            finished_at=self.finished_at,
            duration_seconds=self.duration_seconds,
            status=RunStatus(self.status),
            error=self.error,
            rows=self.rows,
            period=self.period,
        )


class MetricRunTotals(SQLModel, table=True):
    """Per metric: finished runs and failures counted as they finish (pruning old runs does not
    lower them: they are exported as counters), and its last finished and last successful run,
    so that readers look up one row per metric instead of scanning the runs."""

    __tablename__ = "metric_run_totals"
    metric_key: str = Field(primary_key=True)
    runs: int = 0
    failures: int = 0
    last_run_id: int | None = None
    last_success_run_id: int | None = None
    # Runs of the metric that ``Store.prune`` deleted: it moves the readers' markers, so that
    # a reader that keeps the metric's history reads it again without the pruned periods.
    pruned: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


def _count_finished(session: Session, run: Run) -> None:
    """Add a finished run to its metric's totals (in the run's own transaction)."""
    table = MetricRunTotals.__table__
    failed = 1 if run.status in (RunStatus.FAILED, RunStatus.INTERRUPTED) else 0
    success_id = run.id if run.status == RunStatus.SUCCESS else None
    updated = session.execute(
        table.update()
        .where(table.c.metric_key == run.metric_key)
        .values(
            runs=table.c.runs + 1,
            failures=table.c.failures + failed,
            last_run_id=case((table.c.last_run_id.is_(None) | (table.c.last_run_id < run.id), run.id), else_=table.c.last_run_id),
            last_success_run_id=(
                case(
                    (table.c.last_success_run_id.is_(None) | (table.c.last_success_run_id < run.id), run.id),
                    else_=table.c.last_success_run_id,
                )
                if success_id is not None
                else table.c.last_success_run_id
            ),
        )
    )
    if not updated.rowcount:
        session.execute(
            table.insert().values(
                metric_key=run.metric_key, runs=1, failures=failed, last_run_id=run.id, last_success_run_id=success_id
            )
        )


def _count_pruned(connection: Any, metric_key: str, count: int) -> None:
    """Add runs a prune deleted to their metric's totals (a metric with only backfilled runs gets a row)."""
    table = MetricRunTotals.__table__
    updated = connection.execute(table.update().where(table.c.metric_key == metric_key).values(pruned=table.c.pruned + count))
    if not updated.rowcount:
        connection.execute(table.insert().values(metric_key=metric_key, runs=0, failures=0, pruned=count))


class Observation(SQLModel, table=True):
    """One value of a metric for one period and one combination of dimensions."""

    __tablename__ = "observations"
    # A metric's values by period: the to-date outlook's windows (Store.period_points) and the
    # reuse of closed periods seek the periods they ask for, not every value of the metric.
    __table_args__ = (Index("ix_observations_metric_period", "metric_key", "period_start", "period_end"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    metric_key: str
    dimensions: str = "{}"
    period_label: str  # a PeriodLabel
    period_start: NaiveDatetime
    period_end: NaiveDatetime
    value: float | None = None
    computed_at: NaiveDatetime

    def for_plugins(self) -> ObservedValue:
        """A frozen copy of this value for ``crmmetrics_run_finished``."""
        return ObservedValue(
            metric_key=self.metric_key,
            period_label=PeriodLabel(self.period_label),
            period_start=self.period_start,
            period_end=self.period_end,
            dimensions=MappingProxyType(json.loads(self.dimensions)),
            value=self.value,
            computed_at=self.computed_at,
        )


class BackfilledRun(SQLModel, table=True):
    """A run that ``crmmetrics backfill`` made for a past period (crmmetrics.compute.backfill).

    Its observations are ordinary history; readers of the *latest* values and model outputs
    pass over backfilled runs, so a backfill never replaces what the live runs show.
    """

    __tablename__ = "backfilled_runs"
    run_id: int = Field(foreign_key="runs.id", primary_key=True)
    metric_key: str = Field(index=True)
    period_start: NaiveDatetime  # the run's current period
    period_end: NaiveDatetime


class HistoryPeriod(SQLModel, table=True):
    """Per metric and current period, the newest successful run that stays in its history
    whatever runs follow: a live run of a calendar period or a backfilled run (the rules are
    crmmetrics.readers.history.history_snapshots'). Written in the transaction where the run
    finishes, so that a reader of the history reads one row per metric and period, not one per
    run; a live run of a to-date or trailing period counts only while it is the metric's latest
    (``MetricRunTotals.last_success_run_id``), so it is not kept here."""

    __tablename__ = "history_periods"
    metric_key: str = Field(primary_key=True)
    period_start: NaiveDatetime = Field(primary_key=True)
    period_end: NaiveDatetime = Field(primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)


def stays_in_history(run: Run, backfilled: bool) -> bool:
    """Whether a successful run's current period stays in its metric's history (a HistoryPeriod)."""
    return run.status == RunStatus.SUCCESS and (run.period in CALENDAR or backfilled)


def history_period_candidates() -> Any:
    """(metric, period start, period end, newest run) of every run that stays in the history,
    read from the runs: what ``history_periods`` holds, for bulk loads and checks."""
    obs, runs = Observation.__table__.c, Run.__table__.c
    return (
        select(obs.metric_key, obs.period_start, obs.period_end, func.max(obs.run_id))
        .join(Run.__table__, runs.id == obs.run_id)
        .where(obs.period_label == PeriodLabel.CURRENT, runs.status == RunStatus.SUCCESS)
        .where(or_(runs.period.in_(CALENDAR), runs.id.in_(select(BackfilledRun.__table__.c.run_id))))
        .group_by(obs.metric_key, obs.period_start, obs.period_end)
    )


def _keep_in_history(connection: Any, metric_key: str, start: datetime, end: datetime, run_id: int) -> None:
    """Make ``run_id`` the history's run of this metric and period, unless a newer one is."""
    table = HistoryPeriod.__table__
    updated = connection.execute(
        table.update()
        .where(table.c.metric_key == metric_key, table.c.period_start == start, table.c.period_end == end)
        .values(run_id=case((table.c.run_id < run_id, run_id), else_=table.c.run_id))
    )
    if not updated.rowcount:
        connection.execute(table.insert().values(metric_key=metric_key, period_start=start, period_end=end, run_id=run_id))


class MissingValue(SQLModel, table=True):
    """Why a run stored a missing value for a period: the input the source lacked (crmmetrics.core.inputs)."""

    __tablename__ = "missing_values"
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    metric_key: str
    period_label: str  # a PeriodLabel
    reason: str


class ModelFit(SQLModel, table=True):
    """A model a run fitted (e.g. BG/NBD, Gamma-Gamma): parameters, fit quality and convergence."""

    __tablename__ = "model_fits"
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    metric_key: str = Field(index=True)
    period_label: str  # a PeriodLabel
    model: str  # "bgnbd", "gamma_gamma", ...
    calibration_end: NaiveDatetime  # the data it was fitted on ends here (exclusive)
    parameters: str  # JSON object name -> value
    log_likelihood: float | None = None
    customers: int = 0
    converged: bool = True
    message: str = ""
    fitted_at: NaiveDatetime


class CustomerValue(SQLModel, table=True):
    """Per-customer outputs of a model (P(alive), expected purchases, CLV...) from the latest run."""

    __tablename__ = "customer_values"
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    metric_key: str = Field(index=True)
    # No index: the values are read and replaced by metric and pruned by run, never looked up by
    # customer, and keeping one was a third of inserting a million customers' values (store 0009).
    customer_id: int
    values: str  # JSON object of the model outputs
    computed_at: NaiveDatetime


#: Significant digits of the model outputs kept per customer: far beyond what a fitted model
#: knows (a CLV to a millionth of a cent), and 2.4x faster to write than the 17 of float ``repr``.
OUTPUT_DIGITS = 12


def _outputs_json(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each row's outputs (every field but ``customer_id``) as a JSON object, numbers rounded to
    :data:`OUTPUT_DIGITS` significant digits (``%.12g``: an integral value is written without a
    fraction, ``1`` for 1.0, as JSON allows). Rows of the same fields, all finite floats (what
    the models give), are written by one ``%`` template: a million customers' values are 4
    million numbers, and their text was the largest part of storing them. Other rows (None,
    NaN, a bool, an int, other fields) are written by ``json.dumps``, their finite floats
    rounded the same way."""
    if not rows:
        return []
    first = rows[0].keys()
    if all(row.keys() == first for row in rows):
        fields = [name for name in first if name != "customer_id"]
        values = [tuple(row[name] for name in fields) for row in rows] if len(fields) < 2 else list(map(itemgetter(*fields), rows))
        # (a sum that overflows to infinity only sends the rows to json.dumps)
        if {type(value) for value_row in values for value in value_row} <= {float} and math.isfinite(sum(map(sum, values))):
            template = "{" + ", ".join(json.dumps(name).replace("%", "%%") + f": %.{OUTPUT_DIGITS}g" for name in fields) + "}"
            return [template % value_row for value_row in values]
    return [json.dumps({k: _rounded(v) for k, v in row.items() if k != "customer_id"}) for row in rows]


def _rounded(value: Any) -> Any:
    return float(f"%.{OUTPUT_DIGITS}g" % value) if type(value) is float and math.isfinite(value) else value


def _insert_customer_values(connection: Any, run: Run, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert a run's customer values with one ``executemany`` on the DBAPI cursor.

    A million customers are a normal customer base: SQLAlchemy's per-row parameter processing
    cost more than the insert itself there, and only ``computed_at``, the same in every row,
    needs it (once)."""
    table = CustomerValue.__table__
    columns = ["run_id", "metric_key", "customer_id", "values", "computed_at"]
    compiled = table.insert().compile(dialect=connection.dialect, column_keys=columns)
    process = table.c.computed_at.type.dialect_impl(connection.dialect).bind_processor(connection.dialect)
    fixed = {"run_id": run.id, "metric_key": run.metric_key,
             "computed_at": process(run.finished_at) if process else run.finished_at}
    texts = _outputs_json(rows)
    customers = [int(row["customer_id"]) for row in rows]
    if compiled.positional:
        order = list(compiled.positiontup)
        at_customer, at_text = order.index("customer_id"), order.index("values")
        slots = [fixed.get(name) for name in order]

        def parameter(customer: int, text: str) -> tuple[Any, ...]:
            slots[at_customer], slots[at_text] = customer, text
            return tuple(slots)

        parameters = [parameter(customer, text) for customer, text in zip(customers, texts)]
    else:
        parameters = [{**fixed, "customer_id": customer, "values": text} for customer, text in zip(customers, texts)]
    connection.exec_driver_sql(compiled.string, parameters)


@dataclass(frozen=True)
class LatestObservation:
    metric_key: str
    dimensions: dict[str, str]
    period_label: str
    period_start: datetime
    period_end: datetime
    value: float | None
    computed_at: datetime
    reason: str | None = None  # why the value is missing, when the runner knows (an input had no rows)
    stored_dimensions: str | None = field(default=None, compare=False, repr=False)  # as stored: canonical JSON

    @property
    def dimensions_key(self) -> str:
        """The dimensions as canonical JSON (:func:`dimensions_key`), without encoding them again."""
        return self.stored_dimensions if self.stored_dimensions is not None else dimensions_key(self.dimensions)


@dataclass(frozen=True)
class PeriodPoint:
    """The value one successful run stored for its current period (one combination of dimensions)."""

    run_id: int
    period_start: datetime
    period_end: datetime
    dimensions: str  # canonical JSON, as dimensions_key makes it
    value: float | None


@dataclass(frozen=True)
class RunPeriod(Period):
    """A period one run computed, with the reason its value is missing (None: it has values)."""

    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "missing_reason": self.reason}


@dataclass(frozen=True)
class MetricHealth:
    metric_key: str
    plugin: str
    last_status: str
    last_duration_seconds: float
    last_run_at: datetime
    last_success_at: datetime | None
    failures: int
    runs: int
    last_error: str | None


@dataclass(frozen=True)
class PruneResult:
    runs: int
    observations: int
    older_than: datetime
    dry_run: bool


class Store:
    """Reads and writes the store database.

    ``Store(url)`` is for commands that write (serve, run, standards edits): a new store is
    created at the newest schema revision, one made by crmmetrics 0.1.0 is stamped, and a store
    at any other revision is refused (StoreError naming 'crmmetrics store upgrade').
    ``Store(url, read_only=True)`` is for readers (scorecard, standards list, the page in a
    reader): it never creates, stamps or writes anything, and refuses a missing store.
    """

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        from . import migrations

        self.url = url
        self.read_only = read_only
        self.where = redact_url(url)
        self.engine: Engine = open_store_engine(url, read_only=read_only)
        self._latest_runs: dict[int, list[LatestObservation]] = {}  # see latest_observations
        try:
            if read_only:
                with self.engine.connect() as connection:
                    found = migrations.state(connection)
                if found.kind == "empty":
                    raise StoreMissing(f"store {self.where} has no crmmetrics tables (nothing has been run yet: run 'crmmetrics run' first)")
                problem = migrations.refusal(found, self.where)
                if problem:
                    raise StoreError(problem)
            else:
                migrations.prepare(self.engine, self.where)
        except sqlalchemy.exc.DBAPIError as exc:
            self.engine.dispose()
            raise StoreError(f"store {self.where}: cannot open: {connection_problem(exc)}") from None
        except StoreError:
            self.engine.dispose()
            raise

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def record_definitions(self, definitions: Iterable[MetricDefinition], plugin_of: Mapping[str, str]) -> None:
        with self.session() as session:
            for definition in definitions:
                session.merge(
                    MetricRecord(
                        key=definition.key,
                        plugin=plugin_of.get(definition.key, ""),
                        name=definition.name,
                        description=definition.description,
                        process=str(definition.process),
                        perspective=str(definition.perspective),
                        value_lens=str(definition.value_lens),
                        unit=definition.unit,
                        direction=str(definition.direction),
                        dimensions=json.dumps(list(definition.dimensions)),
                        formula=definition.formula,
                        source=definition.source,
                    )
                )
            session.commit()

    def start_run(self, run: Run, backfilled: Period | None = None) -> Run:
        """Record that a run has started (status ``running``), before anything is computed.

        ``backfilled``: the past period a run of ``crmmetrics backfill`` computes; marked now, so
        that a backfill killed mid-run leaves an ``interrupted`` run known as backfilled.
        """
        run.status = RunStatus.RUNNING
        with self.session() as session:
            session.add(run)
            session.flush()
            if backfilled is not None:
                session.add(
                    BackfilledRun(run_id=run.id, metric_key=run.metric_key, period_start=backfilled.start, period_end=backfilled.end)
                )
            session.commit()
        return run

    def finish_run(
        self,
        run: Run,
        observations: Sequence[Observation] = (),
        customer_values: Sequence[Mapping[str, Any]] = (),
        missing: Mapping[str, str] | None = None,
        model_fits: Sequence[Mapping[str, Any]] = (),
        backfilled: bool = False,
    ) -> Run:
        """Complete a started run with its observations (and model outputs) in one transaction:
        a process killed before the commit leaves the run ``running`` and no observation.

        ``missing`` maps a period label to the reason its value is missing; ``model_fits`` are
        the models the run fitted (``ComputeContext.record_model_fit``). A ``backfilled`` run (of
        ``crmmetrics backfill``, marked by ``start_run``) keeps no customer values (a snapshot of
        the latest run) and is not counted in the metric's totals, so the latest values, the run
        health and the scheduler's catch-up stay those of the live runs.
        """
        with self.session() as session:
            if run.id is None:
                session.add(run)
                session.flush()
            else:
                run = session.merge(run)
            session.flush()
            if not backfilled:
                _count_finished(session, run)
            for observation in observations:
                observation.run_id = run.id
                session.add(observation)
            if run.status == RunStatus.SUCCESS and observations:
                # the history's run of its period, as history_snapshots chooses it (a backfilled
                # run is one start_run marked)
                marked = run.period not in CALENDAR and session.get(BackfilledRun, run.id) is not None
                if stays_in_history(run, marked):
                    session.flush()
                    for start, end in sorted({(o.period_start, o.period_end) for o in observations if o.period_label == PeriodLabel.CURRENT}):
                        _keep_in_history(session.connection(), run.metric_key, start, end, run.id)
            for label, reason in (missing or {}).items():
                session.add(MissingValue(run_id=run.id, metric_key=run.metric_key, period_label=label, reason=reason))
            for fit in model_fits:
                session.add(
                    ModelFit(
                        run_id=run.id,
                        metric_key=run.metric_key,
                        fitted_at=run.finished_at,
                        **{**fit, "parameters": json.dumps(fit["parameters"])},
                    )
                )
            if backfilled:
                customer_values = ()
            if customer_values:
                # Model outputs are a snapshot: the latest run replaces the previous one.
                session.execute(
                    CustomerValue.__table__.delete().where(CustomerValue.__table__.c.metric_key == run.metric_key)
                )
                _insert_customer_values(session.connection(), run, customer_values)
            session.commit()
        return run

    def write_run(
        self,
        run: Run,
        observations: Sequence[Observation] = (),
        customer_values: Sequence[Mapping[str, Any]] = (),
    ) -> Run:
        """Write a finished run with its observations in one transaction (imports, tests)."""
        return self.finish_run(run, observations, customer_values)

    def unfinished_runs(self) -> list[Run]:
        with self.session() as session:
            return list(session.exec(select(Run).where(Run.status == RunStatus.RUNNING).order_by(Run.id)).all())

    def mark_interrupted(self, runs: Iterable[Run], reason: str) -> list[Run]:
        """Mark runs whose process died as ``interrupted`` (only those still ``running``)."""
        marked = []
        now = utcnow()
        with self.session() as session:
            backfilled = set(session.exec(select(BackfilledRun.run_id).where(BackfilledRun.run_id.in_([r.id for r in runs]))).all())
            for run in runs:
                result = session.execute(
                    Run.__table__.update()
                    .where(Run.__table__.c.id == run.id, Run.__table__.c.status == RunStatus.RUNNING)
                    .values(
                        status=RunStatus.INTERRUPTED,
                        finished_at=now,
                        duration_seconds=(now - run.started_at).total_seconds(),
                        error=reason,
                    )
                )
                if result.rowcount:
                    run.status = RunStatus.INTERRUPTED
                    if run.id not in backfilled:  # as in finish_run: totals count live runs
                        _count_finished(session, run)
                    marked.append(run)
            session.commit()
        return marked

    def change_marker(self) -> tuple[Any, ...]:
        """A cheap value that changes whenever anything a reader shows has changed.

        The number of finished runs (from the totals: one row per metric) moves whenever a run
        finishes in any process sharing this store, the number of pruned runs whenever a prune
        deletes some; ``shown_table_markers`` adds the other
        tables readers show (standards) to the same single query.
        """
        finished = select(func.coalesce(func.sum(MetricRunTotals.runs), 0)).scalar_subquery()
        pruned = select(func.coalesce(func.sum(MetricRunTotals.pruned), 0)).scalar_subquery()
        with self.engine.connect() as connection:
            return tuple(connection.execute(select(finished, pruned, *shown_table_markers())).one())

    def history_marker(self) -> tuple[Any, ...]:
        """``change_marker`` plus the backfilled runs that finished: it also moves when a backfill
        adds history (backfilled runs are not in the run totals), for readers that show it."""
        # EXISTS, not a join: SQLite would walk every run to find the few backfilled ones
        done = select(Run.id).where(Run.id == BackfilledRun.run_id, Run.status != RunStatus.RUNNING).exists()
        finished = select(func.count()).select_from(BackfilledRun).where(done).scalar_subquery()
        runs = select(func.coalesce(func.sum(MetricRunTotals.runs), 0)).scalar_subquery()
        pruned = select(func.coalesce(func.sum(MetricRunTotals.pruned), 0)).scalar_subquery()
        with self.engine.connect() as connection:  # one query, as change_marker
            return tuple(connection.execute(select(runs, pruned, *shown_table_markers(), finished)).one())

    def metric_history_markers(self) -> dict[str, tuple[Any, ...]]:
        """Per metric, a value that moves whenever a run of it finishes, live or backfilled, or a
        prune deletes some of its runs: a reader that keeps each metric's history reads again only the metrics whose marker moved."""
        totals = MetricRunTotals.__table__.c
        backfilled, runs = BackfilledRun.__table__.c, Run.__table__.c
        with self.engine.connect() as connection:
            live = connection.execute(select(totals.metric_key, totals.runs, totals.last_run_id, totals.pruned)).all()
            past = connection.execute(
                select(backfilled.metric_key, func.count(), func.max(backfilled.run_id))
                .join(Run.__table__, runs.id == backfilled.run_id)
                .where(runs.status != RunStatus.RUNNING)
                .group_by(backfilled.metric_key)
            ).all()
        markers: dict[str, tuple[Any, ...]] = {key: (count, last, 0, None, pruned) for key, count, last, pruned in live}
        for key, count, last in past:
            runs_count, last_run, _, _, pruned = markers.get(key, (0, None, 0, None, 0))
            markers[key] = (runs_count, last_run, count, last, pruned)
        return markers

    def last_run_times(self) -> dict[str, datetime]:
        """When each metric last ran live (any status); the scheduler uses it to catch up missed runs."""
        with self.session() as session:
            rows = session.exec(
                select(Run.metric_key, Run.started_at).join(MetricRunTotals, Run.id == MetricRunTotals.last_run_id)
            ).all()
            running = session.exec(select(Run.metric_key, func.max(Run.started_at)).where(Run.status == RunStatus.RUNNING, Run.id.not_in(select(BackfilledRun.run_id))).group_by(Run.metric_key)).all()
        times = dict(rows)
        for key, started in running:
            times[key] = max(started, times.get(key, started))
        return times

    def latest_observations(self) -> list[LatestObservation]:
        """The observations of each metric's latest successful run (not a backfilled one), sorted
        by metric, period label and dimensions.

        A run's observations never change once it has finished, so they are read once per run
        and kept (for the latest runs only): after a run of one metric, a render reads that
        run's observations and one row per metric, however many values the others have.
        """
        totals = MetricRunTotals.__table__.c
        with self.engine.connect() as connection:
            latest = connection.execute(
                select(totals.metric_key, totals.last_success_run_id).where(totals.last_success_run_id.is_not(None))
            ).all()
            known = self._latest_runs
            new = [run_id for _, run_id in latest if run_id not in known]
            read = self._read_run_observations(connection, new) if new else {}
        runs = {run_id: known[run_id] if run_id in known else read.get(run_id, []) for _, run_id in latest}
        self._latest_runs = runs  # forget runs that are no longer anyone's latest
        return [observation for _, run_id in sorted(latest) for observation in runs[run_id]]

    def _read_run_observations(self, connection: Any, run_ids: Sequence[int]) -> dict[int, list[LatestObservation]]:
        """The observations of these runs, each run's sorted by period label and dimensions."""
        columns = Observation.__table__.c
        missing = MissingValue.__table__.c
        statement = select(
            columns.run_id, columns.metric_key, columns.dimensions, columns.period_label, columns.period_start,
            columns.period_end, columns.value, columns.computed_at, missing.reason,
        ).outerjoin(
            MissingValue.__table__,
            (missing.run_id == columns.run_id) & (missing.period_label == columns.period_label) & columns.value.is_(None),
        )
        rows = []
        for start in range(0, len(run_ids), 500):  # bound the number of bound parameters
            rows += connection.execute(statement.where(columns.run_id.in_(run_ids[start : start + 500]))).all()
        # Plain tuples, not ORM objects; sorted here, not by ORDER BY (that makes SQLite walk
        # every observation in order). Each distinct dimensions text is decoded once.
        rows.sort(key=lambda row: (row[0], row[3], row[2]))
        decoded: dict[str, dict[str, str]] = {}
        by_run: dict[int, list[LatestObservation]] = {run_id: [] for run_id in run_ids}
        for run_id, key, dimensions, label, start, end, value, computed_at, reason in rows:
            if dimensions not in decoded:
                decoded[dimensions] = json.loads(dimensions)
            by_run[run_id].append(
                LatestObservation(key, decoded[dimensions], label, start, end, value, computed_at, reason, dimensions)
            )
        return by_run

    def latest_run_periods(self) -> dict[str, str]:
        """Metric key -> the period spec (``month_to_date``...) of its latest successful live run: one query."""
        runs = Run.__table__.c
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(MetricRunTotals.metric_key, runs.period).join(Run.__table__, runs.id == MetricRunTotals.last_success_run_id)
            ).all()
        return dict(rows)

    def period_points(
        self,
        metric_key: str,
        specs: Sequence[str],
        windows: Sequence[tuple[datetime, datetime, datetime]],
        dimensions: Sequence[str],
    ) -> list[PeriodPoint]:
        """The current-period values that successful runs of ``metric_key`` (computed with one of
        the period ``specs``) stored for the ``dimensions`` (canonical keys), for every window
        ``(start, low, high)``: a current period that starts at ``start`` and ends in ``[low, high]``.

        For the to-date outlook (crmmetrics.readers.outlook): the runs of earlier periods near the same
        point and near their end, in one query however many runs are kept (the windows bound
        what is read)."""
        if not windows or not dimensions or not specs:
            return []
        obs, runs = Observation.__table__.c, Run.__table__.c
        statement = (
            select(obs.run_id, obs.period_start, obs.period_end, obs.dimensions, obs.value)
            .join(Run.__table__, runs.id == obs.run_id)
            .where(
                obs.period_label == PeriodLabel.CURRENT,
                runs.status == RunStatus.SUCCESS,
                runs.period.in_(list(specs)),
                obs.dimensions.in_(list(dimensions)),
                # the metric in each window, so that each is one seek of ix_observations_metric_period
                or_(*(
                    and_(obs.metric_key == metric_key, obs.period_start == start, obs.period_end >= low, obs.period_end <= high)
                    for start, low, high in windows
                )),
            )
        )
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [PeriodPoint(*row) for row in rows]

    def run_periods(self, run_id: int) -> dict[str, RunPeriod]:
        """Period label -> the period a run computed and, if its value is missing, why."""
        columns = Observation.__table__.c
        reasons = self.missing_reasons(run_id)
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(columns.period_label, func.min(columns.period_start), func.max(columns.period_end))
                .where(columns.run_id == run_id)
                .group_by(columns.period_label)
            ).all()
        return {label: RunPeriod(label, start, end, reasons.get(label)) for label, start, end in rows}

    def closed_period_values(
        self, metric_key: str, period: Period, fingerprint: str
    ) -> tuple[list[tuple[str, float | None]], list[dict[str, Any]]] | None:
        """The stored values (dimensions key, value) of the closed ``period`` and the model fits
        made for it, from the latest successful live run of ``metric_key`` that has it, if that
        run computed it from inputs with this ``fingerprint``; None otherwise (the period must be
        computed). Only the latest such run counts: after a recompute, an older run with the same
        fingerprint may hold a value that the recompute corrected.

        A previous period may come from a run that had it as its current one (last month's
        current month is this month's previous); a current period only from a run that had it
        as its current one too (the per-customer values kept are those of a current period)."""
        runs, observations, fits = Run.__table__.c, Observation.__table__.c, ModelFit.__table__.c
        of_period = (
            observations.metric_key == metric_key,
            observations.period_start == period.start,
            observations.period_end == period.end,
        )
        latest = (
            select(runs.id, observations.period_label, runs.previous_fingerprint, runs.current_fingerprint)
            .join(Observation.__table__, observations.run_id == runs.id)
            .where(runs.metric_key == metric_key, runs.status == RunStatus.SUCCESS, *of_period)
            .where(runs.id.not_in(select(BackfilledRun.__table__.c.run_id)))
            .order_by(runs.id.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            found = connection.execute(latest).first()
            if found is None or (period.label == PeriodLabel.CURRENT and found.period_label != PeriodLabel.CURRENT):
                return None
            seen = found.current_fingerprint if found.period_label == PeriodLabel.CURRENT else found.previous_fingerprint
            if seen != fingerprint:
                return None
            rows = connection.execute(
                select(observations.dimensions, observations.value)
                .where(observations.run_id == found.id, observations.period_label == found.period_label, *of_period)
            ).all()
            made = connection.execute(
                select(fits.model, fits.calibration_end, fits.parameters, fits.log_likelihood, fits.customers, fits.converged, fits.message)
                .where(fits.run_id == found.id, fits.period_label == found.period_label)
                .order_by(fits.id)
            ).all()
        if not rows:
            return None
        return [(dimensions, value) for dimensions, value in rows], [
            {"model": fit.model, "period_label": period.label, "calibration_end": fit.calibration_end,
             "parameters": json.loads(fit.parameters), "log_likelihood": fit.log_likelihood, "customers": fit.customers,
             "converged": bool(fit.converged), "message": fit.message}
            for fit in made
        ]

    def latest_model_fits(self) -> list[ModelFit]:
        """The fits recorded by each metric's latest run (successful or not)."""
        with self.session() as session:
            # The last finished run of each metric, one row per metric (not a scan of every run).
            last_ids = select(MetricRunTotals.last_run_id).where(MetricRunTotals.last_run_id.is_not(None))
            statement = select(ModelFit).where(ModelFit.run_id.in_(last_ids)).order_by(ModelFit.metric_key, ModelFit.id)
            return list(session.exec(statement).all())

    def missing_reasons(self, run_id: int) -> dict[str, str]:
        """Period label -> why the run's value for that period is missing."""
        with self.session() as session:
            rows = session.exec(select(MissingValue).where(MissingValue.run_id == run_id)).all()
        return {row.period_label: row.reason for row in rows}

    def health(self) -> list[MetricHealth]:
        """Per metric: the last finished run, the last success and the counts of runs and failures.

        Read from the totals (one row per metric) and the runs they point at: as cheap with
        200,000 runs kept as with 60.
        """
        table, runs_table = MetricRunTotals.__table__, Run.__table__
        with self.engine.connect() as connection:  # plain rows: this runs on every render of /metrics
            totals = {row.metric_key: row for row in connection.execute(select(table)).all()}
            ids = {t.last_run_id for t in totals.values() if t.last_run_id} | {
                t.last_success_run_id for t in totals.values() if t.last_success_run_id
            }
            columns = runs_table.c
            statement = select(columns.id, columns.plugin, columns.status, columns.duration_seconds, columns.finished_at, columns.error)
            runs = {run.id: run for run in connection.execute(statement.where(columns.id.in_(ids))).all()} if ids else {}
        health = []
        for key in sorted(totals):
            total = totals[key]
            last = runs.get(total.last_run_id)
            if last is None:
                continue
            success = runs.get(total.last_success_run_id)
            health.append(
                MetricHealth(
                    metric_key=key,
                    plugin=last.plugin,
                    last_status=last.status,
                    last_duration_seconds=last.duration_seconds or 0.0,
                    last_run_at=last.finished_at,
                    last_success_at=success.finished_at if success else None,
                    failures=total.failures,
                    runs=total.runs,
                    last_error=last.error,
                )
            )
        return health

    def prune(self, older_than: datetime, *, dry_run: bool = False, batch: int = 5000) -> PruneResult:
        """Delete runs started before ``older_than`` with their observations and model outputs.

        Never touched: runs still ``running``, each metric's last finished run and last
        successful run (its latest value), the run totals and the standards history. Deletes in
        batches of ``batch`` runs, each its own transaction, so readers are never blocked long;
        each counts the runs it deleted in their metrics' totals (``pruned``), which moves the
        readers' markers: the pruned periods leave what they show without waiting for a run.
        """
        totals = MetricRunTotals.__table__.c
        runs, observations, values = Run.__table__, Observation.__table__, CustomerValue.__table__
        with self.engine.connect() as connection:
            keep = {
                run_id
                for pair in connection.execute(select(totals.last_run_id, totals.last_success_run_id)).all()
                for run_id in pair
                if run_id is not None
            }
            ids = [
                run_id
                for (run_id,) in connection.execute(
                    select(runs.c.id).where(runs.c.started_at < older_than, runs.c.status != RunStatus.RUNNING).order_by(runs.c.id)
                ).all()
                if run_id not in keep
            ]
            counted = 0
            for start in range(0, len(ids), batch):
                chunk = ids[start : start + batch]
                counted += connection.execute(
                    select(func.count()).select_from(observations).where(observations.c.run_id.in_(chunk))
                ).scalar_one()
        if not dry_run and ids:
            history, obs = HistoryPeriod.__table__, Observation.__table__.c
            for start in range(0, len(ids), batch):
                chunk = ids[start : start + batch]
                with self.engine.begin() as connection:
                    lost = connection.execute(
                        select(history.c.metric_key, history.c.period_start, history.c.period_end).where(history.c.run_id.in_(chunk))
                    ).all()
                    pruned = connection.execute(
                        select(runs.c.metric_key, func.count()).where(runs.c.id.in_(chunk)).group_by(runs.c.metric_key)
                    ).all()
                    # Every table that refers to a run first (PostgreSQL enforces the keys).
                    for table in (history, observations, values, MissingValue.__table__, ModelFit.__table__, BackfilledRun.__table__):
                        connection.execute(table.delete().where(table.c.run_id.in_(chunk)))
                    connection.execute(runs.delete().where(runs.c.id.in_(chunk)))
                    for key, first, last in lost:  # the newest run of the period still stored takes its place
                        replacement = connection.execute(history_period_candidates().where(
                            obs.metric_key == key, obs.period_start == first, obs.period_end == last)).first()
                        if replacement is not None:
                            _keep_in_history(connection, *replacement)
                    for key, count in pruned:
                        _count_pruned(connection, key, count)
        return PruneResult(runs=len(ids), observations=counted, older_than=older_than, dry_run=dry_run)

    def runs(self, metric_key: str | None = None, limit: int = 50) -> list[Run]:
        statement = select(Run).order_by(Run.id.desc()).limit(limit)
        if metric_key:
            statement = statement.where(Run.metric_key == metric_key)
        with self.session() as session:
            return list(session.exec(statement).all())

    def backfilled_run_ids(self, run_ids: Iterable[int]) -> set[int]:
        """Which of these runs ``crmmetrics backfill`` made (the others are live runs)."""
        ids = list(run_ids)
        if not ids:
            return set()
        with self.session() as session:
            return set(session.exec(select(BackfilledRun.run_id).where(BackfilledRun.run_id.in_(ids))).all())

    def metric_records(self) -> dict[str, MetricRecord]:
        with self.session() as session:
            return {record.key: record for record in session.exec(select(MetricRecord)).all()}

    def customer_values(self, metric_key: str) -> list[dict[str, Any]]:
        with self.session() as session:
            rows = session.exec(select(CustomerValue).where(CustomerValue.metric_key == metric_key)).all()
        return [{"customer_id": row.customer_id, **json.loads(row.values)} for row in rows]

