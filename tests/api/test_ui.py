"""The dashboard and /aggregates: the target's windows over HTTP, the pages in a real browser."""

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
import psycopg
import pyarrow as pa
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.api.ui_browser import chromium, find_chromium
from tests.conftest import FARM_DAYS, FARM_TURBINES, LiveApi, new_database, serve
from windpipe.api import create_app
from windpipe.api.dashboard import (
    DENSITY_ROWS,
    curve_points,
    density,
    resolution,
    windows_expected,
)
from windpipe.etl.extract import ApiClient
from windpipe.etl.pipeline import run_range
from windpipe.postgres import ensure_reader_role, libpq_conninfo
from windpipe.settings import Settings, load_settings

#: The gap the fixture cuts: WTG02 loses 06:00-08:00 of the second day (12 windows).
GAP = ("WTG02", datetime(2024, 6, 2, 6), datetime(2024, 6, 2, 8))


def load_farm_days(farm_api: LiveApi, engine: Engine, aggregations: list[str]) -> None:
    """The farm's two days of wind speed and power, aggregated by the ETL into ``engine``."""
    with ApiClient(farm_api.url) as client:
        run_range(
            FARM_DAYS[0],
            FARM_DAYS[1],
            client=client,
            engine=engine,
            variables=["wind_speed", "power"],
            aggregations=aggregations,
            turbines=FARM_TURBINES,
        )


@pytest.fixture(scope="module")
def ui_target(farm_api: LiveApi, target_url: URL) -> Iterator[Engine]:
    """A target of its own, loaded with the farm's two days by the ETL, with one gap cut."""
    with new_database(target_url, "windpipe_ui_target") as engine:
        load_farm_days(farm_api, engine, ["mean", "min", "max", "std"])
        with engine.begin() as conn:
            conn.execute(
                text(
                    "DELETE FROM data d USING signal s WHERE s.id = d.signal_id "
                    "AND s.turbine = :t AND d.timestamp >= :lo AND d.timestamp < :hi"
                ),
                {"t": GAP[0], "lo": GAP[1], "hi": GAP[2]},
            )
        ensure_reader_role(engine, "windpipe_reader", None)
        yield engine


@pytest.fixture(scope="module")
def reader_url(ui_target: Engine) -> URL:
    """The target as the API's read-only role."""
    return ui_target.url.set(username="windpipe_reader", password=None)


@pytest.fixture(scope="module")
def ui_api(
    fleet_settings: Settings, farm_db: tuple[Engine, Engine], reader_url: URL
) -> Iterator[LiveApi]:
    app = create_app(
        fleet_settings,
        source_conninfo=libpq_conninfo(farm_db[0].url),
        target_conninfo=libpq_conninfo(reader_url),
    )
    with serve(app) as api:
        yield api


def _target(engine: Engine, sql: str, **params: object) -> list[tuple[object, ...]]:
    """The rows of ``sql``, its instants (timestamptz) as naive UTC like the API's answers."""

    def naive(value: object) -> object:
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    with engine.connect() as conn:
        return [tuple(map(naive, row)) for row in conn.execute(text(sql), params)]


