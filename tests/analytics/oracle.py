"""An independent computation of the daily figures, in plain Python: a window at a time, the way
the README's "Availability and energy" states each formula. Test-only."""

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


def measured(points: Sequence[tuple[float, float]]) -> dict[int, float]:
    """Bin -> reference power from (wind speed, power) of full-performance windows."""
    bins: dict[int, list[float]] = defaultdict(list)
    for ws, p in points:
        bins[math.floor(ws / 0.5 + 0.5)].append(p)
    good = {b: sum(v) / len(v) for b, v in bins.items() if len(v) >= 3}
    if not good:
        return {}
    keys = sorted(good)
    curve = dict(good)
    for lo, hi in itertools.pairwise(keys):
        for b in range(lo + 1, hi):
            curve[b] = good[lo] + (good[hi] - good[lo]) * (b - lo) / (hi - lo)
    return curve


def figures(
    windows: Mapping[tuple[str, datetime], tuple[float | None, float | None]],
    events: Sequence[Event],
    fleet: Mapping[str, tuple[float | None, Sequence[tuple[float, float]] | None]],
    days: Sequence[date],
    codes: Mapping[str, str],
    classes: Mapping[str, str],
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
    curves = {
        t: measured(
            [
                (ws, p)
                for (who, s), (p, ws) in windows.items()
                if who == t
                and p is not None
                and ws is not None
                and categories.get((t, s)) == "full_performance"
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
                        if warranted:
                            reference = interpolate(warranted, ws)
                        else:
                            reference = curves[t].get(math.floor(ws / 0.5 + 0.5))
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
