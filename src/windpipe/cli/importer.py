"""``windpipe import``: load SCADA exports (CSV, Parquet) into the source table."""

from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from windpipe.cli.app import UserError, app, clean_errors, console, load_settings_or_exit, warn
from windpipe.errors import WindpipeError


def _plain(message: str) -> str:
    """``message`` with Rich markup escaped for ``console.print``: TOML's ``[[turbines]]`` and
    ``[imports.<name>]`` must print as they are (``fail`` and ``warn`` escape on their own)."""
    from rich.markup import escape

    return escape(message)


class Format(StrEnum):
    """File formats ``windpipe import`` reads."""

    csv = "csv"
    parquet = "parquet"


class Ambiguous(StrEnum):
    """What a naive timestamp that a DST change makes ambiguous becomes."""

    error = "error"
    earliest = "earliest"
    latest = "latest"
    infer = "infer"


def _mapping(settings: Any, name: str | None, overrides: dict[str, Any], maps: list[str]) -> Any:
    """The import mapping in effect: ``[imports.<name>]`` (or the defaults), then the options."""
    from pydantic import ValidationError

    from windpipe.settings import ImportConfig, split_mapped

    if name is not None and name not in settings.imports:
        from windpipe.settings import config_path

        path = config_path()
        if not path.is_file():  # the usual cause: run from another folder than the farm's
            raise UserError(
                f"--mapping {name}: no configuration file, so no mapping: {path} was not found "
                f"(in {Path.cwd()}); run from the folder that holds windpipe.toml, or set "
                "WINDPIPE_CONFIG to its path"
            )
        known = ", ".join(settings.imports) or f"none: add [imports.{name}] to {path}"
        raise UserError(f"--mapping {name} is not a mapping of {path}; configured: {known}")
    base = settings.imports[name].model_dump(exclude_unset=True) if name else {}
    given = {k: v for k, v in overrides.items() if v is not None}
    if "turbine" in given:
        base.pop("turbine_column", None)
    if "turbine_column" in given:
        base.pop("turbine", None)
    columns = dict(base.get("columns", {}))
    for entry in maps:
        source, sep, target = entry.partition("=")
        signal, _ = split_mapped(target)
        if not sep or not source.strip() or not signal:
            raise UserError(
                f"--map {entry!r} is not SOURCE_COLUMN=signal or SOURCE_COLUMN=signal:stat"
            )
        if signal not in settings.signals:
            raise UserError(
                f"--map {entry!r}: {signal!r} is not a configured signal; "
                f"accepted: {', '.join(settings.signals)}"
            )
        columns[source.strip()] = target.strip()
    try:
        return ImportConfig.model_validate({**base, **given, "columns": columns})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        option = "--map" if field == "columns" else "--" + field.replace("_", "-")
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] != "value_error" and isinstance(err.get("input"), str | int):
            message = f"{err['input']!r}: {message}"  # pydantic's own messages omit the value
        raise UserError(f"{option if field else 'the options'}: {message}") from None


def _period(report: Any) -> str:
    if report.first is None:
        return "no rows"
    return f"{report.first:%Y-%m-%d %H:%M:%S} .. {report.last:%Y-%m-%d %H:%M:%S} UTC"


def _listed(names: list[str], most: int = 12) -> str:
    return ", ".join(names[:most]) + (
        f", … ({len(names) - most} more)" if len(names) > most else ""
    )


def _say(line: str) -> None:
    console.print(_plain(line), highlight=False)


