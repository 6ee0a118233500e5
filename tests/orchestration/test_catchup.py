"""Catch-up: each turbine's days with data and nothing loaded, in bounded runs, retried smaller."""

from datetime import date, datetime, timedelta

import pytest
from dagster import AssetKey, DagsterInstance, Definitions, SensorResult, build_sensor_context
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.conftest import CLEAN_DAYS, GAPPY_DAYS
from tests.orchestration.conftest import defs, etl_resource
from windpipe.catalog import days_between
from windpipe.orchestration import catchup
from windpipe.orchestration.catchup import (
    RunPlan,
    describe_days,
    missing_pairs,
    plan_runs,
    run_size,
    within_budget,
)
from windpipe.orchestration.defs.assets import aggregates_10min
from windpipe.orchestration.defs.jobs import etl_job
from windpipe.orchestration.defs.sensors import (
    PARTITION_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    catch_up,
    in_flight_days,
    run_days,
)
from windpipe.postgres import make_engine
from windpipe.warehouse.reads import days_with_aggregates

D = date(2024, 3, 1)


def d(n: int) -> date:
    return D + timedelta(days=n)


def test_missing_pairs_are_each_turbines_days_with_data_minus_the_done_and_busy() -> None:
    source = {"A": {d(0), d(1), d(2), d(3)}, "B": {d(2)}, "C": {d(5)}}
    loaded = {("A", d(1)), ("C", d(5))}
    assert missing_pairs(source, loaded, skip={("A", d(3))}) == {"A": [d(0), d(2)], "B": [d(2)]}
    assert missing_pairs({"A": set()}, set()) == {}


def test_runs_cover_exactly_the_missing_pairs_and_stay_bounded() -> None:
    # A history imported for two turbines in 2014 beside a farm running since 2026: two runs of
    # their own, nothing of the twelve years between.
    old = [date(2014, 1, 1) + timedelta(days=n) for n in range(31)]
    new = [date(2026, 12, 5), date(2026, 12, 6)]
    missing = {"R1": old, "R2": old, "WTG01": new}
    plans = plan_runs(missing, max_partitions=400)
    assert plans == [
        RunPlan(date(2014, 1, 1), date(2014, 1, 31), ("R1", "R2")),
        RunPlan(date(2026, 12, 5), date(2026, 12, 6), ("WTG01",)),
    ]
    # Every pair once, none that is not missing, each run within the bound.
    for bound in (1, 7, 10, 61):
        plans = plan_runs(missing, max_partitions=bound)
        pairs = [pair for plan in plans for pair in plan.pairs()]
        assert sorted(pairs) == sorted((t, day) for t, days in missing.items() for day in days)
        assert all(plan.partitions <= bound for plan in plans)
    year = plan_runs({"A": [d(n) for n in range(365)]}, max_partitions=400, max_days=100)
    assert [p.partitions for p in year] == [100, 100, 100, 65]
    # Days loaded in the middle of a span split it: a failed run never covers them.
    holes = plan_runs({"A": [d(0), d(1), d(3)]})
    assert [(p.first, p.last) for p in holes] == [(d(0), d(1)), (d(3), d(3))]


def test_failed_runs_are_retried_smaller_and_a_tick_is_bounded() -> None:
    assert [run_size(n, 400) for n in range(4)] == [400, 200, 100, 50]
    plans = [RunPlan(d(0), d(99), ("A", "B", "C", "D"))] * 3
    assert within_budget(plans, budget=900) == plans[:2]
    assert within_budget(plans, budget=10) == plans[:1]  # always progress
    assert describe_days([d(0), d(1), d(2), d(5)]) == "2024-03-01..2024-03-03, 2024-03-06"


def test_run_days_reads_partition_and_range_tags() -> None:
    assert run_days({PARTITION_TAG: "2024-03-04"}) == [d(3)]
    assert run_days({RANGE_START_TAG: "2024-03-01", RANGE_END_TAG: "2024-03-03"}) == [
        d(0),
        d(1),
        d(2),
    ]
    assert run_days({"other": "x"}) == []


