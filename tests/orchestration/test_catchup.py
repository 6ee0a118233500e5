"""Catch-up: exactly the missing days, requested as one run, which then materializes them all."""

from datetime import UTC, date, datetime, timedelta

from dagster import AssetKey, DagsterInstance, Definitions, SensorResult, build_sensor_context
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.conftest import CLEAN_DAYS, GAPPY_DAYS
from tests.orchestration.conftest import defs
from windpipe.catalog import days_between
from windpipe.etl.store import days_with_aggregates
from windpipe.orchestration.catchup import missing_days
from windpipe.orchestration.defs.assets import aggregates_10min
from windpipe.orchestration.defs.jobs import etl_job
from windpipe.orchestration.defs.resources import EtlOptions, TargetDatabase
from windpipe.orchestration.defs.sensors import (
    PARTITION_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    catch_up,
    in_flight_days,
    run_days,
)
from windpipe.postgres import make_engine

D = date(2024, 3, 1)


def d(n: int) -> date:
    return D + timedelta(days=n)


def test_missing_days_is_the_source_span_minus_the_done_and_busy_days() -> None:
    assert missing_days(
        source_first=datetime(2024, 3, 1, 0, 0, tzinfo=UTC),
        source_last=datetime(2024, 3, 8, 9, 41, tzinfo=UTC),
        partitions_start=date(2024, 1, 1),
        today=date(2024, 3, 8),
        with_aggregates={d(1), d(2)},
        materialized={d(2), d(3)},
        in_flight={d(5)},
        cooling_down={d(6)},
    ) == [d(0), d(4), d(7)]


def test_missing_days_is_clipped_to_the_partitions() -> None:
    common = {"with_aggregates": set(), "partitions_start": d(2), "today": d(4)}
    assert missing_days(source_first=d(0), source_last=d(9), **common) == [d(2), d(3), d(4)]
    assert missing_days(source_first=d(5), source_last=d(9), **common) == []
    assert missing_days(source_first=None, source_last=None, **common) == []


def test_nothing_is_missing_when_everything_is_loaded() -> None:
    assert (
        missing_days(
            source_first=d(0),
            source_last=d(3),
            partitions_start=d(0),
            today=d(3),
            with_aggregates=set(days_between(d(0), d(3))),
        )
        == []
    )


def test_run_days_reads_partition_and_range_tags() -> None:
    assert run_days({PARTITION_TAG: "2024-03-04"}) == [d(3)]
    assert run_days({RANGE_START_TAG: "2024-03-01", RANGE_END_TAG: "2024-03-03"}) == [
        d(0),
        d(1),
        d(2),
    ]
    assert run_days({"other": "x"}) == []


def _sensor_resources(resources: dict, target: URL) -> dict:
    url = target.render_as_string(hide_password=False)
    return {**resources, "target_db": TargetDatabase(url=url), "etl_options": EtlOptions()}


def _evaluate(instance: DagsterInstance, resources: dict, cursor: str | None = None):  # type: ignore[no-untyped-def]
    with build_sensor_context(instance=instance, resources=resources, cursor=cursor) as context:
        result = catch_up(context)
    assert isinstance(result, SensorResult)
    return result


def test_sensor_requests_one_run_that_catches_up_every_day(
    resources: dict, empty_target: URL, seeded_source: Engine, instance: DagsterInstance
) -> None:
    res = _sensor_resources(resources, empty_target)
    source_days = days_between(CLEAN_DAYS[0], GAPPY_DAYS[1] - timedelta(1))  # 03-01 .. 03-11

    first = _evaluate(instance, res)
    (request,) = first.run_requests or []
    assert request.tags[RANGE_START_TAG] == "2024-03-01"
    assert request.tags[RANGE_END_TAG] == "2024-03-11"

    # While that request cools down, the sensor does not ask again.
    again = _evaluate(instance, res, cursor=first.cursor)
    assert not again.run_requests

    # Executing the request is one run that materializes all eleven partitions.
    job = defs.resolve_job_def("windpipe_etl")
    run = job.execute_in_process(instance=instance, resources=res, tags=request.tags)
    assert run.success
    assert len(instance.get_runs()) == 1
    assert instance.get_materialized_partitions(AssetKey(["aggregates_10min", "WTG01"])) == {
        day.isoformat() for day in source_days
    }
    engine = make_engine(empty_target)
    with engine.connect() as conn:
        loaded = days_with_aggregates(conn, source_days[0], source_days[-1], EtlOptions().signals)
    # 03-06 .. 03-09 have no samples: materialized (nothing to write), but no aggregates.
    assert loaded == set(days_between(*CLEAN_DAYS[:1], CLEAN_DAYS[1] - timedelta(1))) | set(
        days_between(GAPPY_DAYS[0], GAPPY_DAYS[1] - timedelta(1))
    )
    done = _evaluate(instance, res)
    assert not done.run_requests
    assert "loaded or being loaded" in (done.skip_reason.skip_message or "")  # type: ignore[union-attr]

    # A day whose aggregates vanish, seen by a Dagster that never materialized it, is requested
    # alone.
    with engine.begin() as conn:
        conn.execute(
            text("DELETE FROM data WHERE timestamp >= :a AND timestamp < :b"),
            {"a": datetime(2024, 3, 4), "b": datetime(2024, 3, 5)},
        )
    engine.dispose()
    with DagsterInstance.ephemeral() as fresh:
        result = _evaluate(fresh, res)
        (request,) = result.run_requests or []
        # Empty days 03-06..09 count too: this Dagster never materialized them.
        assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (
            "2024-03-04",
            "2024-03-09",
        )


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
    from windpipe.orchestration.defs.resources import SourceApi
    from windpipe.testing import free_port

    res = {
        **_sensor_resources(resources, empty_target),
        "source_api": SourceApi(base_url=f"http://127.0.0.1:{free_port()}", retries=0),
    }
    result = _evaluate(instance, res)
    assert not result.run_requests
    assert "does not answer" in (result.skip_reason.skip_message or "")  # type: ignore[union-attr]
