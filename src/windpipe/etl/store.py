"""The target database's one owner: ``signal`` and ``data``, and every statement on them.

The ETL writes through ``replace_window``; the catch-up, the quality checks and the reports read
through the functions at the end. Nothing else in windpipe writes SQL against these tables.

``replace_window`` runs one transaction on the SQLAlchemy engine's psycopg 3 connection: take an
advisory lock per UTC day touched (so two runs of one day serialize), register missing signals,
delete the window's rows of the configured signals, and COPY the new rows in. Either all of
it commits or nothing changes.
"""

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta

import polars as pl
import psycopg
import sqlalchemy.exc
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from windpipe.catalog import (
    day_start,
    days_touched,
    naive_utc,
    naive_utc_expr,
    signal_name,
)
from windpipe.errors import EtlError, TargetUnavailableError, first_line

#: How long a load waits for another run of the same day before it gives up.
LOCK_WAIT = timedelta(minutes=2)
# Advisory locks take (int4, int4): a namespace for windpipe's day locks, then the day's ordinal.
LOCK_NAMESPACE = 0x57504950  # "WPIP"

# Text COPY in CSV: Polars writes each float as its shortest round-trip form, so PostgreSQL reads
# back the same double, and it avoids importing NumPy (the CLI's start-up time matters).
_COPY_SQL = 'COPY data ("timestamp", signal_id, value) FROM STDIN (FORMAT csv)'


def _describe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _reason(exc: BaseException) -> str:
    return first_line(getattr(exc, "orig", None) or exc)  # the driver's words, not SQLAlchemy's


def _is_connection_failure(exc: BaseException) -> bool:
    if isinstance(exc, psycopg.OperationalError):
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc.orig, psycopg.OperationalError)
    return False


def _interrupted(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):  # the chain is short; bound it anyway
        if seen is None:
            return False
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextmanager
def _target_errors(engine: Engine, doing: str) -> Iterator[None]:
    """Turn a lost or refused target connection into a one-line TargetUnavailableError."""
    try:
        yield
    except EtlError:
        raise
    except (psycopg.Error, sqlalchemy.exc.DBAPIError) as exc:
        if _interrupted(exc):  # Ctrl-C mid-statement, then the rollback failed: still Ctrl-C
            raise KeyboardInterrupt from None
        if _is_connection_failure(exc):
            raise TargetUnavailableError(
                f"the target database at {_describe(engine)} failed while {doing}: {_reason(exc)}"
            ) from exc
        # Anything else the server refuses (permissions, a full disk, a foreign schema ...).
        raise EtlError(
            f"the target database at {_describe(engine)} refused {doing}: {_reason(exc)}"
        ) from exc


def ensure_schema(engine: Engine) -> bool:
    """Bring the target's schema to the newest migration; return whether it had to."""
    from windpipe.migrations import ensure_current

    with _target_errors(engine, "migrating the schema"):
        return ensure_current(engine, "target")


def _signal_ids(conn: Connection, signals: Sequence[str]) -> dict[str, int]:
    """Ids of ``signals``, registering the missing ones (never twice: the name is unique)."""
    query = text("SELECT name, id FROM signal WHERE name = ANY(:names)")
    ids = {str(n): int(i) for n, i in conn.execute(query, {"names": list(signals)})}
    missing = sorted(set(signals) - set(ids))
    if missing:
        # Only the missing names are inserted, so the serial is not burnt on every run.
        conn.execute(
            text(
                "INSERT INTO signal (name) SELECT unnest(CAST(:names AS varchar[])) "
                "ON CONFLICT (name) DO NOTHING"
            ),
            {"names": missing},
        )
        ids = {str(n): int(i) for n, i in conn.execute(query, {"names": list(signals)})}
    return ids


def encode_copy_csv(aggregates: pl.DataFrame, ids: dict[str, int]) -> bytes:
    """The rows as CSV COPY data for ``(timestamp, signal_id, value)``."""
    buffer = io.BytesIO()
    aggregates.select(
        pl.col("timestamp"),
        pl.col("signal").replace_strict(ids, return_dtype=pl.Int32),
        pl.col("value"),
    ).write_csv(buffer, include_header=False)
    return buffer.getvalue()


