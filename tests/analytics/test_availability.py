"""The daily figures against an independent, window-by-window computation in plain Python."""

import math
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from tests.analytics import farm_case as case
from tests.analytics.oracle import figures, interpolate
from windpipe import catalog
from windpipe.analytics.availability import (
    measured_power,
    measured_reference,
    summarise,
    warranted_power,
)
from windpipe.analytics.power_curve import CurveConfig, Site, power_curves
from windpipe.etl.kpis import compute_kpis
from windpipe.settings import AvailabilityConfig, load_settings

FLEET = [
    catalog.Turbine(id=t, rated_power_kw=rated, power_curve=curve, elevation_m=case.ELEVATION[t])
    for t, (rated, curve) in case.FLEET.items()
]
DEFAULT = AvailabilityConfig().classes
#: A contract's view: an owner's stop is the operator's fault, a forced outage the grid's.
CONTRACT = AvailabilityConfig(
    operative=[
        "full_performance",
        "partial_performance",
        "technical_standby",
        "out_of_environmental_specification",
        "out_of_electrical_specification",
    ],
    non_operative=[
        "requested_shutdown",
        "scheduled_maintenance",
        "planned_corrective_action",
        "suspended",
    ],
    excluded=["forced_outage", "force_majeure", "information_unavailable"],
).classes


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _check(classes: dict[str, str], *, flagged: bool = True) -> pl.DataFrame:
    rows, temperatures = case.windows(), case.temperatures()
    got = compute_kpis(
        case.windows_frame(rows, temperatures),
        case.events_frame(),
        FLEET,
        case.DAYS[0],
        case.DAYS[-1],
        codes=case.CODES,
        classes=classes,
        flags=case.flags_frame() if flagged else None,
    )
    expected, lost_by = figures(
        rows,
        case.EVENTS,
        case.FLEET,
        case.DAYS,
        case.CODES,
        classes,
        temperatures=temperatures,
        elevations=case.ELEVATION,
        flags=case.FLAGS if flagged else (),
    )
    assert got.kpis.height == len(expected) == 9
    for row in got.kpis.iter_rows(named=True):
        want = expected[(row["turbine"], row["day"])]
        assert row["windows_expected"] == 144
        for name, value in want.items():
            assert _close(row[name], value), (row["turbine"], row["day"], name, row[name], value)
    losses = {
        (r["turbine"], r["day"], r["category"]): r["lost_kwh"]
        for r in got.losses.iter_rows(named=True)
        if r["lost_kwh"]
    }
    assert losses.keys() == {k for k, v in lost_by.items() if v}
    assert all(_close(losses[k], lost_by[k]) for k in losses)
    # time per category adds up to the day
    per_day = got.losses.group_by("turbine", "day").agg(pl.col("time_s").sum())
    assert per_day["time_s"].to_list() == [86_400.0] * 9
    return got.kpis


def test_every_figure_matches_a_window_by_window_computation() -> None:
    kpis = _check(DEFAULT)
    by = {(r["turbine"], r["day"].day): r for r in kpis.iter_rows(named=True)}
    # partly covered window (10:00, 5 of 10 min) and the outage to 12:00: 12 windows of A
    assert (
        by[("A", 1)]["time_non_operative_s"] == 12 * 600 + 0
    )  # the 14:00 window is an owner's stop
    # the unknown code 999 is a forced outage: 6 windows on 2 June, plus no force majeure
    assert by[("A", 2)]["time_non_operative_s"] == 6 * 600
    assert by[("A", 2)]["time_excluded_s"] == 12 * 600
    # half a day without data: information unavailable, counted in neither, coverage 1/2
    assert by[("A", 3)]["coverage"] == 0.5 and by[("A", 3)]["time_excluded_s"] == 43_200
    # the ongoing derating loses from 18:00 to the end of the range, with the warranted curve
    assert by[("B", 3)]["lost_production_kwh"] > 0 and by[("B", 3)]["reference"] == "warranted"
    # C has no rated power: no capacity factor; its outage above the curve loses nothing
    assert by[("C", 1)]["capacity_factor"] is None
    assert by[("C", 3)]["lost_unpriced_windows"] == 6
    assert (kpis["lost_production_kwh"] >= 0).all()
    assert kpis["availability_energy"].drop_nulls().is_between(0, 1).all()


