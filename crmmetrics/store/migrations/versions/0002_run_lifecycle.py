"""Run lifecycle: a run is written when it starts (status ``running``, no finish yet) and
completed when it ends; ``owner`` names the process so that a run left behind by a killed one
can be marked ``interrupted``. An index on (metric_key, status, id) finds each metric's latest
successful run without reading every run.

Revision ID: 0002_run_lifecycle
Revises: 0001_baseline
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_run_lifecycle"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("finished_at", existing_type=sa.DateTime(), nullable=True)
        batch.alter_column("duration_seconds", existing_type=sa.Float(), nullable=True)
        batch.add_column(sa.Column("owner", sa.String(), nullable=False, server_default=""))
        batch.create_index("ix_runs_metric_status_id", ["metric_key", "status", "id"])


def downgrade() -> None:
    # Runs that never finished cannot be represented by the older schema.
    op.execute("DELETE FROM observations WHERE run_id IN (SELECT id FROM runs WHERE finished_at IS NULL)")
    op.execute("DELETE FROM customer_values WHERE run_id IN (SELECT id FROM runs WHERE finished_at IS NULL)")
    op.execute("DELETE FROM runs WHERE finished_at IS NULL")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_metric_status_id")
        batch.drop_column("owner")
        batch.alter_column("duration_seconds", existing_type=sa.Float(), nullable=False)
        batch.alter_column("finished_at", existing_type=sa.DateTime(), nullable=False)
