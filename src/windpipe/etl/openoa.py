"""``windpipe export openoa``'s work without the CLI: the target's 10-minute aggregates, the fleet
and the events, as the files NREL OpenOA 3.x's ``PlantData`` reads.

Four files in one folder: ``scada.csv`` (``time`` in UTC, ``asset_id`` and each exported signal
under its IEC 61400-25 name), ``asset.csv`` (the ``[[turbines]]`` metadata), ``status.csv`` (the
events, with their IEC 61400-26-1 category) and ``plant_meta.yml``, OpenOA's metadata schema
mapping those columns (``PlantData(metadata=..., scada=..., asset=..., status=...)``). The frames
are built by pure functions; :func:`export_openoa` reads the target (the warehouse owns the SQL) and
the events (through the API, the only reader of the source) and writes them.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl
from sqlalchemy import Engine

from windpipe import catalog
from windpipe.errors import EtlError
from windpipe.etl.extract import ApiClient
from windpipe.settings import Settings

#: The files an export writes, in the folder given.
SCADA_FILE, ASSET_FILE, STATUS_FILE, META_FILE = (
    "scada.csv",
    "asset.csv",
    "status.csv",
    "plant_meta.yml",
)
EXPORT_FILES = (SCADA_FILE, ASSET_FILE, STATUS_FILE, META_FILE)
#: OpenOA's names of the asset table's columns, and the catalog field each comes from.
ASSET_COLUMNS: dict[str, str] = {
    "latitude": "latitude",
    "longitude": "longitude",
    "rated_power": "rated_power_kw",
    "hub_height": "hub_height_m",
    "rotor_diameter": "rotor_diameter_m",
    "elevation": "elevation_m",
}
#: What OpenOA calls a wind turbine in the asset table's ``type`` (``PlantData.turbine_ids``
#: keeps the assets of that type); the turbine's model goes to a ``model`` column of its own.
TURBINE_TYPE = "turbine"
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S+00:00"


class ExportError(EtlError):
    """An export that cannot be written as asked (nothing loaded for the range, ...)."""


@dataclass(frozen=True)
class ScadaColumn:
    """One column of ``scada.csv``: its IEC 61400-25 name and the target signal it holds."""

    iec_name: str
    signal: str
    #: Integer codes (a state's): written as integers, as OpenOA reads ``WTUR_TurSt`` as text.
    codes: bool = False


@dataclass(frozen=True)
class ScadaPlan:
    """What ``scada.csv`` holds: its columns, and whether the relative wind direction is
    derived from the wind and nacelle directions' means."""

    columns: tuple[ScadaColumn, ...]
    derive_relative: bool = False

    @property
    def signals(self) -> list[str]:
        """The target signals to read."""
        extra = ["wind_direction_mean", "nacelle_direction_mean"] if self.derive_relative else []
        return list(dict.fromkeys([c.signal for c in self.columns] + extra))

    @property
    def iec_names(self) -> list[str]:
        """The IEC names of the columns, in order (the derived one last)."""
        derived = [catalog.RELATIVE_DIRECTION_IEC] if self.derive_relative else []
        return [c.iec_name for c in self.columns] + derived


def exported_statistic(kind: catalog.SignalKind, aggregations: Sequence[str]) -> str | None:
    """The 10-minute statistic of a signal that OpenOA gets: the mean (a linear or angle signal),
    the code held longest (``mode``, else ``last``, of a state), the increase (``delta``) of a
    counter; None when the signal is not aggregated to it."""
    wanted = {
        catalog.SignalKind.STATE: ("mode", "last"),
        catalog.SignalKind.COUNTER: ("delta",),
    }.get(kind, ("mean",))
    return next((a for a in wanted if a in aggregations), None)


