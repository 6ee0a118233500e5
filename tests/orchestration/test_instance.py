"""The Dagster instance `windpipe dagster` prepares: home, dagster.yaml, storage, environment."""

import multiprocessing
import os
import time
from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance

from tests.conftest import LiveApi
from windpipe.orchestration.instance import (
    DATABASES_POOL,
    DEFAULT_PARTITIONS_START,
    DEFINITIONS_MODULE,
    ETL_RUN_TAG,
    FIRST_DAY_FILE,
    PARTITIONS_START_ENV,
    code_location_partitions_start,
    dagster_environment,
    dagster_home,
    ensure_instance,
    initialize_storage,
    partitions_start,
)
from windpipe.settings import Settings, load_settings
from windpipe.testing import free_port


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


def test_the_run_limits_come_from_the_settings_while_windpipe_owns_the_file(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    ensure_instance(home)
    wider = load_settings(dagster_max_concurrent_runs=4, dagster_etl_runs=3, _env_file=None)
    ensure_instance(home, wider)  # a later start with other settings rewrites windpipe's file
    with DagsterInstance.from_config(str(home)) as instance:
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None and queue.max_concurrent_runs == 4
        assert queue.tag_concurrency_limits == [{"key": ETL_RUN_TAG, "limit": 3}]
    edited = (home / "dagster.yaml").read_text().split("\n", 1)[1]  # the header line removed
    (home / "dagster.yaml").write_text(edited)
    ensure_instance(home)  # now the user's: kept as it is
    assert (home / "dagster.yaml").read_text() == edited


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
    # close() + join(), not the context manager's terminate(): workers end by themselves, so no
    # signal disposition the test process inherited (a script's background job) can hang it.
    pool = multiprocessing.get_context("spawn").Pool(3)
    try:
        created = pool.map(_init, [str(home)] * 3, chunksize=1)
    finally:
        pool.close()
        pool.join()
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
        "WINDPIPE_API_KEY": "",
        "WINDPIPE_TARGET_DB_URL": "postgresql+psycopg://t",
        "WINDPIPE_CONFIG": os.environ["WINDPIPE_CONFIG"],
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

    # A start in the settings (e.g. from .env) is written for the Dagster processes.
    chosen = load_settings(partitions_start="2023-06-01", _env_file=None)
    env = dagster_environment(chosen, target_url="x", home=tmp_path, first_day=date(2024, 3, 1))
    assert env[PARTITIONS_START_ENV] == "2023-06-01"


def _settings(api_url: str, start: str | None = None) -> Settings:
    return load_settings(api_url=api_url, partitions_start=start, _env_file=None)


def _silent_api() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


def test_a_start_in_the_settings_wins_and_needs_no_api(tmp_path: Path) -> None:
    settings = _settings(_silent_api(), "2024-03-01")
    assert partitions_start(settings, home=tmp_path, wait_seconds=30) == date(2024, 3, 1)
    assert not (tmp_path / FIRST_DAY_FILE).exists()


def test_without_a_dagster_home_the_default_is_used_without_asking(live_api: LiveApi) -> None:
    assert partitions_start(_settings(live_api.url), home=None) == DEFAULT_PARTITIONS_START


def test_the_first_day_of_data_is_asked_once_then_remembered(
    tmp_path: Path, live_api: LiveApi
) -> None:
    assert partitions_start(_settings(live_api.url), home=tmp_path) == date(2024, 3, 1)
    assert (tmp_path / FIRST_DAY_FILE).read_text() == "2024-03-01\n"
    # Later loads (the daemon, each run) agree without the API.
    assert partitions_start(_settings(_silent_api()), home=tmp_path) == date(2024, 3, 1)


def test_a_silent_api_costs_at_most_the_bound_and_nothing_is_remembered(tmp_path: Path) -> None:
    began = time.monotonic()
    start = partitions_start(_settings(_silent_api()), home=tmp_path, wait_seconds=1.5)
    assert start == DEFAULT_PARTITIONS_START
    assert 1.0 <= time.monotonic() - began < 5
    assert not (tmp_path / FIRST_DAY_FILE).exists()  # the next load asks again


def test_an_unreadable_memo_is_asked_again(tmp_path: Path, live_api: LiveApi) -> None:
    (tmp_path / FIRST_DAY_FILE).write_text("yesterday\n")
    assert partitions_start(_settings(live_api.url), home=tmp_path) == date(2024, 3, 1)
    assert (tmp_path / FIRST_DAY_FILE).read_text() == "2024-03-01\n"


def test_the_code_location_reads_the_settings_and_dagster_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / FIRST_DAY_FILE).write_text("2024-03-10\n")
    monkeypatch.setenv("WINDPIPE_API_URL", _silent_api())
    assert code_location_partitions_start({"DAGSTER_HOME": str(tmp_path)}) == date(2024, 3, 10)
    assert code_location_partitions_start({}) == DEFAULT_PARTITIONS_START
    monkeypatch.setenv(PARTITIONS_START_ENV, "2024-02-01")
    assert code_location_partitions_start({"DAGSTER_HOME": str(tmp_path)}) == date(2024, 2, 1)
    monkeypatch.setenv(PARTITIONS_START_ENV, "March")
    with pytest.raises(ValueError, match=f"{PARTITIONS_START_ENV}: 'March'"):
        code_location_partitions_start({})


