"""A synthetic wind farm: plausible wind, power and temperature, deterministic per seed and day.

Wind is the magnitude of two smooth Gaussian components (u, v), so its marginal is a Rayleigh — a
Weibull of shape 2 — scaled to ~8.5 m/s and modulated by a daily cycle. The farm shares a wind field
(a slow 6 h and a medium 20 min random curve) that reaches each turbine a few tens of seconds early
or late; each turbine adds its own eddies (a 10 min curve) and gusts (white turbulence in
proportion to the wind). Curves are built from random knots drawn per UTC day, so any timestamp
gets the same value whichever period is generated, and a turbine's randomness is seeded from its
id, so it gets the same values whichever farm it is generated with. On top of the power curve:
downtime episodes (stopped for hours while the wind blows), scheduled maintenance (a few daytime
visits a year, stopped too), curtailment (the farm's output capped below rated now and then), the
turbine's own consumption whenever it does not produce (small negative power), and sensor gaps
(missing rows). A high-wind stop has hysteresis, as a turbine's controller has: it stops at the
first sample at or above cut-out and restarts only once the wind has eased, at the first sample
closing :data:`HIGH_WIND_HOLD_S` (10 minutes) with no sample at or above cut-out and a mean below
its restart speed (:data:`RESTART_SPEED`, 20 m/s), so a stop lasts 10 minutes at least. Whether
a turbine is held at a given instant is a function of the wind before it, found by looking back
to the last such 10 minutes (the day before, as a rule), so it needs no state carried from one
day or one call to the next.

It speaks SCADA: besides the wind direction, each turbine reports where its nacelle points (it
yaws after the wind in steps, a minute late), its blade pitch (fine below rated, rising above
rated wind and under curtailment, feathered when stopped), its rotor speed, a cumulative energy
counter (the integral of its positive power, reset to 0 once in a seeded span) and a status code
(:data:`STATUS_CODES`). The energy counter is the one column with a memory: where it stands comes
from a :class:`Meter` (the seed reads it from the source table), its increments from the power.

And it writes what its SCADA logs: an :class:`Event` per run of samples in one state worth a
record (:data:`EVENT_CODES`: a forced stop, scheduled maintenance, a grid curtailment, a high-wind
stop), derived from the status itself, so the events cover exactly the samples whose status is 2,
3 or 4 (:func:`farm_days`).
"""

import math
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple, TypedDict, Unpack

import numpy as np
import pyarrow as pa

from windpipe.catalog import days_touched, utc_midnight
from windpipe.settings import SYNTHETIC_EVENT_CODES

