"""Signal kinds in the transform, each against an independent NumPy computation: angles across the
0/360 wrap, counters across day boundaries and resets, state modes, 10-minute statistics rolled
up to the hour equal to the raw samples' own, and windows too thin to write."""

import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from windpipe.catalog import Rollup, SignalKind
from windpipe.etl.transform import aggregate, aggregate_10min

DAY = datetime(2024, 1, 24)
ANGLE = SignalKind.ANGLE


def _frame(seconds: np.ndarray, **columns: np.ndarray) -> pl.DataFrame:
    stamps = [DAY + timedelta(seconds=float(s)) for s in seconds]
    return pl.DataFrame({"timestamp": stamps, **columns}).with_columns(
        pl.col("timestamp").cast(pl.Datetime("us"))
    )


def _values(result: pl.DataFrame, signal: str) -> dict[datetime, float]:
    rows = result.filter(pl.col("signal") == signal).select("timestamp", "value").rows()
    return dict(rows)


def circular_mean(degrees: np.ndarray) -> float:
    """The direction of the mean unit vector, in [0, 360)."""
    radians = np.radians(degrees)
    return float(np.degrees(np.arctan2(np.sin(radians).mean(), np.cos(radians).mean())) % 360)


def yamartino(degrees: np.ndarray) -> float:
    """Yamartino's (1984) estimate of the standard deviation of a direction, in degrees."""
    radians = np.radians(degrees)
    eps = math.sqrt(max(0.0, 1 - (np.sin(radians).mean() ** 2 + np.cos(radians).mean() ** 2)))
    return math.degrees(math.asin(eps) * (1 + (2 / math.sqrt(3) - 1) * eps**3))


