"""The README and the docs/ pages do not lie: their settings, commands, examples and links match
the code, and their curl examples answer with data when run as written."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import typer.main
from sqlalchemy.engine import URL

from tests.conftest import new_database, serve
from windpipe.api import create_app
from windpipe.cli import app
from windpipe.postgres import libpq_conninfo
from windpipe.settings import Settings, load_settings
from windpipe.source.seed import default_period, seed_source
from windpipe.source.store import ensure_schema

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
#: The README and every page it links under docs/: what a reader is told.
PAGES = {"README.md": README} | {
    f"docs/{p.name}": p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))
}
ALL = "\n".join(PAGES.values())


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def test_the_file_map_shows_the_package_as_it_is() -> None:
    """Every top-level folder and module of src/windpipe is in the README's file map, and every
    file a line of it names exists in that folder."""
    found = re.search(r"^```\n(src/windpipe/\n.*?)^```", README, flags=re.MULTILINE | re.DOTALL)
    assert found is not None
    block = found.group(1)
    package = ROOT / "src" / "windpipe"
    entries: dict[str, str] = {}
    for line in block.splitlines()[1:]:
        match = re.match(r"  (\S+)\s+(.*)", line)
        if match:
            current = match.group(1)
            entries[current] = match.group(2)
        elif line.startswith(" ") and entries:
            entries[current] += " " + line.strip()
    on_disk = {
        p.name + ("/" if p.is_dir() else "")
        for p in package.iterdir()
        if p.name != "__pycache__" and not p.name.startswith("__")
    }
    assert set(entries) == on_disk
    for entry, text in entries.items():
        if entry.endswith("/"):
            for name in re.findall(r"\b([a-z_]+\.py|[a-z_]+/)", text):
                assert (package / entry / name).exists(), f"{entry}{name}"


def test_every_setting_is_documented_and_nothing_else() -> None:
    documented = set(re.findall(r"^\| `(WINDPIPE_[A-Z_]+)` \|", ALL, flags=re.MULTILINE))
    fields = {f"WINDPIPE_{name.upper()}" for name in Settings.model_fields}
    assert documented == fields


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in README
    assert re.search(r"^make test$", (ROOT / ".ci/run").read_text(), flags=re.MULTILINE)


def test_every_command_in_the_table_and_the_examples_exists() -> None:
    group = typer.main.get_command(app)
    known = set(group.commands)  # type: ignore[attr-defined]
    commands = set(re.findall(r"^\| `windpipe ([a-z][a-z-]*)", README, flags=re.MULTILINE))
    assert commands <= known, commands - known
    for name, text in PAGES.items():
        for block in _blocks(text, "bash"):
            used = set(re.findall(r"^windpipe ([a-z][a-z-]*)", block, flags=re.MULTILINE))
            assert used <= known, (name, used - known)


def test_the_readme_opens_with_the_farm_file() -> None:
    first_screen = "\n".join(README.splitlines()[:60])
    assert "windpipe.toml" in first_screen and "## A farm in five minutes" in first_screen


@pytest.mark.parametrize(
    "page", ["README.md", "docs/configuration.md", "docs/import.md"], ids=lambda p: p
)
def test_every_toml_example_is_a_valid_configuration(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = _blocks(PAGES[page], "toml")
    assert blocks
    for block in blocks:
        (tmp_path / "windpipe.toml").write_text(block)
        monkeypatch.setenv("WINDPIPE_CONFIG", str(tmp_path / "windpipe.toml"))
        load_settings(data_dir=tmp_path, _env_file=None)  # raises on any bad key or value


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_relative_link_and_anchor_resolves() -> None:
    for name, text in PAGES.items():
        here = (ROOT / name).parent
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (here / path).resolve() if path else ROOT / name
            assert file.exists(), (name, target)
            if anchor:
                prose = re.sub(r"^```.*?^```", "", file.read_text(), flags=re.M | re.S)
                headings = re.findall(r"^#+ (.+)$", prose, flags=re.MULTILINE)
                assert anchor in {_slug(h) for h in headings}, (name, target)


def test_no_tracker_numbers_in_the_docs_or_the_code() -> None:
    texts = dict(PAGES)
    for folder in ("src", "tests", "bench"):
        texts |= {str(p): p.read_text() for p in (ROOT / folder).rglob("*.py")}
    found = {
        name: hits
        for name, text in texts.items()
        if (hits := re.findall(r"\bissues? ?#?\d+\b", text, flags=re.IGNORECASE))
    }
    assert not found  # say what and why instead


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_curl_examples_answer_with_data_as_written(settings: Settings, target_url: URL) -> None:
    """The docs' curl lines, run by bash against a source seeded as `windpipe seed` seeds it
    (only the address differs), answer 200 with rows: their dates lie in the seeded period."""
    lines = [
        line
        for text in PAGES.values()
        for block in _blocks(text, "bash")
        if "curl " in block
        for line in block.splitlines()
    ]
    assert any("/data?" in line for line in lines)
    with new_database(target_url, "windpipe_readme_source") as source:
        ensure_schema(source)
        seed_source(source, *default_period())
        app_ = create_app(settings, source_conninfo=libpq_conninfo(source.url))
        with serve(app_) as api:
            for line in lines:
                if not line.startswith(("curl ", "day=")):
                    continue
                script = "\n".join(x for x in lines if x.startswith("day="))
                command = line.replace("http://127.0.0.1:8000", api.url)
                done = subprocess.run(
                    ["bash", "-c", f"{script}\n{command} --fail --silent --show-error"],
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                assert done.returncode == 0, (line, done.stderr)
                if "/data?" not in line:
                    continue
                if "text/csv" in line:
                    assert len(done.stdout.splitlines()) > 2, (line, done.stdout[:200])
                else:
                    assert json.loads(done.stdout), (line, done.stdout[:200])


#: What the README's SCADA example aggregates, each as its kind says.
SCADA_SIGNALS = {
    *(f"{v}_{a}" for v in ("wind_speed", "power") for a in ("mean", "min", "max", "std")),
    *(f"{v}_{a}" for v in ("pitch_angle", "rotor_speed") for a in ("mean", "min", "max", "std")),
    *(f"{v}_{a}" for v in ("wind_direction", "nacelle_direction") for a in ("mean", "std")),
    "energy_delta",
    "energy_last",
    "status_mode",
    "status_last",
}


def scada_example() -> str:
    """The README's windpipe.toml of the synthetic farm's SCADA signals."""
    (block,) = [b for b in _blocks(README, "toml") if "[signals.nacelle_direction]" in b]
    return block


def test_the_readme_scada_example_declares_every_generated_signal_with_its_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from windpipe.catalog import SignalKind
    from windpipe.source.generator import COLUMNS

    (tmp_path / "windpipe.toml").write_text(scada_example())
    monkeypatch.setenv("WINDPIPE_CONFIG", str(tmp_path / "windpipe.toml"))
    settings = load_settings(data_dir=tmp_path, _env_file=None)
    assert set(settings.signals) == set(COLUMNS) - {"turbine", "timestamp"}
    rollup = settings.rollup
    assert set(rollup.signals) == SCADA_SIGNALS
    kinds = {v: rollup.kind(v) for v in rollup.variables}
    assert kinds["wind_direction"] is kinds["nacelle_direction"] is SignalKind.ANGLE
    assert kinds["energy"] is SignalKind.COUNTER and kinds["status"] is SignalKind.STATE
    assert kinds["pitch_angle"] is kinds["rotor_speed"] is SignalKind.LINEAR
    assert all(s.unit for n, s in settings.signals.items() if n != "status")
    assert all(s.range is not None for s in settings.signals.values())
    # Without a file, still the brief's eight signals.
    monkeypatch.delenv("WINDPIPE_CONFIG")
    default = load_settings(data_dir=tmp_path / "none", _env_file=None).rollup.signals
    assert len(default) == 8 and set(default) < SCADA_SIGNALS
