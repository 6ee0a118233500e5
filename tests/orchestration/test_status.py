"""The Dagster status client, asking a real ``dagster-webserver`` about runs made in-process."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from dagster import DagsterInstance

from tests.orchestration.conftest import defs, etl_resource
from windpipe.orchestration.fleet import asset_path
from windpipe.orchestration.instance import (
    DEFINITIONS_MODULE,
    PARTITIONS_START_ENV,
    ensure_instance,
)
from windpipe.orchestration.status import (
    PartitionStatus,
    materialized_days,
    server_ready,
)
from windpipe.testing import free_port


def test_the_asset_keys_are_the_turbines_assets() -> None:
    keys = sorted(key.path for key in defs.resolve_all_asset_keys())
    assert [k for k in keys if k[0] == "aggregates_10min"] == [asset_path("WTG01")]
    assert asset_path("WTG01") == ["aggregates_10min", "WTG01"]
    # Downstream of it and of the turbine's events (external), the day's figures and flags
    # (which the status client does not ask for).
    assert keys == [
        ["aggregates_10min", "WTG01"],
        ["flags_daily", "WTG01"],
        ["kpis_daily", "WTG01"],
        ["turbine_events", "WTG01"],
    ]


def test_a_webserver_that_is_not_there() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert server_ready(url) is False
    with pytest.raises(httpx.HTTPError):
        materialized_days(url)


@pytest.fixture
def dagster_home(tmp_path: Path) -> Path:
    """A Dagster home with windpipe's instance (SQLite storage)."""
    home = tmp_path / "home"
    ensure_instance(home)
    return home


@pytest.fixture
def webserver(dagster_home: Path, tmp_path: Path) -> Iterator[str]:
    """``dagster-webserver`` on windpipe's definitions and ``dagster_home``; its URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WINDPIPE_", "DAGSTER_"))}
    env.update({"DAGSTER_HOME": str(dagster_home), PARTITIONS_START_ENV: "2024-01-01"})
    argv = [str(Path(sys.executable).with_name("dagster-webserver")), "-m", DEFINITIONS_MODULE]
    log = tmp_path / "webserver.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [*argv, "-h", "127.0.0.1", "-p", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not server_ready(url):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
def test_materialized_days_and_failures_as_the_webserver_reports_them(
    dagster_home: Path, webserver: str, resources: dict[str, object]
) -> None:
    job = defs.resolve_job_def("windpipe_etl")
    broken = {"etl": etl_resource(resources["etl"].api_url, "not a database URL")}
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        assert materialized_days(webserver) == PartitionStatus(set(), 0)
        for day in ("2024-03-01", "2024-03-02", "2024-03-03", "2024-03-05"):
            assert job.execute_in_process(
                partition_key=day, resources=resources, instance=instance
            ).success
        failed = job.execute_in_process(
            partition_key="2024-03-04", resources=broken, instance=instance, raise_on_error=False
        )
        assert not failed.success
    done, failures = materialized_days(webserver)
    # Two ranges (03-01..03-03 and 03-05) come back as the days in them.
    assert done == {date(2024, 3, d) for d in (1, 2, 3, 5)}
    assert failures == 1
