"""What the tests and the benchmarks share: ``windpipe api`` as its own process on loopback."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from sqlalchemy.engine import URL


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ApiProcess:
    """``windpipe api`` running as its own process on 127.0.0.1."""

    url: str
    process: "subprocess.Popen[bytes]"

    def kill(self) -> None:
        """Freeze the server at once (nothing more is sent), then kill it."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGSTOP)
            self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop the server the way a user would (SIGTERM), killing it if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_api(
    source_url: URL, *, wait: float = 30.0, env: Mapping[str, str] | None = None
) -> ApiProcess:
    """Start ``windpipe api`` on a free port for ``source_url``; wait until /health says 200."""
    port = free_port()
    environ = {
        **os.environ,
        "WINDPIPE_SOURCE_DB_URL": source_url.render_as_string(hide_password=False),
        # The dashboard's target on the same server: without a URL the API would start an
        # embedded PostgreSQL of its own in the working directory's .windpipe, left running.
        "WINDPIPE_TARGET_DB_URL": source_url.set(database="windpipe_target").render_as_string(
            hide_password=False
        ),
        "WINDPIPE_API_HOST": "127.0.0.1",
        "WINDPIPE_API_PORT": str(port),
        "WINDPIPE_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "windpipe", "api"],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return ApiProcess(url=url, process=proc)
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            proc.wait(timeout=10)
            raise RuntimeError(f"windpipe api did not answer within {wait:.0f} s")
        time.sleep(0.05)


@contextmanager
def api_process(source_url: URL, *, wait: float = 60.0) -> Iterator[str]:
    """``windpipe api`` on a free loopback port for the block; yields its URL."""
    api = start_api(source_url, wait=wait)
    try:
        yield api.url
    finally:
        api.stop()
