"""Daily partitions: one per UTC day, from the first day of source data up to today."""

from datetime import date, timedelta

from dagster import DailyPartitionsDefinition, TimeWindow

from windpipe.orchestration.instance import partitions_start

# The start is read once, when the code location loads: `windpipe dagster` sets it to the first
# day of source data (WINDPIPE_PARTITIONS_START), so webserver, daemon and runs agree on it.
# end_offset=1 adds today's partition, which the 10-minute schedule keeps fresh.
daily_partitions = DailyPartitionsDefinition(
    start_date=partitions_start().isoformat(), timezone="UTC", end_offset=1
)


def partition_days(window: TimeWindow) -> tuple[date, date]:
    """The first and last UTC day (inclusive) of a partition time window."""
    first = window.start.date()
    last = (window.end - timedelta(days=1)).date()
    return first, last
