"""Bulk-load a synthetic farm into the source table: one transaction per day, COPY in binary; then
the span's events (the generator's SCADA log) in one more."""

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import psycopg
import pyarrow as pa
from sqlalchemy import Engine

from windpipe import catalog
from windpipe.catalog import Coverage, Turbine, iter_day_spans, utc_midnight
from windpipe.errors import SeedInputError
from windpipe.source import store
from windpipe.source.events import FeedRound, record_feed_events, replace_span_events
from windpipe.source.generator import (
    DEFAULT_TURBINE,
    EVENT_CODES,
    Event,
    Meter,
    TurbineSpec,
    clip,
    clip_events,
    farm,
    farm_days,
    join_events,
    seeded_meters,
    split_by_turbine,
)

FREQUENCIES = {"1s": 1, "10s": 10, "30s": 30, "1min": 60, "5min": 300, "10min": 600}
#: The generated cumulative energy counter, carried on from the table's last reading.
_ENERGY = "energy"
#: How far back the seed and the feed look for the counter's last reading (as the ETL does for
#: a day's first increase, a bounded backward probe).
_READINGS_BACK = timedelta(days=7)


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


def _names(turbines: Sequence[str]) -> str:
    """Turbine ids for a message: ``WTG01``, ``WTG01 and WTG02``, ``WTG01, WTG02 and WTG03``."""
    items = list(turbines)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass(frozen=True)
class SyntheticFleet:
    """The turbines the seed and the live feed may generate, and those they leave alone, why."""

    turbines: list[Turbine]
    left_alone: dict[str, str]  # turbine -> the reason, one human phrase


def synthetic_fleet(
    fleet: Sequence[Turbine],
    *,
    declared: bool,
    origins: dict[str, str],
    held: Sequence[str],
) -> SyntheticFleet:
    """Which turbines are synthetic, i.e. which the seed and the live feed may write.

    With ``[[turbines]]`` declared (``declared``), those marked ``synthetic = true``; without, the
    demo farm: the turbines ``windpipe seed`` made (origin ``synthetic``), or the default turbine
    of an empty source. Never a turbine whose origin is ``imported``. ``held``: the turbines with
    samples; a turbine with samples windpipe did not generate is left alone unless declared
    ``synthetic = true``.
    """
    chosen: list[Turbine] = []
    alone: dict[str, str] = {}
    for turbine in fleet:
        origin = origins.get(turbine.id)
        if origin == store.IMPORTED:
            alone[turbine.id] = "holds imported data"
        elif declared and not turbine.synthetic:
            alone[turbine.id] = "is not marked synthetic = true"
        elif not declared and turbine.id in held and origin != store.SYNTHETIC:
            alone[turbine.id] = "holds samples windpipe did not generate"
        else:
            chosen.append(turbine)
    return SyntheticFleet(chosen, alone)


def synthetic_fleet_of(
    engine: Engine, fleet: Sequence[Turbine], *, declared: bool
) -> SyntheticFleet:
    """:func:`synthetic_fleet` with the origins and the turbines the source ``engine`` holds."""
    return synthetic_fleet(
        fleet, declared=declared, origins=store.origins(engine), held=store.turbine_ids(engine)
    )


def describe_left_alone(left_alone: dict[str, str]) -> str:
    """The turbines the seed and the feed leave alone, grouped by reason, as one phrase."""
    reasons: dict[str, list[str]] = {}
    for turbine, reason in left_alone.items():
        reasons.setdefault(reason, []).append(turbine)
    return "; ".join(
        f"{_names(ids)} {_plural(reason, len(ids))}" for reason, ids in reasons.items()
    )


def _plural(reason: str, count: int) -> str:
    """``holds``/``is`` for one turbine, ``hold``/``are`` for several."""
    if count == 1:
        return reason
    return reason.replace("holds ", "hold ", 1).replace("is not ", "are not ", 1)


def fleet_specs(fleet: Sequence[Turbine]) -> list[TurbineSpec]:
    """Synthetic turbines for a configured fleet: the farm's varied curves, the configured ids
    and, where given, rated power, hub height and position."""
    specs = []
    for default, turbine in zip(farm(len(fleet)), fleet, strict=True):
        specs.append(
            replace(
                default,
                id=turbine.id,
                rated_power_kw=turbine.rated_power_kw or default.rated_power_kw,
                hub_height_m=turbine.hub_height_m or default.hub_height_m,
                latitude=turbine.latitude if turbine.latitude is not None else default.latitude,
                longitude=turbine.longitude if turbine.longitude is not None else default.longitude,
            )
        )
    return specs


