"""The canonical CRM data model, declared once as plain data.

The built-in KPIs of the five Payne & Frow processes are computed from these twelve tables:
``segments``, ``channels``, ``campaigns``, ``customers``, ``orders``, ``order_lines``,
``interactions``, ``survey_responses``, ``employees``, ``employee_survey_responses``,
``cost_entries`` and ``data_quality_facts``.  They are deliberately small: any CRM, order
system or data warehouse can be mapped onto them, by creating *views* with these names and
columns in the source database, by *importing* (e.g. a CSV export of customers and orders), or
by a *plugin* that provides the mapping.  Only the columns a KPI reads need to be present in a
view; everything nullable here may be NULL.

This module is the one declaration; :mod:`crmmetrics.core.schema` builds the SQLAlchemy Core
tables from it. It imports nothing heavy, so that what is checked when a KPI is *defined* (a
table or column name, whether a column is nullable) costs no SQLAlchemy import: listing the
metrics starts fast.

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

Column types are named here (:data:`TYPES`) and mapped to SQLAlchemy types in the schema
module: ``id`` is a 64-bit surrogate key (``BigInteger``, ``INTEGER`` on SQLite), ``timestamp``
naive UTC, ``string`` has a length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The column types of the data model (the schema module maps each to a SQLAlchemy type).
TYPES = ("integer", "big_integer", "id", "float", "boolean", "string", "text", "timestamp")


@dataclass(frozen=True)
class ColumnSpec:
    """One column: its name, type (one of :data:`TYPES`, ``length`` for a string) and constraints."""

    name: str
    type: str
    length: int | None = None
    nullable: bool = True
    primary_key: bool = False
    references: str | None = None  # "table.column" of a foreign key
    unique: bool = False
    default: Any = None
    comment: str | None = None


@dataclass(frozen=True)
class TableSpec:
    """One canonical table: its columns by name (in order) and its indexes (column-name tuples)."""

    name: str
    columns: dict[str, ColumnSpec] = field(hash=False)
    indexes: tuple[tuple[str, ...], ...] = ()
    comment: str | None = None


def column(name: str, type: str, length: int | None = None, *, nullable: bool | None = None, primary_key: bool = False,
           references: str | None = None, unique: bool = False, default: Any = None, comment: str | None = None) -> ColumnSpec:
    """A column; nullable unless it is (part of) the primary key or says ``nullable=False``."""
    if type not in TYPES:
        raise ValueError(f"column {name}: unknown type {type!r} (one of {', '.join(TYPES)})")
    return ColumnSpec(name, type, length, not primary_key if nullable is None else nullable, primary_key, references,
                      unique, default, comment)


def table(name: str, *columns: ColumnSpec, indexes: tuple[tuple[str, ...], ...] = (), comment: str | None = None) -> TableSpec:
    return TableSpec(name, {c.name: c for c in columns}, indexes, comment)


_SEGMENTS = table(
    "segments",
    column("segment_id", "integer", primary_key=True),
    column("name", "string", 100, nullable=False, unique=True),
    column("is_target", "boolean", nullable=False, default=False),
    column("market_size_customers", "big_integer", nullable=True),
    column("wallet_per_customer", "float", nullable=True, comment="yearly category spend per customer"),
    comment="Customer segments of the customer strategy (Payne & Frow: strategy development).",
)

_CHANNELS = table(
    "channels",
    column("channel_id", "integer", primary_key=True),
    column("name", "string", 100, nullable=False, unique=True),
    column("category", "string", 32, nullable=False,
           comment="sales_force, outlets, telephony, direct_marketing, e_commerce, m_commerce"),
    column("is_virtual", "boolean", nullable=False, default=False),
    column("is_self_service", "boolean", nullable=False, default=False),
)

_CAMPAIGNS = table(
    "campaigns",
    column("campaign_id", "integer", primary_key=True),
    column("name", "string", 200, nullable=True),
    column("channel_id", "integer", references="channels.channel_id", nullable=True),
    column("objective", "string", 32, nullable=False, comment="acquisition, retention, cross_sell, win_back, brand"),
    column("segment_id", "integer", references="segments.segment_id", nullable=True),
    column("starts_at", "timestamp", nullable=False),
    column("ends_at", "timestamp", nullable=True),
    column("contacts_sent", "big_integer", nullable=True),
    column("responses", "big_integer", nullable=True),
    indexes=(("starts_at",), ("channel_id",)),
)

_CUSTOMERS = table(
    "customers",
    column("customer_id", "id", primary_key=True),
    column("segment_id", "integer", references="segments.segment_id", nullable=True),
    column("acquired_at", "timestamp", nullable=True, comment="acquisition (first purchase / contract start)"),
    column("acquisition_channel_id", "integer", references="channels.channel_id", nullable=True),
    column("acquisition_campaign_id", "integer", references="campaigns.campaign_id", nullable=True),
    column("contract_type", "string", 32, nullable=True, comment="e.g. 'contract' or 'none'"),
    column("churned_at", "timestamp", nullable=True, comment="contractual churn (end of contract)"),
    column("email", "string", 320, nullable=True),
    column("phone", "string", 40, nullable=True),
    column("postcode", "string", 20, nullable=True),
    column("master_customer_id", "id", references="customers.customer_id", nullable=True,
           comment="set on a duplicate record: the record it duplicates"),
    column("category_wallet", "float", nullable=True, comment="total category spend per year, if known"),
    column("created_at", "timestamp", nullable=True),
    column("updated_at", "timestamp", nullable=True),
    indexes=(("acquired_at",), ("segment_id",), ("master_customer_id",), ("updated_at",)),
)

_ORDERS = table(
    "orders",
    column("order_id", "id", primary_key=True),
    column("customer_id", "id", references="customers.customer_id", nullable=True, comment="NULL = anonymous order"),
    column("ordered_at", "timestamp", nullable=False),
    column("channel_id", "integer", references="channels.channel_id", nullable=True),
    column("campaign_id", "integer", references="campaigns.campaign_id", nullable=True),
    column("gross_revenue", "float", nullable=True),
    column("discount", "float", nullable=True, default=0.0),
    column("net_revenue", "float", nullable=False, comment="gross_revenue - discount; returns not deducted"),
    column("cogs", "float", nullable=True, comment="NULL = a configured margin share applies"),
    column("returned_amount", "float", nullable=True, default=0.0),
    indexes=(("ordered_at",), ("customer_id", "ordered_at"), ("channel_id",), ("campaign_id",)),
)

_ORDER_LINES = table(
    "order_lines",
    column("order_id", "id", references="orders.order_id", primary_key=True),
    column("line_no", "integer", primary_key=True),
    column("product_category", "string", 100, nullable=False),
    column("quantity", "float", nullable=False, default=1.0),
    column("net_revenue", "float", nullable=False),
    column("cogs", "float", nullable=True),
    indexes=(("product_category",),),
)

_EMPLOYEES = table(
    "employees",
    column("employee_id", "integer", primary_key=True),
    column("department", "string", 100, nullable=False),
    column("is_customer_facing", "boolean", nullable=False, default=False),
    column("fte", "float", nullable=False, default=1.0),
    column("hired_at", "timestamp", nullable=True),
    column("left_at", "timestamp", nullable=True),
    column("leave_type", "string", 16, nullable=True, comment="voluntary, involuntary"),
    indexes=(("hired_at",), ("left_at",)),
)

_INTERACTIONS = table(
    "interactions",
    column("interaction_id", "id", primary_key=True),
    column("customer_id", "id", references="customers.customer_id", nullable=True),
    column("channel_id", "integer", references="channels.channel_id", nullable=True),
    column("employee_id", "integer", references="employees.employee_id", nullable=True,
           comment="the employee who handled it; NULL for self-service"),
    column("case_id", "string", 64, nullable=True, comment="groups the contacts of one issue"),
    column("started_at", "timestamp", nullable=False),
    column("direction", "string", 16, nullable=True, comment="inbound, outbound"),
    column("kind", "string", 16, nullable=False, comment="inquiry, complaint, service, sales, other"),
    column("wait_seconds", "float", nullable=True),
    column("handle_seconds", "float", nullable=True, comment="NULL or 0 for self-service"),
    column("resolved", "boolean", nullable=True),
    indexes=(("started_at",), ("case_id",), ("customer_id", "started_at"), ("channel_id",), ("employee_id",)),
)

_SURVEY_RESPONSES = table(
    "survey_responses",
    column("response_id", "id", primary_key=True),
    column("customer_id", "id", references="customers.customer_id", nullable=True),
    column("interaction_id", "id", references="interactions.interaction_id", nullable=True),
    column("channel_id", "integer", references="channels.channel_id", nullable=True),
    column("responded_at", "timestamp", nullable=False),
    column("instrument", "string", 32, nullable=False, comment="nps, csat, ces, fcr, sow"),
    column("score", "float", nullable=False),
    column("scale_min", "float", nullable=True),
    column("scale_max", "float", nullable=True),
    indexes=(("instrument", "responded_at"), ("customer_id",)),
)

_EMPLOYEE_SURVEY_RESPONSES = table(
    "employee_survey_responses",
    column("response_id", "id", primary_key=True),
    column("employee_id", "integer", references="employees.employee_id", nullable=True, comment="NULL = anonymous"),
    column("department", "string", 100, nullable=True),
    column("responded_at", "timestamp", nullable=False),
    column("instrument", "string", 32, nullable=False, comment="enps, esat, engagement"),
    column("score", "float", nullable=False),
    column("scale_min", "float", nullable=True),
    column("scale_max", "float", nullable=True),
    indexes=(("instrument", "responded_at"),),
)

_COST_ENTRIES = table(
    "cost_entries",
    column("cost_id", "id", primary_key=True),
    column("period_start", "timestamp", nullable=False),
    column("period_end", "timestamp", nullable=False, comment="exclusive"),
    column("cost_type", "string", 32, nullable=False, comment="marketing, sales, service, fulfilment, it, other"),
    column("purpose", "string", 32, nullable=True, comment="acquisition, retention, service, infrastructure, other"),
    column("channel_id", "integer", references="channels.channel_id", nullable=True),
    column("segment_id", "integer", references="segments.segment_id", nullable=True),
    column("campaign_id", "integer", references="campaigns.campaign_id", nullable=True),
    column("customer_id", "id", references="customers.customer_id", nullable=True),
    column("amount", "float", nullable=False),
    column("description", "text", nullable=True),
    indexes=(("period_start",), ("cost_type", "purpose"), ("campaign_id",), ("customer_id",)),
)

_DATA_QUALITY_FACTS = table(
    "data_quality_facts",
    column("check_id", "id", primary_key=True),
    column("checked_at", "timestamp", nullable=False),
    column("source_system", "string", 64, nullable=False),
    column("table_name", "string", 100, nullable=True),
    column("column_name", "string", 100, nullable=True),
    column("dimension", "string", 32, nullable=False,
           comment="completeness, uniqueness, validity, timeliness, consistency"),
    column("records_checked", "big_integer", nullable=True),
    column("records_failed", "big_integer", nullable=True),
    column("max_age_hours", "float", nullable=True),
    indexes=(("dimension", "checked_at"), ("source_system", "checked_at")),
)

#: The canonical tables by name, in the order of the data model (not a dependency order).
DATA_MODEL: dict[str, TableSpec] = {
    t.name: t
    for t in (
        _SEGMENTS,
        _CHANNELS,
        _CAMPAIGNS,
        _CUSTOMERS,
        _ORDERS,
        _ORDER_LINES,
        _INTERACTIONS,
        _SURVEY_RESPONSES,
        _EMPLOYEES,
        _EMPLOYEE_SURVEY_RESPONSES,
        _COST_ENTRIES,
        _DATA_QUALITY_FACTS,
    )
}