def test_aggregates_are_the_target_rows_in_json_csv_and_arrow(
    ui_api: LiveApi, ui_target: Engine
) -> None:
    query = {
        "start": "2024-06-01",
        "end": "2024-06-03",
        "turbines": "WTG01,WTG03",
        "signals": "wind_speed_mean,power_max",
    }
    rows = _target(
        ui_target,
        "SELECT s.turbine, d.timestamp, s.name, d.value FROM data d JOIN signal s "
        "ON s.id = d.signal_id WHERE s.turbine IN ('WTG01', 'WTG03') "
        "AND s.name IN ('wind_speed_mean', 'power_max')",
    )
    expected = {(t, ts, n): v for t, ts, n, v in rows}
    with httpx.Client(base_url=ui_api.url) as client:
        records = client.get("/aggregates", params=query).json()
        assert len(records) == 2 * 288
        assert [r["turbine"] for r in records] == ["WTG01"] * 288 + ["WTG03"] * 288
        got = {}
        for record in records:
            moment = datetime.fromisoformat(record["timestamp"].replace("Z", ""))
            for name in ("wind_speed_mean", "power_max"):
                got[(record["turbine"], moment, name)] = record[name]
        assert got == expected
        arrow = client.get("/aggregates", params={**query, "format": "arrow"})
        assert arrow.headers["content-type"] == "application/vnd.apache.arrow.stream"
        table = pa.ipc.open_stream(io.BytesIO(arrow.content)).read_all()
        assert table.column_names == ["turbine", "timestamp", "wind_speed_mean", "power_max"]
        assert table.num_rows == 576
        assert table.column("power_max").to_pylist() == [r["power_max"] for r in records]
        csv = client.get("/aggregates", params=query, headers={"Accept": "text/csv"}).text
        assert csv.splitlines()[0] == "turbine,timestamp,wind_speed_mean,power_max"
        assert len(csv.splitlines()) == 577
        # Every signal the ETL writes, for every turbine, when none is named.
        everything = client.get(
            "/aggregates", params={"start": "2024-06-02T05:00", "end": "2024-06-02T09:00"}
        ).json()
        assert {r["turbine"] for r in everything} == set(FARM_TURBINES)
        assert len([r for r in everything if r["turbine"] == "WTG02"]) == 24 - 12  # the gap
        assert set(everything[0]) == {
            "turbine",
            "timestamp",
            *(f"{v}_{a}" for v in ("wind_speed", "power") for a in ("mean", "min", "max", "std")),
        }


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"start": "2024-06-01", "end": "2024-06-01"}, "must be after start"),
        ({"start": "2024-06-01", "end": "2030-06-01"}, "WINDPIPE_API_MAX_RANGE_DAYS"),
        ({"start": "yesterday", "end": "2024-06-02"}, "not an ISO 8601"),
        ({"start": "2024-06-01", "end": "2024-06-02", "signals": "pitch_mean"}, "unknown signal"),
        ({"start": "2024-06-01", "end": "2024-06-02", "turbines": "WTG09"}, "known: WTG01"),
    ],
)
def test_aggregates_refuse_bad_input_like_data(
    ui_api: LiveApi, params: dict[str, str], says: str
) -> None:
    response = httpx.get(f"{ui_api.url}/aggregates", params=params)
    assert response.status_code == 422
    assert says in response.json()["detail"]


def test_the_dashboards_json_refuses_a_bad_moment_in_words_not_a_regex(ui_api: LiveApi) -> None:
    response = httpx.get(f"{ui_api.url}/ui/api/kpis", params={"start": "garbage"})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "start: 'garbage' is not a date or time; use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], with Z "
        "or +HH:MM for an offset (UTC without)"
    )


def test_the_page_of_an_unknown_turbine_is_not_found(ui_api: LiveApi) -> None:
    page = httpx.get(f"{ui_api.url}/ui/turbine/WTG99")
    assert page.status_code == 404 and page.text.startswith("unknown turbine WTG99; known: WTG01")
    assert httpx.get(f"{ui_api.url}/ui/turbine/WTG01").status_code == 200


def test_the_api_reads_the_target_as_a_role_that_cannot_write(reader_url: URL) -> None:
    with psycopg.connect(libpq_conninfo(reader_url)) as conn:
        assert conn.execute("SELECT count(*) FROM signal").fetchone() == (
            3 * 8,
        )  # 3 turbines x 8 signals
        with pytest.raises(psycopg.Error, match=r"read-only|permission denied"):
            conn.execute("DELETE FROM data")


def test_overview_and_quality_figures_are_the_targets(ui_api: LiveApi, ui_target: Engine) -> None:
    with httpx.Client(base_url=ui_api.url) as client:
        overview = client.get("/ui/api/overview", params={"days": 2}).json()
        quality = client.get("/ui/api/quality", params={"days": 2}).json()
    assert overview["turbines"] == FARM_TURBINES
    assert overview["days"] == [d.isoformat() for d in FARM_DAYS]
    wtg02 = FARM_TURBINES.index("WTG02")
    assert overview["completeness"][wtg02] == [1.0, round(132 / 144, 4)]
    assert all(row == [1.0, 1.0] for i, row in enumerate(overview["completeness"]) if i != wtg02)
    energy = dict(
        ((t, d), e)
        for t, d, e in _target(
            ui_target,
            "SELECT s.turbine, d.timestamp::date, sum(d.value) / 6 / 1000 FROM data d "
            "JOIN signal s ON s.id = d.signal_id WHERE s.name = 'power_mean' GROUP BY 1, 2",
        )
    )
    for i, turbine in enumerate(FARM_TURBINES):
        for j, day in enumerate(FARM_DAYS):
            assert overview["energy_mwh"][i][j] == pytest.approx(energy[(turbine, day)], abs=1e-4)
    latest = {r["turbine"]: r for r in overview["latest"]}
    assert latest["WTG01"]["timestamp"] == "2024-06-02T23:50:00Z"
    assert all(r["stale"] for r in overview["latest"])  # 2024 is long ago
    (value,) = _target(
        ui_target,
        "SELECT d.value FROM data d JOIN signal s ON s.id = d.signal_id WHERE s.turbine = "
        "'WTG01' AND s.name = 'power_mean' AND d.timestamp = '2024-06-02 23:50'",
    )[0]
    assert latest["WTG01"]["values"]["power_mean"] == value
    assert quality["missing"] == [[0, 0], [0, 12], [0, 0]]
    assert quality["missing_total"] == 12
    assert [s["turbine"] for s in quality["stale"]] == FARM_TURBINES