def _clip_farm(table: pa.Table, start: datetime, end: datetime) -> pa.Table:
    """Each turbine's rows with ``start <= timestamp < end`` (zero-copy slices)."""
    parts = [clip(rows, start, end) for rows in split_by_turbine(table).values()]
    return pa.concat_tables(parts) if parts else table


def _chunks(
    start: datetime,
    end: datetime,
    turbines: Sequence[TurbineSpec],
    step: int,
    seed: int,
    gap_rate: float,
    meters: Mapping[str, Meter],
    events: list[Event],
) -> Iterator[tuple[datetime, datetime, pa.Table]]:
    """Per UTC day touched: the part of ``[start, end)`` in it, and the farm's samples; the
    day's events are added to ``events``."""
    spans = list(iter_day_spans(start, end))
    days = farm_days(
        [day for day, _, _ in spans],
        turbines=turbines,
        step_seconds=step,
        seed=seed,
        gap_rate=gap_rate,
        meters=meters,
    )
    for (_, lo, hi), day in zip(spans, days, strict=True):
        events += day.events
        yield lo, hi, _clip_farm(day.table, lo, hi)


def _readings(
    conn: psycopg.Connection, turbines: Sequence[str], start: datetime, end: datetime
) -> dict[str, float]:
    """Each turbine's last energy reading in ``[start, end)`` (none where it has none)."""
    sql = store.select_last_sql([_ENERGY], start, end, turbines=turbines)
    return {str(row[0]): float(row[2]) for row in conn.execute(sql).fetchall()}


