"""``GET /power-curves``: each turbine's power curve over a time range, IEC 61400-12-1 style,
computed on request from the target's windows, the stored flags and the source's events."""

from collections.abc import AsyncGenerator

import polars as pl
import pyarrow as pa
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from windpipe.analytics.power_curve import CurveConfig, Curves, power_curves, sites_of
from windpipe.analytics.windows import wide_windows
from windpipe.api.dashboard import known_turbines
from windpipe.api.deps import ReaderDep, SettingsDep
from windpipe.api.formats import negotiate
from windpipe.api.params import ERRORS, AcceptHeader, End, FormatParam, Start, Turbines, streamed
from windpipe.api.pool import open_session
from windpipe.api.routes.flags import has_flags
from windpipe.api.schemas import check_turbines, parse_range, parse_turbines
from windpipe.api.security import KeyDep
from windpipe.api.streaming import stream_pages
from windpipe.catalog import window_categories
from windpipe.settings import Settings
from windpipe.source.events import select_events_sql
from windpipe.warehouse import queries

router = APIRouter(tags=["power curves"], responses=ERRORS, dependencies=[KeyDep])

#: One record per (turbine, bin); the turbine's facts repeated on each of its bins.
CURVE_SCHEMA = pa.schema(
    [
        pa.field("turbine", pa.string(), nullable=False),
        pa.field("bin", pa.float64(), nullable=False),
        pa.field("windows", pa.int64(), nullable=False),
        pa.field("wind_speed", pa.float64()),
        pa.field("power", pa.float64()),
        pa.field("power_std", pa.float64()),
        pa.field("density", pa.float64()),
        pa.field("drawn", pa.bool_(), nullable=False),
        pa.field("complete", pa.bool_(), nullable=False),
        pa.field("hours", pa.float64(), nullable=False),
        pa.field("cut_in", pa.float64(), nullable=False),
        pa.field("rated_power", pa.float64()),
        pa.field("speed_at_85", pa.float64()),
    ]
)
_NUMBER = {"type": ["number", "null"]}
_BIN = {
    "type": "object",
    "properties": {
        "turbine": {"type": "string"},
        "bin": {"type": "number", "description": "the bin's centre, m/s (a multiple of 0.5)"},
        "windows": {"type": "integer"},
        "wind_speed": {**_NUMBER, "description": "mean normalised wind speed, m/s"},
        "power": {**_NUMBER, "description": "mean power, kW"},
        "power_std": {**_NUMBER, "description": "standard deviation of power (n - 1), kW"},
        "density": {**_NUMBER, "description": "mean air density, kg/m3"},
        "drawn": {"type": "boolean", "description": "the bin holds 3 windows or more"},
        "complete": {"type": "boolean", "description": "the turbine's database is complete"},
        "hours": {"type": "number", "description": "the turbine's hours of windows in the curve"},
        "cut_in": {"type": "number"},
        "rated_power": _NUMBER,
        "speed_at_85": {**_NUMBER, "description": "normalised speed at 85 % of rated power"},
    },
    "required": [f.name for f in CURVE_SCHEMA],
}


def curve_records(curves: Curves) -> pa.Table:
    """The curves as :data:`CURVE_SCHEMA` records."""
    facts = pl.DataFrame(
        [
            {
                "turbine": t,
                "complete": c.complete,
                "hours": c.hours,
                "cut_in": c.cut_in,
                "rated_power": c.rated_power,
                "speed_at_85": c.speed_at_85,
            }
            for t, c in curves.completeness.items()
        ],
        schema={
            "turbine": pl.String,
            "complete": pl.Boolean,
            "hours": pl.Float64,
            "cut_in": pl.Float64,
            "rated_power": pl.Float64,
            "speed_at_85": pl.Float64,
        },
    )
    frame = curves.bins.join(facts, on="turbine", how="left").with_columns(
        pl.col("windows").cast(pl.Int64)
    )
    return pa.Table.from_arrays(
        [frame[c].to_arrow() for c in CURVE_SCHEMA.names], schema=CURVE_SCHEMA
    )


