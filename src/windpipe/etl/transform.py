"""The 10-minute aggregation: a pure function from samples to long-format window statistics.

Windows are half-open ``[t, t + 10 min)``, aligned to 00:00 UTC and labelled by their start ``t``.
What a window's statistics are depends on the signal's kind (``catalog.SignalKind``; README,
"Signal kinds"):

- linear: mean, min and max over the values present; ``std`` the sample standard deviation
  (ddof = 1, as PostgreSQL ``stddev_samp``), absent below two values; ``count``.
- angle (degrees): ``mean`` the circular mean ``atan2(mean sin, mean cos)`` in [0, 360) (signed:
  [-180, 180)), absent where the samples cancel (mean resultant length below 1e-9); ``std`` the
  Yamartino estimate ``asin(e) (1 + (2/sqrt 3 - 1) e^3)``, ``e = sqrt(1 - (mean sin^2 + mean
  cos^2))``, in degrees.
- counter: ``delta`` the sum of the increases between consecutive samples whose later sample lies
  in the window, a drop being a reset (the increase after it counts from zero); ``last``.
- state: ``last``, and ``mode`` the code held by the most samples (ties: the one seen last).

A row may be a period's statistics instead of a sample (a 10-minute export, see
``docs/import.md``): the signal's column holds the period mean, and ``<v>__min``, ``<v>__max``,
``<v>__std`` and ``<v>__count`` its other statistics. A window holding one such row passes it
through unchanged; a coarser one takes the count-weighted mean of means, the min of mins, the max
of maxes and the pooled standard deviation ``sqrt(sum(M2_i + n_i (mean_i - mean)^2) / (N - 1))``
with ``M2_i = std_i^2 (n_i - 1)``; a statistic some row lacks is absent. Angles weight the period
means' sines and cosines by their counts (an approximation: the spread inside each period is
lost, so the std of several periods is absent).

A window without values has no rows: nothing is filled in or interpolated. NaN and ±Infinity are
not values: they are left out like missing samples (and counted by :func:`non_finite_counts`).
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

import polars as pl

from windpipe.catalog import (
    AGGREGATIONS,
    PERIOD_STATISTICS,
    WINDOW,
    Rollup,
    SignalKind,
    naive_utc_expr,
    polars_duration,
    signal_name,
    statistic_column,
)

if TYPE_CHECKING:
    import pyarrow as pa

#: Schema of :func:`aggregate_10min`'s result.
AGGREGATE_SCHEMA: dict[str, pl.DataType] = {
    "timestamp": pl.Datetime("us"),
    "signal": pl.String(),
    "value": pl.Float64(),
}
#: The statistics a period row may carry beside its mean, as ``<variable>__<statistic>``.
BESIDE_THE_MEAN = tuple(s for s in PERIOD_STATISTICS if s != "mean")
#: Below this mean resultant length an angle's samples cancel: no mean direction.
CANCELLED = 1e-9
_YAMARTINO = 2 / math.sqrt(3) - 1


@dataclass(frozen=True)
class Aggregated:
    """The window statistics, and the windows left out as too thin (``min_coverage``)."""

    frame: pl.DataFrame
    #: (turbine, UTC day) -> windows not written for holding too few samples (turbine ``""``
    #: for samples without a turbine column).
    thin: Mapping[tuple[str, date], int] = field(default_factory=dict)


def _as_frame(samples: "pa.Table | pl.DataFrame") -> pl.DataFrame:
    if isinstance(samples, pl.DataFrame):
        return samples
    frame = pl.from_arrow(samples)
    if not isinstance(frame, pl.DataFrame):  # pragma: no cover - a Table always gives a frame
        raise TypeError(f"expected an Arrow table, got {type(samples).__name__}")
    return frame


def aggregate_10min(
    samples: "pa.Table | pl.DataFrame",
    *,
    variables: Sequence[str] | None = None,
    aggregations: "Sequence[str] | Mapping[str, Sequence[str]] | None" = None,
    rollup: Rollup | None = None,
    window: timedelta = WINDOW,
    previous: "pa.Table | pl.DataFrame | None" = None,
) -> pl.DataFrame:
    """Long-format window statistics: [``turbine``,] ``timestamp`` (naive UTC start), signal, value.

    What to compute is ``rollup``, or ``variables`` x ``aggregations`` of linear signals. Samples
    with a ``turbine`` column are aggregated per turbine, and the result carries it. Rows are
    sorted by turbine, timestamp, then signal in the rollup's order. ``previous`` holds samples
    before the range (at most one per turbine): only the counters' starting points.
    """
    if rollup is None:
        if variables is None or aggregations is None:
            raise TypeError("give a rollup, or variables and aggregations")
        rollup = Rollup.of(variables, aggregations)
    return aggregate(samples, rollup, window=window, previous=previous).frame


def aggregate(
    samples: "pa.Table | pl.DataFrame",
    rollup: Rollup,
    *,
    window: timedelta = WINDOW,
    previous: "pa.Table | pl.DataFrame | None" = None,
) -> Aggregated:
    """:func:`aggregate_10min`, with the thin windows it left out counted."""
    frame = _as_frame(samples)
    variables = rollup.variables
    missing = [c for c in ("timestamp", *variables) if c not in frame.columns]
    if missing:
        raise ValueError(f"the samples lack column(s) {missing}; they have {frame.columns}")
    by = ["turbine"] if "turbine" in frame.columns else []
    signals = rollup.signals
    if frame.height == 0 or not signals:
        schema = {"turbine": pl.String(), **AGGREGATE_SCHEMA} if by else AGGREGATE_SCHEMA
        return Aggregated(pl.DataFrame(schema=schema))

    stats = {
        v: [s for s in BESIDE_THE_MEAN if statistic_column(v, s) in frame.columns]
        for v in variables
        if rollup.kind(v) in (SignalKind.LINEAR, SignalKind.ANGLE, SignalKind.SIGNED_ANGLE)
    }
    stats = {v: found for v, found in stats.items() if found}
    kept = [*variables, *(f"{v}__{s}" for v, found in stats.items() for s in found)]
    frame = _selected(frame, by, kept)
    counters = rollup.counters
    prior = previous is not None and bool(counters) and _as_frame(previous).height > 0
    if prior:
        assert previous is not None
        before = _as_frame(previous)
        before = _selected(
            before.with_columns(
                pl.lit(None, pl.Float64).alias(c) for c in kept if c not in before.columns
            ),
            by,
            kept,
        )
        frame = pl.concat([before.with_columns(_prior=True), frame.with_columns(_prior=False)])
    # The API sends (turbine, time) order; other callers may not. group_by_dynamic needs time
    # sorted within each turbine, and keeps turbines in the order they come.
    if prior or not (frame["timestamp"].is_sorted() if not by else _sorted_per_turbine(frame)):
        frame = frame.sort([*by, "timestamp"], maintain_order=True)
    if counters:
        frame = frame.with_columns(_increase(v, by) for v in counters)
    if prior:
        frame = frame.filter(~pl.col("_prior")).drop("_prior")
    if stats:
        frame = frame.with_columns(e for v, found in stats.items() for e in _period_rows(v, found))

    angles = [v for v in variables if rollup.kind(v) in _ANGLES]
    if angles:
        frame = frame.with_columns(e for v in angles for e in _angle_rows(v, v in stats))
    exprs: list[pl.Expr] = []
    finals: list[pl.Expr] = []
    for v, aggregations in rollup.aggregations.items():
        kind = rollup.kind(v)
        if kind in _ANGLES:
            exprs.extend(_angle_parts(v, v in stats))
            finals.extend(
                _angle(v, a, kind, v in stats).cast(pl.Float64).alias(signal_name(v, a))
                for a in aggregations
            )
            continue
        for a in aggregations:
            if kind is SignalKind.STATE and a == "mode":
                continue  # joined below
            exprs.append(
                _statistic(v, a, kind, v in stats).cast(pl.Float64).alias(signal_name(v, a))
            )
    thin_filter = rollup.min_coverage > 0
    if thin_filter:
        exprs.append(
            pl.max_horizontal(_samples(v, v in stats) for v in variables).alias("_samples")
        )
    # On sorted samples, windowing by slices is ~7x faster than hashing a truncated key, and each
    # window is computed alone (eagerly), so splitting a day at window boundaries changes no bit.
    every = polars_duration(window)
    wide = frame.group_by_dynamic(
        "timestamp",
        every=every,
        period=every,
        closed="left",
        label="left",
        start_by="window",
        group_by=by or None,
    ).agg(exprs)
    if finals:  # angles: from the windows' sums of sines and cosines
        wide = wide.with_columns(finals).select(pl.exclude(r"^_angle_.*$"))
    modes = [v for v, aggs in rollup.aggregations.items() if "mode" in aggs]
    for v in modes:
        wide = wide.join(_modes(frame, v, by, every), on=[*by, "timestamp"], how="left")
    thin: dict[tuple[str, date], int] = {}
    if thin_filter:
        wide, thin = _without_thin(frame, wide, by, rollup, window)
    order = pl.Enum(signals)
    long = wide.select(*by, "timestamp", *signals).unpivot(
        index=[*by, "timestamp"], variable_name="signal", value_name="value"
    )
    result = long.drop_nulls("value").sort(
        [*by, "timestamp", pl.col("signal").cast(order)], maintain_order=True
    )
    return Aggregated(result, thin)


def _selected(frame: pl.DataFrame, by: list[str], columns: Sequence[str]) -> pl.DataFrame:
    """``by``, ``timestamp`` (naive UTC microseconds) and ``columns`` as finite Float64."""
    return frame.select(
        *(pl.col(c).cast(pl.String) for c in by),
        naive_utc_expr(frame.schema["timestamp"]).alias("timestamp"),
        *(_finite(c) for c in columns),
    )


def _increase(variable: str, by: list[str]) -> pl.Expr:
    """Per sample of a counter: its increase since the previous value (a drop is a reset: the
    counter counted from zero up to the new value); null for the first value or a missing one."""
    value = pl.col(variable)
    before = value.forward_fill().shift(1)
    if by:
        before = before.over(by)
    step = pl.when(value >= before).then(value - before).otherwise(value)
    return pl.when(value.is_not_null() & before.is_not_null()).then(step).alias(f"{variable}__inc")


def _period_rows(variable: str, found: list[str]) -> list[pl.Expr]:
    """Per row of a signal with period statistics: its weight ``n``, min, max and ``M2`` (the sum
    of squared deviations), a raw sample being a period of one."""
    value = pl.col(variable)
    valid = value.is_not_null()
    period = pl.any_horizontal(pl.col(f"{variable}__{s}").is_not_null() for s in found)
    n = pl.col(f"{variable}__count") if "count" in found else pl.lit(None, pl.Float64)
    n = pl.when(period & n.is_not_null()).then(n).otherwise(1.0)

    def bound(stat: str) -> pl.Expr:
        given = pl.col(f"{variable}__{stat}") if stat in found else pl.lit(None, pl.Float64)
        return pl.when(valid).then(pl.when(period).then(given).otherwise(value))

    std = pl.col(f"{variable}__std") if "std" in found else pl.lit(None, pl.Float64)
    m2 = pl.when(~period | (n <= 1)).then(0.0).otherwise(std.pow(2) * (n - 1))
    return [
        pl.when(valid).then(n).alias(f"{variable}__n"),
        bound("min").alias(f"{variable}__lo"),
        bound("max").alias(f"{variable}__hi"),
        pl.when(valid).then(m2).alias(f"{variable}__m2"),
        pl.when(valid).then(period).alias(f"{variable}__period"),
    ]


def _statistic(variable: str, aggregation: str, kind: SignalKind, periods: bool) -> pl.Expr:
    """The expression of one aggregation of one variable over a window's rows."""
    value = pl.col(variable)
    rows = value.count()
    if kind in (SignalKind.COUNTER, SignalKind.STATE):
        if aggregation == "delta":
            increase = pl.col(f"{variable}__inc")
            return pl.when(increase.count() > 0).then(increase.sum())
        if aggregation == "last":
            return value.drop_nulls().last()
        return pl.when(rows > 0).then(rows)
    if not periods:
        return AGGREGATIONS[aggregation].polars(variable)
    n, lo, hi, m2 = (pl.col(f"{variable}__{c}") for c in ("n", "lo", "hi", "m2"))
    total = n.sum()
    one = rows == 1
    if aggregation == "count":
        return pl.when(rows > 0).then(total)
    if aggregation == "mean":
        return (
            pl.when(one)
            .then(value.drop_nulls().first())
            .when(rows > 1)
            .then((n * value).sum() / total)
        )
    if aggregation in ("min", "max"):
        bounds = lo if aggregation == "min" else hi
        pick = bounds.min() if aggregation == "min" else bounds.max()
        return pl.when((rows > 0) & (bounds.count() == rows)).then(pick)
    # std: one period passes through; several are pooled (all must carry their M2).
    std = pl.col(f"{variable}__std")
    single = std.filter(value.is_not_null()).first()
    mean = (n * value).sum() / total
    pooled = ((m2 + n * (value - mean).pow(2)).sum() / (total - 1)).sqrt()
    return (
        pl.when(one & pl.col(f"{variable}__period").filter(value.is_not_null()).first())
        .then(single)
        .when((rows > 0) & (m2.count() == rows) & (total >= 2))
        .then(pooled)
    )


