"""The target database's one owner: ``signal`` and ``data``, and every statement on them.

The ETL writes through ``replace_window``; the catch-up, the quality checks and the reports read
through the functions at the end. Nothing else in windpipe writes SQL against these tables.

``replace_window`` runs one transaction on the SQLAlchemy engine's psycopg 3 connection: take an
advisory lock per UTC day touched (so two runs of one day serialize), register missing signals,
delete the window's rows of the configured signals, and COPY the new rows in. Either all of
it commits or nothing changes.
"""

import io
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import polars as pl
import psycopg
import sqlalchemy.exc
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from windpipe.catalog import (
    DEFAULT_TURBINE_ID,
    days_touched,
    naive_utc,
    naive_utc_expr,
    parse_signal,
    signal_name,
    utc_midnight,
)
from windpipe.errors import EtlError, TargetUnavailableError, first_line


def lock_namespace(turbine: str) -> int:
    """The advisory-lock namespace of a turbine's days: a stable signed 32-bit hash of its id."""
    return zlib.crc32(f"windpipe:{turbine}".encode()) - 2**31


#: How long a load waits for another run of the same day before it gives up.
LOCK_WAIT = timedelta(minutes=2)
# Advisory locks take (int4, int4): a namespace per turbine (lock_namespace), then the day's
# ordinal.

# Text COPY in CSV: Polars writes each float as its shortest round-trip form, so PostgreSQL reads
# back the same double, and it avoids importing NumPy (the CLI's start-up time matters). Each
# timestamp carries its offset (+0000): the same instant whatever the session's TimeZone.
_COPY_SQL = 'COPY data ("timestamp", signal_id, value) FROM STDIN (FORMAT csv)'


@dataclass(frozen=True)
class DayRecord:
    """What the load of a turbine's UTC day read, written with its aggregates (``day_load``)."""

    turbine: str
    day: date
    fingerprint: str  # the source's, read before the samples were fetched
    samples: int
    non_finite: int  # NaN/±Inf samples left out of the aggregates
    complete_until: datetime  # windows ending by then were complete (aware UTC)


class SourceMovedError(EtlError):
    """The source changed a day after its samples were fetched: fetch again before loading."""


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


def _signal_ids(
    conn: Connection, turbines: Sequence[str], signals: Sequence[str]
) -> dict[tuple[str, str], int]:
    """Ids of each turbine's ``signals``, registering the missing ones (never twice: unique)."""
    query = text(
        "SELECT turbine, name, id FROM signal WHERE turbine = ANY(:turbines) AND name = ANY(:names)"
    )
    params = {"turbines": list(turbines), "names": list(signals)}
    ids = {(str(t), str(n)): int(i) for t, n, i in conn.execute(query, params)}
    missing = sorted({(t, n) for t in turbines for n in signals} - set(ids))
    if missing:
        # Only the missing names are inserted, so the serial is not burnt on every run.
        parts = [parse_signal(n) for _, n in missing]
        conn.execute(
            text(
                "INSERT INTO signal (turbine, name, variable, aggregation) "
                "SELECT * FROM unnest(CAST(:turbines AS varchar[]), CAST(:names AS varchar[]), "
                "CAST(:variables AS varchar[]), CAST(:aggregations AS varchar[])) "
                "ON CONFLICT (turbine, name) DO NOTHING"
            ),
            {
                "turbines": [t for t, _ in missing],
                "names": [n for _, n in missing],
                "variables": [v for v, _ in parts],
                "aggregations": [a for _, a in parts],
            },
        )
        ids = {(str(t), str(n)): int(i) for t, n, i in conn.execute(query, params)}
    return ids


def encode_copy_csv(aggregates: pl.DataFrame, ids: dict[tuple[str, str], int]) -> bytes:
    """The rows as CSV COPY data for ``(timestamp, signal_id, value)``, timestamps as UTC
    instants with their offset (naive ones are UTC)."""
    keys = pl.DataFrame(
        {
            "turbine": [t for t, _ in ids],
            "signal": [n for _, n in ids],
            "signal_id": list(ids.values()),
        },
        schema={"turbine": pl.String, "signal": pl.String, "signal_id": pl.Int64},
    )
    dtype = aggregates.schema.get("timestamp")
    instant = pl.col("timestamp")
    if isinstance(dtype, pl.Datetime):
        instant = (
            instant.dt.replace_time_zone("UTC")
            if dtype.time_zone is None
            else instant.dt.convert_time_zone("UTC")
        )
    buffer = io.BytesIO()
    aggregates.join(keys, on=["turbine", "signal"], how="left", maintain_order="left").select(
        instant, "signal_id", "value"
    ).write_csv(buffer, include_header=False)
    return buffer.getvalue()


