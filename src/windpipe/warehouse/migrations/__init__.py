"""The target database's schema history (Alembic); ``warehouse.store.HISTORY`` describes it."""