_ANGLES = (SignalKind.ANGLE, SignalKind.SIGNED_ANGLE)


def _angle_rows(variable: str, periods: bool) -> list[pl.Expr]:
    """Per row of an angle: its weight (1, or a period's count) and its weighted sine and cosine,
    so a window needs sums only (a trigonometric expression per window costs 10x more)."""
    value = pl.col(variable)
    weight = pl.col(f"{variable}__n") if periods else pl.when(value.is_not_null()).then(1.0)
    radians = value.radians()
    return [
        weight.alias(f"_angle_{variable}_w"),
        (weight * radians.sin()).alias(f"_angle_{variable}_s"),
        (weight * radians.cos()).alias(f"_angle_{variable}_c"),
    ]


def _angle_parts(variable: str, periods: bool) -> list[pl.Expr]:
    """A window's sums for an angle: weights, sines, cosines, rows, and the value and std of a
    window holding a single row (passed through)."""
    name = f"_angle_{variable}"
    parts = [
        pl.col(f"{name}_w").sum().alias(f"{name}_W"),
        pl.col(f"{name}_s").sum().alias(f"{name}_S"),
        pl.col(f"{name}_c").sum().alias(f"{name}_C"),
        pl.col(variable).count().alias(f"{name}_rows"),
        pl.col(variable).max().alias(f"{name}_one"),  # the value, when it is the only one
    ]
    if periods:
        parts += [
            pl.col(f"{variable}__period").fill_null(False).any().alias(f"{name}_periods"),
            pl.col(f"{variable}__std").max().alias(f"{name}_std"),
        ]
    return parts


