"""``windpipe etl`` and ``windpipe backfill`` as a user runs them: real processes, real services."""

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine

from tests.conftest import LiveApi, serve, target_rows
from windpipe.api import create_app
from windpipe.postgres import database_url, ensure_database, libpq_conninfo, make_engine
from windpipe.settings import Settings
from windpipe.source.seed import seed_source
from windpipe.source.store import ensure_schema as ensure_source_schema
from windpipe.testing import free_port

# Every test here starts the CLI in a fresh interpreter (1-3 s each on the 2-core machine).
pytestmark = pytest.mark.slow


def windpipe(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in its own interpreter, as ``windpipe ...`` would."""
    return subprocess.run(
        [sys.executable, "-m", "windpipe", *args],
        env={**os.environ, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def cli_env(live_api: LiveApi, target: Engine, tmp_path: Path) -> dict[str, str]:
    """Environment pointing the CLI at the live API and the session's target database."""
    return {
        "WINDPIPE_API_URL": live_api.url,
        "WINDPIPE_TARGET_DB_URL": target.url.render_as_string(hide_password=False),
        "WINDPIPE_DATA_DIR": str(tmp_path),  # no embedded server may be started from here
    }


def test_etl_loads_one_day(cli_env: dict[str, str], target: Engine) -> None:
    done = windpipe("etl", "--date", "2024-03-01", env=cli_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("2024-03-01: 1,440 samples (100.0% coverage) -> 144 windows")
    assert "1,152 rows written" in done.stdout and done.stderr == ""
    assert len(target_rows(target)) == 1152


def test_etl_of_a_day_without_data_warns_and_exits_0(
    cli_env: dict[str, str], target: Engine
) -> None:
    done = windpipe(
        "etl", "--date", "2024-03-08", env={**cli_env, "WINDPIPE_ETL_AGGREGATIONS": "mean,count"}
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == (
        "warning: the API has no samples for 2024-03-08; the day's aggregates were cleared"
    )
    assert target_rows(target) == []


@pytest.mark.parametrize(
    ("args", "override", "message"),
    [
        (
            ["--date", "2024-02-30"],
            {},
            "error: --date '2024-02-30' is not a valid date (day is out of range for month)",
        ),
        (
            ["--date", "2024-03-01"],
            {"api": True},
            # Without [[turbines]] the fleet is asked of the API first, before any day.
            "error: the API at http://127.0.0.1:",
        ),
        (["--date", "2024-03-01"], {"target": True}, "error: the target database at "),
        (["--date", "2024-03-01"], {"bad": True}, "error: invalid configuration: WINDPIPE_ETL_"),
    ],
    ids=["bad-date", "api-down", "target-refuses", "bad-config"],
)
def test_failures_are_one_line_and_non_zero_and_write_nothing(
    cli_env: dict[str, str], target: Engine, args: list[str], override: dict, message: str
) -> None:
    env = dict(cli_env)
    if override.get("api"):
        env["WINDPIPE_API_URL"] = f"http://127.0.0.1:{free_port()}"
    if override.get("target"):
        env["WINDPIPE_TARGET_DB_URL"] = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x"
    if override.get("bad"):
        env["WINDPIPE_ETL_AGGREGATIONS"] = "mean,median"
    done = windpipe("etl", *args, env=env)
    assert done.returncode != 0
    assert done.stderr.startswith(message), done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert target_rows(target) == []


def test_backfill_a_range_with_a_summary(cli_env: dict[str, str], target: Engine) -> None:
    done = windpipe("backfill", "--start", "2024-03-04", "--end", "2024-03-10", env=cli_env)
    assert done.returncode == 0, done.stderr
    assert "backfilled 7 day(s) 2024-03-04..2024-03-10: " in done.stdout
    assert "rows written in" in done.stdout and "samples/s" in done.stdout
    assert done.stderr.strip() == (
        "warning: 4 day(s) had no samples and were cleared: "
        "2024-03-06, 2024-03-07, 2024-03-08, 2024-03-09"
    )
    days = sorted({ts.date().isoformat() for ts, _, _ in target_rows(target)})
    assert days == ["2024-03-04", "2024-03-05", "2024-03-10"]
    reversed_range = windpipe(
        "backfill", "--start", "2024-03-04", "--end", "2024-03-01", env=cli_env
    )
    assert reversed_range.returncode == 1
    assert reversed_range.stderr.strip() == "error: --end 2024-03-01 is before --start 2024-03-04"


@pytest.fixture
def own_source_api(settings: Settings) -> Iterator[str]:
    """An API over a source of its own holding exactly 2022-02-27 12:00 .. 2022-03-02 06:00."""
    server = database_url(settings, "source").set(database="postgres")
    ensure_database(server, "windpipe_backfill_source")
    url = server.set(database="windpipe_backfill_source")
    engine = make_engine(url)
    ensure_source_schema(engine)
    seed_source(engine, datetime(2022, 2, 27, 12, tzinfo=UTC), datetime(2022, 3, 2, 6, tzinfo=UTC))
    app = create_app(settings, source_conninfo=libpq_conninfo(url))
    with serve(app) as api:
        yield api.url
    engine.dispose()
    with psycopg.connect(libpq_conninfo(server), autocommit=True) as conn:
        conn.execute("DROP DATABASE windpipe_backfill_source WITH (FORCE)")


def test_backfill_defaults_to_every_day_the_api_holds(
    cli_env: dict[str, str], target: Engine, own_source_api: str
) -> None:
    done = windpipe("backfill", env={**cli_env, "WINDPIPE_API_URL": own_source_api})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("backfilled 4 day(s) 2022-02-27..2022-03-02: 3,960 samples read")
    per_day: dict[str, int] = {}
    for ts, _, _ in target_rows(target):
        per_day[ts.date().isoformat()] = per_day.get(ts.date().isoformat(), 0) + 1
    assert per_day == {"2022-02-27": 576, "2022-02-28": 1152, "2022-03-01": 1152, "2022-03-02": 288}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--start", "2022-03-05"],
            "--start 2022-03-05 is after the last day with data "
            "(the API holds 2022-02-27..2022-03-02)",
        ),
        (
            ["--end", "2022-01-01"],
            "--end 2022-01-01 is before the first day with data "
            "(the API holds 2022-02-27..2022-03-02)",
        ),
    ],
)
def test_backfill_says_where_a_default_bound_came_from(
    cli_env: dict[str, str], own_source_api: str, args: list[str], expected: str
) -> None:
    done = windpipe("backfill", *args, env={**cli_env, "WINDPIPE_API_URL": own_source_api})
    assert done.returncode == 1
    assert expected in done.stderr


