"""Alembic environment of the target database: runs on the connection windpipe hands over."""

from alembic import context

from windpipe.warehouse.models import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, compare_type=True)
context.run_migrations()
