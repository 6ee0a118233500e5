"""The daily figures end to end: the events read through a real API on loopback, the windows
from a real target, the figures stored and served by ``GET /kpis`` and ``windpipe kpis``; each
checked against an independent computation (plain Python window by window, SQL for the farm);
the measured reference curve is the IEC one: temperatures read, stored flags left out."""

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
import pyarrow as pa
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.analytics import farm_case as case
from tests.analytics.oracle import figures
from tests.cli.test_import import windpipe
from tests.conftest import LiveApi, new_database, serve
from windpipe.api import create_app
from windpipe.etl.extract import ApiClient
from windpipe.etl.kpis import KpiRun, events_overlapping, fetch_events, run_kpis
from windpipe.postgres import libpq_conninfo
from windpipe.settings import EventCodeConfig, Settings, TurbineConfig, load_settings
from windpipe.source.events import import_events
from windpipe.source.store import ensure_schema as ensure_source_schema
from windpipe.warehouse import reads
from windpipe.warehouse.flags import replace_flags
from windpipe.warehouse.store import replace_window

FIRST, LAST = case.DAYS[0], case.DAYS[-1]
TOML = """
[[turbines]]
id = "A"
rated_power_kw = 2000
elevation_m = 900

[[turbines]]
id = "B"
rated_power_kw = 2000
elevation_m = 1500
power_curve = [[3, 0], [6, 300], [9, 1100], [12, 1900], [14, 2000], [25, 2000]]

[[turbines]]
id = "C"

[event_codes]
"101" = { category = "scheduled_maintenance" }
"205" = { category = "forced_outage" }
"310" = { category = "requested_shutdown" }
"600" = { category = "partial_performance" }
"700" = { category = "force_majeure" }
"""


@dataclass
class Farm:
    settings: Settings
    source: Engine
    target: Engine
    api: LiveApi


def _moment(value: datetime | None) -> str:
    return "" if value is None else value.isoformat() + "Z"


@pytest.fixture(scope="module")
def kpi_farm(
    settings: Settings, target_url: URL, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Farm]:
    farm_settings = load_settings(
        data_dir=settings.data_dir,
        turbines=[
            TurbineConfig(
                id=t, rated_power_kw=rated, power_curve=curve, elevation_m=case.ELEVATION[t]
            )
            for t, (rated, curve) in case.FLEET.items()
        ],
        event_codes={c: EventCodeConfig(category=k) for c, k in case.CODES.items()},
        _env_file=None,
    )
    with (
        new_database(target_url, "windpipe_kpi_source") as source,
        new_database(target_url, "windpipe_kpi_target") as target,
    ):
        ensure_source_schema(source)
        path = tmp_path_factory.mktemp("kpi") / "events.csv"
        path.write_text(
            "turbine,start,end,code,message\n"
            + "".join(f"{t},{_moment(s)},{_moment(e)},{c},\n" for t, s, e, c in case.EVENTS)
        )
        import_events(path, engine=source)
        temperatures = case.temperatures()
        long = [
            (t, s, name, value)
            for (t, s), (p, w) in case.windows().items()
            for name, value in (
                ("power_mean", p),
                ("wind_speed_mean", w),
                ("ambient_temperature_mean", temperatures.get((t, s))),
            )
            if value is not None
        ]
        aggregates = pl.DataFrame(
            long, schema=["turbine", "timestamp", "signal", "value"], orient="row"
        )
        start = datetime(2024, 6, 1)
        replace_window(
            target,
            start,
            start + timedelta(days=3),
            aggregates,
            signals=["power_mean", "wind_speed_mean", "ambient_temperature_mean"],
            turbines=list(case.FLEET),
        )
        # the quality flags ``windpipe flags`` would have stored: out of the measured curve
        replace_flags(target, case.flags_frame(), turbines=list(case.FLEET), first=FIRST, last=LAST)
        app = create_app(
            farm_settings,
            source_conninfo=libpq_conninfo(source.url),
            target_conninfo=libpq_conninfo(target.url),
        )
        with serve(app) as api:
            yield Farm(farm_settings, source, target, api)


