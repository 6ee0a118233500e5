"""The target database as the dashboard and ``/aggregates`` read it (read-only SQL, for ADBC)."""
