"""The target's ``data`` is partitioned by UTC month: names, bounds, and creating a month.

Each month ``[YYYY-MM-01, next month)`` (UTC instants) is a partition ``data_YYYY_MM``. The daily
path creates the month it writes into on first use (:func:`ensure_months`); the bulk path
(``warehouse.bulk``) builds a whole month apart and swaps it in. Readers never name a partition:
they query ``data``, and PostgreSQL prunes the months outside the query's range.
"""

import zlib
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection

#: Advisory-lock namespace of creating a month's partition (the key is the month's ordinal).
PARTITION_LOCKS = zlib.crc32(b"windpipe:data-partition") - 2**31


def month_of(moment: date | datetime) -> date:
    """The first day of the UTC month holding ``moment`` (naive datetimes are UTC)."""
    return date(moment.year, moment.month, 1)


def next_month(month: date) -> date:
    """The first day of the month after ``month``."""
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def months_touched(start: datetime, end: datetime) -> list[date]:
    """The months ``[start, end)`` touches (naive UTC), in order."""
    months, month = [], month_of(start)
    while datetime(month.year, month.month, 1) < end:
        months.append(month)
        month = next_month(month)
    return months


def partition_name(month: date) -> str:
    """``data_YYYY_MM``: the partition holding ``month``."""
    return f"data_{month.year:04d}_{month.month:02d}"


def bounds_sql(month: date) -> str:
    """The partition bound of ``month``: ``FROM (first instant) TO (next month's)``."""
    after = next_month(month)
    return f"FROM ('{month.isoformat()} 00:00:00+00') TO ('{after.isoformat()} 00:00:00+00')"


def range_check_sql(month: date) -> str:
    """A CHECK expression equal to ``month``'s bound: ATTACH then needs no scan to prove it."""
    after = next_month(month)
    return (
        f'"timestamp" IS NOT NULL AND "timestamp" >= \'{month.isoformat()} 00:00:00+00\' '
        f"AND \"timestamp\" < '{after.isoformat()} 00:00:00+00'"
    )


def existing_months(conn: Connection, months: Iterable[date]) -> set[date]:
    """Which of ``months`` have a partition of ``data``."""
    wanted = {partition_name(m): m for m in months}
    held = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass('data') AND c.relname = ANY(:names)"
        ),
        {"names": list(wanted)},
    ).scalars()
    return {wanted[str(name)] for name in held}


def ensure_months(conn: Connection, months: Sequence[date]) -> list[date]:
    """Create the partitions of ``months`` that are missing; return those created.

    One catalog query when every month exists (the daily path's usual case). Creating a month
    locks ``data`` until the transaction ends, once per month; two runs creating the same month
    serialize on an advisory lock, so neither fails.
    """
    missing = sorted(set(months) - existing_months(conn, months))
    if not missing:
        return []
    created = []
    for month in missing:
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:ns, :key)"),
            {"ns": PARTITION_LOCKS, "key": month.toordinal()},
        )
        if month in existing_months(conn, [month]):  # another run created it meanwhile
            continue
        name, bound = partition_name(month), bounds_sql(month)
        conn.execute(text(f"CREATE TABLE {name} PARTITION OF data FOR VALUES {bound}"))
        created.append(month)
    return created
