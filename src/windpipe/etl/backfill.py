"""Backfills: whole closed UTC months by the bulk path, the other days by the daily path.

``run_backfill`` splits ``[first, last]``: each month it covers entirely, and that ended
``close_margin`` before now, is fetched in groups of turbines (``GROUP_SAMPLES`` samples each at
most, ``FETCH_WORKERS`` requests at once, each group aggregated as it arrives; the next month's
groups are fetched while this month is loaded), and swapped in by
``warehouse.bulk.replace_month``; the days left over (a partial month at either end, the current
month) go through ``pipeline.run_range`` as always. Both write the same rows and the same
``day_load``; a month whose source moves while it is fetched is fetched again, as a day is.
"""

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial

import polars as pl
from sqlalchemy import Engine

from windpipe.catalog import DEFAULT_TURBINE_ID, EMPTY_FINGERPRINT, WINDOW, Rollup
from windpipe.errors import EtlError
from windpipe.etl.extract import ApiClient
from windpipe.etl.pipeline import (
    CLOSE_MARGIN,
    DEFAULT_STEP_SECONDS,
    MOVED_ATTEMPTS,
    DayResult,
    Prints,
    _utc_now,
    previous_values,
    rollup_of,
    run_range,
)
from windpipe.etl.transform import aggregate
from windpipe.warehouse.bulk import month_bounds, month_days, replace_month
from windpipe.warehouse.partitions import month_of, next_month
from windpipe.warehouse.store import DayRecord, SourceMovedError, ensure_schema

log = logging.getLogger(__name__)

DAY_SECONDS = 86_400
#: Samples one request of a month asks for at most (fewer turbines per request above that; a
#: turbine's month is one request however large). The API answers Arrow in pages of 131,072
#: rows; a request of several turbines within one page is one index-ordered scan of the source,
#: while its later pages were measured to be planned as a scan of the whole source table (a year
#: of 10 turbines at 1 min: 12 month requests 6.5-12 s, 60 requests of two turbines 3.7-6.9 s).
GROUP_SAMPLES = 120_000
#: Requests in flight at once: the API and the source answer one while the ETL decodes and
#: aggregates another (two cores here; measured 1.8x faster than one at a time, three no better).
FETCH_WORKERS = 2


def turbine_groups(
    turbines: Sequence[str], samples: dict[str, int], limit: int = GROUP_SAMPLES
) -> list[list[str]]:
    """``turbines`` in order, cut into consecutive groups of at most ``limit`` samples each
    (``samples`` per turbine; a turbine holding more is a group of its own)."""
    groups: list[list[str]] = []
    held = 0
    for turbine in turbines:
        count = samples.get(turbine, 0)
        if not groups or held + count > limit:
            groups.append([])
            held = 0
        groups[-1].append(turbine)
        held += count
    return groups


def bulk_months(first: date, last: date, *, closed_by: datetime) -> list[date]:
    """The months ``[first, last]`` covers entirely and that ended by ``closed_by`` (aware)."""
    months, month = [], month_of(first)
    if month < first:
        month = next_month(month)
    while next_month(month) - timedelta(days=1) <= last:
        end = next_month(month)
        if datetime(end.year, end.month, end.day, tzinfo=UTC) > closed_by:
            break
        months.append(month)
        month = end
    return months


@dataclass(frozen=True)
class _Group:
    """One group of turbines' month: its aggregates, thin windows and per-(turbine, day)
    figures."""

    aggregates: pl.DataFrame
    thin: dict[tuple[str, date], int]
    figures: dict[tuple[str, date], tuple[int, int, float]]


@dataclass(frozen=True)
class _Month:
    """A month being fetched: the source's fingerprints read first, then its groups."""

    month: date
    prints: Prints
    groups: "list[Future[_Group]]"


