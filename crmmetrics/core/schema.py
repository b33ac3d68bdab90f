"""The canonical CRM data model as SQLAlchemy Core tables.

The built-in KPIs of the five Payne & Frow processes are computed from these twelve tables:
``segments``, ``channels``, ``campaigns``, ``customers``, ``orders``, ``order_lines``,
``interactions``, ``survey_responses``, ``employees``, ``employee_survey_responses``,
``cost_entries`` and ``data_quality_facts``.  They are deliberately small: any CRM, order
system or data warehouse can be mapped onto them, by creating *views* with these names and
columns in the source database, by *importing* (e.g. a CSV export of customers and orders), or
by a *plugin* that provides the mapping.  Only the columns a KPI reads need to be present in a
view; everything nullable here may be NULL.

Conventions
-----------
* Timestamps are ``DateTime`` *without* time zone and hold **UTC** (naive UTC by convention).
  Converting local times to UTC is the job of the mapping / import, not of the KPIs.
* Periods are half-open: ``cost_entries`` cover ``[period_start, period_end)``.
* Money is ``Float`` (portable across SQLite and PostgreSQL; KPIs are ratios and sums where
  binary floating point is fine), in one currency per database.
* Vocabulary columns (``channels.category``, ``campaigns.objective``, ``interactions.kind``,
  ``survey_responses.instrument``, ``cost_entries.cost_type`` / ``purpose``,
  ``data_quality_facts.dimension`` ...) are plain strings; the allowed values are owned by the
  vocabulary module, not enforced here.
* ``orders.customer_id`` NULL = anonymous order (counts in revenue and channel mix, not in
  customer-level KPIs).  ``orders.cogs`` NULL = a configured margin share applies.
  ``orders.net_revenue`` = ``gross_revenue - discount``; returns are recorded separately in
  ``returned_amount`` and are *not* deducted from ``net_revenue``.
* ``customers.master_customer_id`` is set on a *duplicate* record and points at the record it
  duplicates; customer counts use master records only (``master_customer_id IS NULL``).
* ``employee_survey_responses.employee_id`` NULL = anonymous response.
* ``survey_responses``: ``score`` is read against ``scale_min`` / ``scale_max`` (NPS 0-10,
  CSAT 1-5, CES 2.0 1-7, FCR 0-1, SoW as a share 0-100).  An ``sow`` response that states the
  customer's total category *spend* instead of a share has ``scale_max`` NULL.

Additions to the design's data model (docs: data-model.md)
----------------------------------------------------------
* ``customers.category_wallet``: the customer's total category spend per year, if known
  (share-of-wallet KPI).
* ``campaigns.name``: optional display name.

Surrogate keys of the large tables are ``BigInteger`` (``INTEGER`` on SQLite so that they stay
rowid aliases). DuckDB has no ``SERIAL``: there a key that the database numbers gets a sequence
of its own (``<table>_<column>_seq``) and ``DEFAULT nextval(...)``, created with the table; and
``Float`` is ``DOUBLE`` there (DuckDB's ``FLOAT`` has 4 bytes); DuckDB gets no foreign key
constraints (it checks them against the rows there before the statement, so one batch cannot hold
a duplicate customer and its master).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateColumn

__all__ = [
    "metadata",
    "TABLES",
    "create_tables",
    "segments",
    "channels",
    "campaigns",
    "customers",
    "orders",
    "order_lines",
    "interactions",
    "survey_responses",
    "employees",
    "employee_survey_responses",
    "cost_entries",
    "data_quality_facts",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: 64-bit surrogate key, INTEGER on SQLite (so it stays the rowid alias and autoincrements).
BigID = BigInteger().with_variant(Integer(), "sqlite")

_ts = DateTime(timezone=False)  # naive UTC


segments = Table(
    "segments",
    metadata,
    Column("segment_id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("is_target", Boolean, nullable=False, default=False),
    Column("market_size_customers", BigInteger, nullable=True),
    Column("wallet_per_customer", Float, nullable=True, comment="yearly category spend per customer"),
    comment="Customer segments of the customer strategy (Payne & Frow: strategy development).",
)

channels = Table(
    "channels",
    metadata,
    Column("channel_id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column(
        "category",
        String(32),
        nullable=False,
        comment="sales_force, outlets, telephony, direct_marketing, e_commerce, m_commerce",
    ),
    Column("is_virtual", Boolean, nullable=False, default=False),
    Column("is_self_service", Boolean, nullable=False, default=False),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("campaign_id", Integer, primary_key=True),
    Column("name", String(200), nullable=True),
    Column("channel_id", Integer, ForeignKey("channels.channel_id"), nullable=True),
    Column(
        "objective",
        String(32),
        nullable=False,
        comment="acquisition, retention, cross_sell, win_back, brand",
    ),
    Column("segment_id", Integer, ForeignKey("segments.segment_id"), nullable=True),
    Column("starts_at", _ts, nullable=False),
    Column("ends_at", _ts, nullable=True),
    Column("contacts_sent", BigInteger, nullable=True),
    Column("responses", BigInteger, nullable=True),
    Index(None, "starts_at"),
    Index(None, "channel_id"),
)

customers = Table(
    "customers",
    metadata,
    Column("customer_id", BigID, primary_key=True),
    Column("segment_id", Integer, ForeignKey("segments.segment_id"), nullable=True),
    Column("acquired_at", _ts, nullable=True, comment="acquisition (first purchase / contract start)"),
    Column("acquisition_channel_id", Integer, ForeignKey("channels.channel_id"), nullable=True),
    Column("acquisition_campaign_id", Integer, ForeignKey("campaigns.campaign_id"), nullable=True),
    Column("contract_type", String(32), nullable=True, comment="e.g. 'contract' or 'none'"),
    Column("churned_at", _ts, nullable=True, comment="contractual churn (end of contract)"),
    Column("email", String(320), nullable=True),
    Column("phone", String(40), nullable=True),
    Column("postcode", String(20), nullable=True),
    Column(
        "master_customer_id",
        BigID,
        ForeignKey("customers.customer_id"),
        nullable=True,
        comment="set on a duplicate record: the record it duplicates",
    ),
    Column("category_wallet", Float, nullable=True, comment="total category spend per year, if known"),
    Column("created_at", _ts, nullable=True),
    Column("updated_at", _ts, nullable=True),
    Index(None, "acquired_at"),
    Index(None, "segment_id"),
    Index(None, "master_customer_id"),
    Index(None, "updated_at"),
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", BigID, primary_key=True),
    Column(
        "customer_id",
        BigID,
        ForeignKey("customers.customer_id"),
        nullable=True,
        comment="NULL = anonymous order",
    ),
    Column("ordered_at", _ts, nullable=False),
    Column("channel_id", Integer, ForeignKey("channels.channel_id"), nullable=True),
    Column("campaign_id", Integer, ForeignKey("campaigns.campaign_id"), nullable=True),
    Column("gross_revenue", Float, nullable=True),
    Column("discount", Float, nullable=True, default=0.0),
    Column("net_revenue", Float, nullable=False, comment="gross_revenue - discount; returns not deducted"),
    Column("cogs", Float, nullable=True, comment="NULL = a configured margin share applies"),
    Column("returned_amount", Float, nullable=True, default=0.0),
    Index(None, "ordered_at"),
    Index(None, "customer_id", "ordered_at"),
    Index(None, "channel_id"),
    Index(None, "campaign_id"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", BigID, ForeignKey("orders.order_id"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("product_category", String(100), nullable=False),
    Column("quantity", Float, nullable=False, default=1.0),
    Column("net_revenue", Float, nullable=False),
    Column("cogs", Float, nullable=True),
    Index(None, "product_category"),
)

employees = Table(
    "employees",
    metadata,
    Column("employee_id", Integer, primary_key=True),
    Column("department", String(100), nullable=False),
    Column("is_customer_facing", Boolean, nullable=False, default=False),
    Column("fte", Float, nullable=False, default=1.0),
    Column("hired_at", _ts, nullable=True),
    Column("left_at", _ts, nullable=True),
    Column("leave_type", String(16), nullable=True, comment="voluntary, involuntary"),
    Index(None, "hired_at"),
    Index(None, "left_at"),
)

interactions = Table(
    "interactions",
    metadata,
    Column("interaction_id", BigID, primary_key=True),
    Column("customer_id", BigID, ForeignKey("customers.customer_id"), nullable=True),
    Column("channel_id", Integer, ForeignKey("channels.channel_id"), nullable=True),
    Column(
        "employee_id",
        Integer,
        ForeignKey("employees.employee_id"),
        nullable=True,
        comment="the employee who handled it; NULL for self-service",
    ),
    Column("case_id", String(64), nullable=True, comment="groups the contacts of one issue"),
    Column("started_at", _ts, nullable=False),
    Column("direction", String(16), nullable=True, comment="inbound, outbound"),
    Column("kind", String(16), nullable=False, comment="inquiry, complaint, service, sales, other"),
    Column("wait_seconds", Float, nullable=True),
    Column("handle_seconds", Float, nullable=True, comment="NULL or 0 for self-service"),
    Column("resolved", Boolean, nullable=True),
    Index(None, "started_at"),
    Index(None, "case_id"),
    Index(None, "customer_id", "started_at"),
    Index(None, "channel_id"),
    Index(None, "employee_id"),
)

survey_responses = Table(
    "survey_responses",
    metadata,
    Column("response_id", BigID, primary_key=True),
    Column("customer_id", BigID, ForeignKey("customers.customer_id"), nullable=True),
    Column("interaction_id", BigID, ForeignKey("interactions.interaction_id"), nullable=True),
    Column("channel_id", Integer, ForeignKey("channels.channel_id"), nullable=True),
    Column("responded_at", _ts, nullable=False),
    Column("instrument", String(32), nullable=False, comment="nps, csat, ces, fcr, sow"),
    Column("score", Float, nullable=False),
    Column("scale_min", Float, nullable=True),
    Column("scale_max", Float, nullable=True),
    Index(None, "instrument", "responded_at"),
    Index(None, "customer_id"),
)

employee_survey_responses = Table(
    "employee_survey_responses",
    metadata,
    Column("response_id", BigID, primary_key=True),
    Column(
        "employee_id",
        Integer,
        ForeignKey("employees.employee_id"),
        nullable=True,
        comment="NULL = anonymous",
    ),
    Column("department", String(100), nullable=True),
    Column("responded_at", _ts, nullable=False),
    Column("instrument", String(32), nullable=False, comment="enps, esat, engagement"),
    Column("score", Float, nullable=False),
    Column("scale_min", Float, nullable=True),
    Column("scale_max", Float, nullable=True),
    Index(None, "instrument", "responded_at"),
)

cost_entries = Table(
    "cost_entries",
    metadata,
    Column("cost_id", BigID, primary_key=True),
    Column("period_start", _ts, nullable=False),
    Column("period_end", _ts, nullable=False, comment="exclusive"),
    Column("cost_type", String(32), nullable=False, comment="marketing, sales, service, fulfilment, it, other"),
    Column(
        "purpose",
        String(32),
        nullable=True,
        comment="acquisition, retention, service, infrastructure, other",
    ),
    Column("channel_id", Integer, ForeignKey("channels.channel_id"), nullable=True),
    Column("segment_id", Integer, ForeignKey("segments.segment_id"), nullable=True),
    Column("campaign_id", Integer, ForeignKey("campaigns.campaign_id"), nullable=True),
    Column("customer_id", BigID, ForeignKey("customers.customer_id"), nullable=True),
    Column("amount", Float, nullable=False),
    Column("description", Text, nullable=True),
    Index(None, "period_start"),
    Index(None, "cost_type", "purpose"),
    Index(None, "campaign_id"),
    Index(None, "customer_id"),
)

data_quality_facts = Table(
    "data_quality_facts",
    metadata,
    Column("check_id", BigID, primary_key=True),
    Column("checked_at", _ts, nullable=False),
    Column("source_system", String(64), nullable=False),
    Column("table_name", String(100), nullable=True),
    Column("column_name", String(100), nullable=True),
    Column(
        "dimension",
        String(32),
        nullable=False,
        comment="completeness, uniqueness, validity, timeliness, consistency",
    ),
    Column("records_checked", BigInteger, nullable=True),
    Column("records_failed", BigInteger, nullable=True),
    Column("max_age_hours", Float, nullable=True),
    Index(None, "dimension", "checked_at"),
    Index(None, "source_system", "checked_at"),
)

#: The canonical tables by name, in the order of the data model (not a dependency order: use
#: ``metadata.sorted_tables`` for that).
TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        segments,
        channels,
        campaigns,
        customers,
        orders,
        order_lines,
        interactions,
        survey_responses,
        employees,
        employee_survey_responses,
        cost_entries,
        data_quality_facts,
    )
}


def _numbered_key(table: Table) -> Column | None:
    """The key column the database numbers itself (SERIAL on PostgreSQL, the rowid on SQLite)."""
    column = table.autoincrement_column
    return column if column is not None and column.primary_key else None


def key_sequence_name(column: Column) -> str:
    """The DuckDB sequence that numbers a key column."""
    return f"{column.table.name}_{column.name}_seq"


@compiles(CreateColumn, "duckdb")
def _duckdb_key_column(element: CreateColumn, compiler, **kw) -> str:
    # duckdb-engine inherits PostgreSQL's DDL, whose SERIAL DuckDB does not have.
    column = element.element
    if column is not _numbered_key(column.table):
        return compiler.visit_create_column(element, **kw)
    name = compiler.preparer.format_column(column)
    kind = compiler.type_compiler.process(column.type)
    return f"{name} {kind} DEFAULT nextval('{key_sequence_name(column)}') NOT NULL"


def create_key_sequence(table: Table, connection, **_kw) -> None:
    """Create the sequence of the table's key on DuckDB (run before CREATE TABLE; elsewhere a no-op)."""
    column = _numbered_key(table)
    if connection.dialect.name == "duckdb" and column is not None:
        connection.exec_driver_sql(f'CREATE SEQUENCE IF NOT EXISTS "{key_sequence_name(column)}"')


@compiles(ForeignKeyConstraint, "duckdb")
def _duckdb_no_foreign_key(_constraint: ForeignKeyConstraint, _compiler, **_kw) -> None:
    # DuckDB checks a foreign key against the rows there before the statement, so a batch with
    # a duplicate customer and its master fails; the importer and the demo check keys themselves.
    return None


@compiles(Float, "duckdb")
def _duckdb_float(_type: Float, _compiler, **_kw) -> str:
    # FLOAT is double precision on PostgreSQL (and SQLite's REAL), but 4 bytes on DuckDB.
    return "DOUBLE"


for _table in metadata.tables.values():
    event.listen(_table, "before_create", create_key_sequence)


def create_tables(engine: Engine) -> None:
    """Create the canonical tables (and their indexes) that do not exist yet; drops nothing."""
    metadata.create_all(engine)