def _run(farm: Farm) -> KpiRun:
    with ApiClient(farm.api.url) as client:
        run = run_kpis(
            FIRST,
            LAST,
            client=client,
            engine=farm.target,
            fleet=farm.settings.fleet,
            codes={c: e.category for c, e in farm.settings.event_codes.items()},
            classes=farm.settings.availability.classes,
        )
    assert run.events == len(case.EVENTS) and run.unknown_codes == ["999"] and run.rows == 9
    return run


def test_events_of_fewer_days_are_those_the_api_lists_for_them(kpi_farm: Farm) -> None:
    # run_kpis with history_days fetches once and keeps the stored days' events from that
    turbines = list(case.FLEET)
    with ApiClient(kpi_farm.api.url) as client:
        wide = fetch_events(client, turbines, FIRST - timedelta(days=1), LAST)
        for first, last in [
            (FIRST, LAST),
            (FIRST, FIRST),
            (LAST, LAST),
            (FIRST + timedelta(1), LAST),
        ]:
            asked = fetch_events(client, turbines, first, last)
            assert asked.height
            assert events_overlapping(wide, first, last).equals(asked), (first, last)
        run = run_kpis(
            FIRST + timedelta(days=1),
            LAST,
            client=client,
            engine=kpi_farm.target,
            fleet=kpi_farm.settings.fleet,
            codes={c: e.category for c, e in kpi_farm.settings.event_codes.items()},
            classes=kpi_farm.settings.availability.classes,
            history_days=1,
        )
        assert run.events == fetch_events(client, turbines, FIRST + timedelta(1), LAST).height
    _run(kpi_farm)  # the stored figures as the other tests expect them


def test_window_means_gives_each_held_window_once_with_a_column_per_signal(
    kpi_farm: Farm,
) -> None:
    with kpi_farm.target.connect() as conn:
        got = reads.window_means(
            conn, FIRST, LAST, list(case.FLEET), others=["ambient_temperature_mean", "power_count"]
        )
        turbine = next(iter(case.FLEET))
        one = reads.window_means(conn, FIRST, FIRST, [turbine])
        none = reads.window_means(conn, FIRST, LAST, ["nobody"])
    temperatures = case.temperatures()
    held = {k: v for k, v in case.windows().items() if v != (None, None) or k in temperatures}
    expected = case.windows_frame(held, temperatures).with_columns(
        pl.lit(None, pl.Float64).alias("power_count")  # a signal the target does not hold
    )
    assert got.equals(expected)
    assert one.equals(
        expected.filter(
            (pl.col("turbine") == turbine) & (pl.col("timestamp").dt.date() == FIRST)
        ).select("turbine", "timestamp", "power", "wind_speed")
    )
    assert none.height == 0 and none.columns == ["turbine", "timestamp", "power", "wind_speed"]


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def test_stored_figures_match_the_independent_computation_and_reruns_change_nothing(
    kpi_farm: Farm,
) -> None:
    run = _run(kpi_farm)
    with kpi_farm.target.connect() as conn:
        first = reads.kpi_rows(conn, FIRST, LAST)
        losses = reads.kpi_losses(conn, FIRST, LAST)
    # stored as computed, bit for bit (floats cross as text that reads back to the same double)
    assert first.equals(run.figures.kpis)
    assert losses.equals(run.figures.losses.sort("turbine", "day", "category"))  # as read
    expected, lost_by = figures(
        case.windows(),
        case.EVENTS,
        case.FLEET,
        case.DAYS,
        case.CODES,
        kpi_farm.settings.availability.classes,
        temperatures=case.temperatures(),
        elevations=case.ELEVATION,
        flags=case.FLAGS,
    )
    assert first.height == 9
    for row in first.iter_rows(named=True):
        for name, value in expected[(row["turbine"], row["day"])].items():
            assert _close(row[name], value), (row["turbine"], row["day"], name)
    stored = {(r["turbine"], r["day"], r["category"]): r["lost_kwh"] for r in losses.to_dicts()}
    assert {k for k, v in stored.items() if v} == {k for k, v in lost_by.items() if v}
    _run(kpi_farm)  # idempotent: the same rows
    with kpi_farm.target.connect() as conn:
        assert reads.kpi_rows(conn, FIRST, LAST).equals(first)
        assert reads.kpi_losses(conn, FIRST, LAST).equals(losses)