def _per_day(
    samples: pl.DataFrame, turbines: Sequence[str], variables: Sequence[str]
) -> dict[tuple[str, date], tuple[int, int, float]]:
    """Per (turbine, day) that holds samples: samples, non-finite values, coverage."""
    if samples.height == 0:
        return {}
    frame = (
        samples
        if "turbine" in samples.columns
        else samples.with_columns(pl.lit(turbines[0]).alias("turbine"))
    )
    present = [v for v in variables if v in frame.columns]
    bad = pl.sum_horizontal(
        (pl.col(v).cast(pl.Float64).is_nan() | pl.col(v).cast(pl.Float64).is_infinite())
        .fill_null(False)
        .cast(pl.UInt32)
        for v in present
    )
    step = pl.col("timestamp").diff().dt.total_microseconds().median().over("turbine", "_day")
    per = (
        frame.select(
            pl.col("turbine").cast(pl.String),
            pl.col("timestamp").dt.date().alias("_day"),
            pl.col("timestamp"),
            bad.alias("_bad") if present else pl.lit(0, pl.UInt32).alias("_bad"),
        )
        .with_columns(step.alias("_step"))
        .group_by("turbine", "_day")
        .agg(pl.len().alias("n"), pl.col("_bad").sum(), pl.col("_step").first())
    )
    figures = {}
    for turbine, day, n, bad_n, step_us in per.iter_rows():
        seconds = step_us / 1e6 if n >= 2 and step_us and step_us > 0 else DEFAULT_STEP_SECONDS
        figures[(str(turbine), day)] = (int(n), int(bad_n), min(1.0, n / (DAY_SECONDS / seconds)))
    return figures


def run_backfill(
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
    bulk: bool = True,
    before_swap: Callable[[], None] | None = None,
) -> list[DayResult]:
    """Load every day of ``[first, last]``: whole closed months by the bulk path (with
    ``bulk``), the rest by ``run_range``; one result per day, in order, as ``run_range``."""
    if last < first:
        raise EtlError(f"the range ends ({last}) before it starts ({first})")
    plan = rollup_of(rollup, variables, aggregations)
    variables = plan.variables
    ensure_schema(engine)
    months = bulk_months(first, last, closed_by=clock() - close_margin) if bulk else []
    results: list[DayResult] = []

    def daily(a: date, b: date) -> None:
        if a <= b:
            results.extend(
                run_range(
                    a, b, client=client, engine=engine, rollup=plan,
                    turbines=turbines, window=window, on_day=on_day,
                    close_margin=close_margin, clock=clock,
                )
            )  # fmt: skip

    if not months:
        daily(first, last)
        return results
    daily(first, months[0] - timedelta(days=1))
    turbines = list(turbines)
    signals = plan.signals

    def fetch_group(start: datetime, end: datetime, group: list[str]) -> _Group:
        samples = client.fetch_frame(start, end, variables, group)
        previous = previous_values(client, start, plan.counters, group) if plan.counters else None
        computed = aggregate(samples, plan, window=window, previous=previous)
        aggregates = computed.frame
        if "turbine" not in aggregates.columns:
            aggregates = aggregates.select(pl.lit(group[0]).alias("turbine"), pl.all())
        thin = {(k[0] or group[0], k[1]): n for k, n in computed.thin.items()}
        return _Group(aggregates, thin, _per_day(samples, group, variables))

    def fetch(month: date) -> _Month:
        """The month's fingerprints now, its groups' requests queued behind earlier ones."""
        start, end = month_bounds(month)
        prints = client.fingerprints(month, next_month(month) - timedelta(days=1), turbines)
        held: dict[str, int] = {}
        for (turbine, _), fingerprint in prints.items():
            held[turbine] = held.get(turbine, 0) + int(fingerprint.partition(":")[0])
        groups = turbine_groups(turbines, held)
        return _Month(month, prints, [pool.submit(fetch_group, start, end, g) for g in groups])

    def unchanged(month: date, prints: Prints) -> bool:
        now = client.fingerprints(month, next_month(month) - timedelta(days=1), turbines)
        keys = set(now) | set(prints)
        return all(now.get(k, EMPTY_FINGERPRINT) == prints.get(k, EMPTY_FINGERPRINT) for k in keys)

    def load(fetched: _Month) -> list[DayResult]:
        began = time.perf_counter()
        month = fetched.month
        for attempt in range(1, MOVED_ATTEMPTS + 1):
            prints = fetched.prints
            parts = [future.result() for future in fetched.groups]
            aggregates = pl.concat(
                [p.aggregates for p in parts if p.aggregates.height] or [parts[0].aggregates],
                how="vertical_relaxed",
            )
            thin = {k: n for p in parts for k, n in p.thin.items()}
            figures = {k: v for p in parts for k, v in p.figures.items()}
            days = month_days(month)
            records = [
                DayRecord(
                    turbine=t,
                    day=d,
                    fingerprint=prints.get((t, d), EMPTY_FINGERPRINT),
                    samples=figures.get((t, d), (0, 0, 0.0))[0],
                    non_finite=figures.get((t, d), (0, 0, 0.0))[1],
                    complete_until=datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(days=1),
                    thin_windows=thin.get((t, d), 0),
                )
                for t in turbines
                for d in days
            ]
            check = attempt < MOVED_ATTEMPTS
            try:
                replace_month(
                    engine,
                    month,
                    aggregates,
                    signals=signals,
                    turbines=turbines,
                    records=records,
                    still_current=partial(unchanged, month, prints) if check else None,
                    before_swap=before_swap,
                )
            except SourceMovedError:
                log.info("%s: the source changed while it was fetched; fetching it again", month)
                fetched = fetch(month)
                continue
            except EtlError as exc:
                error = type(exc)(f"{month:%Y-%m}: {exc}")
                raise error from exc.__cause__
            return _day_results(month, aggregates, figures, turbines, began, attempt)
        raise AssertionError("unreachable")  # pragma: no cover - the last attempt does not check

    pool = ThreadPoolExecutor(max_workers=FETCH_WORKERS, thread_name_prefix="windpipe-month")
    try:
        ahead = fetch(months[0])
        for index in range(len(months)):
            fetched = ahead
            # Every group of this month is queued: the next month's follow them, so the workers
            # fetch it while this one is loaded.
            if index + 1 < len(months):
                ahead = fetch(months[index + 1])
            for result in load(fetched):
                results.append(result)
                if on_day is not None:
                    on_day(result)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    daily(next_month(months[-1]), last)
    return results


