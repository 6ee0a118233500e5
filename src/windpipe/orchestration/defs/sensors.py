"""Catch-up without a click: the days with source data but no aggregates, in one run."""

import json
from datetime import UTC, date, datetime

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from windpipe.catalog import days_between
from windpipe.errors import EtlError
from windpipe.orchestration.catchup import missing_days
from windpipe.orchestration.defs.assets import aggregates_10min
from windpipe.orchestration.defs.jobs import etl_job
from windpipe.orchestration.defs.partitions import daily_partitions
from windpipe.orchestration.defs.resources import EtlOptions, SourceApi, TargetDatabase

#: Dagster's run tags for a single run over a partition range (what a single-run backfill sets).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"
#: A day requested less than this long ago is not requested again (e.g. while its run fails).
COOLDOWN_SECONDS = 600
IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def run_days(tags: dict[str, str]) -> list[date]:
    """The days a run covers, from its partition or partition-range tags."""
    if PARTITION_TAG in tags:
        return [date.fromisoformat(tags[PARTITION_TAG])]
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        first, last = (date.fromisoformat(tags[t]) for t in (RANGE_START_TAG, RANGE_END_TAG))
        return days_between(first, last)
    return []


def in_flight_days(instance: DagsterInstance) -> set[date]:
    """Days covered by ETL runs that are queued or running."""
    runs = instance.get_runs(filters=RunsFilter(job_name=etl_job.name, statuses=IN_FLIGHT))
    return {day for run in runs for day in run_days(dict(run.tags))}


def range_request(first: date, last: date, *, now: datetime) -> RunRequest:
    """One run over the partitions ``first`` to ``last`` (a single-run backfill of them)."""
    return RunRequest(
        run_key=f"catch-up-{first}-{last}-{int(now.timestamp())}",
        tags={
            RANGE_START_TAG: first.isoformat(),
            RANGE_END_TAG: last.isoformat(),
            "windpipe/trigger": "catch-up",
        },
    )


def _cooling(cursor: str | None, now: datetime) -> dict[str, float]:
    """The cursor's recently requested days (ISO date -> POSIX time), expired ones dropped."""
    try:
        requested = json.loads(cursor or "{}").get("requested", {})
    except (ValueError, AttributeError):
        requested = {}
    horizon = now.timestamp() - COOLDOWN_SECONDS
    return {day: float(t) for day, t in requested.items() if float(t) > horizon}


@sensor(
    job=etl_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
)
def catch_up(
    context: SensorEvaluationContext,
    source_api: SourceApi,
    target_db: TargetDatabase,
    etl_options: EtlOptions,
) -> SensorResult:
    """Materializes, in one run, every day that has source data but no aggregates yet."""
    now = datetime.now(UTC)
    cooling = _cooling(context.cursor, now)
    try:
        with source_api.client(retries=1) as client:
            coverage = client.coverage()
    except EtlError as exc:
        return SensorResult(skip_reason=f"the API does not answer yet: {exc}")
    first, last = coverage.first, coverage.last
    if not coverage.rows or first is None or last is None:
        return SensorResult(skip_reason="the source holds no samples yet")
    from windpipe.etl.store import days_with_aggregates

    start = daily_partitions.start.date()
    lo, hi = max(first.date(), start), min(last.date(), now.date())
    with target_db.engine.connect() as conn:
        loaded = days_with_aggregates(conn, lo, hi, etl_options.signals, etl_options.turbines)
    materialized = {
        date.fromisoformat(key)
        for key in context.instance.get_materialized_partitions(aggregates_10min.key)
    }
    missing = missing_days(
        source_first=first,
        source_last=last,
        partitions_start=start,
        today=now.date(),
        with_aggregates=loaded,
        materialized=materialized,
        in_flight=in_flight_days(context.instance),
        cooling_down={date.fromisoformat(d) for d in cooling},
    )
    if not missing:
        return SensorResult(
            skip_reason=f"every day from {lo} to {hi} is loaded or being loaded",
            cursor=json.dumps({"requested": cooling}),
        )
    # One run over the span of the missing days: days inside it that are already loaded are
    # reloaded identically, which costs milliseconds, where a second run costs seconds.
    cooling.update({day.isoformat(): now.timestamp() for day in missing})
    context.log.info(f"catch-up: {len(missing)} day(s) missing, {missing[0]} to {missing[-1]}")
    return SensorResult(
        run_requests=[range_request(missing[0], missing[-1], now=now)],
        cursor=json.dumps({"requested": cooling}),
    )


sensors = [catch_up]
