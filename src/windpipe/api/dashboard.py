"""The figures the dashboard shows: the farm, a turbine, the data's quality.

The target is read through a :class:`~windpipe.api.pool.TargetSession` (the read-only pool); the
SQL is the warehouse's (``windpipe.warehouse.queries``). The figures are computed here from Arrow
tables with Polars: small per request, whatever the range.
"""

import json
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

import polars as pl

from windpipe import catalog
from windpipe.analytics.windows import BIN_WIDTH, bin_index
from windpipe.api.pool import ReadOnlyPool, TargetSession
from windpipe.errors import SourceQueryError, SourceUnavailableError
from windpipe.settings import Settings
from windpipe.warehouse import queries

#: Fewest windows a power-curve bin needs to be drawn (IEC 61400-12-1: 30 minutes of data).
MIN_BIN_WINDOWS = 3


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


#: A turbine's data span in the source: its first and last sample (naive UTC).
Span = tuple[datetime, datetime]


async def source_spans(pool: ReadOnlyPool) -> dict[str, Span]:
    """Each turbine the source holds, with its first and last sample (naive UTC); empty when the
    source does not answer (the dashboard then reads the target alone)."""
    from windpipe.source.store import TURBINE_SPANS_SQL

    try:
        lease = await pool.lease()
    except (SourceUnavailableError, SourceQueryError):
        return {}
    try:
        rows = (await lease.query(TURBINE_SPANS_SQL)).to_pylist()
    except (SourceUnavailableError, SourceQueryError):
        return {}
    finally:
        lease.release()
    return {
        str(row["turbine"]): (_naive(row["first"]), _naive(row["last"]))
        for row in rows
        if row["first"] is not None and row["last"] is not None
    }


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


async def known_turbines(
    session: TargetSession, settings: Settings, held: list[str] | None = None
) -> list[str]:
    """The fleet's turbines (the configured ones, or without ``[[turbines]]`` those the source
    holds: ``held``), then any other the target holds, in that order."""
    ids = [t.id for t in settings.fleet_of(held or [])]
    if session.ready:
        held = (await session.query(queries.SIGNALS_SQL)).column("turbine").to_pylist()
        ids += [t for t in dict.fromkeys(held) if t not in ids]
    return ids


def mean_signals(settings: Settings) -> list[str]:
    """The signals the overview shows: each aggregated variable's mean, or when its kind has
    none (a counter's delta, a state's mode) its first aggregation: a signal the target holds."""
    return [
        catalog.signal_name(v, "mean" if "mean" in aggs else aggs[0])
        for v, aggs in settings.rollup.aggregations.items()
        if aggs
    ]