def test_days_outside_a_turbines_data_span_are_not_missing_and_partial_days_are_marked(
    ui_api: LiveApi,
) -> None:
    # The farm's source holds 2024-06-01 and 06-02 only: the day before and the day after were
    # never held, so nothing is expected of them (they used to count 144 missing windows each).
    params = {"days": 4, "end": "2024-06-03"}
    with httpx.Client(base_url=ui_api.url) as client:
        quality = client.get("/ui/api/quality", params=params).json()
        overview = client.get("/ui/api/overview", params=params).json()
    assert quality["days"] == ["2024-05-31", "2024-06-01", "2024-06-02", "2024-06-03"]
    assert quality["windows_expected"] == [[0, 144, 144, 0]] * 3
    assert quality["missing"] == [[0, 0, 0, 0], [0, 0, 12, 0], [0, 0, 0, 0]]
    assert quality["missing_total"] == 12
    assert quality["dagster_turbines"] == FARM_TURBINES
    wtg02 = FARM_TURBINES.index("WTG02")
    assert overview["completeness"][wtg02] == [None, 1.0, round(132 / 144, 4), None]
    # WTG02's second day holds 132 of 144 windows: its energy is marked partial, not a whole day.
    assert overview["energy_partial"][wtg02] == [False, False, True, False]
    assert overview["windows_held"][wtg02] == [0, 144, 132, 0]
    assert not any(overview["energy_partial"][i][2] for i in range(3) if i != wtg02)


def test_windows_expected_lie_within_the_data_span_and_the_closed_windows() -> None:
    day, ten = datetime(2026, 12, 7).date(), timedelta(minutes=10)
    now, margin = datetime(2026, 12, 7, 10, 5), timedelta(minutes=2)
    # Today: the windows closed by 10:03, the 10:00 one still filling.
    assert windows_expected(day, ten, now, (datetime(2026, 11, 1), now), margin) == 60
    # A turbine whose first sample is at 06:12 expects nothing before its 06:10 window.
    assert windows_expected(day, ten, now, (datetime(2026, 12, 7, 6, 12), now), margin) == 23
    # One whose data ended the day before expects nothing of today.
    assert (
        windows_expected(day, ten, now, (datetime(2026, 1, 1), datetime(2026, 12, 6)), margin) == 0
    )
    # A day that is over, data all along: the whole day.
    whole = datetime(2026, 12, 6).date()
    assert windows_expected(whole, ten, now, (datetime(2026, 1, 1), now), margin) == 144


def test_turbine_page_links_dagster_partitions_only_within_the_data_span(ui_api: LiveApi) -> None:
    page = httpx.get(f"{ui_api.url}/ui/turbine/WTG01").text
    assert 'data-dagster-first="2024-06-01"' in page
    assert 'data-dagster-last="2024-06-02"' in page
    # (a turbine no one knows has no page: test_the_page_of_an_unknown_turbine_is_not_found)


