"""Which days the catch-up must materialize: days with source data but no aggregates yet."""

from collections.abc import Collection, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Connection


def days_between(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last`` inclusive (empty when ``last < first``)."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


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


def days_with_aggregates(
    conn: "Connection", first: date, last: date, signals: Sequence[str]
) -> set[date]:
    """Days in ``[first, last]`` for which the target holds at least one row of ``signals``."""
    from sqlalchemy import inspect, text

    if last < first or not signals:
        return set()
    if not inspect(conn).has_table("data") or not inspect(conn).has_table("signal"):
        return set()  # nothing was ever loaded: the ETL creates the schema on its first day
    ids = [
        int(i)
        for i in conn.execute(
            text("SELECT id FROM signal WHERE name = ANY(:signals)"), {"signals": list(signals)}
        ).scalars()
    ]
    if not ids:
        return set()
    # One probe of unique(signal_id, timestamp) per day and signal: cheap even for years of data.
    rows = conn.execute(
        text(
            """
            SELECT d::date
            FROM generate_series(CAST(:first AS timestamp), CAST(:last AS timestamp),
                                 interval '1 day') AS d
            WHERE EXISTS (
                SELECT 1 FROM data
                WHERE data.signal_id = ANY(:ids)
                  AND data."timestamp" >= d AND data."timestamp" < d + interval '1 day'
            )
            """
        ),
        {"first": first, "last": last, "ids": ids},
    )
    return {row[0] for row in rows}
