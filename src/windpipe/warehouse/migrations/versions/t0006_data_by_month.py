"""``data`` is partitioned by UTC month (declaratively, on ``timestamp``), every value kept.

Revision ID: t0006
Revises: t0005

A backfill can then build a whole month as a table of its own, without indexes, index and check
it once, and swap it in (``warehouse.bulk``); a query over a range reads only its months. The
columns, their meaning and the constraints stay; PostgreSQL asks that a partitioned table's
primary key hold the partition key, so it is ``(id, timestamp)`` (ids still come from
``data_id_seq``, one per row). Existing rows keep their ids; each month they span gets its
partition, filled by one ``INSERT ... SELECT`` before the month's indexes are attached.
"""

from alembic import op

revision = "t0006"
down_revision = "t0005"
branch_labels = None
depends_on = None

_FINITE = "value NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)"
_COLUMNS = """
    id bigint NOT NULL DEFAULT nextval('data_id_seq'),
    "timestamp" timestamp with time zone NOT NULL,
    signal_id integer NOT NULL,
    value double precision NOT NULL,
"""


def _months() -> list[str]:
    """The first days of the months the old table holds rows of, as ISO dates."""
    rows = op.get_bind().exec_driver_sql(
        "SELECT DISTINCT date_trunc('month', \"timestamp\" AT TIME ZONE 'UTC')::date "
        "FROM data_t0005 ORDER BY 1"
    )
    return [day.isoformat() for (day,) in rows]


def _after(first: str) -> str:
    year, month = int(first[:4]), int(first[5:7])
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}-01"


def upgrade() -> None:
    """Rebuild ``data`` partitioned by month, moving every row (ids and values kept)."""
    op.execute("ALTER TABLE data RENAME TO data_t0005")
    op.execute("ALTER TABLE data_t0005 DROP CONSTRAINT pk_data")
    op.execute("ALTER TABLE data_t0005 DROP CONSTRAINT uq_data_signal_id_timestamp")
    op.execute(
        f"""
        CREATE TABLE data ({_COLUMNS}
            CONSTRAINT pk_data PRIMARY KEY (id, "timestamp"),
            CONSTRAINT uq_data_signal_id_timestamp UNIQUE (signal_id, "timestamp"),
            CONSTRAINT fk_data_signal_id_signal FOREIGN KEY (signal_id) REFERENCES signal (id),
            CONSTRAINT ck_data_finite CHECK ({_FINITE})
        ) PARTITION BY RANGE ("timestamp")
        """
    )
    op.execute("ALTER SEQUENCE data_id_seq OWNED BY data.id")  # else dropped with the old table
    for first in _months():
        name = f"data_{first[:4]}_{first[5:7]}"
        op.execute(
            f"CREATE TABLE {name} PARTITION OF data "
            f"FOR VALUES FROM ('{first} 00:00:00+00') TO ('{_after(first)} 00:00:00+00')"
        )
    op.execute('INSERT INTO data SELECT id, "timestamp", signal_id, value FROM data_t0005')
    op.execute("DROP TABLE data_t0005")


def downgrade() -> None:
    """Back to one table (every row and id kept); the months' partitions go with it."""
    op.execute("ALTER TABLE data RENAME TO data_t0006")
    op.execute(
        f"""
        CREATE TABLE data ({_COLUMNS}
            CONSTRAINT ck_data_finite CHECK ({_FINITE})
        )
        """
    )
    op.execute("ALTER SEQUENCE data_id_seq OWNED BY data.id")
    op.execute('INSERT INTO data SELECT id, "timestamp", signal_id, value FROM data_t0006')
    op.execute("DROP TABLE data_t0006")  # its partitions go with it
    op.execute("ALTER TABLE data ADD CONSTRAINT pk_data PRIMARY KEY (id)")
    op.execute(
        "ALTER TABLE data ADD CONSTRAINT uq_data_signal_id_timestamp "
        'UNIQUE (signal_id, "timestamp")'
    )
    op.execute(
        "ALTER TABLE data ADD CONSTRAINT fk_data_signal_id_signal "
        "FOREIGN KEY (signal_id) REFERENCES signal (id)"
    )
