"""One path through the ETL for every caller (CLI, Dagster, tests): a day, or a range of days.

Each UTC day ``[d 00:00, d+1 00:00)`` is fetched from the API as Arrow, aggregated to 10-minute
windows and replaced in the target in its own transaction. ``run_range`` downloads the next days
while the current one is aggregated and loaded, so the API and the ETL work at the same time.

Never stale, never a step back: the source's fingerprint of each (turbine, day) is read before its
samples, and checked again under the day's lock before loading; if the source moved meanwhile, the
day is fetched again, so the run that loads last carries the newest source state. The fingerprint
is recorded with the aggregates (``day_load``), for the change sensor. Only windows that ended
``close_margin`` ago are written: the live edge's window still filling waits for a later run.
"""

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

import polars as pl
from sqlalchemy import Engine

from windpipe import catalog
from windpipe.catalog import (
    DEFAULT_TURBINE_ID,
    EMPTY_FINGERPRINT,
    WINDOW,
    Rollup,
    days_between,
    window_floor,
)
from windpipe.errors import EtlError
from windpipe.etl.extract import ApiClient
from windpipe.etl.transform import aggregate, non_finite_counts
from windpipe.warehouse.store import DayRecord, SourceMovedError, ensure_schema, replace_window

log = logging.getLogger(__name__)

DAY_SECONDS = 86_400
#: Sampling step assumed for the coverage of a day holding fewer than two samples.
DEFAULT_STEP_SECONDS = 60.0
#: Days per API request in ``run_range``: each request costs the API and the source DB a fixed
#: ~15 ms, so four 1 Hz days per request move ~30 % more rows per second than one.
FETCH_DAYS = 4
#: Requests in flight while earlier days are aggregated and loaded.
PREFETCH_REQUESTS = 2
#: Samples one request should carry at most: a day holding more (a farm at 1 Hz) is fetched in
#: groups of turbines, requested side by side and aggregated as they come, each group's day
#: loaded in its own transaction; fewer, and consecutive days share a request (up to FETCH_DAYS).
REQUEST_SAMPLES = 250_000
#: Fetches of a day whose source keeps changing before it is loaded as last fetched (its older
#: fingerprint recorded, so the change sensor runs it again).
MOVED_ATTEMPTS = 3
#: How long ago a window must have ended to be written (Settings.etl_close_margin_minutes).
CLOSE_MARGIN = timedelta(minutes=2)
Prints = dict[tuple[str, date], str]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DayResult:
    """What one day's run read, computed and wrote, over the turbines it covered."""

    day: date
    rows_read: int
    windows: int  # (turbine, window) pairs with aggregates
    rows_written: int
    coverage: float  # share of the expected samples present, 0..1, mean over the turbines
    seconds: float
    turbines: int = 1
    #: Per turbine: samples read and coverage (as ``rows_read`` and ``coverage`` above).
    by_turbine: dict[str, tuple[int, float]] = field(default_factory=dict)
    #: NaN/±Inf values left out of the aggregates (every turbine and variable).
    non_finite: int = 0
    #: Windows ending by then are written (the day's end, or the live edge's last closed window).
    complete_until: datetime | None = None
    #: Fetches the day took (more than one when the source changed before it was loaded).
    fetches: int = 1


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """``[day 00:00, day+1 00:00)`` as naive UTC datetimes; an EtlError for the calendar's end."""
    try:
        return catalog.day_bounds(day)
    except ValueError as exc:
        raise EtlError(str(exc)) from None


def turbine_figures(samples: pl.DataFrame, turbines: Sequence[str]) -> dict[str, tuple[int, float]]:
    """Per turbine: samples read and :func:`day_coverage` (a silent turbine: 0 and 0.0)."""
    if "turbine" not in samples.columns or len(turbines) <= 1:
        return {t: (samples.height, day_coverage(samples)) for t in turbines}
    figures = {t: (0, 0.0) for t in turbines}
    for part in samples.partition_by("turbine", maintain_order=True):
        figures[str(part["turbine"][0])] = (part.height, day_coverage(part))
    return figures


def day_coverage(samples: pl.DataFrame) -> float:
    """Share of a day's expected samples that are present, assuming its median sampling step."""
    n = samples.height
    if n == 0:
        return 0.0
    step = DEFAULT_STEP_SECONDS
    if n >= 2:
        median = samples["timestamp"].diff().dt.total_microseconds().median()
        if isinstance(median, int | float) and median > 0:
            step = float(median) / 1e6
    return min(1.0, n / (DAY_SECONDS / step))


Unit = tuple[list[date], list[str]]  # consecutive days, and the turbines one request fetches


