"""Which days the catch-up must materialize: days with source data but no aggregates yet."""

from collections.abc import Collection
from datetime import date, datetime

from windpipe.catalog import days_between


def missing_days(
    *,
    source_first: datetime | date | None,
    source_last: datetime | date | None,
    partitions_start: date,
    today: date,
    with_aggregates: Collection[date],
    materialized: Collection[date] = (),
    in_flight: Collection[date] = (),
    cooling_down: Collection[date] = (),
) -> list[date]:
    """The days, in order, that have source data but no aggregates and nobody is working on.

    Source days run from the day of ``source_first`` to that of ``source_last`` (UTC), clipped to
    the partitions ``[partitions_start, today]``. A day is done when the target holds aggregates for
    it or Dagster has materialized it (a day without samples has nothing to write); it is skipped
    while a run covering it is queued or running, or while a recent request for it cools down.
    """
    if source_first is None or source_last is None:
        return []
    first = source_first.date() if isinstance(source_first, datetime) else source_first
    last = source_last.date() if isinstance(source_last, datetime) else source_last
    first, last = max(first, partitions_start), min(last, today)
    skip = set(with_aggregates) | set(materialized) | set(in_flight) | set(cooling_down)
    return [day for day in days_between(first, last) if day not in skip]
