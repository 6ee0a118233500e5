"""Each quality flag against an independent computation: OpenOA's ``unresponsive_flag`` and
``range_flag``, and hand-written NumPy references."""

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import polars as pl
from openoa.utils import filters

from windpipe.analytics.flags import (
    FlagConfig,
    flatline_flags,
    icing_flags,
    out_of_range_flags,
    stopped_with_wind_flags,
    window_flags,
)
from windpipe.analytics.power_curve import Site
from windpipe.catalog import window_categories

RNG = np.random.default_rng(19)
START = datetime(2024, 1, 1)
STEP = timedelta(minutes=10)


def _series_with_repeats(n: int) -> np.ndarray:
    """Values with runs of equal values of random lengths (1 to 6) and some gaps (NaN)."""
    values: list[float] = []
    while len(values) < n:
        values += [float(RNG.integers(0, 5))] * int(RNG.integers(1, 7))
    out = np.array(values[:n])
    out[RNG.random(n) < 0.05] = np.nan
    return out


def test_flatline_equals_openoa_unresponsive_flag_with_gaps_as_nan() -> None:
    n = 3000
    values = _series_with_repeats(n)
    stamps = [START + i * STEP for i in range(n)]
    for threshold in (2, 3, 4, 6):
        expected = filters.unresponsive_flag(
            pd.Series(values, name="x"), threshold=threshold
        ).to_numpy()
        # windpipe sees a missing window as no row at all: drop the NaNs
        kept = ~np.isnan(values)
        windows = pl.DataFrame(
            {
                "turbine": ["T"] * int(kept.sum()),
                "timestamp": [s for s, k in zip(stamps, kept, strict=True) if k],
                "power_mean": values[kept],
            }
        )
        got = flatline_flags(windows, ["power_mean"], min_windows=threshold)
        flagged = set(got["timestamp"].to_list())
        ours = np.array([s in flagged for s in stamps])
        np.testing.assert_array_equal(ours, expected.astype(bool))
        assert set(got["signal"].to_list()) <= {"power_mean"}


def test_flatline_runs_do_not_cross_turbines() -> None:
    windows = pl.DataFrame(
        {
            "turbine": ["A", "A", "B", "B"],
            "timestamp": [START, START + STEP, START + 2 * STEP, START + 3 * STEP],
            "wind_speed_mean": [5.0, 5.0, 5.0, 5.0],
        }
    )
    assert flatline_flags(windows, ["wind_speed_mean"], min_windows=3).height == 0
    assert flatline_flags(windows, ["wind_speed_mean"], min_windows=2).height == 4


def test_out_of_range_equals_openoa_range_flag() -> None:
    n = 2000
    v = RNG.uniform(-5, 70, n)
    windows = pl.DataFrame(
        {"turbine": ["T"] * n, "timestamp": [START + i * STEP for i in range(n)], "ws": v}
    )
    got = out_of_range_flags(windows, {"ws": (0.0, 60.0)})
    expected = filters.range_flag(pd.Series(v, name="x"), lower=0.0, upper=60.0).to_numpy()
    flagged = set(got["timestamp"].to_list())
    ours = np.array([START + i * STEP in flagged for i in range(n)])
    np.testing.assert_array_equal(ours, expected)


def _icing_frame() -> pl.DataFrame:
    n = 60
    v = np.full(n, 8.0)
    p = np.full(n, 1000.0) + RNG.normal(0, 10, n)
    t = np.full(n, 10.0)
    # windows 40..43 (40 minutes) cold and low: iced; 50..51 (20 minutes) cold and low: too short;
    # the other cold ones (44..49, 52..55) producing normally
    t[40:56] = -5.0
    p[40:56] = 1100.0
    p[40:44] = 500.0
    p[50:52] = 500.0
    return pl.DataFrame(
        {
            "turbine": ["T"] * n,
            "timestamp": [START + i * STEP for i in range(n)],
            "wind_speed_mean": v,
            "power_mean": p,
            "ambient_temperature_mean": t,
        }
    )


def test_icing_suspect_needs_cold_low_power_for_30_minutes() -> None:
    frame = _icing_frame()
    got = icing_flags(frame, temperature="ambient_temperature")
    # the reference: windows above +3 degC in the 8.0 m/s bin; their 10th percentile
    warm = frame.filter(pl.col("ambient_temperature_mean") > 3)["power_mean"].to_numpy()
    p10 = np.percentile(warm, 10)
    assert p10 > 900
    expected = [START + i * STEP for i in range(40, 44)]
    assert got["timestamp"].to_list() == expected
    assert got["flag"].unique().to_list() == ["icing_suspect"]
    assert got["signal"].to_list() == [None] * 4
    # a missing window breaks the run: without window 42, 40-41 and 43 are each too short
    gap = frame.filter(pl.col("timestamp") != START + 42 * STEP)
    assert icing_flags(gap, temperature="ambient_temperature").height == 0


