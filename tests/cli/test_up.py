"""End to end: ``windpipe up`` on a fresh data directory and free ports, then a clean stop."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import text

from tests.conftest import fresh_data_dir
from windpipe.orchestration.status import materialized_days
from windpipe.postgres import (
    API_APPLICATION_NAME,
    database_url,
    embedded_status,
    make_engine,
    stop_embedded,
)
from windpipe.settings import load_settings
from windpipe.testing import free_port

WINDPIPE = [str(Path(sys.executable).with_name("windpipe"))]
BOUND = 180.0  # seconds any stage may take before the test gives up


class Up:
    """A ``windpipe up`` process whose output goes to a file the test reads."""

    def __init__(self, data_dir: Path, api_port: int, dagster_port: int, out: Path) -> None:
        self.out = out
        self.data_dir = data_dir
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WINDPIPE_", "DAGSTER_"))}
        env.update(
            WINDPIPE_DATA_DIR=str(data_dir),
            WINDPIPE_API_PORT=str(api_port),
            WINDPIPE_DAGSTER_PORT=str(dagster_port),
        )
        self.api = f"http://127.0.0.1:{api_port}"
        self.dagster = f"http://127.0.0.1:{dagster_port}"
        self.started = time.monotonic()
        with out.open("wb") as sink:
            self.proc = subprocess.Popen(
                [*WINDPIPE, "up"],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=data_dir.parent,
            )

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def logs(self, lines: int = 40) -> str:
        """The last lines of each child's log, for a failure's message."""
        parts = []
        for log in sorted((self.data_dir / "logs").glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {log.name} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(parts)

    def wait_for(self, what: str, check, timeout: float = BOUND):  # type: ignore[no-untyped-def]
        """Poll ``check()`` until it returns something truthy; fail with the output otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"windpipe up exited ({self.proc.returncode}) before {what}:\n{self.output()}"
                )
            try:
                result = check()
            except (httpx.HTTPError, OSError):
                result = None
            if result:
                return result
            time.sleep(0.5)
        pytest.fail(f"no {what} within {timeout:.0f} s:\n{self.output()}\n{self.logs()}")

    def tree(self) -> list[psutil.Process]:
        return [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(True)]

    def stop(self, sig: int) -> tuple[float, list[psutil.Process]]:
        """Send ``sig`` to ``up`` alone; its exit time and the processes of its tree left alive."""
        tree = self.tree()
        began = time.monotonic()
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)
        elapsed = time.monotonic() - began
        _, alive = psutil.wait_procs(tree, timeout=2)
        return elapsed, alive

    def kill(self) -> None:
        if self.proc.poll() is None:
            procs = self.tree()
            for p in procs:
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.kill()
            psutil.wait_procs(procs, timeout=5)


@pytest.fixture
def up_data_dir() -> Iterator[Path]:
    """A fresh data directory, one level down so a test can see that nothing created it."""
    with fresh_data_dir(prefix="windpipe-up-") as parent:
        yield parent / "data"
        stop_embedded(parent / "data")


def run_windpipe(data_dir: Path, *args: str, timeout: float) -> None:
    """Run a ``windpipe`` command beside a running ``up`` on ``data_dir`` (its databases, its
    configuration), as a user would from the project's folder; it must succeed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WINDPIPE_", "DAGSTER_"))}
    env["WINDPIPE_DATA_DIR"] = str(data_dir)
    done = subprocess.run(
        [*WINDPIPE, *args],
        env=env,
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _cmdline(proc: psutil.Process) -> str:
    """A process's command line; empty for one that just ended (a zombie not yet reaped)."""
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def _two_ports() -> tuple[int, int]:
    api = free_port()
    dagster = free_port()
    while dagster == api:
        dagster = free_port()
    return api, dagster


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _past_days(api: str) -> set[date]:
    first = datetime.fromisoformat(httpx.get(f"{api}/coverage", timeout=5).json()["first"])
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    start = first.astimezone(UTC).date()
    return {start + timedelta(days=i) for i in range((yesterday - start).days + 1)}


def _api_sessions(up: Up) -> set[tuple[str, str]]:
    """(user, database) of the API's sessions once it holds some on both databases, else empty."""
    settings = load_settings(data_dir=up.data_dir, _env_file=None)
    engine = make_engine(database_url(settings, "source", start=False))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT usename, datname FROM pg_stat_activity WHERE application_name = :a"),
                {"a": API_APPLICATION_NAME},
            ).all()
    finally:
        engine.dispose()
    sessions = {(str(user), str(database)) for user, database in rows}
    both = {database for _, database in sessions} >= {"windpipe_source", "windpipe_target"}
    return sessions if both else set()


