"""A large range is streamed: the server's memory stays flat while the body is far larger."""

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import psutil
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from windpipe.source.seed import seed_source
from windpipe.testing import start_api

START = datetime(2021, 6, 1, tzinfo=UTC)
DAYS = 12  # 1,036,800 one-second samples


@pytest.fixture(scope="module")
def one_second_data(source_engine: Engine) -> Iterator[None]:
    seed_source(source_engine, START, START + timedelta(days=DAYS), freq="1s", seed=21)
    yield
    with source_engine.begin() as conn:
        conn.execute(
            text("""DELETE FROM data WHERE "timestamp" >= :s AND "timestamp" < :e"""),
            {"s": START, "e": START + timedelta(days=DAYS)},
        )


@pytest.fixture(scope="module")
def api_process(source_url: URL, one_second_data: None) -> Iterator[tuple[str, psutil.Process]]:
    """``windpipe api`` as its own process, so its memory can be measured alone."""
    api = start_api(source_url)
    yield api.url, psutil.Process(api.process.pid)
    api.process.terminate()
    api.process.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["json", "csv", "arrow"])
def test_large_range_streams_in_bounded_memory(
    api_process: tuple[str, psutil.Process], fmt: str
) -> None:
    url, server = api_process
    params = {"start": START.isoformat(), "end": (START + timedelta(days=DAYS)).isoformat()}
    httpx.get(f"{url}/data", params=params | {"end": "2021-06-01T01:00:00Z", "format": fmt})
    baseline = server.memory_info().rss
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, server.memory_info().rss)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    size = 0
    first_byte_after = None
    began = time.monotonic()
    try:
        with httpx.stream("GET", f"{url}/data", params=params | {"format": fmt}, timeout=120) as r:
            assert r.status_code == 200
            for chunk in r.iter_bytes():
                if first_byte_after is None:
                    first_byte_after = time.monotonic() - began
                size += len(chunk)
    finally:
        done.set()
        sampler.join()
    growth = peak - baseline
    print(f"{fmt}: body {size / 1e6:.0f} MB, server grew {growth / 1e6:.0f} MB")
    # The whole answer is 33-100 MB; held at once it would grow the server by at least that.
    assert size > 20e6
    assert growth < 0.5 * size, f"server grew {growth / 1e6:.0f} MB for a {size / 1e6:.0f} MB body"
    assert first_byte_after is not None and first_byte_after < 5
