"""``windpipe flags``' pipeline, ``GET /flags`` and ``GET /power-curves`` on a real API on
loopback with real PostgreSQL: a seeded farm loaded by the ETL, events imported, flags stored, and
the API's answers equal to the pure functions run on what the databases hold."""

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from tests.conftest import FARM_DAYS, FARM_TURBINES, LiveApi, new_database, serve
from windpipe.analytics.flags import FlagConfig
from windpipe.analytics.power_curve import CurveConfig, Site, power_curves
from windpipe.analytics.windows import wide_windows
from windpipe.api import create_app
from windpipe.catalog import window_categories
from windpipe.etl.extract import ApiClient
from windpipe.etl.flags import run_flags
from windpipe.etl.session import session_of
from windpipe.postgres import libpq_conninfo
from windpipe.settings import Settings, TurbineConfig, load_settings
from windpipe.source import store as source_store
from windpipe.source.events import import_events
from windpipe.source.generator import farm
from windpipe.source.seed import seed_source
from windpipe.warehouse.flags import flag_days, flags_frame
from windpipe.warehouse.reads import aggregates_frame

EVENTS = """turbine,start,end,code,message
WTG01,2024-06-01T08:00:00Z,2024-06-01T10:00:00Z,101,Service
WTG02,2024-06-02T00:00:00Z,,205,Grid fault
"""


@dataclass
class Farm:
    settings: Settings
    source: Engine
    target: Engine
    api: LiveApi


@pytest.fixture(scope="module")
def curve_farm(
    settings: Settings, target_url: URL, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Farm]:
    turbines = [
        TurbineConfig(id=t, rated_power_kw=2000.0, elevation_m=100.0 * i)
        for i, t in enumerate(FARM_TURBINES)
    ]
    chosen = load_settings(
        data_dir=settings.data_dir,
        turbines=turbines,
        etl_variables=["wind_speed", "power", "ambient_temperature"],
        etl_aggregations=["mean", "std", "count"],
        power_curve_min_coverage=0.9,
        event_codes={"101": {"category": "scheduled_maintenance"}},
        _env_file=None,
    )
    with (
        new_database(target_url, "windpipe_curves_source") as source,
        new_database(target_url, "windpipe_curves_target") as target,
    ):
        source_store.ensure_schema(source)
        begin = datetime(FARM_DAYS[0].year, FARM_DAYS[0].month, FARM_DAYS[0].day, tzinfo=UTC)
        seed_source(source, begin, begin + timedelta(days=2), turbines=farm(3), seed=5)
        path: Path = tmp_path_factory.mktemp("curves") / "events.csv"
        path.write_text(EVENTS)
        import_events(path, engine=source)
        app = create_app(
            chosen,
            source_conninfo=libpq_conninfo(source.url),
            target_conninfo=libpq_conninfo(target.url),
        )
        with serve(app) as api:
            with ApiClient(api.url) as client:
                session = session_of(chosen, client=client, engine=target, turbines=FARM_TURBINES)
                session.run(FARM_DAYS[0], FARM_DAYS[1])
                run_flags(
                    client=client,
                    engine=target,
                    turbines=FARM_TURBINES,
                    first=FARM_DAYS[0],
                    last=FARM_DAYS[1],
                    config=FlagConfig.of(chosen),
                    sites={t.id: Site.of(t) for t in turbines},
                    codes={"101": "scheduled_maintenance"},
                )
            yield Farm(chosen, source, target, api)


