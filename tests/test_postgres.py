from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, text

from windpipe.errors import DatabaseUnavailableError
from windpipe.postgres import (
    check_connection,
    database_url,
    embedded_status,
    libpq_conninfo,
)
from windpipe.settings import Settings, load_settings


def test_embedded_server_serves_both_databases(settings: Settings, source_engine: Engine) -> None:
    status = embedded_status(settings.data_dir)
    assert status.running and status.pid
    assert status.pgdata == (settings.data_dir / "postgres").resolve()
    with source_engine.connect() as conn:
        version = conn.execute(text("SHOW server_version")).scalar_one()
        names = conn.execute(text("SELECT datname FROM pg_database")).scalars().all()
    assert version.startswith("18")
    assert {"windpipe_source", "windpipe_target"} <= set(names)


def test_second_call_reuses_the_running_server(settings: Settings, source_engine: Engine) -> None:
    pid = embedded_status(settings.data_dir).pid
    assert database_url(settings, "target").database == "windpipe_target"
    assert embedded_status(settings.data_dir).pid == pid


def test_configured_urls_never_start_an_embedded_server(tmp_path: Path, settings: Settings) -> None:
    source = database_url(settings, "source")
    configured = load_settings(
        data_dir=tmp_path,
        source_db_url=source.render_as_string(hide_password=False),
        target_db_url="postgresql://someone@127.0.0.1:1/elsewhere",
        _env_file=None,
    )
    assert database_url(configured, "source") == source
    target = database_url(configured, "target")
    assert (target.drivername, target.host, target.port) == ("postgresql+psycopg", "127.0.0.1", 1)
    assert not (tmp_path / "postgres").exists()


def test_refused_connection_is_one_clear_line(settings: Settings) -> None:
    configured = load_settings(target_db_url="postgresql://u@127.0.0.1:1/db", _env_file=None)
    with pytest.raises(DatabaseUnavailableError) as info:
        check_connection(database_url(configured, "target"), label="target")
    assert str(info.value).startswith("target database at postgresql+psycopg://u@127.0.0.1:1/db")
    assert "\n" not in str(info.value)


def test_libpq_conninfo_connects(settings: Settings) -> None:
    with psycopg.connect(libpq_conninfo(database_url(settings, "source"))) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("windpipe_source",)


def test_a_server_a_test_leaves_running_is_stopped_at_the_end_of_the_suite() -> None:
    """What the suite does with the default data directory's server (tests/conftest.py)."""
    from tests.conftest import fresh_data_dir, stop_left_running

    with fresh_data_dir(prefix="windpipe-left-") as path:
        settings = load_settings(data_dir=path, _env_file=None)
        database_url(settings, "source")  # starts it, as a command without WINDPIPE_DATA_DIR would
        assert embedded_status(path).running
        assert stop_left_running(path, running_before=True) is False  # someone else's: kept
        assert embedded_status(path).running
        assert stop_left_running(path, running_before=False) is True
        assert not embedded_status(path).running
