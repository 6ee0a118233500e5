"""The bulk path of backfills: whole months built apart and swapped in, equal to SQL and to the
daily path; a crash before the swap leaves the previous month; queries prune the months."""

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.conftest import FARM_TURBINES as TURBINES
from tests.conftest import LiveApi, new_database, serve
from windpipe.api.app import create_app
from windpipe.etl.backfill import bulk_months, run_backfill, turbine_groups
from windpipe.etl.extract import ApiClient
from windpipe.etl.pipeline import run_range
from windpipe.postgres import libpq_conninfo
from windpipe.settings import Settings
from windpipe.source import store as source_store
from windpipe.source.generator import farm
from windpipe.source.seed import seed_source
from windpipe.warehouse import queries
from windpipe.warehouse.bulk import reserve_ids
from windpipe.warehouse.store import ensure_schema

VARIABLES = ["wind_speed", "power"]
AGGREGATIONS = ["mean", "min", "max", "std"]
SIGNALS = [f"{v}_{a}" for v in VARIABLES for a in AGGREGATIONS]
# Two days of January, the whole of February (a leap month), two days of March.
FIRST, LAST = date(2024, 1, 30), date(2024, 3, 2)
MONTH = date(2024, 2, 1)


@pytest.fixture(scope="module")
def bulk_farm(fleet_settings: Settings, target_url: URL) -> Iterator[tuple[Engine, LiveApi]]:
    """A source holding the three-turbine farm from FIRST to LAST at 1 min, with ~2 % gaps."""
    with new_database(target_url, "windpipe_bulk_source") as source:
        source_store.ensure_schema(source)
        begin = datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=UTC)
        end = datetime(LAST.year, LAST.month, LAST.day, tzinfo=UTC) + timedelta(days=1)
        seed_source(source, begin, end, turbines=farm(3), seed=9, gap_rate=0.02)
        app = create_app(fleet_settings, source_conninfo=libpq_conninfo(source.url))
        with serve(app) as api:
            yield source, api


@pytest.fixture
def bulk_target(target_url: URL, request: pytest.FixtureRequest) -> Iterator[Engine]:
    tag = re.sub(r"\W", "_", request.node.name.lower())[:30]
    with new_database(target_url, f"windpipe_bt_{tag}") as engine:
        ensure_schema(engine)
        yield engine


def _backfill(api: LiveApi, target: Engine, *, bulk: bool = True, **kwargs: object) -> list:
    with ApiClient(api.url) as client:
        run = run_backfill if bulk else run_range
        return run(  # type: ignore[operator]
            FIRST, LAST, client=client, engine=target, variables=VARIABLES,
            aggregations=AGGREGATIONS, turbines=TURBINES, **kwargs,
        )  # fmt: skip


def _rows(target: Engine) -> dict[tuple[str, datetime, str], float]:
    with target.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT s.turbine, d.timestamp AT TIME ZONE 'UTC', s.name, d.value FROM data d "
                "JOIN signal s ON s.id = d.signal_id"
            )
        )
        return {(t, ts, n): v for t, ts, n, v in rows}


def _with_ids(target: Engine) -> list[tuple[object, ...]]:
    with target.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT * FROM data ORDER BY id"))]


def _day_load(target: Engine, *, when: bool = False) -> dict[tuple[str, date], tuple[object, ...]]:
    with target.connect() as conn:
        rows = conn.execute(
            text("SELECT turbine, day, fingerprint, samples, loaded_at FROM day_load")
        )
        return {(t, d): (f, s, *([at] if when else [])) for t, d, f, s, at in rows}


def _sql_aggregates(source: Engine) -> dict[tuple[str, datetime, str], float]:
    """The 10-minute aggregates per turbine, computed by PostgreSQL from the raw samples."""
    with source.connect() as conn:
        rows = conn.execute(
            text(
                """
                SELECT turbine, date_bin('10 minutes', "timestamp", timestamptz '2000-01-01'),
                       avg(wind_speed), min(wind_speed), max(wind_speed), stddev_samp(wind_speed),
                       avg(power), min(power), max(power), stddev_samp(power)
                FROM data GROUP BY 1, 2
                """
            )
        )
        expected = {}
        for turbine, window, *values in rows:
            for name, value in zip(SIGNALS, values, strict=True):
                if value is not None:
                    expected[(turbine, window.astimezone(UTC).replace(tzinfo=None), name)] = value
    return expected


def test_bulk_months_are_the_whole_closed_months_of_a_range() -> None:
    now = datetime(2024, 5, 10, tzinfo=UTC)
    assert bulk_months(FIRST, LAST, closed_by=now) == [MONTH]
    assert bulk_months(date(2024, 1, 1), date(2024, 4, 30), closed_by=now) == [
        date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1), date(2024, 4, 1),
    ]  # fmt: skip
    assert bulk_months(date(2024, 4, 1), date(2024, 5, 31), closed_by=now) == [date(2024, 4, 1)]
    assert bulk_months(date(2024, 2, 2), date(2024, 2, 29), closed_by=now) == []


