"""Bulk-load synthetic samples into the source table: one transaction per chunk, COPY in binary."""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg
import pyarrow as pa
from sqlalchemy import Engine, text

from windpipe.source.generator import clip, generate_day

_PG_EPOCH_US = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
# PostgreSQL binary COPY row: field count, then (length, value) for timestamptz and three float8.
_ROW = np.dtype(
    [("n", ">i2")]
    + [item for i in range(4) for item in ((f"l{i}", ">i4"), (f"v{i}", ">i8" if i == 0 else ">f8"))]
)
_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"
FREQUENCIES = {"1s": 1, "10s": 10, "30s": 30, "1min": 60, "5min": 300, "10min": 600}


class SeedInputError(ValueError):
    """A seeding parameter is out of range; the message says what is accepted."""


@dataclass(frozen=True)
class Coverage:
    """What the source table holds."""

    first: datetime | None
    last: datetime | None
    rows: int


@dataclass(frozen=True)
class SeedResult:
    """What one seeding did and what the table holds afterwards."""

    start: datetime
    end: datetime
    rows_written: int
    seconds: float
    coverage: Coverage


def parse_frequency(freq: str) -> int:
    """Seconds between samples for a frequency such as ``1min`` or ``1s``."""
    if freq not in FREQUENCIES:
        raise SeedInputError(f"unknown frequency {freq!r}; accepted: {', '.join(FREQUENCIES)}")
    return FREQUENCIES[freq]


def default_period(now: datetime | None = None, days: int = 10) -> tuple[datetime, datetime]:
    """The default period: from 00:00 UTC ``days`` days before today up to the current minute."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = datetime.combine(now.date() - timedelta(days=days), datetime.min.time(), tzinfo=UTC)
    return start, end


def encode_copy_binary(table: pa.Table) -> bytes:
    """The table's rows in PostgreSQL's binary COPY format (no header); ~50 bytes a row, no loop."""
    n = table.num_rows
    rows = np.empty(n, dtype=_ROW)
    rows["n"] = 4
    rows["l0"] = 8
    rows["v0"] = _numpy(table["timestamp"].cast(pa.int64()), np.int64) - _PG_EPOCH_US
    for i, name in enumerate(("wind_speed", "power", "ambient_temperature"), start=1):
        rows[f"l{i}"] = 8
        rows[f"v{i}"] = _numpy(table[name], np.float64)
    return rows.tobytes()


def _numpy(column: pa.ChunkedArray, dtype: type[np.generic]) -> np.ndarray:
    """A null-free fixed-width column as an ndarray; ``to_numpy`` would import pandas (~1 s)."""
    array = column.combine_chunks()
    if array.null_count:
        raise ValueError("the generator never produces nulls")
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * 8)


def _chunks(
    start: datetime, end: datetime, step: int, seed: int, gap_rate: float
) -> Iterator[tuple[datetime, datetime, pa.Table]]:
    """Per UTC day touched: the part of ``[start, end)`` in it, and its samples."""
    day: date = start.date()
    while (midnight := datetime.combine(day, datetime.min.time(), tzinfo=UTC)) < end:
        lo, hi = max(start, midnight), min(end, midnight + timedelta(days=1))
        yield (
            lo,
            hi,
            clip(generate_day(day, step_seconds=step, seed=seed, gap_rate=gap_rate), lo, hi),
        )
        day += timedelta(days=1)


def write_samples(conn: psycopg.Connection, table: pa.Table, start: datetime, end: datetime) -> int:
    """Replace the samples of ``[start, end)`` by ``table`` on an open transaction."""
    conn.execute('DELETE FROM data WHERE "timestamp" >= %s AND "timestamp" < %s', (start, end))
    with conn.cursor().copy(
        'COPY data ("timestamp", wind_speed, power, ambient_temperature) FROM STDIN (FORMAT BINARY)'
    ) as copy:
        copy.write(_HEADER)
        copy.write(encode_copy_binary(table))
        copy.write(_TRAILER)
    return table.num_rows


def seed_source(
    engine: Engine,
    start: datetime,
    end: datetime,
    *,
    freq: str = "1min",
    seed: int = 42,
    gap_rate: float = 0.0,
    on_chunk: Callable[[int], None] | None = None,
) -> SeedResult:
    """Seed ``[start, end)``; each UTC day is replaced in one transaction, so a re-run is exact."""
    step = parse_frequency(freq)
    if start.tzinfo is None or end.tzinfo is None:
        raise SeedInputError("start and end must be timezone-aware (UTC)")
    if end <= start:
        raise SeedInputError(f"end {end.isoformat()} is not after start {start.isoformat()}")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    began = time.perf_counter()
    written = 0
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        assert isinstance(conn, psycopg.Connection)
        for lo, hi, table in _chunks(start, end, step, seed, gap_rate):
            with conn.transaction():
                written += write_samples(conn, table, lo, hi)
            if on_chunk is not None:
                on_chunk(table.num_rows)
        conn.commit()
    finally:
        raw.close()
    # Freshly copied rows carry no hint bits and no visibility map: the first readers would pay
    # for setting them (day reads ~1.4x slower). VACUUM now, while the pages are in cache.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) data"))
    return SeedResult(start, end, written, time.perf_counter() - began, source_coverage(engine))


def source_coverage(engine: Engine) -> Coverage:
    """First and last timestamp and row count of the source table."""
    with engine.connect() as conn:
        first, last = conn.execute(
            text('SELECT min("timestamp"), max("timestamp") FROM data')
        ).one()
        # An exact count of a year of 1 s data takes ~1 s; the planner estimate would be instant but
        # the brief asks for the period actually held, so count.
        rows = conn.execute(text("SELECT count(*) FROM data")).scalar_one()
    return Coverage(first, last, int(rows))


def append_minutes(
    engine: Engine, *, until: datetime, seed: int = 42, max_minutes: int = 1440
) -> int:
    """Insert the 1-minute samples after the newest row up to ``until`` (at most a day's worth).

    Starts at ``until``'s minute when the table is empty; existing rows are never changed.
    """
    until = until.astimezone(UTC).replace(second=0, microsecond=0)
    with engine.connect() as conn:
        newest = conn.execute(text('SELECT max("timestamp") FROM data')).scalar_one()
    first = until if newest is None else newest.astimezone(UTC).replace(second=0, microsecond=0)
    first = max(
        first + timedelta(minutes=1) if newest is not None else first,
        until - timedelta(minutes=max_minutes - 1),
    )
    if first > until:
        return 0
    parts = []
    day = first.date()
    while day <= until.date():
        table = generate_day(day, step_seconds=60, seed=seed)
        parts.append(clip(table, first, until + timedelta(minutes=1)))
        day += timedelta(days=1)
    rows = pa.concat_tables(parts).to_pylist()
    with engine.begin() as conn:
        conn.execute(
            text(
                'INSERT INTO data ("timestamp", wind_speed, power, ambient_temperature) '
                "VALUES (:timestamp, :wind_speed, :power, :ambient_temperature) "
                'ON CONFLICT ("timestamp") DO NOTHING'
            ),
            rows,
        )
    return len(rows)  # all are newer than the newest row, so all are new
