"""Daily partitions: one per UTC day, from the first day of source data up to today."""

from datetime import date, timedelta

from dagster import DailyPartitionsDefinition, TimeWindow

from windpipe.orchestration.instance import code_location_partitions_start

# The start is read once, when the code location loads: WINDPIPE_PARTITIONS_START when set, else
# the first day of source data, which the first load asks of the API and remembers in the Dagster
# home, so the webserver, the daemon and the runs agree on it without a running API later.
# end_offset=1 adds today's partition, which the 10-minute schedule keeps fresh.
daily_partitions = DailyPartitionsDefinition(
    start_date=code_location_partitions_start().isoformat(), timezone="UTC", end_offset=1
)


def partition_days(window: TimeWindow) -> tuple[date, date]:
    """The first and last UTC day (inclusive) of a partition time window."""
    first = window.start.date()
    last = (window.end - timedelta(days=1)).date()
    return first, last
