"""The target's reads that the catch-up, the quality checks and the reports make (SQLAlchemy).

``data.timestamp`` is timestamptz (UTC instants): bounds are bound as aware UTC datetimes and
window starts are read back ``AT TIME ZONE 'UTC'``, i.e. as the naive UTC datetimes the callers
compare with, and days are UTC days, whatever the session's TimeZone. The writes are in
``windpipe.warehouse.store``, the API's reads in ``windpipe.warehouse.queries``.
"""

from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import text
from sqlalchemy.engine import Connection

from windpipe.catalog import DEFAULT_TURBINE_ID, signal_name, utc_midnight


def _has_tables(conn: Connection) -> bool:
    return bool(
        conn.execute(
            text("SELECT to_regclass('data') IS NOT NULL AND to_regclass('signal') IS NOT NULL")
        ).scalar_one()
    )


def has_flag_table(conn: Connection) -> bool:
    """Whether the target has ``window_flag`` (a target not migrated yet has no flags)."""
    return bool(conn.execute(text("SELECT to_regclass('window_flag') IS NOT NULL")).scalar_one())


def _has_day_load(conn: Connection) -> bool:
    """Whether the target has ``day_load`` (a target not migrated yet has loaded nothing)."""
    return bool(conn.execute(text("SELECT to_regclass('day_load') IS NOT NULL")).scalar_one())


def _day_span(first: date, last: date) -> dict[str, datetime]:
    return {"lo": utc_midnight(first), "hi": utc_midnight(last) + timedelta(days=1)}


def _turbine_filter(turbine: str | None) -> tuple[str, dict[str, str]]:
    """SQL condition (on ``s``, the signal table) and parameter for one turbine, or for all."""
    return ("s.turbine = :turbine", {"turbine": turbine}) if turbine else ("TRUE", {})


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


def thin_windows(
    conn: Connection, first: date, last: date, turbines: Sequence[str]
) -> dict[tuple[str, date], int]:
    """Per (turbine, day) loaded in ``[first, last]``: the windows left out for holding too few
    samples (``[etl] min_coverage``), where any were."""
    if not _has_day_load(conn):
        return {}
    rows = conn.execute(
        text(
            "SELECT turbine, day, thin_windows FROM day_load WHERE turbine = ANY(:turbines) "
            "AND day >= :first AND day <= :last AND thin_windows > 0 ORDER BY turbine, day"
        ),
        {"turbines": list(turbines), "first": first, "last": last},
    )
    return {(str(t), d): int(n) for t, d, n in rows}


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


def held_days(
    conn: Connection, first: date, last: date, signal: str, turbines: Sequence[str]
) -> tuple[date, date] | None:
    """The first and last UTC day in ``[first, last]`` with a window of ``signal`` for any of
    ``turbines``; None when there is none. One index probe per signal at each end."""
    if last < first or not turbines or not _has_tables(conn):
        return None
    row = conn.execute(
        text(
            """
            SELECT min(x.lo), max(x.hi)
            FROM signal s
            CROSS JOIN LATERAL (
                SELECT min(d."timestamp") AS lo, max(d."timestamp") AS hi
                FROM data d
                WHERE d.signal_id = s.id AND d."timestamp" >= :lo AND d."timestamp" < :hi
            ) AS x
            WHERE s.name = :signal AND s.turbine = ANY(:turbines)
            """
        ),
        {**_day_span(first, last), "signal": signal, "turbines": list(turbines)},
    ).one()
    if row[0] is None:
        return None
    return row[0].astimezone(UTC).date(), row[1].astimezone(UTC).date()


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


