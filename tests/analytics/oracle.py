"""An independent computation of the daily figures, in plain Python: a window at a time, the way
the README's "Availability and energy" states each formula (the measured reference curve: IEC
61400-12-1's, density-normalised, flagged windows out). Test-only; calls nothing of windpipe's
but the list of categories."""

import itertools
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta

from windpipe.catalog import EVENT_CATEGORIES

TEN = timedelta(minutes=10)
Event = tuple[str, datetime, datetime | None, str]  # turbine, start, end (None: ongoing), code


def category_of(
    turbine: str,
    start: datetime,
    events: Sequence[Event],
    held: bool,
    codes: Mapping[str, str],
    last_end: datetime,
) -> str:
    """The category of the window ``[start, start + 10 min)``: the event covering most of it."""
    best: tuple[timedelta, int, datetime, str] | None = None
    for who, lo, hi, code in events:
        if who != turbine:
            continue
        covered = min(hi or last_end, start + TEN) - max(lo, start)
        if covered <= timedelta(0):
            continue
        category = codes.get(code, "forced_outage")
        key = (covered, EVENT_CATEGORIES.index(category), lo, code)
        if best is None or key > best:
            best = key
    if best is not None:
        return EVENT_CATEGORIES[best[1]]
    return "full_performance" if held else "information_unavailable"


def interpolate(curve: Sequence[tuple[float, float]], ws: float) -> float:
    """A warranted curve at ``ws``: straight lines between its points, 0 outside."""
    if ws < curve[0][0] or ws > curve[-1][0]:
        return 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(curve):
        if x0 <= ws <= x1:
            return y0 + (y1 - y0) * (ws - x0) / (x1 - x0)
    raise AssertionError(ws)


def normalised(ws: float, temperature: float | None, elevation: float | None) -> float:
    """The wind speed normalised to 1.225 kg/m3 (IEC 61400-12-1 eq. (11), (14)): dry air at the
    window's temperature and the standard atmosphere's pressure at the site; unchanged without a
    temperature."""
    if temperature is None:
        return ws
    pressure = 101325.0 if elevation is None else 101325.0 * (1 - 2.25577e-5 * elevation) ** 5.25588
    density = pressure / (287.05 * (temperature + 273.15))
    return ws * (density / 1.225) ** (1 / 3)


def measured(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The measured curve from (V_n, power) of the curve's windows: per 0.5 m/s bin of V_n
    holding >= 3 windows, (mean V_n, mean power), by speed."""
    bins: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for vn, p in points:
        bins[math.floor(vn / 0.5 + 0.5)].append((vn, p))
    return [
        (sum(v for v, _ in held) / len(held), sum(p for _, p in held) / len(held))
        for _, held in sorted(bins.items())
        if len(held) >= 3
    ]


def on_measured(curve: Sequence[tuple[float, float]], vn: float) -> float | None:
    """The measured curve at ``vn``: straight lines between its points, none outside them."""
    if not curve or vn < curve[0][0] or vn > curve[-1][0]:
        return None
    if len(curve) == 1:
        return curve[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(curve):
        if x0 <= vn <= x1:
            return y0 + (y1 - y0) * (vn - x0) / (x1 - x0)
    raise AssertionError(vn)


#: The variables whose flag keeps a window out of the curve (with a flag on the whole window).
CURVE_VARIABLES = ("wind_speed", "power", "ambient_temperature")


def figures(
    windows: Mapping[tuple[str, datetime], tuple[float | None, float | None]],
    events: Sequence[Event],
    fleet: Mapping[str, tuple[float | None, Sequence[tuple[float, float]] | None]],
    days: Sequence[date],
    codes: Mapping[str, str],
    classes: Mapping[str, str],
    *,
    temperatures: Mapping[tuple[str, datetime], float] | None = None,
    elevations: Mapping[str, float | None] | None = None,
    flags: Sequence[tuple[str, datetime, str, str | None]] = (),
) -> tuple[dict[tuple[str, date], dict[str, float | None]], dict[tuple[str, date, str], float]]:
    """Per (turbine, day): the figures; per (turbine, day, category): the lost production."""
    last_end = datetime.combine(days[-1], datetime.min.time()) + timedelta(days=1)
    starts = [datetime.combine(d, datetime.min.time()) + i * TEN for d in days for i in range(144)]
    categories = {
        (t, s): category_of(
            t, s, events, (windows.get((t, s)) or (None, None))[0] is not None, codes, last_end
        )
        for t in fleet
        for s in starts
    }
    temperature = temperatures or {}
    elevation = elevations or {}
    left_out = {
        (t, s)
        for t, s, _, signal in flags
        if signal is None or signal.rpartition("_")[0] in CURVE_VARIABLES
    }

    def vn_of(t: str, s: datetime, ws: float) -> float:
        return normalised(ws, temperature.get((t, s)), elevation.get(t))

    curves = {
        t: measured(
            [
                (vn_of(t, s, ws), p)
                for (who, s), (p, ws) in windows.items()
                if who == t
                and p is not None
                and ws is not None
                and categories.get((t, s)) == "full_performance"
                and (t, s) not in left_out
            ]
        )
        for t in fleet
    }
    out: dict[tuple[str, date], dict[str, float | None]] = {}
    lost_by: dict[tuple[str, date, str], float] = defaultdict(float)
    for t, (rated, warranted) in fleet.items():
        for d in days:
            row = dict.fromkeys(("held", "energy", "op", "non", "excl", "lost", "unpriced"), 0.0)
            for i in range(144):
                s = datetime.combine(d, datetime.min.time()) + i * TEN
                power, ws = windows.get((t, s), (None, None))
                category = categories[(t, s)]
                kind = classes[category]
                row["held"] += power is not None
                row["energy"] += (power or 0.0) / 6
                row[{"operative": "op", "non_operative": "non", "excluded": "excl"}[kind]] += 600
                if kind == "non_operative" or category == "partial_performance":
                    reference = None
                    if ws is not None:
                        vn = vn_of(t, s, ws)
                        if warranted:
                            reference = interpolate(warranted, vn)
                        else:
                            reference = on_measured(curves[t], vn)
                    if reference is None:
                        row["unpriced"] += 1
                    else:
                        loss = max(0.0, reference - (power or 0.0)) / 6
                        row["lost"] += loss
                        lost_by[(t, d, category)] += loss
            actual = max(row["energy"], 0.0)
            counted = row["op"] + row["non"]
            out[(t, d)] = {
                "windows_held": row["held"],
                "coverage": row["held"] / 144,
                "energy_kwh": row["energy"],
                "capacity_factor": None if rated is None else row["energy"] / (rated * 24),
                "time_operative_s": row["op"],
                "time_non_operative_s": row["non"],
                "time_excluded_s": row["excl"],
                "availability_time": row["op"] / counted if counted else None,
                "lost_production_kwh": row["lost"],
                "availability_energy": (
                    actual / (actual + row["lost"]) if actual + row["lost"] > 0 else None
                ),
                "lost_unpriced_windows": row["unpriced"],
            }
    return out, dict(lost_by)
