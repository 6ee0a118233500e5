"""Each (turbine, UTC day) of the source gets a fingerprint that every change moves.

Revision ID: s0003
Revises: s0002

``day_fingerprint`` holds, per turbine and UTC day, the samples stored and a checksum: the sum of
their rows' hashes (binary values, so the session's TimeZone does not matter). Statement-level
triggers with transition tables keep it, adding the hashes of rows written and subtracting those
of rows removed (one grouped upsert per statement, not one per row). Reading the fingerprints of 30
days x 10 turbines reads 300 rows whatever the sampling rate. A fingerprint depends only on the
rows held: rewriting a day with the same values (a seed re-run, a re-import of the same file)
changes nothing, and any changed, added or removed value changes it. The triggers fire ALWAYS, also
for logical replication's apply workers (a historian replicating into the source); a TRUNCATE
empties every day's fingerprint. What windpipe cannot see: writes with the triggers disabled.
"""

from alembic import op

revision = "s0003"
down_revision = "s0002"
branch_labels = None
depends_on = None

_DAY = "((r.\"timestamp\" AT TIME ZONE 'UTC')::date)"
# A row's hash from its binary values (no text: the session's TimeZone and DateStyle do not
# matter), as numeric so that sums neither overflow nor wrap.
_HASH = "hash_record_extended(r, 0)::numeric"


def _function(name: str, body: str) -> str:
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n{body}\nRETURN NULL;\nEND\n$$"
    )


def _apply(changes_sql: str) -> str:
    """Add each (turbine, day)'s changes in sample count and checksum to its fingerprint."""
    return f"""
    INSERT INTO day_fingerprint AS f (turbine, day, samples, checksum, changed_at)
    SELECT turbine, day, sum(samples), sum(checksum), clock_timestamp()
    FROM ({changes_sql}) AS changes
    GROUP BY turbine, day
    ON CONFLICT (turbine, day) DO UPDATE
    SET samples = f.samples + excluded.samples,
        checksum = f.checksum + excluded.checksum,
        changed_at = CASE WHEN excluded.samples <> 0 OR excluded.checksum <> 0
                          THEN excluded.changed_at ELSE f.changed_at END;
    """  # noqa: S608 - fixed SQL


_ADDED = f"SELECT r.turbine, {_DAY} AS day, 1 AS samples, {_HASH} AS checksum FROM new_rows r"  # noqa: S608
_REMOVED = f"SELECT r.turbine, {_DAY} AS day, -1 AS samples, -{_HASH} AS checksum FROM old_rows r"  # noqa: S608


def upgrade() -> None:
    """Create the table, fill it from the rows already stored, and install the triggers."""
    op.execute(
        """
        CREATE TABLE day_fingerprint (
            turbine text NOT NULL,
            day date NOT NULL,
            samples bigint NOT NULL,
            checksum numeric NOT NULL,
            changed_at timestamptz NOT NULL,
            CONSTRAINT pk_day_fingerprint PRIMARY KEY (turbine, day)
        )
        """
    )
    op.execute(
        f"""
        INSERT INTO day_fingerprint (turbine, day, samples, checksum, changed_at)
        SELECT r.turbine, {_DAY}, count(*), sum({_HASH}), clock_timestamp()
        FROM data r GROUP BY 1, 2
        """  # noqa: S608 - fixed SQL
    )
    op.execute(_function("windpipe_fingerprint_insert", _apply(_ADDED)))
    op.execute(_function("windpipe_fingerprint_delete", _apply(_REMOVED)))
    op.execute(_function("windpipe_fingerprint_update", _apply(f"{_ADDED} UNION ALL {_REMOVED}")))
    op.execute(
        _function(
            "windpipe_fingerprint_truncate",
            "UPDATE day_fingerprint SET samples = 0, checksum = 0, changed_at = clock_timestamp();",
        )
    )
    for event, tables in (
        ("INSERT", "NEW TABLE AS new_rows"),
        ("DELETE", "OLD TABLE AS old_rows"),
        ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ):
        name = f"windpipe_fingerprint_{event.lower()}"
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON data REFERENCING {tables} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )
        op.execute(f"ALTER TABLE data ENABLE ALWAYS TRIGGER {name}")
    op.execute(
        "CREATE TRIGGER windpipe_fingerprint_truncate AFTER TRUNCATE ON data "
        "FOR EACH STATEMENT EXECUTE FUNCTION windpipe_fingerprint_truncate()"
    )
    op.execute("ALTER TABLE data ENABLE ALWAYS TRIGGER windpipe_fingerprint_truncate")


def downgrade() -> None:
    """Drop the triggers, their functions and the table."""
    for event in ("insert", "delete", "update", "truncate"):
        op.execute(f"DROP TRIGGER IF EXISTS windpipe_fingerprint_{event} ON data")
        op.execute(f"DROP FUNCTION IF EXISTS windpipe_fingerprint_{event}()")
    op.execute("DROP TABLE IF EXISTS day_fingerprint")
