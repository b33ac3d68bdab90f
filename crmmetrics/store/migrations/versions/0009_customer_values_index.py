"""Drop ``ix_customer_values_customer_id``: no query reads the customer values by customer (they
are read and replaced by metric, pruned by run), and keeping the index up to date was a third of
inserting a million customers' values (docs/operations.md).

Revision ID: 0009_customer_values_index
Revises: 0008_history_periods
Create Date: 2026-12-03 14:50:00.000000
"""

from alembic import op


revision = '0009_customer_values_index'
down_revision = '0008_history_periods'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customer_values', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_values_customer_id')


def downgrade() -> None:
    with op.batch_alter_table('customer_values', schema=None) as batch_op:
        batch_op.create_index('ix_customer_values_customer_id', ['customer_id'], unique=False)
