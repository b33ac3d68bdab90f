"""The store: crmmetrics' own memory of definitions, runs, observations and model outputs.

SQLModel tables on any SQLAlchemy URL (a SQLite file by default, PostgreSQL in production).
Only the runner writes runs and observations; readers (exporter, scorecard, dashboards) read.
Times are naive UTC (``NaiveDatetime`` fields: SQLite would drop a timezone anyway). Dimensions are kept as canonical JSON text (sorted keys) so that the
same combination always compares equal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic import NaiveDatetime
from sqlalchemy import Index, case, func
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, create_engine, select

from .definitions import MetricDefinition
from .periods import Period


# Scalar subqueries (made fresh per call) that Store.change_marker() adds to its query: another
# module's tables that readers show (e.g. the standards) register theirs here.
CHANGE_MARKERS: list[Callable[[], Any]] = []


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


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
    """One computation of one metric: when, how long, and whether it worked."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_metric_id", "metric_key", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    metric_key: str = Field(index=True)
    plugin: str
    started_at: NaiveDatetime
    finished_at: NaiveDatetime
    duration_seconds: float
    status: str  # "success" or "failed"
    error: str | None = None
    rows: int = 0
    period: str = ""  # the period spec used, e.g. "month"


class Observation(SQLModel, table=True):
    """One value of a metric for one period and one combination of dimensions."""

    __tablename__ = "observations"
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    metric_key: str = Field(index=True)
    dimensions: str = "{}"
    period_label: str  # "current" or "previous"
    period_start: NaiveDatetime
    period_end: NaiveDatetime
    value: float | None = None
    computed_at: NaiveDatetime


class BackfilledRun(SQLModel, table=True):
    """A run that ``crmmetrics backfill`` made for a past period (crmmetrics.backfill).

    Its observations are ordinary history; readers of the *latest* values and model outputs
    pass over backfilled runs, so a backfill never replaces what the live runs show.
    """

    __tablename__ = "backfilled_runs"
    run_id: int = Field(foreign_key="runs.id", primary_key=True)
    metric_key: str = Field(index=True)
    period_start: NaiveDatetime  # the run's current period
    period_end: NaiveDatetime


class MissingValue(SQLModel, table=True):
    """Why a run stored a missing value for a period: the input the source lacked (crmmetrics.inputs)."""

    __tablename__ = "missing_values"
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    metric_key: str
    period_label: str  # "current" or "previous"
    reason: str


class ModelFit(SQLModel, table=True):
    """A model a run fitted (e.g. BG/NBD, Gamma-Gamma): parameters, fit quality and convergence."""

    __tablename__ = "model_fits"
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    metric_key: str = Field(index=True)
    period_label: str  # "current" or "previous"
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
    customer_id: int = Field(index=True)
    values: str  # JSON object of the model outputs
    computed_at: NaiveDatetime


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


