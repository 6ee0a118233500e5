"""`docker compose up -d` for real: the image is built, compose.yaml runs against a Docker engine.

Everything is checked as a user would: through the published ports, `docker compose ps`, `exec`
and the engine's own listings. The stack runs under a project name and ports of its own, so a
developer's `windpipe` stack is left alone. Skipped, with the reason, when no engine answers.
The tests run in file order and share one stack: each one is a step of its life.
"""

import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pyarrow.ipc
import pytest

from tests.deploy.compose_stack import (
    UP_TIMEOUT,
    WINDPIPE_SERVICES,
    Stack,
    every_service_ready,
    materialized_partitions,
    module_stack,
    past_days,
    past_partitions_materialized,
    utc_today,
    wait_for,
    wait_until_ready,
)

PROJECT = "windpipe-citest"
IMAGE_TAG = "citest"

pytestmark = [pytest.mark.compose, pytest.mark.slow, pytest.mark.timeout(3600)]

SIGNALS = {
    f"{variable}_{aggregation}"
    for variable in ("wind_speed", "power")
    for aggregation in ("mean", "min", "max", "std")
}
WINDOWS_PER_DAY = 144


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Build the image, `docker compose up -d`; `down -v` afterwards, whatever happened."""
    with module_stack(
        request, tmp_path_factory, project=PROJECT, image_tag=IMAGE_TAG, files=("compose.yaml",)
    ) as stack:
        yield stack


# --- the steps ---------------------------------------------------------------------------------


def test_every_service_reaches_its_state(stack: Stack) -> None:
    """postgres, api and both Dagster services healthy; init and seed exited 0; feed running."""
    every_service_ready(stack)


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
        assert client.get("/health").json() == {"status": "ok", "database": "ok", "contract": "ok"}
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


def test_dagster_materializes_every_past_partition_by_itself(stack: Stack) -> None:
    past_partitions_materialized(stack)


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
