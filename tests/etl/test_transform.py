"""The 10-minute aggregation, on hand-made samples and as properties over generated ones."""

import math
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from windpipe.catalog import signal_names
from windpipe.etl.transform import AGGREGATE_SCHEMA, aggregate_10min

DAY = datetime(2024, 3, 1)
ALL = ["mean", "min", "max", "std", "count"]


def frame(
    offsets_s: list[float], values: list[float | None], *, tz: str | None = None
) -> pl.DataFrame:
    """Samples at DAY + offsets (seconds), with one variable ``x``."""
    stamps = [DAY + timedelta(seconds=s) for s in offsets_s]
    df = pl.DataFrame(
        {"timestamp": stamps, "x": values}, schema={"timestamp": pl.Datetime("us"), "x": pl.Float64}
    )
    if tz is not None:
        df = df.with_columns(
            pl.col("timestamp").dt.replace_time_zone("UTC").dt.convert_time_zone(tz)
        )
    return df


def as_dict(result: pl.DataFrame) -> dict[tuple[datetime, str], float]:
    return {(ts, sig): v for ts, sig, v in result.iter_rows()}


def test_windows_are_half_open_labelled_by_start_and_never_filled() -> None:
    # 00:00:00 and 00:09:59 share a window; 00:10:00 opens the next; 00:20-00:30 is empty;
    # 00:30:00 is alone (no std); 00:40 window has a null value only.
    result = aggregate_10min(
        frame([0, 599, 600, 601, 1800, 2400], [1.0, 3.0, 10.0, 20.0, 7.5, None]),
        variables=["x"],
        aggregations=ALL,
    )
    assert result.schema == pl.Schema(AGGREGATE_SCHEMA)
    got = as_dict(result)
    w0, w1, w3 = DAY, DAY + timedelta(minutes=10), DAY + timedelta(minutes=30)
    assert got == {
        (w0, "x_mean"): 2.0,
        (w0, "x_min"): 1.0,
        (w0, "x_max"): 3.0,
        (w0, "x_std"): pytest.approx(math.sqrt(2.0)),
        (w0, "x_count"): 2.0,
        (w1, "x_mean"): 15.0,
        (w1, "x_min"): 10.0,
        (w1, "x_max"): 20.0,
        (w1, "x_std"): pytest.approx(statistics.stdev([10.0, 20.0])),
        (w1, "x_count"): 2.0,
        (w3, "x_mean"): 7.5,
        (w3, "x_min"): 7.5,
        (w3, "x_max"): 7.5,
        (w3, "x_count"): 1.0,
    }
    # Sorted by window, then signal in configuration order.
    assert result["signal"].to_list()[:5] == ["x_mean", "x_min", "x_max", "x_std", "x_count"]
    assert result["timestamp"].is_sorted()


def test_arrow_input_with_utc_zone_and_other_units_gives_the_same_result() -> None:
    df = frame([5, 65, 700, 1300], [1.0, 2.0, 4.0, 8.0])
    expected = aggregate_10min(df, variables=["x"], aggregations=ALL)
    aware = df.with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))
    assert aggregate_10min(aware.to_arrow(), variables=["x"], aggregations=ALL).equals(expected)
    in_ns = df.with_columns(pl.col("timestamp").dt.cast_time_unit("ns"))
    assert aggregate_10min(in_ns, variables=["x"], aggregations=ALL).equals(expected)
    shuffled = df[[2, 0, 3, 1]]
    assert not shuffled["timestamp"].is_sorted()
    assert aggregate_10min(shuffled, variables=["x"], aggregations=ALL).equals(expected)
    # A frame in another zone names the same instants: the windows stay UTC.
    kolkata = frame([5, 65, 700, 1300], [1.0, 2.0, 4.0, 8.0], tz="Asia/Kolkata")
    assert aggregate_10min(kolkata, variables=["x"], aggregations=ALL).equals(expected)


def test_the_api_schema_is_accepted_as_is() -> None:
    table = pa.table(
        {
            "timestamp": pa.array(
                [datetime(2024, 3, 1, 0, 0, s, tzinfo=UTC) for s in range(3)],
                pa.timestamp("us", tz="UTC"),
            ),
            "wind_speed": [1.0, 2.0, 3.0],
            "power": [10.0, 20.0, 60.0],
        }
    )
    result = aggregate_10min(table, variables=["wind_speed", "power"], aggregations=["mean"])
    assert result.rows() == [(DAY, "wind_speed_mean", 2.0), (DAY, "power_mean", 30.0)]


