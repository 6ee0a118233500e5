"""The change sensor, for real: a farm loaded by Dagster, then late and corrected samples in the
source; the sensor requests exactly the stale turbines and days, and their run restores equality
with PostgreSQL's own aggregates of the source."""

from datetime import UTC, date, datetime, timedelta

from dagster import AssetCheckKey, DagsterInstance, SensorResult, build_sensor_context
from sqlalchemy import Engine, text

from tests.conftest import FARM_DAYS, FARM_TURBINES, MutableFarm
from tests.etl.test_fleet import _sql_aggregates
from tests.orchestration.conftest import etl_resource
from tests.orchestration.test_fleet import FLEET, KEYS
from windpipe.etl.changes import stale_days
from windpipe.orchestration.defs.assets import build_aggregates
from windpipe.orchestration.defs.jobs import build_job
from windpipe.orchestration.defs.sensors import (
    HANDOVER,
    RANGE_END_TAG,
    RANGE_START_TAG,
    build_source_changes,
    live_edge,
)

D0, D1 = FARM_DAYS
#: The farm's days are in 2024: look back far enough to see them.
SENSOR = build_source_changes(KEYS, build_job(build_aggregates(FARM_TURBINES)), lookback_days=2000)
RANGE = {RANGE_START_TAG: D0.isoformat(), RANGE_END_TAG: D1.isoformat()}


def _resources(farm: MutableFarm) -> dict[str, object]:
    return {"etl": etl_resource(farm.api.url, farm.target.url)}


def _evaluate(instance: DagsterInstance, resources: dict[str, object]) -> SensorResult:
    with build_sensor_context(
        instance=instance, resources=resources, repository_def=FLEET.get_repository_def()
    ) as context:
        result = SENSOR(context)  # type: ignore[operator]
    assert isinstance(result, SensorResult)
    return result


def _loaded(target: Engine) -> dict[tuple[str, datetime, str], float]:
    with target.connect() as conn:
        rows = conn.execute(
            text(
                'SELECT s.turbine, d."timestamp", s.name, d.value '
                "FROM data d JOIN signal s ON s.id = d.signal_id"
            )
        )
        return {
            (t, w.astimezone(UTC).replace(tzinfo=None) if w.tzinfo else w, n): v
            for t, w, n, v in rows
        }


def test_late_and_corrected_samples_are_reloaded_exactly(
    mutable_farm: MutableFarm, instance: DagsterInstance
) -> None:
    source, target = mutable_farm.source, mutable_farm.target
    resources = _resources(mutable_farm)
    job = FLEET.resolve_job_def("windpipe_etl")
    # WTG03's link drops for ten minutes of the second day before it is loaded.
    gap = datetime(D1.year, D1.month, D1.day, 3, tzinfo=UTC)
    with source.begin() as conn:
        lost = (
            conn.execute(
                text(
                    "DELETE FROM data WHERE turbine = 'WTG03' AND \"timestamp\" >= :lo "
                    'AND "timestamp" < :hi RETURNING *'
                ),
                {"lo": gap, "hi": gap + timedelta(minutes=10)},
            )
            .mappings()
            .all()
        )
    assert job.execute_in_process(instance=instance, resources=resources, tags=RANGE).success
    quiet = _evaluate(instance, resources)
    assert not quiet.run_requests and quiet.skip_reason is not None
    assert "is stale" in (quiet.skip_reason.skip_message or "")

    # Late data: the historian back-fills WTG03's ten minutes, and WTG02's power is corrected.
    with source.begin() as conn:
        conn.execute(
            text(
                'INSERT INTO data ("timestamp", wind_speed, power, ambient_temperature, turbine) '
                "VALUES (:timestamp, :wind_speed, :power, :ambient_temperature, :turbine)"
            ),
            [dict(row) for row in lost],
        )
        noon = datetime(D0.year, D0.month, D0.day, 12, tzinfo=UTC)
        conn.execute(
            text(
                "UPDATE data SET power = power + 100 WHERE turbine = 'WTG02' "
                'AND "timestamp" >= :lo AND "timestamp" < :hi'
            ),
            {"lo": noon, "hi": noon + timedelta(hours=1)},
        )
    # The check says so, by turbine and day, before anything reloads.
    checks = job.get_subset(
        asset_selection=set(),
        asset_check_selection={AssetCheckKey(KEYS[t], "source_unchanged") for t in FARM_TURBINES},
    ).execute_in_process(instance=instance, resources=resources, tags=RANGE)
    verdicts = {e.asset_key: e for e in checks.get_asset_check_evaluations()}
    assert verdicts[KEYS["WTG01"]].passed
    assert not verdicts[KEYS["WTG02"]].passed
    assert "2024-06-01" in (verdicts[KEYS["WTG02"]].description or "")
    assert "2024-06-02" in (verdicts[KEYS["WTG03"]].description or "")

    (request,) = _evaluate(instance, resources).run_requests or []
    assert request.asset_selection == [KEYS["WTG02"], KEYS["WTG03"]]
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (
        D0.isoformat(),
        D1.isoformat(),
    )
    assert request.tags["windpipe/trigger"] == "source-change"
    assert _loaded(target) != {
        k: v for day in FARM_DAYS for k, v in _sql_aggregates(source, day).items()
    }
    run = job.get_subset(asset_selection=set(request.asset_selection)).execute_in_process(
        instance=instance, resources=resources, tags=request.tags
    )
    assert run.success
    # Every (turbine, window, signal) equals PostgreSQL's aggregates of the source, exactly.
    expected = {k: v for day in FARM_DAYS for k, v in _sql_aggregates(source, day).items()}
    loaded = _loaded(target)
    assert loaded.keys() == expected.keys()
    assert all(abs(loaded[k] - expected[k]) <= 1e-9 * max(1.0, abs(expected[k])) for k in expected)
    # Nothing stale any more.
    assert not _evaluate(instance, resources).run_requests


