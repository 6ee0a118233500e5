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
from typing import TYPE_CHECKING

import polars as pl

from windpipe.analytics.power_curve import (
    MIN_BIN_WINDOWS,
    CurveConfig,
    Curves,
    power_curves,
    sites_of,
    usable_windows,
    with_density,
)
from windpipe.analytics.windows import POWER, WIND_SPEED, joined_windows, mean_of, turbine_codes
from windpipe.catalog import (
    DAY,
    EVENT_CATEGORIES,
    FARM,
    PARTIAL_PERFORMANCE,
    WINDOW,
    Turbine,
)

if TYPE_CHECKING:
    import numpy as np

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


def measured_reference(curves: Curves) -> pl.DataFrame:
    """Each turbine's measured reference curve: the drawn bins (from
    ``power_curve.MIN_BIN_WINDOWS`` windows on) of its IEC 61400-12-1 curve as points
    ``turbine``, ``wind_speed`` (the bin's mean normalised speed V_n, m/s), ``power_kw`` (the
    bin's mean power), by turbine and speed. Between two points the reference is linear (a bin
    not drawn, or holding nothing, between two drawn ones borrows from them); outside the first
    and last point there is none."""
    return (
        curves.bins.filter(pl.col("drawn"))
        .select("turbine", "wind_speed", pl.col("power").alias("power_kw"))
        .sort("turbine", "wind_speed")
    )


def measured_power(points: pl.DataFrame, wind_speed: pl.Series) -> pl.Series:
    """One turbine's measured reference (``points``: ``wind_speed``, ``power_kw`` of
    :func:`measured_reference`) at each normalised wind speed: linear between the points, null
    outside them or where the speed is null."""
    import numpy as np

    values = wind_speed.cast(pl.Float64).to_numpy()
    if points.height == 0:
        return pl.Series([None] * len(values), dtype=pl.Float64)
    xs = points["wind_speed"].to_numpy()
    ys = points["power_kw"].to_numpy()
    power = np.interp(values, xs, ys)
    outside = np.isnan(values) | (values < xs[0]) | (values > xs[-1])
    return pl.Series(np.where(outside, np.nan, power), dtype=pl.Float64).fill_nan(None)


def warranted_power(curve: Sequence[tuple[float, float]], wind_speed: pl.Series) -> pl.Series:
    """A warranted curve's power at each wind speed: linear interpolation between its points,
    0 outside them (below cut-in, above cut-out); null where the wind speed is."""
    import numpy as np

    xs = np.array([p[0] for p in curve], dtype=float)
    ys = np.array([p[1] for p in curve], dtype=float)
    values = wind_speed.cast(pl.Float64).to_numpy()
    power = np.interp(values, xs, ys, left=0.0, right=0.0)
    return pl.Series(power, dtype=pl.Float64).fill_nan(None)  # a null wind speed came as NaN


def _turbine_ids(frame: pl.DataFrame) -> "tuple[np.ndarray, pl.Series]":
    """Each row's turbine as an integer (an index into the names; null: one past them) and the
    names: the rows of a turbine picked by a mask, not grouped into frames of their own."""
    codes = turbine_codes(frame["turbine"])
    if codes is None:  # a null turbine, or names not strings: through an enum
        turbines = frame["turbine"].cast(pl.String)
        names = turbines.drop_nulls().unique(maintain_order=True)
        code = turbines.cast(pl.Enum(names)).to_physical().fill_null(names.len())
    else:
        code, names = codes
    return code.to_numpy(), names


def _reference(
    frame: pl.DataFrame, fleet: Mapping[str, Turbine], measured: pl.DataFrame
) -> pl.DataFrame:
    """``frame`` (with ``wind_speed_normalised``) with ``reference_kw``: each window's reference
    power at its normalised wind speed V_n, on the warranted curve when the turbine has one (a
    warranted curve is stated at the reference density), else on its measured curve (null for a
    null turbine). Each turbine's rows are picked by a mask of one integer per row, not grouped
    into frames of their own, and keep their order."""
    import numpy as np

    ids, names = _turbine_ids(frame)
    speed = frame["wind_speed_normalised"]
    reference = np.full(frame.height, np.nan)
    for index, turbine in enumerate(names.to_list()):
        rows = ids == index
        spec = fleet.get(turbine)
        if spec is not None and spec.power_curve:
            power = warranted_power(spec.power_curve, speed.filter(rows))
        else:
            power = measured_power(
                measured.filter(pl.col("turbine") == turbine), speed.filter(rows)
            )
        reference[rows] = power.to_numpy()  # null: NaN
    return frame.with_columns(pl.Series("reference_kw", reference).fill_nan(None))


