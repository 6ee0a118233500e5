"""The bulk path: a whole UTC month of ``data`` built apart, then swapped in atomically.

A backfill of many days spends most of its time maintaining ``data``'s indexes row by row (see
docs/performance.md). :func:`replace_month` instead, in one transaction:

1. creates a table for the month, without indexes or constraints, and COPYs the month's rows
   into it (binary COPY in ``(signal_id, timestamp)`` order, ids reserved from ``data_id_seq``
   as one block beforehand);
2. builds its primary key and unique index once, then checks it: the foreign key to ``signal``,
   values finite, every timestamp inside the month (the CHECK that spares ATTACH a scan);
3. takes the same per-(turbine, day) advisory locks as the daily path, asks ``still_current``
   (never a step back), locks ``data``, and copies over the month's rows of the turbines and
   signals this run does not write (none when it writes the whole fleet);
4. detaches and drops the month's old partition, attaches the new one under its name, and writes
   ``day_load`` for every (turbine, day) of the month.

Everything is one transaction: a failure anywhere (a crash, a refused check, ``before_swap``
raising in a test) rolls it all back, so the previous month stays as it was and no half-built
table is left behind. ``data`` is locked only for step 3's copy and step 4, milliseconds when the
run writes the whole fleet.
"""

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

import polars as pl
import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from windpipe.catalog import DEFAULT_TURBINE_ID, naive_utc_expr
from windpipe.warehouse.partitions import (
    bounds_sql,
    existing_months,
    month_of,
    next_month,
    partition_name,
    range_check_sql,
)
from windpipe.warehouse.reads import PG_EPOCH_US
from windpipe.warehouse.store import (
    LOCK_WAIT,
    DayRecord,
    SourceMovedError,
    _record_loads,
    _signal_ids,
    _target_errors,
    ensure_schema,
    lock_namespace,
)

_FINITE = "value NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)"
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_BINARY_TRAILER = b"\xff\xff"


def encode_copy_binary(
    aggregates: pl.DataFrame, ids: dict[tuple[str, str], int], *, first_id: int | None = None
) -> bytes:
    """The rows as binary COPY data for ``(timestamp, signal_id, value)``, 34 bytes a row; with
    ``first_id``, for ``(id, timestamp, signal_id, value)`` (46 bytes), ids counted up from it.

    Rows come in ``(signal_id, timestamp)`` order: the unique index is then built from sorted
    input, and one signal's rows lie together on disk (what the README's query reads). Built
    column-wise by NumPy: PostgreSQL parses no text, the client formats none.
    """
    import numpy as np

    keys = pl.DataFrame(
        {
            "turbine": [t for t, _ in ids],
            "signal": [n for _, n in ids],
            "signal_id": list(ids.values()),
        },
        schema={"turbine": pl.String, "signal": pl.String, "signal_id": pl.Int32},
    )
    dtype = aggregates.schema["timestamp"]
    assert isinstance(dtype, pl.Datetime)
    columns = (
        aggregates.join(keys, on=["turbine", "signal"], how="left")
        .select(
            (naive_utc_expr(dtype).dt.epoch("us") - PG_EPOCH_US).alias("ts"),
            "signal_id",
            pl.col("value").cast(pl.Float64),
        )
        .sort("signal_id", "ts")
    )
    if columns["signal_id"].null_count():
        raise ValueError("aggregates hold a (turbine, signal) without an id")
    fields = [("ts", ">i8"), ("sid", ">i4"), ("v", ">f8")]
    if first_id is not None:
        fields.insert(0, ("id", ">i8"))
    # Each field is preceded by its length; each row by its field count.
    row = np.dtype(
        [("n", ">i2")] + [f for name, kind in fields for f in ((f"l{name}", ">i4"), (name, kind))]
    )
    out = np.empty(columns.height, dtype=row)
    out["n"] = len(fields)
    for name, kind in fields:
        out[f"l{name}"] = np.dtype(kind).itemsize
    if first_id is not None:
        out["id"] = np.arange(first_id, first_id + columns.height, dtype=np.int64)
    out["ts"] = columns["ts"].to_numpy()
    out["sid"] = columns["signal_id"].to_numpy()
    out["v"] = columns["value"].to_numpy()
    return b"".join((_BINARY_HEADER, out.tobytes(), _BINARY_TRAILER))


