"""The log of changes to turbine events: what the figures downstream of the events must redo.

Revision ID: s0006
Revises: s0005

``event_change`` gets one row per turbine and statement that writes ``turbine_event`` (an
import, the seed, the live feed, a hand-written ``UPDATE``): the span its events covered before
and after, ``first`` (NULL: from the beginning) to ``last`` (NULL: still ongoing, to now). The
API's ``GET /events/changes`` lists the rows after a given ``id``, so Dagster's ``event_changes``
sensor learns, in one cheap request per tick, which (turbine, day)s of the figures went stale. A
``TRUNCATE`` logs one row of NULLs: every turbine, every day. Statement-level triggers with
transition tables, fired ALWAYS (as the fingerprints' of s0003): one row per turbine however many
events a statement writes. A re-import that changes nothing writes nothing (the upsert's
``WHERE``), so it logs nothing.
"""

from alembic import op

revision = "s0006"
down_revision = "s0005"
branch_labels = None
depends_on = None

_TRIGGERS = ("insert", "delete", "update", "truncate")


def _function(name: str, body: str) -> str:
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n{body}\nRETURN NULL;\nEND\n$$"
    )


def _log(rows_sql: str) -> str:
    """One change per turbine of ``rows_sql``: the span of its events (NULL end: ongoing)."""
    return f"""
    INSERT INTO event_change (turbine, "first", "last", changed_at)
    SELECT turbine, min(start),
           CASE WHEN bool_or("end" IS NULL) THEN NULL ELSE max("end") END,
           clock_timestamp()
    FROM ({rows_sql}) AS changed
    GROUP BY turbine;
    """  # noqa: S608 - fixed SQL


_NEW = 'SELECT turbine, start, "end" FROM new_rows'
_OLD = 'SELECT turbine, start, "end" FROM old_rows'


def upgrade() -> None:
    """Create the log and install the triggers on ``turbine_event``."""
    op.execute(
        """
        CREATE TABLE event_change (
            id bigint GENERATED ALWAYS AS IDENTITY,
            turbine text,
            "first" timestamptz,
            "last" timestamptz,
            changed_at timestamptz NOT NULL,
            CONSTRAINT pk_event_change PRIMARY KEY (id)
        )
        """
    )
    op.execute(_function("windpipe_event_change_insert", _log(_NEW)))
    op.execute(_function("windpipe_event_change_delete", _log(_OLD)))
    op.execute(_function("windpipe_event_change_update", _log(f"{_NEW} UNION ALL {_OLD}")))
    op.execute(
        _function(
            "windpipe_event_change_truncate",
            'INSERT INTO event_change (turbine, "first", "last", changed_at) '
            "VALUES (NULL, NULL, NULL, clock_timestamp());",
        )
    )
    for event, tables in (
        ("INSERT", "NEW TABLE AS new_rows"),
        ("DELETE", "OLD TABLE AS old_rows"),
        ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ):
        name = f"windpipe_event_change_{event.lower()}"
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON turbine_event REFERENCING {tables} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )
        op.execute(f"ALTER TABLE turbine_event ENABLE ALWAYS TRIGGER {name}")
    op.execute(
        "CREATE TRIGGER windpipe_event_change_truncate AFTER TRUNCATE ON turbine_event "
        "FOR EACH STATEMENT EXECUTE FUNCTION windpipe_event_change_truncate()"
    )
    op.execute("ALTER TABLE turbine_event ENABLE ALWAYS TRIGGER windpipe_event_change_truncate")


def downgrade() -> None:
    """Drop the triggers, their functions and the log."""
    for event in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS windpipe_event_change_{event} ON turbine_event")
        op.execute(f"DROP FUNCTION IF EXISTS windpipe_event_change_{event}()")
    op.execute("DROP TABLE IF EXISTS event_change")
