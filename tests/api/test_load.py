"""The API under load: a bounded pool, 503 + Retry-After instead of queues without end, no cut
bodies, clients that leave stop the work, and a database restart costs no client a 503."""

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.conftest import LiveApi, serve
from windpipe.api import create_app
from windpipe.postgres import database_url, libpq_conninfo, stop_embedded
from windpipe.settings import Settings
from windpipe.source.seed import seed_source

DAY = {"start": "2024-03-02", "end": "2024-03-03"}
BIG_START = datetime(2022, 2, 1, tzinfo=UTC)
BIG_DAYS = 2  # 172,800 one-second samples: a JSON body of ~20 MB, far beyond socket buffers
BIG = {"start": "2022-02-01", "end": "2022-02-03"}


def _app(settings: Settings, source_url: URL, **update: object) -> object:
    return create_app(
        settings.model_copy(update=update), source_conninfo=libpq_conninfo(source_url)
    )


@pytest.fixture(scope="module")
def big_range(source_engine: Engine) -> Iterator[None]:
    end = BIG_START + timedelta(days=BIG_DAYS)
    seed_source(source_engine, BIG_START, end, freq="1s", seed=3)
    yield
    with source_engine.begin() as conn:
        conn.execute(
            text('DELETE FROM data WHERE "timestamp" >= :s AND "timestamp" < :e'),
            {"s": BIG_START, "e": end},
        )


def test_fifty_clients_share_a_bounded_pool(
    settings: Settings, source_url: URL, seeded_source: Engine
) -> None:
    app = _app(settings, source_url, api_pool_size=3, api_pool_timeout_seconds=30)
    with serve(app) as api, httpx.Client(base_url=api.url, timeout=60) as client:

        def one(_: int) -> tuple[int, int]:
            response = client.get("/data", params=DAY)
            return response.status_code, len(response.json())

        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(one, range(150)))
        assert answers == [(200, 1440)] * 150
        assert app.state.reader.sessions_opened <= 3 + 1  # the pool, and /health's own


def test_an_exhausted_pool_answers_503_with_retry_after_and_cuts_no_body(
    settings: Settings, source_url: URL, big_range: None
) -> None:
    app = _app(settings, source_url, api_pool_size=1, api_pool_timeout_seconds=0.5)
    with serve(app) as api, httpx.Client(base_url=api.url, timeout=60) as client:
        # A slow reader holds the only connection: it takes the answer's start and then waits.
        with client.stream("GET", "/data", params=BIG) as slow:
            assert slow.status_code == 200
            chunks = slow.iter_bytes()
            body = bytearray(next(chunks))
            began = time.monotonic()
            busy = client.get("/data", params=DAY)
            waited = time.monotonic() - began
            assert busy.status_code == 503
            assert busy.headers["retry-after"] == "1"
            assert "busy" in busy.json()["detail"]
            assert 0.4 < waited < 5
            assert client.get("/health").status_code == 200  # its own connection
            for chunk in chunks:
                body.extend(chunk)
        rows = json.loads(body)  # complete and well-formed: nothing was cut
        assert len(rows) == BIG_DAYS * 86_400
        assert client.get("/data", params=DAY).status_code == 200  # the connection came back


def test_a_client_that_leaves_frees_its_connection_at_once(
    settings: Settings, source_url: URL, big_range: None
) -> None:
    app = _app(settings, source_url, api_pool_size=1, api_pool_timeout_seconds=1.0)
    with serve(app) as api:
        for _ in range(3):
            with (
                httpx.Client(base_url=api.url, timeout=60) as leaving,
                leaving.stream("GET", "/data", params=BIG | {"format": "csv"}) as response,
            ):
                next(response.iter_bytes())
            # The connection closed mid-body; the next request gets the only connection in time.
            with httpx.Client(base_url=api.url, timeout=60) as client:
                assert client.get("/data", params=DAY).status_code == 200


def test_an_empty_range_costs_two_short_queries(
    settings: Settings, source_url: URL, seeded_source: Engine
) -> None:
    app = _app(settings, source_url)
    with serve(app) as api, httpx.Client(base_url=api.url, timeout=60) as client:
        for fmt in ("json", "csv", "arrow"):
            before = app.state.reader.queries_run
            response = client.get(
                "/data", params={"start": "1990-01-01", "end": "1990-12-31", "format": fmt}
            )
            assert response.status_code == 200
            # the table's columns (which period statistics it holds), then one empty page
            assert app.state.reader.queries_run - before == 2
        # Gaps cost nothing either: pages are rows, not spans of time.
        before = app.state.reader.queries_run
        both_ends = client.get("/data", params={"start": "2024-01-01", "end": "2024-12-31"})
        assert len(both_ends.json()) == 5 * 1440 + len(
            client.get("/data", params={"start": "2024-03-10", "end": "2024-03-12"}).json()
        )
        assert app.state.reader.queries_run - before <= 4  # two requests, one page each


def test_coverage_is_exact_on_small_tables(live_api: LiveApi, seeded_source: Engine) -> None:
    body = httpx.get(f"{live_api.url}/coverage").json()
    with seeded_source.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM data")).scalar_one()
    assert body["rows"] == rows and body["rows_exact"] is True


@pytest.mark.slow
def test_a_database_restart_costs_no_client_a_503(
    settings: Settings, source_url: URL, seeded_source: Engine
) -> None:
    app = _app(settings, source_url, api_pool_size=4)
    with serve(app) as api, httpx.Client(base_url=api.url, timeout=60) as client:
        # Fill the pool with connections that the restart will kill.
        with ThreadPoolExecutor(4) as pool:
            assert set(pool.map(lambda _: client.get("/data", params=DAY).status_code, range(8)))
        assert client.get("/health").status_code == 200
        stop_embedded(settings.data_dir)
        database_url(settings, "source")  # starts it again
        seeded_source.dispose()
        statuses = [client.get("/data", params=DAY).status_code for _ in range(6)]
        statuses += [client.get(path).status_code for path in ("/coverage", "/health")]
        with ThreadPoolExecutor(4) as pool:
            statuses += list(
                pool.map(lambda _: client.get("/data", params=DAY).status_code, range(8))
            )
    assert statuses == [200] * len(statuses)


def test_requests_beyond_the_concurrency_limit_are_shed_with_retry_after(
    settings: Settings, source_url: URL, big_range: None
) -> None:
    app = _app(settings, source_url, api_max_concurrency=1)
    with serve(app) as api, httpx.Client(base_url=api.url, timeout=60) as client:
        with client.stream("GET", "/data", params=BIG) as slow:
            next(slow.iter_bytes())
            shed = client.get("/variables")
            assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
            assert client.get("/health").status_code == 200  # never shed
        # The slot frees once the server has seen the client leave (a few ms after the close).
        for _ in range(500):
            after = client.get("/variables")
            if after.status_code != 503:
                break
            time.sleep(0.01)
        assert after.status_code == 200