def test_turbine_view_series_and_power_curve(ui_api: LiveApi, ui_target: Engine) -> None:
    response = httpx.get(
        f"{ui_api.url}/ui/api/turbine/WTG02", params={"start": "2024-06-02", "end": "2024-06-03"}
    )
    assert response.status_code == 200
    view = response.json()
    # 144 windows on the time axis: the 12 missing ones are nulls, so lines break there.
    assert len(view["t"]) == 144
    assert sum(v is None for v in view["series"]["power_mean"]) == 12
    bins = _target(
        ui_target,
        """
        SELECT floor(w.value / 0.5 + 0.5)::int, count(*), avg(p.value) FROM data w
        JOIN signal ws ON ws.id = w.signal_id AND ws.name = 'wind_speed_mean'
        JOIN signal ps ON ps.turbine = ws.turbine AND ps.name = 'power_mean'
        JOIN data p ON p.signal_id = ps.id AND p.timestamp = w.timestamp
        WHERE ws.turbine = 'WTG02' AND w.timestamp >= '2024-06-02' AND w.timestamp < '2024-06-03'
        GROUP BY 1 HAVING count(*) >= 3 ORDER BY 1
        """,
    )
    assert view["curve"]["n"] == [n for _, n, _ in bins]
    assert view["curve"]["power"] == pytest.approx([round(p, 2) for _, _, p in bins], abs=0.01)
    assert view["farm_median"]["wind_speed"] and max(view["farm_median"]["turbines"]) == 3
    # Every window as it is (no decimation for a day), every held window a point of the cloud.
    assert view["decimated"] is False and view["resolution_minutes"] == 10.0
    assert view["windows"] == 144 - 12 and len(view["cloud"]["wind_speed"]) == 132
    assert view["density"] is None
    unknown = httpx.get(f"{ui_api.url}/ui/api/turbine/WTG09")
    assert unknown.status_code == 422 and "known: WTG01" in unknown.json()["detail"]


def test_a_decimated_series_keeps_every_windows_min_and_max(
    ui_api: LiveApi, ui_target: Engine
) -> None:
    # Two days in at most 50 points: hourly buckets (48), the gap's two hours empty.
    response = httpx.get(
        f"{ui_api.url}/ui/api/turbine/WTG02",
        params={"start": "2024-06-01", "end": "2024-06-03", "points": 50},
    )
    assert response.status_code == 200
    view = response.json()
    assert view["decimated"] is True and view["resolution_minutes"] == 60.0
    assert len(view["t"]) == 48
    rows = _target(
        ui_target,
        """
        SELECT date_trunc('hour', d.timestamp), s.name, min(d.value), max(d.value), avg(d.value)
        FROM data d JOIN signal s ON s.id = d.signal_id WHERE s.turbine = 'WTG02'
        AND d.timestamp >= '2024-06-01' AND d.timestamp < '2024-06-03' GROUP BY 1, 2
        """,
    )
    hours = {(h, n): (lo, hi, mean) for h, n, lo, hi, mean in rows}
    for i, ms in enumerate(view["t"]):
        hour = datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None)
        for variable in ("wind_speed", "power"):
            low = view["series"][f"{variable}_min"][i]
            high = view["series"][f"{variable}_max"][i]
            mean = view["series"][f"{variable}_mean"][i]
            if (hour, f"{variable}_min") not in hours:
                assert GAP[1] <= hour < GAP[2] and low is high is mean is None
                continue
            # the bucket's band is its windows' lowest minimum and highest maximum: no peak lost
            assert low == pytest.approx(hours[(hour, f"{variable}_min")][0], abs=1e-3)
            assert high == pytest.approx(hours[(hour, f"{variable}_max")][1], abs=1e-3)
            assert mean == pytest.approx(hours[(hour, f"{variable}_mean")][2], abs=1e-3)
    (peak,) = _target(
        ui_target,
        "SELECT max(d.value) FROM data d JOIN signal s ON s.id = d.signal_id WHERE s.turbine = "
        "'WTG02' AND s.name = 'power_max' AND d.timestamp >= '2024-06-01' "
        "AND d.timestamp < '2024-06-03'",
    )[0]
    assert max(v for v in view["series"]["power_max"] if v is not None) == pytest.approx(
        peak, abs=1e-3
    )
    assert sum(v is None for v in view["series"]["power_mean"]) == 2  # 06:00 and 07:00
    # The power curve is the windows', whatever the series' resolution.
    assert view["windows"] == 288 - 12
    too_few = httpx.get(f"{ui_api.url}/ui/api/turbine/WTG02", params={"points": 10})
    assert too_few.status_code == 422 and "points=10" in too_few.json()["detail"]


def test_resolution_and_density_of_long_ranges() -> None:
    window = timedelta(minutes=10)
    day = datetime(2025, 1, 1)
    assert resolution(day, day + timedelta(days=7), window, 1200) is None  # 1,008 windows
    assert resolution(day, day + timedelta(days=365), window, 1200) == timedelta(hours=8)
    assert resolution(day, day + timedelta(days=365), window, 2000) == timedelta(hours=6)
    assert resolution(day, day + timedelta(days=3650), window, 1000) == timedelta(days=4)
    pairs = pl.DataFrame(
        {"wind_speed": [0.1, 0.2, 12.6, 12.6, 30.0], "power": [-5.0, 0, 2000, 2000, 0]}
    )
    grid = density(pairs)
    cells = [c for row in grid["z"] for c in row if c is not None]
    assert sum(cells) == grid["windows"] == 5 and max(cells) == 2  # the two at 12.6 m/s
    assert len(grid["z"]) == DENSITY_ROWS and len(grid["z"][0]) == int(30 / grid["dx"]) + 1