def _rolling_reference(
    frame: pl.DataFrame, fleet: Mapping[str, Turbine], used: pl.DataFrame, days: int
) -> pl.DataFrame:
    """:func:`_reference` with each day's own measured curve: that of the usable windows
    (``used``: ``turbine``, ``timestamp``, ``wind_speed_normalised``, ``bin``, power) of the
    day and the ``days`` days before it, so a day's reference does not depend on the range it
    is computed in (given those days). Per turbine, day and bin, the windows, their V_n and
    power are summed once in the windows' order, and a day's curve adds its ``days + 1``
    days' sums from the day back, the same sums in the same order whatever the range: the
    same bits. The curve is :func:`measured_reference`'s (drawn bins' mean V_n and mean
    power, linear between them, none outside)."""
    import numpy as np

    ids, names = _turbine_ids(frame)
    speed = frame["wind_speed_normalised"]
    speeds = speed.cast(pl.Float64).fill_null(np.nan).to_numpy()
    frame_days = frame["timestamp"].dt.date().cast(pl.Int32).to_numpy()
    power = mean_of(POWER)
    used = used.select(
        "turbine",
        pl.col("timestamp").dt.date().cast(pl.Int32).alias("_day"),
        (pl.col("bin") * 2.0).round().cast(pl.Int64).alias("_bin"),
        pl.col("wind_speed_normalised").cast(pl.Float64),
        pl.col(power).cast(pl.Float64),
    )
    reference = np.full(frame.height, np.nan)
    for index, turbine in enumerate(names.to_list()):
        rows = np.flatnonzero(ids == index)
        spec = fleet.get(turbine)
        if spec is not None and spec.power_curve:
            reference[rows] = warranted_power(spec.power_curve, speed.gather(rows)).to_numpy()
            continue
        mine = used.filter(pl.col("turbine") == turbine)
        if not mine.height or not rows.size:
            continue
        first = int(frame_days[rows].min())
        span = int(frame_days[rows].max()) - first + 1
        day = mine["_day"].to_numpy() - first
        bins = mine["_bin"].to_numpy()
        low = int(bins.min())
        width = int(bins.max()) - low + 1
        key = day * width + (bins - low)
        # per day and bin: the windows, their V_n and power summed (bincount: in the rows' order)
        per_day = [
            np.bincount(key, weights=weights, minlength=span * width)
            .astype(np.float64)
            .reshape(span, width)
            for weights in (None, mine["wind_speed_normalised"].to_numpy(), mine[power].to_numpy())
        ]
        count, speed_sum, power_sum = (np.zeros((span, width)) for _ in range(3))
        for back in range(min(days, span - 1) + 1):  # the day first, then each day before
            for total, daily in zip((count, speed_sum, power_sum), per_day, strict=True):
                total[back:] += daily[: span - back]
        drawn = count >= MIN_BIN_WINDOWS
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_speed, mean_power = speed_sum / count, power_sum / count
        row_days = frame_days[rows] - first
        order = np.argsort(row_days, kind="stable")
        bounds = np.searchsorted(row_days[order], np.arange(span + 1))
        for t in range(span):
            at = rows[order[bounds[t] : bounds[t + 1]]]
            if not at.size or not drawn[t].any():
                continue
            xs, ys = mean_speed[t][drawn[t]], mean_power[t][drawn[t]]
            values = speeds[at]
            inside = ~np.isnan(values) & (values >= xs[0]) & (values <= xs[-1])
            reference[at] = np.where(inside, np.interp(values, xs, ys), np.nan)
    return frame.with_columns(pl.Series("reference_kw", reference).fill_nan(None))


def _no_flags() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "turbine": pl.String,
            "timestamp": pl.Datetime("us"),
            "flag": pl.String,
            "signal": pl.String,
        }
    )


