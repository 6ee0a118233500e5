from pathlib import Path

import pytest

from windpipe.errors import ConfigError
from windpipe.settings import Settings, load_settings


def test_defaults_are_local_and_documented() -> None:
    settings = load_settings(_env_file=None)
    assert settings.source_db_url is None and settings.target_db_url is None
    assert settings.data_dir == Path(".windpipe")
    assert (settings.api_host, settings.api_port) == ("127.0.0.1", 8000)
    assert settings.base_api_url == "http://127.0.0.1:8000"
    assert settings.api_max_range_days == 366
    assert settings.etl_variables == ["wind_speed", "power"]
    assert settings.etl_aggregations == ["mean", "min", "max", "std"]
    for name, field in Settings.model_fields.items():
        assert field.description, f"WINDPIPE_{name.upper()} has no description"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WINDPIPE_API_HOST", "0.0.0.0")
    monkeypatch.setenv("WINDPIPE_API_PORT", "9001")
    monkeypatch.setenv("WINDPIPE_ETL_VARIABLES", "wind_speed, ambient_temperature")
    monkeypatch.setenv("WINDPIPE_ETL_AGGREGATIONS", "mean,count")
    settings = load_settings(_env_file=None)
    assert (
        settings.base_api_url == "http://127.0.0.1:9001"
    )  # a wildcard bind is reached on loopback
    assert settings.etl_variables == ["wind_speed", "ambient_temperature"]
    assert settings.etl_aggregations == ["mean", "count"]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "WINDPIPE_API_PORT",
            "70000",
            "WINDPIPE_API_PORT: '70000': Input should be less than or equal to 65535",
        ),
        ("WINDPIPE_API_PORT", "http", "WINDPIPE_API_PORT"),
        (
            "WINDPIPE_SOURCE_DB_URL",
            "not a url",
            "WINDPIPE_SOURCE_DB_URL: 'not a url' is not a SQLAlchemy URL",
        ),
        (
            "WINDPIPE_TARGET_DB_URL",
            "mysql://u@h/db",
            "WINDPIPE_TARGET_DB_URL: driver 'mysql' is not supported",
        ),
        (
            "WINDPIPE_TARGET_DB_URL",
            "postgresql+asyncpg://u@h/db",
            "driver 'postgresql+asyncpg' is not supported; windpipe talks to PostgreSQL through "
            "psycopg 3",
        ),
        (
            "WINDPIPE_TARGET_DB_URL",
            "postgresql://u:secret@h:notaport/db",
            "'postgresql://u:***@h:notaport/db' is not a SQLAlchemy URL",
        ),
        (
            "WINDPIPE_API_URL",
            "http://127.0.0.1:99999",
            "'http://127.0.0.1:99999' is not a valid URL (Port out of range 0-65535)",
        ),
        ("WINDPIPE_API_URL", "http://[::1", "'http://[::1' is not a valid URL (Invalid IPv6 URL)"),
        (
            "WINDPIPE_PARTITIONS_START",
            "tomorrow",
            "WINDPIPE_PARTITIONS_START: 'tomorrow': Input should be a valid date or datetime, "
            "input is too short; expected YYYY-MM-DD",
        ),
        ("WINDPIPE_ETL_VARIABLES", "", "WINDPIPE_ETL_VARIABLES: no variable given; accepted"),
        ("WINDPIPE_API_URL", "ftp://x", "WINDPIPE_API_URL: 'ftp://x' is not an http(s) URL"),
        (
            "WINDPIPE_ETL_VARIABLES",
            "wind_speed,rpm",
            "unknown variable(s) ['rpm']; accepted: wind_speed",
        ),
        (
            "WINDPIPE_ETL_AGGREGATIONS",
            "median",
            "unknown aggregation(s) ['median']; accepted: mean",
        ),
        ("WINDPIPE_API_MAX_RANGE_DAYS", "0", "WINDPIPE_API_MAX_RANGE_DAYS"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_log_level_is_not_case_sensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WINDPIPE_LOG_LEVEL", "debug")
    assert load_settings(_env_file=None).log_level == "DEBUG"