def _rolling(reference_days: int, first: int = 0) -> dict[tuple[str, object], dict]:
    """compute_kpis over DAYS[first:] with each day's measured curve over ``reference_days``."""
    got = compute_kpis(
        case.windows_frame(case.windows(), case.temperatures()),
        case.events_frame(),
        FLEET,
        case.DAYS[first],
        case.DAYS[-1],
        codes=case.CODES,
        classes=DEFAULT,
        flags=case.flags_frame(),
        reference_days=reference_days,
    )
    return {(r["turbine"], r["day"]): r for r in got.kpis.iter_rows(named=True)}


@pytest.mark.parametrize("reference_days", [0, 1])
def test_each_days_curve_is_that_of_the_day_and_the_days_before_it(reference_days: int) -> None:
    # The oracle computes each day alone with its history as the whole range: the figures of
    # that range's last day are the day's.
    rows, temperatures = case.windows(), case.temperatures()
    got = _rolling(reference_days)
    assert len(got) == 9
    for i, day in enumerate(case.DAYS):
        span = case.DAYS[max(0, i - reference_days) : i + 1]
        expected, _ = figures(
            {k: v for k, v in rows.items() if k[1].date() in span},
            case.EVENTS,
            case.FLEET,
            span,
            case.CODES,
            DEFAULT,
            temperatures=temperatures,
            elevations=case.ELEVATION,
            flags=case.FLAGS,
        )
        for turbine in case.FLEET:
            row, want = got[(turbine, day)], expected[(turbine, day)]
            for name, value in want.items():
                assert _close(row[name], value), (turbine, day, name, row[name], value)
    # the days' own curves differ from one over the whole range: the test sees a difference
    whole = {(r["turbine"], r["day"]): r for r in _check(DEFAULT).iter_rows(named=True)}
    assert any(
        not _close(got[k]["lost_production_kwh"], whole[k]["lost_production_kwh"]) for k in got
    )


def test_a_days_figures_do_not_depend_on_the_range_computed() -> None:
    # 3 June with one day of history, computed in the three days or in the last two: the same bits
    longer, shorter = _rolling(1), _rolling(1, first=1)
    for turbine in case.FLEET:
        key = (turbine, case.DAYS[2])
        assert longer[key] == shorter[key]
    # and with history covering the whole range, the day's curve is the whole range's
    whole = {(r["turbine"], r["day"]): r for r in _check(DEFAULT).iter_rows(named=True)}
    every = _rolling(2)
    for turbine in case.FLEET:
        key = (turbine, case.DAYS[2])
        numbers = [n for n, v in whole[key].items() if not isinstance(v, str | date)]
        assert all(_close(every[key][n], whole[key][n]) for n in numbers), key


def test_an_ongoing_event_covers_the_windows_up_to_now_only() -> None:
    # B's derating from 3 June 18:00 has no end; computed at 20:05, it covers 18:00 to 20:05
    # (the 20:00 window by half: a tie, its later category wins), exactly as if it had ended
    # then, and the windows after it are what they are without it.
    now = datetime(2024, 6, 3, 20, 5, tzinfo=UTC)

    def kpis(events: pl.DataFrame, **extra: object) -> dict:
        got = compute_kpis(
            case.windows_frame(case.windows(), case.temperatures()),
            events,
            FLEET,
            case.DAYS[0],
            case.DAYS[-1],
            codes=case.CODES,
            classes=DEFAULT,
            flags=case.flags_frame(),
            **extra,  # type: ignore[arg-type]
        )
        return {(r["turbine"], r["day"]): r for r in got.kpis.iter_rows(named=True)}

    ongoing = kpis(case.events_frame(), now=now)
    ended = kpis(case.events_frame().with_columns(pl.col("end").fill_null(now)))
    to_the_end = kpis(case.events_frame())
    assert ongoing == ended
    b3 = ("B", case.DAYS[2])
    assert ongoing[b3]["lost_production_kwh"] < to_the_end[b3]["lost_production_kwh"]
    # a derating is partial performance: operative; its time, not the availability, moves
    assert ongoing[b3]["time_operative_s"] == to_the_end[b3]["time_operative_s"]
    # computed before the event began, the event covers nothing yet
    before = kpis(case.events_frame(), now=datetime(2024, 6, 3, 17, tzinfo=UTC))
    assert before[b3]["lost_production_kwh"] < ongoing[b3]["lost_production_kwh"]


