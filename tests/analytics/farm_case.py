"""A three-day, three-turbine case that exercises every rule of the daily figures (test-only)."""

import math
import random
from datetime import date, datetime, timedelta

import polars as pl

from tests.analytics.oracle import Event

DAYS = [date(2024, 6, 1), date(2024, 6, 2), date(2024, 6, 3)]
TEN = timedelta(minutes=10)
#: A: measured curve; B: warranted curve; C: no rated power, measured curve.
WARRANTED = (
    (3.0, 0.0),
    (6.0, 300.0),
    (9.0, 1100.0),
    (12.0, 1900.0),
    (14.0, 2000.0),
    (25.0, 2000.0),
)
FLEET = {"A": (2000.0, None), "B": (2000.0, WARRANTED), "C": (None, None)}
#: Site elevations (m): the standard atmosphere's pressure of the density; C: unknown (101325 Pa).
ELEVATION: dict[str, float | None] = {"A": 900.0, "B": 1500.0, "C": None}
CODES = {
    "101": "scheduled_maintenance",
    "205": "forced_outage",
    "310": "requested_shutdown",
    "600": "partial_performance",
    "700": "force_majeure",
}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A naive UTC moment of the case's ``day`` (1, 2 or 3 June 2024)."""
    return datetime(2024, 6, day, hour, minute)


def curve(ws: float) -> float:
    """The turbines' true power curve (kW)."""
    return 2000.0 / (1 + math.exp(-(ws - 9.0) / 1.3)) if ws > 3 else 0.0


EVENTS: list[Event] = [
    # A: a forced outage from 10:05 (half of the 10:00 window) to 12:00
    ("A", at(1, 10, 5), at(1, 12), "205"),
    # A: two events in the 14:00 window: 4 min of maintenance, then 6 min of owner's stop
    ("A", at(1, 14), at(1, 14, 4), "101"),
    ("A", at(1, 14, 4), at(1, 14, 30), "310"),
    # A: a code [event_codes] does not name: a forced outage
    ("A", at(2, 3), at(2, 4), "999"),
    # A: force majeure, counted in neither
    ("A", at(2, 20), at(2, 22), "700"),
    # B: maintenance while the turbine logs no power (wind speed still measured)
    ("B", at(2, 6), at(2, 8), "101"),
    # B: an ongoing derating from day 3 18:00 (no end)
    ("B", at(3, 18), None, "600"),
    # C: a forced outage during which the turbine produced more than its curve (never negative)
    ("C", at(1, 9), at(1, 10), "205"),
    # C: an outage where the wind speed is missing (unpriced)
    ("C", at(3, 1), at(3, 2), "205"),
]


def windows() -> dict[tuple[str, datetime], tuple[float | None, float | None]]:
    """(turbine, window start) -> (power_mean, wind_speed_mean); absent: no row at all."""
    rng = random.Random(11)
    out: dict[tuple[str, datetime], tuple[float | None, float | None]] = {}
    for day in DAYS:
        for i in range(144):
            start = datetime.combine(day, datetime.min.time()) + i * TEN
            wind = 7.5 + 4.5 * math.sin(i / 20 + day.day) + rng.gauss(0, 0.8)
            wind = max(0.5, wind)
            for turbine in FLEET:
                power: float | None = curve(wind) * rng.uniform(0.95, 1.05)
                ws: float | None = wind + rng.gauss(0, 0.2)
                if turbine == "A" and day == DAYS[2] and start.hour >= 12:
                    continue  # days with missing data: half of A's 3 June
                if turbine == "A" and at(1, 10) <= start < at(1, 12):
                    power = rng.uniform(-5, 0)  # stopped: own consumption
                if turbine == "A" and at(2, 3) <= start < at(2, 4):
                    power = 0.0
                if turbine == "B" and at(2, 6) <= start < at(2, 8):
                    power = None  # no power logged, wind speed still there
                if turbine == "B" and start >= at(3, 18):
                    power = (power or 0.0) * 0.5  # derated
                if turbine == "C" and at(1, 9) <= start < at(1, 10):
                    power = 2100.0  # above any curve: its loss is 0, not negative
                if turbine == "C" and at(3, 1) <= start < at(3, 2):
                    power, ws = 0.0, None
                out[(turbine, start)] = (power, ws)
    return out


def temperatures() -> dict[tuple[str, datetime], float]:
    """(turbine, window start) -> ``ambient_temperature_mean`` (degC) of the held windows; absent
    for C's 2 June 00:00 to 12:00 (no temperature: V_n = V)."""
    out = {}
    for turbine, start in windows():
        if turbine == "C" and at(2, 0) <= start < at(2, 12):
            continue
        minutes = (start - at(1, 0)).total_seconds() / 60
        out[(turbine, start)] = (
            12.0 + 14.0 * math.sin(minutes / 229.0) - {"A": 0.0, "B": 6.0, "C": 3.0}[turbine]
        )
    return out


#: Stored quality flags: (turbine, window start, flag, signal or None for the whole window).
#: Those on wind speed, power, the temperature or the whole window keep a window out of the
#: measured curve; the one on the nacelle direction does not.
FLAGS: list[tuple[str, datetime, str, str | None]] = [
    *[("A", at(1, 16) + i * TEN, "flatline", "wind_speed_mean") for i in range(12)],
    *[("A", at(2, 9) + i * TEN, "out_of_range", "power_mean") for i in range(6)],
    *[("C", at(1, 15) + i * TEN, "icing_suspect", "ambient_temperature_mean") for i in range(9)],
    *[("C", at(2, 14) + i * TEN, "stopped_with_wind", None) for i in range(6)],
    *[("A", at(3, 2) + i * TEN, "flatline", "nacelle_direction_mean") for i in range(12)],
]


def flags_frame() -> pl.DataFrame:
    """:data:`FLAGS` as the warehouse's ``flags_frame`` returns them."""
    return pl.DataFrame(
        FLAGS,
        schema={
            "turbine": pl.String,
            "timestamp": pl.Datetime("us"),
            "flag": pl.String,
            "signal": pl.String,
        },
        orient="row",
    )


def windows_frame(
    rows: dict[tuple[str, datetime], tuple[float | None, float | None]],
    temperature: dict[tuple[str, datetime], float] | None = None,
) -> pl.DataFrame:
    """The windows as the warehouse's ``window_means`` returns them (with
    ``ambient_temperature_mean`` from ``temperature``: null where absent)."""
    held = temperature or {}
    return pl.DataFrame(
        [(t, s, p, w, held.get((t, s))) for (t, s), (p, w) in sorted(rows.items())],
        schema={
            "turbine": pl.String,
            "timestamp": pl.Datetime("us"),
            "power": pl.Float64,
            "wind_speed": pl.Float64,
            "ambient_temperature_mean": pl.Float64,
        },
        orient="row",
    )


def events_frame() -> pl.DataFrame:
    """The events as ``ApiClient.events`` returns them (aware UTC)."""
    return pl.DataFrame(
        [(t, s, e, c) for t, s, e, c in EVENTS],
        schema={
            "turbine": pl.String,
            "start": pl.Datetime("us"),
            "end": pl.Datetime("us"),
            "code": pl.String,
        },
        orient="row",
    ).with_columns(pl.col("start", "end").dt.replace_time_zone("UTC"))