def test_non_finite_samples_are_reported_per_turbine_and_day(
    mutable_farm: MutableFarm, instance: DagsterInstance
) -> None:
    resources = _resources(mutable_farm)
    with mutable_farm.source.begin() as conn:
        conn.execute(
            text(
                "UPDATE data SET power = 'NaN' WHERE turbine = 'WTG02' AND \"timestamp\" >= :lo "
                'AND "timestamp" < :hi'
            ),
            {
                "lo": datetime(2024, 6, 2, 6, tzinfo=UTC),
                "hi": datetime(2024, 6, 2, 6, 7, tzinfo=UTC),
            },
        )
    job = FLEET.resolve_job_def("windpipe_etl")
    run = job.execute_in_process(instance=instance, resources=resources, tags=RANGE)
    assert run.success
    verdicts = {
        e.asset_key: e
        for e in run.get_asset_check_evaluations()
        if e.check_name == "finite_samples"
    }
    assert verdicts[KEYS["WTG01"]].passed and verdicts[KEYS["WTG03"]].passed
    bad = verdicts[KEYS["WTG02"]]
    assert not bad.passed and bad.severity.value == "WARN"
    assert bad.metadata["non_finite"].value == 7
    assert "7 NaN/±Inf sample value(s) left out on 1 day(s), e.g. 7 on 2024-06-02" in (
        bad.description or ""
    )


def test_a_live_edge_day_is_stale_once_a_window_has_closed_since_its_load() -> None:
    day = D1
    loaded_until = datetime(day.year, day.month, day.day, 0, 40, tzinfo=UTC)
    loaded = {("WTG01", day): ("5:9", loaded_until), ("WTG02", D0): ("7:1", loaded_until)}
    source = {("WTG01", day): "5:9", ("WTG02", D0): "8:2"}

    def at(minute: int) -> list[tuple[str, str]]:
        now = datetime(day.year, day.month, day.day, 0, minute, tzinfo=UTC)
        found = stale_days(
            source, loaded, now=now, close_margin=timedelta(minutes=2), window=timedelta(minutes=10)
        )
        return [(s.turbine, s.reason) for s in found]

    assert at(51) == [("WTG02", "changed")]  # 00:49 is in the 00:40 window, still filling
    assert at(52) == [("WTG02", "changed"), ("WTG01", "closed")]


def test_the_live_edge_is_left_to_the_schedules() -> None:
    """Today always; yesterday until its final load has been requested (00:05 UTC) and handed
    over; then the change sensor watches it like any past day."""
    today = D1
    yesterday = D0

    def at(hour: int, minute: int) -> set[date]:
        return live_edge(datetime(today.year, today.month, today.day, hour, minute, tzinfo=UTC))

    assert at(0, 1) == {yesterday, today}
    assert at(0, 5) == {yesterday, today}  # the daily schedule's tick: its run is on its way
    assert at(0, 5 + int(HANDOVER.total_seconds() // 60)) == {today}
    assert at(12, 0) == at(23, 59) == {today}


def test_the_change_sensor_leaves_today_to_the_schedules(
    mutable_farm: MutableFarm, instance: DagsterInstance
) -> None:
    """Late samples on both farm days, seen as if the second were today: the sensor asks for
    the first only; the second is the 10-minute schedule's until after its final load."""
    resources = _resources(mutable_farm)
    job = FLEET.resolve_job_def("windpipe_etl")
    assert job.execute_in_process(instance=instance, resources=resources, tags=RANGE).success
    with mutable_farm.source.begin() as conn:
        conn.execute(
            text(
                "UPDATE data SET power = power + 50 WHERE turbine = 'WTG02' "
                "AND EXTRACT(HOUR FROM \"timestamp\" AT TIME ZONE 'UTC') = 6"
            )
        )

    def sensor_at(moment: datetime) -> SensorResult:
        sensor = build_source_changes(
            KEYS,
            build_job(build_aggregates(FARM_TURBINES)),
            lookback_days=2000,
            clock=lambda: moment,
        )
        with build_sensor_context(
            instance=instance, resources=resources, repository_def=FLEET.get_repository_def()
        ) as context:
            result = sensor(context)  # type: ignore[operator]
        assert isinstance(result, SensorResult)
        return result

    noon = datetime(D1.year, D1.month, D1.day, 12, tzinfo=UTC)
    (request,) = sensor_at(noon).run_requests or []
    assert request.asset_selection == [KEYS["WTG02"]]
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (D0.isoformat(),) * 2

    after_midnight = noon + timedelta(hours=12, minutes=5)  # D1 is yesterday, its load due now
    (request,) = sensor_at(after_midnight).run_requests or []
    assert request.tags[RANGE_END_TAG] == D0.isoformat()

    handed_over = after_midnight + HANDOVER
    (request,) = sensor_at(handed_over).run_requests or []
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (
        D0.isoformat(),
        D1.isoformat(),
    )

    only_today = sensor_at(datetime(D0.year, D0.month, D0.day, 9, tzinfo=UTC))
    assert not only_today.run_requests
