"""Fixtures of the ETL tests: extra source data, ``windpipe api`` processes, target faults."""

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

import httpx
import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.conftest import LiveApi
from windpipe.etl.extract import ApiClient
from windpipe.postgres import libpq_conninfo
from windpipe.source.seed import seed_source
from windpipe.testing import ApiProcess, start_api

VARIABLES = ["wind_speed", "power"]
AGGREGATIONS = ["mean", "min", "max", "std"]
ALL_VARIABLES = ["wind_speed", "power", "ambient_temperature"]
ALL_AGGREGATIONS = ["mean", "min", "max", "std", "count"]

#: Days of 1-second data the fault and range tests use (outside the session's 2024-03 data).
ONE_SECOND_DAYS = (date(2021, 1, 1), date(2021, 1, 4))  # [first, end): 3 days, 259,200 samples


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
    api.stop()


def kill_on_response(api: ApiProcess) -> Callable[[httpx.Response], None]:
    """A response hook that kills ``api`` as soon as the headers of a /data answer arrive."""

    def hook(response: httpx.Response) -> None:
        if response.request.url.path == "/data":
            api.kill()

    return hook


def wait_for_backends(
    engine: Engine, count: int, wait_event_type: str, query_start: str
) -> list[int]:
    """Wait until ``count`` other backends wait on ``wait_event_type`` in ``query_start...``."""

    def waiting() -> list[int]:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE wait_event_type = :w "
                        "AND query LIKE :q AND pid <> pg_backend_pid()"
                    ),
                    {"w": wait_event_type, "q": query_start + "%"},
                ).scalars()
            )

    deadline = time.monotonic() + 20
    while len(pids := waiting()) < count:
        assert time.monotonic() < deadline, f"{count} backend(s) never waited on {query_start}"
        time.sleep(0.01)
    return pids


class KillMidCopy(Protocol):
    """The ``kill_mid_copy`` fixture's function."""

    def __call__(
        self, load: Callable[[], object], *, signal: str, at: datetime
    ) -> list[BaseException]: ...


@pytest.fixture
def kill_mid_copy(target: Engine) -> KillMidCopy:
    """Run a load with its target backend killed mid-COPY; returns what the load raised.

    ``kill_mid_copy(load, signal=..., at=...)`` holds an uncommitted row of ``signal`` at ``at``
    that ``load`` will also insert, so its COPY must wait for it (after the DELETE before it in the
    same transaction); that waiting backend is terminated, then the row is rolled back.
    """

    def kill(load: Callable[[], object], *, signal: str, at: datetime) -> list[BaseException]:
        errors: list[BaseException] = []

        def guarded() -> None:
            try:
                load()
            except BaseException as exc:
                errors.append(exc)

        with psycopg.connect(libpq_conninfo(target.url)) as blocker:
            blocker.execute(
                'INSERT INTO data ("timestamp", signal_id, value) SELECT %s, id, -1 FROM signal '
                "WHERE name = %s",
                (at, signal),
            )
            thread = threading.Thread(target=guarded)
            thread.start()
            (pid,) = wait_for_backends(target, 1, "Lock", "COPY data")
            with target.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            thread.join(timeout=30)
            blocker.rollback()
        return errors

    return kill