def _check_aggregates(
    aggregates: pl.DataFrame, start: datetime, end: datetime, signals: Sequence[str]
) -> None:
    expected = {"timestamp", "signal", "value"}
    if set(aggregates.columns) != expected:
        raise ValueError(
            f"aggregates must have columns {sorted(expected)}, got {aggregates.columns}"
        )
    if aggregates.height == 0:
        return
    strays = set(aggregates["signal"].unique().to_list()) - set(signals)
    if strays:
        raise ValueError(f"aggregates hold signals {sorted(strays)} outside {list(signals)}")
    first, last = aggregates["timestamp"].min(), aggregates["timestamp"].max()
    assert isinstance(first, datetime) and isinstance(last, datetime)
    if first < start or last >= end:
        raise ValueError(f"aggregates span [{first}, {last}], outside the window [{start}, {end})")


def replace_window(
    engine: Engine,
    start: datetime,
    end: datetime,
    aggregates: pl.DataFrame,
    *,
    signals: Sequence[str],
    lock_wait: timedelta = LOCK_WAIT,
) -> int:
    """Atomically replace ``signals``' rows in ``[start, end)`` by ``aggregates``; rows written.

    ``start`` and ``end`` are UTC (naive means UTC). Concurrent calls touching the same UTC days
    serialize on advisory locks, so the result is always that of one whole call. A call that
    waits longer than ``lock_wait`` for another gives up with an EtlError and changes nothing.
    """
    start, end = naive_utc(start), naive_utc(end)
    if end <= start:
        raise ValueError(f"end {end} is not after start {start}")
    dtype = aggregates.schema.get("timestamp")
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        aggregates = aggregates.with_columns(naive_utc_expr(dtype))
    _check_aggregates(aggregates, start, end, signals)
    window = f"[{start.isoformat(' ', 'minutes')}, {end.isoformat(' ', 'minutes')})"
    with _target_errors(engine, f"loading {window}"):
        try:
            return _replace(engine, start, end, aggregates, signals, lock_wait)
        except sqlalchemy.exc.ProgrammingError as exc:
            if not isinstance(exc.orig, psycopg.errors.UndefinedTable):
                raise
        except sqlalchemy.exc.OperationalError as exc:
            if not isinstance(exc.orig, psycopg.errors.LockNotAvailable):
                raise
            raise EtlError(
                f"another run held {window} for over {lock_wait.total_seconds():g} s, so this "
                "one gave up and changed nothing; if no other run is active, look for a stuck "
                "session in pg_stat_activity on the target"
            ) from exc
        # First load into an empty database: create the schema, then do the whole thing again.
        ensure_schema(engine)
        return _replace(engine, start, end, aggregates, signals, lock_wait)


def _replace(
    engine: Engine,
    start: datetime,
    end: datetime,
    aggregates: pl.DataFrame,
    signals: Sequence[str],
    lock_wait: timedelta,
) -> int:
    with engine.begin() as conn:
        # SET LOCAL lock_timeout: bounds every lock wait of this transaction.
        conn.execute(
            text("SELECT set_config('lock_timeout', :ms, true)"),
            {"ms": str(int(lock_wait.total_seconds() * 1000))},
        )
        for day in days_touched(start, end):  # ascending, so overlapping ranges cannot deadlock
            conn.execute(
                text("SELECT pg_advisory_xact_lock(:ns, :day)"),
                {"ns": LOCK_NAMESPACE, "day": day.toordinal()},
            )
        ids = _signal_ids(conn, signals)
        conn.execute(
            text(
                'DELETE FROM data WHERE signal_id = ANY(:ids) AND "timestamp" >= :start '
                'AND "timestamp" < :end'
            ),
            {"ids": sorted(ids.values()), "start": start, "end": end},
        )
        if aggregates.height:
            driver = conn.connection.driver_connection
            assert isinstance(driver, psycopg.Connection)
            with driver.cursor() as cursor, cursor.copy(_COPY_SQL) as copy:
                copy.write(encode_copy_csv(aggregates, ids))
    return aggregates.height


# -- reads for the catch-up, the quality checks and the reports -----------------------------------


def _has_tables(conn: Connection) -> bool:
    return bool(
        conn.execute(
            text("SELECT to_regclass('data') IS NOT NULL AND to_regclass('signal') IS NOT NULL")
        ).scalar_one()
    )


def _day_span(first: date, last: date) -> dict[str, datetime]:
    return {"lo": day_start(first), "hi": day_start(last) + timedelta(days=1)}


def days_with_aggregates(
    conn: Connection, first: date, last: date, signals: Sequence[str]
) -> set[date]:
    """Days in ``[first, last]`` for which the target holds at least one row of ``signals``."""
    if last < first or not signals or not _has_tables(conn):
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


