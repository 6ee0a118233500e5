"""Schema migrations on a real PostgreSQL: from the previous release, from nothing, no drift."""

from datetime import UTC, date, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from windpipe.migrations import History, current_revision, ensure_current, upgrade
from windpipe.source import models as source_models
from windpipe.source.store import HISTORY as SOURCE
from windpipe.warehouse import models as target_models
from windpipe.warehouse import reads as target_reads
from windpipe.warehouse.store import HISTORY as TARGET

# The first release's target, as `metadata.create_all` made it (before migrations existed).
PREVIOUS_RELEASE_TARGET = """
CREATE TABLE signal (
    id SERIAL NOT NULL, name VARCHAR(255) NOT NULL,
    CONSTRAINT pk_signal PRIMARY KEY (id), CONSTRAINT uq_signal_name UNIQUE (name)
);
CREATE TABLE data (
    id SERIAL NOT NULL, "timestamp" TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    signal_id INTEGER NOT NULL, value FLOAT(53) NOT NULL,
    CONSTRAINT pk_data PRIMARY KEY (id),
    CONSTRAINT uq_data_signal_id_timestamp UNIQUE (signal_id, "timestamp"),
    CONSTRAINT fk_data_signal_id_signal FOREIGN KEY (signal_id) REFERENCES signal (id)
);
"""


def test_heads_match_the_script_directories() -> None:
    for history in (SOURCE, TARGET):
        config = Config()
        config.set_main_option("script_location", str(history.scripts))
        assert ScriptDirectory.from_config(config).get_heads() == [history.head]


def test_the_previous_release_target_is_migrated_with_every_row_intact(
    empty_database: Engine,
) -> None:
    with empty_database.begin() as conn:
        conn.execute(text(PREVIOUS_RELEASE_TARGET))
        conn.execute(text("INSERT INTO signal (name) VALUES ('wind_speed_mean'), ('power_std')"))
        conn.execute(
            text(
                'INSERT INTO data ("timestamp", signal_id, value) '
                "SELECT timestamp '2024-03-01' + i * interval '10 minutes', 1 + i % 2, i * 0.5 "
                "FROM generate_series(0, 287) AS i"
            )
        )
        before = conn.execute(text("SELECT * FROM data ORDER BY id")).all()
        signals = conn.execute(text("SELECT * FROM signal ORDER BY id")).all()
    assert ensure_current(empty_database, TARGET) is True
    with empty_database.connect() as conn:
        assert current_revision(conn) == TARGET.head
        # The naive UTC window starts are now the same UTC instants (timestamptz, t0004).
        migrated_rows = conn.execute(text("SELECT * FROM data ORDER BY id")).all()
        assert [(i, ts.replace(tzinfo=UTC), s, v) for i, ts, s, v in before] == [
            (i, ts.astimezone(UTC), s, v) for i, ts, s, v in migrated_rows
        ]
        assert all(ts.tzinfo is not None for _, ts, _, _ in migrated_rows)
        migrated = conn.execute(
            text("SELECT id, name, turbine, variable, aggregation FROM signal ORDER BY id")
        ).all()
        assert [(i, n) for i, n, *_ in migrated] == [tuple(r) for r in signals]
        # Existing signals belong to the default turbine; variable and aggregation are parsed.
        assert [tuple(r[2:]) for r in migrated] == [
            ("WTG01", "wind_speed", "mean"),
            ("WTG01", "power", "std"),
        ]
        id_type = conn.execute(
            text(
                "SELECT data_type FROM information_schema.columns "
                "WHERE table_name = 'data' AND column_name = 'id'"
            )
        ).scalar_one()
        sequence_max = conn.execute(
            text("SELECT max_value FROM pg_sequences WHERE sequencename = 'data_id_seq'")
        ).scalar_one()
    assert id_type == "bigint" and sequence_max == 2**63 - 1
    with empty_database.connect() as conn:  # the store reads the migrated tables as before
        day = date(2024, 3, 1)
        assert target_reads.aggregates_frame(conn, day, day, ["power_std"]).height == 72
    assert ensure_current(empty_database, TARGET) is False  # current: one query, no work


