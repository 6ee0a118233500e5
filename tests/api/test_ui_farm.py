"""The dashboard's farm numbers, IEC power curves and flag counts, checked against independent
computations (SQL, NumPy) over the same rows, on real PostgreSQL and a live API."""

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.api.ui_browser import chromium, find_chromium
from tests.conftest import FARM_DAYS, FARM_TURBINES, LiveApi, new_database, serve
from windpipe.analytics.flags import FlagConfig
from windpipe.analytics.power_curve import Site
from windpipe.api import create_app
from windpipe.etl.extract import ApiClient
from windpipe.etl.flags import run_flags
from windpipe.etl.kpis import run_kpis
from windpipe.etl.session import session_of
from windpipe.postgres import libpq_conninfo
from windpipe.settings import Settings, TurbineConfig, load_settings
from windpipe.source import store as source_store
from windpipe.source.events import import_events
from windpipe.source.generator import farm
from windpipe.source.seed import seed_source
from windpipe.warehouse.flags import flags_frame, replace_flags

EVENTS = """turbine,start,end,code,message
WTG01,2024-06-01T08:00:00Z,2024-06-01T10:00:00Z,101,Service
WTG02,2024-06-02T00:00:00Z,,205,Grid fault
"""
WARRANTED = ((3.0, 0.0), (12.0, 2000.0), (25.0, 2000.0))
RANGE = {"start": "2024-06-01", "end": "2024-06-03"}


@dataclass
class Farm:
    settings: Settings
    source: Engine
    target: Engine
    api: LiveApi
    bare: LiveApi


@pytest.fixture(scope="module")
def dash_farm(
    settings: Settings, target_url: URL, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Farm]:
    """Three turbines' two days: aggregated, flagged, their daily figures computed; WTG01 with a
    warranted curve. ``bare`` serves a target with aggregates only (no figures, no flags)."""
    turbines = [
        TurbineConfig(
            id=t,
            rated_power_kw=2000.0,
            elevation_m=100.0 * i,
            power_curve=WARRANTED if t == "WTG01" else None,
        )
        for i, t in enumerate(FARM_TURBINES)
    ]
    chosen = load_settings(
        data_dir=settings.data_dir,
        turbines=turbines,
        etl_variables=["wind_speed", "power", "ambient_temperature"],
        etl_aggregations=["mean", "min", "max", "count"],
        power_curve_min_coverage=0.9,
        event_codes={"101": {"category": "scheduled_maintenance"}},
        _env_file=None,
    )
    with (
        new_database(target_url, "windpipe_dash_source") as source,
        new_database(target_url, "windpipe_dash_target") as target,
        new_database(target_url, "windpipe_dash_bare") as bare,
    ):
        source_store.ensure_schema(source)
        begin = datetime(FARM_DAYS[0].year, FARM_DAYS[0].month, FARM_DAYS[0].day, tzinfo=UTC)
        seed_source(source, begin, begin + timedelta(days=2), turbines=farm(3), seed=5)
        path: Path = tmp_path_factory.mktemp("dash") / "events.csv"
        path.write_text(EVENTS)
        import_events(path, engine=source)
        codes = {"101": "scheduled_maintenance"}
        app = create_app(
            chosen,
            source_conninfo=libpq_conninfo(source.url),
            target_conninfo=libpq_conninfo(target.url),
        )
        bare_app = create_app(
            chosen,
            source_conninfo=libpq_conninfo(source.url),
            target_conninfo=libpq_conninfo(bare.url),
        )
        with serve(app) as api, serve(bare_app) as bare_api:
            with ApiClient(api.url) as client:
                for engine in (target, bare):
                    session_of(chosen, client=client, engine=engine, turbines=FARM_TURBINES).run(
                        FARM_DAYS[0], FARM_DAYS[1]
                    )
                run_flags(
                    client=client,
                    engine=target,
                    turbines=FARM_TURBINES,
                    first=FARM_DAYS[0],
                    last=FARM_DAYS[1],
                    config=FlagConfig.of(chosen),
                    sites={t.id: Site.of(t) for t in turbines},
                    codes=codes,
                )
                _add_flags(target)
                run_kpis(
                    FARM_DAYS[0],
                    FARM_DAYS[1],
                    client=client,
                    engine=target,
                    fleet=chosen.fleet,
                    codes=codes,
                    classes=chosen.availability.classes,
                )
            yield Farm(chosen, source, target, api, bare_api)


