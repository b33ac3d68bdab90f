"""The runs of ``crmmetrics backfill`` and the past period each computed (``backfilled_runs``).

Revision ID: 0005_backfilled_runs
Revises: 0004_missing_values_model_fits
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401 - autogenerate writes sqlmodel.sql.sqltypes.AutoString


revision = '0005_backfilled_runs'
down_revision = '0004_missing_values_model_fits'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('backfilled_runs',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('metric_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('period_start', sa.DateTime(), nullable=False),
    sa.Column('period_end', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ),
    sa.PrimaryKeyConstraint('run_id')
    )
    with op.batch_alter_table('backfilled_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_backfilled_runs_metric_key'), ['metric_key'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('backfilled_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_backfilled_runs_metric_key'))

    op.drop_table('backfilled_runs')
