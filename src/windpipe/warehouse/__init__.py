"""The target database's one owner: its models, its migrations and every statement on its tables.

``models`` declares ``signal``, ``data`` and ``day_load``; ``migrations/`` is their Alembic
history; ``store`` writes them (the ETL's atomic replace of a window); ``reads`` holds the reads
orchestration needs; ``queries`` the reads of the API and the dashboard, as SQL text for ADBC.
Not named ``target``: tools and ignore files treat a ``target/`` folder as build output.
"""