def _angle(variable: str, aggregation: str, kind: SignalKind, periods: bool) -> pl.Expr:
    """Circular mean, Yamartino std or count of an angle in degrees, from a window's sums."""
    name = f"_angle_{variable}"
    rows, total = pl.col(f"{name}_rows"), pl.col(f"{name}_W")
    if aggregation == "count":
        return pl.when(rows > 0).then(total)
    sin = pl.col(f"{name}_S") / total
    cos = pl.col(f"{name}_C") / total
    if aggregation == "mean":
        resultant = (sin.pow(2) + cos.pow(2)).sqrt()
        mean = (
            pl.when(rows == 1).then(pl.col(f"{name}_one")).otherwise(pl.arctan2(sin, cos).degrees())
        )
        return pl.when((rows > 0) & (resultant >= CANCELLED)).then(_wrapped(mean, kind))
    # std (Yamartino): from samples only; one period passes its own through.
    spread = (1 - (sin.pow(2) + cos.pow(2))).clip(lower_bound=0).sqrt()
    yamartino = (spread.arcsin() * (1 + _YAMARTINO * spread.pow(3))).degrees()
    if not periods:
        return pl.when(rows >= 2).then(yamartino)
    any_period = pl.col(f"{name}_periods")
    return (
        pl.when((rows == 1) & any_period)
        .then(pl.col(f"{name}_std"))
        .when((rows >= 2) & ~any_period)
        .then(yamartino)
    )


