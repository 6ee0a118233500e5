"""A farm end to end: three turbines seeded, served, aggregated and loaded, equal to SQL."""

from datetime import UTC, date, datetime, timedelta

import httpx
from sqlalchemy import Engine, text

from tests.conftest import FARM_DAYS as DAYS
from tests.conftest import FARM_TURBINES as TURBINES
from tests.conftest import LiveApi
from windpipe.etl.extract import ApiClient
from windpipe.etl.pipeline import run_range

SIGNALS = [f"{v}_{a}" for v in ("wind_speed", "power") for a in ("mean", "min", "max", "std")]


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
    assert "unknown turbine 'WTG99'; known: WTG01, WTG02, WTG03" in refused.json()["detail"]


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
                "SELECT s.turbine, d.timestamp AT TIME ZONE 'UTC', s.name, d.value FROM data d "
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
