import itertools
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from windpipe.source.generator import (
    CURTAILED,
    DEFAULT_TURBINE,
    RUNNING,
    STATUS_CODES,
    STOPPED,
    STORM,
    WAITING,
    Meter,
    TurbineSpec,
    farm,
    generate,
    generate_day,
    generate_days,
    power_curve,
    seeded_meters,
    split_by_turbine,
)

START = datetime(2025, 1, 1, tzinfo=UTC)
FARM = farm(4)
COLUMNS = [
    "turbine",
    "timestamp",
    "wind_speed",
    "power",
    "ambient_temperature",
    "wind_direction",
    "nacelle_direction",
    "pitch_angle",
    "rotor_speed",
    "energy",
    "status",
]


@pytest.fixture(scope="module")
def season() -> dict[str, pa.Table]:
    """120 days of 1-minute samples of a 4-turbine farm, per turbine."""
    return split_by_turbine(generate(START, START + timedelta(days=120), turbines=FARM, seed=3))


def _column(table: pa.Table, name: str) -> np.ndarray:
    return table[name].to_numpy()


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` of each run of True."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _ten_minute_means(values: np.ndarray) -> np.ndarray:
    return values.reshape(-1, 10).mean(axis=1)


def test_a_day_is_one_table_sorted_by_turbine_then_time() -> None:
    specs = [FARM[2], FARM[0], FARM[1]]
    table = generate_day(date(2025, 6, 1), turbines=specs, step_seconds=600)
    assert table.column_names == COLUMNS
    assert table.schema.field("turbine").type == pa.string()
    assert not table.schema.field("turbine").nullable
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert all(table.schema.field(c).type == pa.float64() for c in COLUMNS[2:])
    assert all(table[c].null_count == 0 for c in COLUMNS)
    assert table["turbine"].to_pylist() == [s.id for s in specs for _ in range(144)]
    parts = split_by_turbine(table)
    assert list(parts) == ["WTG03", "WTG01", "WTG02"]
    for part in parts.values():
        stamps = part["timestamp"].cast(pa.int64()).to_numpy()
        assert np.all(np.diff(stamps) == 600_000_000)
        assert part["timestamp"][0].as_py() == datetime(2025, 6, 1, tzinfo=UTC)


def test_split_by_turbine_slices_without_copying() -> None:
    table = generate_day(date(2025, 6, 1), turbines=FARM)
    parts = split_by_turbine(table)
    assert [p.num_rows for p in parts.values()] == [1440] * 4
    assert pa.concat_tables(parts.values()).equals(table)
    whole = table["power"].chunk(0).buffers()[1]
    second = parts["WTG02"]["power"].chunk(0)
    assert second.buffers()[1].address == whole.address  # the same memory, at an offset
    assert second.offset == 1440


def test_the_farm_has_the_default_turbine_first_and_slightly_different_curves() -> None:
    specs = farm(12)
    assert all(type(s.cut_in) is type(s.rated_speed) is float for s in specs)
    assert [s.id for s in specs] == [f"WTG{i:02d}" for i in range(1, 13)]
    assert specs[0] == DEFAULT_TURBINE == TurbineSpec("WTG01")
    assert farm(3) == specs[:3]  # a turbine's curve does not depend on the farm's size
    assert len({(s.cut_in, s.rated_speed) for s in specs}) == 12
    assert all(2.7 <= s.cut_in <= 3.3 and 11.3 <= s.rated_speed <= 12.7 for s in specs)
    curves = np.array([power_curve(np.array([5.0, 8.0, 11.0]), s) for s in specs])
    assert np.all(curves.std(axis=0) / curves.mean(axis=0) < 0.15)
    with pytest.raises(ValueError, match="at least 1"):
        farm(0)


def test_power_stays_between_own_consumption_and_rated(season: dict[str, pa.Table]) -> None:
    for spec in FARM:
        wind, power = _column(season[spec.id], "wind_speed"), _column(season[spec.id], "power")
        assert power.max() <= spec.rated_power_kw
        assert power.min() >= -20.0
        assert np.all(power[wind < spec.cut_in] <= 0.0)
        assert np.all(power[wind >= spec.cut_out] <= 0.0)
        near_rated = (wind > spec.rated_speed + 1.0) & (wind < spec.cut_out)
        assert near_rated.sum() > 100
        assert np.median(power[near_rated]) > 0.95 * spec.rated_power_kw


def test_negative_power_is_consumption_while_not_producing(season: dict[str, pa.Table]) -> None:
    for spec in FARM:
        part = season[spec.id]
        wind, power, status = (_column(part, c) for c in ("wind_speed", "power", "status"))
        calm = wind < spec.cut_in
        assert 0.8 < (power[calm] < 0).mean() < 0.99  # mostly, not always, a little consumption
        assert -3.0 < np.median(power[calm]) < 0.0
        # Otherwise (high-wind stops aside) it consumes only when stopped, for half an hour or more.
        for lo, hi in _runs(power <= 0.0)[1:-1]:  # the first and last may be cut by the period
            operable = (wind[lo:hi] >= spec.cut_in) & (status[lo:hi] != STORM)
            if np.any((power[lo:hi] < 0) & operable):
                assert hi - lo >= 30
        # As in 10-minute SCADA: calm periods mostly show a slightly negative mean power.
        calm_periods = _ten_minute_means(wind) < 2.5
        assert (_ten_minute_means(power)[calm_periods] < 0).mean() > 0.6


def test_turbines_stop_now_and_then_for_hours_while_the_wind_blows(
    season: dict[str, pa.Table],
) -> None:
    shares = []
    for spec in FARM:
        wind, power = _column(season[spec.id], "wind_speed"), _column(season[spec.id], "power")
        windy = (wind > 6.0) & (wind < spec.cut_out)
        stopped = windy & (power <= 0.0)
        shares.append(stopped.sum() / windy.sum())
        episodes = [hi - lo for lo, hi in _runs(power <= 0.0) if stopped[lo:hi].any()]
        assert len(episodes) >= 2
        assert np.median(episodes) >= 30  # minutes: stops, not flickers
    assert all(0.002 < s < 0.08 for s in shares)
    assert 0.01 < np.mean(shares) < 0.05


def test_ten_minute_wind_is_correlated_between_turbines(season: dict[str, pa.Table]) -> None:
    means = [_ten_minute_means(_column(season[s.id], "wind_speed")) for s in FARM]
    for a, b in itertools.combinations(means, 2):
        assert 0.9 < np.corrcoef(a, b)[0, 1] < 0.99
    # Each turbine has its own turbulence: minute by minute they differ more.
    minutes = [_column(season[s.id], "wind_speed") for s in FARM]
    assert np.corrcoef(minutes[0], minutes[1])[0, 1] < np.corrcoef(means[0], means[1])[0, 1]


def test_gusts_reach_turbines_at_slightly_different_times() -> None:
    table = generate(START, START + timedelta(days=3), turbines=FARM, step_seconds=10, seed=3)
    wind = [_column(t, "wind_speed") for t in split_by_turbine(table).values()]
    lags = []
    for a, b in itertools.combinations(wind, 2):
        shifts = range(-12, 13)  # ±2 minutes in 10-second steps
        corr = [np.corrcoef(a[12 + k : len(a) - 12 + k], b[12:-12])[0, 1] for k in shifts]
        lags.append(10 * shifts[int(np.argmax(corr))])
    assert any(lag != 0 for lag in lags)
    assert all(abs(lag) <= 90 for lag in lags)


def test_wind_is_weibull_like_with_shape_2_and_a_mean_of_7_to_9(
    season: dict[str, pa.Table],
) -> None:
    for table in season.values():
        wind = _column(table, "wind_speed")
        # For a Weibull, k = 2 gives a coefficient of variation of 0.523.
        assert 0.45 < wind.std() / wind.mean() < 0.60
        assert 6.8 < wind.mean() < 9.0
        assert wind.min() >= 0.0
        assert np.quantile(wind, 0.99) < 25.0
        direction = _column(table, "wind_direction")
        assert direction.min() >= 0.0 and direction.max() < 360.0


def test_wind_is_autocorrelated_and_has_a_daily_cycle(season: dict[str, pa.Table]) -> None:
    table = season["WTG01"]
    wind = _column(table, "wind_speed")
    centred = wind - wind.mean()
    lag1 = (centred[:-1] * centred[1:]).mean() / centred.var()
    assert lag1 > 0.8
    hours = (table["timestamp"].cast(pa.int64()).to_numpy() // 3_600_000_000) % 24
    afternoon = wind[(hours >= 13) & (hours < 17)].mean()
    night = wind[(hours >= 1) & (hours < 5)].mean()
    assert afternoon > night * 1.1
    temperature = _column(table, "ambient_temperature")
    assert temperature[(hours >= 13) & (hours < 17)].mean() > temperature[hours < 5].mean() + 3


def test_same_seed_same_data_other_seed_other_data() -> None:
    day = date(2025, 6, 1)
    assert generate_day(day, seed=1).equals(generate_day(day, seed=1))
    assert not generate_day(day, seed=1).equals(generate_day(day, seed=2))


def test_a_turbine_has_the_same_values_whatever_the_farm_and_the_period() -> None:
    start = datetime(2025, 6, 1, 12, tzinfo=UTC)
    big = split_by_turbine(generate(start, start + timedelta(days=2), turbines=farm(10), seed=5))
    small = generate(
        start + timedelta(hours=20), start + timedelta(hours=30), turbines=[FARM[2]], seed=5
    )
    same = big["WTG03"].slice(20 * 60, small.num_rows)
    memoryless = [c for c in COLUMNS if c != "energy"]
    assert same.select(memoryless).equals(small.select(memoryless))
    # The energy counter remembers where it started; what it adds does not depend on that.
    assert np.allclose(
        np.diff(_column(same, "energy")), np.diff(_column(small, "energy")), atol=2e-3
    )
    alone = generate_day(date(2025, 6, 2), turbines=[FARM[3]], seed=5, gap_rate=0.05)
    among = generate_day(date(2025, 6, 2), turbines=FARM, seed=5, gap_rate=0.05)
    assert split_by_turbine(among)["WTG04"].equals(alone)


def test_midnight_is_continuous_for_every_turbine() -> None:
    start = datetime(2025, 6, 1, 23, tzinfo=UTC)
    table = generate(start, start + timedelta(hours=2), turbines=farm(10), seed=5)
    for part in split_by_turbine(table).values():
        wind = _column(part, "wind_speed")
        steps = np.abs(np.diff(wind))
        assert steps[59] < 4 * np.median(steps) + 1.0  # 23:59 -> 00:00 is an ordinary step


def test_gaps_remove_about_the_requested_share_of_rows_in_runs() -> None:
    full = generate_day(date(2025, 6, 1), turbines=FARM, seed=9)
    gappy = generate_day(date(2025, 6, 1), turbines=FARM, seed=9, gap_rate=0.05)
    assert all(gappy[c].null_count == 0 for c in COLUMNS)  # a gap is a missing row
    for turbine_id, part in split_by_turbine(gappy).items():
        missing = 1 - part.num_rows / 1440
        assert 0.02 < missing < 0.08
        jumps = np.diff(part["timestamp"].cast(pa.int64()).to_numpy()) // 60_000_000
        assert jumps.min() >= 1
        assert jumps.max() > 2  # at least one run of several missing minutes
        complete = split_by_turbine(full)[turbine_id]
        kept = np.isin(_column(complete, "timestamp"), _column(part, "timestamp"))
        assert complete.filter(pa.array(kept)).equals(part)  # gaps remove rows, change none


def test_result_does_not_depend_on_the_process_timezone() -> None:
    before = generate_day(date(2025, 3, 30), turbines=FARM, seed=4)
    old = os.environ.get("TZ")
    try:
        os.environ["TZ"] = "Pacific/Chatham"
        time.tzset()
        after = generate_day(date(2025, 3, 30), turbines=FARM, seed=4)
    finally:
        if old is None:
            os.environ.pop("TZ")
        else:
            os.environ["TZ"] = old
        time.tzset()
    assert before.equals(after)


def test_a_ten_turbine_fortnight_is_plain_numpy_without_pandas() -> None:
    """A speed sanity, not a benchmark: the farm is vectorised and never imports pandas."""
    script = (
        "import sys\n"
        "from datetime import UTC, datetime\n"
        "from windpipe.source.generator import farm, generate\n"
        "start = datetime(2025, 1, 1, tzinfo=UTC)\n"
        "table = generate(start, start.replace(day=11), turbines=farm(10))\n"
        "print(table.num_rows, 'pandas' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == [str(10 * 10 * 1440), "False"]


@pytest.mark.parametrize(("step", "rate"), [(7, 0.0), (60, 1.0), (60, -0.1)])
def test_bad_parameters_are_refused(step: int, rate: float) -> None:
    with pytest.raises(ValueError, match=r"does not divide a day|outside"):
        generate_day(date(2025, 1, 1), step_seconds=step, gap_rate=rate)


@pytest.mark.parametrize("turbines", [[], [FARM[0], FARM[1], FARM[0]]])
def test_no_turbines_or_twice_the_same_are_refused(turbines: list[TurbineSpec]) -> None:
    with pytest.raises(ValueError, match=r"no turbines|not unique"):
        generate_day(date(2025, 1, 1), turbines=turbines)


# -- SCADA: yaw, pitch, rotor, status, energy ---------------------------------------------------


def _yaw_error(table: pa.Table) -> np.ndarray:
    """Wind direction minus nacelle direction, in [-180, 180)."""
    return (
        _column(table, "wind_direction") - _column(table, "nacelle_direction") + 180
    ) % 360 - 180


def test_the_nacelle_follows_the_wind_a_few_degrees_off_and_wraps(
    season: dict[str, pa.Table],
) -> None:
    for part in season.values():
        nacelle, error = _column(part, "nacelle_direction"), np.abs(_yaw_error(part))
        assert np.all((nacelle >= 0.0) & (nacelle < 360.0))
        assert (nacelle < 5).any() and (nacelle > 355).any()  # it turns through north
        windy = _column(part, "wind_speed") > 4.0
        assert 1.0 < np.median(error) < 4.0  # steps of 5 degrees and a calibration offset
        assert np.percentile(error[windy], 95) < 10.0  # a minute late, even when the wind veers
        # It moves in steps: most minutes it holds its heading.
        assert 0.5 < (np.diff(nacelle) == 0).mean() < 0.99


def test_status_codes_match_what_the_turbine_does(season: dict[str, pa.Table]) -> None:
    for spec in FARM:
        part = season[spec.id]
        status, wind = _column(part, "status"), _column(part, "wind_speed")
        power, pitch, rotor = (_column(part, c) for c in ("power", "pitch_angle", "rotor_speed"))
        assert set(np.unique(status)) == set(STATUS_CODES)  # every code shows up in 120 days
        assert STATUS_CODES[STOPPED].startswith("stopped")
        producing = (status == RUNNING) | (status == CURTAILED)
        assert np.all(power[~producing] <= 0.0)  # waiting, stopped, storm: own consumption only
        assert np.all(wind[status == WAITING] < spec.cut_in)
        # Stopped for high wind at cut-out, and held until the wind eases: not only above it.
        assert np.all(np.isin(status[wind >= spec.cut_out], [STOPPED, STORM]))
        assert np.any(wind[status == STORM] < spec.cut_out)
        stopped = status == STOPPED
        assert np.median(wind[stopped]) > spec.cut_in  # stopped while the wind blows
        assert 0.005 < stopped.mean() < 0.1
        # Feathered and braked exactly when stopped; otherwise fine pitch below rated.
        feathered = stopped | (status == STORM)
        assert np.all(pitch[feathered] == 90.0) and np.all(rotor[feathered] == 0.0)
        assert np.all(pitch[~feathered] < 60.0)
        below = (status == RUNNING) & (wind < spec.rated_speed - 1.0)
        assert np.all(np.abs(pitch[below]) < 1.0)
        # Above rated the blades pitch more the harder it blows, at a constant rotor speed.
        above = (status == RUNNING) & (wind > spec.rated_speed + 2.0)
        assert np.all(pitch[above] > 1.0)
        assert np.corrcoef(pitch[above], wind[above])[0, 1] > 0.95
        assert np.all(np.abs(rotor[above] / 16.5 - 1) < 0.05)
        # Below rated the rotor turns in proportion to the wind (a constant tip-speed ratio).
        middle = (status == RUNNING) & (wind > 6.0) & (wind < spec.rated_speed - 1.0)
        assert np.corrcoef(rotor[middle], wind[middle])[0, 1] > 0.95
        assert np.all(rotor[status == WAITING] < 3.0)


def test_curtailment_caps_power_below_rated_and_pitches_the_blades(
    season: dict[str, pa.Table],
) -> None:
    for spec in FARM:
        part = season[spec.id]
        status, wind = _column(part, "status"), _column(part, "wind_speed")
        power, pitch = _column(part, "power"), _column(part, "pitch_angle")
        curtailed = status == CURTAILED
        assert 0.001 < curtailed.mean() < 0.05
        windy = curtailed & (wind > spec.rated_speed + 1.0)
        assert windy.sum() > 30  # episodes with wind enough to bind
        assert np.median(power[windy]) < 0.85 * spec.rated_power_kw
        free = (status == RUNNING) & (wind > spec.rated_speed + 1.0)
        assert np.median(power[free]) > 0.95 * spec.rated_power_kw
        # At the same wind, a curtailed turbine's blades are pitched further.
        assert np.median(pitch[windy]) > np.median(pitch[free & (wind < wind[windy].max())])
    # The setpoint is the farm's: while one turbine is curtailed, none runs free.
    statuses = np.array([_column(season[spec.id], "status") for spec in FARM])
    assert not ((statuses == RUNNING) & (statuses == CURTAILED).any(axis=0)).any()


def test_the_energy_counter_is_the_integral_of_positive_power(
    season: dict[str, pa.Table],
) -> None:
    for part in season.values():
        energy, power = _column(part, "energy"), _column(part, "power")
        steps = np.diff(energy)
        assert np.all(steps >= 0.0)  # monotonic across 120 midnights: no reset unless seeded
        # Each minute adds that minute's production, not what the turbine draws (to 1 Wh).
        assert np.allclose(steps, np.maximum(power[1:], 0.0) / 60.0, atol=1.1e-3)
        assert energy.min() > 0.0


def test_a_seeded_span_resets_each_counter_once_and_carries_it_across_midnight() -> None:
    start, end = datetime(2025, 3, 1, 6, tzinfo=UTC), datetime(2025, 3, 4, tzinfo=UTC)
    readings = {"WTG01": 12_345.0}
    meters = seeded_meters(FARM, start, end, step_seconds=60, seed=7, readings=readings)
    assert meters == seeded_meters(FARM, start, end, step_seconds=60, seed=7, readings=readings)
    assert meters != seeded_meters(FARM, start, end, step_seconds=60, seed=8, readings=readings)
    days = [date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)]
    tables = list(generate_days(days, turbines=FARM, seed=7, gap_rate=0.02, meters=meters))
    for spec in FARM:
        meter = meters[spec.id]
        assert meter.reset is not None and start < meter.reset < end
        parts = [split_by_turbine(t)[spec.id] for t in tables]
        stamps = np.concatenate([_column(p, "timestamp").astype("datetime64[us]") for p in parts])
        energy = np.concatenate([_column(p, "energy") for p in parts])
        power = np.concatenate([_column(p, "power") for p in parts])
        kept = stamps >= np.datetime64(start.replace(tzinfo=None))
        stamps, energy, power = stamps[kept], energy[kept], power[kept]
        drops = np.flatnonzero(np.diff(energy) < 0)
        assert len(drops) == 1  # exactly one reset, wherever the day boundaries fall
        assert np.all(energy >= 0.0)
        first_after = drops[0] + 1
        assert stamps[first_after] >= np.datetime64(meter.reset.replace(tzinfo=None))
        assert energy[first_after] < 40.0  # restarted from 0 (plus at most a gap's production)
        # The counter starts at the reading it was given (the table's), plus the first minute.
        assert meter.kwh == readings.get(spec.id, meter.kwh) > 0.0
        if stamps[0] == np.datetime64(start.replace(tzinfo=None)):  # not a gap
            expected = meter.kwh + max(power[0], 0.0) / 60.0
            assert energy[0] == pytest.approx(expected, abs=1e-3)


def test_a_meter_set_mid_day_is_carried_on_from_its_instant() -> None:
    day = date(2025, 3, 1)
    noon = datetime(2025, 3, 1, 12, tzinfo=UTC)
    table = generate_day(day, seed=4, meters={"WTG01": Meter(500.0, noon)})
    energy, power = _column(table, "energy"), _column(table, "power")
    assert energy[720] == pytest.approx(500.0 + max(power[720], 0.0) / 60.0, abs=1e-3)
    assert np.all(energy >= 0.0) and np.all(np.diff(energy) >= 0.0)
