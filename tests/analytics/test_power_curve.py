"""Power curves against independent computations: OpenOA's air density, NumPy binning, the
completeness rule by hand."""

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import polars as pl
import pytest
from openoa.utils import met_data_processing as met

from windpipe.analytics.power_curve import (
    CurveConfig,
    Site,
    air_density,
    binned,
    completeness,
    normalised_wind_speed,
    power_curves,
    standard_pressure,
    usable_windows,
    with_density,
)
from windpipe.analytics.windows import bin_index
from windpipe.catalog import window_categories

RNG = np.random.default_rng(24)
NO_EVENTS = pl.DataFrame(
    schema={
        "turbine": pl.String,
        "start": pl.Datetime("us", "UTC"),
        "end": pl.Datetime("us", "UTC"),
        "code": pl.String,
    }
)
NO_FLAGS = pl.DataFrame(
    schema={
        "turbine": pl.String,
        "timestamp": pl.Datetime("us"),
        "flag": pl.String,
        "signal": pl.String,
    }
)


def _eval(expr: pl.Expr, **columns: np.ndarray) -> np.ndarray:
    return pl.DataFrame(columns).select(expr.alias("x"))["x"].to_numpy()


def test_dry_air_density_agrees_with_openoa_at_zero_humidity() -> None:
    t_c = RNG.uniform(-30, 40, 2000)
    b = RNG.uniform(85_000, 105_000, 2000)
    ours = _eval(air_density(pl.col("t"), pl.col("b")), t=t_c, b=b)
    theirs = met.compute_air_density(
        pd.Series(t_c + 273.15), pd.Series(b), pd.Series(np.zeros_like(t_c))
    ).to_numpy()
    # OpenOA takes R0 = 287.058 J/(kg K), the standard 287.05: a relative 2.8e-5 apart
    np.testing.assert_allclose(ours, theirs, rtol=3e-5, atol=0)
    np.testing.assert_allclose(ours, b / (287.05 * (t_c + 273.15)), rtol=1e-12)


def test_humid_air_density_agrees_with_openoa() -> None:
    t_c = RNG.uniform(-30, 40, 2000)
    b = RNG.uniform(85_000, 105_000, 2000)
    rh = RNG.uniform(0, 100, 2000)
    ours = _eval(air_density(pl.col("t"), pl.col("b"), pl.col("rh") / 100), t=t_c, b=b, rh=rh)
    theirs = met.compute_air_density(
        pd.Series(t_c + 273.15), pd.Series(b), pd.Series(rh / 100)
    ).to_numpy()
    np.testing.assert_allclose(ours, theirs, rtol=3e-5, atol=0)
    # humid air is lighter than dry air at the same temperature and pressure
    dry = b / (287.05 * (t_c + 273.15))
    assert np.all(ours <= dry)


def test_standard_atmosphere_pressure() -> None:
    assert standard_pressure(None) == 101_325.0
    assert standard_pressure(0) == 101_325.0
    h = 500.0
    assert standard_pressure(h) == pytest.approx(101_325 * (1 - 2.25577e-5 * h) ** 5.25588)
    assert standard_pressure(1000) == pytest.approx(89_875, abs=5)  # ISO 2533 table


def test_normalised_wind_speed() -> None:
    v = RNG.uniform(0, 25, 500)
    rho = RNG.uniform(1.0, 1.4, 500)
    ours = _eval(normalised_wind_speed(pl.col("v"), pl.col("r"), 1.225), v=v, r=rho)
    np.testing.assert_allclose(ours, v * np.cbrt(rho / 1.225), rtol=1e-12)


def test_normalised_speed_at_the_reference_density_is_the_speed_bit_for_bit() -> None:
    # the cube root of exactly 1 is exactly 1: a speed on a bin's edge stays on it
    speeds = np.array([3.25, 3.75, 0.25, 12.0, 24.75])
    ours = _eval(
        normalised_wind_speed(pl.col("v"), pl.col("r"), 1.225), v=speeds, r=speeds * 0 + 1.225
    )
    assert ours.tolist() == speeds.tolist()


def test_bin_edges_x25_belongs_up_x75_belongs_up() -> None:
    speeds = [3.25, 3.2499999, 3.75, 3.7499999, 0.0, 0.24, 0.25, 12.0]
    got = _eval(bin_index(pl.col("v")) * 0.5, v=np.array(speeds))
    assert got.tolist() == [3.5, 3.0, 4.0, 3.5, 0.0, 0.0, 0.5, 12.0]


def _windows(n: int, turbine: str = "T1", **extra: np.ndarray) -> pl.DataFrame:
    start = datetime(2024, 1, 1)
    v = RNG.uniform(0, 20, n)
    p = np.clip(2000 * ((v - 3) / 9) ** 3, 0, 2000) * (v > 3) + RNG.normal(0, 5, n)
    return pl.DataFrame(
        {
            "turbine": [turbine] * n,
            "timestamp": [start + timedelta(minutes=10 * i) for i in range(n)],
            "wind_speed_mean": v,
            "power_mean": p,
            "ambient_temperature_mean": RNG.uniform(-10, 25, n),
            **extra,
        }
    )