def angular_distance(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


def test_the_mean_of_350_and_10_degrees_is_north_not_south() -> None:
    frame = _frame(np.array([0, 60, 600, 660]), d=np.array([350.0, 10.0, 170.0, 190.0]))
    result = aggregate_10min(frame, rollup=Rollup({"d": ("mean", "std", "count")}, {"d": ANGLE}))
    mean = _values(result, "d_mean")
    assert angular_distance(mean[DAY], 0.0) < 1e-9
    assert 0 <= mean[DAY] < 360
    assert mean[DAY + timedelta(minutes=10)] == pytest.approx(180.0)
    assert _values(result, "d_std")[DAY] == pytest.approx(yamartino(np.array([350.0, 10.0])))
    assert _values(result, "d_count")[DAY] == 2


def test_angles_match_numpy_across_the_wrap_on_random_windows() -> None:
    rng = np.random.default_rng(7)
    seconds = np.arange(0, 6 * 3600, 5)
    # Wind veering around north: the samples straddle 0/360 in most windows.
    direction = (rng.normal(0, 25, seconds.size) + 20 * np.sin(seconds / 3000)) % 360
    frame = _frame(seconds, d=direction)
    result = aggregate_10min(frame, rollup=Rollup({"d": ("mean", "std")}, {"d": ANGLE}))
    means, stds = _values(result, "d_mean"), _values(result, "d_std")
    windows = seconds // 600
    assert len(means) == len(np.unique(windows))
    for w in np.unique(windows):
        chunk = direction[windows == w]
        start = DAY + timedelta(seconds=int(w) * 600)
        assert angular_distance(means[start], circular_mean(chunk)) < 1e-9
        assert stds[start] == pytest.approx(yamartino(chunk), rel=1e-9)
        # The arithmetic mean is wrong by up to 180 degrees here: the kind matters.
    wrong = [angular_distance(float(direction[windows == w].mean()), means[DAY + timedelta(
        seconds=int(w) * 600)]) for w in np.unique(windows)]  # fmt: skip
    assert max(wrong) > 90


def test_a_signed_angle_is_reported_in_minus_180_to_180_and_cancelling_samples_have_no_mean() -> (
    None
):
    frame = _frame(np.array([0, 1, 600, 601]), yaw=np.array([-10.0, -20.0, 0.0, 180.0]))
    result = aggregate_10min(
        frame, rollup=Rollup({"yaw": ("mean", "std")}, {"yaw": SignalKind.SIGNED_ANGLE})
    )
    assert _values(result, "yaw_mean") == {DAY: pytest.approx(-15.0)}  # 0 and 180 cancel
    assert DAY + timedelta(minutes=10) in _values(result, "yaw_std")  # the spread exists


def increases(values: np.ndarray) -> np.ndarray:
    """Per sample, the counter's increase since the previous one; a drop is a reset to zero."""
    steps = np.diff(values)
    return np.where(steps >= 0, steps, values[1:])


def test_counter_deltas_across_a_reset_and_a_day_boundary_add_up_to_the_increase() -> None:
    rng = np.random.default_rng(3)
    seconds = np.arange(0, 2 * 86_400, 60)
    energy = np.cumsum(rng.uniform(0, 30, seconds.size))
    reset = seconds.size // 3
    energy[reset:] -= energy[reset] - 12.5  # the counter restarts from 0 and reaches 12.5 first
    frame = _frame(seconds, energy=energy)
    rollup = Rollup({"energy": ("delta", "last", "count")}, {"energy": SignalKind.COUNTER})
    first_day = frame.filter(pl.col("timestamp") < DAY + timedelta(days=1))
    second_day = frame.filter(pl.col("timestamp") >= DAY + timedelta(days=1))
    day_one = aggregate_10min(first_day, rollup=rollup)
    # The second day starts from the first day's last sample, as the ETL fetches it.
    day_two = aggregate_10min(second_day, rollup=rollup, previous=first_day.tail(1))
    deltas = {**_values(day_one, "energy_delta"), **_values(day_two, "energy_delta")}
    expected = increases(energy)
    assert sum(deltas.values()) == pytest.approx(expected.sum(), rel=1e-12)
    # Window by window: the increase whose later sample lies in the window.
    windows = seconds[1:] // 600
    for w in np.unique(windows):
        start = DAY + timedelta(seconds=int(w) * 600)
        assert deltas[start] == pytest.approx(expected[windows == w].sum(), rel=1e-12)
    assert (
        _values(day_two, "energy_last")[DAY + timedelta(days=2) - timedelta(minutes=10)]
        == (energy[-1])
    )


def test_state_mode_is_the_code_held_longest_ties_going_to_the_latest() -> None:
    # Window 0: 3 x code 1, 2 x code 2 -> 1. Window 1: 2 x 5 then 2 x 7 -> tie, latest is 7.
    frame = _frame(
        np.array([0, 60, 120, 180, 240, 600, 660, 720, 780]),
        status=np.array([1.0, 2.0, 1.0, 2.0, 1.0, 5.0, 5.0, 7.0, 7.0]),
    )
    rollup = Rollup({"status": ("last", "mode", "count")}, {"status": SignalKind.STATE})
    result = aggregate_10min(frame, rollup=rollup)
    later = DAY + timedelta(minutes=10)
    assert _values(result, "status_mode") == {DAY: 1.0, later: 7.0}
    assert _values(result, "status_last") == {DAY: 1.0, later: 7.0}
    assert _values(result, "status_count") == {DAY: 5.0, later: 4.0}
    assert result["signal"].to_list()[:3] == ["status_last", "status_mode", "status_count"]


def ten_minute_statistics(seconds: np.ndarray, values: np.ndarray) -> pl.DataFrame:
    """What a SCADA export holds: per 10-minute period the mean, min, max, sample std, count."""
    periods = seconds // 600
    rows = []
    for p in np.unique(periods):
        chunk = values[periods == p]
        rows.append(
            {
                "timestamp": DAY + timedelta(seconds=int(p) * 600),
                "ws": chunk.mean(),
                "ws__min": chunk.min(),
                "ws__max": chunk.max(),
                "ws__std": chunk.std(ddof=1),
                "ws__count": float(chunk.size),
            }
        )
    return pl.DataFrame(rows).with_columns(pl.col("timestamp").cast(pl.Datetime("us")))


def test_ten_minute_statistics_pass_through_and_roll_up_to_the_raw_samples_hourly_statistics() -> (
    None
):
    rng = np.random.default_rng(11)
    seconds = np.arange(0, 5 * 3600)  # 1 Hz for five hours
    keep = rng.uniform(size=seconds.size) > 0.05  # a few samples missing: unequal counts
    seconds = seconds[keep]
    speed = 8 + np.cumsum(rng.normal(0, 0.05, seconds.size))
    exported = ten_minute_statistics(seconds, speed)
    rollup = Rollup({"ws": ("mean", "min", "max", "std", "count")})

    same = aggregate_10min(exported, rollup=rollup)
    for stat, column in (("mean", "ws"), ("min", "ws__min"), ("max", "ws__max"),
                         ("std", "ws__std"), ("count", "ws__count")):  # fmt: skip
        assert _values(same, f"ws_{stat}") == dict(exported.select("timestamp", column).rows())

    hourly = aggregate_10min(exported, rollup=rollup, window=timedelta(hours=1))
    hours = seconds // 3600
    for h in np.unique(hours):
        chunk = speed[hours == h]
        start = DAY + timedelta(hours=int(h))
        assert _values(hourly, "ws_mean")[start] == pytest.approx(chunk.mean(), rel=1e-9)
        assert _values(hourly, "ws_min")[start] == chunk.min()
        assert _values(hourly, "ws_max")[start] == chunk.max()
        assert _values(hourly, "ws_std")[start] == pytest.approx(chunk.std(ddof=1), rel=1e-9)
        assert _values(hourly, "ws_count")[start] == chunk.size


def test_a_statistic_some_period_lacks_is_absent_from_the_roll_up() -> None:
    seconds = np.arange(0, 1200)
    exported = ten_minute_statistics(seconds, np.linspace(1, 2, seconds.size))
    exported = exported.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(None)
        .otherwise(pl.col("ws__max"))
        .alias("ws__max")
    )
    hourly = aggregate_10min(
        exported, rollup=Rollup({"ws": ("mean", "max", "std")}), window=timedelta(hours=1)
    )
    assert set(hourly["signal"]) == {"ws_mean", "ws_std"}


def test_windows_under_min_coverage_are_not_written_and_are_counted_per_day() -> None:
    # 1-minute samples; the 00:10 window holds 4 of 10, the 00:20 window 6 of 10.
    seconds = np.array([*range(0, 600, 60), *range(600, 840, 60), *range(1200, 1560, 60)])
    frame = _frame(seconds, ws=np.ones(seconds.size))
    rollup = Rollup({"ws": ("mean",)}, min_coverage=0.5)
    result = aggregate(frame, rollup)
    assert set(_values(result.frame, "ws_mean")) == {DAY, DAY + timedelta(minutes=20)}
    assert result.thin == {("", DAY.date()): 1}
    declared = aggregate(frame, Rollup({"ws": ("mean",)}, min_coverage=0.7,
                                       sampling_interval=timedelta(minutes=1)))  # fmt: skip
    assert set(_values(declared.frame, "ws_mean")) == {DAY}
    assert declared.thin == {("", DAY.date()): 2}
    everything = aggregate(frame, Rollup({"ws": ("mean",)}))
    assert len(everything.frame) == 3 and everything.thin == {}