WEIBULL_SCALE = 8.5  # m/s, so a mean of ~7.5 m/s at hub height
CUT_IN, RATED_SPEED, CUT_OUT = 3.0, 12.0, 25.0  # m/s
#: After a stop for high wind, a turbine restarts at the first sample that closes
#: ``HIGH_WIND_HOLD_S`` seconds with no sample at or above cut-out and a mean wind below this
#: speed (m/s): the hysteresis of a cut-out controller (a 10-minute mean, re-cut-in at 20 m/s).
RESTART_SPEED = 20.0
#: The window (s) over which the wind must have eased before a restart; so also the shortest stop.
HIGH_WIND_HOLD_S = 600
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
# How many days before a day to look for the last eased window (one, in practice); a storm held
# longer than that would be taken as starting then.
_HIGH_WIND_LOOKBACK_DAYS = 7
# Downtime: episodes start at random (per turbine and day) and last hours; ~2.5 % of the time.
_DOWN_PER_DAY, _DOWN_MIN_S, _DOWN_MEAN_S, _DOWN_MAX_DAYS = 0.2, 1800.0, 3 * 3600.0, 2
# Curtailment: now and then the grid operator caps the farm's output below rated for an hour or a
# few; one setpoint (a share of rated power) for every turbine, as a farm controller receives it.
_CURTAIL_PER_DAY, _CURTAIL_MIN_S, _CURTAIL_MEAN_S = 0.15, 1800.0, 7200.0
_CURTAIL_SETPOINT = (0.4, 0.8)
# Scheduled maintenance: a service visit starts on a weekday with this chance (~4 a year per
# turbine), between these hours (UTC), and lasts these hours: always within its day.
_MAINTENANCE_PER_WEEKDAY, _MAINTENANCE_FROM_H, _MAINTENANCE_HOURS = 4 / 261, (7.0, 10.0), (2.0, 6.0)
# Yaw: the nacelle follows the wind vane in steps (a deadband), a minute late.
_YAW_LAG_S, _YAW_STEP = 60, 5.0  # s, degrees
# Pitch (degrees): fine (~0) below rated, up to ~25 at cut-out, feathered when stopped.
_PITCH_AT_CUT_OUT, _FEATHERED = 25.0, 90.0
# Rotor speed (rpm): proportional to the wind (a constant tip-speed ratio) between the lowest
# generating speed and rated; a slow idle below cut-in; braked when stopped.
_RPM_MIN, _RPM_RATED, _RPM_IDLE_PER_MS = 9.0, 16.5, 0.5
# The energy counter of a turbine no meter is given for: commissioned on this day, producing at
# this capacity factor since.
_COMMISSIONED, _CAPACITY_FACTOR = date(2010, 1, 1), 0.3
# Own consumption (kW) when not producing: mostly ~1 kW, now and then a yaw or heater burst.
_CONSUMPTION_MEDIAN, _CONSUMPTION_SIGMA, _CONSUMPTION_MAX, _CONSUMPTION_OFF = 1.0, 0.8, 19.5, 0.07
# Random streams: per farm (seeded by seed only) and per turbine (seeded by seed and id).
_U, _V, _TEMPERATURE = 1, 2, 30
_NOISE, _DOWN, _GUSTS_STREAM, _GAPS = 7, 8, 19, 99
_CURTAIL, _SCADA, _RESET, _MAINTENANCE = 23, 29, 31, 37

#: The ``status`` codes and what they mean.
STATUS_CODES = {
    0: "waiting for wind (below cut-in)",
    1: "running",
    2: "stopped (a downtime episode: a fault or scheduled maintenance)",
    3: "curtailed (producing under a setpoint below rated)",
    4: "stopped for high wind (from cut-out until the wind has eased)",
}
WAITING, RUNNING, STOPPED, CURTAILED, STORM = 0, 1, 2, 3, 4

#: The codes of the events the generator writes, in the order of ``[event_codes]``'s default
#: (:data:`windpipe.settings.SYNTHETIC_EVENT_CODES`, which says their IEC 61400-26-1 categories):
#: a forced stop (status 2 outside maintenance), scheduled maintenance (status 2), a grid
#: curtailment (status 3) and a stop for high wind (status 4).
FORCED_STOP, SCHEDULED_MAINTENANCE, GRID_CURTAILMENT, HIGH_WIND_STOP = SYNTHETIC_EVENT_CODES
#: Each event code with its description.
EVENT_CODES = {code: entry.description for code, entry in SYNTHETIC_EVENT_CODES.items()}
# The code of each sample's state as a small integer (0: none worth an event), and back.
_NO_EVENT = 0
_EVENT_KEYS = {FORCED_STOP: 1, SCHEDULED_MAINTENANCE: 2, GRID_CURTAILMENT: 3, HIGH_WIND_STOP: 4}
_KEY_CODES = {key: code for code, key in _EVENT_KEYS.items()}

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
        pa.field("nacelle_direction", pa.float64()),  # degrees, [0, 360)
        pa.field("pitch_angle", pa.float64()),  # degrees
        pa.field("rotor_speed", pa.float64()),  # rpm
        pa.field("energy", pa.float64()),  # kWh, cumulative
        pa.field("status", pa.float64()),  # a code of STATUS_CODES (the table's columns are float8)
    ]
)
#: The columns :func:`generate_day` produces, in order.
COLUMNS = tuple(_SCHEMA.names)


@dataclass(frozen=True)
class Meter:
    """Where a turbine's energy counter stands: ``kwh`` just before the first sample at or after
    ``at`` adds its energy; and ``reset``, an instant (at or after ``at``) where it restarts from
    0, if any."""

    kwh: float
    at: datetime
    reset: datetime | None = None


class Event(NamedTuple):
    """One record of a turbine's SCADA log: ``end`` is None while it is ongoing."""

    turbine: str
    start: datetime
    end: datetime | None
    code: str
    message: str


