import os
import time
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from windpipe.source.generator import (
    CUT_IN,
    CUT_OUT,
    RATED_POWER,
    generate,
    generate_day,
    power_curve,
)

DAYS = [date(2025, 1, 1) + timedelta(days=i) for i in range(120)]


@pytest.fixture(scope="module")
def season() -> pa.Table:
    """120 days of 1-minute samples."""
    return pa.concat_tables([generate_day(d, seed=3) for d in DAYS])


def test_power_never_exceeds_rated_and_is_zero_below_cut_in(season: pa.Table) -> None:
    wind = season["wind_speed"].to_numpy()
    power = season["power"].to_numpy()
    assert power.max() <= RATED_POWER
    assert power.min() >= 0.0
    assert np.all(power[wind < CUT_IN] == 0.0)
    assert np.all(power[wind >= CUT_OUT] == 0.0)
    near_rated = (wind > 13.0) & (wind < CUT_OUT)
    assert near_rated.sum() > 100 and power[near_rated].mean() > 0.95 * RATED_POWER


def test_power_follows_the_curve_with_small_noise(season: pa.Table) -> None:
    wind = season["wind_speed"].to_numpy()
    power = season["power"].to_numpy()
    partial = (wind > 5.0) & (wind < 11.0)
    relative = power[partial] / power_curve(wind[partial]) - 1.0
    assert abs(relative.mean()) < 0.01
    assert 0.01 < relative.std() < 0.06


def test_wind_is_weibull_like_with_shape_2_and_scale_8(season: pa.Table) -> None:
    wind = season["wind_speed"].to_numpy()
    # For a Weibull, k = 2 gives a coefficient of variation of 0.523 and mean = 0.886 * scale.
    cv = wind.std() / wind.mean()
    assert 0.45 < cv < 0.60
    assert 6.5 < wind.mean() / 0.886 < 9.5
    assert wind.min() >= 0.0
    assert np.quantile(wind, 0.99) < 25.0


def test_wind_is_autocorrelated_and_has_a_daily_cycle(season: pa.Table) -> None:
    wind = season["wind_speed"].to_numpy()
    centred = wind - wind.mean()
    lag1 = (centred[:-1] * centred[1:]).mean() / centred.var()
    assert lag1 > 0.8
    hours = (season["timestamp"].cast(pa.int64()).to_numpy() // 3_600_000_000) % 24
    afternoon = wind[(hours >= 13) & (hours < 17)].mean()
    night = wind[(hours >= 1) & (hours < 5)].mean()
    assert afternoon > night * 1.1
    temperature = season["ambient_temperature"].to_numpy()
    assert temperature[(hours >= 13) & (hours < 17)].mean() > temperature[hours < 5].mean() + 3


def test_same_seed_same_data_other_seed_other_data() -> None:
    day = date(2025, 6, 1)
    assert generate_day(day, seed=1).equals(generate_day(day, seed=1))
    assert not generate_day(day, seed=1).equals(generate_day(day, seed=2))


def test_a_timestamp_has_the_same_value_whatever_the_period() -> None:
    start = datetime(2025, 6, 1, 12, tzinfo=UTC)
    long = generate(start, start + timedelta(days=2), seed=5)
    short = generate(start + timedelta(hours=20), start + timedelta(hours=30), seed=5)
    assert long.slice(20 * 60, short.num_rows).equals(short)


def test_midnight_is_continuous() -> None:
    start = datetime(2025, 6, 1, 23, tzinfo=UTC)
    wind = generate(start, start + timedelta(hours=2), seed=5)["wind_speed"].to_numpy()
    steps = np.abs(np.diff(wind))
    assert steps[59] < 4 * np.median(steps) + 1.0  # 23:59 -> 00:00 is an ordinary step


def test_gaps_remove_about_the_requested_share_in_runs() -> None:
    full = generate_day(date(2025, 6, 1), seed=9)
    gappy = generate_day(date(2025, 6, 1), seed=9, gap_rate=0.05)
    missing = 1 - gappy.num_rows / full.num_rows
    assert 0.02 < missing < 0.08
    stamps = gappy["timestamp"].cast(pa.int64()).to_numpy()
    jumps = np.diff(stamps) // 60_000_000
    assert jumps.max() > 2  # at least one run of several missing minutes


def test_result_does_not_depend_on_the_process_timezone() -> None:
    before = generate_day(date(2025, 3, 30), seed=4)
    old = os.environ.get("TZ")
    try:
        os.environ["TZ"] = "Pacific/Chatham"
        time.tzset()
        after = generate_day(date(2025, 3, 30), seed=4)
    finally:
        if old is None:
            os.environ.pop("TZ")
        else:
            os.environ["TZ"] = old
        time.tzset()
    assert before.equals(after)


@pytest.mark.parametrize(("step", "rate"), [(7, 0.0), (60, 1.0), (60, -0.1)])
def test_bad_parameters_are_refused(step: int, rate: float) -> None:
    with pytest.raises(ValueError, match=r"does not divide a day|outside"):
        generate_day(date(2025, 1, 1), step_seconds=step, gap_rate=rate)