def scada_plan(rollup: catalog.Rollup, iec_names: Mapping[str, str]) -> ScadaPlan:
    """The columns of ``scada.csv`` for what the ETL aggregates (``rollup``) and the signals' IEC
    names (``Settings.iec_names``): every aggregated signal with an IEC name, and the relative
    direction derived when no signal is named ``WMET_HorWdDirRel`` and both ``wind_direction``
    and ``nacelle_direction`` are aggregated to their means."""
    columns = []
    for variable, aggregations in rollup.aggregations.items():
        iec = iec_names.get(variable)
        statistic = exported_statistic(rollup.kind(variable), aggregations)
        if iec is not None and statistic is not None:
            codes = rollup.kind(variable) is catalog.SignalKind.STATE
            columns.append(ScadaColumn(iec, catalog.signal_name(variable, statistic), codes))
    means = {v for v, aggs in rollup.aggregations.items() if "mean" in aggs}
    derive = (
        catalog.RELATIVE_DIRECTION_IEC not in {c.iec_name for c in columns}
        and {
            "wind_direction",
            "nacelle_direction",
        }
        <= means
    )
    return ScadaPlan(tuple(columns), derive_relative=derive)


def scada_frame(wide: pl.DataFrame, plan: ScadaPlan) -> pl.DataFrame:
    """``scada.csv``'s rows from the target's windows (``warehouse.reads.wide_aggregates``):
    ``time`` (UTC, the window's start), ``asset_id``, then the plan's IEC columns."""
    columns = [
        pl.col("timestamp").dt.strftime(_TIME_FORMAT).alias("time"),
        pl.col("turbine").alias("asset_id"),
        *[
            (pl.col(c.signal).round().cast(pl.Int64) if c.codes else pl.col(c.signal)).alias(
                c.iec_name
            )
            for c in plan.columns
        ],
    ]
    if plan.derive_relative:
        columns.append(
            catalog.relative_direction(
                pl.col("wind_direction_mean"), pl.col("nacelle_direction_mean")
            ).alias(catalog.RELATIVE_DIRECTION_IEC)
        )
    return wide.sort("turbine", "timestamp").select(columns)


def asset_frame(fleet: Sequence[catalog.Turbine]) -> pl.DataFrame:
    """``asset.csv``: per turbine its ``asset_id``, position, rated power (kW), hub height, rotor
    diameter and elevation (m), ``type`` (``turbine``) and ``model``; unknown values empty."""
    return pl.DataFrame(
        [
            {
                "asset_id": t.id,
                **{name: getattr(t, field) for name, field in ASSET_COLUMNS.items()},
                "type": TURBINE_TYPE,
                "model": t.model,
            }
            for t in fleet
        ],
        schema={
            "asset_id": pl.String,
            **dict.fromkeys(ASSET_COLUMNS, pl.Float64),
            "type": pl.String,
            "model": pl.String,
        },
        orient="row",
    )


def status_frame(events: pl.DataFrame, codes: Mapping[str, str]) -> pl.DataFrame:
    """``status.csv`` from the API's events (``ApiClient.events``): ``asset_id``, ``start``,
    ``end`` (empty: ongoing), ``status_id`` (1, 2, ... in order), ``code``, ``message`` and
    ``category`` (``[event_codes]``, an unnamed code ``forced_outage``)."""
    ordered = events.sort("turbine", "start", "code")
    return ordered.select(
        pl.col("turbine").alias("asset_id"),
        pl.col("start").dt.strftime(_TIME_FORMAT),
        pl.col("end").dt.strftime(_TIME_FORMAT),
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("status_id"),
        pl.col("code"),
        pl.col("message"),
        pl.col("code")
        .replace_strict(dict(codes), default=catalog.UNKNOWN_CODE_CATEGORY, return_dtype=pl.String)
        .alias("category"),
    )