@dataclass(frozen=True)
class TurbineSpec:
    """A synthetic turbine: its id, power curve and metadata."""

    id: str
    rated_power_kw: float = RATED_POWER
    cut_in: float = CUT_IN  # m/s
    rated_speed: float = RATED_SPEED
    cut_out: float = CUT_OUT
    restart_speed: float = RESTART_SPEED  # m/s, the 10-minute mean below which it restarts
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


def _maintenance(seconds: np.ndarray, day: int, seed: int, turbine: int) -> np.ndarray:
    """Whether a scheduled service visit stops the turbine: a few weekdays a year, by day."""
    rng = _rng(seed, day, _MAINTENANCE, turbine)
    visit, begin, hours = rng.random(3)
    if visit >= _MAINTENANCE_PER_WEEKDAY or date.fromordinal(day).weekday() >= 5:
        return np.zeros(seconds.shape, dtype=bool)
    low, high = _MAINTENANCE_FROM_H
    start = 3600.0 * (low + (high - low) * begin)
    low, high = _MAINTENANCE_HOURS
    end = start + 3600.0 * (low + (high - low) * hours)
    lo, hi = np.searchsorted(seconds, [start, end], side="left")
    mask = np.zeros(seconds.shape, dtype=bool)
    mask[lo:hi] = True
    return mask


def _curtailment(seconds: np.ndarray, day: int, seed: int) -> np.ndarray:
    """The farm's setpoint per sample, a share of rated power (1.0: none): episodes drawn per day
    they start from the farm's stream, so every turbine gets the same; one before midnight may
    carry on after it."""
    setpoint = np.ones(seconds.shape)
    for d in (day - 1, day):
        rng = _rng(seed, d, _CURTAIL)
        count = rng.poisson(_CURTAIL_PER_DAY)
        begin = rng.uniform(0, _DAY, count) + (d - day) * _DAY
        length = _CURTAIL_MIN_S + rng.gamma(2.0, (_CURTAIL_MEAN_S - _CURTAIL_MIN_S) / 2.0, count)
        share = rng.uniform(*_CURTAIL_SETPOINT, count)
        lo = np.searchsorted(seconds, begin, side="left")
        hi = np.searchsorted(seconds, begin + np.minimum(length, _DAY), side="left")
        for a, b, c in zip(lo.tolist(), hi.tolist(), share.tolist(), strict=True):
            setpoint[a:b] = np.minimum(setpoint[a:b], c)
    return setpoint


def _gap_mask(n: int, gap_rate: float, rng: np.random.Generator) -> np.ndarray:
    """Rows to keep: ``gap_rate`` of them removed in short runs (mean 5 samples)."""
    if gap_rate <= 0.0:
        return np.ones(n, dtype=bool)
    mean_run = 5
    runs = max(1, round(n * gap_rate / mean_run))
    starts = rng.integers(0, n, size=runs)
    lengths = rng.geometric(1.0 / mean_run, size=runs)
    return ~_runs_mask(n, starts, starts + lengths)


def _seconds_after(moment: datetime, midnight: datetime) -> float:
    return (moment - midnight).total_seconds()


def commissioned_meter(spec: TurbineSpec, day: date) -> Meter:
    """The counter of a turbine no meter is given for, at ``day`` 00:00: producing at a capacity
    factor of 30 % since 2010-01-01."""
    days = max(0, day.toordinal() - _COMMISSIONED.toordinal())
    kwh = spec.rated_power_kw * _CAPACITY_FACTOR * 24.0 * days
    return Meter(kwh, utc_midnight(day))


def seeded_meters(
    turbines: Sequence[TurbineSpec],
    start: datetime,
    end: datetime,
    *,
    step_seconds: int,
    seed: int,
    readings: Mapping[str, float] | None = None,
) -> dict[str, Meter]:
    """Each turbine's meter for a seeded span ``[start, end)``: its reading at ``start`` (from
    ``readings``, the counter's last value before ``start``, else :func:`commissioned_meter`),
    and one reset to 0 at a sample drawn from the seed and the turbine's id, between 10 % and
    90 % of the span."""
    readings = readings or {}
    meters = {}
    for spec in turbines:
        rng = np.random.default_rng([seed & 0xFFFFFFFF, _id_key(spec.id), _RESET])
        share = rng.uniform(0.1, 0.9)
        step_us = step_seconds * 1_000_000
        moment = _micros(start) + int(share * (_micros(end) - _micros(start)))
        reset = _EPOCH + timedelta(microseconds=max(moment - moment % step_us, _micros(start)))
        kwh = readings.get(spec.id)
        if kwh is None or not math.isfinite(kwh) or kwh < 0.0:
            kwh = commissioned_meter(spec, start.astimezone(UTC).date()).kwh
        meters[spec.id] = Meter(kwh, start, reset)
    return meters


