"""The README does not lie: its settings table and its commands match the code."""

import re
from pathlib import Path

import typer.main

from windpipe.cli import app
from windpipe.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented_and_nothing_else() -> None:
    documented = set(re.findall(r"^\| `(WINDPIPE_[A-Z_]+)` \|", README, flags=re.MULTILINE))
    fields = {f"WINDPIPE_{name.upper()}" for name in Settings.model_fields}
    assert documented == fields


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in README
    assert re.search(r"^make test$", (ROOT / ".ci/run").read_text(), flags=re.MULTILINE)


def test_every_command_in_the_table_exists() -> None:
    group = typer.main.get_command(app)
    commands = set(re.findall(r"^\| `windpipe ([a-z]+)", README, flags=re.MULTILINE))
    assert commands <= set(group.commands), commands - set(group.commands)  # type: ignore[attr-defined]
