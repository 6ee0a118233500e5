"""``windpipe export openoa`` loaded by NREL OpenOA itself (a test-only dependency): a farm's days
seeded with a wind and a nacelle direction, a pitch and a status, run through a real API and the
ETL into a real target, exported by the CLI, then read by OpenOA's ``PlantData`` and its
``StaticYawMisalignment`` analysis, which finds the yaw misalignment the data was made with
(within 5 degrees)."""

import math
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.conftest import new_database, serve
from windpipe import catalog
from windpipe.api import create_app
from windpipe.etl.extract import ApiClient
from windpipe.etl.openoa import asset_frame, fleet_of, scada_plan, status_frame
from windpipe.etl.pipeline import run_range
from windpipe.postgres import libpq_conninfo
from windpipe.settings import Settings, SignalConfig, load_settings
from windpipe.source import store as source_store
from windpipe.source.events import upsert_events
from windpipe.source.generator import TurbineSpec
from windpipe.source.seed import seed_source

pytestmark = pytest.mark.slow

FIRST, LAST = date(2024, 6, 3), date(2024, 6, 12)
BEGIN = datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=UTC)
END = BEGIN + timedelta(days=(LAST - FIRST).days + 1)
#: The static yaw misalignment each turbine is given: its power peaks at this wind vane angle.
MISALIGNMENT = {"WTG01": 6.0, "WTG02": -4.0}

CONFIG = """
[[turbines]]
id = "WTG01"
synthetic = true
model = "WP-2000"
rated_power_kw = 2000
latitude = 48.4497
longitude = 5.5896
hub_height_m = 80
rotor_diameter_m = 82
elevation_m = 411

[[turbines]]
id = "WTG02"
synthetic = true
rated_power_kw = 2000
latitude = 48.4461
longitude = 5.5925
hub_height_m = 80
rotor_diameter_m = 82
elevation_m = 406

[signals.wind_speed]
unit = "m/s"
range = [0, 60]
aggregate = true

[signals.power]
unit = "kW"
range = [-500, 20000]
aggregate = true

[signals.ambient_temperature]
unit = "degC"
aggregate = true

[signals.wind_direction]
kind = "angle"
unit = "deg"
range = [0, 360]
aggregate = true

[signals.nacelle_direction]
kind = "angle"
unit = "deg"
range = [0, 360]
aggregate = true

[signals.pitch]
column = "pitch_angle"
unit = "deg"
iec_name = "WROT_BlPthAngVal"
aggregate = true
aggregations = ["mean"]

[signals.status]
kind = "state"
aggregate = true

[event_codes]
"101" = { category = "scheduled_maintenance", description = "Service visit" }
"205" = { category = "forced_outage", description = "Grid fault" }
"""