@pytest.mark.slow
def test_up_brings_everything_up_catches_up_and_stops_cleanly(
    up_data_dir: Path, tmp_path: Path
) -> None:
    api_port, dagster_port = _two_ports()
    up = Up(up_data_dir, api_port, dagster_port, tmp_path / "up-1.out")
    try:
        up.wait_for("API", lambda: httpx.get(f"{up.api}/health", timeout=2).status_code == 200)
        past = _past_days(up.api)
        assert len(past) == 10  # the default period: 10 past days, plus today

        def caught_up() -> bool:
            done, failed = materialized_days(up.dagster)
            assert failed == 0, up.output()
            return past <= done

        up.wait_for("catch-up of the past days in Dagster", caught_up)
        seconds = time.monotonic() - up.started
        print(f"fresh `windpipe up` -> {len(past)} past days materialized in {seconds:.1f} s")
        up.wait_for("the catch-up line", lambda: "catch-up done" in up.output(), timeout=10)

        # The target holds each past day's 144 windows x 8 signals.
        settings = load_settings(data_dir=up_data_dir, _env_file=None)
        engine = make_engine(database_url(settings, "target", start=False))
        with engine.connect() as conn:
            per_day = dict(
                conn.execute(text('SELECT "timestamp"::date, count(*) FROM data GROUP BY 1')).all()
            )
        engine.dispose()
        assert {d: per_day.get(d) for d in past} == {d: 144 * 8 for d in past}

        # An events import reaches the figures: the source logs the write, the event_changes
        # sensor reports the day's events updated, Dagster's automation computes that day's
        # figures again. A forced outage over the whole day leaves no operative time.
        day = min(past)

        def availability() -> tuple[float | None] | None:
            engine = make_engine(database_url(settings, "target", start=False))
            try:
                with engine.connect() as conn:
                    row = conn.execute(
                        text(
                            "SELECT availability_time FROM turbine_day_kpi "
                            "WHERE turbine = 'WTG01' AND day = :day"
                        ),
                        {"day": day},
                    ).first()
            finally:
                engine.dispose()
            return None if row is None else (row[0],)

        (before,) = up.wait_for("the day's figures, computed after its catch-up", availability)
        events = tmp_path / "outage.csv"
        events.write_text(
            "turbine,start,end,code,message\n"
            f"WTG01,{day}T00:00:00Z,{day + timedelta(days=1)}T00:00:00Z,101,whole-day outage\n"
        )
        run_windpipe(up_data_dir, "events", "import", str(events), timeout=120)
        # Up to two sensor ticks (events, automation), the end of a figures run in progress,
        # another automation tick and a run: minutes on a loaded machine.
        up.wait_for(
            "the day's figures computed again with the outage",
            lambda: availability() == (0.0,),
            timeout=2 * BOUND,
        )
        assert before != (0.0,)

        # The API reads the source and the target as the read-only role, never as the superuser.
        window = {"start": min(past).isoformat(), "end": max(past).isoformat()}
        aggregates = httpx.get(f"{up.api}/aggregates", params=window, timeout=30)
        assert aggregates.status_code == 200  # the dashboard's route: it reads the target
        sessions = up.wait_for("the API's sessions on both databases", lambda: _api_sessions(up))
        assert {user for user, _ in sessions} == {"windpipe_reader"}, sessions
        db_init = (up_data_dir / "logs" / "db-init.log").read_text()
        assert "API read-only role windpipe_reader" in db_init and "not managed" not in db_init

        names = " ".join(_cmdline(p) for p in up.tree()[1:])
        for part in ("windpipe api", "dagster api grpc", "dagster-webserver", "dagster-daemon"):
            assert part in names
        elapsed, alive = up.stop(signal.SIGINT)
        assert up.proc.returncode == 0, up.output()
        assert alive == [], [p.cmdline() for p in alive]
        assert elapsed < 20, up.output()
        assert _port_free(api_port) and _port_free(dagster_port)
        assert not embedded_status(up_data_dir).running  # `up` started it, so `up` stopped it
        assert "stopped in" in up.output()
    finally:
        up.kill()

    # A second `up` reuses everything: no seeding, the past days are already materialized.
    # SIGTERM, as a process manager sends it.
    second = Up(up_data_dir, api_port, dagster_port, tmp_path / "up-2.out")
    try:
        second.wait_for("catch-up line", lambda: "catch-up done" in second.output())
        assert "was empty" not in second.output()
        elapsed, alive = second.stop(signal.SIGTERM)
        assert second.proc.returncode == 0, second.output()
        assert alive == []
        assert elapsed < 20, second.output()
    finally:
        second.kill()

    # A child that dies takes the others down with it, and `up` says which one and why.
    third = Up(up_data_dir, api_port, dagster_port, tmp_path / "up-3.out")
    try:
        third.wait_for("API", lambda: httpx.get(f"{third.api}/health", timeout=2).is_success)
        tree = third.tree()
        (api,) = [p for p in tree[1:] if "windpipe api" in _cmdline(p)]
        api.kill()
        third.proc.wait(timeout=60)
        assert third.proc.returncode == 1
        assert "api exited with code -9" in third.output()
        _, alive = psutil.wait_procs(tree, timeout=5)
        assert alive == []
        assert not embedded_status(up_data_dir).running
    finally:
        third.kill()


