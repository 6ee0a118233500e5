"""Data-quality checks of the target's 10-minute aggregates, as plain functions over SQL.

The Dagster asset checks in ``defs/checks.py`` call these for the days of the run that loaded them;
each function returns what it found, so the checks only decide pass/fail and present it.
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import polars as pl
from sqlalchemy import Connection

from windpipe.catalog import (
    DAY,
    DEFAULT_TURBINE_ID,
    WINDOW,
    day_start,
    days_between,
    min_samples,
    naive_utc_expr,
    polars_duration,
    signal_name,
    windows_of_day,
)
from windpipe.warehouse import reads

#: Relative slack for ``min <= mean <= max``: a mean of equal floats may differ in the last bit.
RELATIVE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class SourceWindows:
    """Windows of one variable on one day that hold samples in the source."""

    with_samples: frozenset[datetime]  # >= 1 value: mean, min, max, count exist
    with_two: frozenset[datetime]  # >= 2 values: std exists


def source_windows(
    samples: pl.DataFrame, variables: Sequence[str], window: timedelta = WINDOW
) -> dict[str, SourceWindows]:
    """Per variable, the 10-minute windows (naive UTC starts) that hold 1 and 2+ values."""
    if samples.height == 0:
        empty = SourceWindows(frozenset(), frozenset())
        return {v: empty for v in variables}
    ts = naive_utc_expr(samples.schema["timestamp"])
    counts = (
        samples.with_columns(ts.dt.truncate(polars_duration(window)).alias("window"))
        .group_by("window")
        .agg([pl.col(v).count().alias(v) for v in variables])
    )
    result = {}
    for v in variables:
        one = counts.filter(pl.col(v) >= 1)["window"].to_list()
        two = counts.filter(pl.col(v) >= 2)["window"].to_list()
        result[v] = SourceWindows(frozenset(one), frozenset(two))
    return result


def describe_windows(windows: Sequence[datetime], limit: int = 6) -> str:
    """Compact ``HH:MM-HH:MM`` runs of consecutive windows, e.g. ``03:10-03:40, 14:00``."""
    runs: list[tuple[datetime, datetime]] = []
    for w in sorted(windows):
        if runs and w - runs[-1][1] == WINDOW:
            runs[-1] = (runs[-1][0], w)
        else:
            runs.append((w, w))

    def end(last: datetime) -> str:
        stop = last + WINDOW
        return "24:00" if stop.date() > last.date() else f"{stop:%H:%M}"

    parts = [f"{a:%H:%M}" if a == b else f"{a:%H:%M}-{end(b)}" for a, b in runs[:limit]]
    if len(runs) > limit:
        parts.append(f"... {len(runs) - limit} more")
    return ", ".join(parts)


@dataclass(frozen=True)
class WindowFinding:
    """A (turbine, day, signal) whose window count is not a full day's (144 at 10 minutes)."""

    turbine: str
    day: date
    signal: str
    windows: int
    source_windows: int  # windows the source has data for, up to the last loaded window
    full_day: bool
    missing: str  # the windows without source data, as ``HH:MM-HH:MM`` runs
    lost: str = ""  # windows with source data the target lacks (or holds without any)
    #: Windows the target may lack with reason: too thin to write, a counter's first window.
    slack: int = 0

    @property
    def explained(self) -> bool:
        """Whether the source's own gaps (and the windows left out with reason) account for
        the shortfall."""
        return self.source_windows - self.slack <= self.windows <= self.source_windows


@dataclass
class WindowsReport:
    """What the window-count check found over a range of days."""

    days: list[date]
    full_days: int = 0
    complete_days: int = 0
    findings: list[WindowFinding] = field(default_factory=list)

    @property
    def mismatches(self) -> list[WindowFinding]:
        """(day, signal)s whose windows disagree with the source: the ETL lost or invented some."""
        return [f for f in self.findings if not f.explained]

    @property
    def gaps(self) -> list[WindowFinding]:
        """Full days with fewer than 144 windows because the source has no samples in some."""
        return [f for f in self.findings if f.explained and f.full_day]