def windows_expected(
    day: date,
    window: timedelta,
    now: datetime,
    span: Span | None = None,
    close_margin: timedelta = timedelta(0),
) -> int:
    """Windows a UTC day should hold by ``now``: those that closed ``close_margin`` ago and lie
    within the turbine's data ``span`` (first to last sample; None: unknown, the whole day).

    Days before a turbine's first sample or after its last expect nothing: a day the source never
    held is not missing.
    """
    start = catalog.day_start(day)
    lo, hi = start, start + catalog.DAY
    closed = now - close_margin
    hi = min(hi, start + ((closed - start) // window) * window) if closed < hi else hi
    if span is not None:
        first, last = span
        lo = max(lo, start + ((first - start) // window) * window)  # the window holding it
        hi = min(hi, start + ((last - start) // window + 1) * window)
    return max(0, (hi - lo) // window) if hi > lo else 0


def expected_matrix(
    turbines: list[str],
    days: list[date],
    settings: Settings,
    spans: dict[str, Span],
    now: datetime,
) -> list[list[int]]:
    """Windows expected per (turbine, day), each within its turbine's data span.

    A turbine the source does not hold (or a source that did not answer: ``spans`` empty) expects
    whole days up to ``now``, as before spans were known.
    """
    return [
        [
            windows_expected(
                d, settings.window, now, spans.get(t) if spans else None, settings.close_margin
            )
            for d in days
        ]
        for t in turbines
    ]


async def latest(
    session: TargetSession, settings: Settings, turbines: list[str]
) -> list[dict[str, Any]]:
    """Per turbine: its latest window, the mean values then, the age and whether it is stale."""
    names = mean_signals(settings)
    rows = (
        await session.frame(queries.latest_sql(names, turbines=turbines))
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


@dataclass(frozen=True)
class FarmWindow:
    """The days a farm figure covers: ``days`` up to ``end`` (None: the latest day the target
    holds), and each turbine's data span in the source (empty: not known)."""

    end: date | None
    days: int
    spans: dict[str, Span] = field(default_factory=dict)


@dataclass(frozen=True)
class _FarmDays:
    """The turbines and days a farm figure shows, and the windows held and expected per cell."""

    turbines: list[str]
    latest: list[dict[str, Any]]
    first: date
    last: date
    days: list[date]
    expected: list[list[int]]
    held: list[list[float | None]]


async def _farm_days(session: TargetSession, settings: Settings, window: FarmWindow) -> _FarmDays:
    """The window's days of every known turbine; windows are expected within each turbine's
    data span."""
    spans = window.spans
    turbines = await known_turbines(session, settings, list(spans))
    rows = await latest(session, settings, turbines)
    last = window.end or last_day(rows)
    first = last - timedelta(days=window.days - 1)
    day_list = catalog.days_between(first, last)
    counts = None
    if session.ready:
        counts = await session.frame(
            queries.windows_per_day_sql(mean_signals(settings), first, last + catalog.DAY)
        )
    return _FarmDays(
        turbines=turbines,
        latest=rows,
        first=first,
        last=last,
        days=day_list,
        expected=expected_matrix(turbines, day_list, settings, spans, _now()),
        held=_matrix(counts, "windows", turbines, day_list, 1.0),
    )


async def overview(
    session: TargetSession, settings: Settings, window: FarmWindow
) -> dict[str, Any]:
    """The farm at a glance: latest values per turbine; completeness and energy per day.

    Expected windows lie within each turbine's data span (``spans``); a day's energy is marked
    partial when the day holds fewer windows than a whole day has (today, a gap, the first day).
    """
    farm = await _farm_days(session, settings, window)
    energy = None
    power = catalog.signal_name("power", "mean")
    if session.ready and power in settings.etl_signals:
        energy = await session.frame(
            queries.energy_per_day_sql(power, farm.first, farm.last + catalog.DAY, settings.window)
        )
    completeness = [
        [
            None if e == 0 else round(min(1.0, (h or 0) / e), 4)
            for h, e in zip(row, row_expected, strict=True)
        ]
        for row, row_expected in zip(farm.held, farm.expected, strict=True)
    ]
    whole = catalog.DAY // settings.window
    energy_mwh = _matrix(energy, "energy_kwh", farm.turbines, farm.days, 0.001)
    partial = [
        [e is not None and int(h or 0) < whole for h, e in zip(row, energy_row, strict=True)]
        for row, energy_row in zip(farm.held, energy_mwh, strict=True)
    ]
    return {
        "turbines": farm.turbines,
        "latest": farm.latest,
        "days": [d.isoformat() for d in farm.days],
        "windows_expected": farm.expected,
        "windows_held": [[int(h or 0) for h in row] for row in farm.held],
        "windows_per_day": whole,
        "completeness": completeness,
        "energy_mwh": energy_mwh,
        "energy_partial": partial,
        "freshness_lag_minutes": settings.freshness_lag_minutes,
        "window_minutes": settings.window.total_seconds() / 60,
    }


async def quality(session: TargetSession, settings: Settings, window: FarmWindow) -> dict[str, Any]:
    """Missing windows per (turbine, day), within each turbine's data span, and the stale
    turbines; ``dagster_turbines``: those with a Dagster asset (the fleet)."""
    farm = await _farm_days(session, settings, window)
    missing = [
        [max(0, e - int(h or 0)) for h, e in zip(row, row_expected, strict=True)]
        for row, row_expected in zip(farm.held, farm.expected, strict=True)
    ]
    return {
        "turbines": farm.turbines,
        "dagster_turbines": [t.id for t in settings.fleet_of(list(window.spans))],
        "days": [d.isoformat() for d in farm.days],
        "windows_expected": farm.expected,
        "missing": missing,
        "missing_total": sum(map(sum, missing)),
        "stale": [r for r in farm.latest if r["stale"]],
        "freshness_lag_minutes": settings.freshness_lag_minutes,
        "flags": await flag_counts(session, farm.first, farm.last),
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


# -- the turbine view: decimated series, the power curve as bins and a density ---------------------

#: Points per series when the client does not say how many it can show (its chart's pixel
#: columns): up to that many windows every window is sent as it is, beyond it buckets.
DEFAULT_POINTS = 2000
#: The points a client may ask for.
POINTS_RANGE = (50, 20000)
#: Bucket lengths a decimated series may use (each a multiple of the window), shortest first;
#: longer spans use whole days.
BUCKETS = tuple(timedelta(minutes=m) for m in (20, 30, 60, 120, 180, 240, 360, 480, 720, 1440))
#: Up to this many windows the power curve carries every window as a point; above, a density.
MAX_CLOUD_POINTS = 5000
#: The density's cells: 0.25 m/s wide, the power range in this many rows.
DENSITY_STEP = 0.25
DENSITY_ROWS = 100
#: How long the farm's binned curves over a range are reused, and how many ranges are kept.
CURVE_CACHE_SECONDS = 60.0
CURVE_CACHE_SIZE = 32


class CurveCache:
    """The farm's binned power curves per (range, signals), kept ``ttl`` seconds: every turbine
    view of a range compares with the same farm median, which reads the whole farm's windows."""

    def __init__(self, ttl: float = CURVE_CACHE_SECONDS, size: int = CURVE_CACHE_SIZE) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[tuple[Any, ...], tuple[float, pl.DataFrame]] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> pl.DataFrame | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            self._entries.pop(key, None)
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: tuple[Any, ...], frame: pl.DataFrame) -> None:
        self._entries[key] = (time.monotonic() + self.ttl, frame)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


def resolution(start: datetime, end: datetime, window: timedelta, points: int) -> timedelta | None:
    """The bucket a series over ``[start, end)`` is drawn with in at most ``points`` points:
    None (every window) when the windows fit, else the shortest of ``BUCKETS`` that fits."""
    span = catalog.naive_utc(end) - catalog.naive_utc(start)
    if math.ceil(span / window) <= points:
        return None
    for bucket in BUCKETS:
        if (
            bucket > window
            and bucket % window == timedelta(0)
            and math.ceil(span / bucket) <= points
        ):
            return bucket
    return timedelta(days=max(2, math.ceil(span / (catalog.DAY * points))))


async def signal_pairs(
    session: TargetSession,
    x: str,
    y: str,
    start: datetime,
    end: datetime,
    *,
    turbines: list[str] | None = None,
) -> pl.DataFrame:
    """Each window in ``[start, end)`` holding both signals ``x`` and ``y``: ``turbine,
    timestamp, x, y`` (``turbines``: None, all). Each signal is read as it is indexed and the two
    are paired here: the database never joins ``data`` with itself
    (``queries.signal_values_sql`` says why)."""
    left = await session.frame(queries.signal_values_sql(x, start, end, turbines=turbines))
    right = await session.frame(queries.signal_values_sql(y, start, end, turbines=turbines))
    return (
        left.rename({"value": x})
        .join(right.rename({"value": y}), on=["turbine", "timestamp"], how="inner")
        .drop_nulls([x, y])
    )


def power_bins(pairs: pl.DataFrame, *, per_turbine: bool = False) -> pl.DataFrame:
    """The binned power curve of ``wind_speed, power`` pairs (0.5 m/s bins centred on multiples
    of 0.5 m/s): [turbine,] bin, n, wind_speed, power (bins with enough windows only)."""
    keys = ["turbine"] if per_turbine else []
    return (
        pairs.group_by(*keys, bin_index(pl.col("wind_speed")).alias("bin"))
        .agg(
            pl.len().cast(pl.Int64).alias("n"), pl.col("wind_speed").mean(), pl.col("power").mean()
        )
        .filter(pl.col("n") >= MIN_BIN_WINDOWS)
        .sort(*keys, "bin")
    )


def density(pairs: pl.DataFrame) -> dict[str, Any]:
    """``wind_speed, power`` pairs counted on a grid (a heatmap's ``x0, dx, y0, dy, z``; null
    where no window falls): DENSITY_STEP m/s wide cells, the power range in DENSITY_ROWS rows."""
    low = min(0.0, float(pairs["power"].min() or 0.0))  # type: ignore[arg-type]
    high = max(1.0, float(pairs["power"].max() or 0.0))  # type: ignore[arg-type]
    fastest = max(1.0, float(pairs["wind_speed"].max() or 0.0))  # type: ignore[arg-type]
    step_y = (high - low) / DENSITY_ROWS
    columns = math.floor(fastest / DENSITY_STEP) + 1
    cells = (
        pairs.select(
            (pl.col("power") - low)
            .truediv(step_y)
            .floor()
            .cast(pl.Int64)
            .clip(0, DENSITY_ROWS - 1)
            .alias("row"),
            (pl.col("wind_speed") / DENSITY_STEP)
            .floor()
            .cast(pl.Int64)
            .clip(0, columns - 1)
            .alias("column"),
        )
        .group_by("row", "column")
        .len()
    )
    z: list[list[int | None]] = [[None] * columns for _ in range(DENSITY_ROWS)]
    for row, column, count in cells.iter_rows():
        z[row][column] = count
    return {
        "x0": DENSITY_STEP / 2,
        "dx": DENSITY_STEP,
        "y0": low + step_y / 2,
        "dy": step_y,
        "z": z,
        "windows": pairs.height,
    }


# -- the wind rose: how often the wind came from each sector, by speed ------------------------

#: The rose's direction sectors (the first centred on north) and its speed classes' lower edges
#: (m/s; the last class is open).
ROSE_SECTORS = 16
ROSE_SPEEDS = (0.0, 4.0, 8.0, 12.0, 16.0)


def rose_signal(settings: Settings) -> str | None:
    """The direction the wind rose is drawn from: the mean of an aggregated unsigned angle
    (``wind_direction`` first, then any with ``wind`` in its name, then the first), when
    ``wind_speed_mean`` is aggregated too; None: no rose."""
    rollup = settings.rollup
    if catalog.signal_name("wind_speed", "mean") not in rollup.signals:
        return None
    angles = [
        v
        for v in rollup.variables
        if rollup.kind(v) is catalog.SignalKind.ANGLE and "mean" in rollup.aggregations[v]
    ]
    if not angles:
        return None
    ranked = sorted(angles, key=lambda v: (v != "wind_direction", "wind" not in v))
    return catalog.signal_name(ranked[0], "mean")


def _speed_classes() -> list[str]:
    edges = [f"{e:g}" for e in ROSE_SPEEDS]
    return [f"{lo}-{hi}" for lo, hi in pairwise(edges)] + [f">{edges[-1]}"]


def wind_rose(pairs: pl.DataFrame, signal: str) -> dict[str, Any]:
    """Windows counted by direction sector and speed class from ``direction, speed`` pairs (the
    10-minute means): ``counts[class][sector]`` and the same as a percentage of all windows.

    Sector k covers [k w - w/2, k w + w/2) degrees, w = 360 / ROSE_SECTORS (sector 0 is north,
    centred on 0); a speed falls in the class whose lower edge it reaches."""
    width = 360.0 / ROSE_SECTORS
    cells = (
        pairs.select(
            (((pl.col("direction") + width / 2) % 360.0) / width)
            .floor()
            .cast(pl.Int64)
            .clip(0, ROSE_SECTORS - 1)
            .alias("sector"),
            pl.sum_horizontal(
                [(pl.col("speed") >= edge).cast(pl.Int64) for edge in ROSE_SPEEDS[1:]]
            ).alias("speed_class"),
        )
        .group_by("speed_class", "sector")
        .len()
    )
    counts = [[0] * ROSE_SECTORS for _ in ROSE_SPEEDS]
    for speed_class, sector, count in cells.iter_rows():
        counts[speed_class][sector] = count
    total = pairs.height
    return {
        "signal": signal,
        "sector_width": width,
        "directions": [k * width for k in range(ROSE_SECTORS)],
        "speed_classes": _speed_classes(),
        "counts": counts,
        "percent": [[round(100.0 * c / total, 3) if total else 0.0 for c in row] for row in counts],
        "windows": total,
    }


async def _rose(
    session: TargetSession, settings: Settings, turbine: str, start: datetime, end: datetime
) -> dict[str, Any] | None:
    """The turbine's wind rose over ``[start, end)``, or None where no direction is aggregated."""
    signal = rose_signal(settings)
    if signal is None or not session.ready:
        return None
    speed = catalog.signal_name("wind_speed", "mean")
    both = await signal_pairs(session, signal, speed, start, end, turbines=[turbine])
    pairs = both.select(pl.col(signal).alias("direction"), pl.col(speed).alias("speed")).drop_nans()
    return wind_rose(pairs, signal)


async def turbine_view(
    session: TargetSession,
    settings: Settings,
    turbine: str,
    start: datetime,
    end: datetime,
    *,
    points: int = DEFAULT_POINTS,
    cache: CurveCache | None = None,
) -> bytes:
    """One turbine over ``[start, end)`` as compact JSON: the wind speed and power series (mean,
    min, max; null where nothing is held; a min or max the settings do not aggregate is left
    out, and the page then draws no band), its binned power curve, its windows (as points, or as a
    density above MAX_CLOUD_POINTS), the farm's median curve and its wind rose (null without an
    aggregated direction: :func:`rose_signal`).

    Up to ``points`` windows the series are every window; beyond, per bucket (``resolution``) the
    mean of the means, the lowest minimum and the highest maximum, computed by the database: the
    min-max band keeps every peak, and a year is a few thousand points instead of 52 k."""
    wanted = [
        catalog.signal_name(v, a)
        for v in ("wind_speed", "power")
        for a in ("mean", "min", "max")
        if catalog.signal_name(v, a) in settings.etl_signals
    ]
    bucket = resolution(start, end, settings.window, points)
    step = bucket or settings.window
    series = pl.DataFrame(
        schema={"timestamp": pl.Datetime("us"), **dict.fromkeys(wanted, pl.Float64)}
    )
    pairs = pl.DataFrame(schema={"wind_speed": pl.Float64, "power": pl.Float64})
    curves = None
    wind, power = catalog.signal_name("wind_speed", "mean"), catalog.signal_name("power", "mean")
    if session.ready and wanted:
        sql = queries.series_sql(
            wanted,
            turbine,
            start,
            end,
            bucket=bucket,
            lows=[n for n in wanted if n.endswith("_min")],
            highs=[n for n in wanted if n.endswith("_max")],
        )
        long = await session.frame(sql)
        if long.height:
            series = (
                long.pivot(on="signal", index="timestamp", values="value")
                .sort("timestamp")
                .upsample("timestamp", every=catalog.polars_duration(step))
            )
        if wind in wanted and power in wanted:
            own_pairs = await signal_pairs(session, wind, power, start, end, turbines=[turbine])
            pairs = own_pairs.sort("timestamp").select(
                pl.col(wind).alias("wind_speed"), pl.col(power).alias("power")
            )
            key = (catalog.naive_utc(start), catalog.naive_utc(end), wind, power)
            curves = cache.get(key) if cache is not None else None
            if curves is None:
                farm_pairs = await signal_pairs(session, wind, power, start, end)
                curves = _curves(
                    power_bins(
                        farm_pairs.select(
                            "turbine",
                            pl.col(wind).alias("wind_speed"),
                            pl.col(power).alias("power"),
                        ),
                        per_turbine=True,
                    )
                )
                if cache is not None:
                    cache.put(key, curves)
    valid = _curves(curves)
    own = power_bins(pairs)
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
        f'"resolution_minutes":{step.total_seconds() / 60!r}',
        f'"decimated":{"true" if bucket is not None else "false"}',
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
    if pairs.height <= MAX_CLOUD_POINTS:
        parts.append(
            '"cloud":{'
            f'"wind_speed":{_numbers(pairs["wind_speed"], 3)},'
            f'"power":{_numbers(pairs["power"], 2)}'
            "}"
        )
        parts.append('"density":null')
    else:
        parts.append('"cloud":null')
        parts.append('"density":' + json.dumps(density(pairs), separators=(",", ":")))
    parts.append(f'"windows":{pairs.height}')
    parts.append(
        '"farm_median":{'
        f'"wind_speed":{_numbers(farm["wind_speed"], 3)},"power":{_numbers(farm["power"], 2)},'
        f'"turbines":{_numbers(farm["turbines"])}'
        "}"
    )
    parts.append(f'"bin_width":{BIN_WIDTH!r}')
    rose = await _rose(session, settings, turbine, start, end)
    parts.append('"rose":' + json.dumps(rose, separators=(",", ":")))
    return ("{" + ",".join(parts) + "}").encode()


# -- the farm's numbers: the daily figures over a range, availability, lost production -------------

#: The farm table's columns, from the summed daily figures.
FARM_COLUMNS = (
    "turbine",
    "energy_kwh",
    "capacity_factor",
    "availability_time",
    "availability_energy",
    "lost_production_kwh",
    "coverage",
)


def _hint(command: str, first: date, last: date) -> str:
    """How to compute what a figure lacks, for the range shown."""
    return (
        f"No {command} for {first.isoformat()} to {last.isoformat()}: compute them with "
        f"`windpipe {command} --start {first.isoformat()} --end {last.isoformat()}`."
    )


def _records(frame: pl.DataFrame, digits: int = 4) -> list[dict[str, Any]]:
    """The rows of ``frame`` as JSON-ready dicts (floats rounded, NaN as null)."""
    rows = []
    for row in frame.iter_rows(named=True):
        rows.append(
            {
                k: (
                    None
                    if isinstance(v, float) and not math.isfinite(v)
                    else round(v, digits)
                    if isinstance(v, float)
                    else v.isoformat()
                    if isinstance(v, date)
                    else v
                )
                for k, v in row.items()
            }
        )
    return rows


def _ratio_matrix(
    rows: pl.DataFrame, column: str, turbines: list[str], days: list[date]
) -> list[list[float | None]]:
    """A turbines x days matrix of a ratio (None where no figure, or an empty one, is stored)."""
    cells = {(t, d): v for t, d, v in rows.select("turbine", "day", column).iter_rows()}
    return [
        [None if cells.get((t, d)) is None else round(float(cells[(t, d)]), 4) for d in days]
        for t in turbines
    ]


def farm_table(rows: pl.DataFrame) -> pl.DataFrame:
    """Each turbine's period from its daily figures (``/kpis`` rows without the farm's), ranked
    by production-based availability, lowest first (who is behind; none last), then the farm's
    period (``*``): sums, with the ratios recomputed from them (``availability.summarise``)."""
    from windpipe.analytics.availability import summarise

    turbines = summarise(rows, ["turbine"]).sort("availability_energy", "turbine", nulls_last=True)
    farm = summarise(rows, [])
    return pl.concat([turbines, farm], how="vertical").select(FARM_COLUMNS)


async def farm_kpis(
    session: TargetSession, settings: Settings, first: date, last: date
) -> dict[str, Any]:
    """The farm's numbers on the UTC days ``[first, last]`` from the stored daily figures: the
    farm table (:func:`farm_table`), both availabilities per (turbine, day), lost production per
    turbine and category; ``ready`` false (with the command to run) when none are stored."""
    from windpipe.analytics.availability import KPI_SCHEMA

    days = catalog.days_between(first, last)
    answer: dict[str, Any] = {
        "first": first.isoformat(),
        "last": last.isoformat(),
        "days": [d.isoformat() for d in days],
        "ready": False,
        "hint": _hint("kpis", first, last),
    }
    if (
        not session.ready
        or not (await session.query(queries.HAS_KPIS_SQL)).column("ready")[0].as_py()
    ):
        return answer
    kpis = (await session.frame(queries.kpis_sql(first, last))).select(
        [pl.col(n).cast(t) for n, t in KPI_SCHEMA.items()]
    )
    if kpis.height == 0:
        return answer
    losses = await session.frame(queries.kpi_losses_sql(first, last))
    rows = kpis.filter(pl.col("turbine") != catalog.FARM)
    turbines = sorted(rows["turbine"].unique().to_list())
    table = farm_table(rows)
    summed = {
        (t, c): float(v or 0.0)
        for t, c, v in losses.group_by("turbine", "category")
        .agg(pl.col("lost_kwh").sum())
        .iter_rows()
    }
    categories = [
        c for c in catalog.EVENT_CATEGORIES if any(summed.get((t, c), 0.0) > 0 for t in turbines)
    ]
    lost = {c: [round(summed.get((t, c), 0.0), 3) for t in turbines] for c in categories}
    answer.update(
        ready=True,
        hint=None,
        table=_records(table),
        turbines=turbines,
        availability_time=_ratio_matrix(rows, "availability_time", turbines, days),
        availability_energy=_ratio_matrix(rows, "availability_energy", turbines, days),
        lost_by_category={"turbines": turbines, "categories": categories, "kwh": lost},
    )
    return answer


# -- IEC power curves for the dashboard: the windows used, the bins, the farm's deviations -------


@dataclass(frozen=True)
class CurveData:
    """What the IEC curves of a range were computed from, and the curves."""

    windows: pl.DataFrame
    used: pl.DataFrame
    bins: pl.DataFrame
    complete: dict[str, bool]
    events: pl.DataFrame


async def iec_curves(
    session: TargetSession,
    reader: ReadOnlyPool,
    settings: Settings,
    turbines: list[str],
    start: datetime,
    end: datetime,
) -> CurveData:
    """The IEC 61400-12-1 curves of ``turbines`` over ``[start, end)`` as ``GET /power-curves``
    computes them (the same windows, events, flags and function), with the windows they read
    (``windows``: every held window; ``used``: the full-performance, complete, unflagged ones)."""
    from windpipe.analytics.power_curve import (
        CurveConfig,
        power_curves,
        sites_of,
        usable_windows,
    )
    from windpipe.analytics.windows import wide_windows
    from windpipe.source.events import select_events_sql

    config = CurveConfig.of(settings)
    long_schema: dict[str, Any] = {
        "turbine": pl.String,
        "timestamp": pl.Datetime("us"),
        "signal": pl.String,
        "value": pl.Float64,
    }
    flag_schema: dict[str, Any] = {
        "turbine": pl.String,
        "timestamp": pl.Datetime("us"),
        "flag": pl.String,
        "signal": pl.String,
    }
    long = pl.DataFrame(schema=long_schema)
    marks = pl.DataFrame(schema=flag_schema)
    if session.ready and turbines:
        registered = set((await session.query(queries.SIGNALS_SQL)).column("name").to_pylist())
        names = [s for s in config.signals if s in registered]
        if names:
            # wide_windows pivots and sorts them: no need for the database to sort them first
            long = await session.frame(
                queries.aggregates_sql(names, start, end, turbines=turbines, ordered=False)
            )
        if (await session.query(queries.HAS_FLAGS_SQL)).column("ready")[0].as_py():
            marks = await session.frame(queries.flags_sql(start, end, turbines=turbines))
    events = pl.DataFrame(
        schema={
            "turbine": pl.String,
            "start": pl.Datetime("us", "UTC"),
            "end": pl.Datetime("us", "UTC"),
            "code": pl.String,
            "message": pl.String,
        }
    )
    if turbines:
        try:
            lease = await reader.lease()
            try:
                found = pl.from_arrow(
                    await lease.query(select_events_sql(start, end, turbines=turbines))
                )
            finally:
                lease.release()
            assert isinstance(found, pl.DataFrame)
            events = found
        except (SourceUnavailableError, SourceQueryError):
            pass  # no source: every held window counts as full performance
    windows = wide_windows(long, config.signals).with_columns(
        pl.col("timestamp").cast(pl.Datetime("us"))
    )
    for name in config.signals[:2]:
        if name not in windows.columns:
            windows = windows.with_columns(pl.lit(None, pl.Float64).alias(name))
    held = windows.select("turbine", "timestamp")
    codes = settings.event_categories
    categories = catalog.window_categories(events, held, held, codes, window=config.window)
    sites = sites_of(settings.fleet, turbines)
    curves = power_curves(windows, categories, marks, sites, config)
    used = usable_windows(windows, categories, marks, config)
    return CurveData(
        windows=windows,
        used=used,
        bins=curves.bins,
        complete={t: c.complete for t, c in curves.completeness.items()},
        events=events,
    )


def curve_deviations(bins: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The farm's median curve and each turbine's deviation from it.

    ``bins``: the drawn bins (``turbine``, ``bin``, ``windows``, ``power``). The farm's median
    per bin: the median of the turbines' mean powers, where at least two turbines draw the bin.
    A turbine's deviation D = sum_b n_b (P_b - M_b) / sum_b n_b M_b over its bins b with a farm
    median M_b > 0 (n_b its windows, P_b its mean power): the energy its windows produced beside
    the energy the farm's median curve gives the same windows, relative (-0.05: 5 % behind).
    Returns (median: bin, power, turbines; ranking: turbine, deviation, bins, windows), the
    ranking lowest first."""
    drawn = bins.filter(pl.col("drawn"))
    median = (
        drawn.group_by("bin")
        .agg(pl.col("power").median(), pl.col("turbine").n_unique().alias("turbines"))
        .filter(pl.col("turbines") >= 2)
        .sort("bin")
    )
    joined = drawn.join(
        median.select("bin", pl.col("power").alias("median")), on="bin", how="inner"
    ).filter(pl.col("median") > 0)
    n = pl.col("windows").cast(pl.Float64)
    ranking = (
        joined.group_by("turbine")
        .agg(
            ((n * (pl.col("power") - pl.col("median"))).sum() / (n * pl.col("median")).sum()).alias(
                "deviation"
            ),
            pl.len().alias("bins"),
            pl.col("windows").sum().cast(pl.Int64).alias("windows"),
        )
        .sort("deviation", "turbine")
    )
    return median, ranking


async def farm_curves(
    session: TargetSession,
    reader: ReadOnlyPool,
    settings: Settings,
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    """The farm's median IEC curve over ``[start, end)`` and the turbines ranked by their
    deviation from it (:func:`curve_deviations`)."""
    turbines = await known_turbines(session, settings, list(await source_spans(reader)))
    data = await iec_curves(session, reader, settings, turbines, start, end)
    median, ranking = curve_deviations(data.bins)
    return {
        "median": {
            "bin": median["bin"].to_list(),
            "power": [round(p, 2) for p in median["power"].to_list()],
            "turbines": median["turbines"].to_list(),
        },
        "ranking": _records(ranking, 5),
    }


#: The IEC curve's windows are sent one per occupied cell of a grid this many cells wide (wind
#: speed) and high (power) over every window's range: a cell is finer than the chart's 3-pixel
#: marker, so only points drawn on top of one another are left out, and every outlier is kept.
CURVE_GRID = (400, 200)
#: At most this many windows per set even so (every k-th occupied cell beyond).
MAX_CURVE_POINTS = 5000


def curve_points(
    every: pl.DataFrame, used: pl.DataFrame, x: str, y: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The windows the IEC curve's chart draws, as (every, used): of the full-performance ones
    (``used``) the first per occupied cell of :data:`CURVE_GRID` over the range of ``every``'s
    ``x`` and ``y``; of ``every`` the first per cell that no full-performance window occupies
    (the others would be drawn under a full-performance point); at most
    :data:`MAX_CURVE_POINTS` each."""
    if every.height == 0:
        return every, used
    cells = []
    for name, column, count in zip((x, y), ("_column", "_row"), CURVE_GRID, strict=True):
        low = float(every[name].min())  # type: ignore[arg-type]
        span = max(float(every[name].max()) - low, 1e-9)  # type: ignore[arg-type]
        cells.append(((pl.col(name) - low) / span * count).floor().cast(pl.Int32).alias(column))

    def first_per_cell(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(cells).unique(["_column", "_row"], keep="first")

    used_cells = first_per_cell(used)
    every_cells = first_per_cell(every).join(
        used_cells.select("_column", "_row"), on=["_column", "_row"], how="anti"
    )
    return tuple(  # type: ignore[return-value]
        frame.sort("timestamp")
        .drop("_column", "_row")
        .gather_every(max(1, math.ceil(frame.height / MAX_CURVE_POINTS)))
        for frame in (every_cells, used_cells)
    )


async def turbine_curve(
    session: TargetSession,
    reader: ReadOnlyPool,
    settings: Settings,
    turbine: str,
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    """One turbine's IEC curve over ``[start, end)``: its bins (mean normalised speed, mean and
    standard deviation of power), the warranted curve when configured, its full-performance
    windows beside every held window (points), and its events with their categories."""
    from windpipe.analytics.windows import POWER, WIND_SPEED, mean_of

    data = await iec_curves(session, reader, settings, [turbine], start, end)
    wind, power = mean_of(WIND_SPEED), mean_of(POWER)
    every = data.windows.filter(
        (pl.col("turbine") == turbine) & pl.col(wind).is_not_null() & pl.col(power).is_not_null()
    ).sort("timestamp")
    used = data.used.filter(pl.col("turbine") == turbine).sort("timestamp")
    bins = data.bins.filter((pl.col("turbine") == turbine) & pl.col("drawn"))
    every_shown, used_shown = curve_points(every, used, wind, power)
    fleet = {t.id: t for t in settings.fleet}
    warranted = fleet[turbine].power_curve if turbine in fleet else None
    codes = settings.event_categories
    events = [
        {
            "start": _iso(_naive(e["start"])),
            "end": _iso(_naive(e["end"])) if e["end"] is not None else None,
            "code": e["code"],
            "category": codes.get(e["code"], "forced_outage"),
            "known_code": e["code"] in codes,
            "message": e["message"],
        }
        for e in data.events.filter(pl.col("turbine") == turbine)
        .sort("start")
        .iter_rows(named=True)
    ]

    def points(frame: pl.DataFrame, total: int) -> dict[str, Any]:
        return {
            "wind_speed": [round(v, 3) for v in frame[wind].to_list()],
            "power": [round(v, 2) for v in frame[power].to_list()],
            "windows": total,
        }

    return {
        "turbine": turbine,
        "start": _iso(catalog.naive_utc(start)),
        "end": _iso(catalog.naive_utc(end)),
        "bins": {
            "bin": bins["bin"].to_list(),
            "wind_speed": [round(v, 3) for v in bins["wind_speed"].to_list()],
            "power": [round(v, 2) for v in bins["power"].to_list()],
            "power_std": [None if v is None else round(v, 2) for v in bins["power_std"].to_list()],
            "windows": bins["windows"].to_list(),
        },
        "complete": data.complete.get(turbine, False),
        "warranted": None
        if warranted is None
        else {"wind_speed": [p[0] for p in warranted], "power": [p[1] for p in warranted]},
        "all": points(every_shown, every.height),
        "full_performance": points(used_shown, used.height),
        "events": events,
    }


# -- quality flags per turbine, day and flag -----------------------------------------------------


async def flag_counts(session: TargetSession, first: date, last: date) -> dict[str, Any]:
    """The stored quality flags on the UTC days ``[first, last]`` counted per (turbine, day,
    flag) (a window with a flag on two signals counts twice); ``ready`` false with the command to
    run when the target holds no flags for them."""
    answer: dict[str, Any] = {"ready": False, "hint": _hint("flags", first, last), "rows": []}
    if (
        not session.ready
        or not (await session.query(queries.HAS_FLAGS_SQL)).column("ready")[0].as_py()
    ):
        return answer
    flagged = await session.frame(queries.flag_days_sql(first, last))
    if flagged.height == 0:
        return answer
    counts = await session.frame(queries.flag_counts_sql(first, last + catalog.DAY))
    answer.update(
        ready=True,
        hint=None,
        flagged_days=flagged.height,
        rows=_records(counts.sort("turbine", "day", "flag")),
        total=int(counts["flags"].sum()) if counts.height else 0,
    )
    return answer
