"""``windpipe up``: the whole system in the foreground, stopped cleanly by Ctrl-C or SIGTERM.

Order: check the ports, start (or reuse) the embedded PostgreSQL, create the schemas, seed the
source if it is empty (meanwhile ``windpipe dagster init`` creates Dagster's storage), then start
the API, one Dagster code server, the Dagster webserver and the Dagster daemon as child processes
(each in its own process group, output in ``$WINDPIPE_DATA_DIR/logs``) and the live feed as a
thread (``append_minutes``, as ``windpipe seed --follow`` does, without re-seeding). Dagster's
catch-up sensor then loads the past days; ``up`` watches Dagster and says when they are all
materialized. On SIGINT/SIGTERM/SIGHUP each child gets SIGTERM, then what is left of its process
group; survivors are killed after a grace period, every descendant is waited for, and the
embedded PostgreSQL is stopped if ``up`` started it.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from windpipe.cli.app import UserError, app, clean_errors, console, load_settings_or_exit
from windpipe.cli.ports import require_free_port

if TYPE_CHECKING:
    import psutil
    from sqlalchemy import Engine

    from windpipe.settings import Settings

#: Seconds each child group has to exit after SIGTERM before it is killed.
GRACE_SECONDS = 8.0
LIVE_FEED_SEED = 42  # the seed `windpipe seed` uses by default, so the feed continues its data
ASSET_KEY = "aggregates_10min"
_PARTITIONS_QUERY = """
query ($path: [String!]!) {
  assetNodes(assetKeys: [{path: $path}]) {
    partitionStats { numFailed numMaterializing }
    assetPartitionStatuses {
      ... on TimePartitionStatuses { ranges { startKey endKey status } }
    }
  }
}
"""


def check_ports(settings: "Settings") -> None:
    """Fail with one line naming the first port that is taken, before anything starts."""
    if settings.api_port == settings.dagster_port:
        raise UserError(
            f"the API and the Dagster UI are both set to port {settings.api_port}; "
            "give WINDPIPE_API_PORT and WINDPIPE_DAGSTER_PORT different values"
        )
    require_free_port(settings.api_host, settings.api_port, "API", "WINDPIPE_API_PORT")
    require_free_port(
        settings.dagster_host, settings.dagster_port, "Dagster UI", "WINDPIPE_DAGSTER_PORT"
    )


def windpipe_argv() -> list[str]:
    """How to run the ``windpipe`` command with this interpreter."""
    script = Path(sys.executable).with_name("windpipe")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from windpipe.cli import main; main()"]


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Ask Linux to SIGTERM this child if ``up`` itself dies without cleaning up (e.g. SIGKILL)."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    """A child process that ``up`` supervises."""

    name: str
    argv: list[str]
    log_path: Path
    proc: "subprocess.Popen[bytes] | None" = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str]) -> None:
        """Start in a new session (own process group), output appended to the log file."""
        self._log = self.log_path.open("ab")
        self._log.write(f"\n--- {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC windpipe up\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # runs before the live-feed thread starts
        )

    def exit_code(self) -> int | None:
        """The exit code once the process has ended, else None."""
        return None if self.proc is None else self.proc.poll()

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the child's whole process group."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def close_log(self) -> None:
        """Close the parent's handle on the log file."""
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 15) -> str:
        """The last lines of the log, to explain a crash."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])


def _describe(proc: "psutil.Process") -> str:
    import psutil

    try:
        words = proc.cmdline()
    except psutil.Error:
        return str(proc.pid)
    name = " ".join(Path(w).name for w in words[:4] if not w.startswith("-") or w == "-m")
    return f"{proc.pid} ({name[:60]})"


def stop_children(children: list[Child], *, grace: float = GRACE_SECONDS) -> list[str]:
    """Stop every child and its descendants; return those that had to be killed.

    Each child (the daemon first, so it launches nothing more) gets SIGTERM and shuts its own
    helpers down in order; then whatever is left in the child process groups (code servers, a run
    in progress) gets SIGTERM; after ``grace`` seconds in all, survivors are killed.
    """
    import psutil

    deadline = time.monotonic() + grace
    tree = []
    for child in children:
        if child.proc is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                leader = psutil.Process(child.proc.pid)
                tree += [leader, *leader.children(recursive=True)]
    leaders = []
    for child in reversed(children):
        if child.proc is not None and child.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(signal.SIGTERM)
            leaders.append(child.proc)
    for proc in leaders:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, deadline - time.monotonic() - grace / 3))
    for child in children:
        child.signal_group(signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=max(0.1, deadline - time.monotonic()))
    killed = [_describe(p) for p in alive]
    for child in children:
        child.signal_group(signal.SIGKILL)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=3)
    for child in children:
        if child.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=1)
        child.close_log()
    return killed


class LiveFeed(threading.Thread):
    """Appends each new minute's sample to the source, as ``windpipe seed --follow`` does."""

    def __init__(self, engine: "Engine", stop: threading.Event, say: Callable[[str], None]):
        super().__init__(name="live-feed", daemon=True)
        self.engine, self.stop, self.say = engine, stop, say

    def run(self) -> None:
        """Until stopped: append the minutes the clock has passed, then sleep to the next one."""
        from windpipe.source.seed import append_minutes

        failing = False
        while not self.stop.is_set():
            try:
                append_minutes(self.engine, until=datetime.now(UTC), seed=LIVE_FEED_SEED)
                failing = False
            except Exception as exc:  # keep feeding once the database is back
                if not failing:
                    self.say(f"live feed: {type(exc).__name__}: {str(exc).splitlines()[0]}")
                failing = True
            self.stop.wait(60.0 - time.time() % 60.0 + 0.5)


