"""Which loaded (turbine, day)s went stale: the source's fingerprint moved, or windows closed.

For the change sensor (Dagster) and ``windpipe refresh`` (without it): the source's fingerprints
(``GET /fingerprints``) against what each load recorded (``day_load``). :func:`stale_days` decides
(pure); :func:`find_stale` reads both sides, then decides. A day never loaded is the catch-up's (or
``windpipe backfill``'s), not this.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from windpipe.catalog import EMPTY_FINGERPRINT, day_start, naive_utc, window_floor

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from windpipe.etl.extract import ApiClient


@dataclass(frozen=True)
class Stale:
    """A loaded (turbine, day) whose aggregates no longer match the source, and why."""

    turbine: str
    day: date
    reason: str  # "changed": samples added, removed or rewritten; "closed": windows closed since
    fingerprint: str  # the source's now

    @property
    def key(self) -> str:
        """How the sensor's cursor names this request (a new fingerprint is a new request)."""
        return f"{self.turbine}/{self.day.isoformat()}/{self.fingerprint}/{self.reason}"


def stale_days(
    source: Mapping[tuple[str, date], str],
    loaded: Mapping[tuple[str, date], tuple[str, datetime]],
    *,
    now: datetime,
    close_margin: timedelta,
    window: timedelta,
) -> list[Stale]:
    """The loaded (turbine, day)s to materialize again, by day then turbine.

    ``source``: fingerprints now (a pair absent holds no samples); ``loaded``: per pair, the
    fingerprint its load read and up to when its windows were complete (aware UTC).
    """
    closed_by = window_floor(now - close_margin, window)  # naive UTC
    stale = []
    for (turbine, day), (loaded_print, complete_until) in loaded.items():
        current = source.get((turbine, day), EMPTY_FINGERPRINT)
        if current != loaded_print:
            stale.append(Stale(turbine, day, "changed", current))
            continue
        day_end = day_start(day) + timedelta(days=1)
        if naive_utc(complete_until) < min(day_end, closed_by):
            stale.append(Stale(turbine, day, "closed", current))
    return sorted(stale, key=lambda s: (s.day, s.turbine))


def find_stale(
    client: "ApiClient",
    engine: "Engine",
    turbines: Sequence[str],
    first: date,
    last: date,
    *,
    now: datetime,
    close_margin: timedelta,
    window: timedelta,
) -> list[Stale]:
    """:func:`stale_days` of ``turbines`` over ``[first, last]``: the source's fingerprints in one
    API request, what the loads recorded in one target query."""
    from windpipe.warehouse.reads import loaded_fingerprints

    source = client.fingerprints(first, last, turbines)
    with engine.connect() as conn:
        loaded = loaded_fingerprints(conn, first, last)
    mine = {pair: held for pair, held in loaded.items() if pair[0] in turbines}
    return stale_days(source, mine, now=now, close_margin=close_margin, window=window)