def window_counts(
    conn: Connection, first: date, last: date, signals: Sequence[str]
) -> dict[tuple[date, str], int]:
    """Distinct windows held per (day, signal) in ``[first, last]``; absent keys hold none."""
    rows = conn.execute(
        text(
            """
            SELECT d."timestamp"::date AS day, s.name, count(DISTINCT d."timestamp")
            FROM data d JOIN signal s ON s.id = d.signal_id
            WHERE s.name = ANY(:signals) AND d."timestamp" >= :lo AND d."timestamp" < :hi
            GROUP BY 1, 2
            """
        ),
        {"signals": list(signals), **_day_span(first, last)},
    )
    return {(day, str(name)): int(n) for day, name, n in rows}


def last_window(conn: Connection, day: date, signals: Sequence[str]) -> datetime | None:
    """The latest window the target holds on ``day`` for any of ``signals``."""
    value = conn.execute(
        text(
            """
            SELECT max(d."timestamp") FROM data d JOIN signal s ON s.id = d.signal_id
            WHERE s.name = ANY(:signals) AND d."timestamp" >= :lo AND d."timestamp" < :hi
            """
        ),
        {"signals": list(signals), **_day_span(day, day)},
    ).scalar_one()
    return value if isinstance(value, datetime) else None


def windows_by_variable(
    conn: Connection, first: date, last: date, variable: str, aggregations: Sequence[str]
) -> Iterator[tuple[datetime, dict[str, float | None]]]:
    """Each window of ``variable`` in ``[first, last]``, in order, with its aggregations' values."""
    names = {a: signal_name(variable, a) for a in aggregations}
    # Bound names only: the aggregation names are aliases made from bind-parameter keys.
    columns = ", ".join(
        f"max(d.value) FILTER (WHERE s.name = :a{i}) AS a{i}" for i in range(len(names))
    )
    rows = conn.execute(
        text(
            f"""
            SELECT d."timestamp", {columns}
            FROM data d JOIN signal s ON s.id = d.signal_id
            WHERE s.name = ANY(:names) AND d."timestamp" >= :lo AND d."timestamp" < :hi
            GROUP BY d."timestamp" ORDER BY d."timestamp"
            """  # noqa: S608 - positional aliases only
        ),
        {
            "names": list(names.values()),
            **_day_span(first, last),
            **{f"a{i}": name for i, name in enumerate(names.values())},
        },
    )
    for row in rows:
        yield row[0], dict(zip(names, row[1:], strict=True))


def count_rows(conn: Connection, first: date, last: date) -> int:
    """Rows of every signal in the days ``[first, last]``."""
    return int(
        conn.execute(
            text('SELECT count(*) FROM data WHERE "timestamp" >= :lo AND "timestamp" < :hi'),
            _day_span(first, last),
        ).scalar_one()
    )


def duplicated_pairs(
    conn: Connection, first: date, last: date, *, limit: int = 100
) -> list[tuple[str, datetime, int]]:
    """Up to ``limit`` (signal, timestamp) pairs held twice or more, with their row counts."""
    rows = conn.execute(
        text(
            """
            SELECT s.name, d."timestamp", count(*) AS n
            FROM data d JOIN signal s ON s.id = d.signal_id
            WHERE d."timestamp" >= :lo AND d."timestamp" < :hi
            GROUP BY s.name, d."timestamp" HAVING count(*) > 1
            ORDER BY d."timestamp", s.name LIMIT :limit
            """
        ),
        {**_day_span(first, last), "limit": limit},
    )
    return [(str(name), ts, int(n)) for name, ts, n in rows]


def aggregates_frame(
    conn: Connection, first: date, last: date, signals: Sequence[str]
) -> pl.DataFrame:
    """The target rows of ``signals`` in ``[first, last]``: timestamp, signal, value."""
    rows = conn.execute(
        text(
            """
            SELECT d."timestamp", s.name, d.value
            FROM data d JOIN signal s ON s.id = d.signal_id
            WHERE s.name = ANY(:signals) AND d."timestamp" >= :lo AND d."timestamp" < :hi
            ORDER BY d."timestamp", s.name
            """
        ),
        {"signals": list(signals), **_day_span(first, last)},
    ).all()
    return pl.DataFrame(
        rows,
        schema={"timestamp": pl.Datetime("us"), "signal": pl.String, "value": pl.Float64},
        orient="row",
    )
