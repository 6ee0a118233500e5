"""``GET /flags``: the stored quality flags of the windows of a time range."""

from collections.abc import AsyncGenerator

import polars as pl
import pyarrow as pa
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from windpipe.api.dashboard import known_turbines
from windpipe.api.deps import SettingsDep
from windpipe.api.formats import negotiate
from windpipe.api.params import ERRORS, AcceptHeader, End, FormatParam, Start, Turbines, streamed
from windpipe.api.pool import TargetSession, open_session
from windpipe.api.schemas import check_turbines, parse_range, parse_turbines
from windpipe.api.security import KeyDep
from windpipe.api.streaming import stream_pages
from windpipe.warehouse import queries

router = APIRouter(tags=["flags"], responses=ERRORS, dependencies=[KeyDep])

#: One record per flagged window and flag.
FLAG_SCHEMA = pa.schema(
    [
        pa.field("turbine", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("flag", pa.string(), nullable=False),
        pa.field("signal", pa.string()),
    ]
)
_FLAG = {
    "type": "object",
    "properties": {
        "turbine": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time", "description": "window start"},
        "flag": {
            "type": "string",
            "enum": ["out_of_range", "flatline", "icing_suspect", "stopped_with_wind"],
        },
        "signal": {"type": ["string", "null"], "description": "null: the whole window"},
    },
    "required": ["turbine", "timestamp", "flag", "signal"],
}


async def has_flags(session: TargetSession) -> bool:
    """Whether the target holds the flags' table (an older or fresh target has none)."""
    if not session.ready:
        return False
    return bool((await session.query(queries.HAS_FLAGS_SQL)).column("ready")[0].as_py())


def as_records(table: pa.Table) -> pa.Table:
    """The flags read as :data:`FLAG_SCHEMA` (window starts as UTC instants)."""
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    frame = frame.with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))
    return pa.Table.from_arrays(
        [frame[c].to_arrow() for c in FLAG_SCHEMA.names], schema=FLAG_SCHEMA
    )


@router.get(
    "/flags",
    summary="List the quality flags of the windows of a time range",
    responses=streamed("One record per flagged window and flag.", _FLAG),
    response_class=StreamingResponse,
)
async def get_flags(
    request: Request,
    settings: SettingsDep,
    start: Start,
    end: End,
    turbines: Turbines = None,
    format: FormatParam = None,
    accept: AcceptHeader = None,
) -> StreamingResponse:
    """The flags stored by `windpipe flags` for windows starting in ``[start, end)``, by turbine,
    time, flag and signal: ``turbine``, ``timestamp`` (the window's start), ``flag``
    (``out_of_range``, ``flatline``, ``icing_suspect``, ``stopped_with_wind``) and ``signal``
    (the target signal it concerns, e.g. ``wind_speed_mean``; null for a flag about the whole
    window). A window may carry several flags. Days never flagged hold none."""
    lo, hi = parse_range(start, end, settings.api_max_range_days)
    wanted = parse_turbines(turbines)
    chosen = format or negotiate(accept)
    session = await open_session(request)
    try:
        if wanted is not None:
            check_turbines(wanted, await known_turbines(session, settings))
        found = (
            await session.query(queries.flags_sql(lo, hi, turbines=wanted))
            if await has_flags(session)
            else None
        )
    except BaseException:
        session.lease.release()
        raise

    async def pages() -> AsyncGenerator[pa.Table, None]:
        if found is not None and found.num_rows:
            yield as_records(found)

    return stream_pages(
        pages(), session.lease, chosen=chosen, schema=FLAG_SCHEMA, name="flags", start=lo, end=hi
    )