#: Flags the test adds to WTG03's first day (the seeded farm raises none over two days).
ADDED = [
    ("WTG03", datetime(2024, 6, 1, 12, 0), "out_of_range", "wind_speed_mean"),
    ("WTG03", datetime(2024, 6, 1, 12, 10), "out_of_range", "wind_speed_mean"),
    ("WTG03", datetime(2024, 6, 1, 12, 10), "out_of_range", "power_mean"),
    ("WTG03", datetime(2024, 6, 2, 3, 0), "flatline", "power_mean"),
]


def _add_flags(engine: Engine) -> None:
    """Store :data:`ADDED` beside the flags ``windpipe flags`` computed."""
    with engine.connect() as conn:
        stored = flags_frame(conn, FARM_DAYS[0], FARM_DAYS[1], turbines=["WTG03"])
    added = pl.DataFrame(ADDED, schema=stored.schema, orient="row")
    replace_flags(
        engine,
        pl.concat([stored, added]),
        turbines=["WTG03"],
        first=FARM_DAYS[0],
        last=FARM_DAYS[1],
    )


def _get(api: LiveApi, path: str, **params: str) -> httpx.Response:
    answer = httpx.get(f"{api.url}{path}", params=params, timeout=120)
    assert answer.status_code == 200, answer.text
    return answer


def test_farm_table_equals_sql_over_the_stored_figures(dash_farm: Farm) -> None:
    data = _get(dash_farm.api, "/ui/api/kpis", **RANGE).json()
    assert data["ready"] and data["days"] == ["2024-06-01", "2024-06-02"]
    with dash_farm.target.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT coalesce(turbine, '*'), sum(energy_kwh), "
                "sum(time_operative_s)::float8 / nullif(sum(time_operative_s) "
                "+ sum(time_non_operative_s), 0), "
                "greatest(sum(energy_kwh), 0) / nullif(greatest(sum(energy_kwh), 0) "
                "+ sum(lost_production_kwh), 0), sum(lost_production_kwh), "
                "sum(energy_kwh) / (2000 * 24 * count(DISTINCT day) * count(DISTINCT turbine)) "
                "FROM turbine_day_kpi WHERE day BETWEEN '2024-06-01' AND '2024-06-02' "
                "GROUP BY ROLLUP (turbine)"
            )
        ).all()
    expected = {r[0]: r[1:] for r in rows}
    table = data["table"]
    assert [r["turbine"] for r in table][-1] == "*"
    assert {r["turbine"] for r in table} == set(expected)
    for row in table:
        energy, a_time, a_energy, lost, capacity = expected[row["turbine"]]
        assert row["energy_kwh"] == pytest.approx(energy, abs=1e-3)
        assert row["availability_time"] == pytest.approx(a_time, abs=1e-4)
        assert row["availability_energy"] == pytest.approx(a_energy, abs=1e-4)
        assert row["lost_production_kwh"] == pytest.approx(lost, abs=1e-3)
        assert row["capacity_factor"] == pytest.approx(capacity, abs=1e-4)
    ranked = [r["availability_energy"] for r in table[:-1]]
    assert ranked == sorted(ranked)  # who is behind first
    # the heatmap's cells are the stored daily figures
    with dash_farm.target.connect() as conn:
        cells = conn.execute(
            text("SELECT turbine, day, availability_time FROM turbine_day_kpi")
        ).all()
    for turbine, day, value in cells:
        i, j = data["turbines"].index(turbine), data["days"].index(day.isoformat())
        assert data["availability_time"][i][j] == pytest.approx(value, abs=1e-4)
    # lost production per category adds up to the turbines' lost production
    lost = data["lost_by_category"]
    assert "scheduled_maintenance" in lost["categories"]
    for i, turbine in enumerate(lost["turbines"]):
        total = sum(lost["kwh"][c][i] for c in lost["categories"])
        assert total == pytest.approx(expected[turbine][3], abs=1e-2)


