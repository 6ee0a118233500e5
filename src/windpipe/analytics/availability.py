"""The farm's numbers per turbine and UTC day: energy, capacity factor, availability (time-based,
IEC 61400-26-1; production-based, IEC 61400-26-2) and lost production by category.

Pure: Polars frames in, Polars frames out. Every formula is written here once (the README's
"Availability and energy" states them); the ETL (``etl.kpis``) reads the windows and the events
and stores what this returns, the API (``GET /kpis``) summarises stored rows with
:func:`summarise`.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from windpipe.analytics.power_curve import MIN_BIN_WINDOWS
from windpipe.catalog import (
    DAY,
    EVENT_CATEGORIES,
    FARM,
    PARTIAL_PERFORMANCE,
    WINDOW,
    Turbine,
)

#: Width of the measured curve's wind-speed bins (IEC 61400-12-1): centred on multiples of 0.5.
BIN_WIDTH = 0.5
#: What each turbine row holds, in order (``turbine_day_kpi``'s columns, ``computed_at`` aside).
KPI_SCHEMA: dict[str, pl.DataType] = {
    "turbine": pl.String(),
    "day": pl.Date(),
    "windows_expected": pl.Int64(),
    "windows_held": pl.Int64(),
    "coverage": pl.Float64(),
    "energy_kwh": pl.Float64(),
    "rated_power_kw": pl.Float64(),
    "capacity_factor": pl.Float64(),
    "time_operative_s": pl.Float64(),
    "time_non_operative_s": pl.Float64(),
    "time_excluded_s": pl.Float64(),
    "availability_time": pl.Float64(),
    "lost_production_kwh": pl.Float64(),
    "availability_energy": pl.Float64(),
    "lost_unpriced_windows": pl.Int64(),
    "reference": pl.String(),
}
#: Per turbine, day and category present: its time and the production it lost.
LOSS_SCHEMA: dict[str, pl.DataType] = {
    "turbine": pl.String(),
    "day": pl.Date(),
    "category": pl.String(),
    "time_s": pl.Float64(),
    "lost_kwh": pl.Float64(),
}


@dataclass(frozen=True)
class DailyKpis:
    """Per (turbine, day): the figures (``KPI_SCHEMA``) and the time and loss per category."""

    kpis: pl.DataFrame
    losses: pl.DataFrame


def wind_bin(column: str = "wind_speed") -> pl.Expr:
    """The 0.5 m/s bin of a wind speed, centred on multiples of 0.5: bin k holds
    [0.5k - 0.25, 0.5k + 0.25)."""
    return (pl.col(column) / BIN_WIDTH + 0.5).floor().cast(pl.Int64)


def measured_curves(windows: pl.DataFrame) -> pl.DataFrame:
    """Each turbine's measured power curve from its full-performance windows (IEC 61400-12-1's
    method of bins): ``turbine``, ``bin``, ``power_kw``, ``windows``.

    ``windows``: ``turbine``, ``category``, ``wind_speed``, ``power``. A bin's power is the mean
    power of its full-performance windows; a bin with fewer than :data:`MIN_BIN_WINDOWS` of them
    (or none) between two populated bins borrows by linear interpolation between them; bins below
    the lowest or above the highest populated one have no reference (null, not listed)."""
    held = windows.filter(
        (pl.col("category") == "full_performance")
        & pl.col("wind_speed").is_not_null()
        & pl.col("power").is_not_null()
    )
    means = (
        held.group_by("turbine", wind_bin().alias("bin"))
        .agg(pl.col("power").mean().alias("mean"), pl.len().alias("windows"))
        .filter(pl.col("windows") >= MIN_BIN_WINDOWS)
    )
    if means.height == 0:
        return pl.DataFrame(
            schema={
                "turbine": pl.String,
                "bin": pl.Int64,
                "power_kw": pl.Float64,
                "windows": pl.Int64,
            }
        )
    spans = means.group_by("turbine").agg(
        pl.col("bin").min().alias("lo"), pl.col("bin").max().alias("hi")
    )
    every = spans.select(
        "turbine", pl.int_ranges("lo", pl.col("hi") + 1, dtype=pl.Int64).alias("bin")
    ).explode("bin")
    return (
        every.join(means, on=["turbine", "bin"], how="left")
        .sort("turbine", "bin")
        .with_columns(
            pl.col("mean").interpolate().over("turbine").alias("power_kw"),
            pl.col("windows").fill_null(0),
        )
        .select("turbine", "bin", "power_kw", "windows")
    )


def warranted_power(curve: Sequence[tuple[float, float]], wind_speed: pl.Series) -> pl.Series:
    """A warranted curve's power at each wind speed: linear interpolation between its points,
    0 outside them (below cut-in, above cut-out); null where the wind speed is."""
    import numpy as np

    xs = np.array([p[0] for p in curve], dtype=float)
    ys = np.array([p[1] for p in curve], dtype=float)
    values = wind_speed.cast(pl.Float64).to_numpy()
    power = np.interp(values, xs, ys, left=0.0, right=0.0)
    return pl.Series(power, dtype=pl.Float64).fill_nan(None)  # a null wind speed came as NaN


def _reference(
    frame: pl.DataFrame, fleet: Mapping[str, Turbine], measured: pl.DataFrame
) -> pl.DataFrame:
    """``frame`` with ``reference_kw``: each window's reference power at its wind speed."""
    parts = []
    for (turbine,), part in frame.group_by("turbine", maintain_order=True):
        spec = fleet.get(str(turbine))
        if spec is not None and spec.power_curve:
            parts.append(
                part.with_columns(
                    warranted_power(spec.power_curve, part["wind_speed"]).alias("reference_kw")
                )
            )
        else:
            parts.append(
                part.with_columns(wind_bin().alias("bin"))
                .join(
                    measured.select("turbine", "bin", pl.col("power_kw").alias("reference_kw")),
                    on=["turbine", "bin"],
                    how="left",
                    maintain_order="left",
                )
                .drop("bin")
            )
    if not parts:
        return frame.with_columns(pl.lit(None, pl.Float64).alias("reference_kw"))
    return pl.concat(parts, how="vertical")


