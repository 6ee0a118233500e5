"""A farm end to end: three turbines seeded, served, aggregated and loaded, equal to SQL."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.conftest import LiveApi, new_database, serve
from windpipe.api import create_app
from windpipe.etl.extract import ApiClient
from windpipe.etl.pipeline import run_range
from windpipe.postgres import libpq_conninfo
from windpipe.settings import Settings, TurbineConfig, load_settings
from windpipe.source import store as source_store
from windpipe.source.generator import farm
from windpipe.source.seed import seed_source

DAYS = (date(2024, 6, 1), date(2024, 6, 2))
TURBINES = ["WTG01", "WTG02", "WTG03"]
SIGNALS = [f"{v}_{a}" for v in ("wind_speed", "power") for a in ("mean", "min", "max", "std")]


@pytest.fixture(scope="module")
def fleet_settings(settings: Settings) -> Settings:
    """The session's settings with a three-turbine fleet, as a windpipe.toml would declare it."""
    turbines = [TurbineConfig(id=t, rated_power_kw=2000.0) for t in TURBINES]
    return load_settings(data_dir=settings.data_dir, turbines=turbines, _env_file=None)


@pytest.fixture(scope="module")
def farm_db(target_url: URL) -> Iterator[tuple[Engine, Engine]]:
    """A fresh source seeded with the farm's two days, and a fresh target."""
    with (
        new_database(target_url, "windpipe_fleet_source") as source,
        new_database(target_url, "windpipe_fleet_target") as target,
    ):
        source_store.ensure_schema(source)
        begin = datetime(DAYS[0].year, DAYS[0].month, DAYS[0].day, tzinfo=UTC)
        seed_source(source, begin, begin + timedelta(days=2), turbines=farm(3), seed=5)
        yield source, target


@pytest.fixture(scope="module")
def farm_api(fleet_settings: Settings, farm_db: tuple[Engine, Engine]) -> Iterator[LiveApi]:
    app = create_app(fleet_settings, source_conninfo=libpq_conninfo(farm_db[0].url))
    with serve(app) as api:
        yield api


def test_turbines_lists_the_fleet_with_its_coverage(farm_api: LiveApi) -> None:
    body = httpx.get(f"{farm_api.url}/turbines").json()
    assert [t["id"] for t in body] == TURBINES
    assert all(t["configured"] and t["rated_power_kw"] == 2000.0 for t in body)
    assert all(2600 < t["rows"] <= 2880 for t in body)  # two days at 1 min, less sensor gaps
    assert all(t["first"].startswith("2024-06-01T00:0") for t in body)


def test_data_of_chosen_turbines_and_unknown_ones_refused(farm_api: LiveApi) -> None:
    params = {"start": "2024-06-01", "end": "2024-06-01T01:00", "variables": "power"}
    one = httpx.get(f"{farm_api.url}/data", params=params | {"turbines": "WTG02"}).json()
    assert {r["turbine"] for r in one} == {"WTG02"} and 50 < len(one) <= 60
    every = httpx.get(f"{farm_api.url}/data", params=params).json()
    assert [r["turbine"] for r in every] == sorted(r["turbine"] for r in every)  # by turbine
    assert {r["turbine"] for r in every} == set(TURBINES)
    refused = httpx.get(f"{farm_api.url}/data", params=params | {"turbines": "WTG01,WTG99"})
    assert refused.status_code == 422
    assert "unknown turbine(s) 'WTG99'; known: WTG01, WTG02, WTG03" in refused.json()["detail"]


def _sql_aggregates(source: Engine, day: date) -> dict[tuple[str, datetime, str], float]:
    """The 10-minute aggregates per turbine, computed by PostgreSQL from the raw samples."""
    rows = source.connect().execute(
        text(
            """
            SELECT turbine, date_bin('10 minutes', "timestamp", timestamptz '2000-01-01') AS w,
                   avg(wind_speed), min(wind_speed), max(wind_speed), stddev_samp(wind_speed),
                   avg(power), min(power), max(power), stddev_samp(power)
            FROM data WHERE "timestamp" >= :lo AND "timestamp" < :hi GROUP BY 1, 2
            """
        ),
        {"lo": day, "hi": day + timedelta(days=1)},
    )
    expected = {}
    for turbine, window, *values in rows:
        for name, value in zip(SIGNALS, values, strict=True):
            if value is not None:
                expected[(turbine, window.astimezone(UTC).replace(tzinfo=None), name)] = value
    return expected


def _loaded(target: Engine) -> dict[tuple[str, datetime, str], float]:
    with target.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT s.turbine, d.timestamp, s.name, d.value FROM data d "
                "JOIN signal s ON s.id = d.signal_id"
            )
        )
        return {(t, ts, n): v for t, ts, n, v in rows}


def test_a_farm_day_loads_144_windows_x_8_signals_per_turbine_equal_to_sql(
    farm_api: LiveApi, farm_db: tuple[Engine, Engine]
) -> None:
    source, target = farm_db
    with ApiClient(farm_api.url) as client:
        results = run_range(
            DAYS[0],
            DAYS[1],
            client=client,
            engine=target,
            variables=["wind_speed", "power"],
            aggregations=["mean", "min", "max", "std"],
            turbines=TURBINES,
        )
    assert [r.turbines for r in results] == [3, 3]
    loaded = _loaded(target)
    expected = _sql_aggregates(source, DAYS[0]) | _sql_aggregates(source, DAYS[1])
    assert loaded.keys() == expected.keys()
    assert all(abs(loaded[k] - v) <= 1e-9 * max(1.0, abs(v)) for k, v in expected.items())
    per_turbine_day = {}
    for turbine, ts, _ in loaded:
        per_turbine_day[(turbine, ts.date())] = per_turbine_day.get((turbine, ts.date()), 0) + 1
    assert set(per_turbine_day) == {(t, d) for t in TURBINES for d in DAYS}
    assert all(n == 144 * 8 for n in per_turbine_day.values())  # gaps are short: no empty window
    # One signal of one turbine, queried as the README shows.
    with target.connect() as conn:
        power = conn.execute(
            text(
                "SELECT d.timestamp, d.value FROM data d JOIN signal s ON s.id = d.signal_id "
                "WHERE s.turbine = 'WTG02' AND s.name = 'power_mean' ORDER BY d.timestamp"
            )
        ).all()
    assert len(power) == 288


def test_one_turbine_is_reloaded_alone(farm_api: LiveApi, farm_db: tuple[Engine, Engine]) -> None:
    target = farm_db[1]
    with target.begin() as conn:  # tamper every turbine's rows of the first day
        conn.execute(text("UPDATE data SET value = -1 WHERE timestamp < '2024-06-02'"))
    with ApiClient(farm_api.url) as client:
        (result,) = run_range(
            DAYS[0],
            DAYS[0],
            client=client,
            engine=target,
            variables=["wind_speed", "power"],
            aggregations=["mean", "min", "max", "std"],
            turbines=["WTG02"],
        )
    assert result.turbines == 1 and result.windows == 144
    loaded = _loaded(target)
    day = {k: v for k, v in loaded.items() if k[1].date() == DAYS[0]}
    assert all(v != -1 for (t, _, _), v in day.items() if t == "WTG02")
    assert all(v == -1 for (t, _, _), v in day.items() if t != "WTG02")
