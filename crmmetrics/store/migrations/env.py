"""Alembic environment of the store: always run from crmmetrics.store.migrations with a connection.

There is no alembic.ini: crmmetrics.store.migrations.alembic_config() passes the open connection in
``config.attributes["connection"]``. SQLite cannot ALTER most things, so every migration runs in
batch mode there (``op.batch_alter_table``: copy, alter, swap).
"""

from alembic import context

from crmmetrics.store.migrations import target_metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=target_metadata(),
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