def test_bins_agree_with_a_numpy_binning() -> None:
    windows = _windows(3000)
    dense = with_density(windows, {"T1": Site(elevation_m=300)}, CurveConfig())
    bins = binned(dense)
    t = windows["ambient_temperature_mean"].to_numpy() + 273.15
    b = 101_325 * (1 - 2.25577e-5 * 300) ** 5.25588
    rho = b / (287.05 * t)
    vn = windows["wind_speed_mean"].to_numpy() * np.cbrt(rho / 1.225)
    k = np.floor(vn / 0.5 + 0.5)
    p = windows["power_mean"].to_numpy()
    for row in bins.iter_rows(named=True):
        members = k * 0.5 == row["bin"]
        assert row["windows"] == members.sum()
        assert row["wind_speed"] == pytest.approx(vn[members].mean(), rel=1e-12)
        assert row["power"] == pytest.approx(p[members].mean(), rel=1e-9, abs=1e-9)
        assert row["density"] == pytest.approx(rho[members].mean(), rel=1e-12)
        if members.sum() > 1:
            assert row["power_std"] == pytest.approx(p[members].std(ddof=1), rel=1e-9)
        assert row["drawn"] == (members.sum() >= 3)


def test_pressure_and_humidity_signals_are_used() -> None:
    n = 50
    windows = _windows(
        n, pressure_mean=RNG.uniform(950, 1030, n), humidity_mean=RNG.uniform(20, 100, n)
    )
    config = CurveConfig(pressure="pressure", pressure_to_pa=100.0, humidity="humidity")
    got = with_density(windows, {"T1": Site(elevation_m=2000)}, config)["density"].to_numpy()
    t = windows["ambient_temperature_mean"].to_numpy() + 273.15
    b = windows["pressure_mean"].to_numpy() * 100
    phi = windows["humidity_mean"].to_numpy() / 100
    pw = 2.05e-5 * np.exp(0.0631846 * t)
    np.testing.assert_allclose(got, (b / 287.05 - phi * pw * (1 / 287.05 - 1 / 461.5)) / t)


def _bins(counts: dict[float, int], power: dict[float, float]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "turbine": ["T"] * len(counts),
            "bin": list(counts),
            "windows": list(counts.values()),
            "wind_speed": list(counts),
            "power": [power.get(b, 0.0) for b in counts],
            "power_std": [0.0] * len(counts),
            "density": [1.225] * len(counts),
            "drawn": [n >= 3 for n in counts.values()],
        }
    )


def _ramp(speed: float) -> float:
    return float(min(2000.0, max(0.0, 2000 * (speed - 3) / 9)))


def test_completeness_rule() -> None:
    speeds = [k * 0.5 for k in range(0, 41)]  # 0 .. 20 m/s
    power = {s: _ramp(s) for s in speeds}
    # 85 % of 2000 kW is reached at 3 + 0.85 * 9 = 10.65 m/s -> up to the bin of 15.975 (16.0)
    counts = {s: 60 for s in speeds}  # 41 bins x 60 x 10 min = 410 h
    facts = completeness(_bins(counts, power), Site(rated_power_kw=2000, cut_in_ms=3.5))
    assert facts.speed_at_85 == pytest.approx(10.65)
    assert (facts.low, facts.high) == (2.5, 16.0)
    assert facts.complete and facts.missing_bins == []
    # a bin inside the range with 2 windows: incomplete, and it is named
    thin = {**counts, 9.0: 2}
    facts = completeness(_bins(thin, power), Site(rated_power_kw=2000, cut_in_ms=3.5))
    assert not facts.complete and facts.missing_bins == [9.0]
    # one outside the range does not matter (2.0 is below cut-in - 1; 16.5 above 1.5 x V85)
    outside = {**counts, 2.0: 0, 16.5: 1}
    assert completeness(_bins(outside, power), Site(rated_power_kw=2000, cut_in_ms=3.5)).complete
    # fewer than 180 hours: incomplete although every bin holds 3 windows
    few = {s: 20 for s in speeds}  # 41 x 20 x 10 min = 136.7 h
    facts = completeness(_bins(few, power), Site(rated_power_kw=2000, cut_in_ms=3.5))
    assert facts.hours == pytest.approx(41 * 20 / 6) and not facts.complete
    # cut-in from the curve: the first drawn bin producing power
    facts = completeness(_bins(counts, power), Site(rated_power_kw=2000))
    assert (facts.cut_in, facts.cut_in_source) == (3.5, "curve")
    # never reaching 85 % of rated power: incomplete
    facts = completeness(_bins(counts, power), Site(rated_power_kw=5000))
    assert facts.speed_at_85 is None and not facts.complete


