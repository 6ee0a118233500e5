"""The schedules ask for the right partition at the right times."""

import json
from datetime import UTC, datetime

import pytest
from dagster import RunRequest, SkipReason, build_schedule_context

from windpipe.orchestration.defs.partitions import daily_partitions
from windpipe.orchestration.defs.schedules import daily_yesterday, today_every_10min


def _at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_cron_and_zone() -> None:
    assert daily_yesterday.cron_schedule == "5 0 * * *"
    assert today_every_10min.cron_schedule == "*/10 * * * *"
    assert daily_yesterday.execution_timezone == today_every_10min.execution_timezone == "UTC"
    assert daily_yesterday.job_name == today_every_10min.job_name == "windpipe_etl"


@pytest.mark.parametrize(
    ("moment", "partition"),
    [
        (_at(2024, 3, 6, 0, 5), "2024-03-05"),
        (_at(2024, 3, 1, 0, 5), "2024-02-29"),  # leap day
        (_at(2025, 1, 1, 0, 5), "2024-12-31"),  # year boundary
    ],
)
def test_daily_schedule_loads_yesterday(moment: datetime, partition: str) -> None:
    request = daily_yesterday(build_schedule_context(scheduled_execution_time=moment))
    assert isinstance(request, RunRequest)
    assert request.partition_key == partition
    assert request.run_key == f"daily-{partition}"
    assert daily_partitions.has_partition_key(partition)


@pytest.mark.parametrize(
    ("moment", "partition"),
    [
        (_at(2024, 3, 6, 0, 0), "2024-03-06"),  # the new day's first refresh
        (_at(2024, 3, 6, 10, 20), "2024-03-06"),
        (_at(2024, 3, 6, 23, 50), "2024-03-06"),
    ],
)
def test_ten_minute_schedule_refreshes_today(moment: datetime, partition: str) -> None:
    request = today_every_10min(build_schedule_context(scheduled_execution_time=moment))
    assert isinstance(request, RunRequest)
    assert request.partition_key == partition
    assert request.run_key == f"today-{moment:%Y-%m-%dT%H:%M}"  # one run per tick
    # On Kubernetes its Job and pod are labelled with the day and the whole fleet.
    labels = json.loads(request.tags["dagster-k8s/config"])["job_metadata"]["labels"]
    assert labels["windpipe.io/first-day"] == labels["windpipe.io/last-day"] == partition
    assert labels["windpipe.io/turbines"] == "fleet"


def test_scheduled_time_in_another_zone_is_read_as_utc() -> None:
    from zoneinfo import ZoneInfo

    paris = datetime(2024, 3, 6, 1, 5, tzinfo=ZoneInfo("Europe/Paris"))  # 00:05 UTC
    request = daily_yesterday(build_schedule_context(scheduled_execution_time=paris))
    assert isinstance(request, RunRequest) and request.partition_key == "2024-03-05"


def test_days_before_the_first_partition_are_skipped() -> None:
    first = daily_partitions.start.astimezone(UTC)
    result = daily_yesterday(build_schedule_context(scheduled_execution_time=first))
    assert isinstance(result, SkipReason)
    assert "before the first partition" in (result.skip_message or "")