def _wrapped(degrees: pl.Expr, kind: SignalKind) -> pl.Expr:
    """An angle in [0, 360), or [-180, 180) for a signed one."""
    shift = 180.0 if kind is SignalKind.SIGNED_ANGLE else 0.0
    wrapped = degrees - 360.0 * ((degrees + shift) / 360.0).floor()
    high = 360.0 - shift
    return pl.when(wrapped >= high).then(wrapped - 360.0).otherwise(wrapped)


def _samples(variable: str, periods: bool) -> pl.Expr:
    """A window's samples of ``variable``: its values, or its periods' counts summed."""
    if periods:
        return pl.col(f"{variable}__n").sum()
    return pl.col(variable).count()


def _modes(frame: pl.DataFrame, variable: str, by: list[str], every: str) -> pl.DataFrame:
    """Per window, the code of ``variable`` held by the most samples (ties: the one seen last)."""
    held = frame.filter(pl.col(variable).is_not_null()).select(
        *by,
        pl.col("timestamp").dt.truncate(every).alias("_window"),
        pl.col("timestamp"),
        pl.col(variable),
    )
    counted = held.group_by([*by, "_window", variable]).agg(
        pl.len().alias("_n"), pl.col("timestamp").max().alias("_seen")
    )
    best = counted.sort(
        [*by, "_window", "_n", "_seen"], descending=[False] * (len(by) + 1) + [True, True]
    )
    return (
        best.group_by([*by, "_window"], maintain_order=True)
        .first()
        .select(
            *by,
            pl.col("_window").alias("timestamp"),
            pl.col(variable).alias(signal_name(variable, "mode")),
        )
    )