def _farm_sql(engine: Engine) -> dict[object, tuple[float, float, float | None, float | None]]:
    """The farm's days from the stored rows, in SQL: energy, lost, both availabilities."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                SELECT day, sum(energy_kwh), sum(lost_production_kwh),
                       sum(time_operative_s)
                         / nullif(sum(time_operative_s) + sum(time_non_operative_s), 0),
                       greatest(sum(energy_kwh), 0)
                         / nullif(greatest(sum(energy_kwh), 0) + sum(lost_production_kwh), 0)
                FROM turbine_day_kpi GROUP BY day ORDER BY day
                """
            )
        ).all()
    return {d: (e, lost, at, ae) for d, e, lost, at, ae in rows}


def test_get_kpis_serves_turbine_and_farm_rows_in_every_format(kpi_farm: Farm) -> None:
    _run(kpi_farm)
    url = f"{kpi_farm.api.url}/kpis"
    params = {"start": "2024-06-01", "end": "2024-06-04"}
    body = httpx.get(url, params=params, timeout=30)
    assert body.status_code == 200, body.text
    rows = body.json()
    assert [(r["turbine"], r["day"]) for r in rows] == [
        *[(t, f"2024-06-0{d}") for t in "ABC" for d in (1, 2, 3)],
        *[("*", f"2024-06-0{d}") for d in (1, 2, 3)],
    ]
    farm_sql = _farm_sql(kpi_farm.target)
    for row in rows[-3:]:
        energy, lost, at, ae = farm_sql[datetime.fromisoformat(row["day"]).date()]
        assert _close(row["energy_kwh"], energy) and _close(row["lost_production_kwh"], lost)
        assert _close(row["availability_time"], at) and _close(row["availability_energy"], ae)
        assert row["capacity_factor"] is None  # C has no rated power
    a1 = rows[0]
    assert a1["lost_kwh_forced_outage"] == pytest.approx(
        a1["lost_production_kwh"] - a1["lost_kwh_requested_shutdown"]
    )
    b3 = rows[5]
    assert b3["lost_production_kwh"] > 0
    assert b3["lost_kwh_partial_performance"] == pytest.approx(b3["lost_production_kwh"])

    csv = httpx.get(url, params={**params, "format": "csv", "turbines": "B"}, timeout=30)
    frame = pl.read_csv(io.StringIO(csv.text))
    assert frame["turbine"].to_list() == ["B"] * 3 + ["*"] * 3
    assert frame.filter(pl.col("turbine") == "*")["energy_kwh"].to_list() == pytest.approx(
        frame.filter(pl.col("turbine") == "B")["energy_kwh"].to_list()
    )
    arrow = httpx.get(url, params={**params, "format": "arrow"}, timeout=30)
    table = pa.ipc.open_stream(arrow.content).read_all()
    assert table.num_rows == 12 and table.schema.field("day").type == pa.date32()


def test_get_kpis_validates_like_the_other_routes(kpi_farm: Farm) -> None:
    url = f"{kpi_farm.api.url}/kpis"
    bad = {
        (("start", "2024-06-03"), ("end", "2024-06-01")): (
            "end (2024-06-01) must be after start (2024-06-03)"
        ),
        (("start", "2024-06-01T10:00"), ("end", "2024-06-02")): "is not a date",
        (("start", "2020-01-01"), ("end", "2024-01-01")): "WINDPIPE_API_MAX_RANGE_DAYS",
        (("start", "2024-06-01"), ("end", "2024-06-02"), ("turbines", "ZZ")): "unknown turbine",
    }
    for params, message in bad.items():
        answer = httpx.get(url, params=dict(params), timeout=30)
        assert answer.status_code == 422 and message in answer.json()["detail"], answer.text
    empty = httpx.get(url, params={"start": "2023-01-01", "end": "2023-01-02"}, timeout=30)
    assert empty.status_code == 200 and empty.json() == []


