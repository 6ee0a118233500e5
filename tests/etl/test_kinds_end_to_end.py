"""Signal kinds through the whole ETL: a real source with a direction and a status column, a real
API on loopback, the daily path into a real target; the target checked against PostgreSQL's own
computation over the source rows, and thin windows left out and recorded."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.conftest import new_database, serve
from windpipe.api import create_app
from windpipe.catalog import SignalKind
from windpipe.etl.extract import ApiClient
from windpipe.etl.pipeline import run_range
from windpipe.postgres import libpq_conninfo
from windpipe.settings import Settings, SignalConfig, load_settings
from windpipe.source import store as source_store
from windpipe.source.seed import seed_source

DAY = date(2024, 5, 2)
BEGIN = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)


@pytest.fixture
def scada(settings: Settings) -> Settings:
    """The session's settings with a direction (angle) and a status (state) declared."""
    signals = {
        **settings.signals,
        "wind_direction": SignalConfig(kind="angle", unit="deg", range=(0, 360), aggregate=True),
        "status": SignalConfig(kind="state", aggregations=["mode", "last"], aggregate=True),
    }
    return load_settings(
        data_dir=settings.data_dir, signals=signals, etl_min_coverage=0.5, _env_file=None
    )


@pytest.fixture
def databases(target_url: URL) -> Iterator[tuple[Engine, Engine]]:
    """A fresh source holding a day of 1-minute samples with a direction and a status column,
    its direction turning through north, and a fresh target."""
    with (
        new_database(target_url, "windpipe_kinds_source") as source,
        new_database(target_url, "windpipe_kinds_target") as target,
    ):
        source_store.ensure_schema(source)
        with source.begin() as conn:
            conn.execute(text("ALTER TABLE data ADD COLUMN wind_direction double precision"))
            conn.execute(text("ALTER TABLE data ADD COLUMN status double precision"))
        seed_source(source, BEGIN, BEGIN + timedelta(days=1), seed=5)
        with source.begin() as conn:
            # Veering through north every 20 minutes; stopped (code 2) from 06:00 to 07:00.
            conn.execute(
                text(
                    """
                    UPDATE data SET
                      wind_direction = mod((350 + 20 * sin(extract(epoch FROM "timestamp") / 1200)
                                            + 360)::numeric, 360)::float8,
                      status = CASE WHEN extract(hour FROM "timestamp" AT TIME ZONE 'UTC') = 6
                                    THEN 2 ELSE 1 END
                    """
                )
            )
            # 03:00-03:10 keeps 3 of its 10 samples: under half, not written.
            conn.execute(
                text(
                    'DELETE FROM data WHERE "timestamp" >= :s AND "timestamp" < :e '
                    'AND extract(minute FROM "timestamp") >= 3'
                ),
                {"s": BEGIN + timedelta(hours=3), "e": BEGIN + timedelta(hours=3, minutes=10)},
            )
        yield source, target


def test_directions_states_and_thin_windows_load_as_their_kinds_say(
    scada: Settings, databases: tuple[Engine, Engine]
) -> None:
    source, target = databases
    rollup = scada.rollup
    assert rollup.kind("wind_direction") is SignalKind.ANGLE
    app = create_app(scada, source_conninfo=libpq_conninfo(source.url))
    with serve(app) as api, ApiClient(api.url) as client:
        (result,) = run_range(DAY, DAY, client=client, engine=target, rollup=rollup)
    assert result.windows == 143  # 03:00 left out

    with source.connect() as conn:
        expected = {
            (w.astimezone(UTC).replace(tzinfo=None), name): value
            for w, name, value in conn.execute(
                text(
                    """
                    WITH w AS (
                      SELECT to_timestamp(floor(extract(epoch FROM "timestamp") / 600) * 600) AS w,
                             wind_direction AS d, status
                      FROM data)
                    SELECT w, 'wind_direction_mean',
                           mod((degrees(atan2(avg(sin(radians(d))), avg(cos(radians(d))))) + 360)
                               ::numeric, 360)::float8
                    FROM w GROUP BY w
                    UNION ALL
                    SELECT w, 'status_mode', mode() WITHIN GROUP (ORDER BY status) FROM w
                    GROUP BY w
                    UNION ALL
                    SELECT w, 'wind_direction_arithmetic', avg(d) FROM w GROUP BY w
                    """
                )
            )
        }
    with target.connect() as conn:
        loaded = {
            (ts, name): value
            for ts, name, value in conn.execute(
                text(
                    "SELECT d.timestamp AT TIME ZONE 'UTC', s.name, d.value FROM data d "
                    "JOIN signal s ON s.id = d.signal_id"
                )
            )
        }
        thin = conn.execute(text("SELECT turbine, day, thin_windows FROM day_load")).all()
    assert thin == [("WTG01", DAY, 1)]
    three = datetime(2024, 5, 2, 3, 0)
    assert (three, "wind_direction_mean") not in loaded
    for (w, name), value in expected.items():
        if name == "wind_direction_arithmetic" or w == three:
            continue
        got = loaded[(w, name)]
        if name == "wind_direction_mean":
            assert abs((got - value + 180) % 360 - 180) < 1e-9, (w, got, value)
            assert 0 <= got < 360
        else:
            assert got == value
    # The arithmetic mean is what windpipe wrote before kinds: 100+ degrees off around north.
    worst = max(
        abs((loaded[(w, "wind_direction_mean")] - v + 180) % 360 - 180)
        for (w, name), v in expected.items()
        if name == "wind_direction_arithmetic" and w != three
    )
    assert worst > 90
    stopped = [loaded[(datetime(2024, 5, 2, 6, m), "status_mode")] for m in range(0, 60, 10)]
    assert stopped == [2.0] * 6
    assert {name for _, name in loaded} == set(rollup.signals)


