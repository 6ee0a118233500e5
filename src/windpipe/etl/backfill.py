"""Backfills: whole closed UTC months by the bulk path, the other days by the daily path.

``run_backfill`` splits ``[first, last]``: each month it covers entirely, and that ended
``close_margin`` before now, is fetched as a whole (every turbine in one request, the next month
requested while this one is aggregated and loaded), aggregated like a day, and swapped in by
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
class _Month:
    month: date
    samples: pl.DataFrame
    prints: Prints
    previous: pl.DataFrame | None = None


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

    def fetch(month: date) -> _Month:
        start, end = month_bounds(month)
        prints = client.fingerprints(month, next_month(month) - timedelta(days=1), turbines)
        samples = client.fetch_frame(start, end, variables, turbines)
        previous = (
            previous_values(client, start, plan.counters, turbines) if plan.counters else None
        )
        return _Month(month, samples, prints, previous)

    def unchanged(month: date, prints: Prints) -> bool:
        now = client.fingerprints(month, next_month(month) - timedelta(days=1), turbines)
        keys = set(now) | set(prints)
        return all(now.get(k, EMPTY_FINGERPRINT) == prints.get(k, EMPTY_FINGERPRINT) for k in keys)

    def load(fetched: _Month) -> list[DayResult]:
        began = time.perf_counter()
        month = fetched.month
        for attempt in range(1, MOVED_ATTEMPTS + 1):
            samples, prints = fetched.samples, fetched.prints
            computed = aggregate(samples, plan, window=window, previous=fetched.previous)
            aggregates = computed.frame
            if "turbine" not in aggregates.columns:
                aggregates = aggregates.select(pl.lit(turbines[0]).alias("turbine"), pl.all())
            figures = _per_day(samples, turbines, variables)
            days = month_days(month)
            records = [
                DayRecord(
                    turbine=t,
                    day=d,
                    fingerprint=prints.get((t, d), EMPTY_FINGERPRINT),
                    samples=figures.get((t, d), (0, 0, 0.0))[0],
                    non_finite=figures.get((t, d), (0, 0, 0.0))[1],
                    complete_until=datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(days=1),
                    thin_windows=computed.thin.get((t, d), computed.thin.get(("", d), 0)),
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

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="windpipe-month") as pool:
        ahead: Future[_Month] = pool.submit(fetch, months[0])
        try:
            for index in range(len(months)):
                fetched = ahead.result()
                if index + 1 < len(months):
                    ahead = pool.submit(fetch, months[index + 1])
                for result in load(fetched):
                    results.append(result)
                    if on_day is not None:
                        on_day(result)
        finally:
            ahead.cancel()
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
