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


def _stream(
    url: str, server: psutil.Process, params: dict[str, str]
) -> tuple[int, int, float | None]:
    """Stream one answer: its size, the server's peak RSS meanwhile, the first byte's delay."""
    peak = server.memory_info().rss
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
        with httpx.stream("GET", f"{url}/data", params=params, timeout=120) as r:
            assert r.status_code == 200
            for chunk in r.iter_bytes():
                if first_byte_after is None:
                    first_byte_after = time.monotonic() - began
                size += len(chunk)
    finally:
        done.set()
        sampler.join()
    return size, peak, first_byte_after


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["json", "csv", "arrow"])
def test_large_range_streams_in_bounded_memory(
    api_process: tuple[str, psutil.Process], fmt: str
) -> None:
    """Twice the body does not grow the server further: memory follows the pages in flight,
    not the answer (RSS is measured from one baseline: freed pages are not given back)."""
    url, server = api_process
    params = {"start": START.isoformat(), "end": (START + timedelta(days=DAYS)).isoformat()}
    httpx.get(f"{url}/data", params=params | {"end": "2021-06-01T01:00:00Z", "format": fmt})
    baseline = server.memory_info().rss
    half = params | {"end": (START + timedelta(days=DAYS // 2)).isoformat(), "format": fmt}
    small_size, small_peak, _ = _stream(url, server, half)
    size, peak, first_byte_after = _stream(url, server, params | {"format": fmt})
    small_growth, growth = small_peak - baseline, peak - baseline
    print(
        f"{fmt}: body {small_size / 1e6:.0f} MB -> server grew {small_growth / 1e6:.0f} MB; "
        f"body {size / 1e6:.0f} MB -> {growth / 1e6:.0f} MB"
    )
    # The whole answer is 33-121 MB; held at once it would grow the server by at least that.
    assert size > 20e6 and size > 1.8 * small_size
    assert growth < 0.6 * size, f"server grew {growth / 1e6:.0f} MB for a {size / 1e6:.0f} MB body"
    assert growth <= 1.25 * small_growth + 8e6, (
        f"{fmt}: the server grew {small_growth / 1e6:.0f} MB for a {small_size / 1e6:.0f} MB "
        f"body but {growth / 1e6:.0f} MB for {size / 1e6:.0f} MB: memory follows the body"
    )
    assert first_byte_after is not None and first_byte_after < 5
