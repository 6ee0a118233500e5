"""The shared window helpers against plain Python: runs of rows, integer keys of windows."""

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from windpipe.analytics.windows import (
    joined_windows,
    listed_rows,
    matching_rows,
    run_length,
    turbine_codes,
    window_keys,
)

RNG = np.random.default_rng(7)
START = datetime(2024, 1, 1)


def test_run_length_counts_each_rows_run() -> None:
    joins = RNG.random(500) < 0.6
    joins[0] = False
    expected, length = [], 0
    for i, j in enumerate(joins):
        length = length + 1 if j else 1
        if i + 1 == len(joins) or not joins[i + 1]:
            expected += [length] * length
    got = pl.DataFrame({"j": joins}).select(run_length("j").alias("n"))["n"].to_list()
    assert got == expected


def test_turbine_codes_whether_rows_are_grouped_or_not() -> None:
    grouped = pl.Series(["B", "B", "A", "A", "C"])
    code, names = turbine_codes(grouped)
    assert names.gather(code).to_list() == grouped.to_list()
    interleaved = pl.Series(["B", "A", "B", "C", "A"])
    code, names = turbine_codes(interleaved)
    assert names.gather(code).to_list() == interleaved.to_list()
    assert turbine_codes(pl.Series(["A", None])) is None


def test_window_keys_match_as_a_join_does() -> None:
    n = 300
    frame = pl.DataFrame(
        {
            "turbine": RNG.choice(["A", "B", "C"], n).tolist(),
            "timestamp": [START + timedelta(minutes=10 * int(k)) for k in RNG.integers(0, 200, n)],
        }
    ).unique(maintain_order=True)
    other = pl.concat(
        [
            frame.sample(40, seed=1),
            pl.DataFrame({"turbine": ["D", "A"], "timestamp": [START, START - timedelta(days=1)]}),
        ]
    )
    keys = window_keys(frame, other)
    assert keys is not None
    mine, theirs = keys
    expected = frame.with_row_index().join(other, on=["turbine", "timestamp"], how="semi")["index"]
    assert mine.is_in(theirs.implode()).arg_true().to_list() == sorted(expected.to_list())


@pytest.mark.parametrize("order", ["by turbine and time", "interleaved", "with a time repeated"])
def test_listed_rows_are_a_semi_joins_rows(order: str) -> None:
    # by turbine and time: a binary search per turbine; otherwise: the keys in a hash set
    n = 400
    frame = (
        pl.DataFrame(
            {
                "turbine": RNG.choice(["B", "A", "C"], n).tolist(),
                "timestamp": [
                    START + timedelta(minutes=10 * int(k)) for k in RNG.integers(-50, 200, n)
                ],
            }
        )
        .unique()
        .sort("turbine", "timestamp")
    )
    if order == "interleaved":
        frame = frame.sort("timestamp", "turbine")
    if order == "with a time repeated":
        frame = pl.concat([frame.head(5), frame.slice(4)])
    other = pl.concat(
        [
            frame.sample(60, seed=2),
            frame.sample(10, seed=3),  # some listed twice
            pl.DataFrame(
                {
                    "turbine": ["D", "A", "C"],
                    "timestamp": [START, START - timedelta(days=9), START + timedelta(days=9)],
                }
            ),
        ]
    )
    got = listed_rows(frame, other)
    assert got is not None
    expected = frame.with_row_index().join(other, on=["turbine", "timestamp"], how="semi")["index"]
    assert got.arg_true().to_list() == sorted(expected.to_list())
    assert not listed_rows(frame, other.head(0)).any()  # type: ignore[union-attr]
    assert listed_rows(frame.head(0), other) is None


@pytest.mark.parametrize("order", ["by turbine and time", "interleaved"])
def test_joined_windows_are_a_left_joins_rows(order: str) -> None:
    # by turbine and time: a gather from a binary search per turbine; otherwise: the join itself
    n = 400
    windows = (
        pl.DataFrame(
            {
                "turbine": RNG.choice(["B", "A", "C"], n).tolist(),
                "timestamp": [
                    START + timedelta(minutes=10 * int(k)) for k in RNG.integers(-50, 200, n)
                ],
            }
        )
        .unique()
        .sort("turbine", "timestamp")
        .with_columns(power=pl.int_range(pl.len()).cast(pl.Float64) / 7)
    )
    if order == "interleaved":
        windows = windows.sort("timestamp", "turbine")
    grid = pl.DataFrame(
        {
            "turbine": ["A", "D", "C", "B"] * 60,
            "timestamp": [START + timedelta(minutes=10 * (k // 4 - 10)) for k in range(240)],
        }
    )
    expected = grid.join(windows, on=["turbine", "timestamp"], how="left", maintain_order="left")
    assert joined_windows(grid, windows).equals(expected)
    assert joined_windows(windows.select("turbine", "timestamp"), windows).equals(windows)
    at = matching_rows(windows, grid)
    assert (at is None) == (order == "interleaved")
    if at is not None:
        assert windows["power"].gather(at).equals(expected["power"])
