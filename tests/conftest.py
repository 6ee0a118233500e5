"""Shared fixtures: one real embedded PostgreSQL per test session, in a temporary directory."""

import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from windpipe.postgres import database_url, make_engine, stop_embedded
from windpipe.settings import Settings, load_settings
from windpipe.source.schema import create_source_schema

# Tests never read a developer's own WINDPIPE_* variables or .env file.
for _name in [n for n in os.environ if n.startswith("WINDPIPE_")]:
    del os.environ[_name]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh windpipe data directory; its embedded PostgreSQL is stopped at the end."""
    path = tmp_path_factory.mktemp("windpipe")
    yield path
    stop_embedded(path)


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
    create_source_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def target_engine(target_url: URL) -> Iterator[Engine]:
    engine = make_engine(target_url)
    yield engine
    engine.dispose()


@pytest.fixture
def empty_source(source_engine: Engine) -> Engine:
    """The source table, emptied for a test that needs to own its contents."""
    with source_engine.begin() as conn:
        conn.execute(text("TRUNCATE data"))
    return source_engine


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def utc(*args: int) -> datetime:
    """A UTC datetime, for brevity in tests."""
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
