"""``windpipe kpis``: compute and store the farm's daily figures, and print who is behind."""

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
from windpipe.cli.etl import TurbineOption, day_range

if TYPE_CHECKING:
    import polars as pl
    from sqlalchemy import Engine


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ranked(kpis: "pl.DataFrame") -> "pl.DataFrame":
    """Each turbine's period (summed days), the lowest production-based availability first,
    then the farm's period."""
    import polars as pl

    from windpipe.analytics.availability import summarise

    turbines = summarise(kpis, ["turbine"]).sort(
        pl.col("availability_energy").fill_null(2.0),
        pl.col("availability_time").fill_null(2.0),
        "turbine",
    )
    return pl.concat([turbines, summarise(kpis, [])], how="vertical")


def _held_range(
    engine: "Engine", first: date, last: date, turbines: list[str]
) -> tuple[date, date]:
    """``[first, last]`` narrowed to the days the target holds windows of: days before the first
    window or after the last are not a farm's days (rows of zeros would pull its averages down);
    a UserError when it holds none."""
    from windpipe.analytics.windows import POWER, mean_of
    from windpipe.warehouse.reads import held_days

    with engine.connect() as conn:
        span = held_days(conn, first, last, mean_of(POWER), turbines)
    if span is None:
        raise UserError(
            f"the target holds no {mean_of(POWER)} windows of {', '.join(turbines)} from {first} "
            f"to {last}; load them first: windpipe backfill --start {first} --end {last}"
        )
    if span != (first, last):
        warn(
            f"the target holds windows from {span[0]} to {span[1]} only: computing those days, "
            f"not {first}..{last}"
        )
    return span


@app.command()
@clean_errors
def kpis(
    start: Annotated[
        str | None,
        typer.Option(help="First UTC day, YYYY-MM-DD. Default: the first day the API holds."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(help="Last UTC day (inclusive), YYYY-MM-DD. Default: the last day it holds."),
    ] = None,
    turbine: TurbineOption = None,
) -> None:
    """Compute the daily figures (energy, capacity factor, availability, lost production) of each
    turbine from the target's aggregates and the events, store them, print who is behind."""
    first, last = parse_day(start, "--start"), parse_day(end, "--end")
    from rich.table import Table

    from windpipe.analytics.power_curve import CurveConfig
    from windpipe.etl.kpis import run_kpis
    from windpipe.etl.session import open_session

    settings = load_settings_or_exit()
    with open_session(settings, turbine) as session:
        span = day_range(session.client, first, last, doing="compute")
        if span is None:
            return
        first, last = span
        held = [] if settings.turbines_declared else session.client.turbines()
        chosen = set(session.turbines)
        fleet = [t for t in settings.fleet_of(held) if t.id in chosen]
        first, last = _held_range(session.engine, first, last, [t.id for t in fleet])
        run = run_kpis(
            first,
            last,
            client=session.client,
            engine=session.engine,
            fleet=fleet,
            codes=settings.event_categories,
            classes=settings.availability.classes,
            window=settings.window,
            max_days=settings.api_max_range_days,
            history_days=settings.availability.reference_days,  # as the Dagster assets do
            curve=CurveConfig.of(settings),
        )
    if run.unknown_codes:
        listed = ", ".join(run.unknown_codes[:12])
        warn(
            f"event code(s) {listed} are not in [event_codes] of windpipe.toml: counted as "
            "forced_outage"
        )
    figures = run.figures.kpis
    unpriced = int(figures["lost_unpriced_windows"].sum()) if figures.height else 0
    if unpriced:
        warn(
            f"{unpriced:,} window(s) lost production at no known wind speed or outside the "
            "reference curve: counted 0 (configure the turbine's power_curve, or a longer "
            "[availability] reference_days: each day's measured curve is fitted over that many "
            "days before it)"
        )
    table = Table(title=f"windpipe kpis {first}..{last} (lowest energy availability first)")
    for header in (
        "turbine",
        "energy MWh",
        "capacity factor",
        "availability (time)",
        "availability (energy)",
        "lost MWh",
        "coverage",
    ):
        table.add_column(header, justify="left" if header == "turbine" else "right")
    if figures.height:
        for row in _ranked(figures).iter_rows(named=True):
            farm = row["turbine"] == "*"
            table.add_row(
                "farm" if farm else row["turbine"],
                f"{row['energy_kwh'] / 1000:,.1f}",
                _percent(row["capacity_factor"]),
                _percent(row["availability_time"]),
                _percent(row["availability_energy"]),
                f"{row['lost_production_kwh'] / 1000:,.2f}",
                _percent(row["coverage"]),
                style="bold" if farm else None,
                end_section=False,
            )
    console.print(table)
    console.print(
        f"stored {run.rows:,} turbine-day(s) of {len(fleet)} turbine(s), {first}..{last}; "
        f"{run.events:,} event(s) read",
        highlight=False,
    )