def test_t0004_keeps_every_instant_whatever_the_session_time_zone(empty_database: Engine) -> None:
    from alembic import command

    def alembic_on(conn: Connection) -> Config:
        config = Config()
        config.set_main_option("script_location", str(TARGET.scripts))
        config.attributes["connection"] = conn
        return config

    name = empty_database.url.database
    with empty_database.begin() as conn:  # later sessions of this database start in Berlin
        conn.execute(text(f"ALTER DATABASE \"{name}\" SET timezone = 'Europe/Berlin'"))
    empty_database.dispose()  # pooled sessions keep the zone they started with
    upgrade(empty_database, TARGET, "t0003")
    # Naive UTC starts around both of 2026's clock changes in Berlin (March 29, October 25).
    naive = [datetime(2026, 3, 29, 0, 0) + k * timedelta(minutes=10) for k in range(24)] + [
        datetime(2026, 10, 24, 23, 0) + k * timedelta(minutes=10) for k in range(24)
    ]
    with empty_database.begin() as conn:
        assert conn.execute(text("SHOW timezone")).scalar_one() == "Europe/Berlin"
        conn.execute(text("INSERT INTO signal (turbine, name) VALUES ('WTG01', 'power_mean')"))
        for moment in naive:
            conn.execute(
                text('INSERT INTO data ("timestamp", signal_id, value) VALUES (:t, 1, 1.0)'),
                {"t": moment},
            )
    upgrade(empty_database, TARGET, "t0004")
    with empty_database.connect() as conn:
        held = conn.execute(text('SELECT "timestamp" FROM data ORDER BY id')).scalars().all()
    assert [t.astimezone(UTC) for t in held] == [t.replace(tzinfo=UTC) for t in naive]
    with empty_database.begin() as conn:
        command.downgrade(alembic_on(conn), "t0003")
    with empty_database.connect() as conn:
        back = conn.execute(text('SELECT "timestamp" FROM data ORDER BY id')).scalars().all()
        assert current_revision(conn) == "t0003"
    assert back == naive


@pytest.mark.parametrize("history", [SOURCE, TARGET], ids=["source", "target"])
def test_migrations_on_an_empty_database_match_the_models(
    empty_database: Engine, history: History
) -> None:
    assert ensure_current(empty_database, history) is True
    metadata = source_models.metadata if history is SOURCE else target_models.metadata
    with empty_database.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
        tables = set(inspect(conn).get_table_names())
    assert tables == {*metadata.tables, "alembic_version"}


def test_concurrent_migrations_serialize(empty_database: Engine) -> None:
    import threading

    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            ensure_current(empty_database, TARGET)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with empty_database.connect() as conn:
        assert current_revision(conn) == TARGET.head


def test_t0006_partitions_data_by_month_keeping_every_row_and_id(empty_database: Engine) -> None:
    from alembic import command

    upgrade(empty_database, TARGET, "t0005")
    with empty_database.begin() as conn:
        conn.execute(text("INSERT INTO signal (turbine, name) VALUES ('WTG01', 'power_mean')"))
        conn.execute(
            text(
                'INSERT INTO data ("timestamp", signal_id, value) '
                "SELECT timestamptz '2024-01-31 20:00+00' + i * interval '10 minutes', 1, i * 0.5 "
                "FROM generate_series(0, 59) AS i"
            )
        )
        before = conn.execute(text("SELECT * FROM data ORDER BY id")).all()
    upgrade(empty_database, TARGET, "t0006")
    with empty_database.connect() as conn:
        assert conn.execute(text("SELECT * FROM data ORDER BY id")).all() == before
        months = conn.execute(
            text("SELECT tableoid::regclass::text, count(*) FROM data GROUP BY 1 ORDER BY 1")
        ).all()
        kind = conn.execute(text("SELECT relkind FROM pg_class WHERE relname = 'data'")).scalar()
    assert kind == "p" and [tuple(m) for m in months] == [
        ("data_2024_01", 24),
        ("data_2024_02", 36),
    ]
    with empty_database.begin() as conn:  # new rows take the next ids
        conn.execute(
            text("INSERT INTO data (\"timestamp\", signal_id, value) VALUES ('2024-02-02', 1, 1)")
        )
        assert conn.execute(text("SELECT max(id) FROM data")).scalar() == 61
    config = Config()
    config.set_main_option("script_location", str(TARGET.scripts))
    with empty_database.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "t0005")
    with empty_database.connect() as conn:
        assert conn.execute(text("SELECT * FROM data ORDER BY id")).all()[:60] == before
        kind = conn.execute(text("SELECT relkind FROM pg_class WHERE relname = 'data'")).scalar()
    assert kind == "r"
