"""Sensors: the catch-up (days with source data but no aggregates) and the change sensor (loaded
days whose source changed since: late data, corrections), each requesting one run at a time."""

import json
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

if TYPE_CHECKING:  # Dagster does not export the type of define_asset_job's result
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

from windpipe.catalog import days_between
from windpipe.errors import EtlError
from windpipe.orchestration.catchup import missing_days
from windpipe.orchestration.defs.assets import TURBINE_KEYS
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


def in_flight_days(instance: DagsterInstance, job_name: str = "windpipe_etl") -> set[date]:
    """Days covered by ETL runs that are queued or running."""
    runs = instance.get_runs(filters=RunsFilter(job_name=job_name, statuses=IN_FLIGHT))
    return {day for run in runs for day in run_days(dict(run.tags))}


def range_request(
    first: date,
    last: date,
    *,
    now: datetime,
    assets: list[AssetKey] | None = None,
    trigger: str = "catch-up",
) -> RunRequest:
    """One run over the partitions ``first`` to ``last`` (a single-run backfill of them), of
    the turbines' ``assets`` (None: every turbine's)."""
    return RunRequest(
        run_key=f"{trigger}-{first}-{last}-{int(now.timestamp())}",
        asset_selection=assets,
        tags={
            RANGE_START_TAG: first.isoformat(),
            RANGE_END_TAG: last.isoformat(),
            "windpipe/trigger": trigger,
        },
    )


def _cooling(cursor: str | None, now: datetime) -> dict[str, float]:
    """The cursor's recently requested (turbine, day)s (``turbine/ISO date`` -> POSIX time),
    expired ones dropped."""
    try:
        requested = json.loads(cursor or "{}").get("requested", {})
    except (ValueError, AttributeError):
        requested = {}
    horizon = now.timestamp() - COOLDOWN_SECONDS
    return {day: float(t) for day, t in requested.items() if float(t) > horizon}


def build_catch_up(
    keys: dict[str, AssetKey], job: "UnresolvedAssetJobDefinition"
) -> SensorDefinition:
    """The catch-up sensor of every turbine's asset in ``keys``, requesting runs of ``job``."""

    @sensor(
        job=job,
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
    )
    def catch_up(
        context: SensorEvaluationContext,
        source_api: SourceApi,
        target_db: TargetDatabase,
        etl_options: EtlOptions,
    ) -> SensorResult:
        """Materializes, in one run, every turbine's days with source data but no aggregates."""
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
        in_flight = in_flight_days(context.instance, job.name)
        missing: dict[str, list[date]] = {}
        with target_db.engine.connect() as conn:
            for turbine, key in keys.items():
                loaded = days_with_aggregates(conn, lo, hi, etl_options.signals, [turbine])
                materialized = {
                    date.fromisoformat(k) for k in context.instance.get_materialized_partitions(key)
                }
                days = missing_days(
                    source_first=first,
                    source_last=last,
                    partitions_start=start,
                    today=now.date(),
                    with_aggregates=loaded,
                    materialized=materialized,
                    in_flight=in_flight,
                    cooling_down={
                        date.fromisoformat(k.partition("/")[2])
                        for k in cooling
                        if k.partition("/")[0] == turbine
                    },
                )
                if days:
                    missing[turbine] = days
        if not missing:
            return SensorResult(
                skip_reason=f"every turbine's days from {lo} to {hi} are loaded or being loaded",
                cursor=json.dumps({"requested": cooling}),
            )
        # One run over the span of the missing days for the turbines that miss any: days inside it
        # that are already loaded are reloaded identically, which costs milliseconds, where a second
        # run costs seconds.
        days = sorted({day for per_turbine in missing.values() for day in per_turbine})
        for turbine, per_turbine in missing.items():
            cooling.update({f"{turbine}/{day.isoformat()}": now.timestamp() for day in per_turbine})
        context.log.info(
            f"catch-up: {len(days)} day(s) missing, {days[0]} to {days[-1]}, "
            f"for {len(missing)} turbine(s): {', '.join(missing)}"
        )
        every = len(missing) == len(keys)
        return SensorResult(
            run_requests=[
                range_request(
                    days[0],
                    days[-1],
                    now=now,
                    assets=None if every else [keys[t] for t in missing],
                )
            ],
            cursor=json.dumps({"requested": cooling}),
        )

    return catch_up


def build_source_changes(
    keys: dict[str, AssetKey],
    job: "UnresolvedAssetJobDefinition",
    *,
    interval_seconds: int = 120,
    lookback_days: int = 30,
) -> SensorDefinition:
    """The change sensor of every turbine's asset in ``keys``: each pass compares the source's
    fingerprints of the last ``lookback_days`` (one API request) with those the loads recorded
    (one target query), and requests one run for the turbines and days that went stale."""

    @sensor(
        name="source_changes",
        job=job,
        minimum_interval_seconds=interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
    )
    def source_changes(
        context: SensorEvaluationContext,
        source_api: SourceApi,
        target_db: TargetDatabase,
        etl_options: EtlOptions,
    ) -> SensorResult:
        """Materializes again, in one run, every loaded (turbine, day) whose source changed
        (late, back-filled or corrected samples) or whose live-edge windows have closed since."""
        from windpipe.etl.changes import find_stale

        now = datetime.now(UTC)
        settings = etl_options.settings()
        last = now.date()
        first = max(daily_partitions.start.date(), last - timedelta(days=lookback_days - 1))
        try:
            with source_api.client(retries=1) as client:
                stale = find_stale(
                    client,
                    target_db.engine,
                    list(keys),
                    first,
                    last,
                    now=now,
                    close_margin=settings.close_margin,
                    window=settings.window,
                )
        except EtlError as exc:
            return SensorResult(skip_reason=f"the API does not answer yet: {exc}")
        cooling = _cooling(context.cursor, now)
        busy = in_flight_days(context.instance, job.name)
        todo = [s for s in stale if s.key not in cooling and s.day not in busy]
        if not todo:
            waiting = f" ({len(stale)} waiting for runs in flight)" if stale else ""
            return SensorResult(
                skip_reason=f"no loaded day from {first} to {last} is stale{waiting}",
                cursor=json.dumps({"requested": cooling}),
            )
        turbines = sorted({s.turbine for s in todo}, key=list(keys).index)
        days = sorted({s.day for s in todo})
        cooling.update({s.key: now.timestamp() for s in todo})
        context.log.info(
            f"source changes: {len(todo)} (turbine, day) stale from {days[0]} to {days[-1]} "
            f"for {', '.join(turbines)}: "
            + ", ".join(f"{s.turbine} {s.day} ({s.reason})" for s in todo[:20])
        )
        return SensorResult(
            run_requests=[
                range_request(
                    days[0],
                    days[-1],
                    now=now,
                    assets=None if len(turbines) == len(keys) else [keys[t] for t in turbines],
                    trigger="source-change",
                )
            ],
            cursor=json.dumps({"requested": cooling}),
        )

    return source_changes


catch_up = build_catch_up(TURBINE_KEYS, etl_job)
source_changes = build_source_changes(TURBINE_KEYS, etl_job)
sensors = [catch_up, source_changes]