def test_stopped_with_wind_unless_an_event_explains_it() -> None:
    stamps = [START + i * STEP for i in range(6)]
    windows = pl.DataFrame(
        {
            "turbine": ["T"] * 6,
            "timestamp": stamps,
            "wind_speed_mean": [8.0, 8.0, 3.0, 8.0, 4.0, 8.0],
            "power_mean": [0.0, -1.0, 0.0, 500.0, 0.0, -2.0],
        }
    )
    events = pl.DataFrame(
        {"turbine": ["T"], "start": [stamps[5]], "end": [stamps[5] + STEP], "code": ["101"]}
    ).with_columns(pl.col("start", "end").dt.replace_time_zone("UTC"))
    held = windows.select("turbine", "timestamp")
    categories = window_categories(events, held, held, {"101": "scheduled_maintenance"})
    got = stopped_with_wind_flags(windows, categories, {"T": Site()})
    # 0, 1: stopped above 3.5 m/s; 2: below cut-in; 3: producing; 4: above 3.5; 5: maintenance
    assert got["timestamp"].to_list() == [stamps[0], stamps[1], stamps[4]]
    # with a cut-in of 4.5 m/s window 4 is not flagged
    got = stopped_with_wind_flags(windows, categories, {"T": Site(cut_in_ms=4.5)})
    assert got["timestamp"].to_list() == [stamps[0], stamps[1]]


def test_window_flags_lists_every_flag_in_order() -> None:
    frame = _icing_frame().with_columns(
        pl.when(pl.int_range(pl.len()) == 3)
        .then(-1.0)
        .otherwise(pl.col("wind_speed_mean"))
        .alias("wind_speed_mean")
    )
    held = frame.select("turbine", "timestamp")
    empty = pl.DataFrame(
        schema={
            "turbine": pl.String,
            "start": pl.Datetime("us", "UTC"),
            "end": pl.Datetime("us", "UTC"),
            "code": pl.String,
        }
    )
    categories = window_categories(empty, held, held, {})
    config = FlagConfig(
        ranges={"wind_speed_mean": (0.0, 60.0)}, flatline_signals=["ambient_temperature_mean"]
    )
    got = window_flags(frame, categories, {"T": Site()}, config)
    kinds = got.group_by("flag").len().sort("flag")
    assert dict(kinds.iter_rows()) == {
        "out_of_range": 1,
        "flatline": 60,  # the temperature holds still in three runs: 0..39, 40..55, 56..59
        "icing_suspect": 4,
    }
    assert got.sort("turbine", "timestamp").equals(got.sort("turbine", "timestamp"))


def test_a_stop_an_event_explains_or_a_calm_is_no_flatline_nor_icing() -> None:
    frame = _icing_frame()
    held = frame.select("turbine", "timestamp")
    config = FlagConfig(flatline_signals=["ambient_temperature_mean"])

    def flags(events: pl.DataFrame, windows: pl.DataFrame = frame) -> dict[str, list[datetime]]:
        categories = window_categories(events, held, held, {"101": "forced_outage"})
        got = window_flags(windows, categories, {"T": Site(cut_in_ms=3.0)}, config)
        return {
            f: got.filter(pl.col("flag") == f)["timestamp"].to_list()
            for f in ("flatline", "icing_suspect")
        }

    def event(first: int, last: int) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "turbine": ["T"],
                "start": [START + first * STEP],
                "end": [START + (last + 1) * STEP],
                "code": ["101"],
            }
        ).with_columns(pl.col("start", "end").dt.replace_time_zone("UTC"))

    free = flags(event(0, -1))  # an event covering nothing
    assert free["icing_suspect"] == [START + i * STEP for i in range(40, 44)]
    assert len(free["flatline"]) == 60
    # a forced outage over 0..9 and 40..43: those windows are the stop, not a stuck sensor
    # nor ice; the flatline's other windows stay flagged
    stopped = flags(pl.concat([event(0, 9), event(40, 43)]))
    assert stopped["icing_suspect"] == []
    assert stopped["flatline"] == [
        t
        for t in free["flatline"]
        if t not in {START + i * STEP for i in [*range(10), *range(40, 44)]}
    ]
    # a calm in the middle of the iced run (at cut-in) breaks it: two windows each side, too short
    calm = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 42)
        .then(3.0)
        .otherwise(pl.col("wind_speed_mean"))
        .alias("wind_speed_mean")
    )
    assert flags(event(0, -1), calm)["icing_suspect"] == []