def test_the_iec_charts_points_are_one_per_spot_and_keep_every_outlier() -> None:
    # 10,000 windows on 100 spots of the curve, one outlier, three windows left out of the curve
    base = datetime(2025, 1, 1)
    speeds = [(i % 100) * 0.1 for i in range(10_000)] + [25.0, 3.0, 3.0, 0.0]
    powers = [s * 100.0 for s in speeds[:10_000]] + [0.0, 1500.0, 1500.0, 0.0]
    every = pl.DataFrame(
        {
            "timestamp": [base + timedelta(minutes=10 * i) for i in range(len(speeds))],
            "wind_speed_mean": speeds,
            "power_mean": powers,
        }
    )
    used = every.head(10_001)  # the curve's spots and the outlier at 25 m/s
    every_shown, used_shown = curve_points(every, used, "wind_speed_mean", "power_mean")
    assert used_shown.height == 100 + 1 and 25.0 in used_shown["wind_speed_mean"].to_list()
    # of the windows left out, the one spot no full-performance window holds (3 m/s, 1500 kW),
    # once: (0, 0) is under a full-performance point
    assert every_shown.select("wind_speed_mean", "power_mean").rows() == [(3.0, 1500.0)]
    assert every_shown["timestamp"].to_list() == [base + timedelta(minutes=10 * 10_001)]


def test_landing_page_links_the_dashboard_and_the_docs(ui_api: LiveApi) -> None:
    root = httpx.get(f"{ui_api.url}/")
    assert root.status_code == 200 and root.headers["content-type"].startswith("text/html")
    assert 'href="ui"' in root.text and 'href="docs"' in root.text
    page = httpx.get(f"{ui_api.url}/ui")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "connect-src 'self'" in csp
    # Scripts and styles come from the API itself; the only absolute link is Dagster's UI.
    assert re.findall(r'<script src="([^"]+)"', page.text) == [
        "/ui/plotly.min.js",
        "/ui/static/ui.js",
    ]
    assert re.findall(r'rel="stylesheet" href="([^"]+)"', page.text) == ["/ui/static/ui.css"]
    assert re.findall(r'href="(http[^"]*)"', page.text) == ["http://127.0.0.1:3000"]
    bundle = httpx.get(f"{ui_api.url}/ui/plotly.min.js")
    assert bundle.status_code == 200 and b"plotly.js v" in bundle.content[:200]


# -- in a real browser -----------------------------------------------------------------------------

#: Page -> {chart id: traces}.
PAGES = {
    # no daily figures nor flags in this target: the pages say how to compute them
    "/ui?days=2&end=2024-06-02": {"completeness": 1, "energy": 1, "deviation": 1},
    "/ui/turbine/WTG02?start=2024-06-01&end=2024-06-03": {
        "wind": 3,
        "power": 3,
        "curve": 3,
        "iec-curve": 3,
    },
    "/ui/quality?days=2&end=2024-06-02": {"missing": 1},
}


@pytest.mark.slow
def test_every_page_draws_its_charts_in_headless_chromium_from_loopback_only(
    ui_api: LiveApi, tmp_path: Path
) -> None:
    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium on PATH: install Debian's chromium (.ci/run does, as root)")
    with chromium(binary) as page:
        page.requests.clear()
        for number, (path, expected) in enumerate(PAGES.items()):
            page.open(ui_api.url + path)
            assert page.evaluate("document.body.dataset.error || ''") == "", path
            charts = page.charts()
            assert {k: v["traces"] for k, v in charts.items()} == expected, path
            assert all(c["drawn"] >= 1 for c in charts.values()), charts
            if "turbine" in path:
                # two days: 288 windows per series, the 12 missing ones as gaps
                assert charts["wind"]["points"] == [288, 288, 288]
                # the power curve's points are the windows held: 288 less the 12 missing
                assert charts["curve"]["points"][0] == 288 - 12
                assert page.evaluate("document.body.dataset.resolution") == "10"
            elif "quality" in path:
                assert charts["missing"]["points"] == [6]
                gaps = page.evaluate("document.querySelectorAll('#gaps tbody tr').length")
                assert gaps == 1
            else:
                assert charts["completeness"]["points"] == [6]
                rows = page.evaluate("document.querySelectorAll('#latest tbody tr').length")
                assert rows == 3
            page.screenshot(tmp_path / f"ui-{number}.png")
        assert page.foreign_requests() == []
        assert page.problems == []
        assert any(url.endswith("/ui/plotly.min.js") for url in page.requests)
    print(f"screenshots in {tmp_path}")


