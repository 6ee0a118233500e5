"""``windpipe import`` as a user runs it: a real process, a windpipe.toml mapping, real files."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.conftest import new_database
from windpipe.source.store import ensure_schema as ensure_source_schema

pytestmark = pytest.mark.slow  # each test starts the CLI in a fresh interpreter

CONFIG = """
[[turbines]]
id = "R80711"

[[turbines]]
id = "R80721"

[imports.haute_borne]
delimiter = ";"
time_column = "Date_time"
turbine_column = "Wind_turbine_name"
columns = { Ws_avg = "wind_speed", P_avg = "power", Ot_avg = "ambient_temperature" }
"""
HEADER = "Wind_turbine_name;Date_time;Ba_avg;Ws_avg;P_avg;Ot_avg\n"
ROWS = [
    "R80711;2017-03-26T01:50:00+01:00;1.0;5.5;300.2;4.1",
    "R80721;2017-03-26T01:50:00+01:00;1.0;5.7;310.0;",
    "R80711;2017-03-26T03:00:00+02:00;1.0;6.0;-3.5;4.2",
    "R80721;2017-03-26T03:00:00+02:00;1.0;6.1;350;4.2",
]


@pytest.fixture
def source(source_url: URL) -> Iterator[Engine]:
    with new_database(source_url, "windpipe_import_cli") as engine:
        ensure_source_schema(engine)
        yield engine


@pytest.fixture
def env(source: Engine, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "windpipe.toml"
    config.write_text(CONFIG)
    return {
        "WINDPIPE_SOURCE_DB_URL": source.url.render_as_string(hide_password=False),
        "WINDPIPE_DATA_DIR": str(tmp_path),  # no embedded server may be started from here
        "WINDPIPE_CONFIG": str(config),
    }


def windpipe(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "windpipe", *args],
        env={**os.environ, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM data")).scalar_one())


def test_import_with_a_configured_mapping_then_again(
    env: dict[str, str], source: Engine, tmp_path: Path
) -> None:
    export = tmp_path / "export.csv"
    export.write_text(HEADER + "\n".join(ROWS) + "\n")
    dry = windpipe("import", str(export), "--mapping", "haute_borne", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith(
        f"would import {export}: 4 rows of 2 turbine(s), "
        "2017-03-26 00:50:00 .. 2017-03-26 01:00:00 UTC"
    )
    assert "Ot_avg -> ambient_temperature (1 null)" in dry.stdout
    assert "ignored 1 unmapped column(s): Ba_avg" in dry.stdout and count(source) == 0

    done = windpipe("import", str(export), "-m", "haute_borne", env=env)
    assert done.returncode == 0, done.stderr
    assert "4 new, 0 changed, 0 unchanged" in done.stdout
    assert "aggregate them: windpipe backfill --start 2017-03-26 --end 2017-03-26" in done.stdout
    assert "\x1b[" not in done.stdout + done.stderr  # not a terminal: no progress bar, no colour
    again = windpipe("import", str(export), "-m", "haute_borne", env=env)
    assert "0 new, 0 changed, 4 unchanged" in again.stdout and count(source) == 4


def test_a_bad_row_is_one_line_and_exit_1(
    env: dict[str, str], source: Engine, tmp_path: Path
) -> None:
    export = tmp_path / "bad.csv"
    bad = ["R80799;2017-03-26T03:00:00+02:00;1;6;7;4", "R80711;2017-03-26T03:10:00+02:00;1;6;x;4"]
    export.write_text(HEADER + "\n".join([*ROWS[:3], *bad]))
    done = windpipe("import", str(export), "-m", "haute_borne", env=env)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        f"error: {export}: line 5, column 'Wind_turbine_name': turbine not in the configuration "
        "'R80799'; add it as [[turbines]] id = 'R80799' in windpipe.toml, or pass "
        "--allow-new-turbines; nothing was imported from this file (fix the row, or pass "
        "--skip-bad-rows)\n"
    )
    skipped = windpipe("import", str(export), "-m", "haute_borne", "--skip-bad-rows", env=env)
    assert skipped.returncode == 0, skipped.stderr
    assert (
        "skipped 2 bad row(s): non-numeric value (P_avg): 1; "
        "turbine not in the configuration (Wind_turbine_name): 1"
    ) in skipped.stdout
    assert count(source) == 3


def test_options_override_and_name_themselves(env: dict[str, str], tmp_path: Path) -> None:
    export = tmp_path / "wtg.csv"
    export.write_text("time,ws\n2017-01-01 00:00,5\n")
    done = windpipe("import", str(export), "--mapping", "nope", env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("error: --mapping nope is not a mapping of ")
    assert done.stderr.rstrip().endswith("windpipe.toml; configured: haute_borne")
    done = windpipe(
        "import",
        str(export),
        "--time-column",
        "time",
        "--turbine",
        "R80711",
        "--map",
        "ws=wind_speed",
        "--timezone",
        "Mars/Base",
        env=env,
    )
    assert done.stderr.startswith("error: --timezone: 'Mars/Base' is not an IANA time zone")
    done = windpipe(
        "import",
        str(export),
        "--time-column",
        "time",
        "--turbine",
        "R80711",
        "--map",
        "ws=wind_speed",
        "--timezone",
        "UTC",
        "--dry-run",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "1 rows of 1 turbine(s), 2017-01-01 00:00:00 .. 2017-01-01 00:00:00 UTC" in done.stdout


def test_a_10_minute_export_with_its_statistics_and_every_refusal(
    env: dict[str, str], source: Engine, tmp_path: Path
) -> None:
    export = tmp_path / "10min.csv"
    export.write_text(
        "Wind_turbine_name;Date_time;Ws_avg;Ws_min;Ws_max;Ws_std\n"
        "R80711;2017-03-26T01:10:00+01:00;5.5;3.0;8.0;1.25\n"
        "R80711;2017-03-26T01:20:00+01:00;6.0;4.0;7.5;0.75\n"
    )
    base = ["import", str(export), "--delimiter", ";", "--time-column", "Date_time"]
    base += ["--turbine-column", "Wind_turbine_name"]
    maps = [f"--map=Ws_{c}=wind_speed:{s}" for c, s in (("avg", "mean"), ("min", "min"))]
    maps += ["--map=Ws_max=wind_speed:max", "--map=Ws_std=wind_speed:std"]
    done = windpipe(*base, *maps, "--period", "10min", "--label", "end", env=env)
    assert done.returncode == 0, done.stderr
    assert "2017-03-26 00:00:00 .. 2017-03-26 00:10:00 UTC" in done.stdout  # period starts
    assert "Ws_std -> wind_speed:std (0 null)" in done.stdout
    with source.connect() as conn:
        held = conn.execute(
            text(
                "SELECT wind_speed, wind_speed__min, wind_speed__std, wind_speed__count "
                'FROM data ORDER BY "timestamp"'
            )
        ).all()
    assert [tuple(r) for r in held] == [(5.5, 3.0, 1.25, 600.0), (6.0, 4.0, 0.75, 600.0)]
    refusals = {
        ("--map=Ws_avg=gust:mean",): "error: --map 'Ws_avg=gust:mean': 'gust' is not a configured "
        "signal; accepted: wind_speed, power, ambient_temperature",
        ("--map=Ws_avg=wind_speed:mean", "--map=Ws_min=wind_speed:lowest", "--period=10min"): (
            "error: --map: Ws_min = 'wind_speed:lowest': unknown statistic 'lowest'; accepted: "
            "mean, min, max, std, count"
        ),
        (*maps, "--period", "7min"): "error: --period: period '7min' is not a duration from 1min "
        "to 1d that divides a day",
        (*maps, "--period", "10 minutes"): "error: --period: period '10 minutes' is not",
        (*maps, "--period", "10min", "--label", "middle"): "error: --label: 'middle': Input "
        "should be 'start' or 'end'",
        tuple(maps): "error: --map: Ws_min = 'wind_speed:min': a statistic of a period needs the "
        "period: give period",
        ("--map=Ws_avg=wind_speed:mean", "--map=Ws_min=wind_speed:mean", "--period=10min"): (
            "error: --map: columns Ws_avg and Ws_min both map to wind_speed:mean"
        ),
    }
    for options, message in refusals.items():
        refused = windpipe(*base, *options, env=env)
        assert refused.returncode == 1 and refused.stderr.startswith(message), refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert count(source) == 2


def _export(path: Path, rows: int) -> int:
    """A 2-turbine minute export of ``rows`` rows, 11 columns; its size in bytes."""
    minutes = pl.int_range(0, rows // 2, eager=True)
    (
        pl.DataFrame({"m": minutes})
        .join(pl.DataFrame({"Wind_turbine_name": ["R80711", "R80721"]}), how="cross")
        .select(
            "Wind_turbine_name",
            (pl.datetime(2020, 1, 1, time_zone="UTC") + pl.duration(minutes=pl.col("m")))
            .dt.to_string("%Y-%m-%dT%H:%M:%S%:z")
            .alias("Date_time"),
            *[(pl.col("m") % 97 / 7).round(3).alias(f"X{i}_avg") for i in range(6)],
            (pl.col("m") % 25 / 2).alias("Ws_avg"),
            (pl.col("m") % 2000 - 10).cast(pl.Float64).alias("P_avg"),
            (pl.col("m") % 30 - 5).cast(pl.Float64).alias("Ot_avg"),
        )
        .write_csv(path, separator=";")
    )
    return path.stat().st_size


def _peak_rss(argv: list[str], env: dict[str, str]) -> int:
    """Peak RSS in bytes of ``windpipe argv`` run as the only child of a small probe process."""
    probe = (
        "import resource, subprocess, sys; "
        "done = subprocess.run(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024); "
        "sys.exit(done.returncode)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, sys.executable, "-m", "windpipe", *argv],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])


def test_a_large_csv_imports_in_bounded_memory(
    env: dict[str, str], source: Engine, tmp_path: Path
) -> None:
    """~290 MB of CSV (3.4 M rows) peaks within 96 MB of a 30 MB file, under 400 MB: ten times
    the file, a fraction of its size more (69 MB was seen on a loaded machine, 64 MB the old bound,
    which a loaded allocator's arenas crossed)."""
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    _export(small, 340_000)
    size = _export(large, 3_400_000)
    assert size > 280e6
    base = _peak_rss(["import", str(small), "-m", "haute_borne"], env)
    peak = _peak_rss(["import", str(large), "-m", "haute_borne"], env)
    assert count(source) == 3_400_000
    mb = f"{base / 2**20:.0f} MB for 30 MB, {peak / 2**20:.0f} MB for {size / 1e6:.0f} MB"
    assert peak < 400 * 2**20 and peak - base < 96 * 2**20, mb
