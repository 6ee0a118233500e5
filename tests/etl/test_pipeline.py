"""The whole day pipeline against the real API and PostgreSQL: exact, idempotent, atomic, serial."""

import math
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import polars as pl
import psycopg
import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import URL

from tests.conftest import CLEAN_DAYS, FARM_DAYS, FARM_TURBINES, GAPPY_DAYS, LiveApi, target_rows
from tests.etl.conftest import (
    AGGREGATIONS,
    ALL_AGGREGATIONS,
    ALL_VARIABLES,
    VARIABLES,
    KillMidCopy,
    day_start,
    delete_source,
    kill_on_response,
    wait_for_backends,
)
from tests.etl.test_fleet import _loaded as _fleet_loaded
from tests.etl.test_fleet import _sql_aggregates
from windpipe.catalog import signal_names
from windpipe.errors import (
    ApiUnavailableError,
    EtlError,
    TargetUnavailableError,
)
from windpipe.etl import pipeline
from windpipe.etl.extract import ApiClient
from windpipe.etl.pipeline import DayResult, run_range
from windpipe.postgres import database_url, ensure_database, libpq_conninfo, make_engine
from windpipe.settings import Settings
from windpipe.source.seed import seed_source
from windpipe.testing import ApiProcess, free_port
from windpipe.warehouse.store import ensure_schema as ensure_target_schema
from windpipe.warehouse.store import lock_namespace, replace_window

CLEAN = CLEAN_DAYS[0]
GAPPY = GAPPY_DAYS[0]
# Extra source data, written by the fixture below and removed afterwards: a day whose samples
# start and stop mid-window at 10 s with heavy gaps, and a day at 5 min where many windows hold a
# single sample (no std) or none.
PARTIAL_DAY = date(2023, 6, 1)
SPARSE_DAY = date(2023, 6, 2)


@pytest.fixture(scope="module")
def odd_days(source_engine: Engine) -> Iterator[list[date]]:
    """PARTIAL_DAY and SPARSE_DAY in the source."""
    partial = day_start(PARTIAL_DAY)
    seed_source(
        source_engine,
        partial + timedelta(hours=1, minutes=3, seconds=17),
        partial + timedelta(hours=7, minutes=44, seconds=2),
        freq="10s",
        seed=5,
        gap_rate=0.3,
    )
    sparse = day_start(SPARSE_DAY)
    seed_source(
        source_engine, sparse, sparse + timedelta(days=1), freq="5min", seed=5, gap_rate=0.4
    )
    yield [PARTIAL_DAY, SPARSE_DAY]
    delete_source(source_engine, partial, sparse + timedelta(days=1))


def source_aggregates(
    engine: Engine, day: date, variables: list[str], aggregations: list[str] = ALL_AGGREGATIONS
) -> dict[tuple[datetime, str], float]:
    """The day's aggregates computed independently, in SQL on the source database."""
    expected: dict[tuple[datetime, str], float] = {}
    functions = {"mean": "avg", "min": "min", "max": "max", "std": "stddev_samp", "count": "count"}
    with engine.connect() as conn:
        for variable in variables:
            columns = ", ".join(f'{fn}("{variable}")' for fn in functions.values())
            rows = conn.execute(
                text(
                    "SELECT date_bin('10 minutes', \"timestamp\" AT TIME ZONE 'UTC', "  # noqa: S608
                    f"TIMESTAMP '2000-01-01') AS w, {columns} FROM data "
                    'WHERE "timestamp" >= :s AND "timestamp" < :e GROUP BY w'
                ),
                {"s": day_start(day), "e": day_start(day) + timedelta(days=1)},
            ).all()
            for window, *values in rows:
                for aggregation, value in zip(functions, values, strict=True):
                    if aggregation not in aggregations or value is None:
                        continue
                    if not (aggregation == "count" and value == 0):
                        expected[(window, f"{variable}_{aggregation}")] = float(value)
    return expected


def assert_close(got: dict[tuple[datetime, str], float], expected: dict) -> None:
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert math.isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-9), (key, got[key], value)


