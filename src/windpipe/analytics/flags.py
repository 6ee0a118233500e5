"""Quality flags of 10-minute windows: pure functions from windows to flagged windows.

A flag never removes data: it marks a window (and, where it concerns one, a signal) so that the
power curves leave it out and the dashboard can count it. :func:`window_flags` computes every
flag; each flag's own function is public for tests and callers with their own windows. Frames:
``windows`` has one row per (turbine, window), sorted or not, with ``turbine``, ``timestamp``
(naive UTC window start) and a column per target signal (``wind_speed_mean``, ...); the flags
come back as ``turbine``, ``timestamp``, ``flag``, ``signal`` (null for a flag about the whole
window).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import polars as pl

from windpipe.analytics.power_curve import DEFAULT_CUT_IN, Site
from windpipe.analytics.windows import (
    POWER,
    WIND_SPEED,
    bin_index,
    consecutive,
    mean_of,
    run_length,
    same_windows,
    with_run_lengths,
)
from windpipe.catalog import UNCOVERED_HELD, WINDOW

if TYPE_CHECKING:
    from windpipe.settings import Settings

OUT_OF_RANGE = "out_of_range"
FLATLINE = "flatline"
ICING_SUSPECT = "icing_suspect"
STOPPED_WITH_WIND = "stopped_with_wind"
#: Every flag, in the order they are listed.
FLAGS: tuple[str, ...] = (OUT_OF_RANGE, FLATLINE, ICING_SUSPECT, STOPPED_WITH_WIND)

#: Flags as stored and served.
FLAG_SCHEMA: dict[str, pl.DataType] = {
    "turbine": pl.String(),
    "timestamp": pl.Datetime("us"),
    "flag": pl.String(),
    "signal": pl.String(),
}

#: IEA Wind Task 19: icing is suspected below this temperature (degC)...
ICING_BELOW_C = 0.0
#: ...when power is below this quantile of the reference bin's powers...
ICING_QUANTILE = 0.10
#: ...the reference being the windows above this temperature (degC)...
REFERENCE_ABOVE_C = 3.0
#: ...for at least this long.
ICING_DURATION = timedelta(minutes=30)
#: A reference bin gives a quantile from this many windows on.
MIN_REFERENCE_WINDOWS = 3


@dataclass(frozen=True)
class FlagConfig:
    """What the flags hold the windows to."""

    #: Target signal -> its physical range [low, high] (inclusive), ``[signals.<name>] range``.
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    #: Target signals checked for a flatline (the windows' means).
    flatline_signals: Sequence[str] = ()
    #: A run of at least this many equal consecutive means is a flatline.
    flatline_windows: int = 3
    window: timedelta = WINDOW
    #: The variable of the ambient temperature (degC); None: no icing flag.
    temperature: str | None = "ambient_temperature"

    @classmethod
    def of(cls, settings: "Settings") -> "FlagConfig":
        """The configuration in effect: the range of every signal whose mean the ETL writes,
        every such mean checked for flatlines, ``[flags]``, ``[power_curve] temperature_signal``."""
        means = [s for s in settings.etl_signals if s.endswith("_mean")]
        ranges = {
            mean_of(name): signal.range
            for name, signal in settings.signals.items()
            if signal.range is not None and mean_of(name) in means
        }
        temperature = settings.power_curve_temperature_signal
        return cls(
            ranges=ranges,
            flatline_signals=means,
            flatline_windows=settings.flags_flatline_windows,
            window=settings.window,
            temperature=temperature if temperature in settings.signals else None,
        )

    @property
    def signals(self) -> list[str]:
        """The target signals the flags read: the checked means, speed, power, temperature."""
        wanted = [*self.ranges, *self.flatline_signals, mean_of(WIND_SPEED), mean_of(POWER)]
        if self.temperature is not None:
            wanted.append(mean_of(self.temperature))
        return list(dict.fromkeys(wanted))


def empty_flags() -> pl.DataFrame:
    """No flag."""
    return pl.DataFrame(schema=FLAG_SCHEMA)


def _rows(frame: pl.DataFrame, flag: str, signal: str | None) -> pl.DataFrame:
    return frame.select(
        pl.col("turbine").cast(pl.String),
        pl.col("timestamp").cast(pl.Datetime("us")),
        pl.lit(flag, pl.String).alias("flag"),
        pl.lit(signal, pl.String).alias("signal"),
    )


def _sorted(windows: pl.DataFrame) -> pl.DataFrame:
    frame = windows.with_columns(pl.col("timestamp").cast(pl.Datetime("us")))
    in_order = frame.select(
        (
            (pl.col("turbine") > pl.col("turbine").shift(1))
            | (
                (pl.col("turbine") == pl.col("turbine").shift(1))
                & (pl.col("timestamp") > pl.col("timestamp").shift(1))
            )
        )
        .fill_null(True)
        .all()
    ).item()
    return frame if in_order else frame.sort("turbine", "timestamp")


def out_of_range_flags(
    windows: pl.DataFrame, ranges: Mapping[str, tuple[float, float]]
) -> pl.DataFrame:
    """``out_of_range``: a signal's window value outside its physical range ``[low, high]``."""
    parts = [
        _rows(windows.filter((pl.col(s) < low) | (pl.col(s) > high)), OUT_OF_RANGE, s)
        for s, (low, high) in ranges.items()
        if s in windows.columns
    ]
    return pl.concat([empty_flags(), *parts])