def _check_aggregates(
    aggregates: pl.DataFrame,
    start: datetime,
    end: datetime,
    signals: Sequence[str],
    turbines: Sequence[str],
) -> None:
    expected = {"turbine", "timestamp", "signal", "value"}
    if set(aggregates.columns) != expected:
        raise ValueError(
            f"aggregates must have columns {sorted(expected)}, got {aggregates.columns}"
        )
    if aggregates.height == 0:
        return
    strays = set(aggregates["signal"].unique().to_list()) - set(signals)
    if strays:
        raise ValueError(f"aggregates hold signals {sorted(strays)} outside {list(signals)}")
    others = set(aggregates["turbine"].unique().to_list()) - set(turbines)
    if others:
        raise ValueError(f"aggregates hold turbines {sorted(others)} outside {list(turbines)}")
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
    turbines: Sequence[str] = (DEFAULT_TURBINE_ID,),
    lock_wait: timedelta = LOCK_WAIT,
    records: Sequence[DayRecord] = (),
    still_current: Callable[[], bool] | None = None,
) -> int:
    """Atomically replace ``turbines``' ``signals`` in ``[start, end)`` by ``aggregates``.

    ``records`` are written to ``day_load`` in the same transaction. ``still_current``, called
    once the locks are held, says whether the source still holds what ``aggregates`` were computed
    from; when it does not, nothing is written and :class:`SourceMovedError` is raised (so of two
    runs of a day, the one that loads last always carries the newest source state).

    Returns the rows written. ``aggregates`` has ``turbine, timestamp, signal, value`` (without
    ``turbine`` when it is about one turbine). ``start`` and ``end`` are UTC (naive means UTC).
    Concurrent calls touching the same (turbine, UTC day) serialize on advisory locks, so the
    result is always that of one whole call; calls on other turbines run side by side. A call
    that waits longer than ``lock_wait`` for another gives up with an EtlError and changes nothing.
    """
    turbines = sorted(set(turbines))
    if "turbine" not in aggregates.columns:
        if len(turbines) != 1:
            raise ValueError("aggregates without a turbine column must be about one turbine")
        aggregates = aggregates.select(pl.lit(turbines[0]).alias("turbine"), pl.all())
    start, end = naive_utc(start), naive_utc(end)
    if end <= start:
        raise ValueError(f"end {end} is not after start {start}")
    dtype = aggregates.schema.get("timestamp")
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        aggregates = aggregates.with_columns(naive_utc_expr(dtype))
    _check_aggregates(aggregates, start, end, signals, turbines)
    window = f"[{start.isoformat(' ', 'minutes')}, {end.isoformat(' ', 'minutes')})"
    with _target_errors(engine, f"loading {window}"):
        try:
            return _replace(
                engine, start, end, aggregates, signals, turbines, lock_wait, records, still_current
            )
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
        return _replace(
            engine, start, end, aggregates, signals, turbines, lock_wait, records, still_current
        )


def _replace(
    engine: Engine,
    start: datetime,
    end: datetime,
    aggregates: pl.DataFrame,
    signals: Sequence[str],
    turbines: Sequence[str],
    lock_wait: timedelta,
    records: Sequence[DayRecord],
    still_current: Callable[[], bool] | None,
) -> int:
    with engine.begin() as conn:
        # SET LOCAL lock_timeout: bounds every lock wait of this transaction.
        conn.execute(
            text("SELECT set_config('lock_timeout', :ms, true)"),
            {"ms": str(int(lock_wait.total_seconds() * 1000))},
        )
        # In one order (turbine, then day ascending), so overlapping calls cannot deadlock.
        for turbine in turbines:
            for day in days_touched(start, end):
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:ns, :day)"),
                    {"ns": lock_namespace(turbine), "day": day.toordinal()},
                )
        if still_current is not None and not still_current():
            raise SourceMovedError(
                f"the source changed [{start}, {end}) while it was being fetched"
            )
        ids = _signal_ids(conn, turbines, signals)
        conn.execute(
            text(
                'DELETE FROM data WHERE signal_id = ANY(:ids) AND "timestamp" >= :start '
                'AND "timestamp" < :end'
            ),
            {"ids": sorted(ids.values()), "start": _instant(start), "end": _instant(end)},
        )
        if aggregates.height:
            driver = conn.connection.driver_connection
            assert isinstance(driver, psycopg.Connection)
            with driver.cursor() as cursor, cursor.copy(_COPY_SQL) as copy:
                copy.write(encode_copy_csv(aggregates, ids))
        if records:
            _record_loads(conn, records)
    return aggregates.height