@pytest.fixture(scope="module")
def means_api(
    fleet_settings: Settings, farm_api: LiveApi, farm_db: tuple[Engine, Engine], target_url: URL
) -> Iterator[LiveApi]:
    """The farm's two days in a target of its own that holds the means only
    (``etl_aggregations = ["mean"]``: no min, max nor std signal), served by a live API."""
    settings = load_settings(
        data_dir=fleet_settings.data_dir,
        turbines=fleet_settings.turbines,
        etl_variables=["wind_speed", "power"],
        etl_aggregations=["mean"],
        _env_file=None,
    )
    with new_database(target_url, "windpipe_ui_means") as engine:
        load_farm_days(farm_api, engine, ["mean"])
        app = create_app(
            settings,
            source_conninfo=libpq_conninfo(farm_db[0].url),
            target_conninfo=libpq_conninfo(engine.url),
        )
        with serve(app) as api:
            yield api


@pytest.mark.slow
def test_with_means_only_the_turbine_charts_draw_the_mean_and_their_axes_follow_it(
    means_api: LiveApi,
) -> None:
    # A trace without y is plotted against its point indices: the band's absent min and max once
    # ran the wind axis to the number of points (about 1000 m/s for a year, 300 for two days).
    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium on PATH: install Debian's chromium (.ci/run does, as root)")
    span = {"start": "2024-06-01", "end": "2024-06-03"}
    view = httpx.get(f"{means_api.url}/ui/api/turbine/WTG02", params=span).json()
    assert set(view["series"]) == {"wind_speed_mean", "power_mean"}
    assert len(view["t"]) == 288
    with chromium(binary) as page:
        page.open(f"{means_api.url}/ui/turbine/WTG02?start={span['start']}&end={span['end']}")
        assert page.evaluate("document.body.dataset.error || ''") == ""
        # chart, its series, its trace, the axis's floor (the wind chart's starts at zero)
        for chart, signal, name, floor in (
            ("wind", "wind_speed_mean", "wind speed mean", 0.0),
            ("power", "power_mean", "power mean", None),
        ):
            values = [v for v in view["series"][signal] if v is not None]
            low = min(values) if floor is None else min(floor, *values)
            high = max(values)
            drawn = page.evaluate(
                f"""(() => {{ const gd = document.getElementById('{chart}');
                  return {{ names: gd.data.map(t => t.name), range: gd._fullLayout.yaxis.range }};
                }})()"""
            )
            bottom, top = drawn["range"]
            # the axis spans the data with plotly's padding (5% a side), nothing beyond
            assert bottom <= low and top >= high, (chart, drawn["range"], low, high)
            assert top - bottom <= 1.25 * (high - low), (chart, drawn["range"], low, high)
            # the mean alone, no band (nor its legend entry)
            assert drawn["names"] == [name]
        headings = page.evaluate("[...document.querySelectorAll('h2')].map(h => h.textContent)")
        assert "Wind speed (m/s): 10-minute mean" in headings
        assert not any("band" in h for h in headings), headings
        assert page.problems == []


def test_the_overview_shows_a_signal_each_variable_has(fleet_settings: Settings) -> None:
    # a counter has no mean but a delta, a state a mode: the overview asks for those
    from windpipe.api.dashboard import mean_signals
    from windpipe.settings import SignalConfig

    signals = {
        **fleet_settings.signals,
        "energy": SignalConfig(kind="counter", aggregate=True),
        "status": SignalConfig(kind="state", aggregate=True),
    }
    settings = load_settings(
        data_dir=fleet_settings.data_dir,
        signals=signals,
        etl_variables=["wind_speed", "energy", "status"],
        etl_aggregations=["mean", "max"],
        _env_file=None,
    )
    shown = mean_signals(settings)
    assert shown == ["wind_speed_mean", "energy_delta", "status_mode"]
    assert set(shown) <= set(settings.etl_signals)