def flatline_flags(
    windows: pl.DataFrame,
    signals: Sequence[str],
    *,
    min_windows: int = 3,
    window: timedelta = WINDOW,
) -> pl.DataFrame:
    """``flatline``: a signal's value equal over at least ``min_windows`` consecutive windows of a
    turbine, every window of the run flagged; a missing window or a missing value ends a run (as
    OpenOA's ``filters.unresponsive_flag`` on the series with its gaps as NaN)."""
    return _flatline(_sorted(windows), signals, min_windows=min_windows, window=window)


def _flatline(
    frame: pl.DataFrame, signals: Sequence[str], *, min_windows: int, window: timedelta
) -> pl.DataFrame:
    """:func:`flatline_flags` of windows sorted by turbine and time."""
    checked = [s for s in signals if s in frame.columns]
    if not checked:
        return empty_flags()
    # Every signal in one pass. A row continues its signal's run when it equals the row before
    # and directly follows it: ``consecutive`` already fails on another turbine's row, so the
    # plain shift is the turbine's previous value wherever it matters.
    follows = frame.select(consecutive(window).alias("_follows"))
    joins = pl.concat(
        [
            follows,
            frame.select(
                ((pl.col(s) == pl.col(s).shift(1)) & follows["_follows"]).alias(f"_joins{i}")
                for i, s in enumerate(checked)
            ),
        ],
        how="horizontal",
    )
    flat = joins.select(
        ((run_length(f"_joins{i}") >= min_windows) & frame[s].is_not_null()).alias(f"_flat{i}")
        for i, s in enumerate(checked)
    )
    keys = frame.select("turbine", "timestamp")
    parts = [_rows(keys.filter(flat[f"_flat{i}"]), FLATLINE, s) for i, s in enumerate(checked)]
    return pl.concat([empty_flags(), *parts])


def icing_flags(
    windows: pl.DataFrame,
    *,
    temperature: str,
    reference: pl.DataFrame | None = None,
    window: timedelta = WINDOW,
) -> pl.DataFrame:
    """``icing_suspect`` (IEA Wind Task 19, "Ice detection guidelines"): ambient temperature
    below 0 degC and power below the 10th percentile (linear interpolation) of the powers of the
    turbine's windows in the same 0.5 m/s wind-speed bin when the temperature was above +3 degC,
    for at least 30 minutes of consecutive windows. The reference is taken from ``reference``
    (default: ``windows``); a bin with fewer than 3 reference windows flags nothing."""
    return _icing(windows, reference, temperature=temperature, window=window, ordered=False)


