"""A synthetic wind turbine: plausible wind, power and temperature, deterministic per seed and day.

Wind is the magnitude of two independent, smooth Gaussian components (u, v), so its marginal is a
Rayleigh — a Weibull of shape 2 — scaled to ~8 m/s and modulated by a daily cycle. Each component
mixes a slow (6 h) and a medium (20 min) random curve with white turbulence; curves are built from
random knots drawn per UTC day, so any timestamp gets the same value whichever period is generated.
"""

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa

from windpipe.catalog import days_touched, utc_midnight

WEIBULL_SCALE = 8.0  # m/s
CUT_IN, RATED_SPEED, CUT_OUT = 3.0, 12.0, 25.0  # m/s
RATED_POWER = 2000.0  # kW
_DAY = 86_400
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# (knot spacing in seconds, share of variance) per smooth component; the rest is white turbulence.
_SCALES = ((6 * 3600, 0.70), (20 * 60, 0.25))
_WHITE = 0.05


@dataclass(frozen=True)
class TurbineSpec:
    """The power curve of the synthetic turbine."""

    cut_in: float = CUT_IN
    rated_speed: float = RATED_SPEED
    cut_out: float = CUT_OUT
    rated_power: float = RATED_POWER


def power_curve(wind_speed: np.ndarray, spec: TurbineSpec = TurbineSpec()) -> np.ndarray:
    """Ideal power (kW) for each wind speed: cubic between cut-in and rated, flat to cut-out."""
    v = np.asarray(wind_speed, dtype=np.float64)
    frac = (v**3 - spec.cut_in**3) / (spec.rated_speed**3 - spec.cut_in**3)
    p = spec.rated_power * np.clip(frac, 0.0, 1.0)
    return np.where((v < spec.cut_in) | (v >= spec.cut_out), 0.0, p)


def _rng(seed: int, day: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, day + 1_000_000, stream])


def _smooth_component(
    seconds: np.ndarray, day: int, seed: int, stream: int, spacing: int
) -> np.ndarray:
    """A unit-variance Gaussian curve through random knots every ``spacing`` seconds."""
    per_day = _DAY // spacing
    knots = np.concatenate(
        [
            _rng(seed, day, stream).standard_normal(per_day),
            _rng(seed, day + 1, stream).standard_normal(1),
        ]
    )
    pos = seconds / spacing
    i = np.floor(pos).astype(np.int64)
    w = 0.5 - 0.5 * np.cos(np.pi * (pos - i))  # smooth step between knots
    # Renormalise so the blend of two independent N(0, 1) knots stays N(0, 1) everywhere.
    return ((1 - w) * knots[i] + w * knots[i + 1]) / np.sqrt((1 - w) ** 2 + w**2)


def _gaussian_field(seconds: np.ndarray, day: int, seed: int, stream: int, step: int) -> np.ndarray:
    field = np.zeros(seconds.shape)
    for k, (spacing, share) in enumerate(_SCALES):
        field += math.sqrt(share) * _smooth_component(seconds, day, seed, stream * 10 + k, spacing)
    white = _rng(seed, day, stream * 10 + 9 + step * 100).standard_normal(seconds.shape)
    return field + math.sqrt(_WHITE) * white