def reserve_ids(conn: Connection, count: int) -> int:
    """The first of ``count`` consecutive ids taken from ``data_id_seq`` at once (commit soon:
    ``nextval`` elsewhere waits until then).

    One ``nextval`` a row costs the COPY about as much as the rows themselves (measured: 0.9 s of
    1.6 s for a year of 10 turbines). The no-op ``ALTER SEQUENCE`` takes the lock ``nextval``
    waits on, so no other id is drawn between this ``nextval`` and the ``setval``; like any
    ``nextval``, ids taken by a run that then fails are left unused.
    """
    conn.execute(text("ALTER SEQUENCE data_id_seq INCREMENT BY 1"))
    first = int(conn.execute(text("SELECT nextval('data_id_seq')")).scalar_one())
    if count > 1:
        conn.execute(text("SELECT setval('data_id_seq', :last)"), {"last": first + count - 1})
    return first


def month_days(month: date) -> list[date]:
    """Every day of ``month``."""
    after = next_month(month)
    return [month + timedelta(days=i) for i in range((after - month).days)]


def replace_month(
    engine: Engine,
    month: date,
    aggregates: pl.DataFrame,
    *,
    signals: Sequence[str],
    turbines: Sequence[str] = (DEFAULT_TURBINE_ID,),
    records: Sequence[DayRecord] = (),
    lock_wait: timedelta = LOCK_WAIT,
    still_current: Callable[[], bool] | None = None,
    before_swap: Callable[[], None] | None = None,
) -> int:
    """Replace ``turbines``' ``signals`` over the whole UTC ``month`` by ``aggregates``, by
    building the month's partition apart and swapping it in (see the module's description).

    The same contract as ``store.replace_window`` over the month's days: all or nothing,
    ``records`` written to ``day_load`` in the transaction, ``still_current`` asked under the
    days' locks (:class:`SourceMovedError` when it says no). ``before_swap`` runs once the new
    month is loaded, indexed and checked, just before the locks and the swap (tests inject a
    failure there). Returns the rows written.
    """
    if month != month_of(month):
        raise ValueError(f"{month} is not the first day of a month")
    turbines = sorted(set(turbines))
    dtype = aggregates.schema.get("timestamp")
    if isinstance(dtype, pl.Datetime) and aggregates.height:
        first, last = aggregates.select(
            pl.col("timestamp").min().alias("first"), pl.col("timestamp").max().alias("last")
        ).row(0)
        if dtype.time_zone is not None:
            first, last = first.replace(tzinfo=None), last.replace(tzinfo=None)
        if month_of(first) != month or month_of(last) != month:
            raise ValueError(f"aggregates span [{first}, {last}], outside the month {month:%Y-%m}")
    with _target_errors(engine, f"loading the month {month:%Y-%m}"):
        ensure_schema(engine)
        with engine.begin() as conn:  # apart: the month's transaction is long
            ids = _signal_ids(conn, turbines, signals)
            conn.execute(
                text("SELECT set_config('lock_timeout', :ms, true)"),
                {"ms": str(int(lock_wait.total_seconds() * 1000))},
            )
            first_id = reserve_ids(conn, aggregates.height) if aggregates.height else 0
        with engine.begin() as conn:
            _swap_month(
                conn, month, aggregates, ids, first_id, turbines, records, lock_wait,
                still_current, before_swap,
            )  # fmt: skip
    return aggregates.height