def _record_loads(conn: Connection, records: Sequence[DayRecord]) -> None:
    conn.execute(
        text(
            """
            INSERT INTO day_load AS l
                (turbine, day, fingerprint, samples, non_finite, complete_until, loaded_at)
            SELECT *, clock_timestamp() FROM unnest(
                CAST(:turbines AS varchar[]), CAST(:days AS date[]), CAST(:prints AS text[]),
                CAST(:samples AS bigint[]), CAST(:non_finite AS bigint[]),
                CAST(:until AS timestamptz[]))
            ON CONFLICT (turbine, day) DO UPDATE SET
                fingerprint = excluded.fingerprint, samples = excluded.samples,
                non_finite = excluded.non_finite, complete_until = excluded.complete_until,
                loaded_at = excluded.loaded_at
            """
        ),
        {
            "turbines": [r.turbine for r in records],
            "days": [r.day for r in records],
            "prints": [r.fingerprint for r in records],
            "samples": [r.samples for r in records],
            "non_finite": [r.non_finite for r in records],
            "until": [r.complete_until.astimezone(UTC) for r in records],
        },
    )


def loaded_fingerprints(
    conn: Connection, first: date, last: date
) -> dict[tuple[str, date], tuple[str, datetime]]:
    """Per (turbine, day) loaded in ``[first, last]``: the source fingerprint its aggregates were
    computed from, and up to when its windows were complete (aware UTC)."""
    if not _has_day_load(conn):
        return {}
    rows = conn.execute(
        text(
            "SELECT turbine, day, fingerprint, complete_until FROM day_load "
            "WHERE day >= :first AND day <= :last"
        ),
        {"first": first, "last": last},
    )
    return {(str(t), d): (str(f), until.astimezone(UTC)) for t, d, f, until in rows}


def loaded_pairs(
    conn: Connection, candidates: Mapping[str, Collection[date]], signals: Sequence[str]
) -> set[tuple[str, date]]:
    """Which of the ``candidates`` (turbine -> days) the target holds: recorded in ``day_load``,
    or holding aggregates of ``signals`` (loads of releases before ``day_load``)."""
    pairs = [(t, d) for t, days in candidates.items() for d in days]
    if not pairs or not _has_tables(conn):
        return set()
    params = {"turbines": [t for t, _ in pairs], "days": [d for _, d in pairs]}
    held: set[tuple[str, date]] = set()
    if _has_day_load(conn):
        held = {
            (str(t), d)
            for t, d in conn.execute(
                text(
                    "SELECT l.turbine, l.day FROM day_load AS l JOIN unnest("
                    "CAST(:turbines AS text[]), CAST(:days AS date[])) AS c(turbine, day) "
                    "ON l.turbine = c.turbine AND l.day = c.day"
                ),
                params,
            )
        }
    rest = [(t, d) for t, d in pairs if (t, d) not in held]
    if rest and signals:
        # One probe of unique(signal_id, timestamp) per (turbine, day) not recorded.
        rows = conn.execute(
            text(
                """
                SELECT c.turbine, c.day
                FROM unnest(CAST(:turbines AS text[]), CAST(:days AS date[])) AS c(turbine, day)
                WHERE EXISTS (
                    SELECT 1 FROM data JOIN signal AS s ON s.id = data.signal_id
                    WHERE s.turbine = c.turbine AND s.name = ANY(:signals)
                      AND data."timestamp" >= (c.day::timestamp AT TIME ZONE 'UTC')
                      AND data."timestamp" < ((c.day + 1)::timestamp AT TIME ZONE 'UTC')
                )
                """
            ),
            {
                "turbines": [t for t, _ in rest],
                "days": [d for _, d in rest],
                "signals": list(signals),
            },
        )
        held |= {(str(t), d) for t, d in rows}
    return held


def non_finite_counts(
    conn: Connection, first: date, last: date, *, turbine: str
) -> dict[date, tuple[int, int]]:
    """Per day loaded in ``[first, last]`` for ``turbine``: (samples, non-finite ones dropped)."""
    if not _has_day_load(conn):
        return {}
    rows = conn.execute(
        text(
            "SELECT day, samples, non_finite FROM day_load "
            "WHERE turbine = :turbine AND day >= :first AND day <= :last"
        ),
        {"turbine": turbine, "first": first, "last": last},
    )
    return {d: (int(n), int(bad)) for d, n, bad in rows}


