"""``windpipe up``: the whole system in the foreground, stopped cleanly by Ctrl-C or SIGTERM.

Order: check the ports, start (or reuse) the embedded PostgreSQL, create the schemas, seed the
source if it is empty (meanwhile ``windpipe dagster init`` creates Dagster's storage), then start
the API, one Dagster code server, the Dagster webserver and the Dagster daemon as child processes
(``cli/supervisor.py``: each in its own process group, output in ``$WINDPIPE_DATA_DIR/logs``) and
the live feed as a thread (``source/feed.py``, the loop of ``windpipe seed --follow``). Dagster's
catch-up sensor then loads each turbine's past days with data; ``up`` watches Dagster
(``orchestration/status.py``) and the API, and says how far the catch-up is and when it is done.
On SIGINT/SIGTERM/SIGHUP the children are stopped, then the embedded PostgreSQL if ``up`` started
it.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from windpipe.cli.app import UserError, app, clean_errors, console, load_settings_or_exit
from windpipe.cli.ports import require_free_port
from windpipe.cli.supervisor import GRACE_SECONDS, Child, Stopper, stop_children

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Engine

    from windpipe.catalog import Turbine
    from windpipe.settings import Settings

LIVE_FEED_SEED = 42  # the seed `windpipe seed` uses by default, so the feed continues its data


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


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2.0).status_code < 500
    except httpx.HTTPError:
        return False


def _public(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


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
    from windpipe.postgres import make_engine

    data_dir = settings.data_dir.expanduser().resolve()
    urls, started = start_databases(settings, data_dir, say)
    # `windpipe db init` creates both schemas in a process of its own, while this one seeds: the
    # target's models would cost `up` ~30 MiB (Polars) for the rest of its life.
    logs = data_dir / "logs"
    schemas = Child("db-init", [*windpipe_argv(), "db", "init"], logs / "db-init.log")
    # Without the URLs `up` resolved: `db init` then sees the configuration as the user wrote it
    # (the running embedded server, found through the data directory) and manages the API's
    # read-only role wherever a standalone `windpipe db init` would.
    schemas.start({**os.environ, "WINDPIPE_DATA_DIR": str(data_dir)})
    source = make_engine(urls["WINDPIPE_SOURCE_DB_URL"])
    first_day = seed_if_empty(source, settings, say)
    try:
        code = schemas.proc.wait(timeout=120) if schemas.proc else None
    except subprocess.TimeoutExpired:
        code = None
    finally:
        stop_children([schemas], grace=1)
    if code != 0:
        raise UserError(f"could not create the database schemas:\n{schemas.tail()}")
    env = children_environment(settings, data_dir, urls, first_day)
    return Prepared(env, first_day, started, source, logs)


def start_databases(
    settings: "Settings", data_dir: Path, say: Callable[[str], None]
) -> tuple[dict[str, str], bool]:
    """The database URLs as the children's variables, and whether ``up`` started PostgreSQL."""
    from windpipe.postgres import database_url, embedded_status

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
    urls = {
        "WINDPIPE_SOURCE_DB_URL": source_url.render_as_string(hide_password=False),
        "WINDPIPE_TARGET_DB_URL": target_url.render_as_string(hide_password=False),
        **api_reader_urls(settings),
    }
    return urls, started


def api_reader_urls(settings: "Settings") -> dict[str, str]:
    """``WINDPIPE_API_SOURCE_DB_URL``/``_TARGET_DB_URL`` as the read-only role, where it applies.

    The children get the database URLs ``up`` resolved, so on their own they would take the
    embedded server for a configured one and read as its superuser: the API's URLs are settled
    here, from the configuration as the user wrote it (what a standalone ``windpipe api`` uses).
    """
    from windpipe.postgres import (
        api_database_url,
        api_target_database_url,
        reader_role_applies,
        target_reader_role_applies,
    )

    urls = {}
    if settings.api_source_db_url or reader_role_applies(settings):
        url = api_database_url(settings)
        urls["WINDPIPE_API_SOURCE_DB_URL"] = url.render_as_string(hide_password=False)
    if settings.api_target_db_url or target_reader_role_applies(settings):
        url = api_target_database_url(settings)
        urls["WINDPIPE_API_TARGET_DB_URL"] = url.render_as_string(hide_password=False)
    return urls


