"""``windpipe export``: the target's aggregates as files other tools read (OpenOA)."""

from pathlib import Path
from typing import Annotated

import typer

from windpipe.cli.app import UserError, app, clean_errors, console, load_settings_or_exit, parse_day
from windpipe.cli.etl import TurbineOption

export_app = typer.Typer(
    help="Export the target's 10-minute aggregates as files other tools read.",
    no_args_is_help=True,
)
app.add_typer(export_app, name="export")


def _check_out(out: Path, *, force: bool) -> None:
    """Refuse a folder that is a file, or not empty without --force."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {str(out)!r} is a file; give a folder (new or empty)")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(
            f"--out {str(out)!r} is not empty; give an empty or new folder, or --force to "
            "replace the export's files in it"
        )


@export_app.command("openoa")
@clean_errors
def openoa(
    start: Annotated[str, typer.Option(help="First UTC day, YYYY-MM-DD.", show_default=False)],
    end: Annotated[
        str, typer.Option(help="Last UTC day (inclusive), YYYY-MM-DD.", show_default=False)
    ],
    out: Annotated[
        Path, typer.Option("--out", help="The folder to write the files into.", show_default=False)
    ],
    turbine: TurbineOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a folder that is not empty.")
    ] = False,
) -> None:
    """Write scada.csv, asset.csv, status.csv and plant_meta.yml, which NREL OpenOA's PlantData
    reads, from the target's windows of a range of UTC days and the API's events."""
    first, last = parse_day(start, "--start"), parse_day(end, "--end")
    assert first is not None and last is not None
    if last < first:
        raise UserError(f"--end {last} is before --start {first}")
    _check_out(out, force=force)
    from windpipe.etl.openoa import export_openoa, fleet_of
    from windpipe.etl.session import open_session

    settings = load_settings_or_exit()
    with open_session(settings, turbine) as session:
        result = export_openoa(
            first,
            last,
            out,
            settings=settings,
            client=session.client,
            engine=session.engine,
            fleet=fleet_of(settings, session.turbines),
        )
    console.print(
        f"exported {first}..{last} to {result.out}: {result.scada_rows:,} windows of "
        f"{result.assets} turbine(s) ({', '.join(result.columns)}), {result.events:,} event(s)",
        highlight=False,
        soft_wrap=True,
    )
