"""``windpipe flags``: compute the quality flags of a range of UTC days and store them."""

from datetime import timedelta
from typing import Annotated

import typer

from windpipe.cli.app import UserError, app, clean_errors, console, load_settings_or_exit, parse_day
from windpipe.cli.etl import TurbineOption


@app.command()
@clean_errors
def flags(
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
    """Flag the windows of a range of days (out_of_range, flatline, icing_suspect,
    stopped_with_wind) and replace their stored flags; the aggregates are never changed."""
    from windpipe.analytics.flags import FLAGS, FlagConfig
    from windpipe.analytics.power_curve import sites_of
    from windpipe.etl.flags import run_flags
    from windpipe.etl.session import open_session

    first, last = parse_day(start, "--start"), parse_day(end, "--end")
    settings = load_settings_or_exit()
    with open_session(settings, turbine) as session:
        if first is None or last is None:
            coverage = session.client.coverage()
            if coverage.first is None or coverage.last is None:
                console.print("the API reports an empty source; nothing to flag")
                return
            first = first or coverage.first.date()
            last = last or coverage.last.date()
        if last < first:
            raise UserError(f"--end {last} is before --start {first}")
        result = run_flags(
            client=session.client,
            engine=session.engine,
            turbines=session.turbines,
            first=first,
            last=last,
            config=FlagConfig.of(settings),
            sites=sites_of(settings.fleet, session.turbines),
            icing_reference=timedelta(days=settings.flags_icing_reference_days),
            codes=settings.event_categories,
        )
    counts = ", ".join(f"{f} {result.per_flag.get(f, 0):,}" for f in FLAGS)
    console.print(
        f"flagged {len(session.turbines)} turbine(s) {first}..{last}: {result.windows:,} windows, "
        f"{result.written:,} flags ({counts})",
        highlight=False,
        soft_wrap=True,
    )
