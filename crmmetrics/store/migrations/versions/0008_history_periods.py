"""``history_periods``: per metric and current period, the newest run that stays in its history (a
live run of a calendar period or a backfilled run), kept as runs finish, so that the history is
read one row per metric and period instead of grouping every observation kept; and
``metric_run_totals.pruned``, the runs a prune deleted, which moves the readers' markers; and
``ix_observations_metric_period`` (metric, period start, end) in place of the metric's index, so
that the to-date outlook's windows are seeks, not a walk of every value of the metric.

Revision ID: 0008_history_periods
Revises: 0007_runs_current_fingerprint
Create Date: 2026-12-02 12:41:49.028844
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401 - autogenerate writes sqlmodel.sql.sqltypes.AutoString


revision = '0008_history_periods'
down_revision = '0007_runs_current_fingerprint'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('history_periods',
    sa.Column('metric_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('period_start', sa.DateTime(), nullable=False),
    sa.Column('period_end', sa.DateTime(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ),
    sa.PrimaryKeyConstraint('metric_key', 'period_start', 'period_end')
    )
    with op.batch_alter_table('history_periods', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_history_periods_run_id'), ['run_id'], unique=False)

    with op.batch_alter_table('metric_run_totals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pruned', sa.Integer(), server_default='0', nullable=False))

    # A metric's values by period (its prefix serves what the metric_key index served).
    with op.batch_alter_table('observations', schema=None) as batch_op:
        batch_op.drop_index('ix_observations_metric_key')
        batch_op.create_index('ix_observations_metric_period', ['metric_key', 'period_start', 'period_end'], unique=False)

    # The runs already stored, as Store.finish_run keeps them from now on.
    op.execute(
        "INSERT INTO history_periods (metric_key, period_start, period_end, run_id) "
        "SELECT o.metric_key, o.period_start, o.period_end, max(o.run_id) "
        "FROM observations o JOIN runs r ON r.id = o.run_id "
        "WHERE o.period_label = 'current' AND r.status = 'success' "
        "AND (r.period IN ('month', 'quarter', 'year') OR r.id IN (SELECT run_id FROM backfilled_runs)) "
        "GROUP BY o.metric_key, o.period_start, o.period_end"
    )


def downgrade() -> None:
    with op.batch_alter_table('observations', schema=None) as batch_op:
        batch_op.drop_index('ix_observations_metric_period')
        batch_op.create_index('ix_observations_metric_key', ['metric_key'], unique=False)

    with op.batch_alter_table('metric_run_totals', schema=None) as batch_op:
        batch_op.drop_column('pruned')

    with op.batch_alter_table('history_periods', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_history_periods_run_id'))

    op.drop_table('history_periods')
