"""Fixtures of the ETL tests: a clean target, extra source data, and ``windpipe api`` processes."""

import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.conftest import ApiProcess, LiveApi, start_api
from windpipe.etl.extract import ApiClient
from windpipe.etl.store import ensure_schema as ensure_target_schema
from windpipe.source.seed import seed_source

VARIABLES = ["wind_speed", "power"]
AGGREGATIONS = ["mean", "min", "max", "std"]
ALL_VARIABLES = ["wind_speed", "power", "ambient_temperature"]
ALL_AGGREGATIONS = ["mean", "min", "max", "std", "count"]

#: Days of 1-second data the fault and range tests use (outside the session's 2024-03 data).
ONE_SECOND_DAYS = (date(2031, 1, 1), date(2031, 1, 4))  # [first, end): 3 days, 259,200 samples


def day_start(day: date) -> datetime:
    """00:00 UTC of ``day``, aware."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def delete_source(engine: Engine, start: datetime, end: datetime) -> None:
    """Remove the source samples of ``[start, end)``."""
    with engine.begin() as conn:
        conn.execute(
            text('DELETE FROM data WHERE "timestamp" >= :s AND "timestamp" < :e'),
            {"s": start, "e": end},
        )


def target_rows(engine: Engine) -> list[tuple[datetime, str, float]]:
    """Every target row as (timestamp, signal name, value), sorted; ids are left out."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                'SELECT d."timestamp", s.name, d.value FROM data d '
                "JOIN signal s ON s.id = d.signal_id ORDER BY 1, 2"
            )
        ).all()
    return [(ts, name, value) for ts, name, value in rows]


@pytest.fixture
def target(target_engine: Engine) -> Iterator[Engine]:
    """The target engine with the schema created and no aggregates before and after the test."""
    ensure_target_schema(target_engine)
    with target_engine.begin() as conn:
        conn.execute(text("DELETE FROM data"))
    yield target_engine
    with target_engine.begin() as conn:
        conn.execute(text("DELETE FROM data"))


@pytest.fixture
def client(live_api: LiveApi) -> Iterator[ApiClient]:
    """An ETL client of the session's live API."""
    with ApiClient(live_api.url, timeout=30, retries=2) as api:
        yield api


@pytest.fixture(scope="module")
def one_second_days(source_engine: Engine) -> Iterator[tuple[date, date]]:
    """ONE_SECOND_DAYS seeded at 1 s in the source (removed afterwards); yields (first, last)."""
    start, end = day_start(ONE_SECOND_DAYS[0]), day_start(ONE_SECOND_DAYS[1])
    seed_source(source_engine, start, end, freq="1s", seed=31)
    yield ONE_SECOND_DAYS[0], ONE_SECOND_DAYS[1] - timedelta(days=1)
    delete_source(source_engine, start, end)


@pytest.fixture
def api_process(source_url: URL, seeded_source: Engine) -> Iterator[ApiProcess]:
    """A fresh ``windpipe api`` process for one test (which may kill it)."""
    api = start_api(source_url)
    yield api
    if api.process.poll() is None:
        api.process.terminate()
        try:
            api.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            api.process.kill()
            api.process.wait(timeout=10)


def kill_on_response(client: ApiClient, api: ApiProcess) -> Callable[[httpx.Response], None]:
    """Make ``client`` kill ``api`` as soon as the first response's headers arrive."""

    def hook(response: httpx.Response) -> None:
        if response.request.url.path == "/data":
            api.kill()

    client._http.event_hooks["response"].append(hook)
    return hook