def _get(farm: Farm, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{farm.api.url}{path}", params=params, timeout=60)


def test_flags_are_stored_per_turbine_and_day_and_served(curve_farm: Farm) -> None:
    with curve_farm.target.connect() as conn:
        stored = flags_frame(conn, FARM_DAYS[0], FARM_DAYS[1])
        days = flag_days(conn, FARM_DAYS[0], FARM_DAYS[1])
    assert set(days) == {(t, d) for t in FARM_TURBINES for d in FARM_DAYS}
    assert sum(days.values()) == stored.height
    # WTG02 stands still in its grid fault from 2024-06-02 on: an event explains it, no flag then
    stopped = stored.filter(pl.col("flag") == "stopped_with_wind")
    assert stopped.filter(
        (pl.col("turbine") == "WTG02") & (pl.col("timestamp") >= datetime(2024, 6, 2))
    ).is_empty()
    answer = _get(curve_farm, "/flags", start="2024-06-01", end="2024-06-03", format="csv")
    assert answer.status_code == 200, answer.text
    served = pl.read_csv(io.BytesIO(answer.content), try_parse_dates=True)
    assert served.height == stored.height
    rows = _get(curve_farm, "/flags", start="2024-06-01", end="2024-06-03").json()
    assert [(r["turbine"], r["timestamp"], r["flag"], r["signal"]) for r in rows] == [
        (t, ts.strftime("%Y-%m-%dT%H:%M:%SZ"), f, s)
        for t, ts, f, s in stored.sort("turbine", "timestamp", "flag", "signal").iter_rows()
    ]
    one = _get(curve_farm, "/flags", start="2024-06-01", end="2024-06-03", turbines="WTG03")
    assert {r["turbine"] for r in one.json()} <= {"WTG03"}
    assert (
        _get(curve_farm, "/flags", start="2024-06-01", end="2024-06-03", turbines="X").status_code
        == 422
    )


def test_flags_are_replaced_not_added(curve_farm: Farm) -> None:
    with curve_farm.target.connect() as conn:
        before = flags_frame(conn, FARM_DAYS[0], FARM_DAYS[1])
    with ApiClient(curve_farm.api.url) as client:
        run_flags(
            client=client,
            engine=curve_farm.target,
            turbines=FARM_TURBINES,
            first=FARM_DAYS[0],
            last=FARM_DAYS[1],
            config=FlagConfig.of(curve_farm.settings),
            sites={t.id: Site.of(t) for t in curve_farm.settings.fleet},
            codes={"101": "scheduled_maintenance"},
        )
    with curve_farm.target.connect() as conn:
        assert flags_frame(conn, FARM_DAYS[0], FARM_DAYS[1]).equals(before)


def test_power_curves_equal_the_pure_computation_on_the_databases(curve_farm: Farm) -> None:
    config = CurveConfig.of(curve_farm.settings)
    with curve_farm.target.connect() as conn:
        long = aggregates_frame(conn, FARM_DAYS[0], FARM_DAYS[1], config.signals)
        stored = flags_frame(conn, FARM_DAYS[0], FARM_DAYS[1])
    with ApiClient(curve_farm.api.url) as client:
        events = client.events(datetime(2024, 6, 1), datetime(2024, 6, 3))
    windows = wide_windows(long, config.signals)
    held = windows.select("turbine", "timestamp")
    categories = window_categories(
        events, held, held, {"101": "scheduled_maintenance"}, window=config.window
    )
    sites = {t.id: Site.of(t) for t in curve_farm.settings.fleet}
    expected = power_curves(windows, categories, stored, sites, config)
    answer = _get(curve_farm, "/power-curves", start="2024-06-01", end="2024-06-03", format="arrow")
    assert answer.status_code == 200, answer.text
    served = pl.read_ipc_stream(io.BytesIO(answer.content))
    assert served.height == expected.bins.height
    for turbine in FARM_TURBINES:
        ours = served.filter(pl.col("turbine") == turbine)
        theirs = expected.bins.filter(pl.col("turbine") == turbine)
        assert ours["bin"].to_list() == theirs["bin"].to_list()
        assert ours["windows"].to_list() == theirs["windows"].cast(pl.Int64).to_list()
        assert ours["power"].to_list() == pytest.approx(theirs["power"].to_list(), nan_ok=True)
        facts = expected.completeness[turbine]
        assert set(ours["complete"].to_list()) == {facts.complete}
        assert not facts.complete  # two days are far from 180 hours
    # the densities use each turbine's elevation: WTG03 (200 m) has thinner air than WTG01 (0 m)
    density = served.group_by("turbine").agg(pl.col("density").mean()).sort("turbine")
    assert density["density"][0] > density["density"][2]
    # the service hours of WTG01 and WTG02's grid fault are not in the curves
    assert sum(expected.used.values()) < held.height
    csv = _get(curve_farm, "/power-curves", start="2024-06-01", end="2024-06-03", format="csv")
    assert csv.status_code == 200 and csv.text.startswith("turbine,bin,windows,")
    one = _get(curve_farm, "/power-curves", start="2024-06-01", end="2024-06-02", turbines="WTG01")
    assert {r["turbine"] for r in one.json()} == {"WTG01"}
