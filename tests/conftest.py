"""Shared fixtures: one real embedded PostgreSQL per test session, in a temporary directory."""

import atexit
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL
from starlette.types import ASGIApp

from windpipe.api import create_app
from windpipe.postgres import (
    database_url,
    embedded_status,
    libpq_conninfo,
    make_engine,
    stop_embedded,
)
from windpipe.settings import Settings, TurbineConfig, load_settings
from windpipe.source import store as source_store
from windpipe.source.generator import farm
from windpipe.source.seed import seed_source
from windpipe.source.store import ensure_schema as ensure_source_schema
from windpipe.testing import free_port
from windpipe.warehouse.store import ensure_schema as ensure_target_schema

# Tests never read a developer's own WINDPIPE_* variables, .env or windpipe.toml: an empty
# configuration file stands in for the one that may lie in the working directory.
for _name in [n for n in os.environ if n.startswith("WINDPIPE_")]:
    del os.environ[_name]
_EMPTY_CONFIG = Path(tempfile.mkdtemp(prefix="windpipe-config-")) / "windpipe.toml"
atexit.register(shutil.rmtree, _EMPTY_CONFIG.parent, True)  # not one directory left per session
_EMPTY_CONFIG.write_text("# the tests' configuration: every default\n")
os.environ["WINDPIPE_CONFIG"] = str(_EMPTY_CONFIG)