def expected_samples(frame: pl.DataFrame, by: list[str], rollup: Rollup) -> pl.DataFrame:
    """Per turbine, the sampling interval in seconds: the declared one, else the median step
    between consecutive rows divided by the median samples a row stands for (1 for a sample, its
    count for a period's statistics)."""
    if rollup.sampling_interval is not None:
        seconds = rollup.sampling_interval.total_seconds()
        if by:
            return frame.select(by).unique().with_columns(_interval=pl.lit(seconds))
        return pl.DataFrame({"_interval": [seconds]})
    weights = [
        pl.col(f"{v}__n")
        if f"{v}__n" in frame.columns
        else pl.col(v).is_not_null().cast(pl.Float64)
        for v in rollup.variables
    ]
    rows = frame.select(
        *by,
        pl.col("timestamp"),
        pl.max_horizontal(weights).alias("_weight"),
    ).filter(pl.col("_weight") > 0)
    step = pl.col("timestamp").diff().dt.total_microseconds() / 1e6
    if by:
        step = step.over(by)
    steps = rows.with_columns(step.alias("_step"))
    per = (
        steps.group_by(by, maintain_order=True) if by else steps.group_by(pl.lit(0).alias("_all"))
    ).agg(
        (pl.col("_step").filter(pl.col("_step") > 0).median() / pl.col("_weight").median()).alias(
            "_interval"
        )
    )
    return per.drop("_all") if not by else per


def _without_thin(
    frame: pl.DataFrame,
    wide: pl.DataFrame,
    by: list[str],
    rollup: Rollup,
    window: timedelta,
) -> tuple[pl.DataFrame, dict[tuple[str, date], int]]:
    """``wide`` without the windows holding fewer samples than ``min_coverage`` of the expected
    count, and those windows counted per turbine and day."""
    intervals = expected_samples(frame, by, rollup)
    seconds = window.total_seconds()
    judged = (
        wide.join(intervals, on=by, how="left")
        if by
        else wide.with_columns(_interval=pl.lit(intervals["_interval"][0], pl.Float64))
    )
    needed = rollup.min_coverage * seconds / pl.col("_interval")
    judged = judged.with_columns(
        (pl.col("_interval").is_not_null() & (pl.col("_samples") < needed)).alias("_thin")
    )
    counted = (
        judged.filter(pl.col("_thin"))
        .group_by(*by, pl.col("timestamp").dt.date().alias("_day"))
        .len()
    )
    report = {(str(row[0]) if by else "", row[-2]): int(row[-1]) for row in counted.iter_rows()}
    return judged.filter(~pl.col("_thin")).drop("_interval", "_samples", "_thin"), report


def _finite(variable: str) -> pl.Expr:
    """The variable as Float64 with NaN and ±Infinity made null (missing)."""
    value = pl.col(variable).cast(pl.Float64)
    return pl.when(value.is_finite()).then(value).otherwise(None).alias(variable)


def non_finite_counts(samples: pl.DataFrame, variables: Sequence[str]) -> dict[str, int]:
    """Per turbine (``""`` without a turbine column): values of ``variables`` that are NaN or
    ±Infinity, which :func:`aggregate_10min` leaves out."""
    present = [v for v in variables if v in samples.columns]
    if samples.height == 0 or not present:
        return {}
    bad = pl.sum_horizontal(
        (pl.col(v).cast(pl.Float64).is_nan() | pl.col(v).cast(pl.Float64).is_infinite())
        .fill_null(False)
        .cast(pl.UInt32)
        for v in present
    ).sum()
    if "turbine" not in samples.columns:
        return {"": int(samples.select(bad).item())}
    counts = samples.group_by("turbine").agg(bad.alias("n"))
    return {str(t): int(n) for t, n in counts.iter_rows()}


def _sorted_per_turbine(frame: pl.DataFrame) -> bool:
    """Whether each turbine's rows are contiguous and in time order (one cheap pass)."""
    changes = frame.select(
        turbine_change=pl.col("turbine") != pl.col("turbine").shift(1),
        backwards=pl.col("timestamp").diff() < timedelta(0),
    )
    starts = frame.filter(changes["turbine_change"].fill_null(True))["turbine"]
    return starts.n_unique() == starts.len() and not bool(
        (changes["backwards"] & ~changes["turbine_change"].fill_null(True)).any()
    )
