"""``windpipe config show``: the configuration in effect, and where each value came from."""

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from windpipe.cli.app import app, clean_errors, console, load_settings_or_exit

if TYPE_CHECKING:
    from windpipe.settings import Settings

config_app = typer.Typer(
    help="The configuration: settings, fleet and signals.", no_args_is_help=True
)
app.add_typer(config_app, name="config")

#: Settings shown as tables of their own rather than as one line.
_TABLES = ("turbines", "signals", "imports")


def _shown(value: Any) -> str:
    """A value as the user wrote it: lists comma-joined, passwords in URLs and secrets hidden."""
    if value is None:
        return "-"
    if hasattr(value, "get_secret_value"):
        return "***"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", str(value))


def _origins() -> tuple[dict[str, str], dict[str, str]]:
    """Where each field was set: ``.env`` keys, and the configuration file's keys by field."""
    from dotenv import dotenv_values

    from windpipe.settings import TomlFileSource, config_path

    dotenv = {
        k.removeprefix("WINDPIPE_").lower(): ".env"
        for k in dotenv_values(".env")
        if k.startswith("WINDPIPE_")
    }
    in_file = {}
    path = config_path()
    if path.is_file():
        from windpipe.settings import Settings

        for field in TomlFileSource(Settings).values:
            section, _, sub = field.partition("_")
            key = f"{section}.{sub}" if section == "etl" and sub else field
            in_file[field] = f"{path} ({key})"
    return dotenv, in_file


def _origin(field: str, dotenv: dict[str, str], in_file: dict[str, str]) -> str:
    variable = f"WINDPIPE_{field.upper()}"
    if field == "config":
        from windpipe.settings import config_path

        path = config_path()
        if not path.is_file():
            where = variable if variable in os.environ else f"in {Path.cwd()}"
            return f"no {path} ({where}): no file, the defaults are in force"
    if variable in os.environ:
        return f"environment ({variable})"
    if field in dotenv:
        return f".env ({variable})"
    if field in in_file:
        return in_file[field]
    return "found in the working directory" if field == "config" else "default"


@config_app.command("show")
@clean_errors
def show() -> None:
    """Print every setting in effect with its source, then the fleet and the signals."""
    from rich.table import Table

    settings = load_settings_or_exit()
    dotenv, in_file = _origins()
    values = settings.model_dump()
    if not console.is_terminal:  # piped: one line per value, for grep and diff
        for field in type(settings).model_fields:
            if field not in _TABLES:
                value = _shown(getattr(settings, field))
                origin = _origin(field, dotenv, in_file)
                console.print(f"WINDPIPE_{field.upper()}={value}  # {origin}", highlight=False)
        for turbine in values["turbines"]:
            shown = ", ".join(
                f"{k}={'true' if v is True else v}"
                for k, v in turbine.items()
                if v is not None and v is not False
            )
            console.print(f"turbine {shown}", highlight=False)
        for name, variable in settings.variables.items():
            console.print(
                f"signal {name}: column={variable.column} unit={variable.unit or '-'} "
                f"range=[{variable.low:g}, {variable.high:g}] kind={settings.signals[name].kind} "
                f"aggregated={_aggregated(settings, name)}",
                highlight=False,
            )
        _summary(settings)
        _running_notice(settings)
        return
    table = Table(title="settings", title_justify="left")
    for column in ("setting", "value", "from"):
        table.add_column(column)
    for field in type(settings).model_fields:
        if field in _TABLES:
            continue
        value = getattr(settings, field)
        table.add_row(f"WINDPIPE_{field.upper()}", _shown(value), _origin(field, dotenv, in_file))
    console.print(table)

    fleet = Table(
        title=f"turbines (from {_origin('turbines', dotenv, in_file)})", title_justify="left"
    )
    columns = ("id", "model", "rated_power_kw", "latitude", "longitude", "hub_height_m")
    for column in (*columns, "synthetic"):
        fleet.add_column(column)
    for turbine in values["turbines"]:
        fleet.add_row(
            *(_shown(turbine[c]) for c in columns), "yes" if turbine["synthetic"] else "no"
        )
    console.print(fleet)

    signals = Table(
        title=f"signals (from {_origin('signals', dotenv, in_file)})", title_justify="left"
    )
    for column in ("signal", "kind", "column", "unit", "range", "aggregated by the ETL"):
        signals.add_column(column)
    for name, variable in settings.variables.items():
        signals.add_row(
            name,
            settings.signals[name].kind,
            variable.column,
            variable.unit or "-",
            f"[{variable.low:g}, {variable.high:g}]",
            _aggregated(settings, name),
        )
    console.print(signals)
    _summary(settings)
    _running_notice(settings)


def _aggregated(settings: "Settings", name: str) -> str:
    """``no``, or the signal's aggregations (e.g. ``mean, std`` for an angle)."""
    aggregations = settings.rollup.aggregations.get(name)
    return ", ".join(aggregations) if aggregations else "no"


def _summary(settings: "Settings") -> None:
    coverage = (
        f"; windows under {settings.etl_min_coverage:.0%} of their samples left out"
        if settings.etl_min_coverage
        else ""
    )
    console.print(
        f"ETL: {', '.join(settings.etl_aggregations)} (linear signals) over "
        f"{settings.etl_window} windows{coverage} of "
        f"{len(settings.fleet)} turbine(s) -> {len(settings.etl_signals)} signals per turbine",
        highlight=False,
    )


def _running_notice(settings: "Settings") -> None:
    """Say so when an API answers at the configured URL: it (and Dagster beside it) read the
    configuration when they started, and keep it until restarted."""
    import httpx

    key = settings.api_key.get_secret_value() if settings.api_key else ""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.get(f"{settings.base_api_url}/turbines", headers=headers, timeout=1.0)
        response.raise_for_status()
        running = [str(t["id"]) for t in response.json() if t.get("configured")]
    except (httpx.HTTPError, ValueError, TypeError, AttributeError, KeyError):
        return
    declared = [t.id for t in settings.fleet] if settings.turbines_declared else []
    if running != declared:

        def fleet(ids: list[str]) -> str:
            return f"the fleet {', '.join(ids)}" if ids else "every turbine of the source"

        console.print(
            f"note: the API running at {settings.base_api_url} serves {fleet(running)}, this "
            f"configuration declares {fleet(declared)}: restart windpipe up (or the API and "
            "Dagster) to apply it",
            highlight=False,
        )
    else:
        console.print(
            f"note: an API runs at {settings.base_api_url}; it and Dagster read this "
            "configuration when they started: restart windpipe up after changing it",
            highlight=False,
        )