def seed_if_empty(
    source: "Engine", settings: "Settings", say: Callable[[str], None]
) -> date | None:
    """Seed the default period of the synthetic turbines that hold no samples yet (all of them in
    an empty source, or one just added to the demo farm); the first day of data (None: none)."""
    from windpipe.source import store
    from windpipe.source.seed import (
        default_period,
        describe_left_alone,
        fleet_specs,
        seed_source,
        synthetic_fleet_of,
    )

    store.ensure_schema(source)
    held = store.turbine_ids(source)
    fleet = settings.fleet_of(held)
    chosen = synthetic_fleet_of(source, fleet, declared=settings.turbines_declared)
    new = [t for t in chosen.turbines if t.id not in held]
    if new:
        begin, end = default_period()
        result = seed_source(
            source,
            begin,
            end,
            turbines=fleet_specs(new),
            seed=LIVE_FEED_SEED,
            columns=[v.column for v in settings.variables.values()],
        )
        what = "was empty" if not held else f"new synthetic turbine(s) {', '.join(held_ids(new))}"
        say(
            f"source        {what}: seeded {result.rows_written:,} samples of "
            f"{len(new)} turbine(s) ({(end - begin).days} days at 1 min) "
            f"in {result.seconds:.1f} s"
        )
    if chosen.left_alone:
        say(f"synthetic     not generated: {describe_left_alone(chosen.left_alone)}")
    coverage = store.coverage(source)
    if coverage.first is None or coverage.last is None:
        say(
            "data          none: the source is empty and no turbine is synthetic; import your "
            "data (windpipe import) or mark demo turbines synthetic = true in windpipe.toml"
        )
        return None
    feed = (
        f"the live feed adds one a minute to {len(chosen.turbines)} synthetic turbine(s)"
        if chosen.turbines
        else "no live feed (no synthetic turbine)"
    )
    say(
        f"data          {coverage.rows:,} samples of {len(fleet)} turbine(s) from "
        f"{coverage.first:%Y-%m-%d %H:%M} to {coverage.last:%Y-%m-%d %H:%M} UTC; {feed}"
    )
    return coverage.first.astimezone(UTC).date()


def held_ids(turbines: "Sequence[Turbine]") -> list[str]:
    """The ids of ``turbines``."""
    return [t.id for t in turbines]