def _icing(
    windows: pl.DataFrame,
    reference: pl.DataFrame | None,
    *,
    temperature: str,
    window: timedelta,
    ordered: bool,
    excluded: pl.DataFrame | None = None,
    cut_ins: Mapping[str, float] | None = None,
) -> pl.DataFrame:
    """:func:`icing_flags`; ``ordered``: ``windows`` are sorted by turbine and time already;
    ``excluded``: windows (``turbine``, ``timestamp``) that cannot be iced (a stop an event
    explains), nor can a wind at or below the turbine's cut-in (``cut_ins``; others 3.5 m/s);
    either breaks a run."""
    wind, power, temp = mean_of(WIND_SPEED), mean_of(POWER), mean_of(temperature)
    if any(c not in windows.columns for c in (wind, power, temp)):
        return empty_flags()
    source = windows if reference is None else reference
    if any(c not in source.columns for c in (wind, power, temp)):
        return empty_flags()
    frame = windows if ordered else _sorted(windows)
    # Only a cold window can be iced: the reference's thresholds are looked up for those alone,
    # and the runs counted among the iced ones, each remembering its row in ``frame`` so that a
    # run still needs the very row before it iced, as on the whole frame.
    cold = (
        frame.select("turbine", "timestamp", wind, power, temp)
        .with_row_index("_row")
        .filter(pl.col(temp) < ICING_BELOW_C)
    )
    if cut_ins is not None:
        cut_in = pl.col("turbine").replace_strict(
            dict(cut_ins), default=DEFAULT_CUT_IN, return_dtype=pl.Float64
        )
        cold = cold.filter((pl.col(wind) > cut_in).fill_null(True))
    if excluded is not None and excluded.height and cold.height:
        cold = cold.join(
            excluded.select("turbine", pl.col("timestamp").cast(cold.schema["timestamp"])),
            on=["turbine", "timestamp"],
            how="anti",
            maintain_order="left",
        )
    if not cold.height:
        return empty_flags()
    thresholds = (
        source.filter(
            (pl.col(temp) > REFERENCE_ABOVE_C)
            & pl.col(wind).is_not_null()
            & pl.col(power).is_not_null()
        )
        .with_columns(bin_index(pl.col(wind)).alias("_bin"))
        .group_by("turbine", "_bin")
        .agg(
            pl.col(power).quantile(ICING_QUANTILE, interpolation="linear").alias("_p10"),
            pl.len().alias("_n"),
        )
        .filter(pl.col("_n") >= MIN_REFERENCE_WINDOWS)
        .select("turbine", "_bin", "_p10")
    )
    iced = (
        cold.with_columns(bin_index(pl.col(wind)).alias("_bin"))
        .join(thresholds, on=["turbine", "_bin"], how="left", maintain_order="left")
        .filter(pl.col(power) < pl.col("_p10"))
    )
    runs = with_run_lengths(
        iced,
        (pl.col("_row") == pl.col("_row").shift(1) + 1) & consecutive(window),
        "_length",
    )
    needed = -(-ICING_DURATION // window)  # windows covering 30 minutes, rounded up
    return _rows(runs.filter(pl.col("_length") >= needed), ICING_SUSPECT, None)


def stopped_with_wind_flags(
    windows: pl.DataFrame, categories: pl.DataFrame, sites: Mapping[str, Site]
) -> pl.DataFrame:
    """``stopped_with_wind``: no production (mean power <= 0) while the mean wind speed is above
    the turbine's cut-in (``cut_in_ms``, else 3.5 m/s) and no event explains it (the window's
    category is ``full_performance``: no event covers it)."""
    wind, power = mean_of(WIND_SPEED), mean_of(POWER)
    if wind not in windows.columns or power not in windows.columns:
        return empty_flags()
    cut_ins = {t: s.cut_in_ms or DEFAULT_CUT_IN for t, s in sites.items()}
    cut_in = pl.col("turbine").replace_strict(
        cut_ins, default=DEFAULT_CUT_IN, return_dtype=pl.Float64
    )
    # the lowest cut-in first, on every window; each turbine's own on the few left
    lowest = min([DEFAULT_CUT_IN, *cut_ins.values()])
    frame = windows.with_columns(pl.col("timestamp").cast(pl.Datetime("us")))
    stopped = (pl.col(power) <= 0) & (pl.col(wind) > lowest)
    if same_windows(frame, categories):  # categories of these very windows: a row-wise mask
        unexplained = categories["category"] == UNCOVERED_HELD
        candidates = frame.filter(stopped & unexplained)
        return _rows(candidates.filter(pl.col(wind) > cut_in), STOPPED_WITH_WIND, None)
    unexplained_windows = categories.filter(pl.col("category") == UNCOVERED_HELD).select(
        "turbine", pl.col("timestamp").cast(pl.Datetime("us"))
    )
    candidates = frame.filter(stopped).filter(pl.col(wind) > cut_in)
    explained = candidates.join(unexplained_windows, on=["turbine", "timestamp"], how="semi")
    return _rows(explained, STOPPED_WITH_WIND, None)


def _explained(categories: pl.DataFrame) -> pl.DataFrame:
    """The windows an event covers (``turbine``, ``timestamp``): a stop, a derating, a
    maintenance. A sensor held still or a low power there is the turbine's state, not a fault."""
    return categories.filter(pl.col("category") != UNCOVERED_HELD).select(
        pl.col("turbine").cast(pl.String), pl.col("timestamp").cast(pl.Datetime("us"))
    )


def window_flags(
    windows: pl.DataFrame,
    categories: pl.DataFrame,
    sites: Mapping[str, Site],
    config: FlagConfig,
    *,
    reference: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Every flag of ``windows`` (``categories``: their ``catalog.window_categories``;
    ``reference``: the windows the icing reference is taken from, default ``windows``), by
    turbine, time, flag and signal."""
    frame = _sorted(windows)
    explained = _explained(categories)
    parts = [
        out_of_range_flags(windows, config.ranges),
        _flatline(
            frame,
            config.flatline_signals,
            min_windows=config.flatline_windows,
            window=config.window,
        ).join(explained, on=["turbine", "timestamp"], how="anti", maintain_order="left"),
        stopped_with_wind_flags(windows, categories, sites),
    ]
    if config.temperature is not None:
        parts.append(
            _icing(
                frame,
                reference,
                temperature=config.temperature,
                window=config.window,
                ordered=True,
                excluded=explained,
                cut_ins={t: site.cut_in_ms or DEFAULT_CUT_IN for t, site in sites.items()},
            )
        )
    order = {f: i for i, f in enumerate(FLAGS)}
    return (
        pl.concat(parts)
        .with_columns(pl.col("flag").replace_strict(order, return_dtype=pl.Int32).alias("_order"))
        .sort(["turbine", "timestamp", "_order", "signal"], nulls_last=False)
        .drop("_order")
    )