def compute(
    long: pa.Table | None,
    events: pa.Table,
    flags: pa.Table | None,
    *,
    settings: Settings,
    turbines: list[str],
    config: CurveConfig,
) -> pa.Table:
    """The curves of ``turbines`` from the long aggregates, the events and the stored flags."""
    rows = pl.from_arrow(long) if long is not None else None
    assert rows is None or isinstance(rows, pl.DataFrame)
    windows = wide_windows(
        rows
        if rows is not None
        else pl.DataFrame(
            schema={
                "turbine": pl.String,
                "timestamp": pl.Datetime("us"),
                "signal": pl.String,
                "value": pl.Float64,
            }
        ),
        config.signals,
    )
    happened = pl.from_arrow(events)
    assert isinstance(happened, pl.DataFrame)
    marks = pl.from_arrow(flags) if flags is not None else None
    assert marks is None or isinstance(marks, pl.DataFrame)
    if marks is None:
        marks = pl.DataFrame(
            schema={
                "turbine": pl.String,
                "timestamp": pl.Datetime("us"),
                "flag": pl.String,
                "signal": pl.String,
            }
        )
    held = windows.select("turbine", "timestamp")
    codes = settings.event_categories
    categories = window_categories(happened, held, held, codes, window=config.window)
    curves = power_curves(windows, categories, marks, sites_of(settings.fleet, turbines), config)
    return curve_records(curves)


@router.get(
    "/power-curves",
    summary="Each turbine's power curve over a time range (IEC 61400-12-1 method)",
    responses=streamed("One record per (turbine, 0.5 m/s bin).", _BIN),
    response_class=StreamingResponse,
)
async def get_power_curves(
    request: Request,
    reader: ReaderDep,
    settings: SettingsDep,
    start: Start,
    end: End,
    turbines: Turbines = None,
    format: FormatParam = None,
    accept: AcceptHeader = None,
) -> StreamingResponse:
    """Per turbine and 0.5 m/s bin of normalised wind speed (bins centred on multiples of 0.5),
    from the full-performance windows starting in ``[start, end)`` (no event covers them) with
    full coverage (``[power_curve] min_coverage``) and no quality flag on speed, power or the air
    density's inputs: the windows, the mean normalised speed, the mean and standard deviation of
    power, the mean density, and whether the bin is drawn (3 windows or more). Each record also
    carries its turbine's facts: whether the database is complete (IEC 61400-12-1 section 8.3),
    its hours, the cut-in and rated power used, the speed at 85 % of rated power. Bins of the
    completeness range that hold no window are listed with 0 windows."""
    lo, hi = parse_range(start, end, settings.api_max_range_days)
    wanted = parse_turbines(turbines)
    chosen = format or negotiate(accept)
    config = CurveConfig.of(settings)
    session = await open_session(request)
    try:
        known = await known_turbines(session, settings)
        if wanted is not None:
            check_turbines(wanted, known)
        chosen_turbines = wanted if wanted is not None else known
        long = flags = None
        if session.ready and chosen_turbines:
            registered = set((await session.query(queries.SIGNALS_SQL)).column("name").to_pylist())
            names = [s for s in config.signals if s in registered]
            if names:
                long = await session.query(
                    queries.aggregates_sql(names, lo, hi, turbines=chosen_turbines)
                )
            if await has_flags(session):
                flags = await session.query(queries.flags_sql(lo, hi, turbines=chosen_turbines))
        lease = await reader.lease()
        try:
            events = await lease.query(select_events_sql(lo, hi, turbines=chosen_turbines))
        finally:
            lease.release()
        table = await run_in_threadpool(
            compute,
            long,
            events,
            flags,
            settings=settings,
            turbines=chosen_turbines,
            config=config,
        )
    except BaseException:
        session.lease.release()
        raise

    async def pages() -> AsyncGenerator[pa.Table, None]:
        if table.num_rows:
            yield table

    return stream_pages(
        pages(),
        session.lease,
        chosen=chosen,
        schema=CURVE_SCHEMA,
        name="power_curves",
        start=lo,
        end=hi,
    )