def check_windows(
    conn: Connection,
    first: date,
    last: date,
    *,
    variables: Sequence[str],
    aggregations: Sequence[str] | Mapping[str, Sequence[str]],
    fetch_day: Callable[[date], pl.DataFrame],
    now: datetime,
    turbines: Sequence[str] = (DEFAULT_TURBINE_ID,),
    window: timedelta = WINDOW,
    thin: Mapping[tuple[str, date], int] | None = None,
) -> WindowsReport:
    """Count each turbine's signals' windows per day and explain any shortfall by the source.

    (turbine, day)s holding a full day of windows for every signal need nothing more. For the
    others the day's samples are fetched (``fetch_day``, every turbine at once, with a ``turbine``
    column) and each signal must hold exactly the windows with data (two values for ``std``). For
    the current, unfinished day only windows up to the last one loaded count. ``now`` is naive UTC.
    ``aggregations`` may differ per variable. Windows left out as too thin (``thin``, per turbine
    and day, from ``day_load``) and a counter's first window of the day (its ``delta`` needs the
    sample before, which may be missing) explain that many windows fewer.
    """
    per_variable = (
        aggregations
        if isinstance(aggregations, Mapping)
        else dict.fromkeys(variables, tuple(aggregations))
    )
    signals = {signal_name(v, a): (v, a) for v in variables for a in per_variable[v]}
    thin = thin or {}
    per_day = DAY // window
    report = WindowsReport(days=days_between(first, last))
    counts = {
        turbine: reads.window_counts(conn, first, last, list(signals), turbine=turbine)
        for turbine in turbines
    }
    fetched: dict[date, pl.DataFrame] = {}
    for day in report.days:
        full = day_start(day) + DAY <= now
        report.full_days += full
        day_complete = True
        for turbine in turbines:
            held = {s: counts[turbine].get((day, s), 0) for s in signals}
            if full and all(n == per_day for n in held.values()):
                continue
            horizon = day_start(day) + DAY
            if not full:
                newest = reads.last_window(conn, day, list(signals), turbine=turbine)
                if newest is None:
                    continue  # today, not loaded yet: nothing to compare
                horizon = newest + window
            if day not in fetched:
                fetched[day] = fetch_day(day)
            samples = fetched[day]
            if "turbine" in samples.columns:
                samples = samples.filter(pl.col("turbine") == turbine)
            source = source_windows(samples, variables, window)
            for name, (variable, aggregation) in signals.items():
                sw = source[variable]
                two = min_samples(aggregation) > 1
                have = sw.with_two if two else sw.with_samples
                expected = sum(1 for w in have if w < horizon)
                if full and held[name] == per_day == expected:
                    continue
                slack = thin.get((turbine, day), 0) + (aggregation == "delta")
                if not full and expected - slack <= held[name] <= expected:
                    continue
                day_complete = False
                missing = [w for w in windows_of_day(day, window) if w < horizon and w not in have]
                lost = ""
                if not expected - slack <= held[name] <= expected:  # name the windows in dispute
                    holds = reads.windows_held(conn, day, name, turbine=turbine)
                    wanted = {w for w in have if w < horizon}
                    lost = describe_windows(sorted(wanted ^ holds))
                report.findings.append(
                    WindowFinding(
                        turbine,
                        day,
                        name,
                        held[name],
                        expected,
                        full,
                        describe_windows(missing),
                        lost,
                        slack,
                    )
                )
        if full and day_complete:
            report.complete_days += 1
    return report


@dataclass(frozen=True)
class Inconsistency:
    """A window whose aggregates contradict one another or leave the physical range."""

    turbine: str
    variable: str
    timestamp: datetime
    problem: str
    values: dict[str, float | None]


@dataclass
class ConsistencyReport:
    """What the consistency check found: windows examined, violations, the first few of them."""

    windows: int = 0
    violations: int = 0
    examples: list[Inconsistency] = field(default_factory=list)


def inconsistent_windows(
    conn: Connection,
    first: date,
    last: date,
    *,
    variables: Sequence[str],
    aggregations: Sequence[str] | Mapping[str, Sequence[str]],
    limit: int = 50,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    window: timedelta = WINDOW,
    turbine: str | None = None,
) -> ConsistencyReport:
    """Windows breaking ``min <= mean <= max``, ``std >= 0``, ``count >= 1``, the variable's
    physical range (``ranges``), or misaligned; of one turbine, or all."""
    report = ConsistencyReport()
    for variable in variables:
        bounds = (ranges or {}).get(variable)
        own = aggregations[variable] if isinstance(aggregations, Mapping) else aggregations
        for owner, timestamp, values in reads.windows_by_variable(
            conn, first, last, variable, own, turbine=turbine
        ):
            report.windows += 1
            problem = inconsistency(timestamp, values, bounds=bounds, window=window)
            if problem is None:
                continue
            report.violations += 1
            if len(report.examples) < limit:
                report.examples.append(Inconsistency(owner, variable, timestamp, problem, values))
    return report


def inconsistency(
    timestamp: datetime,
    values: Mapping[str, float | None],
    *,
    bounds: tuple[float, float] | None = None,
    window: timedelta = WINDOW,
) -> str | None:
    """Why one window's aggregates contradict one another, or None when they agree."""
    mean, low, high, std, count = (values.get(k) for k in ("mean", "min", "max", "std", "count"))
    if (timestamp - datetime(2000, 1, 1)) % window:
        return f"window start not on a {int(window.total_seconds() // 60)}-minute boundary"
    present = [v for v in values.values() if v is not None]
    if any(math.isnan(v) for v in present):
        return "NaN value"
    scale = max([abs(v) for v in (mean, low, high) if v is not None] + [1.0])
    slack = RELATIVE_TOLERANCE * scale
    if low is not None and high is not None and low > high + slack:
        return "min > max"
    if mean is not None and low is not None and mean < low - slack:
        return "mean < min"
    if mean is not None and high is not None and mean > high + slack:
        return "mean > max"
    if std is not None and std < 0:
        return "std < 0"
    if count is not None and (count < 1 or count != int(count)):
        return "count is not a positive integer"
    if bounds is not None:
        for name, value in (("min", low), ("mean", mean), ("max", high)):
            if value is not None and not bounds[0] <= value <= bounds[1]:
                return f"{name} outside the physical range [{bounds[0]:g}, {bounds[1]:g}]"
    return None


@dataclass(frozen=True)
class Duplicate:
    """Several rows for one (turbine, signal, timestamp)."""

    turbine: str
    signal: str
    timestamp: datetime
    rows: int


def duplicate_rows(
    conn: Connection, first: date, last: date, *, limit: int = 100
) -> tuple[int, list[Duplicate]]:
    """Rows in the days, and up to ``limit`` (signal, timestamp) pairs held twice or more."""
    pairs = reads.duplicated_pairs(conn, first, last, limit=limit)
    return reads.count_rows(conn, first, last), [Duplicate(*pair) for pair in pairs]
