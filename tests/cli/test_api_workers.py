"""``windpipe api`` with WINDPIPE_API_WORKERS > 1: several uvicorn worker processes, one port."""

import socket
from collections.abc import Iterator

import psutil
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from windpipe.errors import ConfigError
from windpipe.settings import load_settings
from windpipe.testing import ApiProcess, start_api


@pytest.mark.parametrize("value", ["0", "33", "-1"])
def test_workers_outside_the_range_are_refused_by_name(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WINDPIPE_API_WORKERS", value)
    with pytest.raises(ConfigError, match=rf"WINDPIPE_API_WORKERS: {value} .*outside 1\.\.32"):
        load_settings(_env_file=None)


def test_one_worker_is_the_default() -> None:
    assert load_settings(_env_file=None).api_workers == 1


@pytest.fixture
def two_worker_api(source_url: URL, source_engine: Engine) -> Iterator[ApiProcess]:
    api = start_api(source_url, env={"WINDPIPE_API_WORKERS": "2"})
    try:
        yield api
    finally:
        api.stop()


def worker_processes(api: ApiProcess) -> list[psutil.Process]:
    """uvicorn's workers: the children multiprocessing spawned (not its resource tracker)."""
    children = psutil.Process(api.process.pid).children()
    return [c for c in children if "spawn_main" in " ".join(c.cmdline())]


def serving_process(workers: list[psutil.Process], client: socket.socket) -> int | None:
    """The pid of the worker holding the server end of ``client``'s TCP connection."""
    port = client.getsockname()[1]
    for worker in workers:
        for conn in worker.net_connections("tcp"):
            if conn.raddr and conn.raddr.port == port:
                return worker.pid
    return None


@pytest.mark.slow
def test_two_workers_each_answer_from_the_database(two_worker_api: ApiProcess) -> None:
    """Two worker processes share the port; connections land on both, and both read the source."""
    workers = worker_processes(two_worker_api)
    assert len(workers) == 2, [w.cmdline() for w in workers]
    host, port = "127.0.0.1", int(two_worker_api.url.rsplit(":", 1)[1])
    answered: set[int] = set()
    clients: list[socket.socket] = []
    try:
        # The kernel hands each new connection to whichever worker accepts first: open them one
        # by one (each kept alive, so its owner can be looked up) until both workers have answered.
        for _ in range(200):
            client = socket.create_connection((host, port), timeout=10)
            clients.append(client)
            client.sendall(b"GET /coverage HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head = client.recv(65536)
            assert head.startswith(b"HTTP/1.1 200 "), head[:200]
            pid = serving_process(workers, client)
            assert pid is not None, "no worker holds the connection"
            answered.add(pid)
            if len(answered) == 2:
                break
    finally:
        for client in clients:
            client.close()
    assert answered == {w.pid for w in workers}
