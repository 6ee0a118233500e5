"""The source database's schema history (Alembic); ``source.store.HISTORY`` describes it."""
