"""The Dagster instance `windpipe dagster` prepares: home, dagster.yaml, storage, environment."""

import multiprocessing
from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance

from windpipe.orchestration.instance import (
    ETL_RUN_TAG,
    PARTITIONS_START_ENV,
    dagster_environment,
    dagster_home,
    ensure_instance,
    initialize_storage,
    partitions_start,
)
from windpipe.settings import load_settings


def test_home_is_dagster_home_when_set_else_under_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data", _env_file=None)
    assert dagster_home(settings, {}) == (tmp_path / "data" / "dagster").resolve()
    assert dagster_home(settings, {"DAGSTER_HOME": str(tmp_path / "h")}) == tmp_path / "h"


def test_the_written_dagster_yaml_is_a_valid_laptop_instance(tmp_path: Path) -> None:
    config = ensure_instance(tmp_path / "home")
    assert config == tmp_path / "home" / "dagster.yaml"
    with DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_coordinator.dequeue_interval_seconds == 1  # type: ignore[attr-defined]
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None and queue.max_concurrent_runs == 2
        assert queue.tag_concurrency_limits == [{"key": ETL_RUN_TAG, "limit": 1}]
        assert instance.run_monitoring_enabled


def test_an_existing_dagster_yaml_is_kept(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    ensure_instance(home)
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


def _init(home: str) -> bool:
    return initialize_storage(Path(home))


def test_storage_is_created_once_even_by_racing_processes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ensure_instance(home)
    # The webserver and the daemon start together; without the lock SQLite's schema is stamped
    # twice and neither loads the code location ("more than one head").
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        created = pool.map(_init, [str(home)] * 3)
    assert sorted(created) == [False, False, True]
    assert (home / "schedules" / "schedules.db").exists()
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_runs() == []
        assert list(instance.all_instigator_state()) == []
    assert initialize_storage(home) is False


def test_environment_of_the_dagster_processes(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        api_port=8123,
        api_timeout_seconds=30,
        etl_aggregations="mean,count",
        _env_file=None,
    )
    env = dagster_environment(
        settings,
        target_url="postgresql+psycopg://t",
        home=tmp_path / "home",
        first_day=date(2024, 3, 1),
        base={"PATH": "/bin", PARTITIONS_START_ENV: ""},
    )
    assert env == {
        "PATH": "/bin",
        "DAGSTER_HOME": str(tmp_path / "home"),
        "WINDPIPE_API_URL": "http://127.0.0.1:8123",
        "WINDPIPE_API_TIMEOUT_SECONDS": "30.0",
        "WINDPIPE_TARGET_DB_URL": "postgresql+psycopg://t",
        "WINDPIPE_ETL_VARIABLES": "wind_speed,power",
        "WINDPIPE_ETL_AGGREGATIONS": "mean,count",
        PARTITIONS_START_ENV: "2024-03-01",
    }
    # A start chosen by the user wins over the API's first day.
    kept = dagster_environment(
        settings,
        target_url="x",
        home=tmp_path,
        first_day=date(2024, 3, 1),
        base={PARTITIONS_START_ENV: "2023-01-01"},
    )
    assert kept[PARTITIONS_START_ENV] == "2023-01-01"


def test_partitions_start() -> None:
    assert partitions_start({PARTITIONS_START_ENV: "2024-03-01"}) == date(2024, 3, 1)
    assert partitions_start({}) == date(2024, 1, 1)
    with pytest.raises(ValueError, match="is not a date"):
        partitions_start({PARTITIONS_START_ENV: "yesterday"})
