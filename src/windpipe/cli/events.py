"""``windpipe events``: a turbine's events (state changes, alarms, stops) in the source."""

from pathlib import Path
from typing import Annotated

import typer

from windpipe.cli.app import UserError, app, clean_errors, console, load_settings_or_exit, warn
from windpipe.cli.importer import Format
from windpipe.errors import WindpipeError

events_app = typer.Typer(
    help="Turbine events (IEC 61400-26-1 states): import them into the source.",
    no_args_is_help=True,
)
app.add_typer(events_app, name="events")


@events_app.command("import")
@clean_errors
def import_events(
    paths: Annotated[
        list[Path], typer.Argument(help="CSV or Parquet files (.gz, .bz2, .zst compressed too).")
    ],
    turbine_column: Annotated[str, typer.Option(help="Column of the turbine ids.")] = "turbine",
    start_column: Annotated[str, typer.Option(help="Column of the events' starts.")] = "start",
    end_column: Annotated[
        str, typer.Option(help="Column of the events' ends (empty: ongoing).")
    ] = "end",
    code_column: Annotated[str, typer.Option(help="Column of the event codes.")] = "code",
    message_column: Annotated[
        str, typer.Option(help="Column of the messages (optional when left at its default).")
    ] = "message",
    timezone: Annotated[
        str | None,
        typer.Option(help="IANA zone of times written without an offset, e.g. Europe/Paris."),
    ] = None,
    time_format: Annotated[
        str,
        typer.Option(
            help="Layout of the times: auto (ISO 8601 with or without an offset, epoch seconds), "
            "epoch, epoch_ms, or a strftime layout such as '%d/%m/%Y %H:%M'."
        ),
    ] = "auto",
    delimiter: Annotated[str, typer.Option(help="CSV field separator.")] = ",",
    format: Annotated[
        Format | None, typer.Option("--format", help="File format; default: from the extension.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read and check every row; write nothing.")
    ] = False,
) -> None:
    """Import event exports into the source: one transaction per file, upserted by (turbine,
    start, code), so an import repeated gives the same rows and an ongoing event is closed by a
    later export that carries its end."""
    from pydantic import ValidationError

    from windpipe.settings import ImportConfig
    from windpipe.source.events import EventColumns, import_events

    settings = load_settings_or_exit()
    try:  # the zone and the delimiter checked once, as `windpipe import` checks them
        ImportConfig(timezone=timezone, delimiter=delimiter, time_format=time_format)
    except ValidationError as exc:
        err = exc.errors()[0]
        option = "--" + str(err["loc"][0]).replace("_", "-") if err["loc"] else "the options"
        raise UserError(f"{option}: {str(err['msg']).removeprefix('Value error, ')}") from None
    columns = EventColumns(turbine_column, start_column, end_column, code_column, message_column)
    engine = None
    if not dry_run:
        from windpipe.postgres import check_connection, database_url, make_engine
        from windpipe.source.store import ensure_schema

        url = database_url(settings, "source")
        check_connection(url, label="the source")
        engine = make_engine(url)
        ensure_schema(engine)
    codes = settings.event_codes
    unknown: set[str] = set()
    fleet = {t.id for t in settings.fleet} if settings.turbines_declared else None
    strangers: set[str] = set()
    for number, path in enumerate(paths):
        try:
            report = import_events(
                path,
                engine=engine,
                columns=columns,
                timezone=timezone,
                delimiter=delimiter,
                format=format.value if format else None,
                time_format=time_format,
            )
        except WindpipeError as exc:
            if number:
                warn(f"{number} earlier file(s) were imported; importing them again is safe")
            raise UserError(str(exc), exc.exit_code) from None
        unknown.update(c for c in report.codes if c not in codes)
        if fleet is not None:
            strangers.update(t for t in report.turbine_ids if t not in fleet)
        verb = "would import" if dry_run else "imported"
        written = "" if dry_run else f", {report.new:,} new, {report.changed:,} changed"
        console.print(
            f"{verb} {path}: {report.read:,} events read, {report.events:,} kept of "
            f"{report.turbines} turbine(s){written}, {report.ongoing:,} ongoing"
            + (
                f" ({report.duplicates:,} repeated a turbine, start and code: the last kept)"
                if report.duplicates
                else ""
            ),
            highlight=False,
            markup=False,
        )
    if strangers:
        listed = ", ".join(sorted(strangers)[:12])
        warn(
            f"turbine(s) {listed} are not in the fleet of windpipe.toml ([[turbines]]: "
            f"{', '.join(sorted(fleet or ()))}): their events are kept, but no figure reads them "
            "until they are declared (a misspelt id: correct the file and import it again; "
            "the events under the wrong id stay in the source's turbine_event until deleted)"
        )
    if unknown and codes:
        listed = ", ".join(sorted(unknown)[:12])
        warn(
            f"event code(s) {listed} are not in [event_codes] of windpipe.toml: they count as "
            "forced_outage until given a category"
        )
    elif unknown:
        warn(
            "no [event_codes] in windpipe.toml: every event counts as forced_outage until its "
            'code is given a category (e.g. "201" = { category = "scheduled_maintenance" })'
        )