def test_without_turbines_configured_the_code_location_covers_the_sources_turbines(
    tmp_path: Path, live_api: LiveApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    from windpipe.orchestration import instance

    monkeypatch.setenv("WINDPIPE_API_URL", live_api.url)
    instance.code_location_settings.cache_clear()
    try:
        home = {"DAGSTER_HOME": str(tmp_path)}
        fleet = instance.code_location_fleet(home)  # what the session's source holds
        assert "WTG01" in fleet
        assert (tmp_path / instance.FLEET_FILE).read_text().split() == fleet
        # The API away: the fleet last heard of, so the daemon and the runs still agree.
        (tmp_path / instance.FLEET_FILE).write_text("WTG01\nWTG02\n")
        monkeypatch.setenv("WINDPIPE_API_URL", f"http://127.0.0.1:{free_port()}")
        monkeypatch.setattr(instance, "LOOKUP_SECONDS", 0.5)
        instance.code_location_settings.cache_clear()
        assert instance.code_location_fleet(home) == ["WTG01", "WTG02"]
        # Declared turbines are the fleet, whatever the source holds.
        monkeypatch.setenv("WINDPIPE_TURBINES", '[{"id": "R80711"}]')
        instance.code_location_settings.cache_clear()
        assert instance.code_location_fleet(home) == ["R80711"]
    finally:
        instance.code_location_settings.cache_clear()


def _dequeued(home: Path, runs: int) -> int:
    """How many of ``runs`` queued runs of the windpipe job (two turbines' days, tagged like the
    catch-up's) Dagster's queue daemon would start now, in the instance at ``home``."""
    from dagster import DagsterRunStatus, Definitions
    from dagster._core.remote_origin import (
        GrpcServerCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
        QueuedRunCoordinatorDaemon,
    )

    from tests.orchestration.conftest import etl_resource
    from windpipe.orchestration.defs.assets import build_aggregates, turbine_keys
    from windpipe.orchestration.defs.checks import build_checks
    from windpipe.orchestration.defs.jobs import build_job

    aggregates = build_aggregates(["WTG01", "WTG02"])
    job = Definitions(  # nothing runs: an address that is never dialled will do
        assets=[aggregates],
        asset_checks=build_checks(turbine_keys(["WTG01", "WTG02"])),
        jobs=[build_job(aggregates)],
        resources={"etl": etl_resource("http://127.0.0.1:9", "postgresql+psycopg://u@127.0.0.1/t")},
    ).resolve_job_def("windpipe_etl")
    # Queued runs carry where their code lives (the code server of `windpipe up`); the queue
    # never dials it to decide, so its address is a stand-in.
    origin = RemoteJobOrigin(
        repository_origin=RemoteRepositoryOrigin(
            code_location_origin=GrpcServerCodeLocationOrigin(
                host="127.0.0.1", port=9, location_name=DEFINITIONS_MODULE
            ),
            repository_name="__repository__",
        ),
        job_name=job.name,
    )
    with DagsterInstance.from_config(str(home)) as instance:
        for n in range(runs):
            day = date(2024, 6, 1 + n).isoformat()
            planned = instance.create_run_for_job(job_def=job, tags={"dagster/partition": day})
            assert planned.run_op_concurrency is not None
            assert set(planned.run_op_concurrency.all_pools or ()) == {DATABASES_POOL}
            instance.delete_run(planned.run_id)
            instance.add_run(planned.with_job_origin(origin).with_status(DagsterRunStatus.QUEUED))
        with QueuedRunCoordinatorDaemon(interval_seconds=1) as daemon:
            chosen = daemon._get_runs_to_dequeue(  # what one iteration of the daemon would start
                instance, instance.get_concurrency_config(), fixed_iteration_time=None
            )
        return len(chosen)


def test_the_databases_pool_limit_reaches_the_instance_and_holds_runs_in_the_queue(
    tmp_path: Path,
) -> None:
    """Every step of the ETL job is in the databases' pool, whose limit the settings write into
    the instance: with room for 8 runs and 8 ETL runs, the pool alone decides how many start."""
    for limit in (1, 3):
        home = tmp_path / f"pool-{limit}"
        settings = load_settings(
            dagster_max_concurrent_runs=8,
            dagster_etl_runs=8,
            dagster_pool_limit=limit,
            _env_file=None,
        )
        ensure_instance(home, settings)
        initialize_storage(home)  # as `windpipe dagster` and `up` do before Dagster starts
        with DagsterInstance.from_config(str(home)) as instance:
            pools = instance.get_concurrency_config().pool_config
            assert pools.default_pool_limit == limit
            assert pools.pool_granularity is not None and pools.pool_granularity.value == "run"
        assert _dequeued(home, 5) == limit


def test_the_pool_limit_is_validated() -> None:
    for bad in (0, 65):
        with pytest.raises(ValueError, match="WINDPIPE_DAGSTER_POOL_LIMIT"):
            load_settings(dagster_pool_limit=bad, _env_file=None)
