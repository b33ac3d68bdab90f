"""``runs.current_fingerprint``: what the inputs of a run's current period held when that period
had ended before the run's as-of time (the last full month of a ``month`` KPI), so that a later
run with the same inputs reuses its stored values.

Revision ID: 0007_runs_current_fingerprint
Revises: 0006_runs_previous_fingerprint
Create Date: 2026-12-02 06:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401 - autogenerate writes sqlmodel.sql.sqltypes.AutoString


revision = '0007_runs_current_fingerprint'
down_revision = '0006_runs_previous_fingerprint'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('current_fingerprint', sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('current_fingerprint')