def test_the_reclassified_view_matches_too() -> None:
    default = {(r["turbine"], r["day"]): r for r in _check(DEFAULT).iter_rows(named=True)}
    contract = {(r["turbine"], r["day"]): r for r in _check(CONTRACT).iter_rows(named=True)}
    a1 = ("A", case.DAYS[0])
    # the forced outage now counts in neither; the owner's stop (3 windows) against the operator
    assert contract[a1]["time_non_operative_s"] == 3 * 600
    assert contract[a1]["availability_time"] != default[a1]["availability_time"]


def test_loss_is_never_negative_even_above_the_reference() -> None:
    rows = case.windows()
    got = compute_kpis(
        case.windows_frame(rows),
        case.events_frame(),
        FLEET,
        case.DAYS[0],
        case.DAYS[-1],
        codes=case.CODES,
        classes=DEFAULT,
    )
    c1 = got.losses.filter(
        (pl.col("turbine") == "C")
        & (pl.col("day") == case.DAYS[0])
        & (pl.col("category") == "forced_outage")
    )
    assert c1["time_s"].to_list() == [3600.0] and c1["lost_kwh"].to_list() == [0.0]


def test_farm_rows_sum_the_turbines_and_recompute_the_ratios() -> None:
    kpis = _check(DEFAULT)
    farm = summarise(kpis, ["day"])
    assert farm["turbine"].to_list() == ["*"] * 3
    for row in farm.iter_rows(named=True):
        day = kpis.filter(pl.col("day") == row["day"]).to_dicts()
        energy = sum(r["energy_kwh"] for r in day)
        lost = sum(r["lost_production_kwh"] for r in day)
        op = sum(r["time_operative_s"] for r in day)
        non = sum(r["time_non_operative_s"] for r in day)
        assert _close(row["energy_kwh"], energy) and _close(row["lost_production_kwh"], lost)
        assert _close(row["availability_time"], op / (op + non))
        assert _close(row["availability_energy"], energy / (energy + lost))
        assert row["capacity_factor"] is None  # C has no rated power
    rated = summarise(kpis.filter(pl.col("turbine") != "C"), ["day"])
    for row in rated.iter_rows(named=True):
        day = kpis.filter((pl.col("day") == row["day"]) & (pl.col("turbine") != "C"))
        assert _close(row["capacity_factor"], day["energy_kwh"].sum() / (4000 * 24))
    period = summarise(kpis.filter(pl.col("turbine") == "A"), ["turbine"]).row(0, named=True)
    a = kpis.filter(pl.col("turbine") == "A")
    assert _close(period["capacity_factor"], a["energy_kwh"].sum() / (2000 * 24 * 3))


def test_without_stored_flags_no_window_is_left_out_of_the_reference() -> None:
    flagged = {(r["turbine"], r["day"]): r for r in _check(DEFAULT).iter_rows(named=True)}
    plain = {
        (r["turbine"], r["day"]): r for r in _check(DEFAULT, flagged=False).iter_rows(named=True)
    }
    # A's flagged full-performance windows move its measured curve, hence its losses
    a1 = ("A", case.DAYS[0])
    assert flagged[a1]["lost_production_kwh"] != plain[a1]["lost_production_kwh"]