def children_environment(
    settings: "Settings", data_dir: Path, urls: dict[str, str], first_day: date | None
) -> dict[str, str]:
    """The environment of every child: the settings in effect, Dagster's home and first day."""
    from windpipe.orchestration.instance import dagster_environment

    home = data_dir / "dagster"  # `windpipe dagster init` creates it, in parallel with seeding
    env = dagster_environment(
        settings, target_url=urls["WINDPIPE_TARGET_DB_URL"], home=home, first_day=first_day
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
    return env


def start_dagster_init(data_dir: Path) -> Child:
    """``windpipe dagster init`` in the background: Dagster's storage, while the source fills."""
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    init = Child("dagster-init", [*windpipe_argv(), "dagster", "init"], logs / "dagster-init.log")
    init.start({**os.environ, "DAGSTER_HOME": str(data_dir / "dagster")})
    return init


def services(prepared: Prepared, socket: Path) -> list[Child]:
    """The long-running children, in start order: the API, a code server, webserver, daemon.

    One code server serves the webserver and the daemon (each would otherwise start its own:
    ~140 MiB and a few CPU-seconds more).
    """
    wp, logs = windpipe_argv(), prepared.logs
    code = ["--grpc-socket", str(socket)]
    return [
        Child("api", [*wp, "api"], logs / "api.log"),
        Child(
            "code-server", [*wp, "dagster", "code-server", "--socket", code[1]], logs / "code.log"
        ),
        Child("dagster-webserver", [*wp, "dagster", "webserver", *code], logs / "webserver.log"),
        Child("dagster-daemon", [*wp, "dagster", "daemon", *code], logs / "daemon.log"),
    ]


Pair = tuple[str, date]
#: How often ``up`` asks the API which past (turbine, day)s hold data, and reports progress.
EXPECTED_EVERY_SECONDS = 10.0
PROGRESS_EVERY_SECONDS = 15.0


def past_pairs_with_data(settings: "Settings", turbines: list[str], today: date) -> set[Pair]:
    """The (turbine, day)s before ``today`` that hold source data: what the catch-up loads."""
    from windpipe.etl.session import api_client

    with api_client(settings, retries=0) as client:
        coverage = client.coverage()
        if not coverage.rows or coverage.first is None or coverage.last is None:
            return set()
        last = min(coverage.last.date(), today - timedelta(days=1))
        if last < coverage.first.date():
            return set()
        prints = client.fingerprints(coverage.first.date(), last, turbines)
    return {pair for pair, fp in prints.items() if int(fp.partition(":")[0] or 0) > 0}


def _partitions_start(env: dict[str, str]) -> date | None:
    """The first daily partition the Dagster processes load with (None: they ask the API)."""
    from windpipe.orchestration.instance import PARTITIONS_START_ENV

    value = env.get(PARTITIONS_START_ENV)
    return date.fromisoformat(value) if value else None


def _span(pairs: set[Pair]) -> str:
    days = sorted({d for _, d in pairs})
    return f"{days[0]} to {days[-1]}" if days else ""


def watch(
    children: list[Child],
    stopper: Stopper,
    *,
    api_url: str,
    dagster_url: str,
    expected: Callable[[], set[Pair]],
    turbines: list[str],
    event: Callable[[str], None],
    partitions_start: date | None = None,
) -> Child | None:
    """Report readiness and the catch-up until a stop signal or a crash; the child that crashed.

    The catch-up is measured per (turbine, day) with data (``expected``, asked of the API every
    ``EXPECTED_EVERY_SECONDS``) against what Dagster has materialized; history imported while
    ``up`` runs is reported and followed too; days before ``partitions_start`` (the first daily
    partition, fixed when Dagster loaded) are reported once, with the restart that covers them.
    """
    from windpipe.orchestration.status import materialized_by_turbine, server_ready

    api_ready = dagster_ready = False
    caught_up: bool | None = None  # None until the first report
    reported_failures = 0
    next_poll = next_expected = next_progress = 0.0
    wanted: set[Pair] | None = None
    shown = -1
    told_before: date | None = None
    while not stopper.event.wait(0.25):
        crashed = next((c for c in children if c.exit_code() is not None), None)
        if crashed is not None:
            return crashed
        if not api_ready and _answers(f"{api_url}/health"):
            api_ready = True
            event(f"API ready at {api_url}")
        if not dagster_ready and server_ready(dagster_url):
            dagster_ready = True
            event(f"Dagster UI ready at {dagster_url}")
        now = time.monotonic()
        if not (api_ready and dagster_ready) or now < next_poll:
            continue
        next_poll = now + 1.0
        try:
            if wanted is None or now >= next_expected:
                wanted = expected()
                next_expected = now + EXPECTED_EVERY_SECONDS
                early = sorted(d for _, d in wanted if partitions_start and d < partitions_start)
                if early and (told_before is None or early[0] < told_before):
                    told_before = early[0]
                    event(
                        f"the source holds data from {early[0]}, before Dagster's first partition "
                        f"({partitions_start}): restart windpipe up to load those days"
                    )
                if partitions_start is not None:
                    wanted = {(t, d) for t, d in wanted if d >= partitions_start}
            per_turbine, failed = materialized_by_turbine(dagster_url, turbines=turbines)
        except Exception:  # the API or the UI may be busy starting; ask again
            continue
        done = {(t, d) for t, days in per_turbine.items() for d in days}
        left = wanted - done
        if failed > reported_failures:
            event(
                f"{failed} partition(s) failed (days with data not loaded); the catch-up asks "
                f"for them again in smaller runs; see {dagster_url}/runs"
            )
        reported_failures = failed
        if not left:
            if caught_up is not True:
                caught_up = True
                if wanted:
                    count = len({t for t, _ in wanted})
                    event(
                        f"catch-up done: all {len(wanted):,} past (turbine, day)s with data "
                        f"materialized ({count} turbine{'s' if count > 1 else ''}, "
                        f"{_span(wanted)}); today refreshes every 10 minutes"
                    )
                else:
                    event("no past days with data to catch up; today refreshes every 10 minutes")
            continue
        if caught_up:
            event(
                f"catch-up: {len(left):,} new (turbine, day)s with data to materialize "
                f"({', '.join(sorted({t for t, _ in left}))}, {_span(left)})"
            )
            next_progress = 0.0
        caught_up = False
        if now >= next_progress and len(left) != shown:
            shown, next_progress = len(left), now + PROGRESS_EVERY_SECONDS
            event(
                f"catch-up: {len(wanted) - len(left):,} of {len(wanted):,} past (turbine, day)s "
                "with data materialized"
            )
    return None


def run_up(settings: "Settings") -> int:
    """Start everything, supervise until a signal or a crash, stop everything; the exit code."""
    from windpipe.source.feed import start_feed

    began = time.monotonic()
    stopper = Stopper()
    stopper.install()

    def say(message: str) -> None:
        console.print(message, highlight=False, soft_wrap=True)

    def event(message: str) -> None:
        say(f"[{time.monotonic() - began:6.1f} s] {message}")

    check_ports(settings)
    data_dir = settings.data_dir.expanduser().resolve()
    init = start_dagster_init(data_dir)
    try:
        prepared = prepare(settings, say)
    except BaseException:
        stop_children([init])
        raise
    code = init.wait(stopper.event)  # None when a stop signal came first
    if code is not None and code != 0:
        stop_children([init])
        _shutdown([], prepared, settings, stopper, say, crashed=True)
        raise UserError(f"could not create the Dagster instance:\n{init.tail()}")
    init.close_log()
    if stopper.event.is_set():
        stop_children([init])
        return _shutdown([], prepared, settings, stopper, say, crashed=False)

    api_url = f"http://{_public(settings.api_host)}:{settings.api_port}"
    dagster_url = f"http://{_public(settings.dagster_host)}:{settings.dagster_port}"
    sockets = Path(tempfile.mkdtemp(prefix="windpipe-"))  # short: Unix sockets allow ~100 bytes
    children = services(prepared, sockets / "code.sock")
    for child in children:  # before the feed's thread: forking with threads running is unsafe
        child.start(prepared.env)
    from windpipe.source import store
    from windpipe.source.seed import fleet_specs, synthetic_fleet_of

    held = store.turbine_ids(prepared.source_engine)
    synthetic = synthetic_fleet_of(
        prepared.source_engine, settings.fleet_of(held), declared=settings.turbines_declared
    ).turbines
    start_feed(  # the synthetic turbines only: never one holding imported data
        prepared.source_engine,
        stopper.event,
        seed=LIVE_FEED_SEED,
        turbines=fleet_specs(synthetic),
        columns=[v.column for v in settings.variables.values()],
        on_error=lambda reason: event(f"live feed: {reason}"),
    )
    say(f"API           {api_url}  (docs {api_url}/docs)")
    say(f"Dagster UI    {dagster_url}")
    say(f"logs          {prepared.logs}/{{api,code,webserver,daemon}}.log")
    say("Ctrl-C stops everything.")

    turbines = [t.id for t in settings.fleet_of(held)]  # without [[turbines]]: the source's
    crashed = watch(
        children,
        stopper,
        api_url=api_url,
        dagster_url=dagster_url,
        expected=lambda: past_pairs_with_data(settings, turbines, datetime.now(UTC).date()),
        turbines=turbines,
        event=event,
        partitions_start=_partitions_start(prepared.env),
    )
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