def plant_metadata(
    fleet: Sequence[catalog.Turbine], plan: ScadaPlan, window: timedelta
) -> dict[str, object]:
    """OpenOA's plant metadata (``PlantMetaData``) of the files: the plant's centre (the mean of
    the turbines' positions, 0 when none is known), its capacity in MW, and each file's column
    map (OpenOA's name -> the file's column) with the SCADA frequency."""
    lats = [t.latitude for t in fleet if t.latitude is not None]
    lons = [t.longitude for t in fleet if t.longitude is not None]
    minutes = int(window.total_seconds() // 60)
    frequency = f"{minutes}min" if window.total_seconds() % 60 == 0 else f"{window.seconds}s"
    return {
        "latitude": round(sum(lats) / len(lats), 7) if lats else 0.0,
        "longitude": round(sum(lons) / len(lons), 7) if lons else 0.0,
        "capacity": sum(t.rated_power_kw or 0.0 for t in fleet) / 1000.0,
        "scada": {
            "time": "time",
            "asset_id": "asset_id",
            **{name: name for name in plan.iec_names},
            "frequency": frequency,
        },
        "asset": {
            "asset_id": "asset_id",
            **{name: name for name in ASSET_COLUMNS},
            "type": "type",
        },
        "status": {
            "time": "start",
            "asset_id": "asset_id",
            "status_id": "status_id",
            "status_code": "code",
            "status_text": "message",
            "frequency": frequency,
        },
    }


def metadata_yaml(metadata: Mapping[str, object]) -> str:
    """``metadata`` (sections of scalars) as YAML: keys plain, values as JSON scalars, which
    YAML reads as they are."""
    lines = []
    for key, value in metadata.items():
        if isinstance(value, Mapping):
            lines.append(f"{key}:")
            lines.extend(f"  {k}: {json.dumps(v)}" for k, v in value.items())
        else:
            lines.append(f"{key}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def fleet_of(settings: Settings, turbines: Sequence[str]) -> list[catalog.Turbine]:
    """The ``[[turbines]]`` entries of ``turbines`` (checked ids, e.g. an ETL session's), in that
    order; a turbine the configuration does not declare has its id only."""
    declared = {t.id: t for t in settings.fleet} if settings.turbines_declared else {}
    return [declared.get(t) or catalog.Turbine.model_construct(id=t) for t in turbines]


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: rows per file, the IEC columns of ``scada.csv``, the folder."""

    out: Path
    scada_rows: int
    assets: int
    events: int
    columns: tuple[str, ...]


def export_openoa(
    first: date,
    last: date,
    out: Path,
    *,
    settings: Settings,
    client: ApiClient,
    engine: Engine,
    fleet: Sequence[catalog.Turbine],
) -> ExportResult:
    """Write the OpenOA files of ``fleet``'s windows in ``[first, last]`` (UTC days) into ``out``
    (created if missing; the files in it replaced)."""
    from windpipe.warehouse.reads import wide_aggregates

    plan = scada_plan(settings.rollup, settings.iec_names)
    if not plan.columns and not plan.derive_relative:
        raise ExportError(
            "no aggregated signal has an IEC 61400-25 name: aggregate wind_speed or power, or "
            "give a signal an iec_name ([signals.<name>] iec_name = ...)"
        )
    ids = [t.id for t in fleet]
    with engine.connect() as conn:
        wide = wide_aggregates(conn, first, last, plan.signals, turbines=ids)
    if wide.is_empty():
        raise ExportError(
            f"the target holds no windows of {', '.join(ids)} from {first} to {last}; "
            f"load them first: windpipe backfill --start {first} --end {last}"
        )
    start = catalog.utc_midnight(first)
    events = client.events(start, catalog.utc_midnight(last) + catalog.DAY, ids)
    codes = settings.event_categories
    scada = scada_frame(wide, plan)
    assets = asset_frame(fleet)
    status = status_frame(events, codes)
    out.mkdir(parents=True, exist_ok=True)
    scada.write_csv(out / SCADA_FILE)
    assets.write_csv(out / ASSET_FILE)
    status.write_csv(out / STATUS_FILE)
    (out / META_FILE).write_text(metadata_yaml(plant_metadata(fleet, plan, settings.window)))
    return ExportResult(
        out=out,
        scada_rows=scada.height,
        assets=assets.height,
        events=status.height,
        columns=tuple(plan.iec_names),
    )