def run(day: date, client: ApiClient, engine: Engine, **config: list[str]) -> DayResult:
    (result,) = run_range(
        day,
        day,
        client=client,
        engine=engine,
        variables=config.get("variables", VARIABLES),
        aggregations=config.get("aggregations", AGGREGATIONS),
    )
    return result


def test_every_value_equals_sql_on_the_source(
    client: ApiClient, target: Engine, seeded_source: Engine, odd_days: list[date]
) -> None:
    days = [
        *(CLEAN + timedelta(days=i) for i in range((CLEAN_DAYS[1] - CLEAN).days)),
        GAPPY,
        GAPPY + timedelta(days=1),
        *odd_days,
    ]
    for day in days:
        run(day, client, target, variables=ALL_VARIABLES, aggregations=ALL_AGGREGATIONS)
    got = {(ts, name): value for ts, name, value in target_rows(target)}
    expected: dict[tuple[datetime, str], float] = {}
    for day in days:
        expected |= source_aggregates(seeded_source, day, ALL_VARIABLES)
    assert_close(got, expected)
    # The odd days really do exercise partial, single-sample and empty windows.
    sparse = {ts for ts, name in expected if name == "power_mean" and ts.date() == SPARSE_DAY}
    sparse_std = {ts for ts, name in expected if name == "power_std" and ts.date() == SPARSE_DAY}
    assert 30 < len(sparse) < 144 and len(sparse_std) < len(sparse)
    partial = [ts for ts, name in expected if name == "power_count" and ts.date() == PARTIAL_DAY]
    assert min(partial) == datetime(2023, 6, 1, 1, 0) and max(partial) == datetime(
        2023, 6, 1, 7, 40
    )
    assert got[(datetime(2023, 6, 1, 1, 0), "power_count")] < 60


def test_a_day_result_describes_the_run(client: ApiClient, target: Engine) -> None:
    clean = run(CLEAN, client, target)
    assert (clean.day, clean.rows_read, clean.windows, clean.rows_written) == (
        CLEAN,
        1440,
        144,
        1152,
    )
    assert clean.coverage == 1.0 and 0 < clean.seconds < 10
    gappy = run(GAPPY, client, target)
    assert gappy.rows_read < 1440 and gappy.coverage == pytest.approx(gappy.rows_read / 1440)
    assert gappy.rows_written == len([r for r in target_rows(target) if r[0].date() == GAPPY])


def test_a_rerun_leaves_the_same_rows_and_other_days_alone(
    client: ApiClient, target: Engine
) -> None:
    run(CLEAN, client, target)
    run(CLEAN + timedelta(days=1), client, target)
    first = target_rows(target)
    with target.connect() as conn:
        ids_before = conn.execute(text("SELECT max(id) FROM signal")).scalar_one()
    again = run(CLEAN, client, target)
    assert target_rows(target) == first and again.rows_written == 1152
    with target.connect() as conn:
        signals = conn.execute(text("SELECT count(*), max(id) FROM signal")).one()
    assert signals[1] == ids_before  # signals are never registered twice
    assert signals[0] >= len(signal_names(VARIABLES, AGGREGATIONS))


def test_only_the_configured_signals_are_replaced(client: ApiClient, target: Engine) -> None:
    run(CLEAN, client, target, aggregations=["mean", "count"])
    counts = [r for r in target_rows(target) if r[1].endswith("_count")]
    run(CLEAN, client, target, aggregations=["mean", "max"])
    rows = target_rows(target)
    assert [r for r in rows if r[1].endswith("_count")] == counts
    assert {r[1] for r in rows} == {
        "wind_speed_mean",
        "wind_speed_max",
        "wind_speed_count",
        "power_mean",
        "power_max",
        "power_count",
    }


def test_a_day_without_samples_clears_the_days_aggregates(
    client: ApiClient, target: Engine
) -> None:
    empty_day = date(2024, 3, 8)  # between the seeded periods
    start = datetime(2024, 3, 8)
    stale = pl.DataFrame(
        {"timestamp": [start, start + timedelta(minutes=10)], "signal": ["power_mean"] * 2},
        schema={"timestamp": pl.Datetime("us"), "signal": pl.String},
    ).with_columns(value=pl.lit(1.0))
    replace_window(target, start, start + timedelta(days=1), stale, signals=["power_mean"])
    run(CLEAN, client, target)
    kept = target_rows(target)
    assert len(kept) == 1154
    result = run(empty_day, client, target)
    assert (result.rows_read, result.windows, result.rows_written, result.coverage) == (
        0,
        0,
        0,
        0.0,
    )
    assert target_rows(target) == [r for r in kept if r[0].date() != empty_day]


