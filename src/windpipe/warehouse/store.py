"""The target's writes: the ETL's atomic replace of a window, and the schema's migration.

The warehouse owns ``signal``, ``data`` and ``day_load``: this module writes them, ``reads`` holds
the reads orchestration needs (SQLAlchemy) and ``queries`` the API's and the dashboard's (SQL text
for ADBC). Nothing outside ``windpipe.warehouse`` writes SQL against these tables.

``replace_window`` runs one transaction on the SQLAlchemy engine's psycopg 3 connection: take an
advisory lock per UTC day touched (so two runs of one day serialize), register missing signals,
delete the window's rows of the configured signals, and COPY the new rows in. Either all of
it commits or nothing changes.
"""

import io
import zlib
from collections.abc import Callable, Iterator, Sequence
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
)
from windpipe.errors import EtlError, TargetUnavailableError, first_line
from windpipe.migrations import History, ensure_current
from windpipe.warehouse.partitions import ensure_months, months_touched


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
    thin_windows: int = 0  # windows left out for holding too few samples (min_coverage)


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


#: The target database's Alembic history, beside this module (``migrations/``).
HISTORY = History.beside(__file__, database="target", head="t0009", baseline="t0001")


def ensure_schema(engine: Engine) -> bool:
    """Bring the target's schema to the newest migration; return whether it had to."""
    with _target_errors(engine, "migrating the schema"):
        return ensure_current(engine, HISTORY)


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
        ensure_months(conn, months_touched(start, end))  # one catalog query once they exist
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
                (turbine, day, fingerprint, samples, non_finite, complete_until, thin_windows,
                 loaded_at)
            SELECT *, clock_timestamp() FROM unnest(
                CAST(:turbines AS varchar[]), CAST(:days AS date[]), CAST(:prints AS text[]),
                CAST(:samples AS bigint[]), CAST(:non_finite AS bigint[]),
                CAST(:until AS timestamptz[]), CAST(:thin AS integer[]))
            ON CONFLICT (turbine, day) DO UPDATE SET
                fingerprint = excluded.fingerprint, samples = excluded.samples,
                non_finite = excluded.non_finite, complete_until = excluded.complete_until,
                thin_windows = excluded.thin_windows, loaded_at = excluded.loaded_at
            """
        ),
        {
            "turbines": [r.turbine for r in records],
            "days": [r.day for r in records],
            "prints": [r.fingerprint for r in records],
            "samples": [r.samples for r in records],
            "non_finite": [r.non_finite for r in records],
            "until": [r.complete_until.astimezone(UTC) for r in records],
            "thin": [r.thin_windows for r in records],
        },
    )


def _instant(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (naive means UTC), bound as a timestamptz."""
    return naive_utc(moment).replace(tzinfo=UTC)


# -- the farm's daily figures: turbine_day_kpi and turbine_day_loss -------------------------------


def _kpi_lock(turbine: str) -> int:
    """The advisory-lock key of a turbine's daily figures (apart from its aggregates' locks)."""
    return zlib.crc32(f"windpipe-kpi:{turbine}".encode()) - 2**31


def replace_kpis(
    engine: Engine,
    first: date,
    last: date,
    kpis: pl.DataFrame,
    losses: pl.DataFrame,
    *,
    turbines: Sequence[str],
    computed_at: datetime | None = None,
    lock_wait: timedelta = LOCK_WAIT,
) -> int:
    """Atomically replace ``turbines``' daily figures of ``[first, last]`` by ``kpis`` (the
    columns of ``analytics.availability.KPI_SCHEMA``) and ``losses`` (``LOSS_SCHEMA``).

    One transaction: under an advisory lock per turbine (taken in order, so overlapping calls
    serialize and cannot deadlock), delete the range's rows of both tables, insert the new ones.
    Re-running gives the same rows; a failure leaves the previous ones. Returns the rows of
    ``turbine_day_kpi`` written."""
    turbines = sorted(set(turbines))
    if last < first:
        raise ValueError(f"last day {last} is before the first {first}")
    for name, frame in (("kpis", kpis), ("losses", losses)):
        if frame.height == 0:
            continue
        strays = set(frame["turbine"].unique().to_list()) - set(turbines)
        lo, hi = frame["day"].min(), frame["day"].max()
        if strays or not (isinstance(lo, date) and isinstance(hi, date)) or lo < first or hi > last:
            raise ValueError(
                f"{name} hold turbines {sorted(strays)} or days outside "
                f"{turbines} x [{first}, {last}]"
            )
    moment = (computed_at or datetime.now(UTC)).astimezone(UTC)
    with _target_errors(engine, f"storing the daily figures of {first}..{last}"):
        ensure_schema(engine)
        with engine.begin() as conn:
            conn.execute(
                text("SELECT set_config('lock_timeout', :ms, true)"),
                {"ms": str(int(lock_wait.total_seconds() * 1000))},
            )
            for turbine in turbines:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _kpi_lock(turbine)})
            span = {"turbines": turbines, "first": first, "last": last}
            for table in ("turbine_day_loss", "turbine_day_kpi"):
                conn.execute(
                    text(
                        f"DELETE FROM {table} WHERE turbine = ANY(:turbines) "  # noqa: S608
                        "AND day >= :first AND day <= :last"
                    ),
                    span,
                )
            if kpis.height:
                _copy_in(conn, "turbine_day_kpi", kpis, {"computed_at": moment})
            if losses.height:
                _copy_in(conn, "turbine_day_loss", losses, {})
    return kpis.height


#: The frames' column types that ``_copy_in`` stores (their CSV text is PostgreSQL's input).
_STORABLE = (pl.String, pl.Date, pl.Int64, pl.Int32, pl.Float64, pl.Datetime)


def _copy_in(
    conn: Connection, table: str, frame: pl.DataFrame, constants: dict[str, datetime]
) -> None:
    """Insert every row of ``frame`` (and ``constants``, the same in every row) into ``table``
    by one CSV ``COPY``, the CSV written by Polars: floats in their shortest text that reads back
    to the same double (bit for bit), null as an empty unquoted field (NULL in CSV ``COPY``). On
    10,000 rows: a third of the time an ``unnest`` of Python lists took (their conversion)."""
    for name, dtype in frame.schema.items():
        if not isinstance(dtype, _STORABLE):
            raise ValueError(f"column {name} of type {dtype} cannot be stored")
    rows = frame.with_columns(
        pl.lit(value, pl.Datetime("us", "UTC")).alias(name) for name, value in constants.items()
    )
    quoted = ", ".join(f'"{n}"' for n in rows.columns)
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY {table} ({quoted}) FROM STDIN (FORMAT csv)") as copy,
    ):
        copy.write(rows.write_csv(include_header=False, datetime_format="%Y-%m-%dT%H:%M:%S%.6f%z"))