def seed_source(
    engine: Engine,
    start: datetime,
    end: datetime,
    *,
    turbines: Sequence[TurbineSpec] = (DEFAULT_TURBINE,),
    freq: str = "1min",
    seed: int = 42,
    gap_rate: float = 0.0,
    columns: Sequence[str] | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> SeedResult:
    """Seed ``[start, end)`` for ``turbines``; each UTC day is replaced in one transaction, so a
    re-run is exact. ``columns``: the source columns to fill (default: the catalog's); those the
    table lacks are added first.

    The energy counter (when it is filled) carries on from each turbine's last reading before
    ``start`` and resets to 0 once in the span (:func:`~windpipe.source.generator.seeded_meters`).
    The span's events (:data:`~windpipe.source.generator.EVENT_CODES`), clipped to it, then
    replace the generator's events of the span in one transaction
    (:func:`~windpipe.source.events.replace_span_events`).
    """
    if not turbines:
        raise SeedInputError("no turbines to seed; give at least one")
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
        ids = [t.id for t in turbines]
        with conn.transaction():
            real = [t for t in ids if store.origins(conn).get(t) == store.IMPORTED]
            if real:
                raise SeedInputError(
                    f"{_names(real)} {'holds' if len(real) == 1 else 'hold'} imported data; "
                    "the seed never writes a turbine with real samples"
                )
            store.record_origin(conn, ids, store.SYNTHETIC)
            if columns is not None:
                store.add_value_columns(conn, columns)
        readings: dict[str, float] = {}
        if _ENERGY in (catalog.VARIABLES if columns is None else columns):
            with conn.transaction():
                readings = _readings(conn, ids, start - _READINGS_BACK, start)
        meters = seeded_meters(
            turbines, start, end, step_seconds=step, seed=seed, readings=readings
        )
        events: list[Event] = []
        for lo, hi, table in _chunks(start, end, turbines, step, seed, gap_rate, meters, events):
            with conn.transaction():
                written += store.replace_samples(conn, table, lo, hi, turbines=ids, columns=columns)
            if on_chunk is not None:
                on_chunk(table.num_rows)
        conn.commit()
    finally:
        raw.close()
    replace_span_events(
        engine,
        clip_events(join_events(events), start, end),
        start,
        end,
        turbines=ids,
        codes=list(EVENT_CODES),
    )
    store.vacuum(engine)
    return SeedResult(start, end, written, time.perf_counter() - began, store.coverage(engine))


def append_minutes(
    engine: Engine,
    *,
    until: datetime,
    turbines: Sequence[TurbineSpec] = (DEFAULT_TURBINE,),
    seed: int = 42,
    max_minutes: int = 1440,
    columns: Sequence[str] | None = None,
) -> int:
    """Insert each turbine's 1-minute samples after its newest row up to ``until`` (at most a
    day's worth); returns the rows added.

    A turbine without rows starts at ``until``'s minute; existing rows are never changed. The
    columns of ``columns`` the table lacks are added first, and the energy counter carries on
    from each turbine's newest reading.
    """
    until = until.astimezone(UTC).replace(second=0, microsecond=0)
    real = {t for t, origin in store.origins(engine).items() if origin == store.IMPORTED}
    turbines = [spec for spec in turbines if spec.id not in real]  # real data stays real
    if not turbines:
        return 0
    newest = store.newest_per_turbine(engine)
    earliest = until - timedelta(minutes=max_minutes - 1)
    firsts = {}
    for spec in turbines:
        latest = newest.get(spec.id)
        first = until if latest is None else latest.astimezone(UTC) + timedelta(minutes=1)
        firsts[spec.id] = max(first.replace(second=0, microsecond=0), earliest)
    begin = min(firsts.values())
    if begin > until:
        return 0
    meters = _feed_meters(engine, [spec.id for spec in turbines], firsts, columns)
    end = until + timedelta(minutes=1)
    parts = []
    events: list[Event] = []
    spans = list(iter_day_spans(begin, end))
    days = farm_days(
        [day for day, _, _ in spans], turbines=turbines, step_seconds=60, seed=seed, meters=meters
    )
    for (_, lo, hi), day in zip(spans, days, strict=True):
        parts += [
            clip(rows, max(lo, firsts[turbine]), hi)
            for turbine, rows in split_by_turbine(day.table).items()
            if firsts[turbine] <= until
        ]
        events += day.events
    new = pa.concat_tables(parts) if parts else None
    if new is None or new.num_rows == 0:
        return 0
    added = store.insert_new_samples(engine, new, columns=columns)  # all newer, so all new
    _feed_events(engine, events, firsts, newest, end)
    return added


def _feed_events(
    engine: Engine,
    events: list[Event],
    firsts: Mapping[str, datetime],
    newest: Mapping[str, datetime],
    end: datetime,
) -> None:
    """Record the events of the feed's new minutes (``[firsts[t], end)`` per turbine): one still
    going at the newest minute is ongoing (its end empty until a round sees it stop)."""
    fed = {t: first for t, first in firsts.items() if first < end}
    runs = []
    for event in join_events(events):
        first = fed.get(event.turbine)
        if first is None:
            continue
        for run in clip_events([event], first, end):
            runs.append(run._replace(end=None) if run.end == end else run)
    rounds = {
        t: FeedRound(first, None if newest.get(t) is None else _minute_after(newest[t]))
        for t, first in fed.items()
    }
    record_feed_events(engine, runs, rounds, codes=list(EVENT_CODES))


def _minute_after(moment: datetime) -> datetime:
    """The end of the 1-minute sample stamped ``moment``."""
    return moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)


def _feed_meters(
    engine: Engine,
    turbines: Sequence[str],
    firsts: Mapping[str, datetime],
    columns: Sequence[str] | None,
) -> dict[str, Meter]:
    """Add the columns the table lacks; each turbine's meter: its newest reading, carried on from
    its first new minute (``firsts``)."""
    fills_energy = _ENERGY in (catalog.VARIABLES if columns is None else columns)
    if columns is None and not fills_energy:
        return {}
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        assert isinstance(conn, psycopg.Connection)
        with conn.transaction():
            if columns is not None:
                store.add_value_columns(conn, columns)
            readings = {}
            if fills_energy:
                # No turbine has a row at or after its first new minute: its newest is the last.
                begin, end = min(firsts.values()) - _READINGS_BACK, max(firsts.values())
                readings = _readings(conn, turbines, begin, end)
    finally:
        raw.close()
    return {turbine: Meter(kwh, firsts[turbine]) for turbine, kwh in readings.items()}
