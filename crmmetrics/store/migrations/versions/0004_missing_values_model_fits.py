"""Why a run's value is missing (``missing_values``: the no-data rule's reasons) and the model
fits a run made (``model_fits``: parameters, log-likelihood, customers, convergence).

Revision ID: 0004_missing_values_model_fits
Revises: 0003_metric_run_totals
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401 - autogenerate writes sqlmodel.sql.sqltypes.AutoString


revision = '0004_missing_values_model_fits'
down_revision = '0003_metric_run_totals'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('missing_values',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('metric_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('period_label', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('missing_values', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_missing_values_run_id'), ['run_id'], unique=False)

    op.create_table('model_fits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('metric_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('period_label', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('model', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('calibration_end', sa.DateTime(), nullable=False),
    sa.Column('parameters', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('log_likelihood', sa.Float(), nullable=True),
    sa.Column('customers', sa.Integer(), nullable=False),
    sa.Column('converged', sa.Boolean(), nullable=False),
    sa.Column('message', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('fitted_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('model_fits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_fits_metric_key'), ['metric_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_model_fits_run_id'), ['run_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('model_fits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_fits_run_id'))
        batch_op.drop_index(batch_op.f('ix_model_fits_metric_key'))

    op.drop_table('model_fits')
    with op.batch_alter_table('missing_values', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_missing_values_run_id'))

    op.drop_table('missing_values')
