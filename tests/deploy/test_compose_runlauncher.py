"""Run isolation for real: compose.yaml + compose.runlauncher.yaml against a Docker engine.

The daemon launches each run in a container of its own (dagster-docker's DockerRunLauncher) from
the same image; Dagster's storage stays in the postgres service. With no click, every past
partition must be materialized by runs whose containers then exit 0. Compose does not own the run
containers: they are removed by their label before `down -v`. Skipped, with the reason, when no
engine answers. The tests run in file order and share one stack.
"""

import json
import os
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from tests.deploy.compose_stack import (
    Stack,
    every_service_ready,
    graphql,
    module_stack,
    past_days,
    past_partitions_materialized,
    wait_for,
)

PROJECT = "windpipe-citest-runlauncher"
IMAGE_TAG = "citest-runlauncher"
FILES = ("compose.yaml", "compose.runlauncher.yaml")
SOCKET = "/var/run/docker.sock"
#: The label every run container gets from docker/dagster/docker_run_launcher.py.
PROJECT_LABEL = f"windpipe/project={PROJECT}"
WINDOWS = 144 * 8  # 10-minute windows x signals, per full day

pytestmark = [pytest.mark.compose, pytest.mark.slow, pytest.mark.timeout(3600)]


def remove_run_containers(stack: Stack) -> None:
    """Remove the project's run containers (they hold its windpipe-data volume)."""
    ids = stack.docker_cli("ps", "-aq", "--filter", f"label={PROJECT_LABEL}").stdout.split()
    if ids:
        stack.docker_cli("rm", "-f", *ids, timeout=120)


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Build, `up -d` both files; run containers removed, then `down -v`, whatever happened."""
    if not os.path.exists(SOCKET):
        pytest.skip(f"no {SOCKET} here: the daemon mounts the engine's socket from this host")
    with module_stack(
        request,
        tmp_path_factory,
        project=PROJECT,
        image_tag=IMAGE_TAG,
        files=FILES,
        extra_env={"DOCKER_SOCKET_GID": str(os.stat(SOCKET).st_gid)},
        before_down=remove_run_containers,
    ) as stack:
        yield stack


def test_every_service_reaches_its_state(stack: Stack) -> None:
    """The same services and states as compose.yaml alone; the daemon is healthy with its socket."""
    every_service_ready(stack)


def test_only_the_daemon_holds_the_engine_socket(stack: Stack) -> None:
    containers = stack.containers()
    inspected = json.loads(
        stack.docker_cli("inspect", *(row["ID"] for row in containers.values())).check().stdout
    )
    holders = {
        c["Config"]["Labels"]["com.docker.compose.service"]
        for c in inspected
        if any(m.get("Destination") == SOCKET for m in c["Mounts"])
    }
    assert holders == {"dagster-daemon"}
    (daemon,) = (c for c in inspected if c["Id"].startswith(containers["dagster-daemon"]["ID"]))
    assert daemon["Config"]["User"] == "windpipe:windpipe"
    assert daemon["HostConfig"]["GroupAdd"] == [str(os.stat(SOCKET).st_gid)]


RUN_QUERY = """query ($id: ID!) {
  runOrError(runId: $id) { ... on Run { status tags { key value } } }
}"""


def test_every_past_partition_is_materialized_by_run_containers(stack: Stack) -> None:
    """Each past day by a run that Dagster launched in a container, which then exited 0."""
    events = past_partitions_materialized(stack)

    # Which container ran each run: Dagster's tag, set by the launcher.
    containers: dict[str, str] = {}
    for run_id in {e["runId"] for e in events}:
        run = graphql(stack, RUN_QUERY, {"id": run_id})["runOrError"]
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert "docker/container_id" in tags, f"run {run_id} has no container: {tags}"
        assert tags["dagster/image"] == f"windpipe:{IMAGE_TAG}"
        containers[run_id] = tags["docker/container_id"]

    def all_exited() -> list[dict[str, Any]] | None:
        out = stack.docker_cli("inspect", *containers.values()).check().stdout
        inspected: list[dict[str, Any]] = json.loads(out)
        return inspected if all(c["State"]["Status"] == "exited" for c in inspected) else None

    inspected = wait_for(stack, "the run containers exited", all_exited, timeout=120)
    services = {row["ID"] for row in stack.containers().values()}  # short ids
    for run_id, container in zip(containers, inspected, strict=True):
        assert container["Id"][:12] not in services  # its own container, not a service's
        assert container["State"]["ExitCode"] == 0, container["State"]
        assert container["Config"]["Image"] == f"windpipe:{IMAGE_TAG}"
        assert container["Config"]["User"] == "windpipe:windpipe"
        assert container["Config"]["Cmd"][-3:-1] == ["api", "execute_run"]
        labels = container["Config"]["Labels"]
        assert labels["dagster/run_id"] == run_id
        assert labels["windpipe/project"] == PROJECT
        assert set(container["NetworkSettings"]["Networks"]) == {f"{PROJECT}_default"}
        volumes = {m.get("Name"): m["Destination"] for m in container["Mounts"]}
        assert volumes == {f"{PROJECT}_windpipe-data": "/var/lib/windpipe"}
    for run_id in containers:
        run = graphql(stack, RUN_QUERY, {"id": run_id})["runOrError"]
        assert run["status"] == "SUCCESS", f"run {run_id}: {run['status']}"


def test_target_holds_every_window_of_the_past_days(stack: Stack) -> None:
    rows = stack.sql(
        "windpipe_target",
        "SELECT timestamp::date, count(*) FROM data WHERE timestamp < current_date GROUP BY 1",
    )
    assert {date.fromisoformat(d): int(n) for d, n in rows} == dict.fromkeys(past_days(), WINDOWS)


def test_run_containers_are_removed_by_their_label_and_down_v_leaves_nothing(
    stack: Stack,
) -> None:
    remove_run_containers(stack)
    stack.compose("down", "-v", "--remove-orphans", timeout=300).check()
    for label in (f"label={PROJECT_LABEL}", f"label=com.docker.compose.project={PROJECT}"):
        for kind in (["ps", "-a"], ["volume", "ls"], ["network", "ls"]):
            left = stack.docker_cli(*kind, "-q", "--filter", label).check().stdout.split()
            assert left == [], f"docker {' '.join(kind)} --filter {label}: {left} left behind"
