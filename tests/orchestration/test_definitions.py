"""The code location loads, and its parts are wired as the issue asks."""

import os
import subprocess
import sys

import pytest
from dagster import (
    AssetKey,
    BackfillPolicy,
    Backoff,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
)

from tests.orchestration.conftest import defs
from windpipe.orchestration.instance import DEFAULT_PARTITIONS_START, ETL_RUN_TAG


def test_definitions_load() -> None:
    Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("windpipe_etl") is not None


def test_the_asset_is_daily_single_run_backfilled_and_retried() -> None:
    asset = defs.resolve_assets_def(AssetKey(["aggregates_10min", "WTG01"]))
    assert asset.backfill_policy == BackfillPolicy.single_run()
    assert asset.can_subset  # a run may load any subset of the turbines
    partitions = asset.partitions_def
    assert partitions is not None
    assert partitions.timezone == "UTC" and partitions.end_offset == 1  # type: ignore[attr-defined]
    assert partitions.start.date() == DEFAULT_PARTITIONS_START  # type: ignore[attr-defined]
    retry = asset.op.retry_policy
    assert retry is not None and retry.max_retries >= 1 and retry.backoff == Backoff.EXPONENTIAL
    assert asset.descriptions_by_key[asset.key].startswith("10-minute")


def test_the_job_runs_the_asset_and_its_checks_in_one_process() -> None:
    job = defs.resolve_job_def("windpipe_etl")
    assert job.executor_def.name == "in_process"
    assert job.tags[ETL_RUN_TAG] == "target"
    checks = {key.name for key in job.asset_layer.asset_graph.asset_check_keys}
    assert checks == {
        "windows_complete",
        "aggregates_consistent",
        "no_duplicate_rows",
        "live_edge_fresh",
        "finite_samples",
        "source_unchanged",
    }


def test_schedules_and_the_sensor_run_without_a_click() -> None:
    schedules = {s.name: s for s in defs.schedules or []}  # type: ignore[union-attr]
    assert set(schedules) == {"daily_yesterday", "today_every_10min"}
    assert all(s.default_status == DefaultScheduleStatus.RUNNING for s in schedules.values())
    sensors = {s.name: s for s in defs.sensors or []}  # type: ignore[union-attr]
    assert set(sensors) == {"catch_up", "source_changes", "event_changes", "figures_automation"}
    assert all(s.default_status == DefaultSensorStatus.RUNNING for s in sensors.values())
    assert sensors["source_changes"].minimum_interval_seconds == 120  # the setting's default


def test_resources_read_the_windpipe_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WINDPIPE_API_URL", "http://api.example:8000")
    monkeypatch.setenv("WINDPIPE_API_KEY", "")
    monkeypatch.setenv("WINDPIPE_API_TIMEOUT_SECONDS", "12.5")
    monkeypatch.setenv("WINDPIPE_TARGET_DB_URL", "postgresql+psycopg://u:p@db/target")
    monkeypatch.setenv("WINDPIPE_ETL_VARIABLES", "wind_speed, ambient_temperature")
    monkeypatch.setenv("WINDPIPE_ETL_AGGREGATIONS", "mean,count")
    assert set(defs.resources) == {"etl"}
    with defs.resources["etl"].process_config_and_initialize_cm() as etl:  # type: ignore[union-attr]
        assert etl.api_url == "http://api.example:8000"
        assert etl.settings().api_timeout_seconds == 12.5
        assert etl.target_db_url == "postgresql+psycopg://u:p@db/target"
        assert etl.engine.url.host == "db"  # the pool exists; nothing connected yet
        with etl.session(["WTG01"]) as session:  # the CLI's session, built the same way
            assert session.client.base_url == "http://api.example:8000"
            assert session.engine is etl.engine
            assert session.turbines == ["WTG01"]
            assert session.variables == ["wind_speed", "ambient_temperature"]
    assert etl.signals == [
        "wind_speed_mean",
        "wind_speed_count",
        "ambient_temperature_mean",
        "ambient_temperature_count",
    ]


def test_bad_options_are_one_clear_line() -> None:
    from windpipe.errors import ConfigError
    from windpipe.orchestration.defs.resources import EtlResource

    def etl(**options: str) -> EtlResource:
        return EtlResource(api_url="http://x", target_db_url="postgresql+psycopg://db/t", **options)

    with pytest.raises(
        ConfigError, match=r"WINDPIPE_ETL_AGGREGATIONS: unknown aggregation.*median"
    ):
        _ = etl(aggregations="mean,median").signals
    with pytest.raises(ConfigError, match="WINDPIPE_API_TIMEOUT_SECONDS: 'soon'"):
        _ = etl(api_timeout_seconds="soon").settings()


def test_partitions_start_comes_from_the_environment() -> None:
    code = (
        "import warnings; warnings.simplefilter('ignore');"
        "from windpipe.orchestration.defs.partitions import daily_partitions as p;"
        "print(p.start.date(), p.get_first_partition_key())"
    )
    env = {**os.environ, "WINDPIPE_PARTITIONS_START": "2024-03-01"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["2024-03-01", "2024-03-01"]
    env["WINDPIPE_PARTITIONS_START"] = "March"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert bad.returncode != 0
    assert (
        "WINDPIPE_PARTITIONS_START: 'March'" in bad.stderr and "expected YYYY-MM-DD" in bad.stderr
    )