def test_a_bulk_backfill_equals_sql_and_the_daily_path_and_records_every_day(
    bulk_farm: tuple[Engine, LiveApi], bulk_target: Engine, target_url: URL
) -> None:
    source, api = bulk_farm
    results = _backfill(api, bulk_target)
    assert [r.day for r in results] == [FIRST + timedelta(days=i) for i in range(33)]
    loaded = _rows(bulk_target)
    expected = _sql_aggregates(source)
    assert loaded.keys() == expected.keys()
    assert all(abs(loaded[k] - v) <= 1e-9 * max(1.0, abs(v)) for k, v in expected.items())
    assert sum(r.rows_written for r in results) == len(loaded)
    with ApiClient(api.url) as client:
        prints = client.fingerprints(FIRST, LAST, TURBINES)
    recorded = _day_load(bulk_target)
    assert {k: f for k, (f, _) in recorded.items()} == prints  # every (turbine, day), bulk too
    assert {k: s for k, (_, s) in recorded.items()} == {
        k: int(p.split(":")[0]) for k, p in prints.items()
    }
    with new_database(target_url, "windpipe_bt_daily") as daily:
        _backfill(api, daily, bulk=False)
        assert _rows(daily) == loaded  # the same doubles, bit for bit
        assert _day_load(daily) == recorded


def test_a_bulk_rerun_gives_the_same_rows_and_keeps_other_turbines(
    bulk_farm: tuple[Engine, LiveApi], bulk_target: Engine
) -> None:
    _, api = bulk_farm
    _backfill(api, bulk_target)
    first = _rows(bulk_target)
    _backfill(api, bulk_target)
    assert _rows(bulk_target) == first
    # A month rebuilt for one turbine keeps the others' rows of that month, ids and all.
    others = [r for r in _with_ids(bulk_target) if r[1].month == 2]
    with ApiClient(api.url) as client:
        run_backfill(
            MONTH, date(2024, 2, 29), client=client, engine=bulk_target, variables=VARIABLES,
            aggregations=AGGREGATIONS, turbines=["WTG02"],
        )  # fmt: skip
    assert _rows(bulk_target) == first
    with bulk_target.connect() as conn:
        wtg02 = set(conn.execute(text("SELECT id FROM signal WHERE turbine = 'WTG02'")).scalars())
    kept = [r for r in _with_ids(bulk_target) if r[1].month == 2 and r[2] not in wtg02]
    assert kept == [r for r in others if r[2] not in wtg02]


def test_a_crash_before_the_swap_leaves_the_previous_month(
    bulk_farm: tuple[Engine, LiveApi], bulk_target: Engine
) -> None:
    _, api = bulk_farm
    _backfill(api, bulk_target)
    before, loads = _with_ids(bulk_target), _day_load(bulk_target, when=True)

    def crash() -> None:  # the new month is loaded, indexed and checked: fail before the swap
        raise RuntimeError("injected: the process dies before the swap")

    with pytest.raises(RuntimeError, match="injected"), ApiClient(api.url) as client:
        run_backfill(
            MONTH, date(2024, 2, 29), client=client, engine=bulk_target, variables=VARIABLES,
            aggregations=AGGREGATIONS, turbines=TURBINES, before_swap=crash,
        )  # fmt: skip
    assert _with_ids(bulk_target) == before  # every row and id of the month as it was
    assert _day_load(bulk_target, when=True) == loads  # loaded_at too
    with bulk_target.connect() as conn:
        tables = conn.execute(text("SELECT relname FROM pg_class WHERE relname LIKE 'data_%'"))
        names = sorted(tables.scalars())
    # No half-built month is left behind: only the partitions (and their indexes).
    assert not [n for n in names if "_load_" in n]
    assert {"data_2024_01", "data_2024_02", "data_2024_03"} <= set(names)


def test_a_signal_of_a_turbine_over_a_range_reads_only_its_months(
    bulk_farm: tuple[Engine, LiveApi], bulk_target: Engine
) -> None:
    _, api = bulk_farm
    _backfill(api, bulk_target)
    sql = queries.aggregates_sql(
        ["power_mean"], date(2024, 2, 10), date(2024, 2, 12), turbines=["WTG01"]
    )
    with bulk_target.connect() as conn:
        plan = "\n".join(conn.execute(text(f"EXPLAIN {sql}")).scalars())
        rows = conn.execute(text(sql)).all()
    assert "data_2024_02" in plan
    assert "data_2024_01" not in plan and "data_2024_03" not in plan
    assert 0 < len(rows) <= 2 * 144  # two days of windows


def test_a_month_is_fetched_in_groups_of_turbines_of_bounded_samples() -> None:
    held = {"A": 50_000, "B": 50_000, "C": 50_000, "D": 300_000, "E": 0}
    assert turbine_groups(["A", "B", "C", "D", "E"], held, limit=120_000) == [
        ["A", "B"], ["C"], ["D"], ["E"],
    ]  # fmt: skip
    assert turbine_groups(["A"], {}, limit=10) == [["A"]]


def test_ids_are_reserved_as_one_block_that_nextval_then_passes(bulk_target: Engine) -> None:
    with bulk_target.begin() as conn:
        before = conn.execute(text("SELECT nextval('data_id_seq')")).scalar_one()
        first = reserve_ids(conn, 1_000)
        after = conn.execute(text("SELECT nextval('data_id_seq')")).scalar_one()
    assert before < first and after == first + 1_000