def window_figures(
    windows: pl.DataFrame,
    categories: pl.DataFrame,
    fleet: Sequence[Turbine],
    classes: Mapping[str, str],
    *,
    window: timedelta = WINDOW,
) -> pl.DataFrame:
    """Each window's figures: ``turbine``, ``timestamp``, ``day``, ``category``, ``class``,
    ``held``, ``energy_kwh``, ``reference_kw``, ``loses``, ``lost_kwh``, ``unpriced``.

    ``windows``: the target's ``turbine``, ``timestamp`` (naive UTC window start), ``power``
    (``power_mean``, kW), ``wind_speed`` (``wind_speed_mean``, m/s), for the windows holding any.
    ``categories``: ``turbine``, ``timestamp``, ``category`` for every window expected
    (``catalog.window_categories``). ``classes``: category -> operative, non_operative, excluded.

    A window is held when it has a ``power``; its energy is power x window hours. A non-operative
    or partial-performance window loses max(0, reference(wind speed) - power) x window hours (its
    power counted 0 when it has none); one without a wind speed or outside the reference curve is
    ``unpriced`` (its loss is unknown, counted 0 and reported)."""
    hours = window / timedelta(hours=1)
    fleet_by_id = {t.id: t for t in fleet}
    frame = categories.select("turbine", "timestamp", "category").join(
        windows.select("turbine", "timestamp", "power", "wind_speed"),
        on=["turbine", "timestamp"],
        how="left",
        maintain_order="left",
    )
    measured = measured_curves(frame)
    frame = _reference(frame, fleet_by_id, measured)
    loses = (pl.col("class") == "non_operative") | (pl.col("category") == PARTIAL_PERFORMANCE)
    return frame.with_columns(
        pl.col("timestamp").dt.date().alias("day"),
        pl.col("category").replace_strict(dict(classes), return_dtype=pl.String).alias("class"),
        pl.col("power").is_not_null().alias("held"),
        (pl.col("power").fill_null(0.0) * hours).alias("energy_kwh"),
    ).with_columns(
        loses.alias("loses"),
        pl.when(loses)
        .then(
            (
                (pl.col("reference_kw") - pl.col("power").fill_null(0.0)).clip(lower_bound=0.0)
                * hours
            ).fill_null(0.0)
        )
        .otherwise(0.0)
        .alias("lost_kwh"),
        (loses & pl.col("reference_kw").is_null()).alias("unpriced"),
    )


def _ratios(frame: pl.DataFrame) -> pl.DataFrame:
    """The ratios of summed figures: coverage, capacity factor, both availabilities."""
    day_hours = DAY / timedelta(hours=1)
    counted = pl.col("time_operative_s") + pl.col("time_non_operative_s")
    actual = pl.col("energy_kwh").clip(lower_bound=0.0)
    return frame.with_columns(
        (pl.col("windows_held") / pl.col("windows_expected")).alias("coverage"),
        (pl.col("energy_kwh") / (pl.col("rated_power_kw") * day_hours * pl.col("days"))).alias(
            "capacity_factor"
        ),
        pl.when(counted > 0)
        .then(pl.col("time_operative_s") / counted)
        .otherwise(None)
        .alias("availability_time"),
        pl.when(actual + pl.col("lost_production_kwh") > 0)
        .then(actual / (actual + pl.col("lost_production_kwh")))
        .otherwise(None)
        .alias("availability_energy"),
    )