@pytest.fixture
def farm(
    settings: Settings, target_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Settings, Engine, Engine]]:
    """The configuration above in effect, and a fresh source and target: ten days of two turbines
    at 1-minute samples whose power follows cos^3 of the wind vane angle less the turbine's yaw
    misalignment, with three events."""
    path = tmp_path / "windpipe.toml"
    path.write_text(CONFIG)
    monkeypatch.setenv("WINDPIPE_CONFIG", str(path))
    farm_settings = load_settings(data_dir=settings.data_dir, _env_file=None)
    with (
        new_database(target_url, "windpipe_openoa_source") as source,
        new_database(target_url, "windpipe_openoa_target") as target,
    ):
        source_store.ensure_schema(source)
        with source.begin() as conn:
            for column in ("wind_direction", "nacelle_direction", "pitch_angle", "status"):
                conn.execute(text(f"ALTER TABLE data ADD COLUMN {column} double precision"))
        seed_source(
            source,
            BEGIN,
            END,
            turbines=[TurbineSpec(t) for t in MISALIGNMENT],
            columns=["wind_speed", "power", "ambient_temperature", "wind_direction"],
        )
        with source.begin() as conn:
            # The vane swings +-20 degrees over 90 minutes (nacelle = wind - vane); below rated
            # power the blades stay at 0 degrees of pitch, above it they pitch out.
            conn.execute(
                text(
                    """
                    UPDATE data SET
                      nacelle_direction = mod((wind_direction + 360 - 20 * sin(
                          extract(epoch FROM "timestamp") * 2 * pi() / 5400))::numeric,
                          360)::float8,
                      power = power * power(cos(radians(20 * sin(
                          extract(epoch FROM "timestamp") * 2 * pi() / 5400)
                          - CASE turbine WHEN 'WTG01' THEN :m1 ELSE :m2 END)), 3),
                      pitch_angle = CASE WHEN power > 1900 THEN 2 * (wind_speed - 11) ELSE 0 END,
                      status = CASE WHEN power > 0 THEN 1 ELSE 2 END
                    """
                ),
                {"m1": MISALIGNMENT["WTG01"], "m2": MISALIGNMENT["WTG02"]},
            )
            # The status above is this test's own: the seed's events (its SCADA log) go too.
            conn.execute(text("DELETE FROM turbine_event"))
        events = pl.DataFrame(
            {
                "turbine": ["WTG01", "WTG01", "WTG02"],
                "start": [BEGIN + timedelta(hours=h) for h in (30, 100, 50)],
                "end": [BEGIN + timedelta(hours=h) for h in (32, 101, 53)],
                "code": ["101", "205", "999"],
                "message": ["Service visit", "Grid fault", None],
            },
            schema_overrides={"start": pl.Datetime("us", "UTC"), "end": pl.Datetime("us", "UTC")},
        )
        upsert_events(source, events)
        yield farm_settings, source, target


