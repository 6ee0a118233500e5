"""The layering stays true without anyone remembering it: contracts, no import cycles, one owner
per database."""

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import grimp

from windpipe.source import models as source_models
from windpipe.warehouse import models as warehouse_models

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "windpipe"
#: Each database's owner package (a folder of src/windpipe) and the tables its models declare.
OWNERS: dict[str, set[str]] = {
    "source": set(source_models.metadata.tables),
    "warehouse": set(warehouse_models.metadata.tables),
}
#: Folders that are tools' environments, caches or run-time state, not the project's layout.
NOT_LAYOUT = {
    ".git",
    ".venv",
    ".tools",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    ".windpipe",
    ".schemathesis",
    "__pycache__",
    "node_modules",
}


def _statements(tables: Iterable[str]) -> re.Pattern[str]:
    """A statement naming one of ``tables``: FROM/INTO/JOIN/UPDATE/COPY/TABLE <table>."""
    names = "|".join(sorted(map(re.escape, tables)))
    return re.compile(rf'\b(?:FROM|INTO|JOIN|UPDATE|COPY|TABLE)\s+"?(?:{names})\b(?!\w)', re.I)


def _cycles(nodes: Iterable[str], edges: Callable[[str], Iterable[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _graph() -> grimp.ImportGraph:
    # grimp reads every import statement, those inside functions included.
    return grimp.build_graph("windpipe", exclude_type_checking_imports=True)


def _folder(module: str) -> str:
    """The top-level folder (or ground-floor module) of src/windpipe that ``module`` is in."""
    return ".".join(module.split(".")[:2])


def test_no_import_cycles_even_through_function_level_imports() -> None:
    graph = _graph()
    assert _cycles(graph.modules, graph.find_modules_directly_imported_by) == []


def test_no_import_cycles_between_top_level_folders() -> None:
    """Squashed to its top-level folder (api, etl, source, warehouse ...), the import graph has no
    loop: a folder that imports another is never imported back, not even by a function."""
    graph = _graph()
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.startswith("windpipe.") and _folder(imported) != _folder(module):
                edges.setdefault(_folder(module), set()).add(_folder(imported))
    folders = {_folder(m) for m in graph.modules if m != "windpipe"}
    assert _cycles(folders, lambda folder: edges.get(folder, set())) == []


def test_a_schema_history_imports_only_its_models() -> None:
    """An ``env.py`` that imported more of its owner could import the migration runner back."""
    graph = _graph()
    for owner in OWNERS:
        history = f"windpipe.{owner}.migrations"
        for module in graph.find_descendants(history) | {history}:
            imported = {
                m
                for m in graph.find_modules_directly_imported_by(module)
                if m.startswith("windpipe")
            }
            assert imported <= {f"windpipe.{owner}.models"}, module


def test_the_import_contracts_hold() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports"))],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "broken" in done.stdout and " 0 broken" in done.stdout


def test_no_sql_on_a_database_s_tables_outside_its_owner() -> None:
    """Every statement on a table lives in the package that owns its database: ``source`` (its
    ``data``, ``day_fingerprint``, ``turbine_origin``) or ``warehouse`` (the target's ``data``,
    ``signal``, ``day_load``), migrations included. ``data`` is a table of both."""
    allowed: dict[str, set[str]] = {}
    for owner, tables in OWNERS.items():
        for table in tables:
            allowed.setdefault(table, set()).add(owner)
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        folder = relative.split("/")[0]
        text = path.read_text()
        for table, owners in sorted(allowed.items()):
            if folder in owners:
                continue
            for match in _statements([table]).finditer(text):
                offenders.append(f"{relative}: {match.group(0)} (owned by {sorted(owners)})")
    assert offenders == []


def test_the_owners_declare_the_tables_the_check_looks_for() -> None:
    assert {
        "source": {"data", "day_fingerprint", "turbine_origin", "turbine_event", "event_change"},
        "warehouse": {
            "data",
            "signal",
            "day_load",
            "window_flag",
            "flag_day",
            "turbine_day_kpi",
            "turbine_day_loss",
        },
    } == OWNERS


def test_no_folder_is_named_target() -> None:
    """Tools and many global ignore files treat ``target/`` as build output: a folder of that name
    could silently never be committed (the target database's owner is ``warehouse``)."""
    found = []
    for directory, folders, _ in os.walk(ROOT):
        folders[:] = [f for f in folders if f not in NOT_LAYOUT]
        found += [
            Path(directory, f).relative_to(ROOT).as_posix()
            for f in folders
            if f.lower() == "target"
        ]
    assert found == []


def test_the_turbine_id_pattern_is_written_once() -> None:
    """The id rule lives in ``catalog.TURBINE_ID``: settings, importer, API and SQL use it."""
    pattern = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
    written = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "src" / "windpipe").rglob("*.py"))
        if pattern in path.read_text()
    ]
    assert written == ["src/windpipe/catalog.py"]