def daily_kpis(
    windows: pl.DataFrame,
    categories: pl.DataFrame,
    fleet: Sequence[Turbine],
    classes: Mapping[str, str],
    *,
    window: timedelta = WINDOW,
) -> DailyKpis:
    """Per turbine and UTC day, the figures of the README's "Availability and energy" (IEC
    61400-26-1 and -26-2) from its windows (see :func:`window_figures` for the inputs); the
    measured reference curve is fitted over every window given (the whole range computed)."""
    seconds = window.total_seconds()
    figures = window_figures(windows, categories, fleet, classes, window=window)
    rated = pl.DataFrame(
        {"turbine": [t.id for t in fleet], "rated_power_kw": [t.rated_power_kw for t in fleet]},
        schema={"turbine": pl.String, "rated_power_kw": pl.Float64},
    )
    curves = pl.DataFrame(
        {
            "turbine": [t.id for t in fleet],
            "reference": ["warranted" if t.power_curve else "measured" for t in fleet],
        },
        schema={"turbine": pl.String, "reference": pl.String},
    )

    def time_in(name: str) -> pl.Expr:
        return ((pl.col("class") == name).sum() * seconds).cast(pl.Float64)

    kpis = (
        figures.group_by("turbine", "day")
        .agg(
            pl.len().cast(pl.Int64).alias("windows_expected"),
            pl.col("held").sum().cast(pl.Int64).alias("windows_held"),
            pl.col("energy_kwh").sum(),
            time_in("operative").alias("time_operative_s"),
            time_in("non_operative").alias("time_non_operative_s"),
            time_in("excluded").alias("time_excluded_s"),
            pl.col("lost_kwh").sum().alias("lost_production_kwh"),
            pl.col("unpriced").sum().cast(pl.Int64).alias("lost_unpriced_windows"),
        )
        .join(rated, on="turbine", how="left")
        .join(curves, on="turbine", how="left")
        .with_columns(pl.lit(1).alias("days"))
    )
    kpis = (
        _ratios(kpis)
        .select([pl.col(name).cast(dtype) for name, dtype in KPI_SCHEMA.items()])
        .sort("turbine", "day")
    )
    losses = (
        figures.group_by("turbine", "day", "category")
        .agg(
            (pl.len() * seconds).cast(pl.Float64).alias("time_s"),
            pl.col("lost_kwh").sum(),
        )
        .select([pl.col(name).cast(dtype) for name, dtype in LOSS_SCHEMA.items()])
        .sort(
            "turbine",
            "day",
            pl.col("category").replace_strict(
                {c: i for i, c in enumerate(EVENT_CATEGORIES)}, return_dtype=pl.Int32
            ),
        )
    )
    return DailyKpis(kpis, losses)


#: The figures that add up across turbines or days; the ratios are recomputed from them.
SUMMED = (
    "windows_expected",
    "windows_held",
    "energy_kwh",
    "time_operative_s",
    "time_non_operative_s",
    "time_excluded_s",
    "lost_production_kwh",
    "lost_unpriced_windows",
)


def summarise(kpis: pl.DataFrame, by: Sequence[str], *, turbine: str = FARM) -> pl.DataFrame:
    """Rows of ``kpis`` (``KPI_SCHEMA``, any extra summed columns such as ``lost_kwh_<category>``)
    summed by ``by`` (``["day"]``: the farm's days; ``["turbine"]``: each turbine's period; ``[]``:
    the farm's period), with the ratios recomputed from the sums: availability from summed times,
    capacity factor from summed rated power x days (null when a row lacks a rated power), energy
    availability from summed actual and lost production. ``turbine`` names the rows when ``by``
    does not hold it (the farm's: ``*``); ``day`` is null when ``by`` does not hold it."""
    extra = [c for c in kpis.columns if c.startswith("lost_kwh_")]
    keys = list(by)
    aggs = [pl.col(c).sum() for c in (*SUMMED, *extra)] + [
        # capacity: rated power x days, null as soon as one row has no rated power
        pl.when(pl.col("rated_power_kw").is_null().any())
        .then(None)
        .otherwise(pl.col("rated_power_kw").sum())
        .alias("_rated_days"),
        pl.col("reference").unique().sort().str.join("+").alias("reference"),
        pl.len().alias("_rows"),
    ]
    if "turbine" in keys:
        aggs.append(pl.col("day").n_unique().alias("days"))
    grouped = kpis.group_by(keys, maintain_order=True).agg(aggs) if keys else kpis.select(aggs)
    if "turbine" in keys:
        # one turbine's days: its rated power times the days
        grouped = grouped.with_columns(
            (pl.col("_rated_days") / pl.col("days")).alias("rated_power_kw")
        )
    elif "day" in keys:
        grouped = grouped.with_columns(
            pl.col("_rated_days").alias("rated_power_kw"), pl.lit(1).alias("days")
        )
    else:
        days = kpis["day"].n_unique() if kpis.height else 1
        grouped = grouped.with_columns(
            (pl.col("_rated_days") / days).alias("rated_power_kw"), pl.lit(days).alias("days")
        )
    if "turbine" not in keys:
        grouped = grouped.with_columns(pl.lit(turbine).alias("turbine"))
    if "day" not in keys:
        grouped = grouped.with_columns(pl.lit(None, pl.Date).alias("day"))
    return _ratios(grouped).select(
        *[pl.col(name).cast(dtype) for name, dtype in KPI_SCHEMA.items()], *extra
    )
