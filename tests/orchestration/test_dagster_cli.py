"""`windpipe dagster webserver` and `windpipe dagster daemon`, as the containers run them: separate
processes, a DAGSTER_HOME prepared beforehand with Dagster's storage in PostgreSQL."""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from sqlalchemy.engine import URL

from tests.conftest import LiveApi
from windpipe.orchestration.instance import FIRST_DAY_FILE
from windpipe.orchestration.status import materialized_days
from windpipe.postgres import ensure_database, libpq_conninfo
from windpipe.testing import free_port

WINDPIPE = str(Path(sys.executable).with_name("windpipe"))


@pytest.fixture
def dagster_db(target_url: URL) -> Iterator[URL]:
    """An empty database for Dagster's own storage (dagster-postgres), dropped afterwards."""
    name = f"windpipe_dagster_{uuid.uuid4().hex[:8]}"
    ensure_database(target_url, name)
    yield target_url.set(database=name)
    with psycopg.connect(libpq_conninfo(target_url.set(database="postgres")), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
def test_webserver_and_daemon_catch_up_with_postgres_storage(
    tmp_path: Path, live_api: LiveApi, empty_target: URL, dagster_db: URL
) -> None:
    home = tmp_path / "dagster-home"
    home.mkdir()
    # As docker/dagster/dagster.yaml does, but on the embedded server's socket. SQLAlchemy 2.1 maps
    # a bare postgresql:// to psycopg 3, under which dagster-postgres's NOTIFY fails and no run
    # ever launches: the scheme must name psycopg2.
    config = (
        "# prepared by the deployment, not by windpipe\n"
        "storage:\n"
        "  postgres:\n"
        "    postgres_db:\n"
        "      scheme: postgresql+psycopg2\n"
        "      username: postgres\n"
        "      hostname: ''\n"
        f"      db_name: {dagster_db.database}\n"
        f"      params: {{host: '{dagster_db.query['host']}'}}\n"
        "run_queue:\n"
        "  dequeue_interval_seconds: 1\n"
        "telemetry:\n"
        "  enabled: false\n"
    )
    (home / "dagster.yaml").write_text(config)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WINDPIPE_", "DAGSTER_"))}
    env.update(
        DAGSTER_HOME=str(home),
        WINDPIPE_DATA_DIR=str(tmp_path / "unused"),
        WINDPIPE_API_URL=live_api.url,
        WINDPIPE_TARGET_DB_URL=empty_target.render_as_string(hide_password=False),
        WINDPIPE_DAGSTER_PORT=str(port),
    )
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in ("webserver", "daemon")}
    procs = {
        name: subprocess.Popen(
            [WINDPIPE, "dagster", name],
            env=env,
            stdout=logs[name],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for name in ("webserver", "daemon")
    }

    def output() -> str:
        return "\n".join(
            f"--- {n}\n" + (tmp_path / f"{n}.log").read_text(errors="replace")[-3000:]
            for n in procs
        )

    url = f"http://127.0.0.1:{port}"
    # The days that hold data: 03-01 .. 03-05 and 03-10 .. 03-11 (03-06 .. 03-09 hold none).
    expected = {date(2024, 3, 1) + timedelta(days=i) for i in (0, 1, 2, 3, 4, 9, 10)}
    try:
        deadline = time.monotonic() + 180
        done: set[date] = set()
        while not expected <= done:
            assert time.monotonic() < deadline, output()
            assert all(p.poll() is None for p in procs.values()), output()
            try:
                done, failed = materialized_days(url)
                assert failed == 0, output()
            except httpx.HTTPError:
                pass
            time.sleep(1)
        # The partitions start at the API's first day of data, and nothing before it exists: the
        # code location asked the API and remembered the answer in the Dagster home.
        assert min(done) == date(2024, 3, 1)
        assert (home / FIRST_DAY_FILE).read_text() == "2024-03-01\n"
        assert (home / "dagster.yaml").read_text() == config  # the deployment's file is kept
        for name, proc in procs.items():
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
            assert "dagster" in " ".join(tree[0].cmdline())  # exec'd: signals reach Dagster itself
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            _, alive = psutil.wait_procs(tree, timeout=15)
            assert alive == [], (name, [p.cmdline() for p in alive])
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for log in logs.values():
            log.close()


def test_dagster_commands_hand_dagster_the_default_stop_signals(tmp_path: Path) -> None:
    """`windpipe dagster ...` replaces itself with Dagster: a SIGINT or SIGTERM its parent ignored
    (a script's background job) must not stay ignored in Dagster, which then could not stop."""
    probe = (
        "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler, "
        "signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)"
    )
    launcher = (
        "import os, signal, sys\n"
        "from windpipe.cli.dagster import _exec\n"
        "for sig in (signal.SIGINT, signal.SIGTERM):\n"
        "    signal.signal(sig, signal.SIG_IGN)\n"
        f"_exec([sys.executable, '-c', {probe!r}], dict(os.environ))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", launcher], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stdout.strip()) == (0, "True True"), result.stderr
