"""The layering stays true without anyone remembering it: contracts and no import cycles."""

import re
import subprocess
import sys
from pathlib import Path

import grimp

#: A statement naming one of the tables: FROM/INTO/JOIN/UPDATE/COPY/TABLE data or signal.
STATEMENT = re.compile(r'\b(?:FROM|INTO|JOIN|UPDATE|COPY|TABLE)\s+"?(?:data|signal)\b(?!\w)', re.I)

ROOT = Path(__file__).resolve().parents[1]


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
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
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
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


def test_no_import_cycles_even_through_function_level_imports() -> None:
    graph = grimp.build_graph("windpipe", exclude_type_checking_imports=True)
    assert _cycles(graph) == []


def test_the_import_contracts_hold() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports"))],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "broken" in done.stdout and " 0 broken" in done.stdout


def test_no_sql_against_the_tables_outside_their_stores() -> None:
    """Statements on ``data``/``signal`` live in their stores only: source/store.py (the
    source), etl/store.py (the target's writes and orchestration's reads) and target/reads.py
    (the API's reads of the target, which may not import the ETL)."""
    owners = {"source/store.py", "etl/store.py", "target/reads.py"}
    package = ROOT / "src" / "windpipe"
    offenders = []
    for path in package.rglob("*.py"):
        relative = path.relative_to(package).as_posix()
        if relative in owners or relative.startswith("migrations/"):
            continue
        for match in STATEMENT.finditer(path.read_text()):
            offenders.append(f"{relative}: {match.group(0)}")
    assert offenders == []