def test_an_address_that_cannot_be_bound_is_reported_as_such() -> None:
    from windpipe.cli.app import UserError
    from windpipe.cli.ports import port_in_use

    assert port_in_use("127.0.0.1", free_port()) is False
    with pytest.raises(UserError, match=r"cannot listen on 192\.0\.2\.1:8000: "):
        port_in_use("192.0.2.1", 8000)  # TEST-NET-1: no interface of this machine has it


def test_up_refuses_a_busy_port_before_starting_anything(up_data_dir: Path, tmp_path: Path) -> None:
    api_port, dagster_port = _two_ports()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", dagster_port))
        busy.listen()
        up = Up(up_data_dir, api_port, dagster_port, tmp_path / "up.out")
        up.proc.wait(timeout=60)
    assert up.proc.returncode == 1
    lines = up.output().strip().splitlines()
    assert lines == [
        f"error: port {dagster_port} on 127.0.0.1 (Dagster UI) is already in use; stop what "
        "listens there or choose another port with WINDPIPE_DAGSTER_PORT"
    ]
    assert not up_data_dir.exists()  # nothing was started or created


def test_ports_given_on_the_command_line_are_checked_too(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WINDPIPE_", "DAGSTER_"))}
    env["WINDPIPE_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [*WINDPIPE, "up", "--api-port", str(port), "--dagster-port", str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"the API and the Dagster UI are both set to port {port}" in result.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
def test_up_never_writes_synthetic_rows_into_a_turbine_holding_imported_data(
    up_data_dir: Path, tmp_path: Path
) -> None:
    """Real history imported, then `up` with the turbine configured (even marked synthetic by
    mistake): `up`'s seeding and its live feed leave it untouched, and `up` says so."""
    today = datetime.now(UTC).date()
    real_days = [today - timedelta(days=3), today - timedelta(days=2)]
    (up_data_dir.parent / "windpipe.toml").write_text(
        '[[turbines]]\nid = "WTG01"\nsynthetic = true\n'
        '[[turbines]]\nid = "R80711"\nsynthetic = true\n'
    )
    export = tmp_path / "r80711.csv"
    export.write_text(
        "timestamp,wind_speed,power\n"
        + "".join(
            f"{day}T{minute // 60:02d}:{minute % 60:02d}:00Z,7.5,{900 + minute % 7}.0\n"
            for day in real_days
            for minute in range(0, 1440, 10)
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WINDPIPE_", "DAGSTER_"))}
    env["WINDPIPE_DATA_DIR"] = str(up_data_dir)
    imported = subprocess.run(
        [*WINDPIPE, "import", str(export), "--turbine", "R80711"],
        env=env,
        cwd=up_data_dir.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert imported.returncode == 0, imported.stderr

    settings = load_settings(data_dir=up_data_dir, _env_file=None)
    source = make_engine(database_url(settings, "source", start=False))

    def real_rows() -> list[tuple[object, ...]]:
        with source.connect() as conn:
            return list(
                conn.execute(text("SELECT * FROM data WHERE turbine = 'R80711' ORDER BY 1"))
            )

    before = real_rows()
    assert len(before) == 2 * 144
    api_port, dagster_port = _two_ports()
    up = Up(up_data_dir, api_port, dagster_port, tmp_path / "up.out")
    try:
        up.wait_for("the catch-up line", lambda: "catch-up done" in up.output())
        assert "not generated: R80711 holds imported data" in up.output()
        # Only days with data are counted: WTG01's ten seeded days and R80711's two.
        assert "catch-up done: all 12 past (turbine, day)s with data materialized (2 turbines" in (
            up.output()
        )
        started = datetime.now(UTC)

        def fed() -> bool:  # a round of the live feed after the catch-up
            with source.connect() as conn:
                newest = conn.execute(
                    text("SELECT max(\"timestamp\") FROM data WHERE turbine = 'WTG01'")
                ).scalar_one()
            return newest > started.replace(second=0, microsecond=0)

        up.wait_for("a round of the live feed", fed, timeout=150)
        assert real_rows() == before
        up.stop(signal.SIGINT)
    finally:
        up.kill()
        source.dispose()


@pytest.mark.slow
def test_a_year_of_history_imported_into_a_running_farm_is_caught_up_without_failures(
    up_data_dir: Path, tmp_path: Path
) -> None:
    """A demo turbine runs under `up`; a year of two real turbines is imported meanwhile. The days
    Dagster's partitions cover load at once, `up` says the rest needs a restart, and after it
    every (turbine, day) with data is materialized in bounded runs, none marked failed, the
    demo turbine's good days included."""
    import polars as pl

    from windpipe.orchestration.status import materialized_by_turbine

    today = datetime.now(UTC).date()
    history = [today - timedelta(days=n) for n in range(365, 0, -1)]  # a year, up to yesterday
    real = ["R80711", "R80721"]
    (up_data_dir.parent / "windpipe.toml").write_text(
        '[[turbines]]\nid = "WTG01"\nsynthetic = true\n'
        + "".join(f'[[turbines]]\nid = "{t}"\n' for t in real)
    )
    turbines = ["WTG01", *real]
    export = tmp_path / "history.parquet"
    stamps = pl.datetime_range(
        datetime.combine(history[0], datetime.min.time(), UTC),
        datetime.combine(today, datetime.min.time(), UTC),
        interval="10m",
        closed="left",
        eager=True,
    )
    pl.concat(
        pl.DataFrame(
            {
                "turbine": t,
                "timestamp": stamps,
                "wind_speed": 7.0 + (stamps.dt.hour() % 5).cast(pl.Float64),
                "power": 900.0 + (stamps.dt.minute() % 7).cast(pl.Float64),
            }
        )
        for t in real
    ).write_parquet(export)

    def watch_failures(up: Up) -> dict[str, set[date]]:
        done, failed = materialized_by_turbine(up.dagster, turbines=turbines)
        assert failed == 0, up.output()
        return done

    api_port, dagster_port = _two_ports()
    up = Up(up_data_dir, api_port, dagster_port, tmp_path / "up-1.out")
    try:
        up.wait_for("the demo turbine's catch-up", lambda: "catch-up done" in up.output())
        seeded = watch_failures(up)["WTG01"] - {today}  # the past days (today is refreshed)
        assert len(seeded) == 10
        run_windpipe(up_data_dir, "import", str(export), timeout=300)
        # The days within Dagster's partitions load while `up` runs; the rest waits for a restart,
        # and `up` says so.
        up.wait_for(
            "the imported days within the partitions",
            lambda: all(seeded <= watch_failures(up)[t] for t in real),
        )
        up.wait_for("the restart hint", lambda: f"data from {history[0]}" in up.output())
        up.stop(signal.SIGINT)
    finally:
        up.kill()

    second = Up(up_data_dir, api_port, dagster_port, tmp_path / "up-2.out")
    try:
        expected = {"WTG01": seeded, **{t: set(history) for t in real}}
        done = second.wait_for(
            "every (turbine, day) with data materialized",
            lambda: (lambda d: d if all(expected[t] <= d[t] for t in turbines) else None)(
                watch_failures(second)
            ),
            timeout=600,
        )
        assert done["WTG01"] - {today} == seeded  # nothing invented for days without data
        second.wait_for("the catch-up line", lambda: "catch-up done" in second.output())
        assert f"all {10 + 2 * 365:,} past (turbine, day)s with data materialized" in (
            second.output()
        )
        settings = load_settings(data_dir=up_data_dir, _env_file=None)
        engine = make_engine(database_url(settings, "target", start=False))
        with engine.connect() as conn:
            loads = dict(
                conn.execute(
                    text("SELECT turbine, count(*) FROM day_load WHERE samples > 0 GROUP BY 1")
                ).all()
            )
        engine.dispose()
        assert loads["R80711"] == loads["R80721"] == 365
        second.stop(signal.SIGINT)
    finally:
        second.kill()