def test_pages_say_how_to_compute_missing_figures_and_flags(dash_farm: Farm) -> None:
    kpis = _get(dash_farm.bare, "/ui/api/kpis", **RANGE).json()
    assert not kpis["ready"]
    assert "windpipe kpis --start 2024-06-01 --end 2024-06-02" in kpis["hint"]
    quality = _get(dash_farm.bare, "/ui/api/quality", end="2024-06-02", days="2").json()
    assert not quality["flags"]["ready"] and "windpipe flags" in quality["flags"]["hint"]
    # the default range ends with the latest day held
    default = _get(dash_farm.api, "/ui/api/kpis").json()
    assert default["last"] == "2024-06-02" and len(default["days"]) == 30


def test_flag_counts_equal_sql_over_window_flag(dash_farm: Farm) -> None:
    data = _get(dash_farm.api, "/ui/api/quality", end="2024-06-02", days="2").json()
    flags = data["flags"]
    assert flags["ready"]
    with dash_farm.target.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT turbine, (timestamp AT TIME ZONE 'UTC')::date, flag, count(*) "
                "FROM window_flag GROUP BY 1, 2, 3"
            )
        ).all()
    expected = {(t, d.isoformat(), f): n for t, d, f, n in rows}
    assert expected[("WTG03", "2024-06-01", "out_of_range")] >= 3
    assert {(r["turbine"], r["day"], r["flag"]): r["flags"] for r in flags["rows"]} == expected
    assert flags["total"] == sum(expected.values())


def _served_curves(farm: Farm) -> pl.DataFrame:
    answer = _get(farm.api, "/power-curves", **RANGE, format="arrow")
    return pl.read_ipc_stream(io.BytesIO(answer.content))


def test_turbine_curve_is_the_iec_curve_with_its_windows_and_events(dash_farm: Farm) -> None:
    data = _get(dash_farm.api, "/ui/api/turbine/WTG01/curve", **RANGE).json()
    served = _served_curves(dash_farm).filter((pl.col("turbine") == "WTG01") & pl.col("drawn"))
    assert data["bins"]["bin"] == served["bin"].to_list()
    assert data["bins"]["power"] == pytest.approx(served["power"].to_list(), abs=0.01)
    assert data["bins"]["power_std"] == pytest.approx(served["power_std"].to_list(), abs=0.01)
    assert data["warranted"] == {"wind_speed": [3.0, 12.0, 25.0], "power": [0.0, 2000.0, 2000.0]}
    assert _get(dash_farm.api, "/ui/api/turbine/WTG02/curve", **RANGE).json()["warranted"] is None
    # the full-performance windows are the curve's: all of its (drawn or not) bins' windows
    everything = _served_curves(dash_farm).filter(pl.col("turbine") == "WTG01")
    assert data["full_performance"]["windows"] == everything["windows"].sum()
    with dash_farm.target.connect() as conn:
        held = conn.execute(
            text(
                "SELECT count(*) FROM data d JOIN signal s ON s.id = d.signal_id "
                "WHERE s.turbine = 'WTG01' AND s.name = 'power_mean'"
            )
        ).scalar_one()
    assert data["all"]["windows"] == held
    # the 2-hour service (12 windows) is not among the full-performance windows
    assert data["full_performance"]["windows"] <= held - 12
    assert [(e["code"], e["category"]) for e in data["events"]] == [
        ("101", "scheduled_maintenance")
    ]
    outage = _get(dash_farm.api, "/ui/api/turbine/WTG02/curve", **RANGE).json()["events"]
    assert outage[0]["end"] is None and outage[0]["category"] == "forced_outage"
    assert not outage[0]["known_code"]


