"""Baseline: the store as crmmetrics 0.1.0 created it (metric definitions, runs, observations,
customer values, standards history).

Stores created before migrations existed have exactly these tables and no version: they are
stamped at this revision on first use (crmmetrics.store.migrations.prepare).

Revision ID: 0001_baseline
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_definitions",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("plugin", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("process", sa.String(), nullable=False),
        sa.Column("perspective", sa.String(), nullable=False),
        sa.Column("value_lens", sa.String(), nullable=False),
        sa.Column("unit", sa.String(), nullable=False),
        sa.Column("direction", sa.String(), nullable=False),
        sa.Column("dimensions", sa.String(), nullable=False),
        sa.Column("formula", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("metric_key", sa.String(), nullable=False),
        sa.Column("plugin", sa.String(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_runs_metric_id", "runs", ["metric_key", "id"])
    op.create_index("ix_runs_metric_key", "runs", ["metric_key"])
    op.create_table(
        "standard_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("metric_key", sa.String(), nullable=False),
        sa.Column("dimensions", sa.String(), nullable=False),
        sa.Column("origin", sa.String(), nullable=False),
        sa.Column("target", sa.Float(), nullable=True),
        sa.Column("target_rule", sa.String(), nullable=False),
        sa.Column("improvement", sa.Float(), nullable=False),
        sa.Column("benchmark", sa.Float(), nullable=True),
        sa.Column("red", sa.Float(), nullable=False),
        sa.Column("green", sa.Float(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("retired", sa.Boolean(), nullable=False),
        sa.Column("valid_from", sa.DateTime(), nullable=False),
        sa.Column("changed_by", sa.String(), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("via", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_standard_changes_metric_key", "standard_changes", ["metric_key"])
    op.create_table(
        "customer_values",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("metric_key", sa.String(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("values", sa.String(), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_customer_values_customer_id", "customer_values", ["customer_id"])
    op.create_index("ix_customer_values_metric_key", "customer_values", ["metric_key"])
    op.create_index("ix_customer_values_run_id", "customer_values", ["run_id"])
    op.create_table(
        "observations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("metric_key", sa.String(), nullable=False),
        sa.Column("dimensions", sa.String(), nullable=False),
        sa.Column("period_label", sa.String(), nullable=False),
        sa.Column("period_start", sa.DateTime(), nullable=False),
        sa.Column("period_end", sa.DateTime(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_observations_metric_key", "observations", ["metric_key"])
    op.create_index("ix_observations_run_id", "observations", ["run_id"])


def downgrade() -> None:
    for table in ("observations", "customer_values", "standard_changes", "runs", "metric_definitions"):
        op.drop_table(table)
