"""What a materialization reports: per-day figures, a preview of the aggregates, a text chart."""

import math
from collections.abc import Sequence
from typing import Any

import polars as pl

from windpipe.catalog import signal_name
from windpipe.etl.pipeline import DayResult

_BARS = "▁▂▃▄▅▆▇█"


def day_figures(result: DayResult) -> dict[str, int | float]:
    """The numbers one day's run reports: rows read, windows, rows written, coverage, duration."""
    return {
        "rows_read": result.rows_read,
        "windows": result.windows,
        "rows_written": result.rows_written,
        "coverage_pct": round(100.0 * result.coverage, 2),
        "duration_s": round(result.seconds, 3),
    }


def preview_rows(day_frame: pl.DataFrame, signals: Sequence[str]) -> list[dict[str, Any]]:
    """One row per hour of the day (its HH:00 window), one column per signal."""
    if day_frame.height == 0:
        return []
    hourly = day_frame.filter(pl.col("timestamp").dt.minute() == 0)
    wide = hourly.pivot(on="signal", index="timestamp", values="value").sort("timestamp")
    rows = []
    for record in wide.iter_rows(named=True):
        row: dict[str, Any] = {"window": f"{record['timestamp']:%H:%M}"}
        for name in signals:
            value = record.get(name)
            row[name] = None if value is None else round(float(value), 3)
        rows.append(row)
    return rows


def sparkline(values: Sequence[float | None], low: float, high: float) -> str:
    """A row of block characters for ``values`` on the scale ``[low, high]`` (blank = no data)."""
    span = high - low
    out = []
    for v in values:
        if v is None or math.isnan(v):
            out.append(" ")
        elif span <= 0:
            out.append(_BARS[0])
        else:
            out.append(_BARS[min(len(_BARS) - 1, int((v - low) / span * len(_BARS)))])
    return "".join(out)


def chart_markdown(day_frame: pl.DataFrame, variables: Sequence[str]) -> str:
    """Hourly max, mean and min of each variable's 10-minute aggregates as text sparklines."""
    lines = []
    for variable in variables:
        rows = {}
        for agg, reducer in (("max", "max"), ("mean", "mean"), ("min", "min")):
            series = (
                day_frame.filter(pl.col("signal") == signal_name(variable, agg))
                .group_by(pl.col("timestamp").dt.hour().alias("hour"))
                .agg(getattr(pl.col("value"), reducer)())
            )
            by_hour = dict(zip(series["hour"].to_list(), series["value"].to_list(), strict=True))
            rows[agg] = [by_hour.get(h) for h in range(24)]
        present = [v for values in rows.values() for v in values if v is not None]
        if not present:
            continue
        low, high = min(present), max(present)
        lines.append(f"{variable}  [{low:.3g} .. {high:.3g}]  00h{' ' * 18}23h")
        for agg, values in rows.items():
            lines.append(f"  {agg:<4} {sparkline(values, low, high)}")
    if not lines:
        return "_no aggregates for this day_"
    return "Hourly max / mean / min of the 10-minute aggregates (UTC):\n\n```\n" + (
        "\n".join(lines) + "\n```"
    )
