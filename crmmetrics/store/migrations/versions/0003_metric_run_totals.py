"""Per-metric run totals: runs and failures counted as they finish (counters that pruning old
runs does not lower), and each metric's last finished and last successful run, so that /metrics
and the page read one row per metric instead of scanning every run.

Revision ID: 0003_metric_run_totals
Revises: 0002_run_lifecycle
Create Date: 2026-12-01
"""

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision = "0003_metric_run_totals"
down_revision = "0002_run_lifecycle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_run_totals",
        sa.Column("metric_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_run_id", sa.Integer(), nullable=True),
        sa.Column("last_success_run_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("metric_key"),
    )
    # The totals of the runs already stored.
    op.execute(
        "INSERT INTO metric_run_totals (metric_key, runs, failures, last_run_id, last_success_run_id) "
        "SELECT metric_key, count(*), "
        "sum(CASE WHEN status IN ('failed', 'interrupted') THEN 1 ELSE 0 END), "
        "max(id), max(CASE WHEN status = 'success' THEN id END) "
        "FROM runs WHERE status <> 'running' GROUP BY metric_key"
    )


def downgrade() -> None:
    op.drop_table("metric_run_totals")