def test_the_schema_is_the_briefs_and_creation_is_idempotent(target: Engine) -> None:
    ensure_target_schema(target)
    ensure_target_schema(target)
    inspector = inspect(target)
    data = {c["name"]: c for c in inspector.get_columns("data")}
    assert list(data) == ["id", "timestamp", "signal_id", "value"]
    assert str(data["timestamp"]["type"]) == "TIMESTAMP" and not data["timestamp"]["nullable"]
    assert str(data["value"]["type"]) == "DOUBLE PRECISION" and not data["value"]["nullable"]
    assert "nextval" in str(data["id"]["default"])
    signal = {c["name"]: c for c in inspector.get_columns("signal")}
    assert str(signal["name"]["type"]) == "VARCHAR(255)" and not signal["name"]["nullable"]
    uniques = {
        table: [(u["name"], u["column_names"]) for u in inspector.get_unique_constraints(table)]
        for table in ("signal", "data")
    }
    assert uniques == {
        "signal": [("uq_signal_turbine_name", ["turbine", "name"])],
        "data": [("uq_data_signal_id_timestamp", ["signal_id", "timestamp"])],
    }
    (fk,) = inspector.get_foreign_keys("data")
    assert (fk["name"], fk["referred_table"], fk["constrained_columns"]) == (
        "fk_data_signal_id_signal",
        "signal",
        ["signal_id"],
    )


def test_the_first_load_creates_the_schema(client: ApiClient, settings: Settings) -> None:
    server = database_url(settings, "target").set(database="postgres")
    ensure_database(server, "windpipe_fresh_target")
    engine = make_engine(server.set(database="windpipe_fresh_target"))
    try:
        assert run(CLEAN, client, engine).rows_written == 1152
        assert len(target_rows(engine)) == 1152
        # Creating the schema from several connections at once is serialized, not a race.
        with engine.begin() as conn:
            conn.execute(
                text(
                    "DROP TABLE data, signal, day_load, turbine_day_kpi, turbine_day_loss, "
                    "window_flag, flag_day, alembic_version"
                )
            )
        errors: list[BaseException] = []

        def create() -> None:
            try:
                ensure_target_schema(engine)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=create) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == [] and target_rows(engine) == []
        assert set(inspect(engine).get_table_names()) == {
            "data",
            "signal",
            "day_load",
            "turbine_day_kpi",
            "turbine_day_loss",
            "window_flag",
            "flag_day",
            "alembic_version",
        }
    finally:
        engine.dispose()
        with psycopg.connect(libpq_conninfo(server), autocommit=True) as conn:
            conn.execute("DROP DATABASE windpipe_fresh_target WITH (FORCE)")


def test_a_load_the_target_refuses_is_one_clear_error_and_writes_nothing(
    client: ApiClient, target: Engine
) -> None:
    before = _loaded_state(client, target, CLEAN)
    with target.begin() as conn:
        conn.execute(
            text("ALTER TABLE data ADD CONSTRAINT ck_test_negative CHECK (value < 0) NOT VALID")
        )
    try:
        with pytest.raises(EtlError, match=rf"^{CLEAN}: the target database at .* refused loading"):
            run(CLEAN, client, target)
    finally:
        with target.begin() as conn:
            conn.execute(text("ALTER TABLE data DROP CONSTRAINT ck_test_negative"))
    assert target_rows(target) == before


# -- concurrency -----------------------------------------------------------------------------------


