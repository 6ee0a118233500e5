from datetime import timedelta
from pathlib import Path

import pytest

from windpipe.catalog import SignalKind
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


FLEET_TOML = """
api_port = 8100

[etl]
aggregations = ["mean", "max"]
window = "15min"

[[turbines]]
id = "WTG01"
model = "V90"
rated_power_kw = 2000
latitude = 54.1
longitude = 7.9

[[turbines]]
id = "WTG02"

[signals.wind_speed]
unit = "m/s"
range = [0, 50]
aggregate = true

[signals.power]
unit = "kW"
aggregate = true

[signals.pitch]
column = "pitch_angle"
unit = "deg"
"""


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WINDPIPE_CONFIG", raising=False)
    return tmp_path


def test_the_configuration_file_declares_the_fleet_and_its_signals(in_tmp: Path) -> None:
    (in_tmp / "windpipe.toml").write_text(FLEET_TOML)
    settings = load_settings(_env_file=None)
    assert [t.id for t in settings.fleet] == ["WTG01", "WTG02"]
    assert settings.fleet[0].model == "V90" and settings.fleet[0].latitude == 54.1
    assert settings.api_port == 8100 and settings.etl_aggregations == ["mean", "max"]
    assert settings.window == timedelta(minutes=15)
    assert settings.etl_variables == ["wind_speed", "power"]  # the signals marked aggregate
    assert settings.variables["pitch"].column == "pitch_angle"
    assert (settings.variables["wind_speed"].low, settings.variables["wind_speed"].high) == (0, 50)
    assert settings.etl_signals == ["wind_speed_mean", "wind_speed_max", "power_mean", "power_max"]


def test_environment_variables_win_over_the_file(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (in_tmp / "fleet.toml").write_text(FLEET_TOML)
    monkeypatch.setenv("WINDPIPE_CONFIG", str(in_tmp / "fleet.toml"))
    monkeypatch.setenv("WINDPIPE_API_PORT", "8200")
    monkeypatch.setenv("WINDPIPE_ETL_WINDOW", "1h")
    settings = load_settings(_env_file=None)
    assert settings.api_port == 8200 and settings.window == timedelta(hours=1)
    assert len(settings.fleet) == 2


def test_without_a_file_the_brief_is_the_default(in_tmp: Path) -> None:
    settings = load_settings(_env_file=None)
    assert [t.id for t in settings.fleet] == ["WTG01"]
    assert list(settings.variables) == ["wind_speed", "power", "ambient_temperature"]
    assert settings.etl_variables == ["wind_speed", "power"]
    assert settings.window == timedelta(minutes=10)
    assert len(settings.etl_signals) == 8


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bogus = 1\n", "windpipe.toml: unknown key bogus; accepted: "),
        (
            "[etl]\nwindows = '1h'\n",
            "windpipe.toml: unknown key etl.windows (did you mean window?); accepted in [etl]: ",
        ),
        ("[etl]\nwindow = '7min'\n", "windpipe.toml: etl.window: window '7min' is not a duration"),
        ("[etl]\naggregations = ['median']\n", "windpipe.toml: etl.aggregations: unknown agg"),
        (
            "[[turbines]]\nid = 'A'\n[[turbines]]\nid = 'A'\n",
            "windpipe.toml: turbines: duplicate turbine id A; each id must be unique",
        ),
        (
            "[[turbines]]\nid = 'A'\nrotor = 1\n",
            "windpipe.toml: turbines[0].rotor: unknown key; accepted: id, model",
        ),
        ("[signals.power]\nrange = [5, 1]\n", "windpipe.toml: signals.power.range: range [5.0, 1"),
        ("[signals.Power]\nunit = 'kW'\n", "windpipe.toml: signals: signal name(s) ['Power']"),
        ("[etl\n", "windpipe.toml: not valid TOML"),
        (
            "[signals.wind_direction]\nkind = 'direction'\n",
            "windpipe.toml: signals.wind_direction.kind: unknown kind 'direction'; accepted: "
            "linear, angle, counter, state",
        ),
        (
            "[signals.wind_direction]\nkind = 'angle'\naggregations = ['mean', 'min', 'max']\n",
            "windpipe.toml: signals.wind_direction: aggregation(s) min, max are not defined for "
            "kind angle (an angle has no min or max",
        ),
        (
            "[signals.energy]\nkind = 'counter'\naggregations = ['mean']\n",
            "windpipe.toml: signals.energy: aggregation(s) mean are not defined for kind counter; "
            "accepted for kind counter: delta, last, count",
        ),
        (
            "[signals.status]\nkind = 'state'\naggregations = []\n",
            "windpipe.toml: signals.status: aggregations is empty; accepted for kind state: last, "
            "mode, count",
        ),
        ("[etl]\nmin_coverage = 1.5\n", "windpipe.toml: etl.min_coverage: "),
        ("[etl]\nsampling_interval = 'fast'\n", "windpipe.toml: etl.sampling_interval: duration"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_file_and_the_key(
    in_tmp: Path, text: str, expected: str
) -> None:
    (in_tmp / "windpipe.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_a_named_file_that_does_not_exist_is_refused(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WINDPIPE_CONFIG", str(in_tmp / "nowhere.toml"))
    with pytest.raises(ConfigError, match=r"WINDPIPE_CONFIG=.*nowhere.toml: no such file"):
        load_settings(_env_file=None)


SCADA_TOML = """
[etl]
min_coverage = 0.8
sampling_interval = "1min"

[signals.wind_speed]
aggregate = true

[signals.power]
aggregate = true

[signals.wind_direction]
kind = "angle"
unit = "deg"
range = [0, 360]
aggregate = true

[signals.yaw_error]
kind = "angle"
range = [-180, 180]
aggregations = ["mean"]
aggregate = true

[signals.energy]
kind = "counter"
aggregate = true

[signals.status]
kind = "state"
aggregations = ["mode", "last"]
aggregate = true
"""


def test_each_signal_is_aggregated_as_its_kind_allows(in_tmp: Path) -> None:
    (in_tmp / "windpipe.toml").write_text(SCADA_TOML)
    settings = load_settings(_env_file=None)
    rollup = settings.rollup
    assert dict(rollup.aggregations) == {
        "wind_speed": ("mean", "min", "max", "std"),
        "power": ("mean", "min", "max", "std"),
        "wind_direction": ("mean", "std"),  # [etl] aggregations an angle has
        "yaw_error": ("mean",),
        "energy": ("delta",),
        "status": ("mode", "last"),
    }
    assert rollup.kind("yaw_error") is SignalKind.SIGNED_ANGLE  # declared range [-180, 180]
    assert rollup.kind("wind_direction") is SignalKind.ANGLE
    assert rollup.counters == ["energy"]
    assert rollup.min_coverage == 0.8 and rollup.sampling_interval == timedelta(minutes=1)
    assert settings.etl_signals[-5:] == [
        "wind_direction_std", "yaw_error_mean", "energy_delta", "status_mode", "status_last"
    ]  # fmt: skip
