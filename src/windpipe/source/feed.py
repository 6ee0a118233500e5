"""The live feed: the synthetic farm's samples appended as the clock passes each minute, and its
events (:data:`~windpipe.source.generator.EVENT_CODES`) opened when a state begins, ongoing while it
lasts, and closed at the first minute after it (:func:`~windpipe.source.seed.append_minutes`).

One loop for ``windpipe seed --follow`` (in the foreground) and ``windpipe up`` (in a thread). It
keeps going through database errors, reporting the first of each run of failures, so the feed
resumes by itself when the database is back.
"""

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ParamSpec

from windpipe.errors import first_line

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from windpipe.source.generator import TurbineSpec

P = ParamSpec("P")


def seconds_to_next_minute() -> float:
    """Seconds until just after the next minute starts (its sample then exists)."""
    return 60.0 - time.time() % 60.0 + 0.5


def run_feed(
    engine: "Engine",
    stop: threading.Event,
    *,
    seed: int,
    turbines: "Sequence[TurbineSpec] | None" = None,
    columns: Sequence[str] | None = None,
    on_append: Callable[[int], None] | None = None,
    on_error: Callable[[str], None] | None = None,
    pause: Callable[[], float] = seconds_to_next_minute,
    max_iterations: int | None = None,
) -> int:
    """Append the minutes the clock has passed, then wait ``pause()`` s, until ``stop`` is set.

    ``on_append`` gets the number of samples each round added (when it added any); ``on_error`` a
    one-line reason, once per run of failures. Returns the number of samples added in all.
    """
    from windpipe.source.generator import DEFAULT_TURBINE
    from windpipe.source.seed import append_minutes

    fleet = list(turbines or (DEFAULT_TURBINE,))

    added_in_all = rounds = 0
    failing = False
    while not stop.is_set() and (max_iterations is None or rounds < max_iterations):
        rounds += 1
        try:
            added = append_minutes(
                engine, until=datetime.now(UTC), turbines=fleet, seed=seed, columns=columns
            )
        except Exception as exc:  # a database that went away: try again next minute
            if not failing and on_error is not None:
                on_error(f"{type(exc).__name__}: {first_line(exc)}")
            failing = True
        else:
            failing = False
            added_in_all += added
            if added and on_append is not None:
                on_append(added)
        if max_iterations is None or rounds < max_iterations:
            stop.wait(pause())
    return added_in_all


def _in_a_thread(run: Callable[P, object], name: str) -> Callable[P, threading.Thread]:
    """``run`` as a function that starts it in a daemon thread called ``name`` and returns the
    thread; it takes ``run``'s arguments."""

    def start(*args: P.args, **kwargs: P.kwargs) -> threading.Thread:
        thread = threading.Thread(target=run, args=args, kwargs=kwargs, name=name, daemon=True)
        thread.start()
        return thread

    return start


#: :func:`run_feed` in a daemon thread, started, with the same arguments; set ``stop`` to end it.
start_feed = _in_a_thread(run_feed, "live-feed")