@pytest.mark.slow
def test_windpipe_kpis_as_a_process_stores_and_ranks(kpi_farm: Farm, tmp_path: Path) -> None:
    config = tmp_path / "windpipe.toml"
    config.write_text(TOML)
    env = {
        "WINDPIPE_CONFIG": str(config),
        "WINDPIPE_API_URL": kpi_farm.api.url,
        "WINDPIPE_TARGET_DB_URL": kpi_farm.target.url.render_as_string(hide_password=False),
        "WINDPIPE_DATA_DIR": str(tmp_path),  # no embedded server may be started from here
    }
    with kpi_farm.target.begin() as conn:
        conn.execute(text("DELETE FROM turbine_day_kpi"))
        conn.execute(text("DELETE FROM turbine_day_loss"))
    done = windpipe("kpis", "--start", "2024-06-01", "--end", "2024-06-03", env=env)
    assert done.returncode == 0, done.stderr
    assert "event code(s) 999 are not in [event_codes]" in done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("│")]
    names = [line.split("│")[1].strip() for line in lines]
    assert sorted(names[:3]) == ["A", "B", "C"] and names[3] == "farm"
    assert "stored 9 turbine-day(s) of 3 turbine(s), 2024-06-01..2024-06-03" in done.stdout
    with kpi_farm.target.connect() as conn:
        stored = reads.kpi_rows(conn, FIRST, LAST)
    assert stored.height == 9
    # each day's curve over it and [availability] reference_days (30) before: only the range's
    # own days hold windows, so the first days have thin curves and more windows unpriced
    unpriced = stored["lost_unpriced_windows"].sum()
    assert f"{unpriced} window(s) lost production at no known wind speed" in done.stderr
    assert unpriced > _run(kpi_farm).figures.kpis["lost_unpriced_windows"].sum()  # one curve
    # the rank: lowest production-based availability first
    period = {t: stored.filter(pl.col("turbine") == t) for t in ("A", "B", "C")}
    ratio = {
        t: max(f["energy_kwh"].sum(), 0)
        / (max(f["energy_kwh"].sum(), 0) + f["lost_production_kwh"].sum())
        for t, f in period.items()
    }
    assert names[:3] == sorted(ratio, key=lambda t: ratio[t])

    only = windpipe(
        "kpis", "--start", "2024-06-02", "--end", "2024-06-02", "--turbine", "B", env=env
    )
    assert only.returncode == 0, only.stderr
    assert "stored 1 turbine-day(s) of 1 turbine(s)" in only.stdout
    # days before the first window or after the last are not the farm's: not stored as zeros
    wide = windpipe("kpis", "--start", "2024-05-20", "--end", "2024-06-30", env=env)
    assert wide.returncode == 0, wide.stderr
    assert (
        "the target holds windows from 2024-06-01 to 2024-06-03 only: computing those days, "
        "not 2024-05-20..2024-06-30"
    ) in wide.stderr
    assert "stored 9 turbine-day(s) of 3 turbine(s), 2024-06-01..2024-06-03" in wide.stdout
    for args, message, code in (
        (
            ("--start", "2024-06-03", "--end", "2024-06-01"),
            "error: --end 2024-06-01 is before --start",
            1,
        ),
        (("--start", "June 1"), "error: --start 'June 1' is not a date; expected YYYY-MM-DD", 1),
        (("--start", "2024-06-01", "--turbine", "ZZ"), "error: unknown turbine ZZ", 2),
        (
            ("--start", "2020-01-01", "--end", "2020-01-05"),
            "error: the target holds no power_mean windows of A, B, C from 2020-01-01 to "
            "2020-01-05; load them first: windpipe backfill --start 2020-01-01 --end 2020-01-05",
            1,
        ),
    ):
        refused = windpipe("kpis", *args, env=env)
        assert refused.returncode == code and refused.stderr.startswith(message), refused.stderr
    with kpi_farm.target.connect() as conn:
        assert reads.kpi_rows(conn, FIRST, LAST).height == 9