@pytest.fixture
def counter_databases(target_url: URL) -> Iterator[tuple[Engine, Engine]]:
    """A fresh source holding three days of a 1-minute energy counter (kWh) that resets once,
    on the second day at 12:00, and a fresh target."""
    with (
        new_database(target_url, "windpipe_counter_source") as source,
        new_database(target_url, "windpipe_counter_target") as target,
    ):
        source_store.ensure_schema(source)
        with source.begin() as conn:
            conn.execute(text("ALTER TABLE data ADD COLUMN energy double precision"))
        seed_source(source, BEGIN, BEGIN + timedelta(days=3), seed=9)
        with source.begin() as conn:
            conn.execute(
                text(
                    """
                    WITH c AS (
                      SELECT "timestamp", sum(greatest(power, 0) / 60) OVER (
                               PARTITION BY "timestamp" >= :reset ORDER BY "timestamp") AS e
                      FROM data)
                    UPDATE data SET energy = c.e FROM c WHERE data."timestamp" = c."timestamp"
                    """
                ),
                {"reset": BEGIN + timedelta(days=1, hours=12)},
            )
        yield source, target


def test_counter_deltas_add_up_to_the_increase_across_days_and_a_reset(
    settings: Settings, counter_databases: tuple[Engine, Engine]
) -> None:
    source, target = counter_databases
    signals = {**settings.signals, "energy": SignalConfig(kind="counter", aggregate=True)}
    scada = load_settings(
        data_dir=settings.data_dir,
        signals=signals,
        etl_variables=["energy"],
        etl_aggregations=["mean", "count"],
        _env_file=None,
    )
    assert dict(scada.rollup.aggregations) == {"energy": ("delta", "count")}
    second, third = DAY + timedelta(days=1), DAY + timedelta(days=2)
    app = create_app(scada, source_conninfo=libpq_conninfo(source.url))

    def deltas() -> dict[datetime, float]:
        with target.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT d.timestamp AT TIME ZONE 'UTC', d.value FROM data d JOIN signal s "
                    "ON s.id = d.signal_id WHERE s.name = 'energy_delta'"
                )
            )
            return dict(rows.all())

    with serve(app) as api, ApiClient(api.url) as client:
        # Days two and three in one request; day one is never loaded: its last sample is
        # fetched for the first increase (GET /data?last=true).
        run_range(second, third, client=client, engine=target, rollup=scada.rollup)
        together = deltas()
        run_range(third, third, client=client, engine=target, rollup=scada.rollup)  # alone
        assert deltas() == together

    with source.connect() as conn:
        first_value, before_reset, at_reset, last_value = conn.execute(
            text(
                """
                SELECT (SELECT energy FROM data WHERE "timestamp" < :two
                        ORDER BY "timestamp" DESC LIMIT 1),
                       (SELECT energy FROM data WHERE "timestamp" < :reset
                        ORDER BY "timestamp" DESC LIMIT 1),
                       (SELECT energy FROM data WHERE "timestamp" = :reset),
                       (SELECT energy FROM data ORDER BY "timestamp" DESC LIMIT 1)
                """
            ),
            {"two": BEGIN + timedelta(days=1), "reset": BEGIN + timedelta(days=1, hours=12)},
        ).one()
    # From day one's last reading to the reset, then from zero up to the last reading.
    increase = (before_reset - first_value) + last_value
    assert at_reset >= 0 and len(together) == 2 * 144
    assert sum(together.values()) == pytest.approx(increase, rel=1e-12)
    assert all(v >= 0 for v in together.values())
