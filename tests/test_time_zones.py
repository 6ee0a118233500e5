"""UTC end to end on a server whose sessions run in Europe/Berlin, on its spring DST day.

On 2026-03-29 Berlin's clocks jump from 02:00 to 03:00 (01:00 UTC). Both databases default to
Europe/Berlin, and so does this process's local time: the source, the API, the ETL and the target
must still agree on the day's 144 UTC windows, and a Berlin consumer of the target must see 144
distinct instants.
"""

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.conftest import LiveApi, new_database, serve
from windpipe.api import create_app
from windpipe.catalog import Coverage, signal_names, windows_of_day
from windpipe.etl.extract import ApiClient
from windpipe.etl.pipeline import run_range
from windpipe.postgres import libpq_conninfo
from windpipe.settings import Settings
from windpipe.source import store as source_store
from windpipe.source.seed import seed_source
from windpipe.warehouse import reads as target_reads

ZONE = "Europe/Berlin"
DST_DAY = date(2026, 3, 29)
VARIABLES = ["wind_speed", "power"]
AGGREGATIONS = ["mean", "min", "max", "std"]
SIGNALS = signal_names(VARIABLES, AGGREGATIONS)
#: The day's UTC window starts, as aware instants.
WINDOWS = [w.replace(tzinfo=UTC) for w in windows_of_day(DST_DAY)]


@pytest.fixture
def berlin_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's local time is Berlin's too: naive datetimes taken as local would show."""
    monkeypatch.setenv("TZ", ZONE)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def berlin_databases(target_url: URL, berlin_process: None) -> Iterator[tuple[Engine, Engine]]:
    """A source seeded with 2026-03-28..30 and an empty target, both defaulting to Berlin."""
    with (
        new_database(target_url, "windpipe_tz_source") as source,
        new_database(target_url, "windpipe_tz_target") as target,
    ):
        for engine in (source, target):
            with engine.begin() as conn:
                conn.execute(
                    text(f"ALTER DATABASE \"{engine.url.database}\" SET timezone = '{ZONE}'")
                )
            engine.dispose()  # new sessions start in Berlin
            with engine.connect() as conn:
                assert conn.execute(text("SHOW timezone")).scalar_one() == ZONE
        source_store.ensure_schema(source)
        begin = datetime(2026, 3, 28, tzinfo=UTC)
        seed_source(source, begin, begin + timedelta(days=3), seed=11)
        yield source, target


@pytest.fixture
def berlin_api(settings: Settings, berlin_databases: tuple[Engine, Engine]) -> Iterator[LiveApi]:
    source, target = berlin_databases
    app = create_app(
        settings,
        source_conninfo=libpq_conninfo(source.url),
        target_conninfo=libpq_conninfo(target.url),
    )
    with serve(app) as api:
        yield api


def _source_aggregates(source: Engine) -> dict[tuple[str, datetime], float]:
    """The day's aggregates computed independently, in SQL on the source, in a Berlin session."""
    columns = ", ".join(
        f"{fn}({v}) AS {v}_{a}"
        for v in VARIABLES
        for a, fn in zip(AGGREGATIONS, ("avg", "min", "max", "stddev_samp"), strict=True)
    )
    with source.connect() as conn:
        assert conn.execute(text("SHOW timezone")).scalar_one() == ZONE
        rows = conn.execute(
            text(
                f"SELECT date_bin('10 minutes', \"timestamp\", timestamptz '2026-03-29 00:00+00') "  # noqa: S608
                f"AS w, {columns} FROM data "
                "WHERE \"timestamp\" >= timestamptz '2026-03-29 00:00+00' "
                "AND \"timestamp\" < timestamptz '2026-03-30 00:00+00' GROUP BY 1"
            )
        ).mappings()
        return {
            (name, row["w"].astimezone(UTC)): float(row[name])
            for row in rows
            for name in SIGNALS
            if row[name] is not None
        }


def _target_rows(target: Engine) -> dict[tuple[str, datetime], float]:
    """The target's rows as a Berlin consumer reads them: (signal, instant) -> value."""
    with target.connect() as conn:
        assert conn.execute(text("SHOW timezone")).scalar_one() == ZONE
        rows = conn.execute(
            text(
                'SELECT s.name, d."timestamp", d.value FROM data d '
                "JOIN signal s ON s.id = d.signal_id"
            )
        ).all()
    return {(name, moment.astimezone(UTC)): value for name, moment, value in rows}


