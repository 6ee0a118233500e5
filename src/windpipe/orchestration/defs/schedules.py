"""Schedules: yesterday's final load after midnight UTC, and today's refresh every 10 minutes;
each run covers every turbine of the job."""

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

if TYPE_CHECKING:  # Dagster does not export the type of define_asset_job's result
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

from windpipe.orchestration.defs.jobs import etl_job
from windpipe.orchestration.defs.partitions import daily_partitions
from windpipe.orchestration.kubernetes import k8s_run_tags

#: When the daily schedule loads yesterday in full (UTC), and the cron of today's refresh.
YESTERDAY_AT = time(0, 5)
TODAY_CRON = "*/10 * * * *"


def _scheduled_utc(context: ScheduleEvaluationContext) -> datetime:
    moment = context.scheduled_execution_time or datetime.now(UTC)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _request(day: date, run_key: str) -> RunRequest | SkipReason:
    start = daily_partitions.start.date()
    if day < start:
        return SkipReason(f"{day} is before the first partition ({start})")
    return RunRequest(
        run_key=run_key, partition_key=day.isoformat(), tags=k8s_run_tags(day, day, None)
    )


def _running_utc(
    job: "UnresolvedAssetJobDefinition", cron: str
) -> Callable[[Callable[..., RunRequest | SkipReason]], ScheduleDefinition]:
    """Dagster's schedule decorator: ``job`` at ``cron`` in UTC, running once deployed."""
    return schedule(
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
    )


def build_schedules(job: "UnresolvedAssetJobDefinition") -> list[ScheduleDefinition]:
    """Yesterday at 00:05 UTC and today every 10 minutes, for every turbine ``job`` covers."""

    @_running_utc(job, f"{YESTERDAY_AT.minute} {YESTERDAY_AT.hour} * * *")
    def daily_yesterday(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        """At 00:05 UTC, load yesterday's partition in full, its last live minute included."""
        day = _scheduled_utc(context).date() - timedelta(days=1)
        return _request(day, run_key=f"daily-{day.isoformat()}")

    @_running_utc(job, TODAY_CRON)
    def today_every_10min(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        """Every 10 minutes, reload today's partition as the live feed grows (idempotent)."""
        moment = _scheduled_utc(context)
        return _request(moment.date(), run_key=f"today-{moment:%Y-%m-%dT%H:%M}")

    return [daily_yesterday, today_every_10min]


schedules = build_schedules(etl_job)
daily_yesterday, today_every_10min = schedules
