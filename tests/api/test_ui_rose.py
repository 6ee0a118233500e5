"""The turbine view's wind rose: drawn when a direction is aggregated, from the target's 10-minute
means, checked against NumPy over the same rows; absent (and no error) without a direction."""

from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.api.ui_browser import chromium, find_chromium
from tests.conftest import LiveApi, new_database, serve
from windpipe.api import create_app
from windpipe.api.dashboard import ROSE_SECTORS, ROSE_SPEEDS, rose_signal, wind_rose
from windpipe.etl.extract import ApiClient
from windpipe.etl.pipeline import run_range
from windpipe.postgres import libpq_conninfo
from windpipe.settings import Settings, SignalConfig, load_settings
from windpipe.source import store as source_store
from windpipe.source.seed import seed_source

BEGIN = datetime(2024, 7, 1, tzinfo=UTC)
RANGE = {"start": "2024-07-01", "end": "2024-07-03"}


@pytest.fixture(scope="module")
def windy(settings: Settings) -> Settings:
    """The session's settings with the wind direction declared and aggregated."""
    direction = SignalConfig(kind="angle", unit="deg", range=(0, 360), aggregate=True)
    signals = {**settings.signals, "wind_direction": direction}
    return load_settings(data_dir=settings.data_dir, signals=signals, _env_file=None)


@pytest.fixture(scope="module")
def rose_target(windy: Settings, target_url: URL) -> Iterator[tuple[Engine, Engine]]:
    """A source seeded with two days of WTG01 (its direction column added by the seed) and a
    target the ETL loaded them into."""
    with (
        new_database(target_url, "windpipe_rose_source") as source,
        new_database(target_url, "windpipe_rose_target") as target,
    ):
        source_store.ensure_schema(source)
        columns = [v.column for v in windy.variables.values()]
        seed_source(source, BEGIN, BEGIN + timedelta(days=2), seed=8, columns=columns)
        app = create_app(windy, source_conninfo=libpq_conninfo(source.url))
        with serve(app) as api, ApiClient(api.url) as client:
            first, last = BEGIN.date(), BEGIN.date() + timedelta(days=1)
            run_range(first, last, client=client, engine=target, rollup=windy.rollup)
        yield source, target


def _api(settings: Settings, databases: tuple[Engine, Engine]) -> AbstractContextManager[LiveApi]:
    source, target = databases
    app = create_app(
        settings,
        source_conninfo=libpq_conninfo(source.url),
        target_conninfo=libpq_conninfo(target.url),
    )
    return serve(app)


@pytest.fixture(scope="module")
def rose_api(windy: Settings, rose_target: tuple[Engine, Engine]) -> Iterator[LiveApi]:
    with _api(windy, rose_target) as api:
        yield api


def test_the_rose_is_the_share_of_windows_by_sector_and_speed(
    rose_api: LiveApi, rose_target: tuple[Engine, Engine]
) -> None:
    with rose_target[1].connect() as conn:
        rows = conn.execute(
            text(
                "SELECT d.value, w.value FROM data d JOIN signal ds ON ds.id = d.signal_id "
                "JOIN signal ws ON ws.turbine = ds.turbine AND ws.name = 'wind_speed_mean' "
                "JOIN data w ON w.signal_id = ws.id AND w.timestamp = d.timestamp "
                "WHERE ds.name = 'wind_direction_mean' AND ds.turbine = 'WTG01'"
            )
        ).all()
    direction, speed = np.array(rows, dtype=float).T
    # NumPy's 2-D histogram over the directions turned by half a sector, so north's sector
    # (348.75 to 11.25 degrees) is one bin.
    half = 180.0 / ROSE_SECTORS
    counts, _, _ = np.histogram2d(
        speed,
        (direction + half) % 360.0,
        bins=[[*ROSE_SPEEDS, np.inf], np.linspace(0.0, 360.0, ROSE_SECTORS + 1)],
    )
    rose = httpx.get(f"{rose_api.url}/ui/api/turbine/WTG01", params=RANGE).json()["rose"]
    assert rose["signal"] == "wind_direction_mean" and rose["windows"] == len(rows) == 288
    assert rose["counts"] == counts.astype(int).tolist()
    assert np.allclose(rose["percent"], 100 * counts / len(rows), atol=5e-4)
    assert rose["directions"][:3] == [0.0, 22.5, 45.0]
    assert rose["speed_classes"] == ["0-4", "4-8", "8-12", "12-16", ">16"]
    assert (counts > 0).sum() > 3  # the wind came from several sectors over two days
    page = httpx.get(f"{rose_api.url}/ui/turbine/WTG01").text
    assert 'id="rose"' in page


def test_sectors_are_centred_on_north_and_speed_classes_start_at_their_edge() -> None:
    pairs = pl.DataFrame(
        {
            "direction": [359.9, 0.0, 11.2499, 11.25, 348.75, 180.0, 90.0],
            "speed": [0.0, 3.999, 4.0, 12.0, 16.0, 25.0, 8.0],
        }
    )
    rose = wind_rose(pairs, "d_mean")
    cells = {(c, s): n for c, row in enumerate(rose["counts"]) for s, n in enumerate(row) if n}
    assert cells == {(0, 0): 2, (1, 0): 1, (3, 1): 1, (4, 0): 1, (4, 8): 1, (2, 4): 1}
    assert sum(map(sum, rose["percent"])) == pytest.approx(100.0, abs=0.01)
    assert wind_rose(pairs.clear(), "d_mean")["windows"] == 0


def test_without_a_direction_there_is_no_rose_and_no_error(
    settings: Settings, rose_target: tuple[Engine, Engine]
) -> None:
    assert rose_signal(settings) is None
    signed = SignalConfig(kind="angle", range=(-180, 180), aggregate=True)
    yaw = load_settings(
        data_dir=settings.data_dir,
        signals={**settings.signals, "yaw_error": signed},
        _env_file=None,
    )
    assert rose_signal(yaw) is None  # a signed angle is no direction to draw
    with _api(settings, rose_target) as api:
        answer = httpx.get(f"{api.url}/ui/api/turbine/WTG01", params=RANGE)
        assert answer.status_code == 200 and answer.json()["rose"] is None
        page = httpx.get(f"{api.url}/ui/turbine/WTG01")
        assert page.status_code == 200 and 'id="rose"' not in page.text


@pytest.mark.slow
def test_the_rose_is_drawn_in_headless_chromium(rose_api: LiveApi, tmp_path: Path) -> None:
    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium on PATH: install Debian's chromium (.ci/run does, as root)")
    with chromium(binary) as page:
        page.open(f"{rose_api.url}/ui/turbine/WTG01?start={RANGE['start']}&end={RANGE['end']}")
        assert page.evaluate("document.body.dataset.error || ''") == ""
        charts = page.charts()
        assert {k: v["traces"] for k, v in charts.items()} == {
            "wind": 3,
            "power": 3,
            "curve": 3,
            "iec-curve": 3,
            "rose": len(ROSE_SPEEDS),
        }
        assert charts["rose"]["points"] == [ROSE_SECTORS] * len(ROSE_SPEEDS)
        assert page.evaluate("document.getElementById('rose').dataset.windows") == "288"
        page.screenshot(tmp_path / "rose.png")
        assert page.foreign_requests() == []
        assert page.problems == []
    print(f"screenshot in {tmp_path}")
