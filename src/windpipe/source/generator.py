"""A synthetic wind farm: plausible wind, power and temperature, deterministic per seed and day.

Wind is the magnitude of two smooth Gaussian components (u, v), so its marginal is a Rayleigh — a
Weibull of shape 2 — scaled to ~8.5 m/s and modulated by a daily cycle. The farm shares a wind field
(a slow 6 h and a medium 20 min random curve) that reaches each turbine a few tens of seconds early
or late; each turbine adds its own eddies (a 10 min curve) and gusts (white turbulence in
proportion to the wind). Curves are built from random knots drawn per UTC day, so any timestamp
gets the same value whichever period is generated, and a turbine's randomness is seeded from its
id, so it gets the same values whichever farm it is generated with. On top of the power curve:
downtime episodes (stopped for hours while the wind blows), the turbine's own consumption whenever
it does not produce (small negative power), and sensor gaps (missing rows).
"""

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TypedDict, Unpack

import numpy as np
import pyarrow as pa

from windpipe.catalog import days_touched, utc_midnight

WEIBULL_SCALE = 8.5  # m/s, so a mean of ~7.5 m/s at hub height
CUT_IN, RATED_SPEED, CUT_OUT = 3.0, 12.0, 25.0  # m/s
RATED_POWER = 2000.0  # kW
_DAY = 86_400
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The shared field: (knot spacing in seconds, share of variance) per smooth component.
_SHARED = ((6 * 3600, 0.72), (20 * 60, 0.25))
# Each turbine's own eddies of ~10 min, which survive 10-minute means: their share sets the
# correlation of 10-minute mean wind between turbines (~0.95).
_LOCAL_SPACING, _LOCAL = 10 * 60, 0.03
# Gusts: white turbulence proportional to the wind (a turbulence intensity), per sample.
_GUSTS = 0.08
_MAX_LAG = 45.0  # s, either way: the spread of arrival times of a gust across the farm
# Downtime: episodes start at random (per turbine and day) and last hours; ~2.5 % of the time.
_DOWN_PER_DAY, _DOWN_MIN_S, _DOWN_MEAN_S, _DOWN_MAX_DAYS = 0.2, 1800.0, 3 * 3600.0, 2
# Own consumption (kW) when not producing: mostly ~1 kW, now and then a yaw or heater burst.
_CONSUMPTION_MEDIAN, _CONSUMPTION_SIGMA, _CONSUMPTION_MAX, _CONSUMPTION_OFF = 1.0, 0.8, 19.5, 0.07
# Random streams: per farm (seeded by seed only) and per turbine (seeded by seed and id).
_U, _V, _TEMPERATURE = 1, 2, 30
_NOISE, _DOWN, _GUSTS_STREAM, _GAPS = 7, 8, 19, 99

_SCHEMA = pa.schema(
    [
        pa.field("turbine", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz="UTC")),
        pa.field("wind_speed", pa.float64()),
        pa.field("power", pa.float64()),
        pa.field("ambient_temperature", pa.float64()),
        # Not in the default catalog (the brief's table has no such column): declaring it
        # there, with the column in the table, is all it takes to serve and aggregate it.
        pa.field("wind_direction", pa.float64()),
    ]
)


@dataclass(frozen=True)
class TurbineSpec:
    """A synthetic turbine: its id, power curve and metadata."""

    id: str
    rated_power_kw: float = RATED_POWER
    cut_in: float = CUT_IN  # m/s
    rated_speed: float = RATED_SPEED
    cut_out: float = CUT_OUT
    hub_height_m: float | None = None
    latitude: float | None = None
    longitude: float | None = None


DEFAULT_TURBINE = TurbineSpec("WTG01")
#: The fleet a generator makes when it is not given one.
DEFAULT_FLEET = (DEFAULT_TURBINE,)


def farm(n: int) -> list[TurbineSpec]:
    """``WTG01``..``WTGnn``: WTG01 is the default turbine, the others have slightly other curves."""
    if n < 1:
        raise ValueError(f"a farm of {n} turbines; give at least 1")
    specs = [DEFAULT_TURBINE]
    for i in range(2, n + 1):
        turbine_id = f"WTG{i:02d}"
        # Each turbine's curve comes from its id, so WTG03 is the same in a farm of 3 or of 30.
        cut_in, rated = np.random.default_rng(_id_key(turbine_id)).uniform(-1.0, 1.0, 2)
        specs.append(
            TurbineSpec(
                turbine_id,
                cut_in=round(CUT_IN + 0.25 * float(cut_in), 2),
                rated_speed=round(RATED_SPEED + 0.6 * float(rated), 2),
            )
        )
    return specs