def test_two_runs_of_one_day_at_once_end_in_the_state_of_one(
    client: ApiClient, target: Engine, live_api: LiveApi
) -> None:
    """Both runs queue on the day's advisory lock; released together, they still serialize."""
    start = datetime(2024, 3, 2)
    day_lock = (
        "SELECT pg_advisory_lock(%s, %s)",
        (lock_namespace("WTG01"), start.date().toordinal()),
    )
    signals = ["power_mean", "power_max"]
    windows = [start + timedelta(minutes=10 * i) for i in range(144)]
    a = pl.DataFrame(
        {"timestamp": windows * 2, "signal": ["power_mean"] * 144 + ["power_max"] * 144},
        schema={"timestamp": pl.Datetime("us"), "signal": pl.String},
    ).with_columns(value=pl.lit(1.0))
    b = a.head(100).with_columns(value=pl.lit(2.0))  # a different answer for the same signals
    errors: list[BaseException] = []

    def write(frame: pl.DataFrame) -> None:
        try:
            replace_window(target, start, start + timedelta(days=1), frame, signals=signals)
        except BaseException as exc:
            errors.append(exc)

    with psycopg.connect(libpq_conninfo(target.url), autocommit=True) as blocker:
        blocker.execute(*day_lock)
        threads = [threading.Thread(target=write, args=(f,)) for f in (a, b)]
        for thread in threads:
            thread.start()
        wait_for_backends(target, 2, "Lock", "SELECT pg_advisory_xact_lock")
        blocker.execute("SELECT pg_advisory_unlock_all()")
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []
    rows = [(ts, name, value) for ts, name, value in target_rows(target)]
    state_a = sorted((ts, s, 1.0) for ts, s in zip(a["timestamp"], a["signal"], strict=True))
    state_b = sorted((ts, s, 2.0) for ts, s in zip(b["timestamp"], b["signal"], strict=True))
    assert rows in (state_a, state_b)

    # The same with two whole pipeline runs of one day, started together.
    results: list[DayResult] = []

    def pipeline() -> None:
        with ApiClient(live_api.url) as own:
            try:
                results.append(run(CLEAN, own, target))
            except BaseException as exc:
                errors.append(exc)

    runs = [threading.Thread(target=pipeline) for _ in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join(timeout=60)
    assert errors == [] and [r.rows_written for r in results] == [1152, 1152]
    clean_rows = [r for r in target_rows(target) if r[0].date() == CLEAN]
    assert len(clean_rows) == 1152


# -- faults ----------------------------------------------------------------------------------------


def _loaded_state(
    client: ApiClient, target: Engine, day: date
) -> list[tuple[datetime, str, float]]:
    run(day, client, target)
    state = target_rows(target)
    assert len(state) == 1152
    return state


@pytest.mark.slow
def test_the_api_killed_mid_transfer_leaves_the_target_unchanged(
    client: ApiClient,
    target: Engine,
    api_process: ApiProcess,
    one_second_days: tuple[date, date],
) -> None:
    day = one_second_days[0]
    before = _loaded_state(client, target, day)
    hooks = {"response": [kill_on_response(api_process)]}
    doomed = ApiClient(
        api_process.url, retries=2, timeout=20, event_hooks=hooks, sleep=lambda _: None
    )
    cut = rf"^{day}: the API at .*(cut the transfer|unreachable)"
    with doomed, pytest.raises(EtlError, match=cut):
        run(day, doomed, target)
    assert api_process.process.returncode is not None
    assert target_rows(target) == before


def test_an_api_that_is_down_writes_nothing(client: ApiClient, target: Engine) -> None:
    before = _loaded_state(client, target, CLEAN)
    down = ApiClient(f"http://127.0.0.1:{free_port()}", retries=1, sleep=lambda _: None)
    unreachable = rf"^{CLEAN}: the API at .* is unreachable"
    with down, pytest.raises(ApiUnavailableError, match=unreachable):
        run(CLEAN, down, target)
    assert target_rows(target) == before


def test_a_range_against_an_api_that_is_down_loads_nothing(
    client: ApiClient, target: Engine
) -> None:
    before = _loaded_state(client, target, CLEAN)
    seen: list[DayResult] = []
    down = ApiClient(f"http://127.0.0.1:{free_port()}", retries=0)
    with down, pytest.raises(ApiUnavailableError, match=rf"^{CLEAN}: the API at .* unreachable"):
        run_range(
            CLEAN,
            CLEAN + timedelta(days=9),
            client=down,
            engine=target,
            variables=VARIABLES,
            aggregations=AGGREGATIONS,
            on_day=seen.append,
        )
    assert seen == [] and target_rows(target) == before


def test_a_target_that_refuses_the_connection_is_one_clear_error(client: ApiClient) -> None:
    nowhere = URL.create(
        "postgresql+psycopg", username="postgres", host="127.0.0.1", port=free_port(), database="x"
    )
    engine = make_engine(nowhere)
    try:
        with pytest.raises(TargetUnavailableError, match=r"target database .* failed") as info:
            run(CLEAN, client, engine)
    finally:
        engine.dispose()
    # Refused before any day: the schema check is the first thing a run asks of the target.
    assert "\n" not in str(info.value) and "while migrating the schema" in str(info.value)


def test_the_target_connection_killed_mid_load_leaves_the_target_unchanged(
    client: ApiClient, target: Engine, kill_mid_copy: KillMidCopy
) -> None:
    """Kill the loading backend after its DELETE, while its COPY waits on a conflicting row."""
    before = _loaded_state(client, target, CLEAN)
    config = {"aggregations": [*AGGREGATIONS, "count"]}
    with target.begin() as conn:  # register the new signal up front, as an earlier run would
        conn.execute(
            text(
                "INSERT INTO signal (turbine, name, variable, aggregation) "
                "VALUES ('WTG01', 'wind_speed_count', 'wind_speed', 'count') ON CONFLICT DO NOTHING"
            )
        )
    before_signals = target_rows(target)
    assert before_signals == before
    errors = kill_mid_copy(
        lambda: run(CLEAN, client, target, **config),
        signal="wind_speed_count",
        at=datetime(2024, 3, 1),
    )
    assert len(errors) == 1 and isinstance(errors[0], TargetUnavailableError)
    assert str(errors[0]).startswith(f"{CLEAN}: the target database at ")
    assert "\n" not in str(errors[0])
    assert target_rows(target) == before
    # The engine recovers: the next run reconnects and loads.
    assert run(CLEAN, client, target, **config).rows_written == 1440


# -- ranges ----------------------------------------------------------------------------------------


def test_run_range_loads_each_day_in_order_and_reports_it(
    client: ApiClient, target: Engine, seeded_source: Engine, one_second_days: tuple[date, date]
) -> None:
    first, last = one_second_days
    assert pipeline.FETCH_DAYS == 4  # the 4 days below come in one request, split by day
    seen: list[DayResult] = []
    results = run_range(
        first - timedelta(days=1),
        last,
        client=client,
        engine=target,
        variables=VARIABLES,
        aggregations=AGGREGATIONS,
        on_day=seen.append,
    )
    assert seen == results
    assert [r.day for r in results] == [
        first - timedelta(days=1) + timedelta(days=i) for i in range(4)
    ]
    assert [r.rows_read for r in results] == [0, 86_400, 86_400, 86_400]
    assert [r.rows_written for r in results] == [0, 1152, 1152, 1152]
    assert all(r.coverage == 1.0 for r in results[1:])
    expected: dict[tuple[datetime, str], float] = {}
    for day in [first + timedelta(days=i) for i in range(3)]:
        expected |= source_aggregates(seeded_source, day, VARIABLES, AGGREGATIONS)
    assert_close({(ts, name): v for ts, name, v in target_rows(target)}, expected)


def test_run_range_stops_at_the_first_failing_day(
    client: ApiClient, target: Engine, kill_mid_copy: KillMidCopy
) -> None:
    """Day 3's load is killed: days 1-2 stay loaded, day 3 is unchanged, days 4-5 never run."""
    with pytest.raises(EtlError, match=r"ends .* before it starts"):
        run_range(
            CLEAN,
            CLEAN - timedelta(days=1),
            client=client,
            engine=target,
            variables=VARIABLES,
            aggregations=AGGREGATIONS,
        )
    third = CLEAN + timedelta(days=2)
    empty = pl.DataFrame(
        schema={"timestamp": pl.Datetime("us"), "signal": pl.String, "value": pl.Float64}
    )
    replace_window(  # registers the signals, as an earlier run would have
        target,
        datetime(2000, 1, 1),
        datetime(2000, 1, 2),
        empty,
        signals=signal_names(VARIABLES, AGGREGATIONS),
    )
    loaded: list[date] = []
    errors = kill_mid_copy(
        lambda: run_range(
            CLEAN,
            CLEAN + timedelta(days=4),
            client=client,
            engine=target,
            variables=VARIABLES,
            aggregations=AGGREGATIONS,
            on_day=lambda r: loaded.append(r.day),
        ),
        signal="power_mean",
        at=datetime(third.year, third.month, third.day),
    )
    assert len(errors) == 1 and isinstance(errors[0], TargetUnavailableError)
    assert str(errors[0]).startswith(f"{third}: the target database")
    assert loaded == [CLEAN, CLEAN + timedelta(days=1)]
    assert sorted({r[0].date() for r in target_rows(target)}) == loaded


def test_utc_is_kept_whatever_the_sessions_time_zone(client: ApiClient, target: Engine) -> None:
    run(CLEAN, client, target)
    with target.connect() as conn:
        conn.execute(text("SET TIME ZONE 'Asia/Kathmandu'"))
        first, last = conn.execute(
            text('SELECT min("timestamp"), max("timestamp") FROM data')
        ).one()
    # timestamptz (t0004): the same UTC instants, shown in the session's zone.
    assert (first, last) == (
        datetime(2024, 3, 1, tzinfo=UTC),
        datetime(2024, 3, 1, 23, 50, tzinfo=UTC),
    )
    assert first.utcoffset() == timedelta(hours=5, minutes=45)


def test_requests_are_planned_by_the_samples_each_day_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pipeline, "REQUEST_SAMPLES", 100)
    monkeypatch.setattr(pipeline, "FETCH_DAYS", 4)
    days = [date(2024, 1, d) for d in range(1, 8)]
    turbines = ["A", "B", "C", "D"]
    counts = {(t, day): 10 for t in turbines for day in days}  # 40 a day: 2 days a request
    counts |= {(t, days[3]): 60 for t in turbines}  # 240: three groups of about 80
    plan = pipeline.plan_requests(days, turbines, counts)
    assert plan == [
        (days[0:2], turbines),
        ([days[2]], turbines),
        ([days[3]], ["A"]),
        ([days[3]], ["B", "C"]),
        ([days[3]], ["D"]),
        (days[4:6], turbines),
        ([days[6]], turbines),
    ]
    # Every (turbine, day) is fetched exactly once.
    assert sorted((t, d) for ds, ts in plan for d in ds for t in ts) == sorted(counts)