def test_etl_imports_nothing_heavy_it_does_not_use(cli_env: dict[str, str]) -> None:
    probe = (
        "import sys\n"
        "from windpipe.cli import app\n"
        "try:\n"
        "    app(['etl', '--date', '2024-03-01'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "heavy = {'dagster', 'fastapi', 'pandas', 'uvicorn', 'starlette', 'numpy', 'pyarrow'}\n"
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, **cli_env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def test_without_turbines_configured_the_fleet_is_what_the_source_holds(
    settings: Settings, tmp_path: Path
) -> None:
    """`windpipe seed --turbines 3` with no windpipe.toml, then `windpipe etl` loads all three
    (it loaded WTG01 alone and said 100.0% coverage); a turbine imported later joins too."""
    import httpx

    from tests.conftest import new_database

    server = database_url(settings, "source")
    with (
        new_database(server, "windpipe_nofleet_source") as source,
        new_database(server, "windpipe_nofleet_target") as target,
    ):
        ensure_source_schema(source)
        env = {
            "WINDPIPE_SOURCE_DB_URL": source.url.render_as_string(hide_password=False),
            "WINDPIPE_TARGET_DB_URL": target.url.render_as_string(hide_password=False),
            "WINDPIPE_DATA_DIR": str(tmp_path),
        }
        seeded = windpipe(
            "seed", "--start", "2024-07-01", "--days", "1", "--turbines", "3", env=env
        )
        assert seeded.returncode == 0, seeded.stderr
        app = create_app(
            settings,  # no [[turbines]]: the tests' configuration file is empty
            source_conninfo=libpq_conninfo(source.url),
            target_conninfo=libpq_conninfo(target.url),
        )
        with serve(app) as api:
            env["WINDPIPE_API_URL"] = api.url
            done = windpipe("etl", "--date", "2024-07-01", env=env)
            assert done.returncode == 0, done.stderr
            assert done.stdout.startswith("2024-07-01: 4,320 samples of 3 turbines (100.0%")
            overview = httpx.get(f"{api.url}/ui/api/overview", params={"end": "2024-07-01"})
            assert overview.json()["turbines"] == ["WTG01", "WTG02", "WTG03"]
            page = httpx.get(f"{api.url}/ui").text
            assert ">WTG03</a>" in page

            export = tmp_path / "r80711.csv"
            export.write_text(
                "timestamp,wind_speed,power\n"
                + "".join(f"2024-07-01T{h:02d}:00:00Z,7.5,900.0\n" for h in range(24))
            )
            imported = windpipe("import", str(export), "--turbine", "R80711", env=env)
            assert imported.returncode == 0, imported.stderr
            assert "turbine(s) R80711 joined the fleet" in imported.stdout
            again = windpipe("etl", "--date", "2024-07-01", env=env)
            assert again.returncode == 0, again.stderr
            assert "samples of 4 turbines" in again.stdout
            turbines = httpx.get(f"{api.url}/ui/api/quality", params={"end": "2024-07-01"})
            assert turbines.json()["turbines"] == ["R80711", "WTG01", "WTG02", "WTG03"]