def _print_report(report: Any, *, dry_run: bool) -> None:
    turbines = ", ".join(f"{t} {n:,}" for t, n in sorted(report.turbines.items()))
    rate = report.rows_read / report.seconds if report.seconds else 0.0
    verb = "would import" if dry_run else "imported"
    _say(
        f"{verb} {report.path}: {report.rows:,} rows of {len(report.turbines)} turbine(s), "
        f"{_period(report)}; {report.bytes / 1e6:,.1f} MB, {report.rows_read:,} rows read "
        f"in {report.seconds:.1f} s ({rate:,.0f} rows/s)"
    )
    if not dry_run:
        _say(
            f"  {report.inserted:,} new, {report.changed:,} changed, {report.unchanged:,} unchanged"
        )
    _say(f"  turbines: {turbines or 'none'}")
    _say(
        "  columns: "
        + ", ".join(
            f"{source} -> {signal} ({report.nulls.get(signal, 0):,} null)"
            for source, signal in report.mapped.items()
        )
    )
    if report.ignored:
        _say(f"  ignored {len(report.ignored)} unmapped column(s): {_listed(report.ignored)}")
    if report.duplicates:
        _say(f"  {report.duplicates:,} row(s) repeat a turbine and timestamp: the last one kept")
    if report.skipped:
        counts = "; ".join(f"{reason}: {n:,}" for reason, n in report.skipped.most_common())
        _say(f"  skipped {sum(report.skipped.values()):,} bad row(s): {counts}")


