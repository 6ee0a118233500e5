"""The catalog is the one place a source variable is declared: the rest follows from it."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.conftest import new_database, serve
from windpipe import catalog
from windpipe.api import create_app
from windpipe.catalog import (
    day_bounds,
    days_touched,
    iter_day_spans,
    parse_signal,
    signal_name,
    window_floor,
    windows_of_day,
)
from windpipe.etl.extract import ApiClient
from windpipe.etl.pipeline import run_range
from windpipe.postgres import libpq_conninfo
from windpipe.settings import Settings, SignalConfig, load_settings
from windpipe.source import store as source_store
from windpipe.source.seed import seed_source

DAY = date(2024, 5, 2)


def test_signal_names_round_trip() -> None:
    assert signal_name("wind_speed", "mean") == "wind_speed_mean"
    assert parse_signal("ambient_temperature_std") == ("ambient_temperature", "std")
    with pytest.raises(ValueError, match="not <variable>_<aggregation> with a known aggregation"):
        parse_signal("wind_speed_median")


def test_days_and_windows() -> None:
    assert day_bounds(DAY) == (datetime(2024, 5, 2), datetime(2024, 5, 3))
    with pytest.raises(ValueError, match="last representable day"):
        day_bounds(date.max)
    start = datetime(2024, 5, 1, 23, 0, tzinfo=UTC)
    assert days_touched(start, start + timedelta(hours=1)) == [date(2024, 5, 1)]
    assert days_touched(start, start + timedelta(hours=2)) == [date(2024, 5, 1), DAY]
    spans = list(iter_day_spans(start, start + timedelta(hours=2)))
    assert [(d, lo.hour, hi.hour) for d, lo, hi in spans] == [
        (date(2024, 5, 1), 23, 0),
        (DAY, 0, 1),
    ]
    assert window_floor(datetime(2024, 5, 2, 10, 19, 59, tzinfo=UTC)) == datetime(
        2024, 5, 2, 10, 10
    )
    windows = windows_of_day(DAY)
    assert (
        len(windows) == catalog.WINDOWS_PER_DAY == 144 and windows[1] - windows[0] == catalog.WINDOW
    )


@pytest.fixture
def with_direction(settings: Settings) -> Settings:
    """The session's settings with one more signal declared: the wind direction (the generator
    already produces it), as a ``[signals.wind_direction]`` table in windpipe.toml declares it."""
    signals = {
        **settings.signals,
        "wind_direction": SignalConfig(unit="deg", range=(0, 360), aggregate=True),
    }
    return load_settings(data_dir=settings.data_dir, signals=signals, _env_file=None)


@pytest.fixture
def farm_databases(target_url: URL) -> Iterator[tuple[Engine, Engine]]:
    """A fresh source (migrated, plus the new column added by hand) and a fresh target."""
    with (
        new_database(target_url, "windpipe_catalog_source") as source,
        new_database(target_url, "windpipe_catalog_target") as target,
    ):
        source_store.ensure_schema(source)
        with source.begin() as conn:  # what an operator does for a new column
            conn.execute(text("ALTER TABLE data ADD COLUMN wind_direction double precision"))
        yield source, target


def test_a_signal_declared_in_the_configuration_flows_through_the_api_and_the_etl(
    with_direction: Settings, farm_databases: tuple[Engine, Engine]
) -> None:
    settings = with_direction
    source, target = farm_databases
    begin = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    columns = [v.column for v in settings.variables.values()]
    seed_source(source, begin, begin + timedelta(days=1), seed=3, columns=columns)
    with source.connect() as conn:
        held = conn.execute(text("SELECT count(wind_direction), max(wind_direction) FROM data"))
        count, highest = held.one()
    assert count == 1440 and 0 <= highest < 360

    app = create_app(settings, source_conninfo=libpq_conninfo(source.url))
    with serve(app) as api:
        names = [v["name"] for v in httpx.get(f"{api.url}/variables").json()]
        assert names == ["wind_speed", "power", "ambient_temperature", "wind_direction"]
        rows = httpx.get(
            f"{api.url}/data",
            params={
                "start": "2024-05-02T00:00",
                "end": "2024-05-02T00:02",
                "variables": "wind_direction",
            },
        ).json()
        assert [sorted(r) for r in rows] == [["timestamp", "turbine", "wind_direction"]] * 2

        chosen = settings.model_copy(update={"etl_variables": ["wind_speed", "wind_direction"]})
        with ApiClient(api.url) as client:
            (result,) = run_range(
                DAY,
                DAY,
                client=client,
                engine=target,
                variables=chosen.etl_variables,
                aggregations=chosen.etl_aggregations,
            )
    assert result.windows == 144 and result.rows_written == 144 * 8

    # The target's wind-direction aggregates equal PostgreSQL's own, computed from the source.
    with source.connect() as conn:
        expected = {
            (ts.astimezone(UTC).replace(tzinfo=None), name): value
            for ts, name, value in conn.execute(
                text(
                    """
                    SELECT to_timestamp(floor(extract(epoch FROM "timestamp") / 600) * 600) AS w,
                           s.name, CASE s.name WHEN 'wind_direction_mean' THEN avg(wind_direction)
                                                WHEN 'wind_direction_min' THEN min(wind_direction)
                                                WHEN 'wind_direction_max' THEN max(wind_direction)
                                                ELSE stddev_samp(wind_direction) END
                    FROM data, (VALUES ('wind_direction_mean'), ('wind_direction_min'),
                                       ('wind_direction_max'), ('wind_direction_std')) AS s(name)
                    GROUP BY w, s.name
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
                    "JOIN signal s "
                    "ON s.id = d.signal_id WHERE s.name LIKE 'wind_direction_%'"
                )
            )
        }
    assert loaded.keys() == expected.keys() and len(loaded) == 144 * 4
    assert all(abs(loaded[k] - expected[k]) <= 1e-9 * max(1.0, abs(expected[k])) for k in loaded)