def test_a_day_fetched_in_groups_of_turbines_is_one_result_equal_to_sql(
    farm_api: LiveApi, farm_db: tuple[Engine, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = farm_db
    monkeypatch.setattr(pipeline, "REQUEST_SAMPLES", 2000)  # a farm day (~4,300) in 3 groups
    seen: list[DayResult] = []
    with ApiClient(farm_api.url) as client:
        planned = pipeline.plan_requests(
            [FARM_DAYS[0]],
            FARM_TURBINES,
            {k: int(v.split(":")[0]) for k, v in client.fingerprints(*FARM_DAYS).items()},
        )
        assert [ts for _, ts in planned] == [["WTG01"], ["WTG02"], ["WTG03"]]
        run_range(
            FARM_DAYS[0],
            FARM_DAYS[1],
            client=client,
            engine=target,
            variables=VARIABLES,
            aggregations=AGGREGATIONS,
            turbines=FARM_TURBINES,
            on_day=seen.append,
        )
    assert [r.day for r in seen] == list(FARM_DAYS)
    assert all(r.turbines == 3 and set(r.by_turbine) == set(FARM_TURBINES) for r in seen)
    assert all(r.windows == 3 * 144 and r.rows_written == 3 * 144 * 8 for r in seen)
    expected = {k: v for day in FARM_DAYS for k, v in _sql_aggregates(source, day).items()}
    loaded = _fleet_loaded(target)
    loaded = {k: v for k, v in loaded.items() if k[1].date() in FARM_DAYS}
    assert loaded.keys() == expected.keys()
    assert all(abs(loaded[k] - expected[k]) <= 1e-9 * max(1.0, abs(expected[k])) for k in expected)
