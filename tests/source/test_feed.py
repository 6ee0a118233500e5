"""The live feed that ``windpipe up`` and ``windpipe seed --follow`` share, on databases of its own
(the session's source stays untouched)."""

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from subprocess import Popen

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from windpipe.postgres import ensure_database, libpq_conninfo, make_engine
from windpipe.source.feed import run_feed, seconds_to_next_minute, start_feed
from windpipe.source.store import ensure_schema as ensure_source_schema


@pytest.fixture
def new_source(source_url: URL) -> Iterator[URL]:
    """The URL of a source database that does not exist yet; dropped afterwards if made."""
    url = source_url.set(database=f"windpipe_source_{uuid.uuid4().hex[:8]}")
    yield url
    with psycopg.connect(
        libpq_conninfo(source_url.set(database="postgres")), autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')


def _create(url: URL) -> None:
    """Create the database of ``url`` with the source schema."""
    assert url.database is not None
    ensure_database(url, url.database)
    engine = make_engine(url)
    ensure_source_schema(engine)
    engine.dispose()


@pytest.fixture
def feed_engine(new_source: URL) -> Iterator[Engine]:
    """An engine on ``new_source`` (not created: tests decide when it exists)."""
    engine = make_engine(new_source)
    yield engine
    engine.dispose()


def _newest(engine: Engine) -> datetime | None:
    with engine.connect() as conn:
        return conn.execute(text('SELECT max("timestamp") FROM data')).scalar_one()


def _eventually(check: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time bound"
        time.sleep(0.05)


def test_the_next_minute_is_within_a_minute() -> None:
    assert 0.5 <= seconds_to_next_minute() <= 60.5


def test_feed_appends_the_current_minute_and_stops_at_once(
    new_source: URL, feed_engine: Engine
) -> None:
    _create(new_source)
    stop = threading.Event()
    errors: list[str] = []
    feed = start_feed(feed_engine, stop, seed=42, on_error=errors.append)
    _eventually(lambda: _newest(feed_engine) is not None)
    newest = _newest(feed_engine)
    assert newest is not None and abs((datetime.now(UTC) - newest).total_seconds()) < 120
    began = time.monotonic()
    stop.set()  # the feed sleeps until the next minute; the event cuts that short
    feed.join(timeout=5)
    assert not feed.is_alive() and time.monotonic() - began < 2
    assert errors == [] and feed.name == "live-feed" and feed.daemon


def test_feed_keeps_going_through_database_errors_and_reports_each_outage_once(
    new_source: URL, feed_engine: Engine
) -> None:
    stop = threading.Event()
    errors: list[str] = []
    added: list[int] = []
    # The database does not exist yet: every round fails until it does.
    feed = threading.Thread(
        target=run_feed,
        args=(feed_engine, stop),
        kwargs={
            "seed": 42,
            "on_append": added.append,
            "on_error": errors.append,
            "pause": lambda: 0.05,
        },
    )
    feed.start()
    try:
        _eventually(lambda: errors)
        time.sleep(0.3)  # several more failing rounds
        assert len(errors) == 1
        assert errors[0].startswith("OperationalError: ") and new_source.database in errors[0]
        _create(new_source)
        _eventually(lambda: added)
        assert added[0] >= 1 and _newest(feed_engine) is not None
        assert len(errors) == 1
    finally:
        stop.set()
        feed.join(timeout=5)
    assert not feed.is_alive()


def test_a_round_counts_what_it_added_and_a_caught_up_feed_adds_nothing(
    new_source: URL, feed_engine: Engine
) -> None:
    _create(new_source)
    with feed_engine.begin() as conn:  # the last sample is 3 minutes old
        conn.execute(
            text(
                'INSERT INTO data (turbine, "timestamp", wind_speed, power, ambient_temperature) '
                "VALUES ('WTG01', :t, 5, 100, 10)"
            ),
            {"t": datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3)},
        )
    added: list[int] = []
    total = run_feed(
        feed_engine, threading.Event(), seed=42, on_append=added.append, max_iterations=1
    )
    assert total in (3, 4) and added == [total]  # 4 if the clock passed a minute meanwhile
    again: list[int] = []
    assert run_feed(
        feed_engine, threading.Event(), seed=42, on_append=again.append, max_iterations=1
    ) in (0, 1)
    assert again in ([], [1])


def _follow(new_source: URL, tmp_path: Path, *, ignoring: str = "") -> tuple[Popen, Path]:
    """``windpipe seed --follow`` on ``new_source``, once it has appended; with ``ignoring``
    (e.g. ``"INT TERM"``) those signals arrive ignored, as a script's background job has them."""
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WINDPIPE_")}
    env["WINDPIPE_SOURCE_DB_URL"] = new_source.render_as_string(hide_password=False)
    env["WINDPIPE_DATA_DIR"] = str(tmp_path / "unused")
    env["PYTHONUNBUFFERED"] = "1"  # as in the image: each line as it is printed
    _create(new_source)
    windpipe = str(Path(sys.executable).with_name("windpipe"))
    argv = [windpipe, "seed", "--start", yesterday.isoformat(), "--days", "1", "--follow"]
    # `trap "" SIG` is how a shell ignores a signal; `exec` keeps it ignored in the program.
    shell = ["sh", "-c", f'trap "" {ignoring}; exec "$@"', "sh"] if ignoring else []
    out = tmp_path / "follow.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen([*shell, *argv], stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        _eventually(lambda: "appended" in out.read_text(), timeout=120)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, out


def _exit_code_after(proc: Popen, sig: int) -> int | None:
    """Send ``sig``; the exit code once the process ends (a generous bound), else None."""
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def test_seed_follow_runs_the_feed_until_ctrl_c(new_source: URL, tmp_path: Path) -> None:
    """``windpipe seed --follow``: the same loop in the foreground; Ctrl-C is exit code 130."""
    proc, out = _follow(new_source, tmp_path)
    assert _exit_code_after(proc, signal.SIGINT) == 130
    lines = out.read_text().splitlines()
    assert lines[-3] == "following: one sample a minute per turbine (Ctrl-C to stop)"
    assert lines[-2].endswith(" sample(s)") and " appended " in lines[-2]
    assert lines[-1] == "interrupted"


@pytest.mark.parametrize(
    ("sig", "code", "last_line"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "stopped (SIGTERM)")],
    ids=["SIGINT", "SIGTERM"],
)
def test_seed_follow_stops_on_signals_its_parent_ignored(
    new_source: URL, tmp_path: Path, sig: int, code: int, last_line: str
) -> None:
    """Launched with SIGINT and SIGTERM ignored (a script's background job, `nohup`-like
    wrappers), the feed still stops on each of them, as `docker stop` and Ctrl-C expect."""
    proc, out = _follow(new_source, tmp_path, ignoring="INT TERM")
    assert _exit_code_after(proc, sig) == code, out.read_text()
    assert out.read_text().splitlines()[-1] == last_line