@app.command("import")
@clean_errors
def import_(
    paths: Annotated[
        list[Path], typer.Argument(help="CSV or Parquet files (.gz, .bz2, .zst compressed too).")
    ],
    # Option help is Rich markup: "\\[" keeps a TOML table such as [[turbines]] from vanishing.
    mapping: Annotated[
        str | None,
        typer.Option("--mapping", "-m", help="A configured \\[imports.<name>] mapping to apply."),
    ] = None,
    format: Annotated[
        Format | None, typer.Option("--format", help="File format; default: from the extension.")
    ] = None,
    time_column: Annotated[
        str | None, typer.Option(help="Column of the timestamps. Default: timestamp.")
    ] = None,
    time_format: Annotated[
        str | None,
        typer.Option(
            help="auto (ISO 8601 with or without offset, or epoch seconds), iso, epoch, "
            "epoch_ms, or a strftime pattern such as '%d/%m/%Y %H:%M'."
        ),
    ] = None,
    turbine_column: Annotated[
        str | None, typer.Option(help="Column of the turbine ids. Default: turbine.")
    ] = None,
    turbine: Annotated[
        str | None, typer.Option(help="One turbine id for every row (a file per turbine).")
    ] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="SOURCE_COLUMN=signal, repeatable. Default: the columns named like a signal.",
        ),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(help="IANA zone of timestamps written without an offset, e.g. Europe/Paris."),
    ] = None,
    ambiguous: Annotated[
        Ambiguous | None,
        typer.Option(
            help="A local time a DST change repeats: error (default), earliest (summer time), "
            "latest (winter time), infer (in file order: first summer, then winter)."
        ),
    ] = None,
    delimiter: Annotated[str | None, typer.Option(help="CSV field separator. Default: ,")] = None,
    period: Annotated[
        str | None,
        typer.Option(
            help="The rows are statistics of periods this long (a 10-minute export: 10min); "
            "map their columns with --map COLUMN=signal:stat (mean, min, max, std, count)."
        ),
    ] = None,
    label: Annotated[
        str | None,
        typer.Option(
            help="What a period's time labels: start (default) or end (an end-labelled 01:10 "
            "is the period [01:00, 01:10), stored as 01:00)."
        ),
    ] = None,
    samples_per_period: Annotated[
        int | None,
        typer.Option(
            help="Samples each period stands for when no column gives the count "
            "(signal:count). Default: the period in seconds (1 Hz)."
        ),
    ] = None,
    skip_bad_rows: Annotated[
        bool,
        typer.Option("--skip-bad-rows", help="Leave bad rows out (counted by reason) instead."),
    ] = False,
    allow_new_turbines: Annotated[
        bool,
        typer.Option(
            "--allow-new-turbines",
            help="Import turbines the configuration does not list (the ETL ignores them "
            "until they are added as [\\[turbines]] to windpipe.toml).",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read and check every row; write nothing.")
    ] = False,
) -> None:
    """Import SCADA exports into the source table: one transaction per file, upserted by
    (turbine, timestamp), so an import repeated gives the same rows."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from windpipe.source.importer import import_file

    settings = load_settings_or_exit()
    spec = _mapping(
        settings,
        mapping,
        {
            "format": format.value if format else None,
            "time_column": time_column,
            "time_format": time_format,
            "turbine_column": turbine_column,
            "turbine": turbine,
            "timezone": timezone,
            "ambiguous": ambiguous.value if ambiguous else None,
            "delimiter": delimiter,
            "period": period,
            "label": label,
            "samples_per_period": samples_per_period,
        },
        map_ or [],
    )
    signals = {name: v.column for name, v in settings.variables.items()}
    fleet = [t.id for t in settings.fleet]
    # Without [[turbines]] the fleet is what the source holds: every imported turbine joins it.
    allow_new_turbines = allow_new_turbines or not settings.turbines_declared
    engine = None
    if not dry_run:
        from windpipe.postgres import check_connection, database_url, make_engine
        from windpipe.source.store import ensure_schema, turbine_ids

        url = database_url(settings, "source")
        check_connection(url, label="the source")
        engine = make_engine(url)
        ensure_schema(engine)
        if not settings.turbines_declared:
            fleet = [t.id for t in settings.fleet_of(turbine_ids(engine))]
        # A signal's column (and its statistics' columns) the table lacks is added by the
        # import itself, in the file's transaction: no DDL by hand.

    # Every file is read with the same mapping, fleet and target.
    import_one = partial(
        import_file,
        signals=signals,
        fleet=fleet,
        engine=engine,
        skip_bad_rows=skip_bad_rows,
        allow_new_turbines=allow_new_turbines,
    )
    reports = []
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console.get(),
        transient=True,
        disable=not console.is_terminal,  # piped output gets the summary lines only
    ) as progress:
        for number, path in enumerate(paths):
            size = path.stat().st_size if path.is_file() else None
            task = progress.add_task(path.name, total=size)

            def advance(n: int, task: Any = task) -> None:
                progress.advance(task, n)

            try:
                report = import_one(path, spec, on_bytes=advance)
            except Exception as exc:
                if number:
                    warn(f"{number} earlier file(s) were imported; importing them again is safe")
                if isinstance(exc, WindpipeError):
                    raise UserError(str(exc), exc.exit_code) from None
                raise
            progress.remove_task(task)
            reports.append(report)
            _print_report(report, dry_run=dry_run)

    if engine is not None:
        from windpipe.source.store import coverage, vacuum

        vacuum(engine)  # fresh statistics: /coverage's estimate counts the new rows at once
        held_now = coverage(engine)
        if held_now.first is not None and held_now.last is not None:
            _say(
                f"source holds {held_now.rows:,} rows from {held_now.first:%Y-%m-%d %H:%M:%S} "
                f"to {held_now.last:%Y-%m-%d %H:%M:%S} UTC"
            )
    mixed = sorted({t for r in reports for t in r.were_synthetic})
    if mixed and not dry_run:
        warn(
            f"turbine(s) {_listed(mixed)} held synthetic samples from windpipe seed, now mixed "
            "with the imported ones; from now on the seed and the live feed leave them alone"
        )
    new = sorted({t for r in reports for t in r.new_turbines})
    if new and settings.turbines_declared:
        warn(
            f"turbine(s) {_listed(new)} are not in the configuration: /turbines lists them, "
            "but the ETL and Dagster aggregate the configured fleet only; add each as "
            f'[[turbines]] id = "{new[0]}" to windpipe.toml, then restart windpipe up '
            "(a running API and Dagster keep the configuration they started with)"
        )
    elif new and not dry_run:
        _say(
            f"turbine(s) {_listed(new)} joined the fleet (without [[turbines]] in windpipe.toml "
            "the fleet is every turbine of the source); a running windpipe up loads them once "
            "restarted"
        )
    firsts = [r.first for r in reports if r.first is not None]
    lasts = [r.last for r in reports if r.last is not None]
    if firsts and lasts and not dry_run:
        console.print(
            f"aggregate them: windpipe backfill --start {min(firsts):%Y-%m-%d} "
            f"--end {max(lasts):%Y-%m-%d}",
            highlight=False,
        )