def generate_day(
    day: date, *, step_seconds: int = 60, seed: int = 42, gap_rate: float = 0.0
) -> pa.Table:
    """One UTC day of samples every ``step_seconds``, as an Arrow table (timestamp in µs UTC).

    ``gap_rate`` removes that share of samples in short contiguous runs, to mimic outages.
    """
    if step_seconds < 1 or _DAY % step_seconds:
        raise ValueError(f"step of {step_seconds} s does not divide a day; use e.g. 1, 10, 60, 600")
    if not 0.0 <= gap_rate < 1.0:
        raise ValueError(f"gap rate {gap_rate} is outside [0, 1)")
    ordinal = day.toordinal()
    seconds = np.arange(0, _DAY, step_seconds, dtype=np.float64)
    hours = seconds / 3600.0

    u = _gaussian_field(seconds, ordinal, seed, 1, step_seconds)
    v = _gaussian_field(seconds, ordinal, seed, 2, step_seconds)
    diurnal = 1.0 + 0.15 * np.sin(2 * np.pi * (hours - 9.0) / 24.0)  # windier in the afternoon
    wind = WEIBULL_SCALE / math.sqrt(2.0) * diurnal * np.hypot(u, v)
    # Meteorological convention: the direction the wind blows from, degrees clockwise from north.
    direction = np.mod(np.degrees(np.arctan2(-u, -v)), 360.0)

    rng = _rng(seed, ordinal, 7 + step_seconds * 100)
    ideal = power_curve(wind)
    noise = 1.0 + 0.03 * rng.standard_normal(wind.shape)
    power = np.clip(ideal * noise, 0.0, RATED_POWER)

    seasonal = 10.0 - 8.0 * math.cos(2 * np.pi * (ordinal - date(2000, 1, 15).toordinal()) / 365.25)
    slow = _smooth_component(seconds, ordinal, seed, 30, 6 * 3600)
    temperature = (
        seasonal
        + 5.0 * np.sin(2 * np.pi * (hours - 9.0) / 24.0)
        + 1.5 * slow
        + 0.05 * rng.standard_normal(wind.shape)
    )

    start_us = int((utc_midnight(day) - _EPOCH).total_seconds()) * 1_000_000
    stamps = start_us + (seconds * 1_000_000).astype(np.int64)
    keep = _gap_mask(seconds.size, gap_rate, _rng(seed, ordinal, 99 + step_seconds * 100))
    return pa.table(
        {
            "timestamp": _to_arrow(stamps[keep], pa.timestamp("us", tz="UTC")),
            "wind_speed": _to_arrow(np.round(wind[keep], 3)),
            "power": _to_arrow(np.round(power[keep], 2)),
            "ambient_temperature": _to_arrow(np.round(temperature[keep], 2)),
            # Not in the default catalog (the brief's table has no such column): declaring it
            # there, with the column in the table, is all it takes to serve and aggregate it.
            "wind_direction": _to_arrow(np.round(direction[keep], 1)),
        }
    )


def _to_arrow(values: np.ndarray, type_: pa.DataType = pa.float64()) -> pa.Array:
    """Wrap a contiguous ndarray without a copy; ``pa.array`` would import pandas (~1 s) first."""
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(type_, len(values), [None, pa.py_buffer(values)])


def _gap_mask(n: int, gap_rate: float, rng: np.random.Generator) -> np.ndarray:
    keep = np.ones(n, dtype=bool)
    if gap_rate <= 0.0:
        return keep
    mean_run = 5
    runs = max(1, round(n * gap_rate / mean_run))
    starts = rng.integers(0, n, size=runs)
    lengths = rng.geometric(1.0 / mean_run, size=runs)
    for s, length in zip(starts, lengths, strict=True):
        keep[s : s + length] = False
    return keep


def generate(
    start: datetime, end: datetime, *, step_seconds: int = 60, seed: int = 42, gap_rate: float = 0.0
) -> pa.Table:
    """Samples in ``[start, end)``; a convenience over :func:`generate_day` for small periods."""
    parts = [
        clip(generate_day(day, step_seconds=step_seconds, seed=seed, gap_rate=gap_rate), start, end)
        for day in days_touched(start, end)
    ]
    return pa.concat_tables(parts)


def clip(table: pa.Table, start: datetime, end: datetime) -> pa.Table:
    """The rows of a time-ordered table with ``start <= timestamp < end``, as a zero-copy slice.

    Binary search on the raw microseconds: pyarrow's compute kernels or scalars built from a
    ``datetime`` would import pandas (~1 s) on first use.
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
