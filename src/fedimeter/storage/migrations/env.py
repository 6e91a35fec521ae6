"""Alembic environment: fedimeter runs migrations itself, on a connection it hands over.

``fedimeter.storage.database.upgrade()`` puts a synchronous connection (from the async engine's
``run_sync``) into ``config.attributes["connection"]``; there is no alembic.ini.
"""

from alembic import context

from fedimeter.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    msg = "run migrations through `fedimeter db upgrade`, not the alembic command"
    raise RuntimeError(msg)

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things: batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
