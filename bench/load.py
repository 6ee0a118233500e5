"""The API under concurrent load, on 127.0.0.1 only, bounded in count and time.

Starts ``windpipe api`` (as its own process, the settings' defaults) on an embedded PostgreSQL in
a temporary directory, seeds three 1-minute days, and runs side by side in one run:

1. one client, then 50 clients, on one day of JSON (p50/p99, errors, PostgreSQL sessions opened);
2. 200 clients on the three days while a probe asks /health every 50 ms: every answer is 200 or
   503/429 with Retry-After, bodies checked complete, /health p99;
3. a year-long range without data, as JSON;
4. the ceiling of this machine for (1): a bare uvicorn serving the same JSON bytes from memory (no
   database, no encoding), under the same clients, 1 then 50. With N closed-loop clients and no
   think time, Little's law gives mean latency = N / throughput, and throughput <= cores / CPU
   seconds per request, while one client waits about one request's CPU seconds: so the 50-client /
   1-client latency ratio cannot fall below N / cores (25 on 2 cores) for any server.

    uv run python bench/load.py [--seconds 30] [--heavy-seconds 20]
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import Engine, text

from windpipe.postgres import database_url, make_engine, stop_embedded
from windpipe.settings import load_settings
from windpipe.source.seed import seed_source
from windpipe.source.store import ensure_schema
from windpipe.testing import free_port, start_api

START = datetime(2025, 6, 1, tzinfo=UTC)
ONE_DAY = {"start": "2025-06-02", "end": "2025-06-03"}
THREE_DAYS = {"start": "2025-06-01", "end": "2025-06-04"}
EMPTY_YEAR = {"start": "2010-01-01", "end": "2010-12-31"}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def sessions(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT sessions FROM pg_stat_database WHERE datname = 'windpipe_source'")
            ).scalar_one()
        )


async def clients(
    url: str, n: int, seconds: float, params: dict[str, str], expect_rows: int | None
) -> dict[str, object]:
    """``n`` clients in closed loops for ``seconds``; latencies of 200s and a tally of the rest."""
    latencies: list[float] = []
    tally: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:

        async def loop() -> None:
            while time.monotonic() < deadline:
                began = time.monotonic()
                try:
                    response = await http.get("/data", params=params)
                except httpx.HTTPError as exc:
                    key = f"transport error ({type(exc).__name__}: body cut or refused)"
                    tally[key] = tally.get(key, 0) + 1
                    continue
                elapsed = time.monotonic() - began
                if response.status_code == 200:
                    try:
                        rows = len(json.loads(response.content))
                        ok = expect_rows is None or rows == expect_rows
                    except ValueError:
                        ok = False
                    key = "200 complete" if ok else "200 CUT OR WRONG"
                    latencies.append(elapsed)
                elif response.status_code in (429, 503) and "retry-after" in response.headers:
                    key = f"{response.status_code} + Retry-After"
                    await asyncio.sleep(float(response.headers["retry-after"]) / 4)
                else:
                    key = f"{response.status_code} {response.text[:80]}"
                tally[key] = tally.get(key, 0) + 1

        await asyncio.gather(*(loop() for _ in range(n)))
    return {"latencies": latencies, "tally": tally}


PROBE = """
import sys, time, httpx
url, seconds = sys.argv[1], float(sys.argv[2])
times, end = [], time.monotonic() + seconds
with httpx.Client(base_url=url, timeout=10) as http:
    while time.monotonic() < end:
        began = time.monotonic()
        status = http.get("/health").status_code
        times.append(time.monotonic() - began)
        assert status == 200, status
        time.sleep(0.05)
print(" ".join(f"{t:.6f}" for t in times))
"""


async def heavy(url: str, seconds: float) -> tuple[dict[str, object], list[float]]:
    # The probe is a process of its own: in this one it would wait for the 200 clients' turns.
    probe = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PROBE, url, str(seconds), stdout=asyncio.subprocess.PIPE
    )
    result = await clients(url, 200, seconds, THREE_DAYS, 3 * 1440)
    out, _ = await probe.communicate()
    return result, [float(t) for t in out.split()]


def report(label: str, result: dict[str, object]) -> tuple[float, float]:
    lat = result["latencies"]
    assert isinstance(lat, list)
    p50, p99 = pct(lat, 0.5) * 1000, pct(lat, 0.99) * 1000
    print(f"{label}: {len(lat)} ok, p50 {p50:.0f} ms, p99 {p99:.0f} ms, answers {result['tally']}")
    return p50, p99


STATIC_APP = """
from pathlib import Path
BODY = Path(__file__).with_name("body.json").read_bytes()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": BODY})
"""


def ceiling(body: bytes, folder: Path, seconds: float) -> None:
    """(4): the same clients against a server that only sends ``body`` from memory."""
    (folder / "body.json").write_bytes(body)
    (folder / "static_app.py").write_text(STATIC_APP)
    port = free_port()
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "static_app:app", "--port", str(port)),
            *("--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"),
        ],
        cwd=folder,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        _, p99_one = report(
            "ceiling: 1 client, static bytes", asyncio.run(clients(url, 1, 5, {}, 1440))
        )
        fifty = asyncio.run(clients(url, 50, seconds, {}, 1440))
        _, p99_fifty = report("ceiling: 50 clients, static bytes", fifty)
        print(
            f"  p99 ratio 50 clients / 1 client with no server work at all: "
            f"{p99_fifty / p99_one:.1f}x (Little's law floor: 50 / {os.cpu_count()} cores = "
            f"{50 / (os.cpu_count() or 1):.0f}x)"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="50-client phase length")
    parser.add_argument("--heavy-seconds", type=float, default=20.0, help="200-client phase")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="windpipe-bench-load-") as tmp:
        settings = load_settings(data_dir=Path(tmp), _env_file=None)
        url = database_url(settings, "source")
        engine = make_engine(url)
        try:
            ensure_schema(engine)
            seed_source(engine, START, START + timedelta(days=3), seed=1)
            api = start_api(url, env={"WINDPIPE_DATA_DIR": tmp})
            try:
                pool = settings.api_pool_size
                single = asyncio.run(clients(api.url, 1, 5, ONE_DAY, 1440))
                _, p99_one = report("1 client, one day JSON", single)
                before = sessions(engine)
                fifty = asyncio.run(clients(api.url, 50, args.seconds, ONE_DAY, 1440))
                opened = sessions(engine) - before
                _, p99_fifty = report("50 clients, one day JSON", fifty)
                print(
                    f"  p99 ratio 50 clients / 1 client: {p99_fifty / p99_one:.1f}x; "
                    f"PostgreSQL sessions opened: {opened} (pool size {pool})"
                )
                before = sessions(engine)
                result, health = asyncio.run(heavy(api.url, args.heavy_seconds))
                report("200 clients, three days JSON", result)
                print(
                    f"  /health p99 during it: {pct(health, 0.99) * 1000:.0f} ms "
                    f"({len(health)} probes); sessions opened: {sessions(engine) - before}"
                )
                times = []
                with httpx.Client(base_url=api.url) as http:
                    for _ in range(21):
                        began = time.monotonic()
                        assert http.get("/data", params=EMPTY_YEAR).json() == []
                        times.append(time.monotonic() - began)
                median = statistics.median(times) * 1000
                print(f"year-long empty JSON range: median {median:.1f} ms")
                body = httpx.get(f"{api.url}/data", params=ONE_DAY).content
            finally:
                api.stop()
            ceiling(body, Path(tmp), args.seconds)
        finally:
            engine.dispose()
            stop_embedded(Path(tmp))


if __name__ == "__main__":
    main()