def _counter(
    energy: np.ndarray, seconds: np.ndarray, meter: Meter, midnight: datetime
) -> np.ndarray:
    """The energy counter (kWh) at each sample: ``meter``'s reading carried on by each sample's
    ``energy``; from 0 at the reset if it falls in the day. Never negative (a reading before the
    meter's ``at`` is only notional: callers start there)."""
    cum = np.empty(energy.size + 1)
    cum[0] = 0.0
    np.cumsum(energy, out=cum[1:])
    at = int(np.searchsorted(seconds, _seconds_after(meter.at, midnight), side="left"))
    counter = meter.kwh + (cum[1:] - cum[at])
    if meter.reset is not None and meter.reset >= meter.at:
        offset = _seconds_after(meter.reset, midnight)
        if 0.0 <= offset < _DAY:
            r = int(np.searchsorted(seconds, offset, side="left"))
            # Reset just before sample r: its reading is the energy of its own step only.
            counter[r:] = cum[r + 1 :] - cum[r]
    return np.maximum(counter, 0.0)


def _wind(
    seconds: np.ndarray, day: int, *, seed: int, step: int, diurnal: np.ndarray, spec: TurbineSpec
) -> tuple[np.ndarray, np.ndarray]:
    """One turbine's wind speed (m/s, to 1 mm/s) and direction (degrees) at ``day``'s
    ``seconds``."""
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
    return wind, direction


