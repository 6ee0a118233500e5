"""Fleet orchestration: a three-turbine configuration's assets, runs, catch-up and checks, for
real against the farm's databases and a live API."""

from datetime import datetime

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    SensorResult,
    build_schedule_context,
    build_sensor_context,
)
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.conftest import FARM_DAYS, FARM_TURBINES, LiveApi
from tests.etl.test_fleet import _loaded, _sql_aggregates
from tests.orchestration.conftest import _definitions, etl_resource
from windpipe.orchestration.defs.sensors import RANGE_END_TAG, RANGE_START_TAG
from windpipe.postgres import make_engine

FLEET = _definitions.build_definitions(FARM_TURBINES)
KEYS = {t: AssetKey(["aggregates_10min", t]) for t in FARM_TURBINES}
CHECKS = {
    "windows_complete",
    "aggregates_consistent",
    "no_duplicate_rows",
    "live_edge_fresh",
    "finite_samples",
    "source_unchanged",
}


@pytest.fixture
def farm_resources(farm_api: LiveApi, empty_target: URL) -> dict[str, object]:
    """Resources on the farm's API and an empty target of the test's own."""
    return {"etl": etl_resource(farm_api.url, empty_target)}


def test_one_asset_and_four_checks_per_turbine() -> None:
    figures = {
        AssetKey([p, t])
        for p in ("kpis_daily", "flags_daily", "turbine_events")
        for t in FARM_TURBINES
    }
    assert set(FLEET.resolve_all_asset_keys()) == set(KEYS.values()) | figures
    graph = FLEET.resolve_asset_graph()
    checks = {(k.asset_key, k.name) for k in graph.asset_check_keys}
    assert {c for c in checks if c[0].path[0] == "aggregates_10min"} == {
        (key, name) for key in KEYS.values() for name in CHECKS
    }
    job = FLEET.resolve_job_def("windpipe_etl")
    assert set(job.asset_layer.selected_asset_keys) == set(KEYS.values())


def test_the_schedules_run_every_turbine_of_the_day() -> None:
    schedules = {s.name: s for s in FLEET.schedules or []}  # type: ignore[union-attr]
    moment = datetime(2024, 6, 3, 0, 5)
    with build_schedule_context(
        scheduled_execution_time=moment, repository_def=FLEET.get_repository_def()
    ) as context:
        request = schedules["daily_yesterday"].evaluate_tick(context).run_requests[0]
    assert request.partition_key == "2024-06-02"
    assert request.asset_selection is None  # the job's: every turbine
    assert schedules["daily_yesterday"].job_name == "windpipe_etl"


def _catch_up(instance: DagsterInstance, resources: dict[str, object]) -> SensorResult:
    sensor = next(s for s in FLEET.sensors or [] if s.name == "catch_up")  # type: ignore[union-attr]
    with build_sensor_context(
        instance=instance, resources=resources, repository_def=FLEET.get_repository_def()
    ) as context:
        result = sensor(context)  # type: ignore[operator]
    assert isinstance(result, SensorResult)
    return result


def test_catch_up_requests_one_run_for_the_turbines_that_miss_days(
    farm_resources: dict[str, object],
    farm_db: tuple[Engine, Engine],
    empty_target: URL,
    instance: DagsterInstance,
) -> None:
    job = FLEET.resolve_job_def("windpipe_etl")
    tags = {RANGE_START_TAG: FARM_DAYS[0].isoformat(), RANGE_END_TAG: FARM_DAYS[1].isoformat()}
    # WTG01 and WTG03 are loaded first, in one run over both days.
    partial = job.get_subset(asset_selection={KEYS["WTG01"], KEYS["WTG03"]})
    assert partial.execute_in_process(
        instance=instance, resources=farm_resources, tags=tags
    ).success
    (request,) = _catch_up(instance, farm_resources).run_requests or []
    assert request.asset_selection == [KEYS["WTG02"]]
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (
        FARM_DAYS[0].isoformat(),
        FARM_DAYS[1].isoformat(),
    )
    run = job.get_subset(asset_selection=set(request.asset_selection)).execute_in_process(
        instance=instance, resources=farm_resources, tags=request.tags
    )
    assert run.success
    for key in KEYS.values():
        assert instance.get_materialized_partitions(key) == {d.isoformat() for d in FARM_DAYS}
    assert not _catch_up(instance, farm_resources).run_requests
    # Every (turbine, day) equals PostgreSQL's own aggregates of the source.
    target = make_engine(empty_target)
    try:
        loaded = _loaded(target)
    finally:
        target.dispose()
    source = farm_db[0]
    expected = _sql_aggregates(source, FARM_DAYS[0]) | _sql_aggregates(source, FARM_DAYS[1])
    assert loaded.keys() == expected.keys()
    assert all(abs(loaded[k] - v) <= 1e-9 * max(1.0, abs(v)) for k, v in expected.items())


def test_a_tampered_turbine_fails_its_checks_by_name(
    farm_resources: dict[str, object], empty_target: URL, instance: DagsterInstance
) -> None:
    job = FLEET.resolve_job_def("windpipe_etl")
    day = FARM_DAYS[0].isoformat()
    assert job.execute_in_process(
        partition_key=day, instance=instance, resources=farm_resources
    ).success
    target = make_engine(empty_target)
    try:
        with target.begin() as conn:  # WTG03's power_min above its max at 06:10, and one lost
            conn.execute(
                text(
                    "UPDATE data SET value = 99999 FROM signal s WHERE s.id = data.signal_id "
                    "AND s.turbine = 'WTG03' AND s.name = 'power_min' "
                    "AND data.timestamp = '2024-06-01 06:10'"
                )
            )
            conn.execute(
                text(
                    "DELETE FROM data USING signal s WHERE s.id = data.signal_id "
                    "AND s.turbine = 'WTG03' AND s.name = 'wind_speed_mean' "
                    "AND data.timestamp = '2024-06-01 12:00'"
                )
            )
    finally:
        target.dispose()
    checks = job.get_subset(
        asset_selection=set(),
        asset_check_selection={k for k in FLEET.resolve_asset_graph().asset_check_keys},
    )
    result = checks.execute_in_process(
        partition_key=day, resources=farm_resources, instance=instance
    )
    evaluations = {
        (e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()
    }
    failed = {k for k, e in evaluations.items() if not e.passed}
    assert failed == {("WTG03", "aggregates_consistent"), ("WTG03", "windows_complete")}
    consistent = evaluations[("WTG03", "aggregates_consistent")]
    assert consistent.description is not None
    assert consistent.description.startswith("WTG03: 1 inconsistent window(s), e.g. power at")
    complete = evaluations[("WTG03", "windows_complete")]
    assert complete.description is not None and "WTG03" in complete.description
    assert "wind_speed_mean on 2024-06-01: 143 windows" in complete.description
    assert complete.description.endswith("windows in dispute: 12:00")
