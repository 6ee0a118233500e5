"""Child processes with logs, stopped as a group: what ``windpipe up`` supervises.

Each child runs in its own session (so its process group can be signalled as a whole) with its
output appended to a log file; on Linux it gets SIGTERM if the supervisor dies without cleaning
up. ``stop_children`` stops them gracefully, then kills what is left after a grace period.
No Typer and no console here: the caller decides what to say.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import psutil

#: Seconds each child group has to exit after SIGTERM before it is killed.
GRACE_SECONDS = 8.0
#: The signals that ask a supervisor to stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Ask Linux to SIGTERM this child if its parent dies without cleaning up (e.g. SIGKILL)."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    """A supervised child process: its command, its log file and, once started, its process."""

    name: str
    argv: list[str]
    log_path: Path
    proc: "subprocess.Popen[bytes] | None" = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str], *, banner: str = "windpipe up") -> None:
        """Start in a new session (own process group), output appended to the log file."""
        self._log = self.log_path.open("ab")
        self._log.write(f"\n--- {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC {banner}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            # Forking with threads running is unsafe for preexec_fn: start children before threads.
            preexec_fn=_die_with_parent,
        )

    def exit_code(self) -> int | None:
        """The exit code once the process has ended, else None."""
        return None if self.proc is None else self.proc.poll()

    def wait(self, stop: threading.Event, *, poll: float = 0.1) -> int | None:
        """Wait for the child to end, or for ``stop``; its exit code, None when stopped first."""
        while not stop.is_set():
            code = self.exit_code()
            if code is not None:
                return code
            time.sleep(poll)
        return None

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the child's whole process group."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def close_log(self) -> None:
        """Close the supervisor's handle on the log file."""
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 15) -> str:
        """The last lines of the log, to explain a crash."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])


def _describe(proc: "psutil.Process") -> str:
    import psutil

    try:
        words = proc.cmdline()
    except psutil.Error:
        return str(proc.pid)
    name = " ".join(Path(w).name for w in words[:4] if not w.startswith("-") or w == "-m")
    return f"{proc.pid} ({name[:60]})"


def _ended(proc: "psutil.Process") -> bool:
    """Whether ``proc`` has exited: gone, or a zombie (an orphan waits for PID 1 to reap it,
    which may take a while in a container; it holds no port and runs nothing)."""
    import psutil

    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_ended(procs: "list[psutil.Process]", timeout: float) -> "list[psutil.Process]":
    """Wait until every process in ``procs`` has ended, at most ``timeout`` s; those still alive."""
    deadline = time.monotonic() + timeout
    alive = [p for p in procs if not _ended(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if not _ended(p)]
    return alive


def stop_children(children: list[Child], *, grace: float = GRACE_SECONDS) -> list[str]:
    """Stop every child and its descendants; return those that had to be killed.

    The children stop one by one, the last started first, each while those started before it
    still run: the Dagster daemon finishes a sensor tick or a run launch against a code server
    and an API that still answer, instead of waiting on them while they shut down too. Then
    whatever is left in the child process groups (a run in progress) gets SIGTERM; after
    ``grace`` seconds in all, survivors are killed.
    """
    import psutil

    deadline = time.monotonic() + grace
    tree = []
    for child in children:
        if child.proc is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                leader = psutil.Process(child.proc.pid)
                tree += [leader, *leader.children(recursive=True)]
    in_order = [c for c in reversed(children) if c.proc is not None and c.proc.poll() is None]
    for number, child in enumerate(in_order):
        assert child.proc is not None
        with contextlib.suppress(ProcessLookupError):
            child.proc.send_signal(signal.SIGTERM)
        try:
            child.proc.wait(timeout=max(0.0, deadline - time.monotonic() - grace / 3))
        except subprocess.TimeoutExpired:  # out of time: the others are asked at once
            for rest in in_order[number + 1 :]:
                assert rest.proc is not None
                with contextlib.suppress(ProcessLookupError):
                    rest.proc.send_signal(signal.SIGTERM)
            break
    for child in children:
        child.signal_group(signal.SIGTERM)
    alive = _wait_ended(tree, max(0.1, deadline - time.monotonic()))
    killed = [_describe(p) for p in alive]
    for child in children:
        child.signal_group(signal.SIGKILL)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    _wait_ended(alive, 3)
    for child in children:
        if child.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=1)
        child.close_log()
    return killed


def default_stop_signals() -> None:
    """Give the stop signals their default action, for a program about to be exec'd.

    A signal ignored here stays ignored across ``exec`` (a script's background job inherits an
    ignored SIGINT), and Python then installs no KeyboardInterrupt for it: Dagster's processes,
    which map SIGTERM to whatever SIGINT does, would then ignore both.
    """
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)


class Stopper:
    """Turns SIGINT/SIGTERM/SIGHUP into an event; a second signal asks to hurry.

    Installing it replaces whatever the process inherited, an ignored SIGINT included (POSIX
    shells start a script's background jobs with SIGINT and SIGQUIT ignored).
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.hurry = False
        self.signal_name = ""

    @property
    def exit_code(self) -> int:
        """128 + the number of the signal that asked to stop (130 for SIGINT), else 0."""
        return 128 + signal.Signals[self.signal_name] if self.signal_name else 0

    def install(self) -> None:
        """Handle the stop signals from now on (main thread only, as Python requires)."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)

    @contextlib.contextmanager
    def installed(self) -> "Iterator[Stopper]":
        """Handle the stop signals within the block, then put back the handlers there were."""
        saved = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
        self.install()
        try:
            yield self
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, signal.SIG_DFL if handler is None else handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            self.hurry = True
        self.signal_name = signal.Signals(signum).name
        self.event.set()
