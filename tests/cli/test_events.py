"""``windpipe events import`` as a user runs it: a real process, a windpipe.toml, real files."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from tests.cli.test_import import windpipe
from tests.conftest import new_database
from windpipe.source.events import count_events
from windpipe.source.store import ensure_schema

pytestmark = pytest.mark.slow  # each test starts the CLI in a fresh interpreter

CONFIG = """
[event_codes]
"101" = { category = "scheduled_maintenance", description = "Service" }
"""


@pytest.fixture
def source(source_url: URL) -> Iterator[Engine]:
    with new_database(source_url, "windpipe_events_cli") as engine:
        ensure_schema(engine)
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


def test_import_twice_then_a_bad_file_is_one_line_and_changes_nothing(
    env: dict[str, str], source: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "Unit;From;To;Status\n"
        "WTG01;2024-06-01 10:00;2024-06-01 10:30;101\n"
        "WTG01;2024-06-01 12:00;;999\n"
    )
    options = ["--delimiter", ";", "--timezone", "Europe/Paris", "--turbine-column", "Unit"]
    options += ["--start-column", "From", "--end-column", "To", "--code-column", "Status"]
    first = windpipe("events", "import", str(path), *options, env=env)
    assert first.returncode == 0, first.stderr
    assert (
        f"imported {path}: 2 events read, 2 kept of 1 turbine(s), 2 new, 0 changed, 1 ongoing"
        in first.stdout
    )
    assert "event code(s) 999 are not in [event_codes]" in first.stderr
    again = windpipe("events", "import", str(path), *options, env=env)
    assert "0 new, 0 changed, 1 ongoing" in again.stdout
    assert count_events(source) == 2

    bad = tmp_path / "bad.csv"
    bad.write_text("Unit;From;To;Status\nWTG01;2024-06-02 10:00;2024-06-02 09:00;101\n")
    refused = windpipe("events", "import", str(bad), *options, env=env)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"error: {bad}: line 2, column 'To': end not after start '2024-06-02 09:00'; nothing was "
        "imported from this file"
    )
    assert count_events(source) == 2


def test_events_of_a_turbine_outside_the_declared_fleet_are_named(
    env: dict[str, str], source: Engine, tmp_path: Path
) -> None:
    config = Path(env["WINDPIPE_CONFIG"])
    config.write_text(CONFIG + '\n[[turbines]]\nid = "WTG01"\n\n[[turbines]]\nid = "WTG02"\n')
    path = tmp_path / "events.csv"
    path.write_text(
        "turbine,start,end,code,message\n"
        "WTG01,2024-06-01T10:00:00Z,2024-06-01T10:30:00Z,101,service\n"
        "WTG09,2024-06-01T11:00:00Z,2024-06-01T11:30:00Z,101,a misspelt id\n"
    )
    done = windpipe("events", "import", str(path), env=env)
    assert done.returncode == 0, done.stderr
    assert (
        "warning: turbine(s) WTG09 are not in the fleet of windpipe.toml ([[turbines]]: WTG01, "
        "WTG02): their events are kept, but no figure reads them"
    ) in done.stderr
    assert count_events(source) == 2
    # without a declared fleet (the samples' turbines are the fleet) nothing is said
    config.write_text(CONFIG)
    again = windpipe("events", "import", str(path), env=env)
    assert again.returncode == 0 and "not in the fleet" not in again.stderr, again.stderr