class Store:
    """Reads and writes the store database."""

    def __init__(self, url: str) -> None:
        self.url = url
        connect_args = {"timeout": 30} if url.startswith("sqlite") else {}
        self.engine: Engine = create_engine(url, connect_args=connect_args)
        SQLModel.metadata.create_all(self.engine)

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

    def write_run(
        self,
        run: Run,
        observations: Sequence[Observation] = (),
        customer_values: Sequence[Mapping[str, Any]] = (),
        missing: Mapping[str, str] | None = None,
        model_fits: Sequence[Mapping[str, Any]] = (),
        backfilled: Period | None = None,
    ) -> Run:
        """Write a run with its observations (and model outputs) in one transaction.

        ``missing`` maps a period label to the reason its value is missing; ``model_fits`` are
        the models the run fitted (``ComputeContext.record_model_fit``). ``backfilled`` marks a
        run of ``crmmetrics backfill`` with the past period it computed: its customer values
        (a snapshot of the latest run) are not kept.
        """
        with self.session() as session:
            session.add(run)
            session.flush()
            for observation in observations:
                observation.run_id = run.id
                session.add(observation)
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
            if backfilled is not None:
                session.add(
                    BackfilledRun(
                        run_id=run.id, metric_key=run.metric_key, period_start=backfilled.start, period_end=backfilled.end
                    )
                )
                customer_values = ()
            if customer_values:
                # Model outputs are a snapshot: the latest run replaces the previous one.
                session.execute(
                    CustomerValue.__table__.delete().where(CustomerValue.__table__.c.metric_key == run.metric_key)
                )
                session.execute(
                    CustomerValue.__table__.insert(),
                    [
                        {
                            "run_id": run.id,
                            "metric_key": run.metric_key,
                            "customer_id": int(row["customer_id"]),
                            "values": json.dumps({k: v for k, v in row.items() if k != "customer_id"}),
                            "computed_at": run.finished_at,
                        }
                        for row in customer_values
                    ],
                )
            session.commit()
        return run

    def change_marker(self) -> tuple[Any, ...]:
        """A cheap value that changes whenever anything a reader shows has changed.

        The newest run id covers runs written by any process sharing this store; CHANGE_MARKERS
        add their own parts (standards) to the same single query.
        """
        with self.engine.connect() as connection:
            return tuple(connection.execute(select(func.max(Run.id), *(part() for part in CHANGE_MARKERS))).one())

    def last_run_times(self) -> dict[str, datetime]:
        """When each metric last ran live (any status); the scheduler uses it to catch up missed runs."""
        with self.session() as session:
            rows = session.exec(
                select(Run.metric_key, func.max(Run.started_at))
                .where(Run.id.not_in(select(BackfilledRun.run_id)))
                .group_by(Run.metric_key)
            ).all()
        return {key: started for key, started in rows}

    def latest_observations(self) -> list[LatestObservation]:
        """The observations of each metric's latest successful run (not a backfilled one)."""
        latest = (
            select(func.max(Run.id).label("run_id"))
            .where(Run.status == "success", Run.id.not_in(select(BackfilledRun.run_id)))
            .group_by(Run.metric_key)
            .subquery()
        )
        columns = Observation.__table__.c
        missing = MissingValue.__table__.c
        statement = (
            select(
                columns.metric_key, columns.dimensions, columns.period_label, columns.period_start,
                columns.period_end, columns.value, columns.computed_at, missing.reason,
            )
            .join(latest, columns.run_id == latest.c.run_id)
            .outerjoin(
                MissingValue.__table__,
                (missing.run_id == columns.run_id) & (missing.period_label == columns.period_label) & columns.value.is_(None),
            )
            .order_by(columns.metric_key, columns.period_label, columns.dimensions)
        )
        # Plain rows, not ORM objects: this runs on every render of the exposition.
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [
            LatestObservation(key, json.loads(dimensions), label, start, end, value, computed_at, reason)
            for key, dimensions, label, start, end, value, computed_at, reason in rows
        ]

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

    def latest_model_fits(self) -> list[ModelFit]:
        """The fits recorded by each metric's latest run (successful or not)."""
        with self.session() as session:
            last_ids = select(func.max(Run.id)).where(Run.id.not_in(select(BackfilledRun.run_id))).group_by(Run.metric_key)
            statement = select(ModelFit).where(ModelFit.run_id.in_(last_ids)).order_by(ModelFit.metric_key, ModelFit.id)
            return list(session.exec(statement).all())

    def missing_reasons(self, run_id: int) -> dict[str, str]:
        """Period label -> why the run's value for that period is missing."""
        with self.session() as session:
            rows = session.exec(select(MissingValue).where(MissingValue.run_id == run_id)).all()
        return {row.period_label: row.reason for row in rows}

    def health(self) -> list[MetricHealth]:
        """Per metric: the last run, the last success and the count of failures (live runs only:
        a backfilled period that fails says nothing about the service's health)."""
        live = Run.id.not_in(select(BackfilledRun.run_id))
        with self.session() as session:
            last_ids = session.exec(select(func.max(Run.id)).where(live).group_by(Run.metric_key)).all()
            last_runs = session.exec(select(Run).where(Run.id.in_(last_ids))).all() if last_ids else []
            successes = dict(
                session.exec(
                    select(Run.metric_key, func.max(Run.finished_at)).where(Run.status == "success", live).group_by(Run.metric_key)
                ).all()
            )
            counts = {
                key: (total, failed or 0)
                for key, total, failed in session.exec(
                    select(
                        Run.metric_key,
                        func.count(Run.id),
                        func.sum(case((Run.status == "failed", 1), else_=0)),
                    ).where(live).group_by(Run.metric_key)
                ).all()
            }
        return [
            MetricHealth(
                metric_key=run.metric_key,
                plugin=run.plugin,
                last_status=run.status,
                last_duration_seconds=run.duration_seconds,
                last_run_at=run.finished_at,
                last_success_at=successes.get(run.metric_key),
                failures=int(counts[run.metric_key][1]),
                runs=int(counts[run.metric_key][0]),
                last_error=run.error,
            )
            for run in sorted(last_runs, key=lambda r: r.metric_key)
        ]

    def runs(self, metric_key: str | None = None, limit: int = 50) -> list[Run]:
        statement = select(Run).order_by(Run.id.desc()).limit(limit)
        if metric_key:
            statement = statement.where(Run.metric_key == metric_key)
        with self.session() as session:
            return list(session.exec(statement).all())

    def metric_records(self) -> dict[str, MetricRecord]:
        with self.session() as session:
            return {record.key: record for record in session.exec(select(MetricRecord)).all()}

    def customer_values(self, metric_key: str) -> list[dict[str, Any]]:
        with self.session() as session:
            rows = session.exec(select(CustomerValue).where(CustomerValue.metric_key == metric_key)).all()
        return [{"customer_id": row.customer_id, **json.loads(row.values)} for row in rows]

