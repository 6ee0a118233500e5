"""``GET /kpis``: the farm's daily figures (energy, capacity factor, availability, lost production)
per turbine and UTC day, with the farm's rows, as ``windpipe kpis`` stored them."""

from collections.abc import AsyncGenerator
from datetime import timedelta

import polars as pl
import pyarrow as pa
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from windpipe.analytics.availability import KPI_SCHEMA, summarise
from windpipe.api.dashboard import known_turbines
from windpipe.api.deps import SettingsDep
from windpipe.api.formats import negotiate
from windpipe.api.params import (
    ERRORS,
    AcceptHeader,
    EndDay,
    FormatParam,
    StartDay,
    Turbines,
    streamed,
)
from windpipe.api.pool import open_session
from windpipe.api.schemas import check_range, check_turbines, parse_day, parse_turbines
from windpipe.api.security import KeyDep
from windpipe.api.streaming import stream_pages
from windpipe.catalog import EVENT_CATEGORIES, FARM, utc_midnight
from windpipe.warehouse import queries

router = APIRouter(tags=["kpis"], responses=ERRORS, dependencies=[KeyDep])

#: Lost production per category: one column each, in the standard's order.
LOST_COLUMNS = [f"lost_kwh_{c}" for c in EVENT_CATEGORIES]
_ARROW = {
    pl.String(): pa.string(),
    pl.Date(): pa.date32(),
    pl.Int64(): pa.int64(),
    pl.Float64(): pa.float64(),
}
#: The answer's columns: the stored figures, then the lost production per category.
SCHEMA = pa.schema(
    [pa.field(name, _ARROW[dtype]) for name, dtype in KPI_SCHEMA.items()]
    + [pa.field(name, pa.float64()) for name in LOST_COLUMNS]
)
_NUMBER = {"type": ["number", "null"]}
_ROW = {
    "type": "object",
    "properties": {
        "turbine": {"type": "string", "description": f"a turbine id, or `{FARM}` for the farm"},
        "day": {"type": "string", "format": "date"},
        **{n: _NUMBER for n in list(KPI_SCHEMA)[2:] if n != "reference"},
        "reference": {"type": "string", "description": "the loss's reference: warranted, measured"},
        **{n: _NUMBER for n in LOST_COLUMNS},
    },
    "required": ["turbine", "day"],
}


def answer_frame(kpis: pl.DataFrame, losses: pl.DataFrame) -> pl.DataFrame:
    """The turbine rows with a lost-production column per category, then the farm's day rows
    (turbine ``*``, summed over the turbines answered)."""
    wide = (
        losses.pivot(on="category", index=["turbine", "day"], values="lost_kwh")
        if losses.height
        else pl.DataFrame(schema={"turbine": pl.String, "day": pl.Date})
    )
    wide = wide.rename({c: f"lost_kwh_{c}" for c in wide.columns if c not in ("turbine", "day")})
    rows = kpis.join(wide, on=["turbine", "day"], how="left").with_columns(
        [
            pl.col(n).cast(pl.Float64).fill_null(0.0) if n in wide.columns else pl.lit(0.0).alias(n)
            for n in LOST_COLUMNS
        ]
    )
    rows = rows.select(*SCHEMA.names)
    if rows.height == 0:
        return rows
    farm = summarise(rows, ["day"]).sort("day").select(*SCHEMA.names)
    return pl.concat([rows, farm], how="vertical")


@router.get(
    "/kpis",
    summary="The farm's daily figures: energy, availability, lost production",
    responses=streamed("One row per turbine and UTC day, then the farm's rows.", _ROW),
    response_class=StreamingResponse,
)
async def get_kpis(
    request: Request,
    settings: SettingsDep,
    start: StartDay,
    end: EndDay,
    turbines: Turbines = None,
    format: FormatParam = None,
    accept: AcceptHeader = None,
) -> StreamingResponse:
    """Per turbine and UTC day in ``[start, end)`` (whole days), the figures ``windpipe kpis``
    stored: energy, coverage, capacity factor, time-based (IEC 61400-26-1) and production-based
    (IEC 61400-26-2) availability, lost production, and lost production per category; then per
    day a farm row (``turbine`` = ``*``) summed over the turbines answered (ratios from the sums).

    A day not computed yet has no row. JSON (default), CSV or Arrow, as ``/data``. The range is
    validated as ``/data``'s is (``WINDPIPE_API_MAX_RANGE_DAYS``)."""
    first, stop = parse_day("start", start), parse_day("end", end)
    check_range(utc_midnight(first), utc_midnight(stop), settings.api_max_range_days)
    wanted = parse_turbines(turbines)
    chosen = format or negotiate(accept)
    session = await open_session(request)
    try:
        if wanted is not None:
            check_turbines(wanted, await known_turbines(session, settings))
        ready = await session.query(queries.HAS_KPIS_SQL)
        last = stop - timedelta(days=1)
        if ready.column("ready")[0].as_py():
            kpis = await session.frame(queries.kpis_sql(first, last, turbines=wanted))
            losses = await session.frame(queries.kpi_losses_sql(first, last, turbines=wanted))
        else:
            kpis = pl.DataFrame(schema=KPI_SCHEMA)
            losses = pl.DataFrame(
                schema={"turbine": pl.String, "day": pl.Date, "category": pl.String}
            )
        kpis = kpis.select([pl.col(n).cast(t) for n, t in KPI_SCHEMA.items()])
        table = answer_frame(kpis, losses).to_arrow().cast(SCHEMA)
    except BaseException:
        session.lease.release()
        raise

    async def pages() -> AsyncGenerator[pa.Table, None]:
        yield table

    return stream_pages(
        pages(),
        session.lease,
        chosen=chosen,
        schema=SCHEMA,
        name="kpis",
        start=utc_midnight(first),
        end=utc_midnight(stop),
    )
