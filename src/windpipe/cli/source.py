"""``windpipe seed``: fill the source database with the synthetic turbine, and keep it live."""

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import typer

from windpipe.cli.app import (
    UserError,
    app,
    clean_errors,
    console,
    err_console,
    load_settings_or_exit,
    parse_day,
    warn,
)


def _minute(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(" ", "minutes")  # year 0004, not 4


@app.command()
@clean_errors
def seed(
    start: Annotated[
        str | None, typer.Option(help="First UTC day, YYYY-MM-DD. Default: 10 days before today.")
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=3660, help="Number of days to seed.")] = 10,
    freq: Annotated[
        str, typer.Option(help="Sampling period: 1s, 10s, 30s, 1min, 5min, 10min.")
    ] = "1min",
    seed: Annotated[int, typer.Option("--seed", help="Random seed; same seed, same data.")] = 42,
    gap_rate: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Share of samples to drop, in short runs.")
    ] = 0.0,
    follow: Annotated[
        bool, typer.Option("--follow", help="Then append the current minute's sample every minute.")
    ] = False,
    turbines: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=1000,
            help="Seed a farm of N synthetic turbines, WTG01..WTGnn. Default: the turbines "
            "marked synthetic = true in windpipe.toml; without [[turbines]], those the seed made "
            "before (WTG01 in an empty source). Never a turbine holding imported data.",
        ),
    ] = None,
) -> None:
    """Seed the source table (idempotent: a re-run replaces the period, one row per turbine and
    timestamp)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from windpipe.catalog import utc_midnight
    from windpipe.postgres import check_connection, database_url, make_engine
    from windpipe.source.generator import farm
    from windpipe.source.seed import (
        default_period,
        describe_left_alone,
        fleet_specs,
        parse_frequency,
        seed_source,
        synthetic_fleet_of,
    )
    from windpipe.source.store import ensure_schema, turbine_ids

    settings = load_settings_or_exit()
    columns = [v.column for v in settings.variables.values()]
    step = parse_frequency(freq)
    first_day = parse_day(start, "--start")
    if first_day is None:
        begin, end = default_period(days=days)
    else:
        begin = utc_midnight(first_day)
        try:
            end = begin + timedelta(days=days)
        except OverflowError:
            raise UserError(
                f"--start {first_day} with --days {days} ends after "
                f"{date.max - timedelta(days=1)}, the last day windpipe can hold"
            ) from None
    source_url = database_url(settings, "source")
    check_connection(source_url, label="the source")
    engine = make_engine(source_url)
    ensure_schema(engine)
    if turbines:
        specs = farm(turbines)
    else:
        fleet = settings.fleet_of(turbine_ids(engine))
        chosen = synthetic_fleet_of(engine, fleet, declared=settings.turbines_declared)
        if chosen.left_alone:
            warn(f"not seeded: {describe_left_alone(chosen.left_alone)}")
        if not chosen.turbines:
            raise UserError(
                "no synthetic turbine to seed: mark demo turbines synthetic = true in their "
                "[[turbines]] table of windpipe.toml, or give --turbines N for WTG01..WTGnn"
            )
        specs = fleet_specs(chosen.turbines)

    expected = int((end - begin).total_seconds() // step) * len(specs)
    with Progress(
        TextColumn("[bold]seeding"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeRemainingColumn(),
        console=console.get(),
        transient=True,
        disable=not console.is_terminal,  # piped output gets the summary line only
    ) as progress:
        task = progress.add_task("seed", total=expected)
        result = seed_source(
            engine,
            begin,
            end,
            turbines=specs,
            freq=freq,
            seed=seed,
            gap_rate=gap_rate,
            columns=columns,
            on_chunk=lambda n: progress.advance(task, n),
        )
    rate = result.rows_written / result.seconds if result.seconds else 0.0
    console.print(
        f"seeded {result.rows_written:,} rows of {len(specs)} turbine(s) for "
        f"[{_minute(begin)}, {_minute(end)}) UTC "
        f"at {freq} in {result.seconds:.1f} s ({rate:,.0f} rows/s)",
        highlight=False,
    )
    _print_coverage(result.coverage)
    if end > datetime.now(UTC) + timedelta(minutes=1):
        warn(
            f"the period ends {_minute(end)} UTC, in the future: "
            "these samples are synthetic and a live feed would write over them"
        )
    if follow:
        follow_live(engine, seed=seed, turbines=specs, columns=columns)


def _print_coverage(coverage) -> None:  # type: ignore[no-untyped-def]
    if coverage.first is None:
        console.print("the source table is empty")
        return
    console.print(
        f"source holds {coverage.rows:,} rows from {coverage.first:%Y-%m-%d %H:%M:%S} "
        f"to {coverage.last:%Y-%m-%d %H:%M:%S} UTC",
        highlight=False,
    )


def follow_live(  # type: ignore[no-untyped-def]
    engine,
    *,
    seed: int,
    turbines=None,
    columns=None,
    max_iterations: int | None = None,
) -> None:
    """Append each new minute's samples as the clock passes it, until SIGINT or SIGTERM."""
    from windpipe.cli.supervisor import Stopper
    from windpipe.source.feed import run_feed

    def appended(count: int) -> None:
        console.print(f"{datetime.now(UTC):%H:%M:%S} appended {count} sample(s)", highlight=False)

    def failed(reason: str) -> None:
        warn(f"live feed: {reason}; trying again every minute")

    console.print("following: one sample a minute per turbine (Ctrl-C to stop)")
    # Handlers of its own, not Python's KeyboardInterrupt: that one is not installed when SIGINT
    # arrives ignored (a script's background job), and SIGTERM (docker stop, systemd) has none.
    with Stopper().installed() as stopper:
        run_feed(
            engine,
            stopper.event,
            seed=seed,
            turbines=turbines,
            columns=columns,
            on_append=appended,
            on_error=failed,
            max_iterations=max_iterations,
        )
    if stopper.signal_name:
        err_console.print(
            "interrupted" if stopper.signal_name == "SIGINT" else f"stopped ({stopper.signal_name})"
        )
        raise typer.Exit(stopper.exit_code)