def _high_wind(
    wind: np.ndarray,
    wind_of: Callable[[int], np.ndarray],
    *,
    day: int,
    step: int,
    spec: TurbineSpec,
) -> np.ndarray:
    """Whether the turbine is held stopped for high wind at each of ``day``'s samples (``wind``).

    It stops at a sample at or above cut-out and restarts at the first sample that closes
    :data:`HIGH_WIND_HOLD_S` with none at or above cut-out and a mean below its restart speed.
    Such a sample ends any stop, whatever came before it, so the state at midnight comes from
    the days before (``wind_of(ordinal)``: that day's wind) back to the last one: the same
    whichever period is generated, and the same for the live feed as for the seed.
    """
    window = -(-HIGH_WIND_HOLD_S // step)  # samples, rounded up
    # Whole mm/s: exact sums, so a day and the next agree on a mean at the threshold.
    restart = round(spec.restart_speed * 1000.0) * window
    cut_out = round(spec.cut_out * 1000.0)
    history = [np.rint(wind * 1000.0).astype(np.int64)]
    for back in range(1, _HIGH_WIND_LOOKBACK_DAYS + 1):
        history.insert(0, np.rint(wind_of(day - back) * 1000.0).astype(np.int64))
        joined = np.concatenate(history)
        trips = joined >= cut_out
        sums = np.cumsum(joined)
        highs = np.cumsum(trips)
        eased = np.zeros(joined.size, dtype=bool)
        eased[window - 1 :] = (
            highs[window - 1 :] - np.concatenate(([0], highs[:-window])) == 0
        ) & (sums[window - 1 :] - np.concatenate(([0], sums[:-window])) < restart)
        today = joined.size - wind.size
        if eased[:today].any():
            break
    # Held where the last trip or restart at or before the sample is a trip.
    latest = np.maximum.accumulate(np.where(trips | eased, np.arange(joined.size), -1))
    return ((latest >= 0) & trips[np.maximum(latest, 0)])[today:]


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
    setpoint: np.ndarray,
    meter: Meter,
) -> tuple[list[np.ndarray], Meter, list[Event]]:
    """One turbine's columns for one day, gaps removed (stamps offset, then :data:`COLUMNS` after
    ``turbine`` and ``timestamp``), its meter at the next midnight and the day's events."""
    turbine = _id_key(spec.id)
    traits = np.random.default_rng([seed & 0xFFFFFFFF, turbine]).uniform(-1.0, 1.0, 4)
    wind, direction = _wind(seconds, day, seed=seed, step=step, diurnal=diurnal, spec=spec)

    def wind_of(earlier: int) -> np.ndarray:
        return _wind(seconds, earlier, seed=seed, step=step, diurnal=diurnal, spec=spec)[0]

    held = _high_wind(wind, wind_of, day=day, step=step, spec=spec)

    rng = _rng(seed, day, _NOISE + step * 100, turbine)
    ideal = power_curve(wind, spec)
    # At or above cut-out the turbine is always held, so the power curve's zero there never shows.
    running = (wind >= spec.cut_in) & ~held
    maintenance = _maintenance(seconds, day, seed, turbine)
    stopped = _downtime(seconds, day, seed, turbine) | maintenance
    producing = running & ~stopped
    noisy = np.clip(ideal * (1.0 + 0.03 * rng.standard_normal(wind.shape)), 0.0, None)
    consumption = np.minimum(
        _CONSUMPTION_MEDIAN * np.exp(_CONSUMPTION_SIGMA * rng.standard_normal(wind.shape)),
        _CONSUMPTION_MAX,
    ) * (rng.random(wind.shape) >= _CONSUMPTION_OFF)
    capped = setpoint < 1.0
    power = np.where(producing, np.minimum(noisy, spec.rated_power_kw * setpoint), -consumption)
    power = np.round(power, 2) + 0.0  # + 0.0 turns a rounded -0.0 into 0.0
    temp = temperature + 0.3 * traits[3] + 0.05 * rng.standard_normal(wind.shape)

    # SCADA: yaw, pitch, rotor, status, energy (its own stream, so the signals above stay as they
    # were before it).
    scada = np.random.default_rng([seed & 0xFFFFFFFF, turbine, _SCADA])
    yaw_offset = 2.0 * scada.uniform(-1.0, 1.0)  # the nacelle's position sensor's calibration
    noise = _rng(seed, day, _SCADA + step * 100, turbine).standard_normal((2, seconds.size))
    lag_steps = min(_YAW_LAG_S // step, seconds.size)
    vane = direction
    if lag_steps:
        vane = np.concatenate([np.full(lag_steps, direction[0]), direction[:-lag_steps]])
    nacelle = np.round(vane / _YAW_STEP) * _YAW_STEP + yaw_offset
    feathered = stopped | held
    # The wind above which the blades pitch to hold the power down: rated, lower under a setpoint
    # (where the power curve meets it).
    holding = np.cbrt(spec.cut_in**3 + setpoint * (spec.rated_speed**3 - spec.cut_in**3))
    above = np.maximum(wind - holding, 0.0) / (spec.cut_out - spec.rated_speed)
    pitch = np.where(feathered, _FEATHERED, _PITCH_AT_CUT_OUT * above**0.8 + 0.1 * noise[0])
    rotor = np.clip(wind * (_RPM_RATED / spec.rated_speed), _RPM_MIN, _RPM_RATED)
    rotor = np.where(wind < spec.cut_in, _RPM_IDLE_PER_MS * wind, rotor) * (1.0 + 0.01 * noise[1])
    rotor = np.where(feathered, 0.0, rotor)
    status = np.select(
        [stopped, feathered, wind < spec.cut_in, capped],
        [float(STOPPED), float(STORM), float(WAITING), float(CURTAILED)],
        float(RUNNING),
    )
    midnight = utc_midnight(date.fromordinal(day))
    # Before the gaps: a sensor losing rows does not change what the turbine does.
    events = _state_events(spec, status, maintenance, setpoint, seconds, midnight)
    # The meter counts what the turbine delivers, not what it draws, over each sample's step.
    counter = _counter(np.maximum(power, 0.0) * (step / 3600.0), seconds, meter, midnight)
    after = midnight + timedelta(days=1)
    carried = replace(meter, kwh=float(counter[-1]), at=after) if meter.at < after else meter

    keep = _gap_mask(seconds.size, gap_rate, _rng(seed, day, _GAPS + step * 100, turbine))
    return (
        [
            (seconds[keep] * 1_000_000).astype(np.int64),
            wind[keep],
            power[keep],
            np.round(temp[keep], 2),
            _degrees(direction[keep]),
            _degrees(nacelle[keep]),
            np.round(pitch[keep], 1) + 0.0,
            np.round(rotor[keep], 2),
            np.round(counter[keep], 3),
            status[keep],
        ],
        carried,
        events,
    )


def _state_events(
    spec: TurbineSpec,
    status: np.ndarray,
    maintenance: np.ndarray,
    setpoint: np.ndarray,
    seconds: np.ndarray,
    midnight: datetime,
) -> list[Event]:
    """The day's runs of samples in one state worth an event, as events: each starts at its
    first sample and ends at the first sample after it (the next midnight for a run still going
    at the day's end: :func:`join_events` joins it to the next day's). A new curtailment setpoint
    is a new event."""
    keys = np.select(
        [maintenance, status == STOPPED, status == CURTAILED, status == STORM],
        [
            _EVENT_KEYS[c]
            for c in (SCHEDULED_MAINTENANCE, FORCED_STOP, GRID_CURTAILMENT, HIGH_WIND_STOP)
        ],
        _NO_EVENT,
    )
    if not keys.any():
        return []
    percent = np.round(setpoint * 100.0).astype(np.int64)
    state = keys * 1000 + np.where(keys == _EVENT_KEYS[GRID_CURTAILMENT], percent, 0)
    change = np.flatnonzero(state[1:] != state[:-1]) + 1
    firsts = np.concatenate(([0], change))
    lasts = np.concatenate((change, [state.size]))
    bounds = np.append(seconds, float(_DAY))
    events = []
    for a, b in zip(firsts.tolist(), lasts.tolist(), strict=True):
        key = int(keys[a])
        if key == _NO_EVENT:
            continue
        code = _KEY_CODES[key]
        if code == GRID_CURTAILMENT:
            message = f"{EVENT_CODES[code]}: setpoint {int(percent[a])} % of rated power"
        elif code == HIGH_WIND_STOP:
            message = f"{EVENT_CODES[code]}: above cut-out ({spec.cut_out:g} m/s)"
        else:
            message = EVENT_CODES[code]
        start = midnight + timedelta(seconds=float(bounds[a]))
        end = midnight + timedelta(seconds=float(bounds[b]))
        events.append(Event(spec.id, start, end, code, message))
    return events


def join_events(events: Iterable[Event]) -> list[Event]:
    """``events`` with each that ends where a later one of its turbine, code and message starts
    joined to it (a state carried over midnight), sorted by turbine then start."""
    joined: list[Event] = []
    last: dict[str, int] = {}
    for event in sorted(events, key=lambda e: (e.turbine, e.start)):
        i = last.get(event.turbine)
        if i is not None:
            held = joined[i]
            if (held.end, held.code, held.message) == (event.start, event.code, event.message):
                joined[i] = held._replace(end=event.end)
                continue
        last[event.turbine] = len(joined)
        joined.append(event)
    return joined


def clip_events(events: Iterable[Event], start: datetime, end: datetime) -> list[Event]:
    """The events overlapping ``[start, end)``, clipped to it (an ongoing one ends at ``end``)."""
    clipped = []
    for event in events:
        if event.start < end and (event.end is None or event.end > start):
            stop = end if event.end is None else min(event.end, end)
            clipped.append(event._replace(start=max(event.start, start), end=stop))
    return clipped


def _degrees(angle: np.ndarray) -> np.ndarray:
    """Angles to 0.1 degree in [0, 360)."""
    wrapped = np.round(np.mod(angle, 360.0), 1)
    return np.where(wrapped >= 360.0, wrapped - 360.0, wrapped)


def _farm_day(
    day: date,
    *,
    turbines: Sequence[TurbineSpec],
    step_seconds: int,
    seed: int,
    gap_rate: float,
    meters: Mapping[str, Meter],
) -> tuple[pa.Table, dict[str, Meter], list[Event]]:
    """:func:`generate_day`, each turbine's meter at the next midnight and the day's events."""
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
    setpoint = _curtailment(seconds, ordinal, seed)

    parts, carried, events = [], {}, []
    for spec in turbines:
        columns, carried[spec.id], day_events = _turbine_day(
            spec,
            seconds,
            ordinal,
            seed=seed,
            step=step_seconds,
            gap_rate=gap_rate,
            diurnal=diurnal,
            temperature=temperature,
            setpoint=setpoint,
            meter=meters.get(spec.id) or commissioned_meter(spec, day),
        )
        parts.append(columns)
        events += day_events
    columns = [np.concatenate(c) for c in zip(*parts, strict=True)]
    start_us = int((utc_midnight(day) - _EPOCH).total_seconds()) * 1_000_000
    counts = [p[0].size for p in parts]
    table = pa.Table.from_arrays(
        [
            _turbine_column(ids, counts),
            _to_arrow(start_us + columns[0], pa.timestamp("us", tz="UTC")),
            *(_to_arrow(c) for c in columns[1:]),
        ],
        schema=_SCHEMA,
    )
    return table, carried, events


def generate_day(
    day: date,
    *,
    turbines: Sequence[TurbineSpec] = DEFAULT_FLEET,
    step_seconds: int = 60,
    seed: int = 42,
    gap_rate: float = 0.0,
    meters: Mapping[str, Meter] | None = None,
) -> pa.Table:
    """One UTC day of samples every ``step_seconds`` per turbine, sorted by turbine then time.

    ``gap_rate`` removes that share of samples in short contiguous runs (missing rows), to mimic
    sensor outages. ``meters``: where each turbine's energy counter stands (default:
    :func:`commissioned_meter`); :func:`generate_days` carries them from one day to the next.
    """
    table, _, _ = _farm_day(
        day,
        turbines=turbines,
        step_seconds=step_seconds,
        seed=seed,
        gap_rate=gap_rate,
        meters=meters or {},
    )
    return table


def generate_days(
    days: Sequence[date],
    *,
    turbines: Sequence[TurbineSpec] = DEFAULT_FLEET,
    step_seconds: int = 60,
    seed: int = 42,
    gap_rate: float = 0.0,
    meters: Mapping[str, Meter] | None = None,
) -> Iterator[pa.Table]:
    """:func:`generate_day` of consecutive ``days``, each turbine's energy counter carried from
    one day's last sample to the next day's first (``meters``: where they stand at the start)."""
    for day in farm_days(
        days,
        turbines=turbines,
        step_seconds=step_seconds,
        seed=seed,
        gap_rate=gap_rate,
        meters=meters,
    ):
        yield day.table


@dataclass(frozen=True)
class FarmDay:
    """One UTC day of a farm: its samples (:func:`generate_day`) and its events."""

    table: pa.Table
    #: Runs of samples in a state worth an event (:data:`EVENT_CODES`), each ending at the first
    #: sample after it: a run still going at midnight ends there (:func:`join_events` joins the
    #: days'). Sensor gaps do not cut them: the turbine's state goes on while its rows are lost.
    events: list[Event]


def farm_days(
    days: Sequence[date],
    *,
    turbines: Sequence[TurbineSpec] = DEFAULT_FLEET,
    step_seconds: int = 60,
    seed: int = 42,
    gap_rate: float = 0.0,
    meters: Mapping[str, Meter] | None = None,
) -> Iterator[FarmDay]:
    """:func:`generate_days` with each day's events."""
    carried = dict(meters or {})
    for day in days:
        table, carried, events = _farm_day(
            day,
            turbines=turbines,
            step_seconds=step_seconds,
            seed=seed,
            gap_rate=gap_rate,
            meters=carried,
        )
        yield FarmDay(table, events)


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
    """The options of :func:`generate_days`, which :func:`generate` passes on to it."""

    turbines: Sequence[TurbineSpec]
    step_seconds: int
    seed: int
    gap_rate: float
    meters: Mapping[str, Meter] | None


def generate(start: datetime, end: datetime, **options: Unpack[Synthesis]) -> pa.Table:
    """Samples in ``[start, end)`` per turbine, sorted by turbine then time: :func:`generate_days`
    of the days it touches, with the same ``options``."""
    fleet = options.get("turbines", DEFAULT_FLEET)
    per_turbine: dict[str, list[pa.Table]] = {t.id: [] for t in fleet}
    for table in generate_days(list(days_touched(start, end)), **options):
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