def test_the_measured_reference_is_the_iec_curve_between_its_bins_mean_speeds() -> None:
    """Bins of V_n (no temperature here: V_n = V); a bin of fewer than 3 windows is not drawn
    and the reference runs straight between its neighbours' mean speeds; none outside them."""
    speeds = [4.9, 5.0, 5.2, 5.5, 6.4, 6.5, 6.6, 6.74, 5.5]
    windows = pl.DataFrame(
        {
            "turbine": ["T"] * 9,
            "timestamp": [case.at(1, 0) + i * case.TEN for i in range(9)],
            "wind_speed_mean": speeds,
            "power_mean": [100.0, 110.0, 120.0, 999.0, 400.0, 410.0, 420.0, None, 0.0],
        }
    )
    categories = windows.select(
        "turbine",
        "timestamp",
        pl.Series("category", ["full_performance"] * 8 + ["forced_outage"]),
    )
    curves = power_curves(
        windows, categories, case.flags_frame().clear(), {"T": Site()}, CurveConfig()
    )
    points = measured_reference(curves)
    low = (sum(speeds[:3]) / 3, 110.0)
    high = (sum(speeds[4:7]) / 3, 410.0)
    assert points["wind_speed"].to_list() == pytest.approx([low[0], high[0]])
    assert points["power_kw"].to_list() == pytest.approx([low[1], high[1]])
    asked = [None, 4.9, low[0], 5.5, 6.0, high[0], 6.7]
    got = measured_power(points, pl.Series(asked, dtype=pl.Float64)).to_list()

    def line(v: float) -> float:
        return low[1] + (high[1] - low[1]) * (v - low[0]) / (high[0] - low[0])

    assert got[0] is None and got[1] is None and got[6] is None
    assert got[2:6] == pytest.approx([110.0, line(5.5), line(6.0), 410.0])


def test_the_warranted_curve_is_interpolated_and_zero_outside() -> None:
    speeds = [None, 2.0, 3.0, 4.5, 7.5, 13.0, 25.0, 26.0]
    got = warranted_power(case.WARRANTED, pl.Series(speeds, dtype=pl.Float64)).to_list()
    assert got[0] is None
    assert got[1:] == pytest.approx([interpolate(case.WARRANTED, s) for s in speeds[1:]])


def test_availability_and_power_curve_settings_are_validated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "windpipe.toml"
    monkeypatch.setenv("WINDPIPE_CONFIG", str(config))
    config.write_text('[availability]\nexcluded = ["force_majeure"]\n')
    with pytest.raises(Exception, match="information_unavailable in none of operative"):
        load_settings(_env_file=None)
    config.write_text(
        '[availability]\nexcluded = ["force_majeure", "information_unavailable", "suspended"]\n'
    )
    with pytest.raises(Exception, match="suspended is in both non_operative and excluded"):
        load_settings(_env_file=None)
    config.write_text('[[turbines]]\nid = "A"\npower_curve = [[3, 0], [12, -5]]\n')
    with pytest.raises(Exception, match=r"turbines\[0\].power_curve: .*not \[wind speed >= 0"):
        load_settings(_env_file=None)
    config.write_text('[[turbines]]\nid = "A"\npower_curve = [[3, 0], [12, 2000], [11, 2000]]\n')
    with pytest.raises(Exception, match="strictly ascending: 11 follows 12"):
        load_settings(_env_file=None)
    config.write_text('[[turbines]]\nid = "A"\npower_curve = [[3, 0], [12, 2000]]\n')
    assert load_settings(_env_file=None).turbines[0].power_curve == ((3.0, 0.0), (12.0, 2000.0))
    assert (
        catalog.check_classification(catalog.DEFAULT_AVAILABILITY) == AvailabilityConfig().classes
    )


def test_the_stored_columns_are_the_computed_ones() -> None:
    """``turbine_day_kpi`` (the warehouse's model) holds exactly what ``daily_kpis`` returns."""
    from windpipe.analytics.availability import KPI_SCHEMA, LOSS_SCHEMA
    from windpipe.warehouse.reads import kpi_columns, loss_columns

    assert kpi_columns() == KPI_SCHEMA
    assert loss_columns() == LOSS_SCHEMA