def windpipe(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI in its own interpreter, as ``windpipe ...`` runs."""
    return subprocess.run(
        [sys.executable, "-m", "windpipe", *args],
        env={**os.environ, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_export_loads_in_openoa_and_its_yaw_misalignment_is_found(
    farm: tuple[Settings, Engine, Engine], tmp_path: Path
) -> None:
    from openoa import PlantData
    from openoa.analysis import StaticYawMisalignment

    settings, source, target = farm
    plan = scada_plan(settings.rollup, settings.iec_names)
    assert plan.derive_relative
    app = create_app(settings, source_conninfo=libpq_conninfo(source.url))
    out = tmp_path / "openoa"
    with serve(app) as api:
        with ApiClient(api.url) as client:
            run_range(
                FIRST,
                LAST,
                client=client,
                engine=target,
                rollup=settings.rollup,
                turbines=list(MISALIGNMENT),
            )
        env = {
            "WINDPIPE_API_URL": api.url,
            "WINDPIPE_TARGET_DB_URL": target.url.render_as_string(hide_password=False),
            "WINDPIPE_DATA_DIR": str(tmp_path / "data"),
        }
        done = windpipe(
            "export", "openoa", "--start", str(FIRST), "--end", str(LAST), "--out", str(out),
            env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"exported {FIRST}..{LAST} to {out}: 2,880 windows of 2 ")
        again = windpipe(
            "export", "openoa", "--start", str(FIRST), "--end", str(LAST), "--out", str(out),
            env=env,
        )  # fmt: skip
        assert again.returncode == 1
        assert again.stderr.startswith(f"error: --out '{out}' is not empty")
        forced = windpipe(
            "export", "openoa", "--start", str(FIRST), "--end", str(FIRST), "--out", str(out),
            "--turbine", "WTG02", "--force", env=env,
        )  # fmt: skip
        assert forced.returncode == 0, forced.stderr
        assert "144 windows of 1 turbine(s)" in forced.stdout
        empty = windpipe(
            "export", "openoa", "--start", "2024-07-01", "--end", "2024-07-02",
            "--out", str(tmp_path / "none"), env=env,
        )  # fmt: skip
        assert (empty.returncode, empty.stderr.strip()) == (
            1,
            "error: the target holds no windows of WTG01, WTG02 from 2024-07-01 to 2024-07-02; "
            "load them first: windpipe backfill --start 2024-07-01 --end 2024-07-02",
        )
        done = windpipe(
            "export", "openoa", "--start", str(FIRST), "--end", str(LAST), "--out", str(out),
            "--force", env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    scada = pl.read_csv(out / "scada.csv")
    assert scada.columns == [
        "time",
        "asset_id",
        "WMET_HorWdSpd",
        "WTUR_W",
        "WMET_EnvTmp",
        "WMET_HorWdDir",
        "WROT_BlPthAngVal",
        "WTUR_TurSt",
        "WMET_HorWdDirRel",
    ]
    assert scada["time"][0] == "2024-06-03 00:00:00+00:00"
    assert scada["WTUR_TurSt"].dtype == pl.Int64 and set(scada["WTUR_TurSt"]) <= {1, 2}
    # The relative direction, recomputed here from the target's two means.
    with target.connect() as conn:
        means = dict(
            conn.execute(
                text(
                    "SELECT s.name, d.value FROM data d JOIN signal s ON s.id = d.signal_id "
                    "WHERE s.turbine = 'WTG02' AND d.timestamp = '2024-06-05 12:30+00' "
                    "AND s.name IN ('wind_direction_mean', 'nacelle_direction_mean')"
                )
            ).all()
        )
    row = scada.filter(
        (pl.col("asset_id") == "WTG02") & (pl.col("time") == "2024-06-05 12:30:00+00:00")
    )
    expected = math.remainder(means["wind_direction_mean"] - means["nacelle_direction_mean"], 360)
    assert row["WMET_HorWdDirRel"][0] == pytest.approx(expected, abs=1e-9)
    assert scada["WMET_HorWdDirRel"].min() >= -180 and scada["WMET_HorWdDirRel"].max() < 180
    status = pl.read_csv(out / "status.csv")
    assert status["category"].to_list() == [
        "scheduled_maintenance",
        "forced_outage",
        "forced_outage",
    ]

    with warnings.catch_warnings():
        # OpenOA and the pandas under it warn about their own internals (chained assignment,
        # fit covariances); the suite's warnings-as-errors is for windpipe's code.
        warnings.simplefilter("ignore")
        plant = PlantData(
            metadata=out / "plant_meta.yml",
            scada=out / "scada.csv",
            asset=out / "asset.csv",
            status=out / "status.csv",
            analysis_type="StaticYawMisalignment",
        )
        assert sorted(plant.turbine_ids) == ["WTG01", "WTG02"]
        assert plant.metadata.capacity == 4.0
        assert plant.asset.loc["WTG01", "rotor_diameter"] == 82
        assert len(plant.scada) == 2880
        yaw = StaticYawMisalignment(
            plant=plant,
            UQ=False,
            ws_bins=[7.0, 8.0, 9.0, 10.0],
            ws_bin_width=1.0,
            vane_bin_width=2.0,
            min_vane_bin_count=3,
            use_power_coeff=True,
        )
        yaw.run()
    found = dict(zip(yaw.turbine_ids, yaw.yaw_misalignment, strict=True))
    # Ten days of two turbines give each wind speed bin a few hundred windows whose power also
    # spreads with the turbulence: the estimates land within 5 degrees of the truth (~0.5 and
    # ~4 off here), on the right side of zero.
    for turbine, misalignment in MISALIGNMENT.items():
        assert found[turbine] == pytest.approx(misalignment, abs=5.0), found
        assert math.copysign(1, found[turbine]) == math.copysign(1, misalignment), found


def test_the_relative_direction_wraps_to_minus_180_up_to_180() -> None:
    wind = pl.Series([5.0, 355.0, 180.0, 0.0, 90.0])
    nacelle = pl.Series([355.0, 5.0, 0.0, 180.0, 90.0])
    frame = pl.DataFrame({"w": wind, "n": nacelle})
    got = frame.select(catalog.relative_direction(pl.col("w"), pl.col("n")))["w"].to_list()
    assert got == [10.0, -10.0, -180.0, -180.0, 0.0]


def test_the_scada_columns_follow_the_kinds_and_names(settings: Settings) -> None:
    signals = {
        **settings.signals,
        "wind_direction": SignalConfig(kind="angle", range=(0, 360), aggregate=True),
        "yaw_error": SignalConfig(
            kind="angle", range=(-180, 180), aggregate=True, iec_name="WMET_HorWdDirRel"
        ),
        "nacelle_direction": SignalConfig(kind="angle", range=(0, 360), aggregate=True),
        "energy": SignalConfig(kind="counter", aggregate=True, iec_name="WTUR_SupWh"),
        "status": SignalConfig(kind="state", aggregations=["last"], aggregate=True),
    }
    chosen = load_settings(data_dir=settings.data_dir, signals=signals, _env_file=None)
    plan = scada_plan(chosen.rollup, chosen.iec_names)
    assert [(c.iec_name, c.signal) for c in plan.columns] == [
        ("WMET_HorWdSpd", "wind_speed_mean"),
        ("WTUR_W", "power_mean"),
        ("WMET_HorWdDir", "wind_direction_mean"),
        ("WMET_HorWdDirRel", "yaw_error_mean"),
        ("WTUR_SupWh", "energy_delta"),
        ("WTUR_TurSt", "status_last"),
    ]
    assert not plan.derive_relative  # a declared relative direction wins


def test_a_bad_or_shared_iec_name_is_refused(settings: Settings) -> None:
    from windpipe.errors import ConfigError

    with pytest.raises(ValueError, match="not an IEC 61400-25 name"):
        SignalConfig(iec_name="pitch angle")
    twice = {**settings.signals, "pitch": SignalConfig(iec_name="WTUR_W")}
    with pytest.raises(ConfigError, match="signals power, pitch share the iec_name WTUR_W"):
        load_settings(data_dir=settings.data_dir, signals=twice, _env_file=None)


def test_the_command_refuses_a_bad_range_an_unknown_turbine_and_a_file(tmp_path: Path) -> None:
    config = tmp_path / "windpipe.toml"
    config.write_text(CONFIG)
    env = {"WINDPIPE_CONFIG": str(config), "WINDPIPE_DATA_DIR": str(tmp_path / "data")}
    out = str(tmp_path / "out")
    refusals = {
        ("--start", "2024-06-12", "--end", "2024-06-03", "--out", out): (
            1,
            "error: --end 2024-06-03 is before --start 2024-06-12",
        ),
        ("--start", "2024-6-3", "--end", "2024-06-03", "--out", out): (
            1,
            "error: --start '2024-6-3' is not a date; expected YYYY-MM-DD",
        ),
        ("--start", "2024-06-03", "--end", "2024-06-03", "--out", str(config)): (
            1,
            f"error: --out '{config}' is a file; give a folder (new or empty)",
        ),
        ("--start", "2024-06-03", "--end", "2024-06-03", "--out", out, "--turbine", "WTG09"): (
            2,
            "error: unknown turbine WTG09; known: WTG01, WTG02",
        ),
    }
    for args, (code, line) in refusals.items():
        done = windpipe("export", "openoa", *args, env=env)
        assert (done.returncode, done.stderr.strip()) == (code, line), args
    assert not (tmp_path / "out").exists()


def test_no_events_give_a_status_file_of_its_header_and_a_bare_turbine_empty_fields(
    settings: Settings,
) -> None:
    events = pl.DataFrame(
        schema={
            "turbine": pl.String,
            "start": pl.Datetime("us", "UTC"),
            "end": pl.Datetime("us", "UTC"),
            "code": pl.String,
            "message": pl.String,
        }
    )
    status = status_frame(events, {})
    assert status.columns == [
        "asset_id", "start", "end", "status_id", "code", "message", "category"
    ]  # fmt: skip
    assert status.height == 0
    # Without [[turbines]] a turbine of the source has its id only.
    assets = asset_frame(fleet_of(settings, ["T7"]))
    assert assets.row(0) == ("T7", None, None, None, None, None, None, "turbine", None)
