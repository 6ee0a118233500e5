"""What the power curves and the flags share: a turbine's windows as one wide frame, and runs of
consecutive windows."""

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import polars as pl

from windpipe.catalog import WINDOW

#: The built-in signals a power curve and most flags are about (``catalog.VARIABLES``).
WIND_SPEED = "wind_speed"
POWER = "power"
#: The bins of a power curve: 0.5 m/s wide, centred on multiples of 0.5 m/s.
BIN_WIDTH = 0.5


def mean_of(variable: str) -> str:
    """The target signal of a variable's window mean, e.g. ``wind_speed_mean``."""
    return f"{variable}_mean"


def count_of(variable: str) -> str:
    """The target signal of a variable's window sample count, e.g. ``wind_speed_count``."""
    return f"{variable}_count"


def wide_windows(long: pl.DataFrame, signals: Sequence[str] = ()) -> pl.DataFrame:
    """Long rows ``turbine, timestamp, signal, value`` as one row per (turbine, window) with a
    column per signal (null where a signal has no row), sorted by turbine then time; every name of
    ``signals`` gets a column even when no row holds it."""
    if long.height:
        wide = long.pivot(on="signal", index=["turbine", "timestamp"], values="value")
    else:
        wide = pl.DataFrame(schema={"turbine": pl.String, "timestamp": pl.Datetime("us")})
    missing = [pl.lit(None, pl.Float64).alias(s) for s in signals if s not in wide.columns]
    return wide.with_columns(missing).sort("turbine", "timestamp")


def bin_index(speed: pl.Expr) -> pl.Expr:
    """The bin ``k`` of a wind speed: bin ``k`` is centred on ``k x 0.5`` m/s and holds
    ``[0.5 k - 0.25, 0.5 k + 0.25)`` (IEC 61400-12-1 section 9.1: 0.5 m/s bins centred on
    multiples of 0.5 m/s)."""
    return (speed / BIN_WIDTH + 0.5).floor().cast(pl.Int32)


def previous(column: str) -> pl.Expr:
    """``column`` of the turbine's previous row (null on its first row), on rows sorted by
    turbine: the row before, unless it is another turbine's (no grouping: 3x cheaper)."""
    same = pl.col("turbine") == pl.col("turbine").shift(1)
    return pl.when(same).then(pl.col(column).shift(1))