def _day_results(
    month: date,
    aggregates: pl.DataFrame,
    figures: dict[tuple[str, date], tuple[int, int, float]],
    turbines: Sequence[str],
    began: float,
    fetches: int,
) -> list[DayResult]:
    """One :class:`DayResult` per day of ``month``, as the daily path reports them."""
    days = month_days(month)
    per_day = (
        aggregates.group_by(pl.col("timestamp").dt.date().alias("day"))
        .agg(pl.len().alias("rows"), pl.struct("turbine", "timestamp").n_unique().alias("w"))
        .iter_rows()
        if aggregates.height
        else iter(())
    )
    written = {day: (int(rows), int(w)) for day, rows, w in per_day}
    seconds = (time.perf_counter() - began) / len(days)
    results = []
    for day in days:
        by_turbine = {t: (figures.get((t, day), (0, 0, 0.0))[0],
                          figures.get((t, day), (0, 0, 0.0))[2]) for t in turbines}  # fmt: skip
        rows, windows = written.get(day, (0, 0))
        results.append(
            DayResult(
                day=day,
                rows_read=sum(n for n, _ in by_turbine.values()),
                windows=windows,
                rows_written=rows,
                coverage=sum(c for _, c in by_turbine.values()) / max(1, len(by_turbine)),
                seconds=seconds,
                turbines=len(turbines),
                by_turbine=by_turbine,
                non_finite=sum(figures.get((t, day), (0, 0, 0.0))[1] for t in turbines),
                complete_until=datetime(day.year, day.month, day.day, tzinfo=UTC)
                + timedelta(days=1),
                fetches=fetches,
            )
        )
    return results
