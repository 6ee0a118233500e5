"""Bulk-load synthetic samples into the source table: one transaction per chunk, COPY in binary."""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pyarrow as pa
from sqlalchemy import Engine

from windpipe.catalog import Coverage, iter_day_spans, utc_midnight
from windpipe.errors import SeedInputError
from windpipe.source import store
from windpipe.source.generator import clip, generate_day

FREQUENCIES = {"1s": 1, "10s": 10, "30s": 30, "1min": 60, "5min": 300, "10min": 600}


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
    start = utc_midnight(now.date() - timedelta(days=days))
    return start, end


def _chunks(
    start: datetime, end: datetime, step: int, seed: int, gap_rate: float
) -> Iterator[tuple[datetime, datetime, pa.Table]]:
    """Per UTC day touched: the part of ``[start, end)`` in it, and its samples."""
    for day, lo, hi in iter_day_spans(start, end):
        table = generate_day(day, step_seconds=step, seed=seed, gap_rate=gap_rate)
        yield lo, hi, clip(table, lo, hi)


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
                written += store.replace_samples(conn, table, lo, hi)
            if on_chunk is not None:
                on_chunk(table.num_rows)
        conn.commit()
    finally:
        raw.close()
    store.vacuum(engine)
    return SeedResult(start, end, written, time.perf_counter() - began, store.coverage(engine))


def append_minutes(
    engine: Engine, *, until: datetime, seed: int = 42, max_minutes: int = 1440
) -> int:
    """Insert the 1-minute samples after the newest row up to ``until`` (at most a day's worth).

    Starts at ``until``'s minute when the table is empty; existing rows are never changed.
    """
    until = until.astimezone(UTC).replace(second=0, microsecond=0)
    newest = store.newest_timestamp(engine)
    first = until if newest is None else newest.astimezone(UTC).replace(second=0, microsecond=0)
    first = max(
        first + timedelta(minutes=1) if newest is not None else first,
        until - timedelta(minutes=max_minutes - 1),
    )
    if first > until:
        return 0
    end = until + timedelta(minutes=1)
    parts = [
        clip(generate_day(day, step_seconds=60, seed=seed), lo, hi)
        for day, lo, hi in iter_day_spans(first, end)
    ]
    return store.insert_new_samples(engine, pa.concat_tables(parts))  # all newer, so all new
