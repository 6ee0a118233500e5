"""The API's side of the target database: a read-only pool, and the figures the dashboard shows.

The target is read with the same bounded read-only ADBC pool as the source (a second
:class:`~windpipe.api.reader.SourceReader` on the target's URL, made on first use, so an API whose
target is away still serves ``/data``). The SQL is ``windpipe.target.reads``'. The figures are
computed here from Arrow tables with Polars: small per request, whatever the range.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pyarrow as pa
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from windpipe import catalog
from windpipe.api.reader import Lease, SourceReader
from windpipe.errors import SourceUnavailableError, WindpipeError
from windpipe.settings import Settings
from windpipe.target import reads

#: Fewest windows a power-curve bin needs to be drawn (IEC 61400-12-1: 30 minutes of data).
MIN_BIN_WINDOWS = 3


class TargetUnavailableError(WindpipeError):
    """The target database did not answer the API (a 503 naming the target, not the source)."""


def init_target(app: FastAPI, conninfo: str | None) -> None:
    """Prepare ``app`` to read the target at ``conninfo`` (None: the settings' read-only URL)."""
    app.state.target_conninfo = conninfo
    app.state.target_reader = None
    app.state.target_ready = False
    app.state.target_lock = asyncio.Lock()


def close_target(app: FastAPI) -> None:
    """Close the target pool if one was made."""
    reader: SourceReader | None = getattr(app.state, "target_reader", None)
    if reader is not None:
        reader.close()
        app.state.target_reader = None


def _default_conninfo(settings: Settings) -> str:
    from windpipe.postgres import api_target_database_url, libpq_conninfo

    return libpq_conninfo(api_target_database_url(settings))


async def _reader(app: FastAPI) -> SourceReader:
    reader: SourceReader | None = app.state.target_reader
    if reader is not None:
        return reader
    async with app.state.target_lock:
        if app.state.target_reader is None:
            settings: Settings = app.state.settings
            conninfo = app.state.target_conninfo
            if conninfo is None:
                try:
                    conninfo = await run_in_threadpool(_default_conninfo, settings)
                except WindpipeError as exc:
                    raise TargetUnavailableError(str(exc)) from exc
            app.state.target_reader = SourceReader(
                conninfo,
                size=max(1, min(4, settings.api_pool_size)),
                acquire_timeout=settings.api_pool_timeout_seconds,
                statement_timeout=settings.api_statement_timeout_seconds,
            )
        reader = app.state.target_reader
        assert reader is not None
        return reader


class TargetSession:
    """One request's connection to the target: ``await session.query(sql)`` -> Arrow table."""

    def __init__(self, lease: Lease, ready: bool) -> None:
        self.lease = lease
        #: Whether the target has its tables (a fresh one has none until the first ETL run).
        self.ready = ready

    async def query(self, sql: str) -> pa.Table:
        """The result of ``sql``; TargetUnavailableError when the target does not answer."""
        try:
            return await self.lease.query(sql)
        except SourceUnavailableError as exc:
            raise TargetUnavailableError(str(exc)) from exc

    async def frame(self, sql: str) -> pl.DataFrame:
        """The result of ``sql`` as a Polars frame."""
        frame = pl.from_arrow(await self.query(sql))
        assert isinstance(frame, pl.DataFrame)
        return frame


async def open_session(request: Request) -> TargetSession:
    """Lease a target connection for this request (release it with ``session.lease.release()``)."""
    app = request.app
    reader = await _reader(app)
    lease = await reader.lease()
    session = TargetSession(lease, ready=app.state.target_ready)
    try:
        if not session.ready:
            table = await session.query(reads.HAS_TABLES_SQL)
            session.ready = app.state.target_ready = bool(table.column("ready")[0].as_py())
    except BaseException:
        lease.release()
        raise
    return session


@asynccontextmanager
async def target_session(request: Request) -> AsyncIterator[TargetSession]:
    """A target session for the block."""
    session = await open_session(request)
    try:
        yield session
    finally:
        session.lease.release()


# -- what the dashboard shows --------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


async def known_turbines(session: TargetSession, settings: Settings) -> list[str]:
    """The fleet's turbines, then any other the target holds, in that order."""
    ids = [t.id for t in settings.fleet]
    if session.ready:
        held = (await session.query(reads.SIGNALS_SQL)).column("turbine").to_pylist()
        ids += [t for t in dict.fromkeys(held) if t not in ids]
    return ids


def mean_signals(settings: Settings) -> list[str]:
    """The signals the overview shows: each aggregated variable's mean (or its first one)."""
    aggregation = "mean" if "mean" in settings.etl_aggregations else settings.etl_aggregations[0]
    return [catalog.signal_name(v, aggregation) for v in settings.etl_variables]


def windows_expected(day: date, window: timedelta, now: datetime) -> int:
    """Windows a UTC day should hold by ``now``: all of them once it is over."""
    start = catalog.day_start(day)
    if now >= start + catalog.DAY:
        return catalog.DAY // window
    return max(0, (now - start) // window)


async def latest(
    session: TargetSession, settings: Settings, turbines: list[str]
) -> list[dict[str, Any]]:
    """Per turbine: its latest window, the mean values then, the age and whether it is stale."""
    names = mean_signals(settings)
    rows = (
        await session.frame(reads.latest_sql(names, turbines=turbines))
        if session.ready and turbines
        else None
    )
    now = _now()
    lag = timedelta(minutes=settings.freshness_lag_minutes)
    answer = []
    for turbine in turbines:
        mine = rows.filter(pl.col("turbine") == turbine) if rows is not None else None
        newest = mine["timestamp"].max() if mine is not None and mine.height else None
        assert newest is None or isinstance(newest, datetime)
        values: dict[str, float | None] = dict.fromkeys(names)
        if newest is not None and mine is not None:
            for row in mine.filter(pl.col("timestamp") == newest).iter_rows(named=True):
                values[row["signal"]] = row["value"]
        ended = newest + settings.window if newest is not None else None
        age = (now - ended).total_seconds() / 60 if ended is not None else None
        answer.append(
            {
                "turbine": turbine,
                "timestamp": _iso(newest),
                "age_minutes": None if age is None else round(age, 1),
                "stale": age is None or age > lag.total_seconds() / 60,
                "values": values,
            }
        )
    return answer


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat() + "Z"


def last_day(rows: list[dict[str, Any]]) -> date:
    """The latest day any turbine has a window on, else today (UTC)."""
    stamps = [r["timestamp"] for r in rows if r["timestamp"]]
    return max(datetime.fromisoformat(s[:-1]).date() for s in stamps) if stamps else _now().date()


def _matrix(
    frame: pl.DataFrame | None, column: str, turbines: list[str], days: list[date], scale: float
) -> list[list[float | None]]:
    """A turbines x days matrix of ``column`` (None where the target holds nothing)."""
    cells: dict[tuple[str, date], float] = {}
    if frame is not None:
        for turbine, day, value in frame.select("turbine", "day", column).iter_rows():
            cells[(turbine, day)] = value
    return [
        [None if (t, d) not in cells else round(cells[(t, d)] * scale, 4) for d in days]
        for t in turbines
    ]


async def overview(
    session: TargetSession, settings: Settings, *, end: date | None, days: int
) -> dict[str, Any]:
    """The farm at a glance: latest values per turbine; completeness and energy per day."""
    turbines = await known_turbines(session, settings)
    rows = await latest(session, settings, turbines)
    last = end or last_day(rows)
    first = last - timedelta(days=days - 1)
    day_list = catalog.days_between(first, last)
    counts = energy = None
    power = catalog.signal_name("power", "mean")
    if session.ready:
        counts = await session.frame(
            reads.windows_per_day_sql(mean_signals(settings), first, last + catalog.DAY)
        )
        if power in settings.etl_signals:
            energy = await session.frame(
                reads.energy_per_day_sql(power, first, last + catalog.DAY, settings.window)
            )
    now = _now()
    expected = [windows_expected(d, settings.window, now) for d in day_list]
    held = _matrix(counts, "windows", turbines, day_list, 1.0)
    completeness = [
        [None if e == 0 else round((h or 0) / e, 4) for h, e in zip(row, expected, strict=True)]
        for row in held
    ]
    return {
        "turbines": turbines,
        "latest": rows,
        "days": [d.isoformat() for d in day_list],
        "windows_expected": expected,
        "completeness": completeness,
        "energy_mwh": _matrix(energy, "energy_kwh", turbines, day_list, 0.001),
        "freshness_lag_minutes": settings.freshness_lag_minutes,
        "window_minutes": settings.window.total_seconds() / 60,
    }


async def quality(
    session: TargetSession, settings: Settings, *, end: date | None, days: int
) -> dict[str, Any]:
    """Missing windows per (turbine, day) and the stale turbines."""
    turbines = await known_turbines(session, settings)
    rows = await latest(session, settings, turbines)
    last = end or last_day(rows)
    first = last - timedelta(days=days - 1)
    day_list = catalog.days_between(first, last)
    counts = None
    if session.ready:
        counts = await session.frame(
            reads.windows_per_day_sql(mean_signals(settings), first, last + catalog.DAY)
        )
    now = _now()
    expected = [windows_expected(d, settings.window, now) for d in day_list]
    held = _matrix(counts, "windows", turbines, day_list, 1.0)
    missing = [
        [max(0, e - int(h or 0)) for h, e in zip(row, expected, strict=True)] for row in held
    ]
    return {
        "turbines": turbines,
        "days": [d.isoformat() for d in day_list],
        "windows_expected": expected,
        "missing": missing,
        "missing_total": sum(map(sum, missing)),
        "stale": [r for r in rows if r["stale"]],
        "freshness_lag_minutes": settings.freshness_lag_minutes,
    }


def _numbers(series: pl.Series, decimals: int | None = None) -> str:
    """A JSON array of ``series`` (null for missing), rendered by Polars: fast for 50 k values.

    Floats are rounded to ``decimals``; integers are written as they are."""
    if series.dtype.is_float():
        series = series.fill_nan(None)
        if decimals is not None:
            series = series.round(decimals)
    text = series.cast(pl.String).fill_null("null")
    return "[" + ",".join(text.to_list()) + "]"


def _curves(frame: pl.DataFrame | None) -> pl.DataFrame:
    """Valid bins (enough windows) per turbine: turbine, bin, n, wind_speed, power."""
    if frame is None or frame.height == 0:
        return pl.DataFrame(
            schema={
                "turbine": pl.String,
                "bin": pl.Int32,
                "n": pl.Int64,
                "wind_speed": pl.Float64,
                "power": pl.Float64,
            }
        )
    return frame.filter(pl.col("n") >= MIN_BIN_WINDOWS).sort("turbine", "bin")


async def turbine_view(
    session: TargetSession,
    settings: Settings,
    turbine: str,
    start: datetime,
    end: datetime,
) -> bytes:
    """One turbine over ``[start, end)`` as compact JSON: the wind speed and power series (mean,
    min, max per window; null where a window is missing), its binned power curve and the farm's
    median curve. Rendered by hand: a year is 52 k windows per series."""
    wanted = [
        catalog.signal_name(v, a)
        for v in ("wind_speed", "power")
        for a in ("mean", "min", "max")
        if catalog.signal_name(v, a) in settings.etl_signals
    ]
    series = pl.DataFrame(
        schema={"timestamp": pl.Datetime("us"), **dict.fromkeys(wanted, pl.Float64)}
    )
    curves = None
    wind, power = catalog.signal_name("wind_speed", "mean"), catalog.signal_name("power", "mean")
    if session.ready and wanted:
        long = await session.frame(reads.aggregates_sql(wanted, start, end, turbines=[turbine]))
        if long.height:
            series = (
                long.pivot(on="signal", index="timestamp", values="value")
                .sort("timestamp")
                .upsample("timestamp", every=catalog.polars_duration(settings.window))
            )
        if wind in wanted and power in wanted:
            curves = await session.frame(reads.power_curve_sql(wind, power, start, end))
    valid = _curves(curves)
    own = valid.filter(pl.col("turbine") == turbine)
    farm = (
        valid.group_by("bin")
        .agg(
            pl.col("wind_speed").median(),
            pl.col("power").median(),
            pl.col("turbine").n_unique().alias("turbines"),
        )
        .sort("bin")
    )
    parts = [
        f'"turbine":"{turbine}"',
        f'"start":"{_iso(catalog.naive_utc(start))}","end":"{_iso(catalog.naive_utc(end))}"',
        f'"window_minutes":{settings.window.total_seconds() / 60!r}',
        '"t":' + _numbers(series["timestamp"].dt.epoch("ms")),
    ]
    empty = pl.Series([None] * series.height, dtype=pl.Float64)
    columns = [
        f'"{name}":{_numbers(series[name] if name in series.columns else empty, 3)}'
        for name in wanted
    ]
    parts.append('"series":{' + ",".join(columns) + "}")
    parts.append(
        '"curve":{'
        f'"wind_speed":{_numbers(own["wind_speed"], 3)},"power":{_numbers(own["power"], 2)},'
        f'"n":{_numbers(own["n"])}'
        "}"
    )
    parts.append(
        '"farm_median":{'
        f'"wind_speed":{_numbers(farm["wind_speed"], 3)},"power":{_numbers(farm["power"], 2)},'
        f'"turbines":{_numbers(farm["turbines"])}'
        "}"
    )
    parts.append(f'"bin_width":{reads.BIN_WIDTH!r}')
    return ("{" + ",".join(parts) + "}").encode()