def test_a_berlin_server_loads_the_dst_day_as_144_utc_windows(
    berlin_api: LiveApi, berlin_databases: tuple[Engine, Engine]
) -> None:
    source, target = berlin_databases
    with ApiClient(berlin_api.url) as client:
        (result,) = run_range(
            DST_DAY,
            DST_DAY,
            client=client,
            engine=target,
            variables=VARIABLES,
            aggregations=AGGREGATIONS,
        )
    assert result.windows == 144

    # Every signal holds the 144 UTC window starts, with the values SQL computes on the source.
    loaded = _target_rows(target)
    expected = _source_aggregates(source)
    assert loaded.keys() == expected.keys()
    for name in SIGNALS:
        assert sorted(m for n, m in loaded if n == name) == WINDOWS
    for key, value in expected.items():
        assert loaded[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key

    # A Berlin consumer casting to timestamptz sees 144 distinct instants, 00:00Z to 23:50Z.
    with target.connect() as conn:
        distinct, first, last = conn.execute(
            text(
                'SELECT count(DISTINCT d."timestamp"::timestamptz), min(d."timestamp"), '
                'max(d."timestamp") FROM data d JOIN signal s ON s.id = d.signal_id '
                "WHERE s.name = 'power_mean'"
            )
        ).one()
    assert (distinct, first, last) == (144, WINDOWS[0], WINDOWS[-1])
    assert first.utcoffset() == timedelta(hours=1) and last.utcoffset() == timedelta(hours=2)

    # The store's reads (catch-up, checks, reports) count UTC days in a Berlin session.
    with target.connect() as conn:
        assert target_reads.days_with_aggregates(
            conn, DST_DAY - timedelta(1), DST_DAY + timedelta(1), SIGNALS
        ) == {DST_DAY}
        assert target_reads.window_counts(conn, DST_DAY, DST_DAY, SIGNALS) == {
            (DST_DAY, name): 144 for name in SIGNALS
        }
        assert target_reads.windows_held(conn, DST_DAY, "power_mean", turbine="WTG01") == set(
            windows_of_day(DST_DAY)
        )
        assert target_reads.last_window(conn, DST_DAY, SIGNALS) == windows_of_day(DST_DAY)[-1]
        assert target_reads.count_rows(conn, DST_DAY, DST_DAY) == 144 * len(SIGNALS)
        assert target_reads.duplicated_pairs(conn, DST_DAY, DST_DAY) == []
        frame = target_reads.aggregates_frame(conn, DST_DAY, DST_DAY, ["power_mean"])
        assert frame["timestamp"].to_list() == windows_of_day(DST_DAY)
        held = list(target_reads.windows_by_variable(conn, DST_DAY, DST_DAY, "power", ["mean"]))
        assert [w for _, w, _ in held] == windows_of_day(DST_DAY)

    # The ETL run again replaces the day exactly: the delete's bounds are UTC instants too.
    with ApiClient(berlin_api.url) as client:
        run_range(
            DST_DAY,
            DST_DAY,
            client=client,
            engine=target,
            variables=VARIABLES,
            aggregations=AGGREGATIONS,
        )
    assert _target_rows(target) == loaded

    with httpx.Client(base_url=berlin_api.url, timeout=30) as http:
        # /data for 10:00Z answers the samples of 10:00Z, labelled so.
        samples: list[dict[str, Any]] = http.get(
            "/data", params={"start": "2026-03-29T10:00:00Z", "end": "2026-03-29T10:10:00Z"}
        ).json()
        assert [s["timestamp"] for s in samples] == [
            f"2026-03-29T10:{m:02d}:00Z" for m in range(10)
        ]
        # /aggregates answers the 144 UTC windows, labelled in UTC.
        records = http.get(
            "/aggregates",
            params={"start": "2026-03-29", "end": "2026-03-30", "signals": "power_mean"},
        ).json()
        assert [r["timestamp"] for r in records] == [
            w.strftime("%Y-%m-%dT%H:%M:%SZ") for w in WINDOWS
        ]
        assert [r["power_mean"] for r in records] == pytest.approx(
            [expected[("power_mean", w)] for w in WINDOWS], rel=1e-9
        )
        # The dashboard counts the DST day's windows per UTC day: all 144, none missing.
        quality = http.get("/ui/api/quality", params={"end": "2026-03-29", "days": 2}).json()
        assert quality["days"] == ["2026-03-28", "2026-03-29"]
        assert quality["missing"] == [[144, 0]]
        overview = http.get("/ui/api/overview", params={"end": "2026-03-29", "days": 1}).json()
        assert overview["completeness"] == [[1.0]]
        assert overview["latest"][0]["timestamp"] == "2026-03-29T23:50:00Z"


def test_literals_and_coverage_are_utc_whatever_the_local_zone(
    berlin_databases: tuple[Engine, Engine],
) -> None:
    source, _ = berlin_databases
    naive = datetime(2026, 3, 29, 1, 30)  # 01:30 UTC, 03:30 in Berlin
    aware = naive.replace(tzinfo=UTC)
    assert source_store.select_range_sql(
        ["power"], naive, naive + timedelta(minutes=10)
    ) == source_store.select_range_sql(["power"], aware, aware + timedelta(minutes=10))
    assert "'2026-03-29T01:30:00+00:00'::timestamptz" in source_store.select_range_sql(
        ["power"], naive, naive + timedelta(minutes=10)
    )
    assert source_store.coverage(source) == Coverage(
        datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 30, 23, 59, tzinfo=UTC), 3 * 1440
    )
    newest = source_store.newest_timestamp(source)
    assert newest == datetime(2026, 3, 30, 23, 59, tzinfo=UTC) and newest.utcoffset() == timedelta(
        0
    )
