"""What the benchmarks share: ``windpipe api`` as its own process on a free loopback port."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from sqlalchemy.engine import URL


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def api_process(source_url: URL) -> Iterator[str]:
    """``windpipe api`` on a free loopback port, as its own process."""
    port = free_port()
    env = {
        **os.environ,
        "WINDPIPE_SOURCE_DB_URL": source_url.render_as_string(hide_password=False),
        "WINDPIPE_API_HOST": "127.0.0.1",
        "WINDPIPE_API_PORT": str(port),
        "WINDPIPE_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen([sys.executable, "-m", "windpipe", "api"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the API did not start")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
