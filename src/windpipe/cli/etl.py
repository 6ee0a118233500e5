"""``windpipe etl`` and ``windpipe backfill``: run the pipeline for one day or a range of days.

Both commands import the ETL inside their bodies, so the rest of the CLI stays quick to start, and
they never import Dagster, FastAPI or pandas: ``windpipe etl --date`` is meant to finish in well
under a second for a day of 1-minute data.
"""

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer

from windpipe.cli.app import (
    UserError,
    app,
    clean_errors,
    console,
    load_settings_or_exit,
    parse_day,
    warn,
)

if TYPE_CHECKING:
    from windpipe.etl.extract import ApiClient
    from windpipe.etl.pipeline import DayResult


@contextmanager
def _start_up() -> Iterator[None]:
    """Import and connect without cyclic-GC passes, then freeze what exists for the rest of the run.

    Python's collector walks every object the imports create, again and again: pausing it saves a
    fifth of the import time, and freezing the survivors spares the interpreter's final
    collections at exit (~0.3 s). The objects frozen live as long as the process anyway.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def _describe(result: "DayResult") -> str:
    fleet = f" of {result.turbines} turbines" if result.turbines > 1 else ""
    return (
        f"{result.day}: {result.rows_read:,} samples{fleet} ({result.coverage:.1%} coverage) -> "
        f"{result.windows} windows, {result.rows_written:,} rows written in {result.seconds:.2f} s"
    )


TurbineOption = Annotated[
    list[str] | None,
    typer.Option(
        "--turbine",
        help="A turbine of the configuration (repeat for several). Default: every turbine.",
        show_default=False,
    ),
]


@app.command()
@clean_errors
def etl(
    day: Annotated[
        str, typer.Option("--date", help="The UTC day to process, YYYY-MM-DD.", show_default=False)
    ],
    turbine: TurbineOption = None,
) -> None:
    """Aggregate one UTC day to windows (10 minutes by default) and replace it in the target."""
    chosen = parse_day(day, "--date")
    assert chosen is not None
    with _start_up():  # one day is small: the whole run goes without GC passes
        from windpipe.etl.session import open_session

        with open_session(load_settings_or_exit(), turbine) as session:
            (result,) = session.run(chosen, chosen)
    if result.rows_read == 0:
        warn(f"the API has no samples for {chosen}; the day's aggregates were cleared")
    _warn_non_finite([result])
    console.print(_describe(result), highlight=False, soft_wrap=True)


def _warn_non_finite(results: "list[DayResult]") -> None:
    bad = [r for r in results if r.non_finite]
    if bad:
        days = ", ".join(f"{r.day} ({r.non_finite:,})" for r in bad[:5])
        warn(
            f"{sum(r.non_finite for r in bad):,} NaN/±Inf sample value(s) were left out of the "
            f"aggregates: {days}{' ...' if len(bad) > 5 else ''}"
        )


@app.command()
@clean_errors
def backfill(
    start: Annotated[
        str | None,
        typer.Option(help="First UTC day, YYYY-MM-DD. Default: the first day the API holds."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(help="Last UTC day (inclusive), YYYY-MM-DD. Default: the last day it holds."),
    ] = None,
    turbine: TurbineOption = None,
    bulk: Annotated[
        bool,
        typer.Option(
            "--bulk/--daily",
            help="Load each whole, closed UTC month of the range as one table swapped in (the "
            "bulk path, ~4x faster); --daily loads every day alone, as `windpipe etl` does.",
        ),
    ] = True,
) -> None:
    """Run the ETL for each day of a range, in order (default: every day the API holds).

    Whole UTC months that have ended go by the bulk path; the days around them day by day."""
    first, last = parse_day(start, "--start"), parse_day(end, "--end")
    with _start_up():
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        from windpipe.etl.pipeline import DayResult
        from windpipe.etl.session import open_session

        session = open_session(load_settings_or_exit(), turbine)
    began = time.perf_counter()
    results: list[DayResult] = []
    outcome = "stopped by the error below after loading"
    try:
        span = day_range(session.client, first, last, doing="backfill")
        if span is None:
            return
        first, last = span
        total = (last - first).days + 1
        with Progress(
            TextColumn("[bold]backfill"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("days"),
            TextColumn("{task.fields[rows]:>12,} samples"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console.get(),
            transient=True,
            disable=not console.is_terminal,  # piped output gets the summary line only
        ) as progress:
            task = progress.add_task("backfill", total=total, rows=0)

            def advance(result: DayResult) -> None:
                results.append(result)
                progress.update(
                    task, advance=1, rows=progress.tasks[task].fields["rows"] + result.rows_read
                )

            session.backfill(first, last, on_day=advance, bulk=bulk)
        outcome = "backfilled"
    except KeyboardInterrupt:
        outcome = "interrupted after loading"
        raise
    finally:
        session.close()
        if results:
            _summary(results, time.perf_counter() - began, outcome=outcome)
        gc.freeze()  # spare the interpreter's final collections


def day_range(
    client: "ApiClient", first: date | None, last: date | None, *, doing: str
) -> tuple[date, date] | None:
    """``--start`` and ``--end`` as days, a missing one taken from the days the API holds; None
    (with a warning) when it holds none; a UserError for an empty or inverted range."""
    if first is None or last is None:
        coverage = client.coverage()
        covered_first, covered_last = coverage.first, coverage.last
        if covered_first is None or covered_last is None:
            warn(f"the API reports an empty source; nothing to {doing}")
            return None
        held = f"the API holds {covered_first.date()}..{covered_last.date()}"
        if first is None and last is not None and last < covered_first.date():
            raise UserError(f"--end {last} is before the first day with data ({held})")
        if last is None and first is not None and first > covered_last.date():
            raise UserError(f"--start {first} is after the last day with data ({held})")
        first = first or covered_first.date()
        last = last or covered_last.date()
    if last < first:
        raise UserError(f"--end {last} is before --start {first}")
    return first, last


def _summary(results: "list[DayResult]", seconds: float, *, outcome: str) -> None:
    _warn_non_finite(results)
    empty = [r.day for r in results if r.rows_read == 0]
    if empty:
        shown = ", ".join(str(d) for d in empty[:5]) + (" ..." if len(empty) > 5 else "")
        warn(f"{len(empty)} day(s) had no samples and were cleared: {shown}")
    read = sum(r.rows_read for r in results)
    written = sum(r.rows_written for r in results)
    rate = read / seconds if seconds > 0 else 0.0
    console.print(
        f"{outcome} {len(results)} day(s) {results[0].day}..{results[-1].day}: "
        f"{read:,} samples read, {written:,} rows written in {seconds:.2f} s "
        f"({rate:,.0f} samples/s)",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
@clean_errors
def refresh(
    lookback_days: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=3660,
            help="Days back from today (included) to compare. Default: "
            "WINDPIPE_CHANGES_LOOKBACK_DAYS.",
            show_default=False,
        ),
    ] = None,
    turbine: TurbineOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what is stale; load nothing.")
    ] = False,
) -> None:
    """Reload the loaded days whose source changed since (late or corrected samples) or whose
    live-edge windows have closed since: what Dagster's source_changes sensor does, for cron."""
    from datetime import UTC, datetime, timedelta

    with _start_up():
        from windpipe.etl.session import open_session

        settings = load_settings_or_exit()
        session = open_session(settings, turbine)
    with session:
        now = datetime.now(UTC)
        last = now.date()
        first = last - timedelta(days=(lookback_days or settings.changes_lookback_days) - 1)
        stale = session.stale(first, last, now=now)
        if not stale:
            console.print(
                f"nothing stale: every loaded (turbine, day) from {first} to {last} matches the "
                "source",
                highlight=False,
            )
            return
        by_day: dict[date, list[str]] = {}
        for item in stale:
            by_day.setdefault(item.day, []).append(item.turbine)
            console.print(f"stale: {item.turbine} {item.day} ({item.reason})", highlight=False)
        if dry_run:
            console.print(f"{len(stale)} stale (turbine, day)(s); --dry-run: nothing loaded")
            return
        results = [
            result
            for day, turbines in by_day.items()
            for result in replace(session, turbines=turbines).run(day, day)
        ]
    console.print(
        f"refreshed {len(stale)} (turbine, day)(s) on {len(by_day)} day(s): "
        f"{sum(r.rows_read for r in results):,} samples read, "
        f"{sum(r.rows_written for r in results):,} rows written",
        highlight=False,
        soft_wrap=True,
    )