def test_power_curves_leave_out_events_thin_windows_and_flags() -> None:
    n = 400
    windows = _windows(n, wind_speed_count=np.full(n, 600.0), power_count=np.full(n, 600.0))
    windows = windows.with_columns(
        pl.when(pl.int_range(pl.len()) == 5)
        .then(599.0)
        .otherwise(pl.col("wind_speed_count"))
        .alias("wind_speed_count")
    )
    stamps = windows["timestamp"]
    events = pl.DataFrame(
        {
            "turbine": ["T1"],
            "start": [stamps[10].replace(tzinfo=None)],
            "end": [stamps[13].replace(tzinfo=None)],
            "code": ["205"],
        }
    ).with_columns(pl.col("start", "end").dt.replace_time_zone("UTC"))
    flags = pl.DataFrame(
        {
            "turbine": ["T1", "T1", "T1"],
            "timestamp": [stamps[20], stamps[21], stamps[22]],
            "flag": ["flatline", "icing_suspect", "flatline"],
            "signal": ["wind_speed_mean", None, "wind_direction_mean"],
        }
    )
    held = windows.select("turbine", "timestamp")
    categories = window_categories(events, held, held, {})
    curves = power_curves(windows, categories, flags, {"T1": Site()}, CurveConfig())
    # window 5 (599 of 600 samples), 10..12 (the event), 20 and 21 (flags) are left out;
    # 22's flag is on a signal the curve does not use
    assert curves.used == {"T1": n - 6}
    assert int(curves.bins["windows"].sum()) == n - 6
    assert curves.not_normalised == {"T1": 0}
    loose = power_curves(
        windows, categories, NO_FLAGS, {"T1": Site()}, CurveConfig(min_coverage=0.99)
    )
    assert loose.used == {"T1": n - 3}


def _farm(turbines: int, n: int) -> pl.DataFrame:
    """``turbines`` turbines' ``n`` windows each, with a temperature, some gaps in the data."""
    start = datetime(2024, 1, 1)
    frames = []
    for t in range(turbines):
        v = RNG.weibull(2.0, n) * 8.0
        frames.append(
            pl.DataFrame(
                {
                    "turbine": f"T{t}",
                    "timestamp": [start + i * timedelta(minutes=10) for i in range(n)],
                    "wind_speed_mean": v,
                    "power_mean": np.clip(2000 * ((v - 3) / 9) ** 3, 0, 2000) * (v > 3),
                    "ambient_temperature_mean": RNG.normal(5, 8, n),
                }
            )
        )
    farm = pl.concat(frames)
    gaps = pl.int_range(pl.len()) % 37 == 0
    return farm.with_columns(
        pl.when(gaps)
        .then(None)
        .otherwise(pl.col("ambient_temperature_mean"))
        .alias("ambient_temperature_mean")
    )


@pytest.mark.parametrize("order", ["by turbine", "interleaved"])
def test_power_curves_in_one_pass_equal_the_steps_one_by_one(order: str) -> None:
    # power_curves takes one pass (masks, integer keys) when the categories are of the windows
    # themselves; the public steps, with joins on categories listed otherwise, must agree exactly
    windows = _farm(3, 600)
    if order == "interleaved":
        windows = windows.sort("timestamp", "turbine")
    held = windows.select("turbine", "timestamp")
    events = pl.DataFrame(
        {
            "turbine": ["T1"],
            "start": [datetime(2024, 1, 2)],
            "end": [datetime(2024, 1, 2, 6)],
            "code": ["205"],
        }
    ).with_columns(pl.col("start", "end").dt.replace_time_zone("UTC"))
    categories = window_categories(events, held, held, {})
    flags = windows.filter(pl.col("wind_speed_mean") > 12).select(
        "turbine",
        "timestamp",
        pl.lit("flatline").alias("flag"),
        pl.lit("wind_speed_mean").alias("signal"),
    )
    sites = {"T0": Site(), "T1": Site(elevation_m=300.0), "T2": Site(), "T9": Site()}
    config = CurveConfig()
    curves = power_curves(windows, categories, flags, sites, config)
    listed_otherwise = categories.reverse()  # the same categories, joined rather than masked
    apart = power_curves(windows, listed_otherwise, flags, sites, config)
    assert curves.bins.equals(apart.bins)
    assert (curves.used, curves.not_normalised) == (apart.used, apart.not_normalised)
    assert curves.completeness == apart.completeness
    steps = binned(
        with_density(usable_windows(windows, listed_otherwise, flags, config), sites, config)
    )
    assert steps.equals(curves.bins.filter(pl.col("windows") > 0))
    assert curves.not_normalised["T0"] > 0 and curves.used["T9"] == 0