def window_means(
    conn: Connection,
    first: date,
    last: date,
    turbines: Sequence[str],
    *,
    power: str = "power_mean",
    wind_speed: str = "wind_speed_mean",
    others: Sequence[str] = (),
) -> pl.DataFrame:
    """The windows of ``turbines`` in ``[first, last]`` holding ``power``, ``wind_speed`` or one
    of ``others``: ``turbine``, ``timestamp`` (naive UTC start), ``power``, ``wind_speed`` and
    each of ``others`` under its own name (null where the signal has no row), by turbine then
    time.

    A year of a 10-turbine farm is a million rows per signal. Each signal's rows come as one
    ``bytea`` of 16-byte binary records (``timestamptz_send``, ``float8send``), read by NumPy:
    a few dozen values cross the wire instead of a message and a parsed line per row (measured
    on that year: 0.2 s instead of 1.2 s by ``COPY … TO STDOUT``)."""
    import numpy as np

    names = [power, wind_speed, *[o for o in others if o not in (power, wind_speed)]]
    columns = ["power", "wind_speed", *names[2:]]
    schema: dict[str, pl.DataType] = {
        "turbine": pl.String(),
        "timestamp": pl.Datetime("us"),
        **{c: pl.Float64() for c in columns},
    }
    if not turbines or not _has_tables(conn):
        return pl.DataFrame(schema=schema)
    found = conn.execute(
        text(
            "SELECT id, turbine, name FROM signal WHERE turbine = ANY(:turbines) "
            "AND name = ANY(:names)"
        ),
        {"turbines": list(turbines), "names": names},
    ).all()
    signals = {int(i): (str(turbine), columns[names.index(name)]) for i, turbine, name in found}
    if not signals:
        return pl.DataFrame(schema=schema)
    held: dict[str, list[tuple[str, Any]]] = {}
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor(binary=True) as cursor:
        # By signal id (not a join on ``signal``): each signal's index range, not every row of
        # the months. A record is self-contained, so the order string_agg concatenates them in
        # (parallel workers' parts included) does not matter.
        cursor.execute(
            "SELECT signal_id, string_agg("
            "timestamptz_send(\"timestamp\") || float8send(value), ''::bytea) FROM data "
            'WHERE signal_id = ANY(%(ids)s) AND "timestamp" >= %(lo)s AND "timestamp" < %(hi)s '
            "GROUP BY signal_id",
            {"ids": list(signals), **_day_span(first, last)},
        )
        for signal_id, records in cursor:
            turbine, column = signals[signal_id]
            held.setdefault(turbine, []).append((column, np.frombuffer(records, dtype=_RECORD)))
    frames = [_turbine_windows(turbine, held[turbine], columns) for turbine in sorted(held)]
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames).select(pl.col(name).cast(dtype) for name, dtype in schema.items())


#: Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC), its binary timestamps' zero.
PG_EPOCH_US = 946_684_800_000_000
#: A ``timestamptz_send(timestamp) || float8send(value)`` record: big-endian, 16 bytes.
_RECORD = [("timestamp", ">i8"), ("value", ">f8")]


def _turbine_windows(
    turbine: str, signals: list[tuple[str, Any]], columns: list[str]
) -> pl.DataFrame:
    """One turbine's windows, by time, from each signal's records (``columns`` absent: null)."""
    import numpy as np

    times = [records["timestamp"] for _, records in signals]
    first = times[0]
    # the target holds finite values only (ck_data_finite): NaN marks a window without the signal
    if all(np.array_equal(first, t) for t in times[1:]) and bool(np.all(first[1:] > first[:-1])):
        # every signal on the same windows, in time order (the usual year): no sort, no scatter
        stamps = first
        wide = {c: np.full(len(stamps), np.nan) for c in columns}
        for column, records in signals:
            wide[column] = records["value"]
    else:
        stamps, at = np.unique(np.concatenate(times), return_inverse=True)
        wide = {c: np.full(len(stamps), np.nan) for c in columns}
        offset = 0
        for column, records in signals:
            wide[column][at[offset : offset + len(records)]] = records["value"]
            offset += len(records)
    return pl.DataFrame(
        {
            "turbine": pl.repeat(turbine, len(stamps), dtype=pl.String, eager=True),
            "timestamp": pl.Series(stamps.astype(np.int64) + PG_EPOCH_US).cast(pl.Datetime("us")),
            **{c: pl.Series(c, v.astype(np.float64)).fill_nan(None) for c, v in wide.items()},
        }
    )


#: Polars types of the daily figures' columns, by the Python type of their SQL type.
_POLARS: dict[type, pl.DataType] = {int: pl.Int64(), float: pl.Float64(), date: pl.Date()}


def _frame_schema(table: Any, leave_out: Collection[str] = ()) -> dict[str, pl.DataType]:
    """A table's columns (its model's order) as a Polars schema: text is ``String``."""
    return {
        c.name: _POLARS.get(c.type.python_type, pl.String())
        for c in table.columns
        if c.name not in leave_out
    }