def test_curve_deviation_ranking_equals_numpy_over_the_served_curves(dash_farm: Farm) -> None:
    data = _get(dash_farm.api, "/ui/api/curves", **RANGE).json()
    bins = _served_curves(dash_farm).filter(pl.col("drawn"))
    table: dict[float, dict[str, tuple[int, float]]] = {}
    for turbine, centre, windows, power in bins.select(
        "turbine", "bin", "windows", "power"
    ).iter_rows():
        table.setdefault(centre, {})[turbine] = (windows, power)
    median = {
        b: float(np.median([p for _, p in v.values()])) for b, v in table.items() if len(v) >= 2
    }
    expected = {}
    for turbine in FARM_TURBINES:
        pairs = [
            (v[turbine][0], v[turbine][1], median[b])
            for b, v in table.items()
            if b in median and turbine in v and median[b] > 0
        ]
        n, p, m = (np.array(x, dtype=float) for x in zip(*pairs, strict=True))
        expected[turbine] = float(np.sum(n * (p - m)) / np.sum(n * m))
    ranking = data["ranking"]
    assert [r["turbine"] for r in ranking] == sorted(expected, key=lambda t: expected[t])
    for row in ranking:
        assert row["deviation"] == pytest.approx(expected[row["turbine"]], abs=1e-5)
    assert data["median"]["bin"] == sorted(median)
    assert data["median"]["power"] == pytest.approx([median[b] for b in sorted(median)], abs=0.01)


@pytest.mark.slow
def test_the_new_charts_are_drawn_in_headless_chromium(dash_farm: Farm, tmp_path: Path) -> None:
    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium on PATH: install Debian's chromium (.ci/run does, as root)")
    query = "start=2024-06-01&end=2024-06-03"
    with chromium(binary) as page:
        page.open(f"{dash_farm.api.url}/ui?{query}&days=2")
        assert page.evaluate("document.body.dataset.error || ''") == ""
        charts = page.charts()
        assert {"availability", "lost", "deviation"} <= set(charts)
        assert charts["availability"]["points"] == [2 * 3]
        assert charts["deviation"]["points"] == [3]
        assert page.evaluate("document.querySelectorAll('#farm-table tbody tr').length") == 4
        page.screenshot(tmp_path / "farm.png")
        page.open(f"{dash_farm.api.url}/ui/turbine/WTG01?{query}")
        assert page.evaluate("document.body.dataset.error || ''") == ""
        charts = page.charts()
        # every window, the full-performance ones, the IEC bins, the warranted curve
        assert charts["iec-curve"]["traces"] == 4
        # the windows are drawn as SVG: no "WebGL is not supported" in a browser without WebGL
        assert page.evaluate("document.querySelectorAll('#iec-curve .no-webgl').length") == 0
        assert charts["iec-curve"]["drawn"] >= 4
        assert page.evaluate("document.getElementById('events').dataset.events") == "1"
        page.screenshot(tmp_path / "turbine.png")
        page.open(f"{dash_farm.api.url}/ui/quality?end=2024-06-02&days=2")
        assert page.evaluate("document.body.dataset.error || ''") == ""
        assert "flag-chart" in page.charts()
        assert page.evaluate("document.querySelectorAll('#flags tbody tr a').length") >= 2
        page.screenshot(tmp_path / "quality.png")
        # without figures nor flags the pages say which command computes them
        page.open(f"{dash_farm.bare.url}/ui?{query}&days=2")
        assert page.evaluate("document.body.dataset.error || ''") == ""
        assert "windpipe kpis" in page.evaluate("document.getElementById('kpi-hint').textContent")
        page.open(f"{dash_farm.bare.url}/ui/quality?end=2024-06-02&days=2")
        assert "windpipe flags" in page.evaluate("document.getElementById('flag-hint').textContent")
        assert page.foreign_requests() == []
        assert page.problems == []
    print(f"screenshots in {tmp_path}")