def materialized_days(dagster_url: str, *, timeout: float = 5.0) -> tuple[set[date], int]:
    """Partitions of the aggregates asset that Dagster reports materialized, and failed count."""
    import httpx

    response = httpx.post(
        f"{dagster_url}/graphql",
        json={"query": _PARTITIONS_QUERY, "variables": {"path": [ASSET_KEY]}},
        timeout=timeout,
    )
    response.raise_for_status()
    nodes = response.json().get("data", {}).get("assetNodes") or []
    days: set[date] = set()
    failed = 0
    for node in nodes:
        failed += (node.get("partitionStats") or {}).get("numFailed", 0)
        for span in (node.get("assetPartitionStatuses") or {}).get("ranges", []):
            if span.get("status") != "MATERIALIZED":
                continue
            first, last = date.fromisoformat(span["startKey"]), date.fromisoformat(span["endKey"])
            days.update(first + timedelta(days=i) for i in range((last - first).days + 1))
    return days, failed


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2.0).status_code < 500
    except httpx.HTTPError:
        return False


@dataclass
class Prepared:
    """What ``up`` set up before starting the children."""

    env: dict[str, str]
    first_day: date | None
    started_postgres: bool
    source_engine: "Engine"
    logs: Path


def prepare(settings: "Settings", say: Callable[[str], None]) -> Prepared:
    """Databases, schemas, source data, Dagster instance and the children's environment."""
    from windpipe.orchestration.instance import dagster_environment
    from windpipe.postgres import database_url, embedded_status, make_engine
    from windpipe.source.schema import create_source_schema
    from windpipe.source.seed import default_period, seed_source, source_coverage

    data_dir = settings.data_dir.expanduser().resolve()
    embedded = not (settings.source_db_url and settings.target_db_url)
    was_running = embedded and embedded_status(data_dir).running
    source_url = database_url(settings, "source")
    target_url = database_url(settings, "target")
    started = embedded and not was_running
    if embedded:
        state = "started" if started else "already running, reused"
        say(f"PostgreSQL    embedded in {data_dir / 'postgres'} ({state})")
    else:
        say("PostgreSQL    the configured servers (WINDPIPE_SOURCE_DB_URL/TARGET_DB_URL)")

    logs = data_dir / "logs"
    urls = {
        "WINDPIPE_SOURCE_DB_URL": source_url.render_as_string(hide_password=False),
        "WINDPIPE_TARGET_DB_URL": target_url.render_as_string(hide_password=False),
    }
    # `windpipe db init` creates both schemas in a process of its own, while this one seeds: the
    # target's models would cost `up` ~30 MiB (Polars) for the rest of its life.
    schemas = Child("db-init", [*windpipe_argv(), "db", "init"], logs / "db-init.log")
    schemas.start({**os.environ, **urls})
    source = make_engine(source_url)
    create_source_schema(source)
    coverage = source_coverage(source)
    if coverage.rows == 0:
        begin, end = default_period()
        result = seed_source(source, begin, end, seed=LIVE_FEED_SEED)
        say(
            f"source        was empty: seeded {result.rows_written:,} samples "
            f"({(end - begin).days} days at 1 min) in {result.seconds:.1f} s"
        )
        coverage = result.coverage
    assert coverage.first is not None and coverage.last is not None
    say(
        f"data          {coverage.rows:,} samples from {coverage.first:%Y-%m-%d %H:%M} "
        f"to {coverage.last:%Y-%m-%d %H:%M} UTC; the live feed adds one a minute"
    )
    first_day = coverage.first.astimezone(UTC).date()
    try:
        code = schemas.proc.wait(timeout=120) if schemas.proc else None
    except subprocess.TimeoutExpired:
        code = None
    finally:
        stop_children([schemas], grace=1)
    if code != 0:
        raise UserError(f"could not create the database schemas:\n{schemas.tail()}")

    home = data_dir / "dagster"  # `windpipe dagster init` creates it, in parallel with the above
    env = dagster_environment(
        settings,
        target_url=target_url.render_as_string(hide_password=False),
        home=home,
        first_day=first_day,
    )
    env.update(
        {
            **urls,
            "WINDPIPE_DATA_DIR": str(data_dir),
            "WINDPIPE_API_HOST": settings.api_host,
            "WINDPIPE_API_PORT": str(settings.api_port),
            "WINDPIPE_DAGSTER_HOST": settings.dagster_host,
            "WINDPIPE_DAGSTER_PORT": str(settings.dagster_port),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return Prepared(env, first_day, started, source, logs)


class Stopper:
    """Turns SIGINT/SIGTERM/SIGHUP into an event; a second signal asks to hurry."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.hurry = False
        self.signal_name = ""

    def install(self) -> None:
        """Handle the signals from now on."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            self.hurry = True
        self.signal_name = signal.Signals(signum).name
        self.event.set()


def _wait_child(child: Child, stopper: Stopper) -> int | None:
    """Wait for a short-lived child to end (or for a stop request); its exit code."""
    while not stopper.event.is_set():
        code = child.exit_code()
        if code is not None:
            return code
        time.sleep(0.1)
    return None


def _public(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def run_up(settings: "Settings") -> int:
    """Start everything, supervise until a signal or a crash, stop everything; the exit code."""
    began = time.monotonic()
    stopper = Stopper()
    stopper.install()

    def say(message: str) -> None:
        console.print(message, highlight=False, soft_wrap=True)

    def event(message: str) -> None:
        say(f"[{time.monotonic() - began:6.1f} s] {message}")

    check_ports(settings)
    wp = windpipe_argv()
    data_dir = settings.data_dir.expanduser().resolve()
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    # Dagster's storage is created by one process while PostgreSQL starts and the source fills.
    init = Child("dagster-init", [*wp, "dagster", "init"], data_dir / "logs" / "dagster-init.log")
    init.start({**os.environ, "DAGSTER_HOME": str(data_dir / "dagster")})
    try:
        prepared = prepare(settings, say)
    except BaseException:
        stop_children([init])
        raise
    if not stopper.event.is_set() and _wait_child(init, stopper) != 0:
        stop_children([init])
        _shutdown([], prepared, settings, stopper, say, crashed=True)
        raise UserError(f"could not create the Dagster instance:\n{init.tail()}")
    init.close_log()
    if stopper.event.is_set():
        stop_children([init])
        return _shutdown([], prepared, settings, stopper, say, crashed=False)

    api_url = f"http://{_public(settings.api_host)}:{settings.api_port}"
    dagster_url = f"http://{_public(settings.dagster_host)}:{settings.dagster_port}"
    # One code server for the webserver and the daemon (each would otherwise start its own:
    # ~140 MiB and a few CPU-seconds more). A short socket path: Unix sockets allow ~100 bytes.
    sockets = Path(tempfile.mkdtemp(prefix="windpipe-"))
    code = ["--grpc-socket", str(sockets / "code.sock")]
    logs = prepared.logs
    children = [
        Child("api", [*wp, "api"], logs / "api.log"),
        Child(
            "code-server", [*wp, "dagster", "code-server", "--socket", code[1]], logs / "code.log"
        ),
        Child("dagster-webserver", [*wp, "dagster", "webserver", *code], logs / "webserver.log"),
        Child("dagster-daemon", [*wp, "dagster", "daemon", *code], logs / "daemon.log"),
    ]
    for child in children:
        child.start(prepared.env)
    feed = LiveFeed(prepared.source_engine, stopper.event, event)
    feed.start()
    say(f"API           {api_url}  (docs {api_url}/docs)")
    say(f"Dagster UI    {dagster_url}")
    say(f"logs          {prepared.logs}/{{api,code,webserver,daemon}}.log")
    say("Ctrl-C stops everything.")

    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    past = set()
    if prepared.first_day is not None and prepared.first_day <= yesterday:
        past = {
            prepared.first_day + timedelta(days=i)
            for i in range((yesterday - prepared.first_day).days + 1)
        }
    api_ready = dagster_ready = caught_up = False
    reported_failures = 0
    next_poll = 0.0
    crashed: Child | None = None
    while not stopper.event.wait(0.25):
        crashed = next((c for c in children if c.exit_code() is not None), None)
        if crashed is not None:
            break
        if not api_ready and _answers(f"{api_url}/health"):
            api_ready = True
            event(f"API ready at {api_url}")
        if not dagster_ready and _answers(f"{dagster_url}/server_info"):
            dagster_ready = True
            event(f"Dagster UI ready at {dagster_url}")
        if dagster_ready and not caught_up and time.monotonic() >= next_poll:
            next_poll = time.monotonic() + 1.0
            try:
                done, failed = materialized_days(dagster_url)
            except Exception:  # the UI may be busy starting; ask again
                continue
            if failed > reported_failures:
                reported_failures = failed
                event(f"{failed} partition(s) failed; see {dagster_url}/runs")
            if past <= done:
                caught_up = True
                if past:
                    event(
                        f"catch-up done: all {len(past)} past days materialized "
                        f"({min(past)} to {max(past)}); today refreshes every 10 minutes"
                    )
                else:
                    event("no past days to catch up; today refreshes every 10 minutes")
    try:
        return _shutdown(children, prepared, settings, stopper, say, crashed=crashed is not None)
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


def _shutdown(
    children: list[Child],
    prepared: Prepared,
    settings: "Settings",
    stopper: Stopper,
    say: Callable[[str], None],
    *,
    crashed: bool,
) -> int:
    """Stop the children and the embedded PostgreSQL this ``up`` started; the exit code."""
    stopper.event.set()  # also stops the live feed
    for child in children:
        code = child.exit_code()
        if code is not None and crashed:
            say(f"{child.name} exited with code {code}; the end of {child.log_path}:")
            say(child.tail())
    say(f"stopping ({stopper.signal_name or 'a process exited'}) ...")
    began = time.monotonic()
    killed = stop_children(children, grace=0.5 if stopper.hurry else GRACE_SECONDS)
    if killed:
        say(f"killed what did not stop in time: {', '.join(killed)}")
    stopped_children = time.monotonic() - began
    prepared.source_engine.dispose()
    if prepared.started_postgres:
        from windpipe.postgres import stop_embedded

        try:
            stop_embedded(settings.data_dir.expanduser().resolve())
        except Exception as exc:  # say it, and still report what was stopped
            say(f"could not stop the embedded PostgreSQL: {str(exc).splitlines()[0]}")
    then = ", then PostgreSQL" if prepared.started_postgres else ""
    say(f"stopped in {time.monotonic() - began:.1f} s (processes {stopped_children:.1f} s{then})")
    return 1 if crashed else 0


@app.command("up")
@clean_errors
def up(
    api_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="API port; default WINDPIPE_API_PORT.")
    ] = None,
    dagster_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Dagster UI port; default WINDPIPE_DAGSTER_PORT."),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(
            help="Interface of the API and the UI "
            "(default: WINDPIPE_API_HOST, WINDPIPE_DAGSTER_HOST)."
        ),
    ] = None,
) -> None:
    """Run everything in the foreground: PostgreSQL, source data, live feed, API and Dagster."""
    from windpipe.settings import load_settings

    settings = load_settings_or_exit()
    overrides: dict[str, Any] = {}
    if api_port:
        overrides["api_port"] = api_port
    if dagster_port:
        overrides["dagster_port"] = dagster_port
    if host:
        overrides.update(api_host=host, dagster_host=host)
    if overrides:
        settings = load_settings(**overrides)
    raise typer.Exit(run_up(settings))