def power_curve(wind_speed: np.ndarray, spec: TurbineSpec = DEFAULT_TURBINE) -> np.ndarray:
    """Ideal power (kW) for each wind speed: cubic between cut-in and rated, flat to cut-out."""
    v = np.asarray(wind_speed, dtype=np.float64)
    frac = (v**3 - spec.cut_in**3) / (spec.rated_speed**3 - spec.cut_in**3)
    p = spec.rated_power_kw * np.clip(frac, 0.0, 1.0)
    return np.where((v < spec.cut_in) | (v >= spec.cut_out), 0.0, p)


def _id_key(turbine_id: str) -> int:
    # A stable hash: Python's hash() of a str changes from one process to the next.
    return zlib.crc32(turbine_id.encode())


def _rng(seed: int, day: int, stream: int, turbine: int | None = None) -> np.random.Generator:
    key = [seed & 0xFFFFFFFF, day + 1_000_000, stream]
    return np.random.default_rng(key if turbine is None else [*key, turbine])


def _smooth_component(
    seconds: np.ndarray, day: int, stream: int, spacing: int, rng_key: tuple[int, int | None]
) -> np.ndarray:
    """A unit-variance Gaussian curve through random knots every ``spacing`` seconds.

    ``seconds`` counts from ``day`` 00:00 and may stray up to a day either side of it (a lagged
    turbine reads the field before midnight); knots come from the day they fall in.
    """
    seed, turbine = rng_key
    per_day = _DAY // spacing
    knots = np.concatenate(
        [_rng(seed, d, stream, turbine).standard_normal(per_day) for d in (day - 1, day, day + 1)]
        + [_rng(seed, day + 2, stream, turbine).standard_normal(1)]
    )
    pos = seconds / spacing + per_day
    i = np.floor(pos).astype(np.int64)
    w = 0.5 - 0.5 * np.cos(np.pi * (pos - i))  # smooth step between knots
    # Renormalise so the blend of two independent N(0, 1) knots stays N(0, 1) everywhere.
    return ((1 - w) * knots[i] + w * knots[i + 1]) / np.sqrt((1 - w) ** 2 + w**2)


def _components(
    seconds: np.ndarray, day: int, seed: int, turbine: int, lag: float
) -> tuple[np.ndarray, np.ndarray]:
    """One turbine's smooth (u, v): the shared field ``lag`` seconds late, plus its own eddies."""
    out = []
    for stream in (_U, _V):
        field = np.zeros(seconds.shape)
        for k, (spacing, share) in enumerate(_SHARED):
            field += math.sqrt(share) * _smooth_component(
                seconds - lag, day, stream * 10 + k, spacing, (seed, None)
            )
        field += math.sqrt(_LOCAL) * _smooth_component(
            seconds, day, stream * 10 + 5, _LOCAL_SPACING, (seed, turbine)
        )
        out.append(field)
    return out[0], out[1]