def consecutive(window: timedelta = WINDOW) -> pl.Expr:
    """Whether a row's window directly follows the turbine's previous row (no window missing)."""
    step = pl.duration(microseconds=window // timedelta(microseconds=1))
    return ((pl.col("timestamp") - previous("timestamp")) == step).fill_null(False)


def run_length(continues: str) -> pl.Expr:
    """The number of rows in the run each row belongs to, on rows in order, where a row whose
    boolean column ``continues`` is true joins the run of the row before it (false or null: a run
    starts). From each run's first and last row index: no grouping, no hashing."""
    joins = pl.col(continues).fill_null(False)
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    first = pl.when(~joins).then(index).forward_fill().fill_null(0)
    last = pl.when(~joins.shift(-1).fill_null(False)).then(index).backward_fill()
    return last - first + 1


def with_run_lengths(frame: pl.DataFrame, continues: pl.Expr, name: str) -> pl.DataFrame:
    """``frame`` (sorted by turbine, timestamp) with ``name``: the number of rows in the run each
    row belongs to, where a row whose ``continues`` is true joins the run of the row before it
    (``continues`` must be false on each turbine's first row, as :func:`previous` makes it)."""
    return (
        frame.with_columns(continues.alias("_continues"))
        .with_columns(run_length("_continues").alias(name))
        .drop("_continues")
    )


def same_windows(frame: pl.DataFrame, other: pl.DataFrame) -> bool:
    """Whether ``other`` lists the very (turbine, timestamp) rows of ``frame``, in the same order,
    of the same types and none null (as ``catalog.window_categories`` of ``frame`` does): then a
    row of one is the same row of the other, and a join on the two keys can be a row-wise mask."""
    if frame.height != other.height:
        return False
    for key in ("turbine", "timestamp"):
        mine, theirs = frame[key], other[key]
        if mine.dtype != theirs.dtype or mine.null_count() or not mine.equals(theirs):
            return False
    return True


def turbine_codes(turbines: pl.Series) -> tuple[pl.Series, pl.Series] | None:
    """Each row's turbine as a small integer (UInt32) and the names by integer, so that groupings
    and look-ups hash one integer instead of a string: from the runs of equal names when each
    turbine's rows are together (no hashing at all), else through an enum. None when a turbine
    is null (a string key treats it apart) or the names are not strings."""
    if turbines.dtype != pl.String or turbines.null_count():
        return None
    runs = turbines.rle_id()
    count = int(runs[-1]) + 1 if runs.len() else 0
    starts = runs.search_sorted(pl.Series(range(count), dtype=runs.dtype), side="left")
    names = turbines.gather(starts)  # each run's name, found by halving (runs increase)
    if names.n_unique() == names.len():
        return runs, names
    names = names.unique(maintain_order=True)
    return turbines.cast(pl.Enum(names)).to_physical().cast(pl.UInt32), names


def _comparable(
    frame: pl.DataFrame, other: pl.DataFrame, codes: tuple[pl.Series, pl.Series] | None
) -> tuple[pl.Series, pl.Series] | None:
    """``frame``'s turbine codes (:func:`turbine_codes`, or ``codes`` when given) when its rows
    and ``other``'s can be matched by integers: keys of the same types, no null time. Else None."""
    stamps = frame["timestamp"]
    if not frame.height or stamps.null_count() or stamps.dtype != other.schema["timestamp"]:
        return None
    if frame.schema["turbine"] != other.schema["turbine"]:
        return None
    return turbine_codes(frame["turbine"]) if codes is None else codes


def window_keys(
    frame: pl.DataFrame,
    other: pl.DataFrame,
    codes: tuple[pl.Series, pl.Series] | None = None,
) -> tuple[pl.Series, pl.Series] | None:
    """One Int64 per row of ``frame`` and of ``other`` such that two rows' keys are equal when
    and only when their ``turbine`` and ``timestamp`` are (``other``'s rows of a turbine or a time
    ``frame`` does not hold are left out): a join on the two columns as a look-up of one integer.
    ``codes``: :func:`turbine_codes` of ``frame``'s turbines, if already known. None when that
    cannot be: null keys, other time types, a span too long for 63 bits."""
    codes = _comparable(frame, other, codes)
    if codes is None:
        return None
    stamps = frame["timestamp"]
    code, names = codes
    ticks = stamps.to_physical()
    low, high = ticks.min(), ticks.max()
    assert isinstance(low, int) and isinstance(high, int)
    span = high - low + 1
    if span * names.len() >= 2**62:
        return None
    mine = code.cast(pl.Int64) * span + (ticks - low)
    theirs = (
        other.select(
            pl.col("turbine").replace_strict(
                names, list(range(names.len())), default=None, return_dtype=pl.Int64
            ),
            pl.col("timestamp").to_physical() - low,
        )
        .filter(pl.col("timestamp").is_between(0, span - 1))
        .drop_nulls()
        .select(pl.col("turbine") * span + pl.col("timestamp"))
        .to_series()
    )
    return mine, theirs


def _time_ordered(
    frame: pl.DataFrame, other: pl.DataFrame, codes: tuple[pl.Series, pl.Series] | None
) -> tuple[tuple[pl.Series, pl.Series], np.ndarray, np.ndarray, np.ndarray] | None:
    """``frame``'s turbine codes (:func:`turbine_codes`), their integers, its times (ticks) and
    where each turbine's rows start, when ``frame`` can be searched by halving for ``other``'s
    rows: keys of the same types, none null, each turbine's rows together, in strictly
    increasing time. None otherwise."""
    codes = _comparable(frame, other, codes)
    if codes is None:
        return None
    stamps = frame["timestamp"]
    ids, ticks = codes[0].to_numpy(), stamps.to_physical().to_numpy()
    starts = np.searchsorted(ids, np.arange(codes[1].len() + 1, dtype=ids.dtype))
    increasing = ticks[1:] > ticks[:-1]
    increasing[starts[1:-1] - 1] = True  # a turbine's first row may start earlier in time
    if not (bool(np.all(ids[1:] >= ids[:-1])) and bool(increasing.all())):
        return None
    return codes, ids, ticks, starts


def _their_codes(other: pl.DataFrame, names: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """``other``'s turbines as their place among ``names`` (-1: not among them) and its ticks."""
    wanted = other.select(
        pl.col("turbine").cast(pl.Enum(names), strict=False).to_physical().cast(pl.Int64),
        pl.col("timestamp").to_physical(),
    )
    return wanted["turbine"].fill_null(-1).to_numpy(), wanted["timestamp"].to_numpy()


def listed_rows(
    frame: pl.DataFrame,
    other: pl.DataFrame,
    codes: tuple[pl.Series, pl.Series] | None = None,
) -> pl.Series | None:
    """Whether each row of ``frame`` has its ``turbine`` and ``timestamp`` among ``other``'s rows
    (a semi-join's rows as a mask). When each turbine's rows are together and in strictly
    increasing time (as ``wide_windows`` sorts them), ``other``'s times are searched by halving
    in each turbine's rows; else :func:`window_keys` are looked up in a hash set. ``codes``:
    :func:`turbine_codes` of ``frame``'s turbines, if already known. None when
    :func:`window_keys` would be."""
    ordered = _time_ordered(frame, other, codes)
    if ordered is None:
        keys = window_keys(frame, other, codes)
        if keys is None:
            return None
        mine, theirs = keys
        return mine.is_in(theirs.implode())
    (_, names), _, ticks, starts = ordered
    their_ids, their_ticks = _their_codes(other, names)
    found = np.zeros(frame.height, dtype=bool)
    for turbine in range(names.len()):
        low, high = starts[turbine], starts[turbine + 1]
        times = np.sort(their_ticks[their_ids == turbine])  # in order: fewer cache misses
        at = np.searchsorted(ticks[low:high], times)
        inside = at < high - low
        at, times = at[inside] + low, times[inside]
        found[at[ticks[at] == times]] = True
    return pl.Series(found)


def matching_rows(frame: pl.DataFrame, other: pl.DataFrame) -> pl.Series | None:
    """For each row of ``other``, the index of ``frame``'s row of the same ``turbine`` and
    ``timestamp`` (null when none): a left join of ``other`` with ``frame`` as a gather (with
    ``frame`` holding each key once, the same rows in the same order). Each turbine's rows of
    ``frame`` are searched by halving; ``other`` in any order. None unless ``frame``'s rows are
    as :func:`listed_rows` searches them (then its keys are unique)."""
    if not other.height:
        return pl.Series(dtype=pl.UInt32)
    ordered = _time_ordered(frame, other, None)
    if ordered is None:
        return None
    (_, names), _, ticks, starts = ordered
    their_ids, their_ticks = _their_codes(other, names)
    index = np.full(other.height, -1, dtype=np.int64)
    for turbine in range(names.len()):
        low, high = starts[turbine], starts[turbine + 1]
        rows = np.flatnonzero(their_ids == turbine)
        times = their_ticks[rows]
        at = np.searchsorted(ticks[low:high], times)
        inside = at < high - low
        rows, at, times = rows[inside], at[inside] + low, times[inside]
        same = ticks[at] == times
        index[rows[same]] = at[same]
    return pl.Series(index).cast(pl.UInt32, strict=False)  # -1 (no row): null


def joined_windows(frame: pl.DataFrame, windows: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (``turbine``, ``timestamp``, ...) with the other columns of ``windows`` on the
    same (turbine, timestamp), null where none: a left join keeping ``frame``'s order, row for
    row when both list the same windows (:func:`same_windows`), as a gather when ``windows`` are
    in turbine then time order (:func:`matching_rows`, as the target's reads return them)."""
    values = windows.drop("turbine", "timestamp")
    if same_windows(frame, windows):
        return frame.hstack(values)
    at = matching_rows(windows, frame)
    if at is None:
        return frame.join(windows, on=["turbine", "timestamp"], how="left", maintain_order="left")
    return frame.hstack(values.select(pl.all().gather(at)))