def _swap_month(
    conn: Connection,
    month: date,
    aggregates: pl.DataFrame,
    ids: dict[tuple[str, str], int],
    first_id: int,
    turbines: Sequence[str],
    records: Sequence[DayRecord],
    lock_wait: timedelta,
    still_current: Callable[[], bool] | None,
    before_swap: Callable[[], None] | None,
) -> None:
    name = partition_name(month)
    stage = f"{name}_load_{conn.execute(text('SELECT pg_backend_pid()')).scalar_one()}"
    conn.execute(text(f"CREATE TABLE {stage} (LIKE data INCLUDING DEFAULTS)"))
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    if aggregates.height:
        with (
            driver.cursor() as cursor,
            cursor.copy(
                f'COPY {stage} (id, "timestamp", signal_id, value) FROM STDIN (FORMAT binary)'
            ) as copy,
        ):
            copy.write(encode_copy_binary(aggregates, ids, first_id=first_id))
    # Indexed and checked once, on the whole month: this is what the daily path pays row by row.
    conn.execute(
        text(
            f"ALTER TABLE {stage} "
            f'ADD CONSTRAINT {stage}_pkey PRIMARY KEY (id, "timestamp"), '
            f'ADD CONSTRAINT {stage}_uq UNIQUE (signal_id, "timestamp"), '
            f"ADD CONSTRAINT ck_data_finite CHECK ({_FINITE}), "
            f"ADD CONSTRAINT {stage}_month CHECK ({range_check_sql(month)}), "
            f"ADD CONSTRAINT {stage}_fk FOREIGN KEY (signal_id) REFERENCES signal (id)"
        )
    )
    if before_swap is not None:
        before_swap()
    conn.execute(
        text("SELECT set_config('lock_timeout', :ms, true)"),
        {"ms": str(int(lock_wait.total_seconds() * 1000))},
    )
    # The daily path's locks, in its order (turbine, then day ascending): no deadlock with it.
    conn.execute(
        text(
            "SELECT count(pg_advisory_xact_lock(ns, day)) FROM ("
            "  SELECT ns, day FROM unnest(CAST(:ns AS int[])) WITH ORDINALITY AS t(ns, i),"
            "  unnest(CAST(:days AS int[])) AS d(day) ORDER BY i, day) AS locks"
        ),
        {
            "ns": [lock_namespace(t) for t in turbines],
            "days": [d.toordinal() for d in month_days(month)],
        },
    )
    if still_current is not None and not still_current():
        raise SourceMovedError(f"the source changed {month:%Y-%m} while it was being fetched")
    conn.execute(text("LOCK TABLE data IN ACCESS EXCLUSIVE MODE"))
    held = bool(existing_months(conn, [month]))
    if held:
        # Rows of this month that the run does not write (other turbines or signals) stay.
        conn.execute(
            text(
                f'INSERT INTO {stage} SELECT id, "timestamp", signal_id, value FROM {name} '  # noqa: S608
                "WHERE NOT (signal_id = ANY(:ids))"
            ),
            {"ids": sorted(ids.values())},
        )
        conn.execute(text(f"ALTER TABLE data DETACH PARTITION {name}"))
        conn.execute(text(f"DROP TABLE {name}"))
    conn.execute(text(f"ALTER TABLE {stage} RENAME TO {name}"))
    conn.execute(text(f"ALTER INDEX {stage}_pkey RENAME TO {name}_pkey"))
    conn.execute(text(f"ALTER INDEX {stage}_uq RENAME TO {name}_signal_id_timestamp_key"))
    # The month CHECK proves the bound, so ATTACH scans nothing; the indexes and the foreign key
    # match the parent's and are adopted, not built again.
    conn.execute(text(f"ALTER TABLE data ATTACH PARTITION {name} FOR VALUES {bounds_sql(month)}"))
    conn.execute(text(f"ALTER TABLE {name} DROP CONSTRAINT {stage}_month"))
    if records:
        _record_loads(conn, records)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """``[month 00:00, next month 00:00)`` as naive UTC datetimes."""
    after = next_month(month)
    return datetime(month.year, month.month, 1), datetime(after.year, after.month, 1)
