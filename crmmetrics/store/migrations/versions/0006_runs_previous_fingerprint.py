"""``runs.previous_fingerprint``: what the inputs of a run's previous (closed) period held,
so that a later run with the same inputs reuses its stored values.

Revision ID: 0006_runs_previous_fingerprint
Revises: 0005_backfilled_runs
Create Date: 2026-12-02 03:04:30.843121
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401 - autogenerate writes sqlmodel.sql.sqltypes.AutoString


revision = '0006_runs_previous_fingerprint'
down_revision = '0005_backfilled_runs'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_fingerprint', sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('previous_fingerprint')
