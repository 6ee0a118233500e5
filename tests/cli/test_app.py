"""The command line as a user meets it: real processes, one clear line on bad input."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import LiveApi
from windpipe.settings import Settings


def windpipe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "windpipe", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WINDPIPE_API_PORT", "99999"),
        ("WINDPIPE_SOURCE_DB_URL", "localhost:5432"),
        ("WINDPIPE_API_URL", "127.0.0.1:8000"),
    ],
)
def test_bad_configuration_is_one_line_naming_the_variable(variable: str, value: str) -> None:
    result = windpipe("db", "url", "source", env={variable: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0] and "Traceback" not in result.stderr


def test_db_url_status_and_configured_servers(settings: Settings, source_url) -> None:  # type: ignore[no-untyped-def]
    env = {"WINDPIPE_DATA_DIR": str(settings.data_dir)}
    url = windpipe("db", "url", "target", env=env)
    assert url.returncode == 0, url.stderr
    assert url.stdout.strip().startswith("postgresql+psycopg://postgres")
    shown = make_url(url.stdout.strip())
    assert shown.database == "windpipe_target"
    assert shown.query["host"] == str((settings.data_dir / "postgres").resolve())

    status = windpipe("db", "status", env=env)
    assert status.returncode == 0
    assert "running (pid" in status.stdout

    configured = source_url.render_as_string(hide_password=False)
    shown = windpipe("db", "url", "source", env={"WINDPIPE_SOURCE_DB_URL": configured})
    assert shown.stdout.strip() == configured


def test_db_status_of_a_new_data_dir_starts_nothing(tmp_path: Path) -> None:
    result = windpipe("db", "status", env={"WINDPIPE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0
    assert "not created yet" in result.stdout
    assert not (tmp_path / "postgres").exists()


def test_unknown_command_and_help() -> None:
    assert windpipe("--help").returncode == 0
    result = windpipe("frobnicate")
    assert result.returncode == 2
    assert "No such command" in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["seed", "--start", "2026-W47-5"],
            "--start '2026-W47-5' is not a date; expected YYYY-MM-DD",
        ),
        (["etl", "--date", "20261120"], "--date '20261120' is not a date; expected YYYY-MM-DD"),
        (["etl", "--date", "2024-02-30"], "--date '2024-02-30' is not a valid date"),
        (
            ["seed", "--start", "9999-12-30", "--days", "2"],
            "ends after 9999-12-30, the last day windpipe can hold",
        ),
        (
            ["db", "init"],
            "the source database at postgresql+psycopg://u:***@127.0.0.1:1/db refused",
        ),
        (["seed"], "the source database at postgresql+psycopg://u:***@127.0.0.1:1/db refused"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    args: list[str], expected: str, tmp_path: Path
) -> None:
    refused = "postgresql+psycopg://u:secret@127.0.0.1:1/db"  # nothing listens on port 1
    env = {"WINDPIPE_SOURCE_DB_URL": refused, "WINDPIPE_DATA_DIR": str(tmp_path / "data")}
    result = windpipe(*args, env=env)
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert expected in result.stderr
    assert "secret" not in result.stderr + result.stdout
    assert not (tmp_path / "data").exists()  # no embedded server was created on the way


def test_an_unusable_data_dir_is_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    result = windpipe("db", "start", env={"WINDPIPE_DATA_DIR": str(a_file)})
    assert result.returncode == 1
    assert f"WINDPIPE_DATA_DIR={a_file} cannot hold the embedded PostgreSQL" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_status_hides_a_configured_password(tmp_path: Path) -> None:
    env = {
        "WINDPIPE_TARGET_DB_URL": "postgresql://u:secret@127.0.0.1:1/db",
        "WINDPIPE_DATA_DIR": str(tmp_path),
    }
    result = windpipe("db", "status", env=env)
    assert result.returncode == 0
    assert "target: configured, postgresql://u:***@127.0.0.1:1/db" in result.stdout
    assert "secret" not in result.stdout


def test_api_on_a_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = windpipe(
            "api",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            env={"WINDPIPE_DATA_DIR": str(tmp_path)},
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 (API) is already in use" in result.stderr
    assert not (tmp_path / "postgres").exists()  # refused before any database was started


def test_version() -> None:
    result = windpipe("--version")
    assert result.returncode == 0
    assert re.fullmatch(r"windpipe \d+\.\d+\.\d+\S*\n", result.stdout)


def test_config_show_names_where_each_value_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fleet.toml").write_text(
        'api_port = 8100\n[etl]\nwindow = "15min"\n'
        '[[turbines]]\nid = "WTG01"\n[[turbines]]\nid = "WTG02"\nrated_power_kw = 3000\n'
    )
    env = {"WINDPIPE_CONFIG": str(tmp_path / "fleet.toml"), "WINDPIPE_LOG_LEVEL": "debug"}
    done = subprocess.run(
        [sys.executable, "-m", "windpipe", "config", "show"],
        env={**os.environ, **env, "COLUMNS": "200"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()  # piped: one line per value
    assert f"WINDPIPE_API_PORT=8100  # {tmp_path}/fleet.toml (api_port)" in lines
    assert f"WINDPIPE_ETL_WINDOW=15min  # {tmp_path}/fleet.toml (etl.window)" in lines
    assert "WINDPIPE_LOG_LEVEL=DEBUG  # environment (WINDPIPE_LOG_LEVEL)" in lines
    assert "WINDPIPE_API_HOST=127.0.0.1  # default" in lines
    assert "turbine id=WTG02, rated_power_kw=3000.0" in lines
    assert "-> 8 signals per turbine" in done.stdout
    (tmp_path / "fleet.toml").write_text('[[turbines]]\nid = "A"\n[[turbines]]\nid = "A"\n')
    bad = subprocess.run(
        [sys.executable, "-m", "windpipe", "config", "show"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "fleet.toml: turbines: duplicate turbine id A; each id must be unique" in bad.stderr


def test_config_show_says_a_running_api_keeps_the_fleet_it_started_with(live_api: LiveApi) -> None:
    # The session's API started without [[turbines]]; this configuration declares two.
    fleet = '[{"id": "WTG01", "synthetic": true}, {"id": "WTG02", "synthetic": true}]'
    result = windpipe(
        "config", "show", env={"WINDPIPE_API_URL": live_api.url, "WINDPIPE_TURBINES": fleet}
    )
    assert result.returncode == 0, result.stderr
    assert "turbine id=WTG02, synthetic=true" in result.stdout.splitlines()
    notice = [line for line in result.stdout.splitlines() if line.startswith("note:")]
    assert notice == [
        f"note: the API running at {live_api.url} serves every turbine of the source, this "
        "configuration declares the fleet WTG01, WTG02: restart windpipe up (or the API and "
        "Dagster) to apply it"
    ]
    alone = windpipe("config", "show", env={"WINDPIPE_API_URL": "http://127.0.0.1:9"})
    assert "note:" not in alone.stdout  # nothing runs there: nothing to restart