def _sensor_resources(resources: dict, target: URL) -> dict:
    return {"etl": etl_resource(resources["etl"].api_url, target)}


def _evaluate(instance: DagsterInstance, resources: dict, cursor: str | None = None):  # type: ignore[no-untyped-def]
    with build_sensor_context(instance=instance, resources=resources, cursor=cursor) as context:
        result = catch_up(context)
    assert isinstance(result, SensorResult)
    return result


def test_sensor_requests_runs_of_exactly_the_days_with_data(
    resources: dict, empty_target: URL, seeded_source: Engine, instance: DagsterInstance
) -> None:
    res = _sensor_resources(resources, empty_target)
    clean = days_between(CLEAN_DAYS[0], CLEAN_DAYS[1] - timedelta(1))  # 03-01 .. 03-05
    gappy = days_between(GAPPY_DAYS[0], GAPPY_DAYS[1] - timedelta(1))  # 03-10 .. 03-11

    first = _evaluate(instance, res)
    # 03-06 .. 03-09 hold no samples: no run covers them.
    spans = [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in first.run_requests or []]
    assert spans == [("2024-03-01", "2024-03-05"), ("2024-03-10", "2024-03-11")]

    # While those requests cool down, the sensor does not ask again, and says why.
    again = _evaluate(instance, res, cursor=first.cursor)
    assert not again.run_requests
    assert "0 of 7 (turbine, day)s with data" in _skip(again)
    assert "7 requested or in runs in flight" in _skip(again)

    # Executing the requests materializes the seven days with data.
    job = defs.resolve_job_def("windpipe_etl")
    for request in first.run_requests or []:
        assert job.execute_in_process(instance=instance, resources=res, tags=request.tags).success
    assert instance.get_materialized_partitions(AssetKey(["aggregates_10min", "WTG01"])) == {
        day.isoformat() for day in clean + gappy
    }
    engine = make_engine(empty_target)
    with engine.connect() as conn:
        loaded = days_with_aggregates(conn, clean[0], gappy[-1], resources["etl"].signals)
    assert loaded == set(clean + gappy)
    done = _evaluate(instance, res)
    assert not done.run_requests
    assert "7 of 7 (turbine, day)s with data from 2024-03-01 to 2024-03-11 loaded" in _skip(done)

    # A day whose aggregates and load record vanish is requested alone, even by a Dagster that
    # materialized it (its source data is the truth, not Dagster's memory).
    with engine.begin() as conn:
        conn.execute(
            text("DELETE FROM data WHERE timestamp >= :a AND timestamp < :b"),
            {"a": datetime(2024, 3, 4), "b": datetime(2024, 3, 5)},
        )
        conn.execute(text("DELETE FROM day_load WHERE day = '2024-03-04'"))
    engine.dispose()
    (request,) = _evaluate(instance, res).run_requests or []
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (
        "2024-03-04",
        "2024-03-04",
    )


def _skip(result: SensorResult) -> str:
    return (result.skip_reason.skip_message if result.skip_reason else None) or ""


def test_days_of_queued_runs_are_not_requested_again(
    resources: dict, empty_target: URL, seeded_source: Engine, instance: DagsterInstance
) -> None:
    res = _sensor_resources(resources, empty_target)
    # The job bound to the test's resources, to queue a run of it without executing it.
    job = Definitions(assets=[aggregates_10min], jobs=[etl_job], resources=res).resolve_job_def(
        etl_job.name
    )
    instance.create_run_for_job(
        job_def=job, tags={RANGE_START_TAG: "2024-03-01", RANGE_END_TAG: "2024-03-10"}
    )
    assert in_flight_days(instance) == set(days_between(d(0), d(9)))
    (request,) = _evaluate(instance, res).run_requests or []
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (
        "2024-03-11",
        "2024-03-11",
    )