def window_figures(
    windows: pl.DataFrame,
    categories: pl.DataFrame,
    fleet: Sequence[Turbine],
    classes: Mapping[str, str],
    *,
    window: timedelta = WINDOW,
    flags: pl.DataFrame | None = None,
    curve: CurveConfig | None = None,
    reference_days: int | None = None,
) -> pl.DataFrame:
    """Each window's figures: ``turbine``, ``timestamp``, ``day``, ``category``, ``class``,
    ``held``, ``energy_kwh``, ``wind_speed_normalised``, ``reference_kw``, ``loses``,
    ``lost_kwh``, ``unpriced``.

    ``windows``: the target's ``turbine``, ``timestamp`` (naive UTC window start), ``power``
    (``power_mean``, kW), ``wind_speed`` (``wind_speed_mean``, m/s), and where held the other
    signals of :attr:`CurveConfig.signals` under their names (``ambient_temperature_mean``, the
    ``*_count`` of coverage), for the windows holding any. ``categories``: ``turbine``,
    ``timestamp``, ``category`` for every window expected (``catalog.window_categories``).
    ``classes``: category -> operative, non_operative, excluded. ``flags``: the stored quality
    flags (``turbine``, ``timestamp``, ``flag``, ``signal``), None or empty: no window is left
    out of the measured curve for a flag. ``curve``: ``[power_curve]`` (default: its defaults).

    The reference is read at each window's normalised wind speed V_n
    (``power_curve.with_density``: the window's own density from its mean ambient temperature
    and the site's pressure; V_n = V without a temperature): on the turbine's warranted curve
    (``[[turbines]] power_curve``, stated at the reference density) when it has one, else on its
    IEC 61400-12-1 curve (``power_curve.power_curves``), linear between its drawn bins' mean V_n
    (:func:`measured_reference`): fitted over every window given, or with ``reference_days``,
    each day's own, fitted over that day and the ``reference_days`` days before it (the first
    days of the range have fewer: compute those days before the ones kept).

    A window is held when it has a ``power``; its energy is power x window hours. A non-operative
    or partial-performance window loses max(0, reference(wind speed) - power) x window hours (its
    power counted 0 when it has none); one without a wind speed or outside the reference curve is
    ``unpriced`` (its loss is unknown, counted 0 and reported)."""
    hours = window / timedelta(hours=1)
    fleet_by_id = {t.id: t for t in fleet}
    config = curve if curve is not None else CurveConfig(window=window)
    wind, power = mean_of(WIND_SPEED), mean_of(POWER)
    inputs = [c for c in config.signals if c not in (wind, power) and c in windows.columns]
    frame = joined_windows(
        categories.select("turbine", pl.col("timestamp").cast(pl.Datetime("us")), "category"),
        windows.select(
            "turbine", pl.col("timestamp").cast(pl.Datetime("us")), "power", "wind_speed", *inputs
        ),
    )
    turbines = frame["turbine"].unique(maintain_order=True).to_list()
    sites = sites_of(fleet, turbines)
    named = frame.rename({"power": power, "wind_speed": wind})
    stored = flags if flags is not None else _no_flags()
    categorised = frame.select("turbine", "timestamp", "category")
    normalised = with_density(named.select("turbine", wind, *inputs), sites, config)
    if reference_days is None:
        measured = measured_reference(
            power_curves(named.drop("category"), categorised, stored, sites, config)
        )
        frame = frame.with_columns(normalised["wind_speed_normalised"])
        frame = _reference(frame, fleet_by_id, measured)
    else:
        used = with_density(
            usable_windows(named.drop("category"), categorised, stored, config), sites, config
        )
        frame = frame.with_columns(normalised["wind_speed_normalised"])
        frame = _rolling_reference(frame, fleet_by_id, used, reference_days)
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
    flags: pl.DataFrame | None = None,
    curve: CurveConfig | None = None,
    reference_days: int | None = None,
) -> DailyKpis:
    """Per turbine and UTC day, the figures of the README's "Availability and energy" (IEC
    61400-26-1 and -26-2) from its windows (see :func:`window_figures` for the inputs); the
    measured reference curve is fitted over every window given (the whole range computed), or
    with ``reference_days``, per day over that day and those days before it."""
    seconds = window.total_seconds()
    figures = window_figures(
        windows,
        categories,
        fleet,
        classes,
        window=window,
        flags=flags,
        curve=curve,
        reference_days=reference_days,
    )
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