def plan_requests(
    days: Sequence[date], turbines: Sequence[str], samples: dict[tuple[str, date], int]
) -> list[Unit]:
    """The requests of a run, in order: ``FETCH_DAYS`` days of every turbine per request, fewer
    days when they hold over ``REQUEST_SAMPLES`` samples, and a day holding more split into
    groups of turbines of about that many samples each (``samples``: per (turbine, day))."""
    units: list[Unit] = []
    batch: list[date] = []
    held = 0
    for day in days:
        per_turbine = [samples.get((t, day), 0) for t in turbines]
        total = sum(per_turbine)
        if total > REQUEST_SAMPLES and len(turbines) > 1:
            if batch:
                units.append((batch, list(turbines)))
                batch, held = [], 0
            groups = min(len(turbines), -(-total // REQUEST_SAMPLES))
            share = total / groups
            # Each turbine goes to the group its samples' midpoint falls in: balanced groups of
            # consecutive turbines, every group non-empty when the turbines hold alike.
            split: list[list[str]] = [[] for _ in range(groups)]
            before = 0
            for turbine, count in zip(turbines, per_turbine, strict=True):
                split[min(groups - 1, int((before + count / 2) // share))].append(turbine)
                before += count
            units.extend(([day], group) for group in split if group)
            continue
        if batch and (len(batch) == FETCH_DAYS or held + total > REQUEST_SAMPLES):
            units.append((batch, list(turbines)))
            batch, held = [], 0
        batch.append(day)
        held += total
    if batch:
        units.append((batch, list(turbines)))
    return units


class Fetched(NamedTuple):
    """One UTC day's samples of ``turbines``, and the source's fingerprints read just before."""

    day: date
    samples: pl.DataFrame
    prints: Prints
    turbines: Sequence[str]
    #: The counters' last values before the day (None: no counter aggregated).
    previous: pl.DataFrame | None = None


def rollup_of(
    rollup: Rollup | None,
    variables: Sequence[str] | None,
    aggregations: Sequence[str] | None,
) -> Rollup:
    """``rollup``, or linear ``variables`` x ``aggregations`` (what callers before signal kinds
    passed); TypeError for both or neither."""
    if rollup is not None:
        if variables is not None or aggregations is not None:
            raise TypeError("give a rollup, or variables and aggregations, not both")
        return rollup
    if variables is None or aggregations is None:
        raise TypeError("give a rollup, or variables and aggregations")
    return Rollup.of(variables, aggregations)


def last_values(samples: pl.DataFrame, variables: Sequence[str]) -> pl.DataFrame:
    """Per turbine, the last sample holding each of ``variables`` (a counter's starting point
    for the day after)."""
    by = ["turbine"] if "turbine" in samples.columns else []
    parts = [
        samples.filter(pl.col(v).is_not_null())
        .group_by(by or pl.lit(0).alias("_all"), maintain_order=True)
        .agg(pl.col("timestamp").last(), pl.col(v).last())
        .select(*by, "timestamp", v)
        for v in variables
        if v in samples.columns
    ]
    return pl.concat(parts, how="diagonal") if parts else samples.select(*by, "timestamp").clear()


@dataclass(frozen=True)
class _Job:
    """What one run fetches with, computes and loads into: the steps of each day share it."""

    client: ApiClient
    engine: Engine
    rollup: Rollup
    window: timedelta

    @property
    def variables(self) -> list[str]:
        return self.rollup.variables

    def fetch(
        self, days: Sequence[date], turbines: Sequence[str]
    ) -> tuple[list[pl.DataFrame], Prints, list[pl.DataFrame | None]]:
        """The samples of consecutive ``days`` of ``turbines``, in one request, per day; the
        source's fingerprints of those days, read just before (never newer than the samples);
        and per day the counters' last values before it (None without counters)."""
        prints = self.client.fingerprints(days[0], days[-1], turbines)
        start, end = day_bounds(days[0])[0], day_bounds(days[-1])[1]
        frame = self.client.fetch_frame(start, end, self.variables, turbines)
        counters = self.rollup.counters
        first = previous_values(self.client, start, counters, turbines) if counters else None
        if len(days) == 1:
            return [frame], prints, [first]
        by_day = frame.with_columns(pl.col("timestamp").dt.date().alias("_day")).partition_by(
            "_day", as_dict=True, include_key=False
        )
        empty = frame.clear()
        frames = [by_day.get((day,), empty) for day in days]
        before: list[pl.DataFrame | None] = [first]
        for earlier in frames[:-1]:  # the day before's last values, else what preceded it
            before.append(_newest(before[-1], last_values(earlier, counters)) if counters else None)
        return frames, prints, before

    def unchanged(self, day: date, turbines: Sequence[str], prints: Prints) -> bool:
        """Whether the source's fingerprints of ``day`` are still ``prints``."""
        now = self.client.fingerprints(day, day, turbines)
        return all(
            now.get((t, day), EMPTY_FINGERPRINT) == prints.get((t, day), EMPTY_FINGERPRINT)
            for t in turbines
        )

    def process(
        self, fetched: Fetched, *, complete_until: datetime, check: bool, began: float
    ) -> DayResult:
        """Aggregate and load one fetched day; with ``check``, only if the source still holds its
        fingerprints once the day's locks are taken (else :class:`SourceMovedError`, nothing
        written)."""
        day, samples, prints, turbines, previous = fetched
        start, end = day_bounds(day)
        until = min(end, max(start, window_floor(complete_until, self.window)))
        non_finite = non_finite_counts(samples, self.variables)
        # One turbine asked for: the API sent only its rows, so aggregate without grouping (the
        # grouped path costs a string comparison per sample); the load adds the turbine back.
        alone = len(turbines) == 1 and "turbine" in samples.columns
        if alone and previous is not None and "turbine" in previous.columns:
            previous = previous.drop("turbine")
        computed = aggregate(
            samples.drop("turbine") if alone else samples,
            self.rollup,
            window=self.window,
            previous=previous,
        )
        aggregates, thin = computed.frame, computed.thin
        if until < end and aggregates.height:
            aggregates = aggregates.filter(pl.col("timestamp") + self.window <= until)
        by_turbine = turbine_figures(samples, turbines)
        records = [
            DayRecord(
                turbine=t,
                day=day,
                fingerprint=prints.get((t, day), EMPTY_FINGERPRINT),
                samples=by_turbine[t][0],
                non_finite=non_finite.get(t, non_finite.get("", 0) if len(turbines) == 1 else 0),
                complete_until=until.replace(tzinfo=UTC),
                thin_windows=thin.get((t, day), thin.get(("", day), 0) if alone else 0),
            )
            for t in turbines
        ]
        written = replace_window(
            self.engine,
            start,
            end,
            aggregates,
            signals=self.rollup.signals,
            turbines=turbines,
            records=records,
            still_current=(lambda: self.unchanged(day, turbines, prints)) if check else None,
        )
        windows = aggregates.select(pl.struct(pl.exclude("signal", "value")).n_unique()).item()
        return DayResult(
            day=day,
            rows_read=samples.height,
            windows=int(windows) if aggregates.height else 0,
            rows_written=written,
            coverage=sum(c for _, c in by_turbine.values()) / max(1, len(by_turbine)),
            seconds=time.perf_counter() - began,
            turbines=len(turbines),
            by_turbine=by_turbine,
            non_finite=sum(r.non_finite for r in records),
            complete_until=until.replace(tzinfo=UTC),
        )

    def load_day(self, fetched: Fetched, *, complete_until: datetime, began: float) -> DayResult:
        """:meth:`process`, fetching the day again while the source changes it under the load."""
        day, turbines = fetched.day, fetched.turbines
        for fetch in range(1, MOVED_ATTEMPTS + 1):
            last = fetch == MOVED_ATTEMPTS
            try:
                result = self.process(
                    fetched, complete_until=complete_until, check=not last, began=began
                )
            except SourceMovedError:
                log.info("%s: the source changed while it was fetched; fetching it again", day)
                (samples,), prints, (previous,) = self.fetch([day], turbines)
                fetched = Fetched(day, samples, prints, turbines, previous)
                continue
            if last and fetch > 1:
                log.warning(
                    "%s: the source kept changing; loaded as fetched %d times, with the "
                    "fingerprint read before (the change sensor runs the day again)",
                    day,
                    fetch,
                )
            return replace(result, fetches=fetch)
        raise AssertionError("unreachable")  # pragma: no cover - the last attempt does not check


def previous_values(
    client: ApiClient, start: datetime, counters: Sequence[str], turbines: Sequence[str]
) -> pl.DataFrame:
    """Per turbine, each counter's last value in the day before ``start`` (``GET /data?last=``):
    the starting point of its first increase. A counter silent for longer starts afresh."""
    parts = [
        client.fetch_last(start - catalog.DAY, start, [counter], turbines).select(
            *(["turbine"] if len(turbines) > 1 else []), "timestamp", counter
        )
        for counter in counters
    ]
    return pl.concat(parts, how="diagonal")


def _newest(before: pl.DataFrame | None, latest: pl.DataFrame) -> pl.DataFrame:
    """The last values of ``latest``, and those of ``before`` for counters or turbines it lacks."""
    if before is None or before.height == 0:
        return latest
    return pl.concat([before, latest], how="diagonal_relaxed")


def _merged(first: DayResult, second: DayResult) -> DayResult:
    """One day's result from those of two groups of its turbines."""
    turbines = first.turbines + second.turbines
    return DayResult(
        day=first.day,
        rows_read=first.rows_read + second.rows_read,
        windows=first.windows + second.windows,
        rows_written=first.rows_written + second.rows_written,
        coverage=(first.coverage * first.turbines + second.coverage * second.turbines) / turbines,
        seconds=first.seconds + second.seconds,
        turbines=turbines,
        by_turbine={**first.by_turbine, **second.by_turbine},
        non_finite=first.non_finite + second.non_finite,
        complete_until=second.complete_until,
        fetches=max(first.fetches, second.fetches),
    )


def _with_day(day: date, exc: EtlError) -> EtlError:
    """The same error, its message prefixed with the day it happened on."""
    error = type(exc)(f"{day.isoformat()}: {exc}")
    error.__cause__ = exc.__cause__
    return error


def run_range(
    first: date,
    last: date,
    *,
    client: ApiClient,
    engine: Engine,
    variables: Sequence[str] | None = None,
    aggregations: Sequence[str] | None = None,
    rollup: Rollup | None = None,
    turbines: Sequence[str] = (DEFAULT_TURBINE_ID,),
    window: timedelta = WINDOW,
    on_day: Callable[[DayResult], None] | None = None,
    close_margin: timedelta = CLOSE_MARGIN,
    clock: Callable[[], datetime] = _utc_now,
) -> list[DayResult]:
    """Run each day from ``first`` to ``last`` inclusive, in order, each in its own transaction.

    Days are downloaded ``FETCH_DAYS`` at a time, every turbine in the same request, in
    background threads, while earlier days are aggregated and loaded (a day of over
    ``REQUEST_SAMPLES`` samples comes in groups of turbines: see :func:`plan_requests`). Each
    day's aggregates are replaced for all ``turbines`` (or for each group) in one transaction (a
    turbine without samples that day is cleared); ``on_day`` gets one result per day. A failure
    stops the run: the days before it stay loaded, the failed day (or group) is unchanged.
    Windows are written once they ended ``close_margin`` before ``clock()`` (aware UTC).
    """
    if last < first:
        raise EtlError(f"the range ends ({last}) before it starts ({first})")
    ensure_schema(engine)  # one query when current; a target of an older release is migrated
    days = days_between(first, last)
    if len(turbines) > 1:  # how much each day holds decides how to split the requests
        counts = {
            pair: int(print_.partition(":")[0])
            for pair, print_ in client.fingerprints(first, last, turbines).items()
        }
        units = plan_requests(days, turbines, counts)
    else:
        units = [
            (days[i : i + FETCH_DAYS], list(turbines)) for i in range(0, len(days), FETCH_DAYS)
        ]
    results: list[DayResult] = []
    pending: DayResult | None = None  # a day split in groups of turbines, until its last group

    def done(result: DayResult) -> None:
        results.append(result)
        if on_day is not None:
            on_day(result)

    job = _Job(client, engine, rollup_of(rollup, variables, aggregations), window)

    def fetch(unit: Unit) -> "Future[tuple[list[pl.DataFrame], Prints, list[pl.DataFrame | None]]]":
        return pool.submit(job.fetch, *unit)

    with ThreadPoolExecutor(max_workers=PREFETCH_REQUESTS, thread_name_prefix="windpipe") as pool:
        ahead = deque(fetch(unit) for unit in units[:PREFETCH_REQUESTS])
        began = time.perf_counter()
        try:
            for index, (unit_days, unit_turbines) in enumerate(units):
                try:
                    frames, prints, before = ahead.popleft().result()
                except EtlError as exc:
                    raise _with_day(unit_days[0], exc) from exc.__cause__
                if index + PREFETCH_REQUESTS < len(units):
                    ahead.append(fetch(units[index + PREFETCH_REQUESTS]))
                for day, samples, previous in zip(unit_days, frames, before, strict=True):
                    try:
                        result = job.load_day(
                            Fetched(day, samples, prints, unit_turbines, previous),
                            complete_until=clock() - close_margin,
                            began=began,
                        )
                    except EtlError as exc:
                        raise _with_day(day, exc) from exc.__cause__
                    began = time.perf_counter()
                    pending = result if pending is None else _merged(pending, result)
                    following = units[index + 1][0][0] if index + 1 < len(units) else None
                    if following != day:  # the day's last group is loaded: report it
                        done(pending)
                        pending = None
        finally:
            for future in ahead:
                future.cancel()
    return results