@contextmanager
def fresh_data_dir(prefix: str = "windpipe-test-") -> Iterator[Path]:
    """A new data directory outside pytest's tmp tree, whose embedded server is stopped after.

    Not under ``/tmp/pytest-of-root``: pytest resets that folder to mode 0700 when any session
    starts, which locks the server's unprivileged user out of a running cluster.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        with suppress(Exception):
            stop_embedded(path)
        shutil.rmtree(path, ignore_errors=True)


#: Where a command keeps its embedded PostgreSQL when nothing sets WINDPIPE_DATA_DIR: the working
#: directory's ``.windpipe`` (the checkout's, under `make test`). A test that starts one there
#: must not leave it running: the suite stops it at the end and names the test that started it.
DEFAULT_DATA_DIR = Path(".windpipe").resolve()
#: A developer's own server there (`windpipe up` in the checkout) is theirs: left alone.
_RUNNING_BEFORE = embedded_status(DEFAULT_DATA_DIR).running
_STARTED_BY: list[str] = []


def stop_left_running(data_dir: Path, *, running_before: bool) -> bool:
    """Stop the embedded server in ``data_dir`` if one runs that did not before; whether it did."""
    if running_before or not embedded_status(data_dir).running:
        return False
    return stop_embedded(data_dir)


@pytest.fixture(autouse=True)
def _note_a_server_in_the_default_data_dir(request: pytest.FixtureRequest) -> Iterator[None]:
    """Note the first test after which an embedded server runs in the default data directory."""
    yield
    if not _RUNNING_BEFORE and not _STARTED_BY and embedded_status(DEFAULT_DATA_DIR).running:
        _STARTED_BY.append(request.node.nodeid)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop what a test started in the default data directory and left running."""
    if stop_left_running(DEFAULT_DATA_DIR, running_before=_RUNNING_BEFORE):
        _STARTED_BY.append(f"stopped the embedded PostgreSQL left running in {DEFAULT_DATA_DIR}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which test started an embedded server in the default data directory, if one did."""
    if _STARTED_BY:
        terminalreporter.write_line(
            "embedded PostgreSQL in the default data directory: first seen running after "
            + "; ".join(_STARTED_BY),
            yellow=True,
        )


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    """The session's windpipe data directory, with its own embedded PostgreSQL."""
    with fresh_data_dir() as path:
        yield path


@pytest.fixture(scope="session")
def settings(data_dir: Path) -> Settings:
    """Settings pointing at the session's embedded PostgreSQL."""
    return load_settings(data_dir=data_dir, _env_file=None)


@pytest.fixture(scope="session")
def source_url(settings: Settings) -> URL:
    return database_url(settings, "source")


@pytest.fixture(scope="session")
def target_url(settings: Settings) -> URL:
    return database_url(settings, "target")


@pytest.fixture(scope="session")
def source_engine(source_url: URL) -> Iterator[Engine]:
    engine = make_engine(source_url)
    ensure_source_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def target_engine(target_url: URL) -> Iterator[Engine]:
    engine = make_engine(target_url)
    yield engine
    engine.dispose()


@pytest.fixture
def target(target_engine: Engine) -> Iterator[Engine]:
    """The target engine with the schema created and no aggregates before and after the test."""
    ensure_target_schema(target_engine)
    with target_engine.begin() as conn:
        conn.execute(text("DELETE FROM data"))
    yield target_engine
    with target_engine.begin() as conn:
        conn.execute(text("DELETE FROM data"))


def target_rows(engine: Engine) -> list[tuple[datetime, str, float]]:
    """Every target row as (naive UTC timestamp, signal name, value), sorted; ids left out."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT d.\"timestamp\" AT TIME ZONE 'UTC', s.name, d.value FROM data d "
                "JOIN signal s ON s.id = d.signal_id ORDER BY 1, 2"
            )
        ).all()
    return [(ts, name, value) for ts, name, value in rows]


# The session's source holds these periods (seed 7, 1-minute samples). Tests that need other data
# write it outside these periods and remove it afterwards, so tests never disturb one another.
CLEAN_DAYS = (date(2024, 3, 1), date(2024, 3, 6))  # [first, end): 5 full days, no gaps
GAPPY_DAYS = (date(2024, 3, 10), date(2024, 3, 12))  # 2 days with ~5 % of samples missing
SEED = 7


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@pytest.fixture(scope="session")
def seeded_source(source_engine: Engine) -> Engine:
    """The source DB with CLEAN_DAYS and GAPPY_DAYS seeded."""
    seed_source(source_engine, _day_start(CLEAN_DAYS[0]), _day_start(CLEAN_DAYS[1]), seed=SEED)
    seed_source(
        source_engine,
        _day_start(GAPPY_DAYS[0]),
        _day_start(GAPPY_DAYS[1]),
        seed=SEED,
        gap_rate=0.05,
    )
    return source_engine


@dataclass
class LiveApi:
    """A real uvicorn server on loopback, serving the session's source DB."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread


@contextmanager
def serve(app: ASGIApp) -> Iterator[LiveApi]:
    """Run ``app`` under a real uvicorn on a free 127.0.0.1 port for the duration of the block."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"api-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test API did not start within 20 s")
        time.sleep(0.02)
    try:
        yield LiveApi(url=f"http://127.0.0.1:{port}", server=server, thread=thread)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_api(
    settings: Settings, source_url: URL, target_url: URL, seeded_source: Engine
) -> Iterator[LiveApi]:
    """The connector API on a free 127.0.0.1 port for the whole session (the dashboard's
    routes read the session's target)."""
    app = create_app(
        settings,
        source_conninfo=libpq_conninfo(source_url),
        target_conninfo=libpq_conninfo(target_url),
    )
    with serve(app) as api:
        yield api


@contextmanager
def new_database(server: URL, name: str) -> Iterator[Engine]:
    """A new, empty database ``name`` on ``server``'s PostgreSQL, dropped after the block."""
    admin = make_engine(server.set(database="postgres")).execution_options(
        isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(server.set(database=name))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def empty_database(target_url: URL, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A new, empty database on the session's server for one test, dropped afterwards."""
    name = "windpipe_t_" + re.sub(r"\W", "_", request.node.name.lower())[:40]
    with new_database(target_url, name) as engine:
        yield engine


def utc(*args: int) -> datetime:
    """A UTC datetime, for brevity in tests."""
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# A three-turbine farm for the fleet's tests: two days at 1 min in databases of its own.
FARM_DAYS = (date(2024, 6, 1), date(2024, 6, 2))
FARM_TURBINES = ["WTG01", "WTG02", "WTG03"]


@pytest.fixture(scope="session")
def fleet_settings(settings: Settings) -> Settings:
    """The session's settings with a three-turbine fleet, as a windpipe.toml would declare it."""
    turbines = [TurbineConfig(id=t, rated_power_kw=2000.0) for t in FARM_TURBINES]
    return load_settings(data_dir=settings.data_dir, turbines=turbines, _env_file=None)


@pytest.fixture(scope="session")
def farm_db(target_url: URL) -> Iterator[tuple[Engine, Engine]]:
    """A fresh source seeded with the farm's two days, and a fresh target."""
    with (
        new_database(target_url, "windpipe_fleet_source") as source,
        new_database(target_url, "windpipe_fleet_target") as target,
    ):
        source_store.ensure_schema(source)
        begin = datetime(FARM_DAYS[0].year, FARM_DAYS[0].month, FARM_DAYS[0].day, tzinfo=UTC)
        seed_source(source, begin, begin + timedelta(days=2), turbines=farm(3), seed=5)
        yield source, target


@pytest.fixture(scope="session")
def farm_api(fleet_settings: Settings, farm_db: tuple[Engine, Engine]) -> Iterator[LiveApi]:
    app = create_app(fleet_settings, source_conninfo=libpq_conninfo(farm_db[0].url))
    with serve(app) as api:
        yield api


@dataclass
class MutableFarm:
    """A farm of its own that a test may change under the pipeline: source, target, live API."""

    source: Engine
    target: Engine
    api: LiveApi


@pytest.fixture
def mutable_farm(
    fleet_settings: Settings, target_url: URL, request: pytest.FixtureRequest
) -> Iterator[MutableFarm]:
    """The three-turbine farm's two days in a source and a target of the test's own (so it can
    update, delete and insert samples), served by a live API."""
    tag = re.sub(r"\W", "_", request.node.name.lower())[:30]
    with (
        new_database(target_url, f"windpipe_ms_{tag}") as source,
        new_database(target_url, f"windpipe_mt_{tag}") as target,
    ):
        source_store.ensure_schema(source)
        begin = datetime(FARM_DAYS[0].year, FARM_DAYS[0].month, FARM_DAYS[0].day, tzinfo=UTC)
        seed_source(source, begin, begin + timedelta(days=2), turbines=farm(3), seed=5)
        app = create_app(fleet_settings, source_conninfo=libpq_conninfo(source.url))
        with serve(app) as api:
            yield MutableFarm(source, target, api)