def test_empty_input_and_bad_arguments() -> None:
    empty = aggregate_10min(frame([], []), variables=["x"], aggregations=ALL)
    assert empty.height == 0 and empty.schema == pl.Schema(AGGREGATE_SCHEMA)
    with pytest.raises(KeyError, match="median"):  # names are validated where config is read
        aggregate_10min(frame([0], [1.0]), variables=["x"], aggregations=["median"])
    with pytest.raises(ValueError, match=r"lack column.*power"):
        aggregate_10min(frame([0], [1.0]), variables=["power"], aggregations=["mean"])


def test_signal_names_are_variable_major() -> None:
    assert signal_names(["wind_speed", "power"], ["mean", "std"]) == [
        "wind_speed_mean",
        "wind_speed_std",
        "power_mean",
        "power_std",
    ]


# -- properties ------------------------------------------------------------------------------------

WINDOW_US = 600 * 1_000_000
DAY_US = 86_400 * 1_000_000

samples_strategy = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=DAY_US - 1),
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    ),
    min_size=0,
    max_size=400,
    unique_by=lambda pair: pair[0],
).map(sorted)


def samples_frame(pairs: list[tuple[int, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "timestamp": [DAY + timedelta(microseconds=us) for us, _ in pairs],
            "x": [v for _, v in pairs],
        },
        schema={"timestamp": pl.Datetime("us"), "x": pl.Float64},
    )


@contextmanager
def process_tz(name: str) -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs=samples_strategy, cut=st.integers(min_value=1, max_value=143))
def test_properties_of_the_aggregation(pairs: list[tuple[int, float]], cut: int) -> None:
    df = samples_frame(pairs)
    result = aggregate_10min(df, variables=["x"], aggregations=ALL)
    got = as_dict(result)
    windows = sorted({ts for ts, _ in got})

    # Each sample lies in exactly one window: the one starting at floor(t / 10 min).
    expected_counts: dict[datetime, int] = {}
    for us, _ in pairs:
        start = DAY + timedelta(microseconds=us - us % WINDOW_US)
        expected_counts[start] = expected_counts.get(start, 0) + 1
    assert {w: int(got[(w, "x_count")]) for w in windows} == expected_counts
    assert sum(expected_counts.values()) == len(pairs)

    values: dict[datetime, list[float]] = {}
    for us, value in pairs:
        values.setdefault(DAY + timedelta(microseconds=us - us % WINDOW_US), []).append(value)
    for w in windows:
        lo, hi, mean = got[(w, "x_min")], got[(w, "x_max")], got[(w, "x_mean")]
        scale = max(abs(lo), abs(hi), 1.0)
        assert lo - 1e-12 * scale <= mean <= hi + 1e-12 * scale
        assert (lo, hi) == (min(values[w]), max(values[w]))
        assert math.isclose(mean, statistics.fmean(values[w]), rel_tol=1e-9, abs_tol=1e-9 * scale)
        if expected_counts[w] >= 2:
            assert got[(w, "x_std")] >= 0.0
            exact = statistics.stdev(values[w])
            assert math.isclose(got[(w, "x_std")], exact, rel_tol=1e-9, abs_tol=1e-9 * scale)
        else:
            assert (w, "x_std") not in got

    # Splitting the day at a window boundary and aggregating the parts changes nothing.
    boundary = DAY + timedelta(minutes=10 * cut)
    parts = [df.filter(pl.col("timestamp") < boundary), df.filter(pl.col("timestamp") >= boundary)]
    pieces = pl.concat([aggregate_10min(p, variables=["x"], aggregations=ALL) for p in parts])
    assert pieces.equals(result)

    # The process's time zone plays no part, for naive-UTC frames and for the API's aware Arrow.
    aware = df.with_columns(pl.col("timestamp").dt.replace_time_zone("UTC")).to_arrow()
    for zone in ("America/St_Johns", "Asia/Kathmandu", "Pacific/Kiritimati"):
        with process_tz(zone):
            assert aggregate_10min(df, variables=["x"], aggregations=ALL).equals(result)
            assert aggregate_10min(aware, variables=["x"], aggregations=ALL).equals(result)