def _runs_mask(n: int, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """True inside any ``[start, end)`` index run, without a loop over the runs."""
    edges = np.zeros(n + 1, dtype=np.int64)
    np.add.at(edges, np.clip(starts, 0, n), 1)
    np.add.at(edges, np.clip(ends, 0, n), -1)
    return np.cumsum(edges[:n]) > 0


def _downtime(seconds: np.ndarray, day: int, seed: int, turbine: int) -> np.ndarray:
    """Whether the turbine is stopped: episodes drawn per day they start, lasting hours.

    Independent of the step, and an episode that starts before midnight carries on after it.
    """
    starts, ends = [], []
    for d in range(day - _DOWN_MAX_DAYS, day + 1):
        rng = _rng(seed, d, _DOWN, turbine)
        count = rng.poisson(_DOWN_PER_DAY)
        begin = rng.uniform(0, _DAY, count) + (d - day) * _DAY
        length = _DOWN_MIN_S + rng.gamma(2.0, (_DOWN_MEAN_S - _DOWN_MIN_S) / 2.0, count)
        length = np.minimum(length, _DOWN_MAX_DAYS * _DAY)
        starts.append(begin)
        ends.append(begin + length)
    lo = np.searchsorted(seconds, np.concatenate(starts), side="left")
    hi = np.searchsorted(seconds, np.concatenate(ends), side="left")
    return _runs_mask(seconds.size, lo, hi)


def _gap_mask(n: int, gap_rate: float, rng: np.random.Generator) -> np.ndarray:
    """Rows to keep: ``gap_rate`` of them removed in short runs (mean 5 samples)."""
    if gap_rate <= 0.0:
        return np.ones(n, dtype=bool)
    mean_run = 5
    runs = max(1, round(n * gap_rate / mean_run))
    starts = rng.integers(0, n, size=runs)
    lengths = rng.geometric(1.0 / mean_run, size=runs)
    return ~_runs_mask(n, starts, starts + lengths)


def _turbine_day(
    spec: TurbineSpec,
    seconds: np.ndarray,
    day: int,
    *,
    seed: int,
    step: int,
    gap_rate: float,
    diurnal: np.ndarray,
    temperature: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """One turbine's columns for one day, gaps removed: stamps offset, wind, power, temp, dir."""
    turbine = _id_key(spec.id)
    traits = np.random.default_rng([seed & 0xFFFFFFFF, turbine]).uniform(-1.0, 1.0, 4)
    # Where the turbine stands along the wind comes from its id, not from the farm it is generated
    # with (lat/lon would need the farm's other turbines to give a relative position).
    lag = _MAX_LAG * traits[0]
    exposure = 1.0 + 0.03 * traits[1]  # terrain and wakes: some turbines see a little more wind
    u, v = _components(seconds, day, seed, turbine, lag)
    gusts = _rng(seed, day, _GUSTS_STREAM + step * 100, turbine).standard_normal(seconds.shape)
    wind = exposure * WEIBULL_SCALE / math.sqrt(2.0) * diurnal * np.hypot(u, v)
    # Rounded first, so the published wind and power agree on the side of cut-in and cut-out.
    wind = np.round(np.maximum(wind * (1.0 + _GUSTS * gusts), 0.0), 3)
    # Meteorological convention: the direction the wind blows from, degrees clockwise from north;
    # each wind vane is aligned a little differently.
    direction = np.degrees(np.arctan2(-u, -v)) + 2.0 * traits[2]

    rng = _rng(seed, day, _NOISE + step * 100, turbine)
    ideal = power_curve(wind, spec)
    running = (wind >= spec.cut_in) & (wind < spec.cut_out)
    producing = running & ~_downtime(seconds, day, seed, turbine)
    noisy = np.clip(ideal * (1.0 + 0.03 * rng.standard_normal(wind.shape)), 0.0, None)
    consumption = np.minimum(
        _CONSUMPTION_MEDIAN * np.exp(_CONSUMPTION_SIGMA * rng.standard_normal(wind.shape)),
        _CONSUMPTION_MAX,
    ) * (rng.random(wind.shape) >= _CONSUMPTION_OFF)
    power = np.where(producing, np.minimum(noisy, spec.rated_power_kw), -consumption)
    temp = temperature + 0.3 * traits[3] + 0.05 * rng.standard_normal(wind.shape)

    keep = _gap_mask(seconds.size, gap_rate, _rng(seed, day, _GAPS + step * 100, turbine))
    direction = np.round(np.mod(direction[keep], 360.0), 1)
    return (
        (seconds[keep] * 1_000_000).astype(np.int64),
        wind[keep],
        np.round(power[keep], 2) + 0.0,  # + 0.0 turns a rounded -0.0 into 0.0
        np.round(temp[keep], 2),
        np.where(direction >= 360.0, direction - 360.0, direction),
    )


def generate_day(
    day: date,
    *,
    turbines: Sequence[TurbineSpec] = DEFAULT_FLEET,
    step_seconds: int = 60,
    seed: int = 42,
    gap_rate: float = 0.0,
) -> pa.Table:
    """One UTC day of samples every ``step_seconds`` per turbine, sorted by turbine then time.

    ``gap_rate`` removes that share of samples in short contiguous runs (missing rows), to mimic
    sensor outages.
    """
    if step_seconds < 1 or _DAY % step_seconds:
        raise ValueError(f"step of {step_seconds} s does not divide a day; use e.g. 1, 10, 60, 600")
    if not 0.0 <= gap_rate < 1.0:
        raise ValueError(f"gap rate {gap_rate} is outside [0, 1)")
    ids = [t.id for t in turbines]
    if not ids:
        raise ValueError("no turbines to generate; give at least one TurbineSpec")
    if len(set(ids)) != len(ids):
        raise ValueError(f"turbine ids {ids} are not unique")
    ordinal = day.toordinal()
    seconds = np.arange(0, _DAY, step_seconds, dtype=np.float64)
    hours = seconds / 3600.0
    diurnal = 1.0 + 0.15 * np.sin(2 * np.pi * (hours - 9.0) / 24.0)  # windier in the afternoon
    seasonal = 10.0 - 8.0 * math.cos(2 * np.pi * (ordinal - date(2000, 1, 15).toordinal()) / 365.25)
    slow = _smooth_component(seconds, ordinal, _TEMPERATURE, 6 * 3600, (seed, None))
    temperature = seasonal + 5.0 * np.sin(2 * np.pi * (hours - 9.0) / 24.0) + 1.5 * slow

    parts = [
        _turbine_day(
            spec,
            seconds,
            ordinal,
            seed=seed,
            step=step_seconds,
            gap_rate=gap_rate,
            diurnal=diurnal,
            temperature=temperature,
        )
        for spec in turbines
    ]
    columns = [np.concatenate(c) for c in zip(*parts, strict=True)]
    start_us = int((utc_midnight(day) - _EPOCH).total_seconds()) * 1_000_000
    counts = [p[0].size for p in parts]
    return pa.Table.from_arrays(
        [
            _turbine_column(ids, counts),
            _to_arrow(start_us + columns[0], pa.timestamp("us", tz="UTC")),
            *(_to_arrow(c) for c in columns[1:]),
        ],
        schema=_SCHEMA,
    )


def _to_arrow(values: np.ndarray, type_: pa.DataType = pa.float64()) -> pa.Array:
    """Wrap a contiguous ndarray without a copy; ``pa.array`` would import pandas (~1 s) first."""
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(type_, len(values), [None, pa.py_buffer(values)])


def _turbine_column(ids: Sequence[str], counts: Sequence[int]) -> pa.Array:
    """Each id repeated ``count`` times, as a string array built from its buffers."""
    encoded = [i.encode() for i in ids]
    sizes = np.repeat([len(e) for e in encoded], counts).astype(np.int32)
    offsets = np.zeros(sizes.size + 1, dtype=np.int32)
    np.cumsum(sizes, out=offsets[1:])
    data = b"".join(e * c for e, c in zip(encoded, counts, strict=True))
    return pa.Array.from_buffers(
        pa.string(), sizes.size, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def split_by_turbine(table: pa.Table) -> dict[str, pa.Table]:
    """Each turbine's rows as a zero-copy slice, in the table's order (rows grouped by turbine)."""
    column = table["turbine"].combine_chunks()
    offsets = np.frombuffer(
        column.buffers()[1], dtype=np.int32, count=len(column) + 1, offset=column.offset * 4
    )
    data = column.buffers()[2]

    def id_at(row: int) -> bytes:
        return data[int(offsets[row]) : int(offsets[row + 1])].to_pybytes()

    # A binary search per turbine for the end of its run: no kernel (pandas) and no row loop.
    out: dict[str, pa.Table] = {}
    row, n = 0, len(column)
    while row < n:
        current = id_at(row)
        lo, hi = row + 1, n
        while lo < hi:
            mid = (lo + hi) // 2
            if id_at(mid) == current:
                lo = mid + 1
            else:
                hi = mid
        key = current.decode()
        if key in out:
            raise ValueError(f"turbine {key!r} appears in more than one run of rows")
        out[key] = table.slice(row, lo - row)
        row = lo
    return out


class Synthesis(TypedDict, total=False):
    """The options of :func:`generate_day`, which :func:`generate` passes on to it."""

    turbines: Sequence[TurbineSpec]
    step_seconds: int
    seed: int
    gap_rate: float


def generate(start: datetime, end: datetime, **options: Unpack[Synthesis]) -> pa.Table:
    """Samples in ``[start, end)`` per turbine, sorted by turbine then time: :func:`generate_day`
    of each day it touches, with the same ``options``."""
    fleet = options.get("turbines", DEFAULT_FLEET)
    per_turbine: dict[str, list[pa.Table]] = {t.id: [] for t in fleet}
    for day in days_touched(start, end):
        table = generate_day(day, **options)
        for turbine_id, rows in split_by_turbine(table).items():
            per_turbine[turbine_id].append(clip(rows, start, end))
    parts = [t for tables in per_turbine.values() for t in tables]
    return pa.concat_tables(parts) if parts else _SCHEMA.empty_table()


def clip(table: pa.Table, start: datetime, end: datetime) -> pa.Table:
    """The rows of a time-ordered table with ``start <= timestamp < end``, as a zero-copy slice.

    Binary search on the raw microseconds: pyarrow's compute kernels or scalars built from a
    ``datetime`` would import pandas (~1 s) on first use. One turbine's rows (or any time-ordered
    table): split a farm's table with :func:`split_by_turbine` first.
    """
    column = table["timestamp"].combine_chunks()
    stamps = np.frombuffer(
        column.buffers()[1], dtype=np.int64, count=len(column), offset=column.offset * 8
    )
    lo, hi = np.searchsorted(stamps, [_micros(start), _micros(end)], side="left")
    return table.slice(int(lo), int(hi - lo))


def _micros(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