def test_an_unreachable_api_is_a_skip_not_a_failure(
    resources: dict, empty_target: URL, instance: DagsterInstance
) -> None:
    from windpipe.testing import free_port

    res = {"etl": etl_resource(f"http://127.0.0.1:{free_port()}", empty_target, retries=0)}
    result = _evaluate(instance, res)
    assert not result.run_requests
    assert "does not answer" in (result.skip_reason.skip_message or "")  # type: ignore[union-attr]


def _fail_to_start(instance: DagsterInstance, res: dict, request) -> None:  # type: ignore[no-untyped-def]
    """What the daemon does with a request whose run then times out starting: the run is created
    (its partitions planned), then run monitoring reports it failed."""
    job = Definitions(assets=[aggregates_10min], jobs=[etl_job], resources=res).resolve_job_def(
        etl_job.name
    )
    run = instance.create_run_for_job(job_def=job, tags=request.tags)
    instance.report_run_failed(run, "Run timed out due to taking longer than 120 seconds to start")


def test_runs_that_fail_to_start_are_retried_smaller_then_given_up_without_a_loop(
    resources: dict,
    empty_target: URL,
    seeded_source: Engine,
    instance: DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(catchup, "MAX_RUN_PARTITIONS", 4)
    res = _sensor_resources(resources, empty_target)

    def spans(result: SensorResult) -> list[tuple[str, str]]:
        return [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in result.run_requests or []]

    tick = _evaluate(instance, res)
    assert spans(tick) == [
        ("2024-03-01", "2024-03-04"),
        ("2024-03-05", "2024-03-05"),
        ("2024-03-10", "2024-03-11"),
    ]
    sizes = []
    for _ in range(3):  # every run fails to start: asked again at once, in runs half as long
        for request in tick.run_requests or []:
            _fail_to_start(instance, res, request)
        tick = _evaluate(instance, res, cursor=tick.cursor)
        sizes.append(
            max(
                len(days_between(date.fromisoformat(a), date.fromisoformat(b)))
                for a, b in spans(tick)
            )
            if tick.run_requests
            else 0
        )
    assert sizes == [2, 1, 0]
    # After three failures nothing is asked again, tick after tick, and the sensor says so.
    for _ in range(3):
        tick = _evaluate(instance, res, cursor=tick.cursor)
        assert not tick.run_requests
    assert (
        "7 not requested again after 3 failed runs (WTG01 2024-03-01..2024-03-05, "
        "2024-03-10..2024-03-11)" in _skip(tick)
    )
    # Loading the days otherwise (a backfill) clears them.
    job = defs.resolve_job_def("windpipe_etl")
    tags = {RANGE_START_TAG: "2024-03-01", RANGE_END_TAG: "2024-03-11"}
    assert job.execute_in_process(instance=instance, resources=res, tags=tags).success
    tick = _evaluate(instance, res, cursor=tick.cursor)
    assert not tick.run_requests
    assert _skip(tick).startswith("7 of 7 (turbine, day)s with data")
    assert "failed runs" not in _skip(tick)


def test_a_run_that_fails_once_is_retried_and_recovers(
    resources: dict, empty_target: URL, seeded_source: Engine, instance: DagsterInstance
) -> None:
    res = _sensor_resources(resources, empty_target)
    tick = _evaluate(instance, res)
    for request in tick.run_requests or []:
        _fail_to_start(instance, res, request)
    retry = _evaluate(instance, res, cursor=tick.cursor)  # at once, not after the cool-down
    assert len(retry.run_requests or []) == 2
    job = defs.resolve_job_def("windpipe_etl")
    for request in retry.run_requests or []:
        assert job.execute_in_process(instance=instance, resources=res, tags=request.tags).success
    done = _evaluate(instance, res, cursor=retry.cursor)
    assert not done.run_requests
    assert _skip(done).startswith("7 of 7 (turbine, day)s with data")