# -- reads for the catch-up, the quality checks and the reports -----------------------------------
# ``data.timestamp`` is timestamptz (UTC instants): bounds are bound as aware UTC datetimes and
# window starts are read back ``AT TIME ZONE 'UTC'``, i.e. as the naive UTC datetimes the callers
# compare with, and days are UTC days, whatever the session's TimeZone.


def _has_tables(conn: Connection) -> bool:
    return bool(
        conn.execute(
            text("SELECT to_regclass('data') IS NOT NULL AND to_regclass('signal') IS NOT NULL")
        ).scalar_one()
    )


def _instant(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (naive means UTC), bound as a timestamptz."""
    return naive_utc(moment).replace(tzinfo=UTC)


def _has_day_load(conn: Connection) -> bool:
    """Whether the target has ``day_load`` (a target not migrated yet has loaded nothing)."""
    return bool(conn.execute(text("SELECT to_regclass('day_load') IS NOT NULL")).scalar_one())


def _day_span(first: date, last: date) -> dict[str, datetime]:
    return {"lo": utc_midnight(first), "hi": utc_midnight(last) + timedelta(days=1)}


def _turbine_filter(turbine: str | None) -> tuple[str, dict[str, str]]:
    """SQL condition (on ``s``, the signal table) and parameter for one turbine, or for all."""
    return ("s.turbine = :turbine", {"turbine": turbine}) if turbine else ("TRUE", {})


def days_with_aggregates(
    conn: Connection,
    first: date,
    last: date,
    signals: Sequence[str],
    turbines: Sequence[str] = (DEFAULT_TURBINE_ID,),
) -> set[date]:
    """Days in ``[first, last]`` holding rows of ``signals`` for every one of ``turbines``."""
    if last < first or not signals or not turbines or not _has_tables(conn):
        return set()  # nothing was ever loaded: the ETL creates the schema on its first day
    ids = {
        str(t): [int(i) for i in ids]
        for t, ids in conn.execute(
            text(
                "SELECT turbine, array_agg(id) FROM signal "
                "WHERE name = ANY(:signals) AND turbine = ANY(:turbines) GROUP BY turbine"
            ),
            {"signals": list(signals), "turbines": list(turbines)},
        )
    }
    if set(ids) != set(turbines):
        return set()  # a turbine never loaded has no day loaded
    # One probe of unique(signal_id, timestamp) per day and turbine: cheap even for years of data.
    loaded: set[date] | None = None
    for turbine_ids in ids.values():
        rows = conn.execute(
            text(
                """
                SELECT d::date
                FROM generate_series(CAST(:first AS timestamp), CAST(:last AS timestamp),
                                     interval '1 day') AS d
                WHERE EXISTS (
                    SELECT 1 FROM data
                    WHERE data.signal_id = ANY(:ids)
                      AND data."timestamp" >= (d AT TIME ZONE 'UTC')
                      AND data."timestamp" < ((d + interval '1 day') AT TIME ZONE 'UTC')
                )
                """
            ),
            {"first": first, "last": last, "ids": turbine_ids},
        )
        days = {row[0] for row in rows}
        loaded = days if loaded is None else loaded & days
    return loaded or set()


def window_counts(
    conn: Connection,
    first: date,
    last: date,
    signals: Sequence[str],
    *,
    turbine: str | None = None,
) -> dict[tuple[date, str], int]:
    """Distinct windows held per (day, signal) in ``[first, last]`` (of one turbine, or all)."""
    where, params = _turbine_filter(turbine)
    rows = conn.execute(
        text(
            f"""
            SELECT (d."timestamp" AT TIME ZONE 'UTC')::date AS day, s.name,
                   count(DISTINCT d."timestamp")
            FROM data d JOIN signal s ON s.id = d.signal_id
            WHERE s.name = ANY(:signals) AND d."timestamp" >= :lo AND d."timestamp" < :hi
              AND {where}
            GROUP BY 1, 2
            """  # noqa: S608 - a fixed condition
        ),
        {"signals": list(signals), **_day_span(first, last), **params},
    )
    return {(day, str(name)): int(n) for day, name, n in rows}


def last_window(
    conn: Connection, day: date, signals: Sequence[str], *, turbine: str | None = None
) -> datetime | None:
    """The latest window the target holds on ``day`` for any of ``signals``."""
    where, params = _turbine_filter(turbine)
    value = conn.execute(
        text(
            f"""
            SELECT max(d."timestamp") AT TIME ZONE 'UTC'
            FROM data d JOIN signal s ON s.id = d.signal_id
            WHERE s.name = ANY(:signals) AND d."timestamp" >= :lo AND d."timestamp" < :hi
              AND {where}
            """  # noqa: S608 - a fixed condition
        ),
        {"signals": list(signals), **_day_span(day, day), **params},
    ).scalar_one()
    return value if isinstance(value, datetime) else None


def windows_held(conn: Connection, day: date, signal: str, *, turbine: str) -> set[datetime]:
    """The windows of one turbine's signal that the target holds on ``day``."""
    rows = conn.execute(
        text(
            """
            SELECT d."timestamp" AT TIME ZONE 'UTC'
            FROM data d JOIN signal s ON s.id = d.signal_id
            WHERE s.name = :signal AND s.turbine = :turbine
              AND d."timestamp" >= :lo AND d."timestamp" < :hi
            """
        ),
        {"signal": signal, "turbine": turbine, **_day_span(day, day)},
    )
    return {row[0] for row in rows}


def windows_by_variable(
    conn: Connection,
    first: date,
    last: date,
    variable: str,
    aggregations: Sequence[str],
    *,
    turbine: str | None = None,
) -> Iterator[tuple[str, datetime, dict[str, float | None]]]:
    """Each (turbine, window) of ``variable`` in ``[first, last]``, with its aggregations."""
    names = {a: signal_name(variable, a) for a in aggregations}
    where, params = _turbine_filter(turbine)
    # Bound names only: the aggregation names are aliases made from bind-parameter keys.
    columns = ", ".join(
        f"max(d.value) FILTER (WHERE s.name = :a{i}) AS a{i}" for i in range(len(names))
    )
    rows = conn.execute(
        text(
            f"""
            SELECT s.turbine, d."timestamp" AT TIME ZONE 'UTC', {columns}
            FROM data d JOIN signal s ON s.id = d.signal_id
            WHERE s.name = ANY(:names) AND d."timestamp" >= :lo AND d."timestamp" < :hi
              AND {where}
            GROUP BY s.turbine, d."timestamp" ORDER BY s.turbine, d."timestamp"
            """  # noqa: S608 - positional aliases and a fixed condition only
        ),
        {
            "names": list(names.values()),
            **_day_span(first, last),
            **params,
            **{f"a{i}": name for i, name in enumerate(names.values())},
        },
    )
    for row in rows:
        yield str(row[0]), row[1], dict(zip(names, row[2:], strict=True))


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
) -> list[tuple[str, str, datetime, int]]:
    """Up to ``limit`` (turbine, signal, timestamp) held twice or more, with their row counts."""
    rows = conn.execute(
        text(
            """
            SELECT s.turbine, s.name, d."timestamp" AT TIME ZONE 'UTC', count(*) AS n
            FROM data d JOIN signal s ON s.id = d.signal_id
            WHERE d."timestamp" >= :lo AND d."timestamp" < :hi
            GROUP BY s.turbine, s.name, d."timestamp" HAVING count(*) > 1
            ORDER BY d."timestamp", s.turbine, s.name LIMIT :limit
            """
        ),
        {**_day_span(first, last), "limit": limit},
    )
    return [(str(t), str(name), ts, int(n)) for t, name, ts, n in rows]


def aggregates_frame(
    conn: Connection,
    first: date,
    last: date,
    signals: Sequence[str],
    *,
    turbine: str | None = None,
) -> pl.DataFrame:
    """The target rows of ``signals`` in ``[first, last]``: turbine, timestamp, signal, value."""
    where, params = _turbine_filter(turbine)
    rows = conn.execute(
        text(
            f"""
            SELECT s.turbine, d."timestamp" AT TIME ZONE 'UTC', s.name, d.value
            FROM data d JOIN signal s ON s.id = d.signal_id
            WHERE s.name = ANY(:signals) AND d."timestamp" >= :lo AND d."timestamp" < :hi
              AND {where}
            ORDER BY s.turbine, d."timestamp", s.name
            """  # noqa: S608 - a fixed condition
        ),
        {"signals": list(signals), **_day_span(first, last), **params},
    ).all()
    return pl.DataFrame(
        rows,
        schema={
            "turbine": pl.String,
            "timestamp": pl.Datetime("us"),
            "signal": pl.String,
            "value": pl.Float64,
        },
        orient="row",
    )
