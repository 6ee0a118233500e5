"""Synthetic data only for synthetic turbines: the seed, the live feed and ``up``'s seeding path
leave turbines holding imported (real) data untouched, on databases of their own."""

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL
from typer.testing import CliRunner

from tests.conftest import new_database
from windpipe.cli import app
from windpipe.cli.up import seed_if_empty
from windpipe.errors import SeedInputError
from windpipe.settings import ImportConfig, load_settings
from windpipe.source import store
from windpipe.source.feed import run_feed
from windpipe.source.generator import TurbineSpec, farm
from windpipe.source.importer import import_file
from windpipe.source.seed import seed_source
from windpipe.source.store import ensure_schema as ensure_source_schema

SIGNALS = {
    "wind_speed": "wind_speed",
    "power": "power",
    "ambient_temperature": "ambient_temperature",
}


@pytest.fixture
def source(source_url: URL, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A source database of the test's own."""
    name = "windpipe_syn_" + request.node.name[5:35].lower()
    with new_database(source_url, name) as engine:
        ensure_source_schema(engine)
        yield engine


def import_real(engine: Engine, folder: Path, turbine: str, start: datetime, hours: int) -> None:
    """Import ``hours`` of 10-minute rows of ``turbine`` as a SCADA export would bring them."""
    path = folder / f"{turbine}.csv"
    lines = ["timestamp,wind_speed,power"]
    for i in range(hours * 6):
        moment = start + timedelta(minutes=10 * i)
        lines.append(f"{moment.isoformat()},{5 + i % 7}.5,{100 * (i % 13)}.0")
    path.write_text("\n".join(lines) + "\n")
    import_file(
        path, ImportConfig(turbine=turbine), signals=SIGNALS, fleet=[turbine], engine=engine
    )


def held(engine: Engine, turbine: str) -> list[tuple[Any, ...]]:
    """Every row of ``turbine``."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                text('SELECT * FROM data WHERE turbine = :t ORDER BY "timestamp"'), {"t": turbine}
            )
        )


def test_the_importer_and_the_seed_record_each_turbines_origin(
    source: Engine, tmp_path: Path
) -> None:
    start = datetime(2014, 1, 1, tzinfo=UTC)
    import_real(source, tmp_path, "R80711", start, 2)
    seed_source(source, start, start + timedelta(hours=1), turbines=farm(2))
    assert store.origins(source) == {
        "R80711": "imported",
        "WTG01": "synthetic",
        "WTG02": "synthetic",
    }
    # An import into a synthetic turbine makes it imported: from then on it is left alone.
    import_real(source, tmp_path, "WTG02", start + timedelta(days=1), 1)
    assert store.origins(source)["WTG02"] == "imported"


def test_the_seed_refuses_a_turbine_holding_imported_data(source: Engine, tmp_path: Path) -> None:
    start = datetime(2014, 1, 1, tzinfo=UTC)
    import_real(source, tmp_path, "R80711", start, 6)
    before = held(source, "R80711")
    specs = [TurbineSpec("WTG01"), TurbineSpec("R80711")]
    with pytest.raises(SeedInputError, match="R80711 holds imported data"):
        seed_source(source, start, start + timedelta(days=1), turbines=specs)
    assert held(source, "R80711") == before
    assert held(source, "WTG01") == []  # refused before anything was written


def test_the_live_feed_leaves_imported_turbines_alone(source: Engine, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    import_real(source, tmp_path, "R80711", now - timedelta(hours=3), 2)  # ends an hour ago
    before = held(source, "R80711")
    specs = [TurbineSpec("WTG01"), TurbineSpec("R80711")]
    added = run_feed(
        source, threading.Event(), seed=42, turbines=specs, max_iterations=1, pause=lambda: 0
    )
    assert added > 0 and held(source, "WTG01")
    assert held(source, "R80711") == before


def test_ups_seeding_path_generates_synthetic_turbines_only(source: Engine, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    import_real(source, tmp_path, "R80711", now - timedelta(days=2), 24)
    before = held(source, "R80711")
    fleet = [
        {"id": "WTG01", "synthetic": True},
        {"id": "R80711", "synthetic": True},  # a mistake: it holds imported data
        {"id": "R80712"},  # a real turbine whose data is still to come
    ]
    said: list[str] = []
    settings = load_settings(_env_file=None, turbines=fleet)
    seed_if_empty(source, settings, said.append)
    assert held(source, "R80711") == before
    assert held(source, "R80712") == []
    wtg01 = len(held(source, "WTG01"))
    assert wtg01 > 10 * 1440
    assert any(
        "not generated: R80711 holds imported data; R80712 is not marked synthetic = true" in line
        for line in said
    ), said
    assert any("the live feed adds one a minute to 1 synthetic turbine(s)" in line for line in said)

    # A synthetic turbine added to the running demo farm gets its history when up starts again.
    said.clear()
    grown = load_settings(_env_file=None, turbines=[*fleet, {"id": "WTG02", "synthetic": True}])
    seed_if_empty(source, grown, said.append)
    assert any("new synthetic turbine(s) WTG02: seeded" in line for line in said), said
    # The same history, up to its own seeding's minute (a minute may have turned since WTG01's).
    assert 0 <= len(held(source, "WTG02")) - wtg01 <= 2
    assert held(source, "R80711") == before


def test_cli_seed_without_configuration_leaves_imported_turbines_alone(
    source: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from windpipe.settings import get_settings

    start = datetime(2014, 1, 1, tzinfo=UTC)
    seed_source(source, start, start + timedelta(days=1), turbines=farm(2))
    import_real(source, tmp_path, "R80711", start, 24)
    before = held(source, "R80711")
    monkeypatch.setenv("WINDPIPE_SOURCE_DB_URL", source.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["seed", "--start", "2014-01-01", "--days", "1"])
        refused = CliRunner().invoke(app, ["seed", "--start", "2014-01-01", "--turbines", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "not seeded: R80711 holds imported data" in result.output
    assert "seeded 2,880 rows of 2 turbine(s)" in result.output  # WTG01 and WTG02, as before
    assert held(source, "R80711") == before
    assert refused.exit_code == 0, refused.output  # WTG01 alone is synthetic: allowed
