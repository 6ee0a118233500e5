"""The process supervisor of ``windpipe up``, on real processes (no Typer involved)."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from windpipe.cli.supervisor import STOP_SIGNALS, Child, Stopper, stop_children

PY = sys.executable
#: Prints "ready" once it ignores SIGTERM, then sleeps: a child that never stops by itself.
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready')"


def _started(tmp_path: Path, name: str, code: str) -> Child:
    child = Child(name, [PY, "-u", "-c", code], tmp_path / f"{name}.log")
    child.start(dict(os.environ))
    return child


def _wait_for_line(child: Child, line: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while line not in child.log_path.read_text():
        assert time.monotonic() < deadline, child.log_path.read_text()
        time.sleep(0.05)


def _running(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running: an orphan that ended may stay a zombie until PID 1 reaps it."""
    _, alive = psutil.wait_procs(procs, timeout=1)
    running = []
    for proc in alive:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                running.append(proc)
        except psutil.NoSuchProcess:
            pass
    return running


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


@pytest.fixture
def children() -> Iterator[list[Child]]:
    """Children a test starts; whatever is left of them is killed afterwards."""
    started: list[Child] = []
    yield started
    stop_children(started, grace=0.5)


def test_a_child_logs_to_its_file_in_a_group_of_its_own(
    tmp_path: Path, children: list[Child]
) -> None:
    child = _started(tmp_path, "echo", "import os; print('hello', os.getpgid(0) == os.getpid())")
    children.append(child)
    assert child.wait(threading.Event()) == 0
    log = child.log_path.read_text()
    assert log.startswith("\n--- ") and "UTC windpipe up\n" in log
    assert child.tail(lines=1) == "hello True"  # the child leads its own process group
    child.close_log()
    child.start(dict(os.environ))  # a second start appends to the same log
    assert child.wait(threading.Event()) == 0
    assert child.tail().count("hello True") == 2


def test_wait_returns_none_when_asked_to_stop_first(tmp_path: Path, children: list[Child]) -> None:
    child = _started(tmp_path, "sleeper", "import time; time.sleep(60)")
    children.append(child)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    began = time.monotonic()
    assert child.wait(stop) is None
    assert time.monotonic() - began < 5 and child.exit_code() is None


def test_stop_children_ends_each_group_with_its_descendants(
    tmp_path: Path, children: list[Child]
) -> None:
    # A shell with two background grandchildren: one in its process group, which the group's
    # SIGTERM ends; one in a session of its own, which is still a descendant, so it is killed.
    script = "sleep 60 & setsid sleep 61 & echo ready; wait"
    child = Child("shell", ["sh", "-c", script], tmp_path / "shell.log")
    child.start(dict(os.environ))
    children.append(child)
    _wait_for_line(child, "ready")
    assert child.proc is not None
    leader = psutil.Process(child.proc.pid)

    def escaped_sleeper() -> list[psutil.Process]:  # `setsid` execs `sleep 61` when it gets to it
        return [p for p in leader.children(True) if _cmdline(p) == ["sleep", "61"]]

    deadline = time.monotonic() + 20
    while not escaped_sleeper():
        assert time.monotonic() < deadline, [_cmdline(p) for p in leader.children(True)]
        time.sleep(0.05)
    tree = [leader, *leader.children(True)]
    assert len(tree) == 3
    (escaped,) = escaped_sleeper()
    began = time.monotonic()
    killed = stop_children([child], grace=1)
    assert time.monotonic() - began < 4
    assert f"{escaped.pid} (sleep 61)" in killed
    assert _running(tree) == [] and child.exit_code() is not None


def test_what_ignores_sigterm_is_killed_after_the_grace_period(
    tmp_path: Path, children: list[Child]
) -> None:
    stubborn = _started(tmp_path, "stubborn", STUBBORN + "; time.sleep(60)")
    polite = _started(tmp_path, "polite", "import time; print('ready'); time.sleep(60)")
    children += [stubborn, polite]
    _wait_for_line(stubborn, "ready")
    _wait_for_line(polite, "ready")
    assert stubborn.proc is not None and polite.proc is not None
    procs = [psutil.Process(stubborn.proc.pid), psutil.Process(polite.proc.pid)]
    began = time.monotonic()
    killed = stop_children([stubborn, polite], grace=1.5)
    elapsed = time.monotonic() - began
    assert len(killed) == 1 and killed[0].startswith(f"{stubborn.proc.pid} (")
    assert 1.0 < elapsed < 6
    assert _running(procs) == []


def test_children_are_terminated_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    """A supervisor killed with SIGKILL cannot clean up: Linux sends its children SIGTERM."""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux only")
    supervisor = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        from windpipe.cli.supervisor import Child
        child = Child("sleeper", ["sleep", "60"], Path({str(tmp_path / "sleeper.log")!r}))
        child.start(dict(os.environ))
        print(child.proc.pid, flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([PY, "-c", supervisor], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    grandchild = psutil.Process(int(proc.stdout.readline()))
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _running([grandchild]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _running([grandchild]) == []


@pytest.fixture
def restored_handlers() -> Iterator[None]:
    """The test process's own signal handlers, put back after a test replaces them."""
    saved = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_stopper_turns_signals_into_an_event_and_a_second_one_into_hurry(
    restored_handlers: None,
) -> None:
    stopper = Stopper()
    stopper.install()
    assert not stopper.event.is_set()
    os.kill(os.getpid(), signal.SIGTERM)
    assert stopper.event.wait(5)
    assert (stopper.signal_name, stopper.hurry) == ("SIGTERM", False)
    os.kill(os.getpid(), signal.SIGINT)  # not a KeyboardInterrupt: the stopper handles it
    deadline = time.monotonic() + 5
    while not stopper.hurry and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (stopper.signal_name, stopper.hurry) == ("SIGINT", True)