def kpi_columns() -> dict[str, pl.DataType]:
    """The daily figures as ``kpi_rows`` returns them: ``turbine_day_kpi``'s columns but
    ``computed_at`` (``analytics.availability.KPI_SCHEMA``, which a test holds equal)."""
    from windpipe.warehouse.models import TurbineDayKpi  # the ORM, only where it is needed

    return _frame_schema(TurbineDayKpi.__table__, ("computed_at",))


def loss_columns() -> dict[str, pl.DataType]:
    """``turbine_day_loss``'s columns as ``kpi_losses`` returns them."""
    from windpipe.warehouse.models import TurbineDayLoss

    return _frame_schema(TurbineDayLoss.__table__)


def _has_kpis(conn: Connection) -> bool:
    return bool(
        conn.execute(text("SELECT to_regclass('turbine_day_kpi') IS NOT NULL")).scalar_one()
    )


def kpi_rows(
    conn: Connection, first: date, last: date, turbines: Sequence[str] | None = None
) -> pl.DataFrame:
    """The stored daily figures (``turbine_day_kpi``, ``computed_at`` aside) of ``turbines``
    (None: all) in ``[first, last]``, by turbine then day."""
    return _read_days(conn, "turbine_day_kpi", kpi_columns(), first, last, turbines)


def kpi_losses(
    conn: Connection, first: date, last: date, turbines: Sequence[str] | None = None
) -> pl.DataFrame:
    """The stored time and lost production per category (``turbine_day_loss``) of ``turbines``
    (None: all) in ``[first, last]``, by turbine, day and category."""
    return _read_days(conn, "turbine_day_loss", loss_columns(), first, last, turbines)


def _read_days(
    conn: Connection,
    table: str,
    schema: dict[str, pl.DataType],
    first: date,
    last: date,
    turbines: Sequence[str] | None,
) -> pl.DataFrame:
    if not _has_kpis(conn):
        return pl.DataFrame(schema=schema)
    condition = "TRUE" if turbines is None else "turbine = ANY(:turbines)"
    columns = ", ".join(f'"{c}"' for c in schema)
    order = "turbine, day, category" if "category" in schema else "turbine, day"
    rows = conn.execute(
        text(
            f"SELECT {columns} FROM {table} "  # noqa: S608 - names from the models
            f"WHERE day >= :first AND day <= :last AND {condition} ORDER BY {order}"
        ),
        {"first": first, "last": last, "turbines": list(turbines or [])},
    ).all()
    return pl.DataFrame(rows, schema=schema, orient="row")


def wide_aggregates(
    conn: Connection,
    first: date,
    last: date,
    signals: Sequence[str],
    *,
    turbines: Sequence[str],
) -> pl.DataFrame:
    """The windows of ``turbines`` in ``[first, last]`` holding any of ``signals``, one row per
    (turbine, window): ``turbine``, ``timestamp`` (naive UTC window start) and a Float64 column
    per signal (null where that window lacks it), ordered by turbine and time."""
    schema: dict[str, pl.DataType] = {"turbine": pl.String(), "timestamp": pl.Datetime("us")}
    schema |= {name: pl.Float64() for name in signals}
    if not signals or not turbines or not _has_tables(conn):
        return pl.DataFrame(schema=schema)
    rows = conn.execute(
        text(
            """
            SELECT s.turbine, d."timestamp" AT TIME ZONE 'UTC', s.name, d.value
            FROM data d JOIN signal s ON s.id = d.signal_id
            WHERE s.name = ANY(:signals) AND s.turbine = ANY(:turbines)
              AND d."timestamp" >= :lo AND d."timestamp" < :hi
            """
        ),
        {"signals": list(signals), "turbines": list(turbines), **_day_span(first, last)},
    ).all()
    long = pl.DataFrame(
        rows,
        schema={
            "turbine": pl.String,
            "timestamp": pl.Datetime("us"),
            "signal": pl.String,
            "value": pl.Float64,
        },
        orient="row",
    )
    if long.is_empty():
        return pl.DataFrame(schema=schema)
    wide = long.pivot(on="signal", index=["turbine", "timestamp"], values="value")
    return wide.select(
        "turbine",
        "timestamp",
        *[
            pl.col(name) if name in wide.columns else pl.lit(None, dtype=pl.Float64).alias(name)
            for name in signals
        ],
    ).sort("turbine", "timestamp")
