"""What a newcomer reads: messages in words, not Python reprs, and each with its way out."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from windpipe.api.schemas import span_text
from windpipe.errors import ConfigError, WindpipeError
from windpipe.etl.session import chosen_turbines
from windpipe.settings import ImportConfig, TurbineConfig, load_settings
from windpipe.source.importer import plan


def windpipe(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "windpipe", *args],
        env={**(os.environ if env is None else env), "COLUMNS": "200"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def without_config() -> dict[str, str]:
    """The environment with no WINDPIPE_CONFIG: the working directory's windpipe.toml, if any."""
    return {k: v for k, v in os.environ.items() if k != "WINDPIPE_CONFIG"}


def test_version_answers_before_the_command_line_is_built() -> None:
    code = (
        "import sys; sys.argv = ['windpipe', '--version']\n"
        "from windpipe.__main__ import main; main()\n"
        "print(sorted(m for m in ('typer', 'rich', 'windpipe.cli') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["windpipe 0.1.0", "[]"]


def test_config_show_without_a_file_says_the_defaults_are_in_force(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "windpipe", "config", "show"],
        env=without_config(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("WINDPIPE_CONFIG="))
    assert line == (
        f"WINDPIPE_CONFIG=-  # no windpipe.toml (in {tmp_path}): no file, the defaults are in force"
    )


def test_import_help_keeps_the_toml_tables() -> None:
    done = windpipe("import", "--help", cwd=Path.cwd())
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "[[turbines]]" in text
    assert "[imports.<name>]" in text


def test_an_unknown_key_suggests_the_close_ones(tmp_path: Path) -> None:
    (tmp_path / "windpipe.toml").write_text(
        'api_prot = 8100\n[[turbines]]\nid = "WTG01"\nrated_power = 2000\n'
    )
    done = windpipe("config", "show", cwd=tmp_path, env=without_config())
    assert done.returncode == 2
    assert "unknown key api_prot (did you mean api_port" in done.stderr

    (tmp_path / "windpipe.toml").write_text('[[turbines]]\nid = "WTG01"\nrated_power = 2000\n')
    done = windpipe("config", "show", cwd=tmp_path, env=without_config())
    assert "turbines[0].rated_power: unknown key (did you mean rated_power_kw?)" in done.stderr

    (tmp_path / "windpipe.toml").write_text('[etl]\nwindw = "10min"\n')
    done = windpipe("config", "show", cwd=tmp_path, env=without_config())
    assert "unknown key etl.windw (did you mean window?)" in done.stderr


def test_mapping_without_a_configuration_file_says_none_was_found(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text("timestamp,turbine,power\n2024-01-01T00:00:00Z,WTG01,1\n")
    done = windpipe(
        "import",
        str(export),
        "--mapping",
        "haute_borne",
        "--dry-run",
        cwd=tmp_path,
        env=without_config(),
    )
    assert done.returncode == 1
    assert "--mapping haute_borne: no configuration file" in done.stderr
    assert f"windpipe.toml was not found (in {tmp_path})" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("header", "option"),
    [
        ("timestamp;turbine;power", "--delimiter ';'"),
        ("timestamp\tturbine\tpower", "--delimiter $'\\t'"),
    ],
)
def test_a_wrong_delimiter_is_named_with_the_option(
    tmp_path: Path, header: str, option: str
) -> None:
    export = tmp_path / "export.csv"
    sep = header[9]
    export.write_text(f"{header}\n2024-01-01T00:00:00Z{sep}WTG01{sep}1\n")
    with pytest.raises(WindpipeError) as refused:
        plan(export, ImportConfig(), ["wind_speed", "power"])
    message = str(refused.value)
    assert "line 1 reads as one column with the delimiter ','" in message
    assert f"give {option}" in message
    assert "[imports.<name>] mapping" in message
    # The right delimiter reads it.
    assert plan(export, ImportConfig(delimiter=sep), ["power"]).mapped == {"power": "power"}


def test_missing_columns_are_listed_in_words(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text("timestamp,turbine,power\n2024-01-01T00:00:00Z,WTG01,1\n")
    with pytest.raises(WindpipeError, match=r"line 1: columns Ws_avg, Ot_avg not in the file"):
        plan(
            export,
            ImportConfig(columns={"Ws_avg": "wind_speed", "Ot_avg": "power"}),
            ["wind_speed", "power"],
        )


def test_unknown_turbines_are_named_with_the_known_ones(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        turbines=[TurbineConfig(id="WTG01"), TurbineConfig(id="WTG03")],
        _env_file=None,
    )
    with pytest.raises(ConfigError) as refused:
        chosen_turbines(settings, ["WTG02"])
    assert str(refused.value) == "unknown turbine WTG02; known: WTG01, WTG03"
    with pytest.raises(ConfigError, match="unknown turbines WTG02, WTG04; known"):
        chosen_turbines(settings, ["WTG02", "WTG04"])


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(days=2527), "2,527 days"),
        (timedelta(days=366, seconds=1), "366 days and 1 second"),
        (timedelta(days=1, hours=2, minutes=30), "1 day, 2 hours and 30 minutes"),
        (timedelta(0), "0 seconds"),
    ],
)
def test_spans_read_as_words(span: timedelta, text: str) -> None:
    assert span_text(span) == text
